"""The authorization matrix: every route of the application, API and pages, called as
every role, on a record in and out of the caller's scope, answers as the route's declared
permission and the role's scope say.

The cases are generated from the application's route table when the tests are collected:
a route that declares no permission (``require(...)`` for the API, ``page_require(...)``
for pages: both mark their dependency with ``.permission``) must be in one of the two
short allowlists below, or ``test_every_route_declares_a_permission`` fails.

For each role and route:
- the role lacks the permission: 403 (problem+json for the API, the error page for pages);
- it has it, on a record in its scope: an answer that is not a refusal (below 400);
- it has it, on a record out of its scope (own and team scopes): 404, as if the record did
  not exist; lists, searches and exports answer but never show such a record (every
  record out of scope carries ``MARKER`` in its name or notes).

Analytics reads a stored run: the world holds one, computed over a few hundred simulated
shoppers (out of every restricted scope) and the callers' own customers with purchases.
Its routes name customers by id only, so on top of ``MARKER`` the ids they show are
checked: only customers in the caller's scope, and the caller's own in every list.

One database for the module (not the shared test database: that one is emptied after
every test); records a request changes are made fresh for it.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
import pytest
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.analytics import run as analytics_run
from tenure.app import create_app
from tenure.catalog import service as catalog_service
from tenure.catalog.schemas import ProductCreate
from tenure.config import Settings
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate
from tenure.db import create_engine, make_engine, make_sessionmaker, unit_of_work
from tenure.interactions import service as interactions_service
from tenure.interactions.schemas import InteractionCreate, TaskCreate
from tenure.marketing import service as marketing_service
from tenure.marketing.schemas import CampaignCreate, SegmentCreate
from tenure.ops import migrate
from tenure.orders import service as orders_service
from tenure.orders.schemas import OrderCreate, OrderLineIn, OrderStatus
from tenure.pipeline import service as pipeline_service
from tenure.pipeline.schemas import OpportunityCreate, StageCreate
from tenure.security import fields, passwords
from tenure.security import service as security_service
from tenure.security.permissions import ANALYTICS_READ, ROLE_PERMISSIONS, Role, Scope, scope_of
from tenure.security.schemas import TeamCreate, UserCreate
from tenure.security.scope import EVERYTHING
from tenure.service_desk import service as desk_service
from tenure.service_desk import sla as desk_sla
from tenure.service_desk.schemas import TicketCreate, TicketType
from tenure.web.session import current_user
from tests.analytics.conftest import AS_OF, Shop, simulate
from tests.conftest import POSTGRES_URL, _create_pg_database, _drop_pg_database
from tests.marketing.conftest import Sink, free_port

PASSWORD = "matrix-passphrase-long"
MARKER = "Zyxoutsider"  # in every record out of the callers' scope, nowhere else

# Open to anyone: signing in, probes, metrics (its own token when configured), the API
# documents and static files.
PUBLIC = frozenset({
    "POST /api/v1/auth/login",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /openapi.json",
    "GET /docs",
    "GET /docs/oauth2-redirect",
    "GET /redoc",
    "GET /static",
    "GET /login",
    "POST /login",
    "POST /logout",  # signing out of an expired session still clears the cookie
    # A customer's satisfaction survey: the signed link in the path is the permission.
    "GET /survey/{token}",
    "POST /survey/{token}",
    # Links in marketing email: each verifies its signed token (tests/marketing).
    "GET /email/open/{token}.gif",
    "GET /email/click/{token}",
    "GET /email/unsubscribe/{token}",
    "POST /email/unsubscribe/{token}",
})  # fmt: skip
# Every signed-in user, whatever the role: one's own account and the home page.
SIGNED_IN = frozenset({
    "GET /api/v1/auth/me",
    "POST /api/v1/auth/logout",
    "GET /",
    "GET /profile",
    "POST /preferences/language",
})  # fmt: skip
SCOPED_PARAMS = frozenset(
    {"customer_id", "order_id", "ticket_id", "opportunity_id", "interaction_id", "task_id"}
)
SCOPED_PERMISSIONS = (
    "customers:",
    "orders:",
    "analytics:",
    "tickets:",
    "opportunities:",
    "interactions:",
    "tasks:",
    "segments:",
    "campaigns:",
)
# Records of the pipeline in the path: made for the request, never the customer trashed.
PIPELINE_PARAMS = frozenset({"opportunity_id", "interaction_id", "task_id"})
ANALYTICS = "/api/v1/analytics/"
ANALYTICS_PAGES = "/analytics"
MARKETING = ("/api/v1/segments", "/api/v1/campaigns", "/segments", "/campaigns")


@pytest.fixture(scope="module", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Signing in is not what these tests are about; keep Argon2 cheap here."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        )
        yield


# --- the route table --------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    permissions: frozenset[str]
    signed_in: bool  # needs a signed-in caller (API principal or browser session)

    @property
    def key(self) -> str:
        """``METHOD /path/{param}``, without the pages' ``:int`` converters."""
        return f"{self.method} {self.path.replace(':int}', '}')}"

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{(\w+)(?::\w+)?\}", self.path)  # also "/export/{table}.csv"


