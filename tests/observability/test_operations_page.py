"""The operations page and GET /api/v1/operations: request rate, error rate and latency
percentiles from stored samples of the request counters, the database's size, its schema
revision and the last backup; for administrators only."""

from __future__ import annotations

import html
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.app import create_app
from tenure.config import Settings
from tenure.core.time import utcnow
from tenure.db import unit_of_work
from tenure.observability import operations
from tenure.observability.models import MetricsSample
from tenure.observability.operations import Reading
from tenure.observability.sampler import Sampler
from tenure.ops import backup, migrate
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import ROLE_PERMISSIONS, Role
from tenure.web.i18n import Formatter
from tests.conftest import PASSWORD, MakeUser
from tests.conftest import web_sign_in as sign_in

KEEP = timedelta(days=7)
EN = Formatter("en")


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    """The application with one route that answers 500, to make known server errors.

    Sampling is set to every minute, but no background sampler runs: the clients below
    do not start the application's lifespan, so every sample is one a test takes."""
    app = create_app(settings.model_copy(update={"operations_sample_seconds": 60}), engine=engine)

    @app.get("/test-server-error")
    def server_error() -> Response:
        return Response("broken on purpose", status_code=500)

    return app


@pytest.fixture
def web(app: FastAPI) -> TestClient:
    return TestClient(app)


def bearer(client: TestClient, user: User) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def store(
    sessions: sessionmaker[Session], reading: Reading, at: datetime, source: str = "web-1"
) -> bool:
    with unit_of_work(sessions) as s:
        return operations.record_sample(
            session=s, source=source, reading=reading, at=at, slot_seconds=60, keep=KEEP
        )


def reading(requests: int, errors: int = 0, buckets: dict[str, int] | None = None) -> Reading:
    counts = buckets if buckets is not None else {"0.01": requests, "+Inf": requests}
    return Reading(requests, errors, counts, in_flight=0)


def cell(page: str, testid: str) -> str:
    found = re.search(rf'data-testid="{re.escape(testid)}">(.*?)</', page, re.DOTALL)
    assert found is not None, testid
    return html.unescape(found.group(1)).strip()


def chart_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="operations-data">(.*?)</script>', page)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def delta(after: Reading, before: Reading) -> dict[str, int]:
    return {le: n - before.buckets.get(le, 0) for le, n in after.buckets.items()}


def rows(sessions: sessionmaker[Session]) -> list[MetricsSample]:
    with sessions() as s:
        return list(s.scalars(select(MetricsSample).order_by(MetricsSample.taken_at)))


# --- figures from known traffic -----------------------------------------------------------


def test_the_page_and_the_api_show_the_rate_error_rate_and_percentiles_of_known_traffic(
    web: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    admin = make_user(Role.ADMIN)
    headers = bearer(web, admin)
    sign_in(web, admin)
    now = utcnow()
    before = operations.read_metrics()
    assert store(sessions, before, now - timedelta(seconds=61))

    for _ in range(40):
        assert web.get("/healthz").status_code == 200
    for _ in range(8):
        assert web.get("/test-server-error").status_code == 500
    for _ in range(2):
        assert web.get("/no-such-page").status_code == 404
    after = operations.read_metrics()
    assert store(sessions, after, now - timedelta(seconds=1))

    p50, p95, p99 = (
        round(operations.quantile(q, delta(after, before)) * 1000, 3)  # type: ignore[operator]
        for q in (0.5, 0.95, 0.99)
    )
    api = web.get("/api/v1/operations", headers=headers)
    assert api.status_code == 200, api.text
    body = api.json()
    expected = {
        "seconds": 60.0,
        "requests": 50,
        "errors": 8,
        "request_rate": pytest.approx(50 / 60),
        "error_rate": pytest.approx(0.16),
        "p50_ms": pytest.approx(p50),
        "p95_ms": pytest.approx(p95),
        "p99_ms": pytest.approx(p99),
    }
    for window in ("latest", "last_hour", "last_day"):
        figures = body[window]
        assert {k: figures[k] for k in expected} == expected, window
    [point] = body["series"]
    assert point["request_rate"] == pytest.approx(50 / 60)
    assert point["p95_ms"] == pytest.approx(p95)

    page = web.get("/admin/operations").text
    assert cell(page, "request-rate") == "0.83"
    assert cell(page, "error-rate") == "16%"
    assert cell(page, "p95") == EN.milliseconds(p95)
    assert cell(page, "latest-requests") == "50"
    assert cell(page, "hour-errors") == "8"
    assert cell(page, "day-request_rate") == "0.83"
    assert cell(page, "hour-p50_ms") == EN.milliseconds(p50)
    assert cell(page, "hour-p99_ms") == EN.milliseconds(p99)
    chart = chart_data(page)
    assert len(chart["labels"]) == 60
    rates, latencies = (series["values"] for series in chart["series"])
    assert [v for v in rates if v is not None] == [pytest.approx(50 / 60)]
    assert [v for v in latencies if v is not None] == [pytest.approx(p95)]


def test_the_sampler_stores_the_counters_once_per_slot(
    web: TestClient, sessions: sessionmaker[Session]
) -> None:
    before = operations.read_metrics()
    for _ in range(3):
        web.get("/healthz")
    sampler = Sampler(sessions, seconds=3600, keep=KEEP, source="web-1")

    assert sampler.sample() is True
    assert sampler.sample() is False  # the slot has its sample: another worker finds it there

    [row] = rows(sessions)
    assert (row.source, row.requests - before.requests) == ("web-1", 3)
    assert row.slot == operations.slot_of(row.taken_at, 3600)
    assert sum(delta(Reading(0, 0, row.buckets, 0), before).values()) >= 3


def test_the_first_worker_to_store_a_slots_sample_wins(sessions: sessionmaker[Session]) -> None:
    at = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)

    assert store(sessions, reading(10), at) is True
    assert store(sessions, reading(12), at + timedelta(seconds=1)) is False
    assert store(sessions, reading(12), at, source="web-2") is True  # another host

    assert [(r.source, r.requests) for r in rows(sessions)] == [("web-1", 10), ("web-2", 12)]


