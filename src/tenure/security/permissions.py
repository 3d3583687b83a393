"""Roles, the permissions each one grants and the records each one reaches: the one
table access control reads."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    SALES = "sales"
    SUPPORT = "support"
    MARKETING = "marketing"
    ANALYST = "analyst"
    AUDITOR = "auditor"


CUSTOMERS_READ = "customers:read"
CUSTOMERS_WRITE = "customers:write"
CUSTOMERS_DELETE = "customers:delete"
CUSTOMERS_EXPORT = "customers:export"
CUSTOMERS_ERASE = "customers:erase"
# See sensitive fields (email, phone, address, birth date, tax id) in clear; audited.
CUSTOMERS_REVEAL = "customers:reveal"
PRODUCTS_READ = "products:read"
PRODUCTS_WRITE = "products:write"
ORDERS_READ = "orders:read"
ORDERS_WRITE = "orders:write"
USERS_READ = "users:read"
USERS_WRITE = "users:write"
API_KEYS_MANAGE = "api_keys:manage"
AUDIT_READ = "audit:read"
OPERATIONS_READ = "operations:read"
ANALYTICS_READ = "analytics:read"
TICKETS_READ = "tickets:read"
TICKETS_WRITE = "tickets:write"
TICKETS_ASSIGN = "tickets:assign"
SERVICE_ADMIN = "service:admin"  # service level policies
OPPORTUNITIES_READ = "opportunities:read"
OPPORTUNITIES_WRITE = "opportunities:write"
PIPELINE_ADMIN = "pipeline:admin"  # the pipeline's stages
INTERACTIONS_READ = "interactions:read"
INTERACTIONS_WRITE = "interactions:write"
TASKS_READ = "tasks:read"
TASKS_WRITE = "tasks:write"
SEGMENTS_READ = "segments:read"
SEGMENTS_WRITE = "segments:write"
CAMPAIGNS_READ = "campaigns:read"
CAMPAIGNS_WRITE = "campaigns:write"
CAMPAIGNS_SEND = "campaigns:send"
_MARKETING = frozenset(
    {SEGMENTS_READ, SEGMENTS_WRITE, CAMPAIGNS_READ, CAMPAIGNS_WRITE, CAMPAIGNS_SEND}
)

ALL_PERMISSIONS = frozenset({
    CUSTOMERS_READ, CUSTOMERS_WRITE, CUSTOMERS_DELETE, CUSTOMERS_EXPORT, CUSTOMERS_ERASE,
    CUSTOMERS_REVEAL,
    PRODUCTS_READ, PRODUCTS_WRITE,
    ORDERS_READ, ORDERS_WRITE,
    USERS_READ, USERS_WRITE,
    API_KEYS_MANAGE,
    AUDIT_READ,
    OPERATIONS_READ,
    ANALYTICS_READ,
    TICKETS_READ, TICKETS_WRITE, TICKETS_ASSIGN, SERVICE_ADMIN,
    OPPORTUNITIES_READ, OPPORTUNITIES_WRITE, PIPELINE_ADMIN,
    INTERACTIONS_READ, INTERACTIONS_WRITE,
    TASKS_READ, TASKS_WRITE,
}) | _MARKETING  # fmt: skip

_READ_RECORDS = frozenset({CUSTOMERS_READ, PRODUCTS_READ, ORDERS_READ, TICKETS_READ})
_WORK_TICKETS = frozenset({TICKETS_WRITE, TICKETS_ASSIGN})
# The sales pipeline, interactions and tasks, by role.
_SELLING = frozenset({
    OPPORTUNITIES_READ, OPPORTUNITIES_WRITE, INTERACTIONS_READ, INTERACTIONS_WRITE,
    TASKS_READ, TASKS_WRITE,
})  # fmt: skip

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.ADMIN: ALL_PERMISSIONS,
    Role.MANAGER: _READ_RECORDS
    | {
        CUSTOMERS_WRITE,
        CUSTOMERS_DELETE,
        CUSTOMERS_EXPORT,
        CUSTOMERS_REVEAL,
        PRODUCTS_WRITE,
        ORDERS_WRITE,
        USERS_READ,
        API_KEYS_MANAGE,
        ANALYTICS_READ,
        PIPELINE_ADMIN,
    }
    | _WORK_TICKETS
    | _SELLING
    | _MARKETING,
    Role.SALES: _READ_RECORDS
    | {CUSTOMERS_WRITE, CUSTOMERS_DELETE, CUSTOMERS_REVEAL, ORDERS_WRITE, API_KEYS_MANAGE}
    | _SELLING
    | {CAMPAIGNS_READ},
    Role.SUPPORT: _READ_RECORDS
    | {CUSTOMERS_WRITE, CUSTOMERS_REVEAL, API_KEYS_MANAGE, OPPORTUNITIES_READ}
    | {INTERACTIONS_READ, INTERACTIONS_WRITE, TASKS_READ, TASKS_WRITE}
    | _WORK_TICKETS
    | {CAMPAIGNS_READ},
    Role.MARKETING: _READ_RECORDS
    | {API_KEYS_MANAGE, ANALYTICS_READ, INTERACTIONS_READ, OPPORTUNITIES_READ}
    | _MARKETING,
    Role.ANALYST: _READ_RECORDS
    | {API_KEYS_MANAGE, ANALYTICS_READ, OPPORTUNITIES_READ, INTERACTIONS_READ}
    | {SEGMENTS_READ, CAMPAIGNS_READ},
    Role.AUDITOR: _READ_RECORDS
    | {USERS_READ, AUDIT_READ, OPPORTUNITIES_READ, INTERACTIONS_READ, TASKS_READ},
}


class Scope(StrEnum):
    """Which customers (and their orders) a role reaches."""

    OWN = "own"  # the customers the user owns
    TEAM = "team"  # the customers owned by anyone in the user's team (and the user's own)
    ALL = "all"


ROLE_SCOPES: dict[Role, Scope] = {
    Role.ADMIN: Scope.ALL,
    Role.MANAGER: Scope.TEAM,
    Role.SALES: Scope.OWN,
    # Support answers whoever writes in, so it must find every customer.
    Role.SUPPORT: Scope.ALL,
    # Marketing, analysts and auditors work on the whole customer base (segments, figures,
    # reviews), and none of them can change a customer.
    Role.MARKETING: Scope.ALL,
    Role.ANALYST: Scope.ALL,
    Role.AUDITOR: Scope.ALL,
}


def has_permission(role: str, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(Role(role), frozenset())


def scope_of(role: str) -> Scope:
    return ROLE_SCOPES[Role(role)]
