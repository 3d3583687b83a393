"""Access control: every API route is guarded, and each role gets exactly its permissions."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tenure.app import create_app
from tenure.audit.models import AuditEntry
from tenure.catalog import service as catalog_service
from tenure.catalog.schemas import ProductCreate
from tenure.config import Settings
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate
from tenure.db import unit_of_work
from tenure.deps import require
from tenure.marketing import service as marketing_service
from tenure.marketing.schemas import CampaignCreate, SegmentCreate
from tenure.models import metadata
from tenure.pipeline import service as pipeline_service
from tenure.security import passwords
from tenure.security.models import User
from tenure.security.permissions import (
    ALL_PERMISSIONS,
    ANALYTICS_READ,
    API_KEYS_MANAGE,
    AUDIT_READ,
    CAMPAIGNS_READ,
    CAMPAIGNS_SEND,
    CAMPAIGNS_WRITE,
    CUSTOMERS_DELETE,
    CUSTOMERS_ERASE,
    CUSTOMERS_EXPORT,
    CUSTOMERS_READ,
    CUSTOMERS_REVEAL,
    CUSTOMERS_WRITE,
    INTERACTIONS_READ,
    INTERACTIONS_WRITE,
    OPERATIONS_READ,
    OPPORTUNITIES_READ,
    OPPORTUNITIES_WRITE,
    ORDERS_READ,
    ORDERS_WRITE,
    PIPELINE_ADMIN,
    PRODUCTS_READ,
    PRODUCTS_WRITE,
    ROLE_PERMISSIONS,
    SEGMENTS_READ,
    SEGMENTS_WRITE,
    SERVICE_ADMIN,
    TASKS_READ,
    TASKS_WRITE,
    TICKETS_ASSIGN,
    TICKETS_READ,
    TICKETS_WRITE,
    USERS_READ,
    USERS_WRITE,
    Role,
)
from tenure.security.scope import EVERYTHING
from tenure.service_desk import service as desk_service
from tenure.service_desk import sla
from tenure.service_desk.schemas import TicketCreate

Headers = dict[str, str]
Login = Callable[..., Headers]
LOGIN_PATH = "/api/v1/auth/login"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing in is not what these tests are about; keep Argon2 cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine=engine)


def _api_routes(app: FastAPI) -> list[RouteContext]:
    """Every route under /api/v1 as mounted: with the prefixes and dependencies of the
    routers that include it."""
    return [
        r
        for r in iter_route_contexts(app.routes)
        if isinstance(r.original_route, APIRoute) and (r.path or "").startswith("/api/v1/")
    ]


def _guards(route: RouteContext) -> tuple[set[str], bool]:
    """The permissions a route's dependencies require, and whether it needs a principal."""
    permissions: set[str] = set()
    principal = False
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        permission = getattr(dependant.call, "permission", None)
        if permission is not None:
            permissions.add(permission)
        principal = principal or getattr(dependant.call, "signs_in", False)
        pending.extend(dependant.dependencies)
    return permissions, principal


def _name(route: RouteContext) -> str:
    return f"{'/'.join(sorted(route.methods or ()))} {route.path}"


def test_every_api_route_but_login_declares_a_permission_or_the_principal(app: FastAPI) -> None:
    routes = _api_routes(app)
    unguarded = [_name(r) for r in routes if r.path != LOGIN_PATH and _guards(r) == (set(), False)]

    assert len(routes) >= 20
    assert unguarded == []


def test_the_route_audit_notices_a_route_added_without_a_guard(app: FastAPI) -> None:
    extra = APIRouter(prefix="/api/v1/extras")

    @extra.get("/open")
    def open_route() -> dict[str, str]:
        return {}

    @extra.get("/guarded")
    def guarded_route(_user: Annotated[User, Depends(require(USERS_READ))]) -> dict[str, str]:
        return {}

    app.include_router(extra)
    guards = {r.path: _guards(r) for r in _api_routes(app)}

    assert guards["/api/v1/extras/open"] == (set(), False)
    assert guards["/api/v1/extras/guarded"] == ({USERS_READ}, True)
    assert guards["/api/v1/auth/me"] == (set(), True)


def test_login_is_the_only_open_api_route(app: FastAPI) -> None:
    open_routes = [_name(r) for r in _api_routes(app) if _guards(r) == (set(), False)]

    assert open_routes == [f"POST {LOGIN_PATH}"]


