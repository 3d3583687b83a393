"""Record scope: a sales rep reaches their own customers, a manager their team's, an admin
every one; orders follow their customer; who may give a customer to whom; teams; and the
audit log's entries for exports and refusals."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tenure.audit.models import AuditEntry
from tenure.db import unit_of_work
from tenure.security import passwords
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import ROLE_SCOPES, Role, Scope
from tenure.security.schemas import TeamCreate
from tests.conftest import PASSWORD, MakeUser
from tests.conftest import web_sign_in as sign_in

Headers = dict[str, str]
URL = "/api/v1/customers"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing in is not what these tests are about; keep Argon2 cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@dataclass
class Person:
    user: User
    headers: Headers


@dataclass
class Office:
    """Two teams: north (a manager and two reps) and south (a rep), and an admin."""

    admin: Person
    manager: Person
    rep: Person
    teammate: Person
    outsider: Person
    north: int
    south: int


@pytest.fixture
def office(client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]) -> Office:
    with unit_of_work(sessions) as s:
        north = security_service.create_team(session=s, data=TeamCreate(name="North")).id
        south = security_service.create_team(session=s, data=TeamCreate(name="South")).id

    def person(role: Role, name: str, team: int | None) -> Person:
        user = make_user(role, name=name)
        if team is not None:
            with unit_of_work(sessions) as s:
                found = security_service.get_user(session=s, user_id=user.id)
                security_service.set_team(session=s, user=found, team_id=team)
        r = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
        return Person(user, {"Authorization": f"Bearer {r.json()['access_token']}"})

    return Office(
        admin=person(Role.ADMIN, "Ada Admin", None),
        manager=person(Role.MANAGER, "Mo Manager", north),
        rep=person(Role.SALES, "Rita Rep", north),
        teammate=person(Role.SALES, "Tom Teammate", north),
        outsider=person(Role.SALES, "Oscar Outsider", south),
        north=north,
        south=south,
    )


def _customer(client: TestClient, owner: Person, name: str) -> int:
    r = client.post(URL, json={"name": name, "tags": ["vip"]}, headers=owner.headers)
    assert r.status_code == 201, r.text
    customer_id: int = r.json()["id"]
    return customer_id


@pytest.fixture
def book(client: TestClient, office: Office) -> dict[str, int]:
    """One customer per person, named after their owner."""
    return {
        "rep": _customer(client, office.rep, "Rita Customer"),
        "teammate": _customer(client, office.teammate, "Tom Customer"),
        "manager": _customer(client, office.manager, "Mo Customer"),
        "outsider": _customer(client, office.outsider, "Oscar Customer"),
    }


def _names(client: TestClient, who: Person, **params: Any) -> set[str]:
    r = client.get(URL, params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    return {item["name"] for item in r.json()["items"]}


EVERY = {"Rita Customer", "Tom Customer", "Mo Customer", "Oscar Customer"}


def test_the_role_scopes_are_the_documented_ones() -> None:
    assert ROLE_SCOPES == {
        Role.ADMIN: Scope.ALL,
        Role.MANAGER: Scope.TEAM,
        Role.SALES: Scope.OWN,
        Role.SUPPORT: Scope.ALL,
        Role.MARKETING: Scope.ALL,
        Role.ANALYST: Scope.ALL,
        Role.AUDITOR: Scope.ALL,
    }


# --- reading ----------------------------------------------------------------------------


def test_a_sales_rep_lists_only_their_own_customers(
    client: TestClient, office: Office, book: dict[str, int]
) -> None:
    assert _names(client, office.rep) == {"Rita Customer"}


def test_a_sales_rep_finds_only_their_own_customers(
    client: TestClient, office: Office, book: dict[str, int]
) -> None:
    assert _names(client, office.rep, q="customer") == {"Rita Customer"}
    assert _names(client, office.rep, q="tom") == set()
    assert _names(client, office.rep, q="customer", sort="name", tag="vip") == {"Rita Customer"}


def test_a_sales_rep_cannot_open_read_or_change_a_colleagues_customer(
    client: TestClient, office: Office, book: dict[str, int]
) -> None:
    other = f"{URL}/{book['teammate']}"
    headers = office.rep.headers

    assert client.get(other, headers=headers).status_code == 404
    assert client.get(f"{other}/orders", headers=headers).status_code == 404
    assert client.patch(other, json={"name": "Mine now"}, headers=headers).status_code == 404
    assert client.delete(other, headers=headers).status_code == 404
    assert client.get(other, headers=office.admin.headers).json()["name"] == "Tom Customer"


def test_a_manager_reaches_their_teams_customers_and_no_others(
    client: TestClient, office: Office, book: dict[str, int]
) -> None:
    assert _names(client, office.manager) == {"Rita Customer", "Tom Customer", "Mo Customer"}
    assert (
        client.get(f"{URL}/{book['outsider']}", headers=office.manager.headers).status_code == 404
    )


def test_a_manager_without_a_team_reaches_only_their_own(
    client: TestClient, make_user: MakeUser, office: Office, book: dict[str, int]
) -> None:
    loner = make_user(Role.MANAGER, name="Lone Manager")
    r = client.post("/api/v1/auth/login", json={"email": loner.email, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    _customer(client, Person(loner, headers), "Lone Customer")

    assert _names(client, Person(loner, headers)) == {"Lone Customer"}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SUPPORT, Role.ANALYST])
def test_unrestricted_roles_reach_every_customer(
    client: TestClient, login: Callable[..., Headers], book: dict[str, int], role: Role
) -> None:
    headers = login(role)

    r = client.get(URL, headers=headers)

    assert {item["name"] for item in r.json()["items"]} == EVERY


def test_a_team_change_takes_effect_on_the_next_request(
    client: TestClient, office: Office, book: dict[str, int]
) -> None:
    body = {"team_id": office.south}
    r = client.patch(
        f"/api/v1/users/{office.teammate.user.id}", json=body, headers=office.admin.headers
    )
    assert r.status_code == 200

    assert _names(client, office.manager) == {"Rita Customer", "Mo Customer"}


def test_the_trash_shows_only_customers_in_scope(
    client: TestClient, office: Office, book: dict[str, int]
) -> None:
    for key in ("rep", "outsider"):
        client.delete(f"{URL}/{book[key]}", headers=office.admin.headers)

    assert _names(client, office.rep, trashed="true") == {"Rita Customer"}
    restore = f"{URL}/{book['outsider']}/restore"
    assert client.post(restore, headers=office.rep.headers).status_code == 404


# --- orders follow their customer -------------------------------------------------------


@pytest.fixture
def product(client: TestClient, office: Office) -> int:
    body = {"sku": "TEA-1", "name": "Tea", "unit_price": "4.50"}
    r = client.post("/api/v1/products", json=body, headers=office.admin.headers)
    product_id: int = r.json()["id"]
    return product_id


def _order(client: TestClient, who: Person, customer: int, product: int) -> Any:
    body = {"customer_id": customer, "lines": [{"product_id": product, "quantity": 1}]}
    return client.post("/api/v1/orders", json=body, headers=who.headers)


def test_orders_follow_their_customers_scope(
    client: TestClient, office: Office, book: dict[str, int], product: int
) -> None:
    mine = _order(client, office.rep, book["rep"], product).json()["id"]
    theirs = _order(client, office.admin, book["outsider"], product).json()["id"]

    listed = client.get("/api/v1/orders", headers=office.rep.headers).json()["items"]
    assert [o["id"] for o in listed] == [mine]
    assert client.get(f"/api/v1/orders/{theirs}", headers=office.rep.headers).status_code == 404
    patch = client.patch(
        f"/api/v1/orders/{theirs}", json={"notes": "x"}, headers=office.rep.headers
    )
    assert patch.status_code == 404


def test_an_order_for_a_customer_out_of_scope_is_refused_as_for_no_customer(
    client: TestClient, office: Office, book: dict[str, int], product: int
) -> None:
    r = _order(client, office.rep, book["teammate"], product)

    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "customer_id"]
    assert client.get("/api/v1/orders", headers=office.admin.headers).json()["items"] == []


# --- who may give a customer to whom ----------------------------------------------------


def test_a_sales_rep_owns_what_they_create(client: TestClient, office: Office) -> None:
    r = client.post(URL, json={"name": "New"}, headers=office.rep.headers)

    assert r.json()["owner_id"] == office.rep.user.id


@pytest.mark.parametrize("via", ["create", "update"])
def test_a_sales_rep_cannot_give_a_customer_to_someone_else(
    client: TestClient, office: Office, book: dict[str, int], via: str
) -> None:
    body = {"name": "Given", "owner_id": office.teammate.user.id}
    if via == "create":
        r = client.post(URL, json=body, headers=office.rep.headers)
    else:
        r = client.patch(f"{URL}/{book['rep']}", json=body, headers=office.rep.headers)

    assert r.status_code == 403
    assert r.json()["type"] == "urn:tenure:problem:owner-not-assignable"
    assert _names(client, office.teammate) == {"Tom Customer"}


def test_a_manager_assigns_within_their_team_only(
    client: TestClient, office: Office, book: dict[str, int]
) -> None:
    url = f"{URL}/{book['rep']}"
    within = client.patch(
        url, json={"owner_id": office.teammate.user.id}, headers=office.manager.headers
    )
    outside = client.patch(
        url, json={"owner_id": office.outsider.user.id}, headers=office.manager.headers
    )

    assert within.status_code == 200
    assert outside.status_code == 403
    assert (
        client.get(url, headers=office.admin.headers).json()["owner_id"] == office.teammate.user.id
    )


def test_an_admin_assigns_to_anyone(
    client: TestClient, office: Office, book: dict[str, int]
) -> None:
    url = f"{URL}/{book['rep']}"
    r = client.patch(url, json={"owner_id": office.outsider.user.id}, headers=office.admin.headers)

    assert r.status_code == 200
    assert "Rita Customer" in _names(client, office.outsider)


# --- the CSV export ---------------------------------------------------------------------


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _entries(sessions: sessionmaker[Session], action: str) -> list[AuditEntry]:
    with sessions() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_a_manager_exports_their_teams_customers_with_the_lists_filters(
    client: TestClient, office: Office, book: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    r = client.get(f"{URL}/export", params={"q": "customer"}, headers=office.manager.headers)

    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="customers.csv"'
    rows = _rows(r.text)
    assert {row["name"] for row in rows} == {"Rita Customer", "Tom Customer", "Mo Customer"}
    assert rows[0]["tags"] == "vip"
    [entry] = _entries(sessions, "export")
    assert entry.actor_id == office.manager.user.id
    assert entry.entity_type == "customer"
    assert entry.details == {"filters": {"q": "customer"}, "rows": 3, "format": "csv"}


def test_an_export_cell_a_spreadsheet_would_run_is_defused(
    client: TestClient, office: Office
) -> None:
    _customer(client, office.admin, "=HYPERLINK(1)")

    r = client.get(f"{URL}/export", headers=office.admin.headers)

    assert [row["name"] for row in _rows(r.text)] == ["'=HYPERLINK(1)"]


def test_the_export_needs_customers_export(
    client: TestClient, office: Office, sessions: sessionmaker[Session]
) -> None:
    assert client.get(f"{URL}/export", headers=office.rep.headers).status_code == 403
    assert _entries(sessions, "export") == []


def test_the_web_export_button_downloads_the_listed_customers(
    client: TestClient, office: Office, book: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    sign_in(client, office.manager.user)
    page = client.get("/customers", params={"tag": "vip"}).text
    assert 'href="/customers/export.csv?tag=vip"' in page

    r = client.get("/customers/export.csv", params={"tag": "vip"})

    assert r.status_code == 200
    assert {row["name"] for row in _rows(r.text)} == {
        "Rita Customer",
        "Tom Customer",
        "Mo Customer",
    }
    [entry] = _entries(sessions, "export")
    assert entry.details["filters"] == {"tag": "vip"}


def test_a_sales_rep_sees_no_export_button(
    client: TestClient, office: Office, book: dict[str, int]
) -> None:
    sign_in(client, office.rep.user)

    assert "export.csv" not in client.get("/customers").text


# --- pages ------------------------------------------------------------------------------


def test_a_sales_reps_pages_show_only_their_customers(
    client: TestClient, office: Office, book: dict[str, int]
) -> None:
    sign_in(client, office.rep.user)

    listed = client.get("/customers").text
    assert "Rita Customer" in listed and "Tom Customer" not in listed
    assert client.get(f"/customers/{book['teammate']}").status_code == 404
    suggestions = client.get("/orders/new/customers", params={"customer_q": "to"}).text
    assert "Tom Customer" not in suggestions
    home = client.get("/").text
    assert "Rita Customer" in home and "Tom Customer" not in home


def test_the_new_customer_form_offers_only_owners_the_user_may_choose(
    client: TestClient, office: Office
) -> None:
    sign_in(client, office.manager.user)

    form = client.get("/customers/new").text

    assert "Tom Teammate" in form and "Oscar Outsider" not in form


# --- refusals in the audit log ----------------------------------------------------------


def test_a_refused_page_is_recorded_with_the_permission_and_route(
    client: TestClient, office: Office, sessions: sessionmaker[Session]
) -> None:
    sign_in(client, office.rep.user)

    assert client.get("/admin/users").status_code == 403

    [entry] = _entries(sessions, "access.denied")
    assert entry.actor_id == office.rep.user.id
    assert entry.details["permission"] == "users:read"
    assert entry.details["route"] == "/admin/users"


def test_a_refused_assignment_is_recorded(
    client: TestClient, office: Office, sessions: sessionmaker[Session]
) -> None:
    body = {"name": "Given", "owner_id": office.outsider.user.id}
    client.post(URL, json=body, headers=office.rep.headers)

    [entry] = _entries(sessions, "access.denied")
    assert entry.details["code"] == "owner-not-assignable"
    assert entry.details["route"] == URL


# --- teams ------------------------------------------------------------------------------


def test_admins_create_rename_and_delete_an_empty_team(client: TestClient, admin: Headers) -> None:
    made = client.post("/api/v1/teams", json={"name": "East"}, headers=admin)
    assert made.status_code == 201
    url = f"/api/v1/teams/{made.json()['id']}"

    renamed = client.patch(url, json={"name": "Far East"}, headers=admin)

    assert renamed.json()["name"] == "Far East"
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get("/api/v1/teams", headers=admin).json() == []


def test_a_team_name_is_unique_ignoring_case(client: TestClient, admin: Headers) -> None:
    client.post("/api/v1/teams", json={"name": "East"}, headers=admin)

    r = client.post("/api/v1/teams", json={"name": "east"}, headers=admin)

    assert r.status_code == 409
    assert r.json()["type"] == "urn:tenure:problem:team-name-taken"


def test_a_team_with_members_is_not_deleted(client: TestClient, office: Office) -> None:
    r = client.delete(f"/api/v1/teams/{office.north}", headers=office.admin.headers)

    assert r.status_code == 409
    teams = client.get("/api/v1/teams", headers=office.admin.headers).json()
    assert {(t["name"], t["members"]) for t in teams} == {("North", 3), ("South", 1)}


def test_a_users_team_is_in_their_record(client: TestClient, office: Office) -> None:
    me = client.get("/api/v1/auth/me", headers=office.rep.headers).json()

    assert me["team"] == {"id": office.north, "name": "North"}


def test_only_admins_manage_teams(client: TestClient, office: Office) -> None:
    r = client.post("/api/v1/teams", json={"name": "Mine"}, headers=office.manager.headers)

    assert r.status_code == 403
    assert client.get("/api/v1/teams", headers=office.manager.headers).status_code == 200


def test_the_teams_page_creates_a_team_and_a_user_page_puts_a_user_in_it(
    client: TestClient, office: Office, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, office.admin.user)
    made = client.post("/admin/teams/new", data={"name": "West", "csrf_token": token})
    assert made.status_code == 200 and "West" in made.text  # back on the teams page
    with sessions() as s:
        west = security_service.get_team_by_name(session=s, name="west")
    assert west is not None

    r = client.post(
        f"/admin/users/{office.outsider.user.id}/team",
        data={"team_id": str(west.id), "csrf_token": token},
        follow_redirects=False,
    )

    assert r.status_code == 303
    with sessions() as s:
        assert (
            security_service.get_user(session=s, user_id=office.outsider.user.id).team_id == west.id
        )