def test_samples_older_than_the_retention_are_dropped(sessions: sessionmaker[Session]) -> None:
    at = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    store(sessions, reading(1), at - KEEP - timedelta(minutes=1))
    store(sessions, reading(2), at - KEEP + timedelta(minutes=1))

    store(sessions, reading(3), at)

    assert [r.requests for r in rows(sessions)] == [2, 3]


def test_the_sampler_runs_with_the_application(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    app = create_app(settings.model_copy(update={"operations_sample_seconds": 60}), engine=engine)

    with TestClient(app):
        deadline = time.monotonic() + 10
        while not rows(sessions) and time.monotonic() < deadline:
            time.sleep(0.05)

    [row] = rows(sessions)
    assert row.source == operations.source_name()


# --- how figures are computed -------------------------------------------------------------


def test_percentiles_are_interpolated_inside_their_bucket() -> None:
    buckets = {"0.01": 50, "0.1": 90, "1.0": 100, "+Inf": 100}

    assert operations.quantile(0.50, buckets) == pytest.approx(0.01)
    assert operations.quantile(0.95, buckets) == pytest.approx(0.55)
    assert operations.quantile(0.99, buckets) == pytest.approx(0.91)
    assert operations.quantile(0.25, buckets) == pytest.approx(0.005)


def test_a_percentile_beyond_the_largest_bucket_is_that_bucket_and_none_without_requests() -> None:
    assert operations.quantile(0.5, {"0.1": 0, "10.0": 0, "+Inf": 4}) == 10.0
    assert operations.quantile(0.5, {"0.1": 0, "+Inf": 0}) is None


def test_a_restart_counts_from_zero_again(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    store(sessions, reading(100, 1), now - timedelta(seconds=121))
    store(sessions, reading(160, 4), now - timedelta(seconds=61))
    store(sessions, reading(30, 0), now - timedelta(seconds=1))  # counters reset

    with sessions() as s:
        result = operations.overview(session=s, settings=Settings(), now=now)

    assert result.last_hour is not None
    assert (result.last_hour.requests, result.last_hour.errors) == (90, 3)
    assert result.last_hour.request_rate == pytest.approx(90 / 120)
    assert result.latest is not None
    assert result.latest.requests == 30
    assert result.latest.request_rate == pytest.approx(0.5)


def test_percentiles_count_from_a_first_sample_taken_before_any_request(
    sessions: sessionmaker[Session],
) -> None:
    now = utcnow()
    store(sessions, reading(0, buckets={}), now - timedelta(seconds=61))
    store(sessions, reading(10, buckets={"0.01": 5, "0.1": 10, "+Inf": 10}), now)

    with sessions() as s:
        result = operations.overview(session=s, settings=Settings(), now=now)

    assert result.latest is not None
    assert result.latest.p50_ms == 10.0
    assert result.latest.p99_ms == pytest.approx(98.2)


def test_hosts_serving_side_by_side_add_up(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    for source, (first, second) in {"web-1": (0, 60), "web-2": (1000, 1120)}.items():
        store(sessions, reading(first), now - timedelta(seconds=61), source=source)
        store(sessions, reading(second), now - timedelta(seconds=1), source=source)

    with sessions() as s:
        result = operations.overview(session=s, settings=Settings(), now=now)

    assert result.latest is not None
    assert result.latest.requests == 180
    assert result.latest.request_rate == pytest.approx(3.0)


def test_without_a_recent_sample_the_latest_figures_are_stale(
    web: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    hour_ago = utcnow() - timedelta(minutes=50)
    store(sessions, reading(0), hour_ago - timedelta(minutes=1))
    store(sessions, reading(120), hour_ago)
    sign_in(web, make_user(Role.ADMIN))

    page = web.get("/admin/operations").text

    assert "No sample since" in cell(page, "stale")
    assert cell(page, "request-rate") == "—"
    assert cell(page, "hour-requests") == "120"
    assert cell(page, "hour-request_rate") == "2"


def test_before_any_sample_the_page_says_figures_are_coming(
    web: TestClient, make_user: MakeUser
) -> None:
    sign_in(web, make_user(Role.ADMIN))

    page = web.get("/admin/operations").text

    assert "No figures yet" in page
    assert "No figures for the last hour yet." in page
    assert cell(page, "hour-requests") == "—"


# --- the database, its schema and its backups ---------------------------------------------


def test_the_database_size_and_schema_revision_are_shown(
    web: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    admin = make_user(Role.ADMIN)
    headers = bearer(web, admin)
    sign_in(web, admin)

    body = web.get("/api/v1/operations", headers=headers).json()
    page = web.get("/admin/operations").text

    head = migrate.head()
    assert body["revision"] == {"current": head, "latest": head, "up_to_date": True}
    assert cell(page, "schema-revision").startswith(f"{head}\n")
    assert '<span class="badge active">latest</span>' in page
    kind = engine.dialect.name
    assert body["database"]["kind"] == kind
    size = body["database"]["size_bytes"]
    if kind == "sqlite":
        path = engine.url.database
        assert path is not None
        on_disk = [os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)]
        assert size == pytest.approx(sum(on_disk), rel=0.1)
    else:
        with engine.connect() as conn:
            exact = conn.scalar(select(func.pg_database_size(func.current_database())))
        assert size == pytest.approx(exact, rel=0.1)
    assert re.fullmatch(r"[\d.,]+ (kB|MB|GB)", cell(page, "database-size"))
    assert cell(page, "database-kind") == {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[kind]


def test_a_schema_behind_the_latest_revision_says_to_upgrade(
    web: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(web, make_user(Role.ADMIN))
    monkeypatch.setattr(operations, "_latest_revision", lambda: "9999")

    page = web.get("/admin/operations").text

    assert "behind 9999: run tenure upgrade" in cell(page, "schema-revision")


def test_last_backup_is_never_until_a_backup_is_made_then_shown(
    web: TestClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = make_user(Role.ADMIN)
    headers = bearer(web, admin)
    sign_in(web, admin)
    assert web.get("/api/v1/operations", headers=headers).json()["last_backup"] is None
    assert cell(web.get("/admin/operations").text, "last-backup").startswith("Never")

    path, manifest = backup.create(settings)

    body = web.get("/api/v1/operations", headers=headers).json()
    assert body["last_backup"] == {
        "created_at": manifest.created_at.isoformat().replace("+00:00", "Z"),
        "file": path.name,
        "problem": None,
    }
    shown = cell(web.get("/admin/operations").text, "last-backup")
    assert shown.startswith(EN.datetime(manifest.created_at))
    assert path.name in shown
    assert "Never" not in shown


# --- who sees it --------------------------------------------------------------------------


def test_only_admins_have_the_permission() -> None:
    assert [r for r, perms in ROLE_PERMISSIONS.items() if "operations:read" in perms] == [
        Role.ADMIN
    ]


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.ADMIN])
def test_others_get_403_and_no_link(web: TestClient, make_user: MakeUser, role: Role) -> None:
    user = make_user(role)
    headers = bearer(web, user)
    sign_in(web, user)

    assert web.get("/admin/operations").status_code == 403
    api = web.get("/api/v1/operations", headers=headers)
    assert api.status_code == 403
    assert api.json()["type"] == "urn:tenure:problem:permission-denied"
    assert "/admin/operations" not in web.get("/").text


def test_an_admin_has_the_link_in_the_navigation(web: TestClient, make_user: MakeUser) -> None:
    sign_in(web, make_user(Role.ADMIN))

    page = web.get("/admin/operations").text

    assert '<a href="/admin/operations" aria-current="page">Operations</a>' in page
    assert '<a href="/admin/users" >Users</a>' in page


def test_signed_out_the_page_asks_to_sign_in(web: TestClient) -> None:
    r = web.get("/admin/operations", follow_redirects=False)

    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")


def test_the_refresh_answers_only_the_figures(web: TestClient, make_user: MakeUser) -> None:
    sign_in(web, make_user(Role.ADMIN))

    fragment = web.get("/admin/operations", headers={"HX-Request": "true"}).text

    assert 'data-testid="hour-requests"' in fragment
    assert "<nav" not in fragment


@pytest.fixture
def chinese_admin(make_user: MakeUser, sessions: sessionmaker[Session]) -> Iterator[User]:
    user = make_user(Role.ADMIN)
    with unit_of_work(sessions) as s:
        found = s.get(User, user.id)
        assert found is not None
        security_service.set_locale(session=s, user=found, locale="zh_CN")
    yield user


def test_the_page_in_chinese(
    web: TestClient, chinese_admin: User, sessions: sessionmaker[Session]
) -> None:
    now = utcnow()
    store(sessions, reading(0), now - timedelta(seconds=61))
    store(sessions, reading(1500, 3), now - timedelta(seconds=1))
    sign_in(web, chinese_admin)

    page = web.get("/admin/operations").text

    assert "<h1>运维</h1>" in page
    assert cell(page, "latest-requests") == "1,500"
    assert cell(page, "error-rate") == "0.2%"
    assert cell(page, "last-backup").startswith("从未")
    assert "Requests" not in page