def _optional(route: RouteContext) -> set[str]:
    """Permissions a route asks for only on some calls (``?reveal=true``)."""
    found: set[str] = set()
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        permission = getattr(dependant.call, "optional_permission", None)
        if permission is not None:
            found.add(permission)
        pending.extend(dependant.dependencies)
    return found


def test_every_declared_permission_is_a_known_one(app: FastAPI) -> None:
    declared = set().union(*(_guards(r)[0] | _optional(r) for r in _api_routes(app)))

    assert declared <= ALL_PERMISSIONS
    assert declared == ALL_PERMISSIONS, "a permission no route uses"


def test_every_api_route_but_login_answers_401_without_credentials(app: FastAPI) -> None:
    answers: dict[str, int] = {}
    with TestClient(app) as client:
        for route in _api_routes(app):
            if route.path == LOGIN_PATH:
                continue
            path = re.sub(r"\{[^}]+\}", "1", route.path or "")
            for method in route.methods or ():
                r = client.request(method, path)
                assert r.headers["content-type"] == "application/problem+json"
                answers[f"{method} {route.path}"] = r.status_code

    assert len(answers) >= 20
    assert {k: v for k, v in answers.items() if v != 401} == {}


# --- each role against one representative route per permission ----------------------------


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    body: dict[str, Any] | None
    ok: int
    writes: bool


PROBES: dict[str, Probe] = {
    CUSTOMERS_READ: Probe("GET", "/api/v1/customers", None, 200, False),
    CUSTOMERS_WRITE: Probe("POST", "/api/v1/customers", {"name": "New"}, 201, True),
    CUSTOMERS_DELETE: Probe("DELETE", "/api/v1/customers/{doomed}", None, 204, True),
    # The audit entry an export writes is left out of the comparison (see _snapshot).
    CUSTOMERS_EXPORT: Probe("GET", "/api/v1/customers/{customer}/export", None, 200, False),
    # Like an export, a reveal leaves only its audit entry.
    CUSTOMERS_REVEAL: Probe("GET", "/api/v1/customers/{customer}?reveal=true", None, 200, False),
    PRODUCTS_READ: Probe("GET", "/api/v1/products", None, 200, False),
    PRODUCTS_WRITE: Probe(
        "POST", "/api/v1/products", {"sku": "NEW-1", "name": "New", "unit_price": "1.00"}, 201, True
    ),
    ORDERS_READ: Probe("GET", "/api/v1/orders", None, 200, False),
    ORDERS_WRITE: Probe(
        "POST",
        "/api/v1/orders",
        {"customer_id": "{customer}", "lines": [{"product_id": "{product}", "quantity": 1}]},
        201,
        True,
    ),
    USERS_READ: Probe("GET", "/api/v1/users", None, 200, False),
    USERS_WRITE: Probe(
        "POST",
        "/api/v1/users",
        {"email": "new@example.com", "name": "New", "password": "long-enough-pw", "role": "sales"},
        201,
        True,
    ),
    API_KEYS_MANAGE: Probe("POST", "/api/v1/api-keys", {"name": "sync"}, 201, True),
    AUDIT_READ: Probe("GET", "/api/v1/audit", None, 200, False),
    OPERATIONS_READ: Probe("GET", "/api/v1/operations", None, 200, False),
    ANALYTICS_READ: Probe("GET", "/api/v1/analytics/runs", None, 200, False),
    OPPORTUNITIES_READ: Probe("GET", "/api/v1/opportunities", None, 200, False),
    OPPORTUNITIES_WRITE: Probe(
        "POST",
        "/api/v1/opportunities",
        {"customer_id": "{customer}", "title": "Probe", "amount": "1.00"},
        201,
        True,
    ),
    PIPELINE_ADMIN: Probe(
        "POST", "/api/v1/pipeline-stages", {"name": "Probe", "probability": 30}, 201, True
    ),
    INTERACTIONS_READ: Probe("GET", "/api/v1/interactions", None, 200, False),
    INTERACTIONS_WRITE: Probe(
        "POST",
        "/api/v1/interactions",
        {"customer_id": "{customer}", "kind": "note", "subject": "Probe"},
        201,
        True,
    ),
    TASKS_READ: Probe("GET", "/api/v1/tasks", None, 200, False),
    TASKS_WRITE: Probe("POST", "/api/v1/tasks", {"title": "Probe"}, 201, True),
    TICKETS_READ: Probe("GET", "/api/v1/tickets", None, 200, False),
    TICKETS_WRITE: Probe(
        "POST",
        "/api/v1/tickets",
        {"customer_id": "{customer}", "type": "feedback", "subject": "Probe", "description": "."},
        201,
        True,
    ),
    # The ticket is assigned to its maker; taking it away is a change in its history.
    TICKETS_ASSIGN: Probe(
        "POST",
        "/api/v1/tickets/bulk-assign",
        {"ticket_ids": ["{ticket}"], "assignee_id": None},
        200,
        True,
    ),
    SERVICE_ADMIN: Probe(
        "PATCH", "/api/v1/sla-policies/P4", {"resolution_minutes": 7200}, 200, True
    ),
    SEGMENTS_READ: Probe("GET", "/api/v1/segments", None, 200, False),
    SEGMENTS_WRITE: Probe(
        "POST", "/api/v1/segments", {"name": "New", "definition": {"all": []}}, 201, True
    ),
    CAMPAIGNS_READ: Probe("GET", "/api/v1/campaigns", None, 200, False),
    CAMPAIGNS_WRITE: Probe(
        "POST",
        "/api/v1/campaigns",
        {"name": "New", "segment_id": "{segment}", "subject_template": "S", "body_template": "B"},
        201,
        True,
    ),
    # Past the permission, a draft is refused (409 not-sendable) and nothing changes.
    CAMPAIGNS_SEND: Probe("POST", "/api/v1/campaigns/{campaign}/send", None, 409, False),
    # Last: it erases the customer the trash probe may have trashed.
    CUSTOMERS_ERASE: Probe("POST", "/api/v1/customers/{doomed}/erase", None, 200, True),
}


