"""Fixtures for the service desk: a customer with an order, agents, and ticket helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tenure.security import passwords

Headers = dict[str, str]
Login = Callable[..., Headers]
URL = "/api/v1/tickets"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing in is not what these tests are about; keep Argon2 cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def support(login: Login) -> Headers:
    return login("support")


def me(client: TestClient, headers: Headers) -> dict[str, Any]:
    r = client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def make_customer(client: TestClient, headers: Headers, name: str = "Ada Lovelace") -> int:
    r = client.post("/api/v1/customers", json={"name": name}, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def make_order(
    client: TestClient, headers: Headers, customer_id: int, category: str = "Tea"
) -> int:
    sku = f"SKU-{customer_id}-{category}"
    r = client.post(
        "/api/v1/products",
        json={"sku": sku, "name": f"{category} box", "unit_price": "9.50", "category": category},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/orders",
        json={"customer_id": customer_id, "lines": [{"product_id": r.json()["id"], "quantity": 1}]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def make_ticket(client: TestClient, headers: Headers, **fields: Any) -> dict[str, Any]:
    body = {
        "type": "complaint",
        "channel": "email",
        "subject": "The kettle leaks",
        "description": "Water on the counter after every use.",
        **fields,
    }
    r = client.post(URL, json=body, headers=headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created
