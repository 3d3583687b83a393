"""GET /customers?q='s shortcut: on SQLite it answers the search box's request (``q``,
perhaps ``limit`` and ``cursor``, from a caller who reaches every customer) exactly as
the route does, and leaves everything else to the route; elsewhere it never answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.requests import Request

from tenure.customers.api import _search_plainly

Headers = dict[str, str]
URL = "/api/v1/customers"


def _shortcut(client: TestClient, headers: Headers, query: str) -> Any:
    """What the shortcut answers to ``GET /customers?{query}``."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": URL,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "app": client.app,
        "state": {},
        "path_params": {},
    }
    return _search_plainly(Request(scope))


def _customers(client: TestClient, headers: Headers) -> list[dict[str, Any]]:
    made = []
    for i, name in enumerate(("Ada Lovelace", "Adam Smith", "Grace Adams", "Alan Turing")):
        body = {
            "name": name,
            "email": f"person{i}@example.com",
            "phone": f"+44 20 7946 000{i}",
            "address": {"line1": "1 High Street", "city": "London", "country": "GB"},
            "tags": ["vip", "b2b"] if i % 2 else [],
        }
        r = client.post(URL, json=body, headers=headers)
        assert r.status_code == 201, r.text
        made.append(r.json())
    return made


def test_the_shortcut_answers_as_the_route_does(
    client: TestClient, admin: Headers, engine: Engine
) -> None:
    _customers(client, admin)

    plain = client.get(f"{URL}?q=ad", headers=admin)
    declared = client.get(f"{URL}?q=ad&count=false", headers=admin)  # the route
    assert plain.status_code == declared.status_code == 200
    assert plain.json() == declared.json()
    assert [c["name"] for c in plain.json()["items"]] == [
        "Ada Lovelace",
        "Adam Smith",
        "Grace Adams",
    ]
    assert plain.json()["items"][1]["email"] == "p•••@example.com"
    assert plain.json()["items"][1]["tags"] == ["b2b", "vip"]
    assert plain.headers["content-type"] == declared.headers["content-type"]

    # Page by page, the cursors lead through the same customers.
    first = client.get(f"{URL}?q=ad&limit=2", headers=admin).json()
    assert first == client.get(f"{URL}?q=ad&limit=2&count=false", headers=admin).json()
    assert first["next_cursor"]
    after = f"q=ad&limit=2&cursor={quote(first['next_cursor'])}"
    second = client.get(f"{URL}?{after}", headers=admin).json()
    assert second == client.get(f"{URL}?{after}&count=false", headers=admin).json()
    assert [c["name"] for c in first["items"] + second["items"]] == [
        c["name"] for c in plain.json()["items"]
    ]
    assert second["next_cursor"] is None

    for query in ("q=ad", "q=ad&limit=2", after):
        answered = _shortcut(client, admin, query)
        if engine.dialect.name == "sqlite":
            assert answered is not None
            assert answered.body == client.get(f"{URL}?{query}", headers=admin).content
        else:  # a read on the event loop would wait for the network: the route answers
            assert answered is None


def _api_key(client: TestClient, headers: Headers) -> Headers:
    r = client.post("/api/v1/api-keys", json={"name": "Nightly"}, headers=headers)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


Ask = Callable[[TestClient, Headers, Callable[..., Headers]], Any]


def _asking(query: str) -> Ask:
    def ask(client: TestClient, admin: Headers, login: Callable[..., Headers]) -> Any:
        return _shortcut(client, admin, query)

    ask.__name__ = query or "nothing"
    return ask


def _key_use_due(client: TestClient, admin: Headers, login: Callable[..., Headers]) -> Any:
    return _shortcut(client, _api_key(client, admin), "q=ad")  # the route notes its use


def _unknown_token(client: TestClient, admin: Headers, login: Callable[..., Headers]) -> Any:
    return _shortcut(client, {"Authorization": "Bearer tnt_unknown"}, "q=ad")


def _no_credentials(client: TestClient, admin: Headers, login: Callable[..., Headers]) -> Any:
    return _shortcut(client, {}, "q=ad")


def _own_scope(client: TestClient, admin: Headers, login: Callable[..., Headers]) -> Any:
    return _shortcut(client, login("sales"), "q=ad")  # their own customers only


def _team_scope(client: TestClient, admin: Headers, login: Callable[..., Headers]) -> Any:
    return _shortcut(client, login("manager"), "q=ad")


@pytest.mark.parametrize(
    "ask",
    [
        _asking(""),  # a list, not a search
        _asking("q="),  # nothing to search for: the route explains
        _asking("q=" + "a" * 121),  # longer than the route takes
        _asking("q=ad&q=al"),
        _asking("q=ad&tag=vip"),  # a filter
        _asking("q=ad&count=true"),
        _asking("q=ad&sort=name"),
        _asking("q=ad&limit=0"),
        _asking("q=ad&limit=501"),
        _asking("q=ad&limit=ten"),
        _asking("q=ad&cursor=not-a-cursor"),
        _asking("q=person1%40example.com"),  # an email address: looked up exactly
        _asking("q=%2B44+20+7946+0001"),  # a phone number: looked up exactly
        _key_use_due,
        _unknown_token,
        _no_credentials,
        _own_scope,
        _team_scope,
    ],
)
def test_anything_but_the_search_box_is_left_to_the_route(
    client: TestClient, admin: Headers, login: Callable[..., Headers], ask: Ask
) -> None:
    _customers(client, admin)
    assert ask(client, admin, login) is None


@pytest.mark.parametrize(
    ("query", "status"),
    [("q=", 422), ("q=" + "a" * 121, 422), ("q=ad&limit=0", 422), ("q=ad&cursor=x", 400)],
)
def test_what_the_shortcut_leaves_gets_the_routes_answer(
    client: TestClient, admin: Headers, query: str, status: int
) -> None:
    r = client.get(f"{URL}?{query}", headers=admin)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_an_exact_email_search_still_finds_its_customer(client: TestClient, admin: Headers) -> None:
    made = _customers(client, admin)
    r = client.get(f"{URL}?q=person2%40example.com", headers=admin)
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["items"]] == [made[2]["id"]]