def test_there_is_a_probe_for_every_permission() -> None:
    assert set(PROBES) == ALL_PERMISSIONS


@dataclass(frozen=True)
class Records:
    customer: int
    doomed: int
    product: int
    ticket: int
    segment: int
    campaign: int


@pytest.fixture
def records(make_user: Callable[..., User], sessions: sessionmaker[Session]) -> Records:
    owner = make_user("admin")
    with unit_of_work(sessions) as s:
        customer = customers_service.create(
            scope=EVERYTHING, session=s, data=CustomerCreate(name="Kept"), actor=owner
        )
        doomed = customers_service.create(
            scope=EVERYTHING, session=s, data=CustomerCreate(name="Doomed"), actor=owner
        )
        product = catalog_service.create(
            session=s, data=ProductCreate(sku="OLD-1", name="Old", unit_price="2.50")
        )
        pipeline_service.seed_default_stages(session=s)
        ticket = desk_service.create(
            session=s,
            data=TicketCreate(
                customer_id=customer.id,
                type="complaint",
                subject="Kept",
                description="Kept",
                assignee_id=owner.id,
            ),
            scope=EVERYTHING,
            actor_id=owner.id,
            hours=sla.hours_of(Settings()),
        )
        segment = marketing_service.create_segment(
            session=s, data=SegmentCreate(name="Everyone", definition={"all": []}), scope=EVERYTHING
        )
        campaign = marketing_service.create_campaign(
            session=s,
            data=CampaignCreate(
                name="Draft", segment_id=segment.id, subject_template="S", body_template="B"
            ),
        )
        return Records(customer.id, doomed.id, product.id, ticket.id, segment.id, campaign.id)


def _fill(value: Any, records: Records) -> Any:
    """Put the records' ids where a probe has ``{customer}``, ``{doomed}`` or ``{product}``."""
    if isinstance(value, dict):
        return {k: _fill(v, records) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, records) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return getattr(records, value[1:-1])
    return value


def _snapshot(engine: Engine) -> dict[str, int]:
    """Row counts of the business tables. The audit log is left out: a refusal is recorded
    there (see tests/audit), and that is the only trace it may leave."""
    with engine.connect() as conn:
        counts = {
            t.name: conn.scalar(select(func.count()).select_from(t)) or 0
            for t in metadata.sorted_tables
            if t.name != AuditEntry.__tablename__
        }
        counts["trashed customers"] = (
            conn.scalar(select(func.count()).where(Customer.deleted_at.is_not(None))) or 0
        )
    return counts


