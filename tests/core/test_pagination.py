"""Cursor pagination: complete walks for every sort, limits, counts and bad cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.app import create_app
from tenure.config import Settings
from tenure.core.errors import BadCursor
from tenure.core.pagination import decode_cursor, encode_cursor
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate
from tenure.db import unit_of_work
from tenure.security import passwords
from tenure.security.scope import EVERYTHING

URL = "/api/v1/customers"
CROWD = 120
Headers = dict[str, str]


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing in is not what these tests are about; keep Argon2 cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.fixture
def crowd(make_user: Any, sessions: sessionmaker[Session]) -> list[tuple[int, str, datetime]]:
    """120 customers whose names and creation times repeat and run against the id order."""
    owner = make_user("sales")
    base = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    with unit_of_work(sessions) as s:
        for i in range(CROWD):
            customer = customers_service.create(
                scope=EVERYTHING,
                session=s,
                data=CustomerCreate(name=f"Customer {(i * 37) % 40:02d}", source=f"s{i % 3}"),
                actor=owner,
            )
            customer.created_at = base + timedelta(minutes=(i * 7) % 9)
    with sessions() as s:
        rows = s.execute(select(Customer.id, Customer.name_sort, Customer.created_at)).all()
    return [(r[0], r[1], r[2]) for r in rows]


def _walk(client: TestClient, headers: Headers, **params: Any) -> list[list[int]]:
    pages: list[list[int]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get(URL, params=query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "the walk does not end"


SORT_KEYS = {
    "id": lambda row: (row[0],),
    "name": lambda row: (row[1], row[0]),
    "created_at": lambda row: (row[2], row[0]),
}


@pytest.mark.parametrize("sort", ["id", "-id", "name", "-name", "created_at", "-created_at"])
def test_walking_the_pages_visits_every_customer_once_in_order(
    client: TestClient, admin: Headers, crowd: list[tuple[int, str, datetime]], sort: str
) -> None:
    pages = _walk(client, admin, sort=sort, limit=50)

    assert [len(p) for p in pages] == [50, 50, 20]
    walked = [cid for page in pages for cid in page]
    expected = [row[0] for row in sorted(crowd, key=SORT_KEYS[sort.lstrip("-")])]
    if sort.startswith("-"):
        expected.reverse()
    assert walked == expected


def test_crowd_really_has_ties_to_break(crowd: list[tuple[int, str, datetime]]) -> None:
    assert len({row[1] for row in crowd}) == 40
    assert len({row[2] for row in crowd}) == 9


def test_default_order_is_newest_first(
    client: TestClient, admin: Headers, crowd: list[tuple[int, str, datetime]]
) -> None:
    walked = [cid for page in _walk(client, admin, limit=50) for cid in page]
    assert walked == sorted((row[0] for row in crowd), reverse=True)


def test_a_filtered_walk_stays_within_the_filter(
    client: TestClient, admin: Headers, crowd: list[tuple[int, str, datetime]]
) -> None:
    pages = _walk(client, admin, source="s1", sort="name", limit=7)
    walked = [cid for page in pages for cid in page]
    with_s1 = [row for i, row in enumerate(sorted(crowd)) if i % 3 == 1]
    assert walked == [row[0] for row in sorted(with_s1, key=SORT_KEYS["name"])]
    assert [len(p) for p in pages] == [7, 7, 7, 7, 7, 5]


@pytest.mark.parametrize("limit", [0, -1, 501])
def test_a_limit_out_of_range_is_refused(client: TestClient, admin: Headers, limit: int) -> None:
    r = client.get(URL, params={"limit": limit}, headers=admin)

    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in r.json()["errors"]] == [["query", "limit"]]


def test_the_largest_limit_is_accepted(
    client: TestClient, admin: Headers, crowd: list[tuple[int, str, datetime]]
) -> None:
    r = client.get(URL, params={"limit": 500}, headers=admin)

    assert r.status_code == 200
    assert len(r.json()["items"]) == CROWD
    assert r.json()["next_cursor"] is None


def test_an_unknown_sort_is_refused(client: TestClient, admin: Headers) -> None:
    r = client.get(URL, params={"sort": "password"}, headers=admin)

    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["loc"] == ["query", "sort"]


def test_a_list_has_no_total_unless_asked(
    client: TestClient, admin: Headers, crowd: list[tuple[int, str, datetime]]
) -> None:
    body = client.get(URL, params={"limit": 10}, headers=admin).json()

    assert body["total"] is None
    assert body["total_capped"] is None


def test_count_returns_the_exact_total_below_the_cap(
    client: TestClient, admin: Headers, crowd: list[tuple[int, str, datetime]]
) -> None:
    body = client.get(URL, params={"limit": 10, "count": "true"}, headers=admin).json()

    assert len(body["items"]) == 10
    assert (body["total"], body["total_capped"]) == (CROWD, False)


@pytest.fixture
def capped_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"count_cap": 5}), engine=engine)
    with TestClient(app) as c:
        yield c


def test_count_stops_at_the_cap(
    capped_client: TestClient, admin: Headers, crowd: list[tuple[int, str, datetime]]
) -> None:
    body = capped_client.get(URL, params={"limit": 10, "count": "true"}, headers=admin).json()

    assert len(body["items"]) == 10
    assert (body["total"], body["total_capped"]) == (5, True)


def test_count_at_the_cap_is_not_capped(
    capped_client: TestClient, admin: Headers, crowd: list[tuple[int, str, datetime]]
) -> None:
    # "Customer 00" .. "Customer 04" exist three times each; one name at a time is 3 rows.
    r = capped_client.get(URL, params={"q": "customer 00", "count": "true"}, headers=admin)

    assert (r.json()["total"], r.json()["total_capped"]) == (3, False)


@pytest.mark.parametrize(
    "garbage",
    [
        "!!!",
        "not a cursor",
        "é",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _cursor({"id": 1}),  # type: ignore[arg-type]
        _cursor("id"),  # type: ignore[arg-type]
    ],
)
def test_decoding_garbage_raises_bad_cursor(garbage: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(garbage)


def test_cursors_round_trip() -> None:
    values = ["-created_at", "2024-03-01T09:00:00+00:00", 42]
    assert decode_cursor(encode_cursor(values)) == values


def _assert_bad_cursor(client: TestClient, headers: Headers, **params: Any) -> None:
    r = client.get(URL, params=params, headers=headers)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:tenure:problem:bad-cursor"
    assert r.json()["status"] == 400


def test_a_garbage_cursor_answers_400(client: TestClient, admin: Headers) -> None:
    _assert_bad_cursor(client, admin, cursor="garbage!")


def test_a_cursor_from_another_sort_answers_400(
    client: TestClient, admin: Headers, crowd: list[tuple[int, str, datetime]]
) -> None:
    cursor = client.get(URL, params={"sort": "name", "limit": 5}, headers=admin).json()[
        "next_cursor"
    ]
    assert cursor is not None

    _assert_bad_cursor(client, admin, sort="created_at", cursor=cursor)


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        ("created_at", ["created_at", "not a time", 1]),
        ("-created_at", ["-created_at", "9999-12-31T23:00:00-14:00", 1]),
        ("name", ["name", 17, 1]),
        ("id", ["id", "1", 1]),
        ("id", ["id", 1, "1"]),
        ("id", ["id", 1]),
        ("id", ["id", 2**64 - 1, 1]),
        ("id", ["id", 1, 2**64 - 1]),
        ("name", ["name", "customer", -(2**63) - 1]),
    ],
)
def test_a_tampered_cursor_answers_400(
    client: TestClient, admin: Headers, sort: str, values: list[Any]
) -> None:
    _assert_bad_cursor(client, admin, sort=sort, cursor=_cursor(values))


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        ("id", ["id", 2**40, 2**40]),
        ("-id", ["-id", -(2**40), -(2**40)]),
        ("name", ["name", "\U0010ffff", 2**62]),
        ("created_at", ["created_at", "2999-01-01T00:00:00+00:00", 2**62]),
    ],
)
def test_a_cursor_past_the_end_gives_an_empty_last_page(
    client: TestClient,
    admin: Headers,
    crowd: list[tuple[int, str, datetime]],
    sort: str,
    values: list[Any],
) -> None:
    r = client.get(URL, params={"sort": sort, "cursor": _cursor(values)}, headers=admin)

    assert r.status_code == 200, r.text
    assert (r.json()["items"], r.json()["next_cursor"]) == ([], None)
