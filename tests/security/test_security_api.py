"""Sign-in, tokens, API keys and user management over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update

from tenure.config import Settings
from tenure.core.time import utcnow
from tenure.models import metadata
from tenure.security import passwords
from tenure.security.models import AccessToken, ApiKey, User
from tests.conftest import PASSWORD

Headers = dict[str, str]
Login = Callable[..., Headers]
MakeUser = Callable[..., User]
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2's cost is not what these tests are about; keep it cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def _bearer(credential: str) -> Headers:
    return {"Authorization": f"Bearer {credential}"}


def _sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    r = client.post(LOGIN, json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model)) or 0


def _database_text(engine: Engine) -> str:
    """Every value in every table, as text: to look for secrets that must not be there."""
    parts: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    parts.append(
                        value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    )
    return "\n".join(parts)


def _assert_unauthenticated(r: Any) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert (body["status"], body["type"]) == (401, "urn:tenure:problem:unauthenticated")
    assert body["detail"]


# --- sign-in -------------------------------------------------------------------------------


def test_login_returns_a_bearer_token(
    client: TestClient, make_user: MakeUser, settings: Settings
) -> None:
    user = make_user("sales")

    r = client.post(LOGIN, json={"email": user.email, "password": PASSWORD})

    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.token_ttl_seconds
    me = client.get(ME, headers=_bearer(body["access_token"]))
    assert (me.status_code, me.json()["id"]) == (200, user.id)


def test_login_ignores_the_case_of_the_email(client: TestClient, make_user: MakeUser) -> None:
    user = make_user("sales", email="Rita.Sales@Example.com")

    token = _sign_in(client, "RITA.SALES@example.COM")

    assert client.get(ME, headers=_bearer(token)).json()["email"] == user.email


def test_login_records_the_time(client: TestClient, make_user: MakeUser, engine: Engine) -> None:
    user = make_user("sales")
    before = utcnow()

    _sign_in(client, user.email)

    with engine.connect() as conn:
        last = conn.scalar(select(User.last_login_at).where(User.id == user.id))
    assert last is not None and last >= before - timedelta(seconds=1)


@pytest.fixture
def disabled_user(make_user: MakeUser, client: TestClient, admin: Headers) -> User:
    user = make_user("sales", email="gone@example.com")
    r = client.patch(f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin)
    assert r.status_code == 200
    return user


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("rita@example.com", "not-the-password"),
        ("nobody@example.com", PASSWORD),
        ("gone@example.com", PASSWORD),
    ],
    ids=["wrong password", "unknown email", "disabled user"],
)
def test_login_is_refused(
    client: TestClient,
    make_user: MakeUser,
    disabled_user: User,
    engine: Engine,
    email: str,
    password: str,
) -> None:
    make_user("sales", email="rita@example.com")
    tokens_before = _count(engine, AccessToken)

    r = client.post(LOGIN, json={"email": email, "password": password})

    _assert_unauthenticated(r)
    # One answer for every failure, so it does not tell which emails exist.
    assert r.json()["detail"] == "The email or password is wrong, or the account is disabled."
    assert _count(engine, AccessToken) == tokens_before


def test_logout_revokes_the_token(client: TestClient, make_user: MakeUser) -> None:
    user = make_user("sales")
    token = _sign_in(client, user.email)

    r = client.post("/api/v1/auth/logout", headers=_bearer(token))

    assert r.status_code == 204
    _assert_unauthenticated(client.get(ME, headers=_bearer(token)))


def test_logout_leaves_the_users_other_sessions_signed_in(
    client: TestClient, make_user: MakeUser
) -> None:
    user = make_user("sales")
    laptop, phone = _sign_in(client, user.email), _sign_in(client, user.email)

    client.post("/api/v1/auth/logout", headers=_bearer(laptop))

    assert client.get(ME, headers=_bearer(phone)).status_code == 200


def test_an_expired_token_is_refused(
    client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    user = make_user("sales")
    token = _sign_in(client, user.email)
    assert client.get(ME, headers=_bearer(token)).status_code == 200
    with engine.begin() as conn:
        conn.execute(
            update(AccessToken)
            .where(AccessToken.user_id == user.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    _assert_unauthenticated(client.get(ME, headers=_bearer(token)))


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer   ",
        "Bearer tnt_forged",
        "Bearer tnk_forged",
    ],
)
def test_a_request_without_valid_credentials_is_refused(
    client: TestClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    _assert_unauthenticated(client.get("/api/v1/customers", headers=headers))


def test_tokens_are_stored_only_as_hashes(
    client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    user = make_user("sales")

    token = _sign_in(client, user.email)

    assert _count(engine, AccessToken) == 1
    assert token not in _database_text(engine)


def test_passwords_are_not_stored_in_plain_text(
    client: TestClient, admin: Headers, engine: Engine
) -> None:
    secret = "a-very-particular-password"
    r = client.post(
        "/api/v1/users",
        json={"email": "new@example.com", "name": "New", "password": secret, "role": "sales"},
        headers=admin,
    )

    assert r.status_code == 201
    assert "password" not in str(r.json())
    assert secret not in _database_text(engine)


def test_a_login_sent_with_an_idempotency_key_leaves_no_token_behind(
    client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    user = make_user("sales")

    r = client.post(
        LOGIN,
        json={"email": user.email, "password": PASSWORD},
        headers={"Idempotency-Key": "login-1"},
    )

    assert r.status_code == 200
    assert r.json()["access_token"] not in _database_text(engine)


# --- API keys ------------------------------------------------------------------------------


def _create_key(client: TestClient, headers: Headers, name: str = "CRM sync") -> dict[str, Any]:
    r = client.post("/api/v1/api-keys", json={"name": name}, headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_an_api_key_is_shown_once_and_signs_in(client: TestClient, login: Login) -> None:
    headers = login("sales")
    me = client.get(ME, headers=headers).json()

    created = _create_key(client, headers)

    assert created["name"] == "CRM sync"
    assert created["key"].startswith(created["prefix"])
    assert client.get(ME, headers=_bearer(created["key"])).json()["id"] == me["id"]


def test_listing_api_keys_never_shows_the_key(client: TestClient, login: Login) -> None:
    headers = login("sales")
    created = _create_key(client, headers)

    r = client.get("/api/v1/api-keys", headers=headers)

    assert r.status_code == 200
    assert [k["id"] for k in r.json()] == [created["id"]]
    assert "key" not in r.json()[0]
    assert created["key"] not in r.text


def test_api_keys_are_stored_only_as_hashes(
    client: TestClient, login: Login, engine: Engine
) -> None:
    created = _create_key(client, login("sales"))

    assert _count(engine, ApiKey) == 1
    assert created["key"] not in _database_text(engine)


def test_an_api_key_sent_with_an_idempotency_key_is_not_kept_in_plain_text(
    client: TestClient, login: Login, engine: Engine
) -> None:
    r = client.post(
        "/api/v1/api-keys",
        json={"name": "CRM sync"},
        headers={**login("sales"), "Idempotency-Key": "key-1"},
    )

    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    assert r.json()["key"] not in _database_text(engine)


def test_a_revoked_api_key_is_refused(client: TestClient, login: Login) -> None:
    headers = login("sales")
    created = _create_key(client, headers)

    r = client.delete(f"/api/v1/api-keys/{created['id']}", headers=headers)

    assert r.status_code == 204
    _assert_unauthenticated(client.get(ME, headers=_bearer(created["key"])))
    listed = client.get("/api/v1/api-keys", headers=headers).json()
    assert listed[0]["revoked_at"] is not None


def test_a_user_cannot_revoke_another_users_key(client: TestClient, login: Login) -> None:
    owner, other = login("sales"), login("sales")
    created = _create_key(client, owner)

    r = client.delete(f"/api/v1/api-keys/{created['id']}", headers=other)

    assert r.status_code == 404
    assert client.get(ME, headers=_bearer(created["key"])).status_code == 200


# --- users ---------------------------------------------------------------------------------


def _new_user(email: str = "nina@example.com", role: str = "sales") -> dict[str, Any]:
    return {"email": email, "name": "Nina", "password": "long-enough-password", "role": role}


def test_an_admin_creates_a_user_who_can_sign_in(client: TestClient, admin: Headers) -> None:
    r = client.post("/api/v1/users", json=_new_user(), headers=admin)

    assert r.status_code == 201
    body = r.json()
    assert (body["email"], body["role"], body["is_active"]) == ("nina@example.com", "sales", True)
    assert (
        client.post(
            LOGIN, json={"email": "nina@example.com", "password": "long-enough-password"}
        ).status_code
        == 200
    )


def test_an_admin_lists_users(client: TestClient, admin: Headers, make_user: MakeUser) -> None:
    other = make_user("support", email="sam@example.com")

    r = client.get("/api/v1/users", headers=admin)

    assert r.status_code == 200
    assert other.id in {u["id"] for u in r.json()}
    assert len(r.json()) == 2
    assert all("password_hash" not in u for u in r.json())


def test_an_admin_changes_a_users_role(
    client: TestClient, admin: Headers, make_user: MakeUser
) -> None:
    user = make_user("sales")
    headers = _bearer(_sign_in(client, user.email))
    assert client.get("/api/v1/users", headers=headers).status_code == 403

    r = client.patch(f"/api/v1/users/{user.id}", json={"role": "auditor"}, headers=admin)

    assert (r.status_code, r.json()["role"]) == (200, "auditor")
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    assert client.post("/api/v1/customers", json={"name": "X"}, headers=headers).status_code == 403


def test_disabling_a_user_revokes_their_credentials(
    client: TestClient, admin: Headers, make_user: MakeUser, engine: Engine
) -> None:
    user = make_user("sales")
    token = _sign_in(client, user.email)
    key = _create_key(client, _bearer(token))["key"]

    r = client.patch(f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin)

    assert (r.status_code, r.json()["is_active"]) == (200, False)
    _assert_unauthenticated(client.get(ME, headers=_bearer(token)))
    _assert_unauthenticated(client.get(ME, headers=_bearer(key)))
    with engine.connect() as conn:
        token_revoked = conn.scalars(
            select(AccessToken.revoked_at).where(AccessToken.user_id == user.id)
        ).all()
        key_revoked = conn.scalars(select(ApiKey.revoked_at).where(ApiKey.user_id == user.id)).all()
    assert len(token_revoked) == len(key_revoked) == 1
    assert None not in [*token_revoked, *key_revoked]
    # Enabling the account again does not bring the old credentials back.
    client.patch(f"/api/v1/users/{user.id}", json={"is_active": True}, headers=admin)
    _assert_unauthenticated(client.get(ME, headers=_bearer(token)))
    _assert_unauthenticated(client.get(ME, headers=_bearer(key)))
    assert client.get(ME, headers=_bearer(_sign_in(client, user.email))).status_code == 200


def test_a_duplicate_email_is_refused(
    client: TestClient, admin: Headers, make_user: MakeUser, engine: Engine
) -> None:
    make_user("sales", email="nina@example.com")
    before = _count(engine, User)

    r = client.post("/api/v1/users", json=_new_user(email="Nina@Example.com"), headers=admin)

    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert _count(engine, User) == before


def test_a_user_with_a_short_password_is_refused(
    client: TestClient, admin: Headers, engine: Engine
) -> None:
    before = _count(engine, User)

    r = client.post("/api/v1/users", json={**_new_user(), "password": "short"}, headers=admin)

    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "password"]]
    assert _count(engine, User) == before


def test_a_user_with_an_unknown_role_is_refused(
    client: TestClient, admin: Headers, engine: Engine
) -> None:
    before = _count(engine, User)

    r = client.post("/api/v1/users", json=_new_user(role="superuser"), headers=admin)

    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "role"]]
    assert _count(engine, User) == before


def test_a_stale_if_match_on_a_user_is_refused(
    client: TestClient, admin: Headers, make_user: MakeUser
) -> None:
    user = make_user("sales")
    url = f"/api/v1/users/{user.id}"
    client.patch(url, json={"name": "Renamed"}, headers=admin)

    r = client.patch(url, json={"role": "admin"}, headers={**admin, "If-Match": '"1"'})

    assert r.status_code == 412
    assert client.get(url, headers=admin).json()["role"] == "sales"
