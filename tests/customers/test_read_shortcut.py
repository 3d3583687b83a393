"""GET /customers/{id}'s shortcut: on SQLite it answers a plain read (a live credential
whose use need not be noted, a role that reaches the customer without a team lookup, no
options) exactly as the route does, and leaves everything else to the route; elsewhere it
never answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.requests import Request

from tenure.app import create_app
from tenure.config import Settings
from tenure.customers.api import _read_plainly

Headers = dict[str, str]
URL = "/api/v1/customers"


def _shortcut(client: TestClient, customer_id: int | str, headers: Headers, query: str = "") -> Any:
    """What the shortcut answers to ``GET /customers/{customer_id}?{query}``."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": f"{URL}/{customer_id}",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "app": client.app,
        "state": {},
        "path_params": {"customer_id": str(customer_id)},
    }
    return _read_plainly(Request(scope))


def _customer(client: TestClient, headers: Headers) -> dict[str, Any]:
    body = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+44 20 7946 0000",
        "address": {"line1": "12 St James's Square", "city": "London", "country": "GB"},
        "tags": ["vip", "b2b"],
    }
    r = client.post(URL, json=body, headers=headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def test_the_shortcut_answers_as_the_route_does(
    client: TestClient, admin: Headers, engine: Engine
) -> None:
    customer = _customer(client, admin)
    product = client.post(
        "/api/v1/products",
        json={"sku": "SKU-1", "name": "Widget", "unit_price": "9.50", "currency": "EUR"},
        headers=admin,
    ).json()
    r = client.post(
        "/api/v1/orders",
        json={
            "customer_id": customer["id"],
            "currency": "EUR",
            "status": "placed",
            "lines": [{"product_id": product["id"], "quantity": 2}],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text

    plain = client.get(f"{URL}/{customer['id']}", headers=admin)
    declared = client.get(f"{URL}/{customer['id']}?reveal=false", headers=admin)  # the route
    assert plain.status_code == declared.status_code == 200
    assert plain.json() == declared.json()
    assert plain.json()["summary"]["order_count"] == 1
    assert plain.json()["tags"] == ["b2b", "vip"]  # in order, from the same statement
    assert plain.headers["etag"] == declared.headers["etag"]
    assert plain.headers["content-type"] == declared.headers["content-type"]

    key = _api_key(client, admin)
    assert client.get(f"{URL}/{customer['id']}", headers=key).json() == plain.json()
    for headers in (admin, key):  # a sign-in token; an API key whose use was just noted
        answered = _shortcut(client, customer["id"], headers)
        if engine.dialect.name == "sqlite":
            assert answered is not None
            assert answered.body == plain.content
            assert answered.headers["etag"] == plain.headers["etag"]
        else:  # a read on the event loop would wait for the network: the route answers
            assert answered is None


Ask = Callable[[TestClient, dict[str, Any], Headers, Callable[..., Headers]], Any]


def _with_query(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    return _shortcut(client, c["id"], admin, "reveal=true")


def _api_key(client: TestClient, headers: Headers) -> Headers:
    r = client.post("/api/v1/api-keys", json={"name": "Nightly"}, headers=headers)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


def _key_use_due(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    return _shortcut(client, c["id"], _api_key(client, admin))  # never used: the route notes it


def _revoked_key(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    key = _api_key(client, admin)
    assert client.get(f"{URL}/{c['id']}", headers=key).status_code == 200  # use noted
    key_id = client.get("/api/v1/api-keys", headers=admin).json()[-1]["id"]
    assert client.delete(f"/api/v1/api-keys/{key_id}", headers=admin).status_code == 204
    return _shortcut(client, c["id"], key)


def _unknown_token(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    return _shortcut(client, c["id"], {"Authorization": "Bearer tnt_unknown"})


def _no_credentials(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    return _shortcut(client, c["id"], {})


def _signed_out(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    headers = login("support")
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    return _shortcut(client, c["id"], headers)


def _signed_out_after_use(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    headers = login("support")
    assert _shortcut(client, c["id"], headers) is not None or not _sqlite(client)
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    return _shortcut(client, c["id"], headers)


def _sqlite(client: TestClient) -> bool:
    return bool(client.app.state.inline_reads)  # type: ignore[attr-defined]


def _team_scope(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    return _shortcut(client, c["id"], login("manager"))


def _not_theirs(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    return _shortcut(client, c["id"], login("sales"))  # the admin's customer


def _missing(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    return _shortcut(client, c["id"] + 1000, admin)


def _not_an_id(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    return _shortcut(client, "\uff11\uff12", admin)  # digits, but not ASCII ones


def _trashed(client: TestClient, c: dict[str, Any], admin: Headers, login: Any) -> Any:
    assert client.delete(f"{URL}/{c['id']}", headers=admin).status_code == 204
    return _shortcut(client, c["id"], admin)


@pytest.mark.parametrize(
    "ask",
    [
        _with_query,
        _key_use_due,
        _revoked_key,
        _unknown_token,
        _no_credentials,
        _signed_out,
        _signed_out_after_use,
        _team_scope,
        _not_theirs,
        _missing,
        _not_an_id,
        _trashed,
    ],
)
def test_anything_but_a_plain_read_is_left_to_the_route(
    client: TestClient, admin: Headers, login: Callable[..., Headers], ask: Ask
) -> None:
    customer = _customer(client, admin)
    assert ask(client, customer, admin, login) is None


def test_the_app_gives_back_the_connection_its_shortcuts_read_on_when_it_stops(
    client: TestClient, admin: Headers, settings: Settings, engine: Engine
) -> None:
    customer = _customer(client, admin)
    before = engine.pool.checkedout()  # type: ignore[attr-defined]
    held = 1 if engine.dialect.name == "sqlite" else 0  # elsewhere the route answers

    with TestClient(create_app(settings, engine=engine)) as other:
        for _ in range(3):
            assert other.get(f"{URL}/{customer['id']}", headers=admin).status_code == 200
        assert engine.pool.checkedout() == before + held  # type: ignore[attr-defined]

    assert engine.pool.checkedout() == before  # type: ignore[attr-defined]