def _guards(route: RouteContext) -> tuple[frozenset[str], bool]:
    """The permissions a route's dependencies declare, and whether it needs a caller."""
    permissions: set[str] = set()
    signed_in = False
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        permission = getattr(dependant.call, "permission", None)
        if permission is not None:
            permissions.add(permission)
        signed_in = (
            signed_in
            or getattr(dependant.call, "signs_in", False)
            or dependant.call is current_user
        )
        pending.extend(dependant.dependencies)
    return frozenset(permissions), signed_in or bool(permissions)


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) the application answers, with what guards it."""
    found: list[Endpoint] = []
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        path = route.path or cast(str, getattr(original, "path", ""))
        methods = sorted(
            (route.methods or getattr(original, "methods", None) or {"GET"}) - {"HEAD"}
        )
        if isinstance(original, APIRoute):
            permissions, signed_in = _guards(route)
        else:  # Starlette routes and mounts (docs, static files): nothing declared
            permissions, signed_in = frozenset(), False
        found.extend(Endpoint(m, path, permissions, signed_in) for m in methods)
    return found


def _route_table() -> list[Endpoint]:
    settings = Settings(data_dir=Path("/nonexistent/tenure-matrix"))
    return endpoints(create_app(settings, engine=create_engine("sqlite://")))


ENDPOINTS = _route_table()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.key)
def test_every_route_declares_a_permission(endpoint: Endpoint) -> None:
    """A new route needs ``require(...)``/``page_require(...)`` or a deliberate place in
    an allowlist (and then a reason)."""
    if endpoint.permissions:
        return
    if endpoint.signed_in:
        assert endpoint.key in SIGNED_IN, f"{endpoint.key} needs a signed-in user only"
    else:
        assert endpoint.key in PUBLIC, f"{endpoint.key} is open to anyone"


def test_the_allowlists_name_only_routes_that_exist() -> None:
    keys = {e.key for e in ENDPOINTS}

    assert keys >= PUBLIC | SIGNED_IN


# --- requests: what each route is sent --------------------------------------------------


@dataclass
class Target:
    """The records one request works on, made for it when it changes them."""

    caller: int
    owner: int  # of the customer: the caller (in scope) or the outsider (out of scope)
    customer: int
    customer_name: str
    customer_version: int
    order: int
    order_version: int
    product: int
    product_sku: str
    product_version: int
    user: int
    key: int
    team: int
    home_team: int
    n: int
    run: int  # the world's analytics run
    opportunity: int = 0  # owned by ``owner``, with ``customer``
    opportunity_version: int = 0
    interaction: int = 0  # with ``customer``
    task: int = 0  # given to ``owner``
    stage: int = 0  # of the pipeline: a fresh one for a request that changes it
    segment: int = 0  # a segment of every customer (for marketing routes)
    campaign: int = 0  # an email campaign to that segment, in the state the route needs
    table: str = "customers"  # the analytics export that names customers
    chart: str = "rfm-value"  # an analytics chart (the one that reads per-customer rows)
    ticket: int = 0  # of the customer
    priority: str = "P3"  # a service level policy
    desk_chart: str = "volume"  # a service desk chart


Build = Callable[[Target], dict[str, Any]]


@dataclass(frozen=True)
class Spec:
    query: Build | None = None
    json: Build | None = None
    form: Build | None = None
    trashed: bool = False  # the record in the path is in the trash (restore)
    # The answer out of scope when the record is named in the body or query, not the path.
    out_status: int | None = None
    scoped: bool = False  # names a customer outside the path: has an out-of-scope case
    fresh_login: bool = False  # ends the session it is sent with
    callers_key: bool = False  # the API key in the path is the caller's own
    customer_list: bool = False  # lists every customer of the caller's (analytics)
    ticket_status: str | None = None  # the ticket is moved to this status first
    needs_ticket: bool = False  # names a ticket outside the path


def _prefix(t: Target) -> str:
    """What a search types: the start of the customer's first name (never all of
    ``MARKER``, which must not be on a page out of scope)."""
    return t.customer_name[:6]


def _line(t: Target) -> dict[str, Any]:
    return {"line": "0", "product_id": str(t.product), "quantity": "1", "unit_price": ""}


SPECS: dict[str, Spec] = {
    # API: customers
    "POST /api/v1/customers": Spec(
        json=lambda t: {"name": f"Created {t.n}", "owner_id": t.owner}, scoped=True, out_status=403
    ),
    "PATCH /api/v1/customers/{customer_id}": Spec(json=lambda t: {"lifecycle_stage": "prospect"}),
    "POST /api/v1/customers/{customer_id}/restore": Spec(trashed=True),
    # API: orders
    "POST /api/v1/orders": Spec(
        json=lambda t: {
            "customer_id": t.customer,
            "lines": [{"product_id": t.product, "quantity": 1}],
        },
        scoped=True,
        out_status=422,  # as for a customer that does not exist
    ),
    "GET /api/v1/orders": Spec(query=lambda t: {"customer_id": t.customer}, scoped=True),
    "PATCH /api/v1/orders/{order_id}": Spec(json=lambda t: {"notes": "changed"}),
    "POST /api/v1/orders/{order_id}/restore": Spec(trashed=True),
    # API: products
    "POST /api/v1/products": Spec(
        json=lambda t: {"sku": f"M-{t.n}", "name": "Made", "unit_price": "1.00"}
    ),
    "PATCH /api/v1/products/{product_id}": Spec(json=lambda t: {"name": f"Renamed {t.n}"}),
    "POST /api/v1/products/{product_id}/restore": Spec(trashed=True),
    # API: users, keys, teams
    "POST /api/v1/auth/logout": Spec(fresh_login=True),
    "POST /api/v1/users": Spec(
        json=lambda t: {
            "email": f"made-{t.n}@example.com",
            "name": "Made",
            "password": PASSWORD,
            "role": "sales",
        }
    ),
    "PATCH /api/v1/users/{user_id}": Spec(json=lambda t: {"name": f"Renamed {t.n}"}),
    "POST /api/v1/api-keys": Spec(json=lambda t: {"name": "sync"}),
    "DELETE /api/v1/api-keys/{key_id}": Spec(callers_key=True),
    "POST /api/v1/teams": Spec(json=lambda t: {"name": f"Team {t.n}"}),
    "PATCH /api/v1/teams/{team_id}": Spec(json=lambda t: {"name": f"Renamed team {t.n}"}),
    # pages: customers
    "GET /customers": Spec(query=lambda t: {"q": _prefix(t)}, scoped=True),
    "POST /customers/new": Spec(
        form=lambda t: {
            "name": f"Created {t.n}",
            "kind": "person",
            "lifecycle_stage": "lead",
            "owner_id": str(t.owner),
        },
        scoped=True,
        out_status=422,  # the form says the owner cannot be chosen
    ),
    "POST /customers/{customer_id}/edit": Spec(
        form=lambda t: {
            "name": t.customer_name,
            "kind": "person",
            "lifecycle_stage": "prospect",
            "owner_id": str(t.owner),
            "version": str(t.customer_version),
        }
    ),
    "POST /customers/{customer_id}/restore": Spec(trashed=True),
    "POST /customers/{customer_id}/erase": Spec(form=lambda t: {"confirm_name": t.customer_name}),
    # pages: orders
    "GET /orders": Spec(query=lambda t: {"customer_id": str(t.customer)}, scoped=True),
    "GET /orders/new": Spec(query=lambda t: {"customer_id": str(t.customer)}, scoped=True),
    "POST /orders/new": Spec(
        form=lambda t: {
            "customer_id": str(t.customer),
            "status": "draft",
            "currency": "EUR",
            **_line(t),
        },
        scoped=True,
        out_status=422,  # "choose another customer", as for one that does not exist
    ),
    "POST /orders/preview": Spec(form=lambda t: {"currency": "EUR", **_line(t)}),
    "GET /orders/new/line": Spec(query=lambda t: {"index": "1"}),
    "GET /orders/new/customers": Spec(query=lambda t: {"customer_q": _prefix(t)}, scoped=True),
    "GET /orders/new/customer": Spec(query=lambda t: {"customer_id": str(t.customer)}, scoped=True),
    "POST /orders/{order_id}/status": Spec(
        form=lambda t: {"status": "placed", "version": str(t.order_version)}
    ),
    # pages: products
    "POST /products/new": Spec(
        form=lambda t: {"sku": f"W-{t.n}", "name": "Made", "unit_price": "2.00", "currency": "EUR"}
    ),
    "POST /products/{product_id}/edit": Spec(
        form=lambda t: {
            "sku": t.product_sku,
            "name": f"Renamed {t.n}",
            "unit_price": "3.00",
            "currency": "EUR",
            "version": str(t.product_version),
        }
    ),
    "POST /products/{product_id}/restore": Spec(trashed=True),
    # pages: users, teams, keys, preferences
    "POST /preferences/language": Spec(form=lambda t: {"locale": "", "next": "/"}),
    "POST /admin/users/new": Spec(
        form=lambda t: {
            "email": f"web-{t.n}@example.com",
            "name": "Made",
            "password": PASSWORD,
            "role": "sales",
            "team_id": "",
        }
    ),
    "POST /admin/users/{user_id}/role": Spec(form=lambda t: {"role": "support"}),
    "POST /admin/users/{user_id}/team": Spec(form=lambda t: {"team_id": str(t.home_team)}),
    "POST /admin/users/{user_id}/password": Spec(
        form=lambda t: {"password": PASSWORD + "x", "password_confirm": PASSWORD + "x"}
    ),
    "POST /profile/api-keys": Spec(form=lambda t: {"name": "sync"}),
    "POST /profile/api-keys/{key_id}/revoke": Spec(callers_key=True),
    "POST /admin/teams/new": Spec(form=lambda t: {"name": f"Team {t.n}"}),
    "POST /admin/teams/{team_id}/rename": Spec(form=lambda t: {"name": f"Renamed team {t.n}"}),
    # API: segments and campaigns
    "POST /api/v1/segments": Spec(json=lambda t: {"name": f"Seg {t.n}", "definition": _EVERYONE}),
    "POST /api/v1/segments/preview": Spec(json=lambda t: {"definition": _EVERYONE}, scoped=True),
    "PATCH /api/v1/segments/{segment_id}": Spec(json=lambda t: {"name": f"Renamed {t.n}"}),
    "POST /api/v1/segments/{segment_id}/restore": Spec(trashed=True),
    "GET /api/v1/segments/{segment_id}/members": Spec(query=lambda t: {"limit": "500"}),
    "POST /api/v1/campaigns": Spec(json=lambda t: _campaign_body(t.segment, t.n)),
    "PATCH /api/v1/campaigns/{campaign_id}": Spec(json=lambda t: {"name": f"Renamed {t.n}"}),
    "POST /api/v1/campaigns/{campaign_id}/restore": Spec(trashed=True),
    "POST /api/v1/campaigns/{campaign_id}/responses": Spec(
        json=lambda t: {"customer_id": t.customer, "kind": "delivered"}
    ),
    "GET /api/v1/campaigns/{campaign_id}/members": Spec(query=lambda t: {"limit": "500"}),
    # pages: segments and campaigns
    "POST /segments/new": Spec(
        form=lambda t: {"name": f"Seg {t.n}", "field": "kind", "op": "eq", "value": "person"}
    ),
    "POST /segments/{segment_id}/edit": Spec(
        form=lambda t: {"name": f"Renamed {t.n}", "version": "1", "field": "", "op": "eq"}
    ),
    "POST /segments/preview": Spec(
        form=lambda t: {"field": "kind", "op": "eq", "value": "person"}, scoped=True
    ),
    "POST /campaigns/new": Spec(
        form=lambda t: {k: str(v) for k, v in _campaign_body(t.segment, t.n).items()}
    ),
    "POST /campaigns/{campaign_id}/edit": Spec(
        form=lambda t: {
            **{k: str(v) for k, v in _campaign_body(t.segment, t.n).items()},
            "version": "1",
            "channel": "email",
            "budget": "5.00",
            "currency": "EUR",
            "holdout_percent": "0",
            "attribution_days": "30",
        }
    ),
    "POST /campaigns/preview": Spec(form=lambda t: _campaign_body(t.segment, t.n)),
    "POST /campaigns/{campaign_id}/status": Spec(form=lambda t: {"status": "cancelled"}),
    # API: analytics; long enough pages to hold every customer of the world
    "GET /api/v1/analytics/rfm": Spec(query=lambda t: {"limit": "500"}, customer_list=True),
    "GET /api/v1/analytics/clv": Spec(query=lambda t: {"limit": "500"}, customer_list=True),
    "GET /api/v1/analytics/churn": Spec(query=lambda t: {"limit": "500"}, customer_list=True),
    "GET /api/v1/analytics/export/{table}.csv": Spec(customer_list=True),
    # API: service desk
    "GET /api/v1/tickets": Spec(query=lambda t: {"customer_id": t.customer}, scoped=True),
    "POST /api/v1/tickets": Spec(
        json=lambda t: {
            "customer_id": t.customer,
            "type": "complaint",
            "subject": "Made",
            "description": "Made here",
        },
        scoped=True,
        out_status=422,  # as for a customer that does not exist
    ),
    # API: the pipeline, interactions and tasks
    "POST /api/v1/opportunities": Spec(
        json=lambda t: {
            "customer_id": t.customer,
            "title": f"Made {t.n}",
            "amount": "10.00",
            "owner_id": t.caller,
        },
        scoped=True,
        out_status=422,  # as for a customer that does not exist
    ),
    "PATCH /api/v1/tickets/{ticket_id}": Spec(json=lambda t: {"subject": f"Changed {t.n}"}),
    "POST /api/v1/tickets/{ticket_id}/restore": Spec(trashed=True),
    "POST /api/v1/tickets/{ticket_id}/priority": Spec(
        json=lambda t: {"priority": "P1", "reason": "Key account"}
    ),
    "POST /api/v1/tickets/{ticket_id}/assign": Spec(json=lambda t: {"assignee_id": t.caller}),
    "POST /api/v1/tickets/bulk-assign": Spec(
        json=lambda t: {"ticket_ids": [t.ticket], "assignee_id": t.caller},
        needs_ticket=True,
        scoped=True,
        out_status=422,  # as for a ticket that does not exist
    ),
    "POST /api/v1/tickets/{ticket_id}/messages": Spec(json=lambda t: {"body": "On it."}),
    "POST /api/v1/tickets/{ticket_id}/satisfaction": Spec(
        json=lambda t: {"rating": 4}, ticket_status="resolved"
    ),
    "POST /api/v1/tickets/{ticket_id}/survey-link": Spec(ticket_status="resolved"),
    "PATCH /api/v1/sla-policies/{priority}": Spec(json=lambda t: {"resolution_minutes": 4320}),
    # pages: service desk
    "GET /service-desk": Spec(query=lambda t: {"customer_id": str(t.customer)}, scoped=True),
    "POST /service-desk/bulk-assign": Spec(
        form=lambda t: {"ticket_ids": str(t.ticket), "assignee_id": "me"},
        needs_ticket=True,
        scoped=True,
        out_status=422,  # the queue says the ticket does not exist
    ),
    "GET /service-desk/tickets/new": Spec(
        query=lambda t: {"customer_id": str(t.customer)}, scoped=True
    ),
    "POST /service-desk/tickets/new": Spec(
        form=lambda t: {
            "customer_id": str(t.customer),
            "type": "complaint",
            "channel": "email",
            "subject": "Made",
            "description": "Made here",
        },
        scoped=True,
        out_status=422,  # the form says there is no such customer
    ),
    "PATCH /api/v1/opportunities/{opportunity_id}": Spec(json=lambda t: {"title": "changed"}),
    "POST /api/v1/opportunities/{opportunity_id}/move": Spec(
        json=lambda t: {"stage_id": t.stage, "position": 0}
    ),
    "POST /api/v1/opportunities/{opportunity_id}/order": Spec(
        json=lambda t: {"lines": [{"product_id": t.product, "quantity": 1}]}
    ),
    "POST /api/v1/opportunities/{opportunity_id}/restore": Spec(trashed=True),
    "POST /api/v1/pipeline-stages": Spec(
        json=lambda t: {"name": f"Stage {t.n}", "probability": 20}
    ),
    "PATCH /api/v1/pipeline-stages/{stage_id}": Spec(json=lambda t: {"probability": 30}),
    "POST /api/v1/interactions": Spec(
        json=lambda t: {"customer_id": t.customer, "kind": "note", "subject": f"Note {t.n}"},
        scoped=True,
        out_status=422,  # as for a customer that does not exist
    ),
    "PATCH /api/v1/interactions/{interaction_id}": Spec(json=lambda t: {"subject": "changed"}),
    "POST /api/v1/interactions/{interaction_id}/restore": Spec(trashed=True),
    "POST /api/v1/tasks": Spec(
        json=lambda t: {"title": f"Task {t.n}", "assignee_id": t.owner},
        scoped=True,
        out_status=403,  # a task cannot be given to someone out of scope
    ),
    "PATCH /api/v1/tasks/{task_id}": Spec(json=lambda t: {"title": "changed"}),
    "POST /api/v1/tasks/{task_id}/restore": Spec(trashed=True),
    # pages: the pipeline, interactions and tasks
    "POST /pipeline/move": Spec(
        form=lambda t: {
            "opportunity_id": str(t.opportunity),
            "stage_id": str(t.stage),
            "position": "0",
        },
        scoped=True,
        out_status=404,  # the card is named in the form: as if it did not exist
    ),
    "GET /opportunities/new": Spec(query=lambda t: {"customer_id": str(t.customer)}, scoped=True),
    "POST /opportunities/new": Spec(
        form=lambda t: {
            "customer_id": str(t.customer),
            "title": f"Made {t.n}",
            "amount": "5.00",
            "currency": "EUR",
            "owner_id": str(t.caller),
        },
        scoped=True,
        out_status=422,  # the form says there is no such customer
    ),
    "POST /service-desk/tickets/{ticket_id}/messages": Spec(form=lambda t: {"body": "On it."}),
    "POST /service-desk/tickets/{ticket_id}/status": Spec(form=lambda t: {"status": "open"}),
    "POST /service-desk/tickets/{ticket_id}/priority": Spec(
        form=lambda t: {"priority": "P1", "reason": "Key account"}
    ),
    "POST /service-desk/tickets/{ticket_id}/assign": Spec(form=lambda t: {"assignee_id": "me"}),
    "POST /service-desk/tickets/{ticket_id}/survey-link": Spec(ticket_status="resolved"),
    "POST /service-desk/sla/{priority}": Spec(
        form=lambda t: {"first_response_minutes": "480", "resolution_minutes": "4320"}
    ),
    "POST /pipeline/stages/new": Spec(
        form=lambda t: {"name": f"Stage {t.n}", "probability": "20", "kind": "open"}
    ),
    "POST /pipeline/stages/{stage_id}": Spec(
        form=lambda t: {"name": f"Stage {t.n}", "probability": "30", "kind": "open"}
    ),
    "POST /opportunities/{opportunity_id}/move": Spec(form=lambda t: {"stage_id": str(t.stage)}),
    "POST /opportunities/{opportunity_id}/edit": Spec(
        form=lambda t: {
            "title": "changed",
            "amount": "5.00",
            "currency": "EUR",
            "owner_id": str(t.owner),
            "version": str(t.opportunity_version),
        }
    ),
    "POST /opportunities/{opportunity_id}/order": Spec(
        form=lambda t: {"product_id": str(t.product), "quantity": "1"}
    ),
    "POST /customers/{customer_id}/interactions": Spec(
        form=lambda t: {"kind": "note", "subject": f"Note {t.n}"}
    ),
    "POST /tasks/new": Spec(form=lambda t: {"title": f"Task {t.n}"}),
}


_EVERYONE: dict[str, Any] = {"all": []}


def _campaign_body(segment: int, n: int) -> dict[str, Any]:
    return {
        "name": f"Campaign {n}",
        "segment_id": segment,
        "subject_template": "Hello {{ first_name }}",
        "body_template": "News for {{ name }}",
    }


def _campaign_state(endpoint: Endpoint, spec: Spec) -> str:
    """The state of the campaign a route works on: a draft to launch, change or delete,
    one in the trash to restore, else one launched (with members and responses)."""
    if spec.trashed:
        return "trashed"
    if endpoint.path.endswith(("/launch", "/edit")) or endpoint.method in ("PATCH", "DELETE"):
        return "draft"
    return "running"


def _spec(endpoint: Endpoint) -> Spec:
    return SPECS.get(endpoint.key, Spec())


# --- the cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    endpoint: Endpoint
    role: Role
    variant: str  # "denied", "in" (scope) or "out"

    @property
    def id(self) -> str:
        return f"{self.endpoint.key} as {self.role.value} {self.variant}"


def _has_out_case(endpoint: Endpoint) -> bool:
    """Whether the route works on customers or orders so that scope matters to it."""
    if not any(p.startswith(SCOPED_PERMISSIONS) for p in endpoint.permissions):
        return False
    return (
        bool(SCOPED_PARAMS & set(endpoint.params))
        or _spec(endpoint).scoped
        or endpoint.method == "GET"
    )


def cases() -> Iterator[Case]:
    for endpoint in ENDPOINTS:
        if not endpoint.signed_in:
            continue  # public (allowlisted above)
        for role in Role:
            if not endpoint.permissions <= ROLE_PERMISSIONS[role]:
                yield Case(endpoint, role, "denied")
                continue
            yield Case(endpoint, role, "in")
            if scope_of(role) is not Scope.ALL and _has_out_case(endpoint):
                yield Case(endpoint, role, "out")


CASES = list(cases())


# --- the world the cases run in ---------------------------------------------------------


@dataclass
class Caller:
    user_id: int
    token: str
    client: TestClient


@dataclass
class World:
    app: FastAPI
    sessions: sessionmaker[Session]
    callers: dict[Role, Caller]
    outsider: int
    home_team: int
    product: int
    csrf: str
    run: int = 0
    stages: dict[str, int] = field(default_factory=dict)  # the pipeline's, by name
    shared: dict[tuple[Role, str], Target] = field(default_factory=dict)
    # Customers with purchases in the analytics run, per (role, variant).
    analytics: dict[tuple[Role, str], Target] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # records, each in a transaction of its own
    def customer(self, owner: int, *, out: bool, trashed: bool = False) -> tuple[int, str, int]:
        n = next(self.counter)
        name = f"{MARKER} Person{n}" if out else f"Insider Person{n}"
        with unit_of_work(self.sessions) as s:
            actor = security_service.get_user(session=s, user_id=owner)
            customer = customers_service.create(
                session=s,
                data=CustomerCreate(name=name, email=f"c{n}@example.com"),
                actor=actor,
                scope=EVERYTHING,
            )
            if trashed:
                customers_service.trash(session=s, customer=customer)
        return customer.id, name, customer.version

    def order(self, customer: int, *, out: bool, trashed: bool = False) -> tuple[int, int]:
        with unit_of_work(self.sessions) as s:
            data = OrderCreate(
                customer_id=customer,
                lines=[OrderLineIn(product_id=self.product, quantity=1)],
                notes=f"{MARKER} order" if out else "our order",
            )
            order = orders_service.create(session=s, data=data, scope=EVERYTHING)
            if trashed:
                orders_service.trash(session=s, order=order)
        return order.id, order.version

    def ticket(self, customer: int, *, out: bool, trashed: bool, status: str | None) -> int:
        with unit_of_work(self.sessions) as s:
            ticket = desk_service.create(
                session=s,
                data=TicketCreate(
                    customer_id=customer,
                    type=TicketType.COMPLAINT,
                    subject=f"{MARKER} ticket" if out else "our ticket",
                    description="It broke",
                ),
                scope=EVERYTHING,
                actor_id=None,
                hours=desk_sla.parse_hours("mon-fri 09:00-17:00"),
            )
            if status is not None:
                ticket.status = status
                ticket.resolved_at = ticket.created_at
            if trashed:
                desk_service.trash(session=s, ticket=ticket)
            return ticket.id

    def new_product(self, *, trashed: bool = False) -> tuple[int, str, int]:
        sku = f"P-{next(self.counter)}"
        with unit_of_work(self.sessions) as s:
            data = ProductCreate(sku=sku, name="Widget", unit_price="2.50")
            product = catalog_service.create(session=s, data=data)
            if trashed:
                catalog_service.trash(session=s, product=product)
        return product.id, sku, product.version

    def user(self) -> int:
        with unit_of_work(self.sessions) as s:
            data = UserCreate(
                email=f"target-{next(self.counter)}@example.com",
                name="Target",
                password=PASSWORD,
                role=Role.SALES,
            )
            return security_service.create_user(session=s, data=data).id

    def key(self, user_id: int) -> int:
        with unit_of_work(self.sessions) as s:
            user = security_service.get_user(session=s, user_id=user_id)
            return security_service.create_api_key(session=s, user=user, name="k")[0].id

    def team(self) -> int:
        with unit_of_work(self.sessions) as s:
            data = TeamCreate(name=f"Empty team {next(self.counter)}")
            return security_service.create_team(session=s, data=data).id

    def target(self, case: Case) -> Target:
        """The records of a case: shared for reads, made fresh for anything else."""
        endpoint, spec = case.endpoint, _spec(case.endpoint)
        out = case.variant == "out"
        caller = self.callers[case.role].user_id
        owner = self.outsider if out else caller
        analytics = endpoint.path.startswith((ANALYTICS, ANALYTICS_PAGES))
        if analytics and (case.role, case.variant) in self.analytics:
            return self.analytics[(case.role, case.variant)]
        if endpoint.method == "GET" and (case.role, case.variant) in self.shared:
            shared = self.shared[(case.role, case.variant)]
            if endpoint.path.startswith(MARKETING) and not shared.campaign:
                segment = self.segment()
                shared = replace(
                    shared, segment=segment, campaign=self.campaign(segment, "running")
                )
                self.shared[(case.role, case.variant)] = shared
            return shared
        params = set(endpoint.params)
        trashed = spec.trashed and not (
            params & {"order_id", "product_id", "ticket_id", *PIPELINE_PARAMS}
        )
        customer, name, customer_version = self.customer(owner, out=out, trashed=trashed)
        order, order_version = (
            self.order(customer, out=out, trashed=spec.trashed)
            if "order_id" in params or endpoint.method == "GET"
            else (0, 0)
        )
        product, sku, product_version = (
            self.new_product(trashed=spec.trashed)
            if "product_id" in params
            else (self.product, "", 0)
        )
        ticket = (
            self.ticket(customer, out=out, trashed=spec.trashed, status=spec.ticket_status)
            if "ticket_id" in params or spec.needs_ticket or endpoint.method == "GET"
            else 0
        )
        user = self.user() if "user_id" in params else self.outsider
        segment = campaign = 0
        if endpoint.path.startswith(MARKETING):
            segment = self.segment(trashed=spec.trashed and "segment_id" in params)
            if "campaign_id" in params or endpoint.method == "GET":
                campaign = self.campaign(segment, _campaign_state(endpoint, spec))
        key_owner = caller if spec.callers_key else user
        target = Target(
            caller=caller,
            owner=owner,
            customer=customer,
            customer_name=name,
            customer_version=customer_version,
            order=order,
            order_version=order_version,
            product=product,
            product_sku=sku,
            product_version=product_version,
            user=user,
            key=self.key(key_owner) if "key_id" in params else 0,
            team=(
                self.team() if "team_id" in params and endpoint.method != "GET" else self.home_team
            ),
            home_team=self.home_team,
            n=next(self.counter),
            run=self.run,
            ticket=ticket,
            segment=segment,
            campaign=campaign,
        )
        self.pipeline_records(target, endpoint, spec, out=out)
        if endpoint.method == "GET":
            self.shared[(case.role, case.variant)] = target
        return target

    def pipeline_records(self, t: Target, endpoint: Endpoint, spec: Spec, *, out: bool) -> None:
        """The opportunity, interaction, task and stage a request names, made for it."""
        params, read = set(endpoint.params), endpoint.method == "GET"
        if spec.trashed and not (params & {"order_id", "product_id", *PIPELINE_PARAMS}):
            return  # the customer is in the trash: nothing more to make for it
        read = read or spec.scoped  # the records a form or body names
        label = f"{MARKER} {t.n}" if out else f"Ours {t.n}"
        with unit_of_work(self.sessions) as s:
            if "opportunity_id" in params or read:
                won = endpoint.path.endswith("/order")
                opportunity = pipeline_service.create(
                    session=s,
                    data=OpportunityCreate(
                        customer_id=t.customer,
                        title=label,
                        amount=Decimal("100.00"),
                        owner_id=t.owner,
                        stage_id=self.stages["Won" if won else "Qualification"],
                    ),
                    actor_id=t.owner,
                    scope=EVERYTHING,
                )
                if spec.trashed and "opportunity_id" in params:
                    pipeline_service.trash(session=s, opportunity=opportunity)
                t.opportunity, t.opportunity_version = opportunity.id, opportunity.version
            if "interaction_id" in params or read:
                interaction = interactions_service.log(
                    session=s,
                    data=InteractionCreate(customer_id=t.customer, kind="note", subject=label),
                    author_id=t.owner,
                    scope=EVERYTHING,
                )
                if spec.trashed and "interaction_id" in params:
                    interactions_service.trash_interaction(session=s, interaction=interaction)
                t.interaction = interaction.id
            if "task_id" in params or read:
                task = interactions_service.create_task(
                    session=s,
                    data=TaskCreate(title=label, assignee_id=t.owner, customer_id=t.customer),
                    actor_id=t.owner,
                    scope=EVERYTHING,
                )
                if spec.trashed and "task_id" in params:
                    interactions_service.trash_task(session=s, task=task)
                t.task = task.id
            if "stage_id" in params and not read:
                stage = pipeline_service.create_stage(
                    session=s, data=StageCreate(name=f"Stage {t.n}", probability=20)
                )
                t.stage = stage.id
            else:
                t.stage = self.stages["Proposal"]

    def segment(self, *, trashed: bool = False) -> int:
        """A segment of every customer."""
        with unit_of_work(self.sessions) as s:
            data = SegmentCreate(name=f"Everyone {next(self.counter)}", definition=_EVERYONE)
            segment = marketing_service.create_segment(session=s, data=data, scope=EVERYTHING)
            if trashed:
                marketing_service.trash_segment(session=s, segment=segment)
            return segment.id

    def campaign(self, segment: int, state: str) -> int:
        """An email campaign to ``segment``: a draft, in the trash, or launched to every
        customer (those out of the callers' scope too) with a response recorded."""
        with unit_of_work(self.sessions) as s:
            data = CampaignCreate.model_validate(_campaign_body(segment, next(self.counter)))
            campaign = marketing_service.create_campaign(session=s, data=data)
            if state == "trashed":
                marketing_service.trash_campaign(session=s, campaign=campaign)
            if state == "running":
                marketing_service.launch(session=s, campaign=campaign, scope=EVERYTHING)
            return campaign.id

    def analytics_run(self) -> None:
        """A stored run over simulated shoppers (unowned: out of every restricted scope)
        and, for every role that reads analytics, a customer of the caller's with
        purchases and, for a restricted scope, the outsider's."""
        shop = _OutsideShop(self.sessions)
        history = simulate(shop, 300, seed=7)  # enough for every model to fit
        tea = shop.products["tea"]
        made: dict[tuple[Role, str], tuple[int, str, int, int]] = {}
        for role in Role:
            if ANALYTICS_READ not in ROLE_PERMISSIONS[role]:
                continue
            variants = ("in",) if scope_of(role) is Scope.ALL else ("in", "out")
            for variant in variants:
                out = variant == "out"
                owner = self.outsider if out else self.callers[role].user_id
                customer, name, version = self.customer(owner, out=out)
                order = self.purchases(customer, out=out, products=(self.product, tea))
                made[(role, variant)] = (customer, name, version, order)
        with unit_of_work(self.sessions, write=False) as s:
            computed = analytics_run.compute(
                session=s,
                options=analytics_run.RunOptions(
                    as_of=AS_OF, churn_horizon_days=60, min_support=0.05, min_confidence=0.3
                ),
            )
        assert computed.skipped == {}, computed.skipped
        assert computed.activity.size == len(history.orders) + len(made)
        with unit_of_work(self.sessions) as s:
            self.run = analytics_run.save(session=s, computed=computed)
        for (role, variant), (customer, name, version, order) in made.items():
            caller = self.callers[role].user_id
            self.analytics[(role, variant)] = Target(
                caller=caller,
                owner=self.outsider if variant == "out" else caller,
                customer=customer,
                customer_name=name,
                customer_version=version,
                order=order,
                order_version=1,
                product=self.product,  # sold in the run: it has products bought with it
                product_sku="",
                product_version=0,
                user=self.outsider,
                key=0,
                team=self.home_team,
                home_team=self.home_team,
                n=next(self.counter),
                run=self.run,
            )

    def purchases(self, customer: int, *, out: bool, products: tuple[int, ...]) -> int:
        """Paid orders before the run's date; returns the last one's id."""
        order_id = 0
        for days_before in (400, 150, 20):
            when = datetime.combine(AS_OF - timedelta(days=days_before), time(12), tzinfo=UTC)
            with unit_of_work(self.sessions) as s:
                data = OrderCreate(
                    customer_id=customer,
                    status=OrderStatus.PAID,
                    ordered_at=when,
                    lines=[OrderLineIn(product_id=p, quantity=1) for p in products],
                    notes=f"{MARKER} order" if out else "our order",
                )
                order_id = orders_service.create(session=s, data=data, scope=EVERYTHING).id
        return order_id

    def reached(self, role: Role, customer_ids: set[int]) -> set[int]:
        """Those of ``customer_ids`` in the scope of ``role``'s caller."""
        with unit_of_work(self.sessions, write=False) as s:
            scope = security_service.scope_for(
                session=s, user_id=self.callers[role].user_id, role=role
            )
            if scope.owners is None:
                return set(customer_ids)
            owned = s.scalars(
                select(Customer.id).where(
                    Customer.id.in_(sorted(customer_ids)),
                    Customer.owner_id.in_(sorted(scope.owners)),
                )
            )
            return set(owned)

    def sign_in(self, user_id: int) -> str:
        with unit_of_work(self.sessions) as s:
            user = security_service.get_user(session=s, user_id=user_id)
            token, _user = security_service.login(
                session=s, email=user.email, password=PASSWORD, ttl_seconds=3600
            )
            return token

    def browser(self, token: str) -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        client.cookies.set("tenure_session", token)
        client.cookies.set("tenure_csrf", self.csrf)
        return client


class _OutsideShop(Shop):
    """Simulated shoppers carry ``MARKER``: they belong to no one, so they are out of
    every restricted scope."""

    def customer(self, name: str = "Ann") -> int:
        return super().customer(f"{MARKER} {name}")


def _database(tmp: Path, keyring_file: Path) -> Iterator[tuple[Settings, Engine]]:
    url = _create_pg_database(POSTGRES_URL) if POSTGRES_URL else ""
    settings = Settings(
        data_dir=tmp,
        database_url=url or None,
        keyring_file=keyring_file,
        operations_sample_seconds=0,
    )
    engine = make_engine(settings)
    migrate.upgrade(engine, sealer=fields.sealer_for(settings))
    yield settings, engine
    engine.dispose()
    if url and POSTGRES_URL:
        _drop_pg_database(POSTGRES_URL, url)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, keyring_file: Path) -> Iterator[World]:
    for settings, engine in _database(tmp_path_factory.mktemp("matrix"), keyring_file):
        sessions = make_sessionmaker(engine, sealer=fields.sealer_for(settings))
        with unit_of_work(sessions) as s:
            home = security_service.create_team(session=s, data=TeamCreate(name="Home")).id
            away = security_service.create_team(session=s, data=TeamCreate(name="Away")).id
            ids = {
                role: security_service.create_user(
                    session=s,
                    data=UserCreate(
                        email=f"{role.value}@example.com",
                        name=f"The {role.value}",
                        password=PASSWORD,
                        role=role,
                        team_id=home,
                    ),
                ).id
                for role in Role
            }
            outsider = security_service.create_user(
                session=s,
                data=UserCreate(
                    email="outsider@example.com",
                    name="Other Rep",
                    password=PASSWORD,
                    role=Role.SALES,
                    team_id=away,
                ),
            ).id
            product = catalog_service.create(
                session=s, data=ProductCreate(sku="BASE-1", name="Base", unit_price="5.00")
            ).id
            stages = {st.name: st.id for st in pipeline_service.list_stages(session=s)}
        # Campaigns are sent for real, to a local mail server.
        sink = Sink("127.0.0.1", free_port())
        mail = Controller(sink, hostname=sink.host, port=sink.port)
        mail.start()
        mail_settings = {
            "smtp_host": sink.host,
            "smtp_port": sink.port,
            "smtp_starttls": False,
            "smtp_rate": 10_000.0,
        }
        app = create_app(settings.model_copy(update=mail_settings), engine=engine)
        world = World(
            app=app,
            sessions=sessions,
            callers={},
            outsider=outsider,
            home_team=home,
            product=product,
            csrf=secrets.token_urlsafe(16),
            stages=stages,
        )
        for role, user_id in ids.items():
            token = world.sign_in(user_id)
            world.callers[role] = Caller(user_id, token, world.browser(token))
        # Out of everyone's reach but the unrestricted roles': also in the trash.
        world.customer(outsider, out=True, trashed=True)
        world.analytics_run()
        yield world
        for caller in world.callers.values():
            caller.client.close()
        mail.stop()


