"""Analytics and record scope: what names customers (per-customer results, their lists,
recommendations, the customers export) shows only the caller's customers; aggregates over
the whole base are the same for everyone who reads analytics."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tenure.analytics import run as analytics_run
from tenure.customers.models import Customer
from tenure.db import unit_of_work
from tenure.security import passwords
from tenure.security import service as security_service
from tenure.security.permissions import Role
from tenure.security.schemas import TeamCreate
from tests.analytics.conftest import AS_OF, Bought, Shop, simulate
from tests.conftest import PASSWORD, MakeUser

Headers = dict[str, str]
URL = "/api/v1/analytics"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@dataclass
class Base:
    """A run over simulated shoppers: a few owned by the north team (a manager and a rep),
    a few by the south team's rep, the rest by no one."""

    manager: Headers
    analyst: Headers
    north: set[int]  # customer ids
    south: set[int]
    buyers: set[int]


@pytest.fixture
def base(
    client: TestClient, make_user: MakeUser, shop: Shop, sessions: sessionmaker[Session]
) -> Base:
    bought: Bought = simulate(shop, 300, seed=7)
    with unit_of_work(sessions) as s:
        north = security_service.create_team(session=s, data=TeamCreate(name="North")).id
        south = security_service.create_team(session=s, data=TeamCreate(name="South")).id

    def person(role: Role, team: int | None) -> tuple[int, Headers]:
        user = make_user(role)
        if team is not None:
            with unit_of_work(sessions) as s:
                found = security_service.get_user(session=s, user_id=user.id)
                security_service.set_team(session=s, user=found, team_id=team)
        r = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
        return user.id, {"Authorization": f"Bearer {r.json()['access_token']}"}

    manager_id, manager = person(Role.MANAGER, north)
    rep_id, _ = person(Role.SALES, north)
    outsider_id, _ = person(Role.SALES, south)
    _, analyst = person(Role.ANALYST, None)
    buyers = sorted(c for c in bought.orders if bought.days(c))
    owners = {manager_id: buyers[0:3], rep_id: buyers[3:6], outsider_id: buyers[6:10]}
    with unit_of_work(sessions) as s:
        for owner, ids in owners.items():
            s.execute(update(Customer).where(Customer.id.in_(ids)).values(owner_id=owner))
    with unit_of_work(sessions, write=False) as s:
        computed = analytics_run.compute(
            session=s,
            options=analytics_run.RunOptions(
                as_of=AS_OF, churn_horizon_days=60, min_support=0.05, min_confidence=0.3
            ),
            today=date(2024, 7, 1),
        )
    assert computed.skipped == {}
    with unit_of_work(sessions) as s:
        analytics_run.save(session=s, computed=computed)
    return Base(
        manager=manager,
        analyst=analyst,
        north=set(buyers[0:6]),
        south=set(buyers[6:10]),
        buyers=set(buyers),
    )


def _listed(client: TestClient, headers: Headers) -> dict[str, set[int]]:
    """The customer ids of every per-customer list, as ``headers``' caller sees them."""
    rfm = client.get(f"{URL}/rfm?limit=500", headers=headers).json()["items"]
    clv = client.get(f"{URL}/clv?limit=500", headers=headers).json()["top"]
    churn = client.get(f"{URL}/churn?limit=500", headers=headers).json()["at_risk"]
    export = client.get(f"{URL}/export/customers.csv", headers=headers)
    assert export.status_code == 200
    rows = csv.DictReader(io.StringIO(export.text))
    return {
        "rfm": {c["customer_id"] for c in rfm},
        "clv": {c["customer_id"] for c in clv},
        "churn": {c["customer_id"] for c in churn},
        "export": {int(row["customer_id"]) for row in rows},
    }


def test_a_manager_lists_only_their_teams_customers(client: TestClient, base: Base) -> None:
    listed = _listed(client, base.manager)

    assert listed == dict.fromkeys(listed, base.north)


def test_a_list_filtered_by_segment_stays_in_scope(client: TestClient, base: Base) -> None:
    everyone = client.get(f"{URL}/rfm?limit=500", headers=base.analyst).json()["items"]
    segment = next(c["segment"] for c in everyone if c["customer_id"] in base.north)

    r = client.get(f"{URL}/rfm", params={"segment": segment, "limit": 500}, headers=base.manager)

    expected = {
        c["customer_id"]
        for c in everyone
        if c["segment"] == segment and c["customer_id"] in base.north
    }
    assert {c["customer_id"] for c in r.json()["items"]} == expected


def test_a_manager_opens_their_teams_customer(client: TestClient, base: Base) -> None:
    customer_id = min(base.north)

    r = client.get(f"{URL}/customers/{customer_id}", headers=base.manager)
    assert r.status_code == 200
    assert r.json()["customer_id"] == customer_id
    r = client.get(f"{URL}/customers/{customer_id}/recommendations", headers=base.manager)
    assert r.status_code == 200


@pytest.mark.parametrize("customer", ["south", "unowned"])
def test_another_teams_customer_is_not_found_for_a_manager(
    client: TestClient, base: Base, customer: str
) -> None:
    customer_id = min(base.south) if customer == "south" else max(base.buyers)
    missing = client.get(f"{URL}/customers/999999", headers=base.manager)

    for path in (f"/customers/{customer_id}", f"/customers/{customer_id}/recommendations"):
        r = client.get(URL + path, headers=base.manager)
        assert r.status_code == 404, path
        assert r.json()["type"] == missing.json()["type"]
        assert r.json()["detail"] == missing.json()["detail"].replace("999999", str(customer_id))


def test_an_analyst_sees_every_customer(client: TestClient, base: Base) -> None:
    listed = _listed(client, base.analyst)

    assert listed == dict.fromkeys(listed, base.buyers)
    for customer_id in (min(base.south), max(base.buyers)):
        r = client.get(f"{URL}/customers/{customer_id}", headers=base.analyst)
        assert r.status_code == 200
        r = client.get(f"{URL}/customers/{customer_id}/recommendations", headers=base.analyst)
        assert r.status_code == 200


def test_aggregates_are_over_the_whole_base_for_everyone(client: TestClient, base: Base) -> None:
    for path in ("/statistics", "/segments", "/clusters", "/rules", "/models", "/runs"):
        manager = client.get(URL + path, headers=base.manager)
        assert manager.status_code == 200, path
        assert manager.json() == client.get(URL + path, headers=base.analyst).json(), path
    segments = client.get(f"{URL}/segments", headers=base.manager).json()["segments"]
    assert sum(s["customers"] for s in segments) == len(base.buyers)
