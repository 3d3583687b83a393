"""/metrics: requests by route template and status, latency, in flight, errors, database
query time, business gauges, and the token and separate-port settings."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine

from tenure import __version__
from tenure.app import create_app
from tenure.config import Settings
from tenure.db import make_sessionmaker
from tenure.observability import metrics

Headers = dict[str, str]


def scrape(
    client: TestClient, headers: Headers | None = None
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, by name and labels."""
    r = client.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_seen(method: str, route: str, status: int) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "tenure_http_requests_total", {"method": method, "route": route, "status": str(status)}
        )
        or 0.0
    )


def test_requests_are_counted_by_route_template_not_raw_path(
    client: TestClient, admin: Headers
) -> None:
    route = "/api/v1/customers/{customer_id}"
    before = requests_seen("GET", route, 404)
    for customer_id in (101, 102, 103):
        assert client.get(f"/api/v1/customers/{customer_id}", headers=admin).status_code == 404

    samples = scrape(client)
    assert (
        value(samples, "tenure_http_requests_total", method="GET", route=route, status="404")
        == before + 3
    )
    assert not any(
        "/api/v1/customers/101" in dict(labels).get("route", "") for _, labels in samples
    )


def test_unknown_paths_share_one_label(client: TestClient) -> None:
    before = requests_seen("GET", metrics.UNMATCHED_ROUTE, 404)
    client.get("/no/such/page-1")
    client.get("/no/such/page-2")
    assert requests_seen("GET", metrics.UNMATCHED_ROUTE, 404) == before + 2


def test_latency_histogram_counts_each_request_of_a_route(client: TestClient) -> None:
    labels = {"method": "GET", "route": "/healthz"}
    count = "tenure_http_request_duration_seconds_count"
    before = metrics.REGISTRY.get_sample_value(count, labels) or 0.0
    for _ in range(4):
        client.get("/healthz")
    samples = scrape(client)
    assert value(samples, count, **labels) == before + 4
    assert (
        value(samples, "tenure_http_request_duration_seconds_bucket", le="+Inf", **labels)
        == before + 4
    )
    assert value(samples, "tenure_http_request_duration_seconds_sum", **labels) > 0


def _app_with(
    settings: Settings, engine: Engine, path: str, endpoint: Callable[..., object]
) -> FastAPI:
    app = create_app(settings, engine=engine)
    app.add_api_route(path, endpoint)
    return app


def test_unhandled_exceptions_count_as_errors(settings: Settings, engine: Engine) -> None:
    def boom() -> None:
        raise RuntimeError("kaboom")

    app = _app_with(settings, engine, "/test/boom", boom)
    labels = {"method": "GET", "route": "/test/boom", "kind": "exception"}
    before = metrics.REGISTRY.get_sample_value("tenure_http_errors_total", labels) or 0.0
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/test/boom").status_code == 500
    assert metrics.REGISTRY.get_sample_value("tenure_http_errors_total", labels) == before + 1
    assert requests_seen("GET", "/test/boom", 500) >= 1


def test_5xx_answers_count_as_errors_and_4xx_do_not(settings: Settings, engine: Engine) -> None:
    def unavailable() -> JSONResponse:
        return JSONResponse({"status": "down"}, status_code=503)

    app = _app_with(settings, engine, "/test/unavailable", unavailable)
    errors = {"method": "GET", "route": "/test/unavailable", "kind": "status"}
    client_errors = {"method": "GET", "route": "/api/v1/customers", "kind": "status"}
    before = metrics.REGISTRY.get_sample_value("tenure_http_errors_total", errors) or 0.0
    before_4xx = metrics.REGISTRY.get_sample_value("tenure_http_errors_total", client_errors)
    with TestClient(app) as client:
        assert client.get("/test/unavailable").status_code == 503
        assert client.get("/api/v1/customers").status_code == 401
    assert metrics.REGISTRY.get_sample_value("tenure_http_errors_total", errors) == before + 1
    assert (
        metrics.REGISTRY.get_sample_value("tenure_http_errors_total", client_errors) == before_4xx
    )


def test_requests_in_flight_include_the_current_one(settings: Settings, engine: Engine) -> None:
    def in_flight() -> dict[str, float | None]:
        return {"n": metrics.REGISTRY.get_sample_value("tenure_http_requests_in_flight")}

    app = _app_with(settings, engine, "/test/in-flight", in_flight)
    with TestClient(app) as client:
        idle = metrics.REGISTRY.get_sample_value("tenure_http_requests_in_flight")
        assert client.get("/test/in-flight").json() == {"n": (idle or 0) + 1}
    assert metrics.REGISTRY.get_sample_value("tenure_http_requests_in_flight") == idle