def send(world: World, case: Case, target: Target) -> httpx.Response:
    endpoint, spec = case.endpoint, _spec(case.endpoint)
    caller = world.callers[case.role]
    token, client = caller.token, caller.client
    if spec.fresh_login:
        token = world.sign_in(caller.user_id)
        client = world.browser(token)
    path = endpoint.path
    for name in endpoint.params:
        value = getattr(target, name.removesuffix("_id"))
        path = path.replace("{" + name + "}", str(value)).replace("{" + name + ":int}", str(value))
    headers = {"Authorization": f"Bearer {token}"} if endpoint.api else {}
    if not endpoint.api and endpoint.method != "GET":
        headers["X-CSRF-Token"] = world.csrf
    return client.request(
        endpoint.method,
        path,
        params=spec.query(target) if spec.query else None,
        json=spec.json(target) if spec.json else None,
        data=spec.form(target) if spec.form else None,
        headers=headers,
    )


def _customers_shown(r: httpx.Response) -> set[int]:
    """The customer ids an analytics answer names: ``customer_id`` anywhere in the JSON,
    or the CSV column."""
    if r.headers.get("content-type", "").startswith("text/csv"):
        return {int(row["customer_id"]) for row in csv.DictReader(io.StringIO(r.text))}
    found: set[int] = set()
    pending: list[Any] = [r.json()]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if isinstance(value.get("customer_id"), int):
                found.add(value["customer_id"])
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return found