def _iter_probes(
    client: TestClient, headers: Headers, records: Records, engine: Engine
) -> Iterator[tuple[str, int, bool]]:
    for permission, probe in PROBES.items():
        path = probe.path.format(**vars(records))
        before = _snapshot(engine)
        r = client.request(probe.method, path, json=_fill(probe.body, records), headers=headers)
        if r.status_code == 403:
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["type"] == "urn:tenure:problem:permission-denied"
        yield permission, r.status_code, _snapshot(engine) != before


@pytest.mark.parametrize("role", list(Role))
def test_a_role_may_do_exactly_what_its_permissions_allow(
    client: TestClient, login: Login, records: Records, engine: Engine, role: Role
) -> None:
    headers = login(role)
    me = client.get("/api/v1/auth/me", headers=headers).json()["id"]
    with engine.begin() as conn:  # the records are the caller's own: in every role's scope
        conn.execute(update(Customer).values(owner_id=me))

    observed = {
        perm: (status, changed)
        for perm, status, changed in _iter_probes(client, headers, records, engine)
    }

    allowed = ROLE_PERMISSIONS[role]
    expected = {
        perm: (probe.ok, probe.writes) if perm in allowed else (403, False)
        for perm, probe in PROBES.items()
    }
    assert observed == expected


_READS = {CUSTOMERS_READ, PRODUCTS_READ, ORDERS_READ, TICKETS_READ}
_WORK_TICKETS = {TICKETS_WRITE, TICKETS_ASSIGN}
_SELLING = {OPPORTUNITIES_READ, OPPORTUNITIES_WRITE, INTERACTIONS_READ, INTERACTIONS_WRITE}
_SELLING |= {TASKS_READ, TASKS_WRITE}
_MARKETING = {SEGMENTS_READ, SEGMENTS_WRITE, CAMPAIGNS_READ, CAMPAIGNS_WRITE, CAMPAIGNS_SEND}
DOCUMENTED_ROLES: dict[Role, set[str]] = {
    Role.ADMIN: set(ALL_PERMISSIONS),
    Role.MANAGER: _READS
    | {CUSTOMERS_WRITE, CUSTOMERS_DELETE, PRODUCTS_WRITE, ORDERS_WRITE, USERS_READ}
    | {API_KEYS_MANAGE, CUSTOMERS_EXPORT, CUSTOMERS_REVEAL, ANALYTICS_READ}
    | _SELLING
    | _WORK_TICKETS
    | _MARKETING
    | {PIPELINE_ADMIN},
    Role.SALES: _READS
    | {CUSTOMERS_WRITE, CUSTOMERS_DELETE, CUSTOMERS_REVEAL, ORDERS_WRITE, API_KEYS_MANAGE}
    | _SELLING
    | {CAMPAIGNS_READ},
    Role.SUPPORT: _READS
    | {CUSTOMERS_WRITE, CUSTOMERS_REVEAL, API_KEYS_MANAGE}
    | {INTERACTIONS_READ, INTERACTIONS_WRITE, TASKS_READ, TASKS_WRITE, OPPORTUNITIES_READ}
    | _WORK_TICKETS
    | {CAMPAIGNS_READ},
    Role.MARKETING: _READS
    | {API_KEYS_MANAGE, ANALYTICS_READ, INTERACTIONS_READ}
    | {OPPORTUNITIES_READ}
    | _MARKETING,
    Role.ANALYST: _READS
    | {API_KEYS_MANAGE, ANALYTICS_READ, OPPORTUNITIES_READ}
    | {INTERACTIONS_READ, SEGMENTS_READ, CAMPAIGNS_READ},
    Role.AUDITOR: _READS
    | {USERS_READ, AUDIT_READ, OPPORTUNITIES_READ, INTERACTIONS_READ, TASKS_READ},
}


def test_the_role_table_is_the_documented_one() -> None:
    """A change to who may do what is deliberate: it shows up here and in the README."""
    assert {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()} == DOCUMENTED_ROLES


def test_only_admins_manage_users() -> None:
    assert [role for role, perms in ROLE_PERMISSIONS.items() if USERS_WRITE in perms] == [
        Role.ADMIN
    ]


def test_only_admins_erase_personal_data() -> None:
    assert [role for role, perms in ROLE_PERMISSIONS.items() if CUSTOMERS_ERASE in perms] == [
        Role.ADMIN
    ]


def test_only_admins_and_auditors_read_the_audit_log() -> None:
    readers = {role for role, perms in ROLE_PERMISSIONS.items() if AUDIT_READ in perms}

    assert readers == {Role.ADMIN, Role.AUDITOR}
