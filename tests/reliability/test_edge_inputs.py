"""Inputs at the edges that fuzzing found answered 500, or could only find by luck: each
is refused as invalid input (422, problem+json) and leaves nothing behind."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Headers

TOO_BIG_IDS = [2**31, 2**63, 10**30]  # ids are INTEGER columns: 32-bit on PostgreSQL


def _refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in r.json()["detail"], r.json()


@pytest.mark.parametrize("big", TOO_BIG_IDS)
@pytest.mark.parametrize(
    "method,path,field",
    [
        ("GET", "/api/v1/customers/{id}", "customer_id"),
        ("PATCH", "/api/v1/customers/{id}", "customer_id"),
        ("DELETE", "/api/v1/orders/{id}", "order_id"),
        ("POST", "/api/v1/products/{id}/restore", "product_id"),
        ("GET", "/api/v1/users/{id}", "user_id"),
        ("DELETE", "/api/v1/api-keys/{id}", "key_id"),
        ("GET", "/api/v1/orders?customer_id={id}", "customer_id"),
        ("GET", "/api/v1/customers?owner_id={id}", "owner_id"),
        ("GET", "/api/v1/audit?actor_id={id}", "actor_id"),
    ],
)
def test_an_id_beyond_a_database_integer_is_invalid_input(
    client: TestClient, admin: Headers, method: str, path: str, field: str, big: int
) -> None:
    body: dict[str, Any] | None = {} if method == "PATCH" else None
    _refused(client.request(method, path.format(id=big), json=body, headers=admin), field)


@pytest.mark.parametrize(
    "field,body",
    [
        ("customer_id", {"customer_id": 2**31, "lines": [{"product_id": 1, "quantity": 1}]}),
        ("product_id", {"customer_id": 1, "lines": [{"product_id": 2**63, "quantity": 1}]}),
    ],
)
def test_an_order_naming_an_impossible_id_is_invalid_input(
    client: TestClient, admin: Headers, field: str, body: dict[str, Any]
) -> None:
    _refused(client.post("/api/v1/orders", json=body, headers=admin), field)


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_time_beyond_the_calendar_in_utc_is_invalid_input(
    client: TestClient, admin: Headers, moment: str
) -> None:
    customer = client.post("/api/v1/customers", json={"name": "Ann"}, headers=admin).json()
    product = client.post(
        "/api/v1/products", json={"sku": "P-1", "name": "P", "unit_price": "1"}, headers=admin
    ).json()
    order = {
        "customer_id": customer["id"],
        "ordered_at": moment,
        "lines": [{"product_id": product["id"], "quantity": 1}],
    }
    _refused(client.post("/api/v1/orders", json=order, headers=admin), "ordered_at")
    assert client.get("/api/v1/orders", headers=admin).json()["items"] == []
    _refused(client.get("/api/v1/audit", params={"since": moment}, headers=admin), "since")


def test_a_time_without_an_offset_is_utc_and_answered_so(
    client: TestClient, admin: Headers
) -> None:
    customer = client.post("/api/v1/customers", json={"name": "Ann"}, headers=admin).json()
    product = client.post(
        "/api/v1/products", json={"sku": "P-1", "name": "P", "unit_price": "1"}, headers=admin
    ).json()
    order = {
        "customer_id": customer["id"],
        "ordered_at": "2026-03-01T12:00:00",
        "lines": [{"product_id": product["id"], "quantity": 1}],
    }
    created = client.post("/api/v1/orders", json=order, headers=admin).json()
    assert created["ordered_at"] == "2026-03-01T12:00:00Z"
    assert client.get(f"/api/v1/orders/{created['id']}", headers=admin).json() == created


def test_custom_attributes_beyond_64_bit_numbers_are_invalid_input(
    client: TestClient, admin: Headers
) -> None:
    body = {"name": "Ann", "custom": {"big": 2**64}}
    _refused(client.post("/api/v1/customers", json=body, headers=admin), "custom")
    assert client.get("/api/v1/customers", headers=admin).json()["items"] == []


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/v1/customers", {"name": "Ann\u0000Lee"}),
        ("/api/v1/customers", {"name": "Ann", "custom": {"note": "a\u0000b"}}),
        ("/api/v1/auth/login", {"email": "a\u0000@example.com", "password": "whatever-it-is"}),
    ],
)
def test_a_nul_character_in_text_is_never_a_server_error(
    client: TestClient, admin: Headers, path: str, body: dict[str, Any]
) -> None:
    """PostgreSQL stores no NUL in text: refused there (422); SQLite keeps it as sent."""
    r = client.post(path, json=body, headers=admin)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.status_code in (401, 422)