def _refused(r: httpx.Response) -> bool:
    login_redirect = r.status_code == 303 and r.headers["location"].startswith("/login")
    return r.status_code >= 400 or login_redirect


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_role_gets_what_its_permission_and_scope_allow(world: World, case: Case) -> None:
    endpoint, spec = case.endpoint, _spec(case.endpoint)
    target = world.target(case)

    r = send(world, case, target)

    if case.variant == "denied":
        assert r.status_code == 403, r.text[:300]
        if endpoint.api:
            assert r.json()["type"] == "urn:tenure:problem:permission-denied"
        else:
            assert r.headers["content-type"].startswith("text/html")
        return
    scoped_path = bool(SCOPED_PARAMS & set(endpoint.params))
    if case.variant == "out" and scoped_path:
        assert r.status_code == 404, r.text[:300]
    elif case.variant == "out" and spec.out_status is not None:
        assert r.status_code == spec.out_status, r.text[:300]
    else:
        assert not _refused(r), f"{r.status_code} {r.headers.get('location', '')} {r.text[:300]}"
    if endpoint.path.startswith(ANALYTICS) and r.status_code < 400:
        shown = _customers_shown(r)
        assert world.reached(case.role, shown) == shown, "a customer out of scope was shown"
        if spec.customer_list:
            own = world.analytics[(case.role, "in")].customer
            assert own in shown, "the caller's own customer is missing from the list"
    if case.variant == "out":
        assert MARKER not in r.text, "a record out of scope was shown"
        for link in (
            f'href="/customers/{target.customer}"',
            f'href="/orders/{target.order}"',
            f'href="/service-desk/tickets/{target.ticket}"',
            f'href="/opportunities/{target.opportunity}"',
        ):
            assert link not in r.text, f"a record out of scope was linked: {link}"
