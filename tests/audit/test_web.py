"""The audit log from the web UI: sign-in through the form, sign-out, and a refused page."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tenure.security.permissions import Role
from tests.audit.conftest import Entries
from tests.conftest import PASSWORD, MakeUser


def _login_form(client: TestClient, email: str, password: str) -> int:
    client.get("/login")
    token = client.cookies["tenure_csrf"]
    r = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    return r.status_code


def test_signing_in_and_out_through_the_form_is_recorded(
    client: TestClient, make_user: MakeUser, entries: Entries
) -> None:
    user = make_user(Role.SALES, email="sam@example.com")

    assert _login_form(client, "sam@example.com", "not-the-password") == 401
    assert _login_form(client, "sam@example.com", PASSWORD) == 303
    r = client.post(
        "/logout", data={"csrf_token": client.cookies["tenure_csrf"]}, follow_redirects=False
    )
    assert r.status_code == 303

    log = [e for e in entries() if e.action.startswith("auth.")]
    assert [e.action for e in log] == ["auth.login_failed", "auth.login", "auth.logout"]
    assert {(e.actor_id, e.actor_email) for e in log} == {(user.id, "sam@example.com")}
    assert {e.client_address for e in log} == {"testclient"}


def test_a_page_refused_to_the_signed_in_user_is_recorded(
    client: TestClient, make_user: MakeUser, entries: Entries
) -> None:
    user = make_user(Role.SALES, email="sam@example.com")
    assert _login_form(client, "sam@example.com", PASSWORD) == 303

    assert client.get("/admin/users").status_code == 403

    [entry] = entries(action="access.denied")
    assert (entry.actor_id, entry.actor_email) == (user.id, "sam@example.com")
    assert (entry.details["method"], entry.details["path"]) == ("GET", "/admin/users")
    assert entry.details["code"] == "permission-denied"
