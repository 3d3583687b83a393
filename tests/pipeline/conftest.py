"""Fixtures for the pipeline, interactions and timeline tests: the default stages (the
migration seeds them; the tables are emptied between tests), cheap sign-ins, and helpers
that act through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tenure.catalog import service as catalog_service
from tenure.catalog.schemas import ProductCreate
from tenure.db import unit_of_work
from tenure.pipeline import service as pipeline_service
from tenure.security import passwords

Headers = dict[str, str]


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing in is not what these tests are about; keep Argon2 cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def stages(sessions: sessionmaker[Session]) -> dict[str, int]:
    """The default stages, by name."""
    with unit_of_work(sessions) as s:
        return {st.name: st.id for st in pipeline_service.seed_default_stages(session=s)}


@pytest.fixture
def product(sessions: sessionmaker[Session]) -> int:
    with unit_of_work(sessions) as s:
        data = ProductCreate(sku="SVC-1", name="Consulting day", unit_price="800.00")
        return catalog_service.create(session=s, data=data).id


class Api:
    """Calls as one signed-in user."""

    def __init__(self, client: TestClient, headers: Headers) -> None:
        self.client = client
        self.headers = headers
        self.user_id: int = client.get("/api/v1/auth/me", headers=headers).json()["id"]

    def customer(self, name: str = "Ada Lovelace", **fields: Any) -> int:
        r = self.client.post(
            "/api/v1/customers", json={"name": name, **fields}, headers=self.headers
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def opportunity(self, customer_id: int, **fields: Any) -> dict[str, Any]:
        body = {"customer_id": customer_id, "title": "Rollout", "amount": "1000.00", **fields}
        r = self.client.post("/api/v1/opportunities", json=body, headers=self.headers)
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    def get(self, url: str, **params: Any) -> Any:
        r = self.client.get(url, params=params, headers=self.headers)
        assert r.status_code == 200, r.text
        return r.json()


MakeApi = Callable[[str], Api]


@pytest.fixture
def api(client: TestClient, login: Callable[..., Headers]) -> MakeApi:
    """``api("sales")``: a new user of that role, signed in."""

    def make(role: str = "admin", **kwargs: Any) -> Api:
        return Api(client, login(role, **kwargs))

    return make
