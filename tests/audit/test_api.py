"""The audit log seen over HTTP: what requests record (sign-in, refusals, changes with the
caller and the request), and ``GET /api/v1/audit`` for auditors and administrators."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tenure.core.time import utcnow
from tenure.security.permissions import Role
from tests.audit.conftest import Entries
from tests.conftest import PASSWORD, Headers, MakeUser

LOGIN = "/api/v1/auth/login"
AUDIT = "/api/v1/audit"
Login = Callable[..., Headers]


def _me(client: TestClient, headers: Headers) -> dict[str, Any]:
    r = client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _create_customer(client: TestClient, headers: Headers, **fields: Any) -> int:
    r = client.post(
        "/api/v1/customers",
        json={"name": "Ada", **fields},
        headers={**headers, "X-Request-ID": "req-create-1"},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


# --- what requests record -----------------------------------------------------------------


def test_a_change_over_the_api_names_the_caller_the_request_and_the_client(
    client: TestClient, login: Login, entries: Entries
) -> None:
    headers = login(Role.SALES, email="sam@example.com")
    me = _me(client, headers)

    customer_id = _create_customer(client, headers, email="ada@example.com")

    [entry] = entries(action="customer.created")
    assert entry.entity_id == str(customer_id)
    assert (entry.actor_id, entry.actor_email) == (me["id"], "sam@example.com")
    assert (entry.request_id, entry.client_address) == ("req-create-1", "testclient")
    assert entry.changes["email"] == {"old": None, "new": "[masked]"}


def test_update_trash_and_restore_over_the_api_are_recorded(
    client: TestClient, admin: Headers, entries: Entries
) -> None:
    customer_id = _create_customer(client, admin)
    path = f"/api/v1/customers/{customer_id}"

    assert client.patch(path, json={"source": "fair"}, headers=admin).status_code == 200
    assert client.delete(path, headers=admin).status_code == 204
    assert client.post(f"{path}/restore", headers=admin).status_code == 200

    log = entries(entity_type="customer", entity_id=str(customer_id))
    assert [e.action for e in log] == [
        "customer.created",
        "customer.updated",
        "customer.trashed",
        "customer.restored",
    ]
    assert log[1].changes == {"source": {"old": None, "new": "fair"}}


def test_a_sign_in_is_recorded(client: TestClient, make_user: MakeUser, entries: Entries) -> None:
    user = make_user(Role.SALES, email="sam@example.com")

    r = client.post(LOGIN, json={"email": "sam@example.com", "password": PASSWORD})

    assert r.status_code == 200
    [entry] = entries(action="auth.login")
    assert (entry.actor_id, entry.actor_email) == (user.id, "sam@example.com")
    assert (entry.entity_type, entry.entity_id) == ("user", str(user.id))
    assert entry.client_address == "testclient"


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        ("sam@example.com", "not-the-password", "wrong password"),
        ("nobody@example.com", PASSWORD, "unknown account"),
    ],
)
def test_a_refused_sign_in_is_recorded_though_the_request_rolls_back(
    client: TestClient,
    make_user: MakeUser,
    entries: Entries,
    email: str,
    password: str,
    reason: str,
) -> None:
    make_user(Role.SALES, email="sam@example.com")

    r = client.post(LOGIN, json={"email": email.upper(), "password": password})

    assert r.status_code == 401
    [entry] = entries(action="auth.login_failed")
    assert entry.actor_email == email
    assert entry.details == {"reason": reason}
    assert "not-the-password" not in repr((entry.changes, entry.details))
    assert entries(action="auth.login") == []


def test_a_sign_in_to_a_disabled_account_is_recorded_as_refused(
    client: TestClient, make_user: MakeUser, admin: Headers, entries: Entries
) -> None:
    user = make_user(Role.SALES, email="sam@example.com")
    r = client.patch(f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin)
    assert r.status_code == 200

    r = client.post(LOGIN, json={"email": "sam@example.com", "password": PASSWORD})

    assert r.status_code == 401
    [entry] = entries(action="auth.login_failed")
    assert (entry.actor_id, entry.details) == (user.id, {"reason": "disabled"})
    assert [e.action for e in entries(entity_type="user", entity_id=str(user.id))][-2:] == [
        "user.disabled",
        "auth.login_failed",
    ]


def test_signing_out_is_recorded(client: TestClient, login: Login, entries: Entries) -> None:
    headers = login(Role.SUPPORT, email="sue@example.com")

    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204

    [entry] = entries(action="auth.logout")
    assert entry.actor_email == "sue@example.com"


def test_api_keys_created_and_revoked_are_recorded_without_the_key(
    client: TestClient, login: Login, entries: Entries
) -> None:
    headers = login(Role.SALES, email="sam@example.com")
    r = client.post("/api/v1/api-keys", json={"name": "sync"}, headers=headers)
    assert r.status_code == 201
    key_id, key = r.json()["id"], r.json()["key"]

    assert client.delete(f"/api/v1/api-keys/{key_id}", headers=headers).status_code == 204

    log = entries(entity_type="api_key")
    assert [e.action for e in log] == ["api_key.created", "api_key.revoked"]
    assert {e.actor_email for e in log} == {"sam@example.com"}
    assert key not in repr([(e.changes, e.details) for e in log])
    assert key[:12] in repr(log[0].changes)  # the prefix, shown in the UI too


def test_a_role_change_is_recorded_with_the_roles(
    client: TestClient, make_user: MakeUser, admin: Headers, entries: Entries
) -> None:
    user = make_user(Role.SALES)

    r = client.patch(f"/api/v1/users/{user.id}", json={"role": "manager"}, headers=admin)

    assert r.status_code == 200
    [entry] = entries(action="user.role_changed")
    assert (entry.entity_id, entry.changes) == (
        str(user.id),
        {"role": {"old": "sales", "new": "manager"}},
    )


def test_a_refused_request_is_recorded_and_changes_nothing_else(
    client: TestClient, login: Login, entries: Entries
) -> None:
    headers = login(Role.MARKETING, email="mo@example.com")
    me = _me(client, headers)
    before = len(entries())

    r = client.post(
        "/api/v1/customers",
        json={"name": "Nope"},
        headers={**headers, "X-Request-ID": "req-denied-1"},
    )

    assert r.status_code == 403
    [entry] = entries()[before:]
    assert entry.action == "access.denied"
    assert (entry.actor_id, entry.actor_email) == (me["id"], "mo@example.com")
    assert entry.request_id == "req-denied-1"
    assert entry.details == {
        "code": "permission-denied",
        "reason": "Your role (marketing) lacks 'customers:write'.",
        "method": "POST",
        "path": "/api/v1/customers",
        "route": "/api/v1/customers",
        "permission": "customers:write",
    }


def test_a_refused_read_is_recorded_too(client: TestClient, login: Login, entries: Entries) -> None:
    headers = login(Role.SALES)

    assert client.get("/api/v1/users", headers=headers).status_code == 403

    [entry] = entries(action="access.denied")
    assert (entry.details["method"], entry.details["path"]) == ("GET", "/api/v1/users")


# --- GET /api/v1/audit ----------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
def test_admins_and_auditors_read_the_log_newest_first(
    client: TestClient, login: Login, role: Role
) -> None:
    headers = login(role)

    r = client.get(AUDIT, headers=headers)

    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["action"] for i in items[:2]] == ["auth.login", "user.created"]
    seqs = [i["seq"] for i in items]
    assert seqs == sorted(seqs, reverse=True)
    assert set(items[0]) == {
        "id",
        "seq",
        "occurred_at",
        "actor_id",
        "actor_email",
        "action",
        "entity_type",
        "entity_id",
        "request_id",
        "client_address",
        "changes",
        "details",
        "prev_hash",
        "hash",
    }


@pytest.mark.parametrize("role", [Role.MANAGER, Role.SALES, Role.SUPPORT, Role.ANALYST])
def test_other_roles_may_not_read_the_log(client: TestClient, login: Login, role: Role) -> None:
    r = client.get(AUDIT, headers=login(role))

    assert r.status_code == 403
    assert r.json()["type"] == "urn:tenure:problem:permission-denied"


def test_the_log_filters_by_actor_action_and_record(
    client: TestClient, login: Login, make_user: MakeUser
) -> None:
    sales = login(Role.SALES, email="sam@example.com")
    sam = _me(client, sales)
    auditor = login(Role.AUDITOR)
    first = _create_customer(client, sales)
    second = _create_customer(client, sales)
    client.patch(f"/api/v1/customers/{first}", json={"notes": "x"}, headers=sales)

    def actions(**params: Any) -> list[tuple[str, str | None]]:
        r = client.get(AUDIT, params=params, headers=auditor)
        assert r.status_code == 200, r.text
        return [(i["action"], i["entity_id"]) for i in r.json()["items"]]

    assert actions(actor_id=sam["id"]) == [
        ("customer.updated", str(first)),
        ("customer.created", str(second)),
        ("customer.created", str(first)),
        ("auth.login", str(sam["id"])),
    ]
    assert actions(actor_email="SAM@example.com", action="auth.login") == [
        ("auth.login", str(sam["id"]))
    ]
    assert actions(entity_type="customer", entity_id=str(first)) == [
        ("customer.updated", str(first)),
        ("customer.created", str(first)),
    ]
    assert actions(action="customer.*", sort="seq") == [
        ("customer.created", str(first)),
        ("customer.created", str(second)),
        ("customer.updated", str(first)),
    ]
    assert actions(action="customer.%") == []  # a wildcard only at the end, as *


def test_the_log_filters_by_time_range(client: TestClient, admin: Headers) -> None:
    now = utcnow()
    hour = timedelta(hours=1)

    def count(**params: Any) -> int:
        r = client.get(AUDIT, params=params, headers=admin)
        assert r.status_code == 200, r.text
        return len(r.json()["items"])

    everything = count()
    assert everything >= 2
    assert count(since=(now - hour).isoformat(), until=(now + hour).isoformat()) == everything
    assert count(since=(now + hour).isoformat()) == 0
    assert count(until=(now - hour).isoformat()) == 0


def test_a_time_range_that_ends_before_it_starts_is_refused(
    client: TestClient, admin: Headers
) -> None:
    r = client.get(
        AUDIT,
        params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        headers=admin,
    )

    assert r.status_code == 422
    assert r.json()["errors"] == [{"loc": ["query", "until"], "msg": "since must be before until."}]


def test_the_log_pages_with_a_cursor_and_each_entry_comes_once(
    client: TestClient, admin: Headers
) -> None:
    for n in range(5):
        _create_customer(client, admin, notes=str(n))
    seen: list[int] = []
    cursor: str | None = None

    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = client.get(AUDIT, params=params, headers=admin)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 2
        seen += [i["seq"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert seen == sorted(seen, reverse=True)
    assert (
        len(seen)
        == len(set(seen))
        == client.get(AUDIT, params={"limit": 500}, headers=admin).json()["items"][0]["seq"]
    )


def test_reading_the_log_is_not_itself_a_change(
    client: TestClient, admin: Headers, entries: Entries
) -> None:
    before = len(entries())

    client.get(AUDIT, headers=admin)

    assert len(entries()) == before