def test_database_query_time_is_recorded(client: TestClient, admin: Headers) -> None:
    labels = {"operation": "SELECT"}
    count = "tenure_db_query_duration_seconds_count"
    before = metrics.REGISTRY.get_sample_value(count, labels) or 0.0
    assert client.get("/api/v1/customers", headers=admin).status_code == 200
    assert (metrics.REGISTRY.get_sample_value(count, labels) or 0.0) >= before + 2  # key + list


def test_prepared_statements_are_recorded_too(client: TestClient, admin: Headers) -> None:
    # A customer's read runs its statements straight on the driver (tenure.db.Prepared):
    # the credential, then the customer with their tags and order totals.
    customer = client.post("/api/v1/customers", json={"name": "Ann"}, headers=admin).json()
    labels = {"operation": "SELECT"}
    count = "tenure_db_query_duration_seconds_count"
    before = metrics.REGISTRY.get_sample_value(count, labels) or 0.0
    assert client.get(f"/api/v1/customers/{customer['id']}", headers=admin).status_code == 200
    assert (metrics.REGISTRY.get_sample_value(count, labels) or 0.0) >= before + 2


def test_business_gauges_count_customers_and_open_orders(
    client: TestClient, admin: Headers
) -> None:
    customers = [
        client.post("/api/v1/customers", json={"name": f"Ann {i}"}, headers=admin).json()
        for i in range(3)
    ]
    product = client.post(
        "/api/v1/products",
        json={"sku": "TEA-1", "name": "Tea", "unit_price": "4.50"},
        headers=admin,
    ).json()
    line = [{"product_id": product["id"], "quantity": 1}]
    for status in ("placed", "paid", "draft"):
        r = client.post(
            "/api/v1/orders",
            json={"customer_id": customers[0]["id"], "status": status, "lines": line},
            headers=admin,
        )
        assert r.status_code == 201, r.text
    trashed = customers[2]
    client.delete(
        f"/api/v1/customers/{trashed['id']}",
        headers={**admin, "If-Match": f'"{trashed["version"]}"'},
    )

    samples = scrape(client)
    assert value(samples, "tenure_customers") == 2
    assert value(samples, "tenure_orders_open") == 2
    assert value(samples, "tenure_build_info", version=__version__) == 1


def test_business_gauges_are_cached_between_scrapes(engine: Engine) -> None:
    collector = metrics.BusinessCollector(make_sessionmaker(engine), ttl=60)
    queries = "tenure_db_query_duration_seconds_count"
    list(collector.collect())
    before = metrics.REGISTRY.get_sample_value(queries, {"operation": "SELECT"})
    list(collector.collect())
    assert metrics.REGISTRY.get_sample_value(queries, {"operation": "SELECT"}) == before


@pytest.fixture
def token_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"metrics_token": SecretStr("scrape-me")})
    with TestClient(create_app(configured, engine=engine)) as c:
        yield c


def test_a_configured_token_is_required(token_client: TestClient) -> None:
    assert token_client.get("/metrics").status_code == 401
    wrong = token_client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "tenure_http_requests_total" not in wrong.text
    scrape(token_client, {"Authorization": "Bearer scrape-me"})


def test_without_a_token_metrics_are_open(client: TestClient) -> None:
    scrape(client)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_metrics_port_moves_metrics_off_the_main_port(settings: Settings, engine: Engine) -> None:
    port = _free_port()
    configured = settings.model_copy(
        update={"metrics_port": port, "metrics_token": SecretStr("scrape-me")}
    )
    server = metrics.start_metrics_server(configured, make_sessionmaker(engine))
    try:
        with TestClient(create_app(configured, engine=engine)) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/metrics").status_code == 404
        assert server.server_address[0] == "127.0.0.1"
        assert _get(f"http://127.0.0.1:{port}/metrics")[0] == 401
        status, body = _get(f"http://127.0.0.1:{port}/metrics", "scrape-me")
        assert status == 200
        assert 'tenure_http_requests_total{method="GET",route="/healthz",status="200"}' in body
        assert "tenure_customers 0.0" in body
        assert _get(f"http://127.0.0.1:{port}/other", "scrape-me")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
