"""Hardened sign-in and responses: throttling, the password policy, security headers, CORS."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.app import create_app
from tenure.config import Settings
from tenure.core.headers import CONTENT_SECURITY_POLICY
from tenure.ops import migrate
from tenure.security import passwords
from tenure.security.models import User
from tenure.security.passwords import COMMON_PASSWORD
from tenure.security.permissions import Role
from tenure.security.schemas import UserCreate
from tests.conftest import PASSWORD, MakeUser

Headers = dict[str, str]
LOGIN = "/api/v1/auth/login"
ORIGIN = "https://crm-widgets.example.com"
# On the shipped list, and long enough that only the list refuses it.
COMMON = "qwerty123456"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2's cost is not what these tests are about; keep it cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def _users(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(User.email).order_by(User.id)))


def _web_sign_in(client: TestClient, user: User) -> str:
    """Sign in through the login form; returns the CSRF token for the next forms."""
    client.get("/login")
    token = client.cookies["tenure_csrf"]
    r = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return token


# ---------------------------------------------------------------- password policy


def test_the_shipped_list_holds_the_most_common_passwords() -> None:
    common = passwords.common_passwords()

    assert len(common) >= 10_000
    assert {"123456", "password", "qwerty", "iloveyou", COMMON} <= common


@pytest.mark.parametrize("password", [COMMON, "QWERTY123456", "Qwerty123456", "1Q2W3E4R5T6Y"])
def test_a_common_password_is_refused_whatever_its_case(password: str) -> None:
    with pytest.raises(ValidationError) as refused:
        UserCreate(email="ann@example.com", name="Ann", password=password, role=Role.SALES)

    [error] = refused.value.errors()
    assert (error["loc"], error["msg"]) == (("password",), COMMON_PASSWORD)


def test_an_uncommon_long_password_is_accepted() -> None:
    user = UserCreate(email="ann@example.com", name="Ann", password=PASSWORD, role=Role.SALES)

    assert user.password == PASSWORD


def test_the_api_refuses_a_common_password_for_a_new_user(
    client: TestClient, admin: Headers, sessions: sessionmaker[Session]
) -> None:
    before = _users(sessions)
    body = {"email": "ann@example.com", "name": "Ann", "password": COMMON, "role": "sales"}

    r = client.post("/api/v1/users", json=body, headers=admin)

    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [(e["loc"], e["msg"]) for e in r.json()["errors"]] == [
        (["body", "password"], COMMON_PASSWORD)
    ]
    assert _users(sessions) == before


def test_the_api_refuses_a_common_password_as_a_new_password(
    client: TestClient, admin: Headers, make_user: MakeUser
) -> None:
    user = make_user(Role.SALES)

    r = client.patch(f"/api/v1/users/{user.id}", json={"password": COMMON}, headers=admin)

    assert r.status_code == 422, r.text
    signed_in = client.post(LOGIN, json={"email": user.email, "password": PASSWORD})
    assert signed_in.status_code == 200


def test_the_admin_form_refuses_a_common_password_for_a_new_user(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    csrf = _web_sign_in(client, make_user(Role.ADMIN))
    before = _users(sessions)

    r = client.post(
        "/admin/users/new",
        data={
            "email": "ann@example.com",
            "name": "Ann",
            "role": "sales",
            "password": COMMON.upper(),
            "csrf_token": csrf,
        },
    )

    assert r.status_code == 422
    assert html.escape(COMMON_PASSWORD, quote=False) in r.text
    assert _users(sessions) == before


def test_the_admin_form_refuses_a_common_password_as_a_new_password(
    client: TestClient, make_user: MakeUser
) -> None:
    csrf = _web_sign_in(client, make_user(Role.ADMIN))
    user = make_user(Role.SALES)

    r = client.post(
        f"/admin/users/{user.id}/password",
        data={"password": COMMON, "password_confirm": COMMON, "csrf_token": csrf},
    )

    assert r.status_code == 422
    assert html.escape(COMMON_PASSWORD, quote=False) in r.text
    assert client.post(LOGIN, json={"email": user.email, "password": PASSWORD}).status_code == 200


def _tenure(
    settings: Settings, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """``tenure <args>`` in a subprocess on ``settings``' database."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    environ |= {"TENURE_DATA_DIR": str(settings.data_dir), "NO_COLOR": "1", **env}
    if settings.database_url:
        environ["TENURE_DATABASE_URL"] = settings.database_url
    return subprocess.run(
        [sys.executable, "-m", "tenure", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        start_new_session=True,  # no terminal: the password prompt reads stdin
    )


def test_the_cli_refuses_a_common_password(fresh_settings: Settings, fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)

    result = _tenure(
        fresh_settings,
        "users",
        "create",
        "ann@example.com",
        "--name",
        "Ann",
        "--role",
        "sales",
        stdin=f"{COMMON}\n{COMMON}\n",
    )

    assert result.returncode == 1
    assert f"password: {COMMON_PASSWORD}" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert COMMON not in result.stderr
    assert _users(sessionmaker(fresh_engine)) == []


def test_init_refuses_a_common_admin_password(
    fresh_settings: Settings, fresh_engine: Engine
) -> None:
    result = _tenure(fresh_settings, "init", TENURE_ADMIN_PASSWORD=COMMON.title())

    assert result.returncode == 1
    assert f"password: {COMMON_PASSWORD}" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert _users(sessionmaker(fresh_engine)) == []


# ---------------------------------------------------------------- security headers

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def _assert_secured(headers: Mapping[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, name
    assert "strict-transport-security" not in headers


def test_the_policy_allows_only_the_sites_own_scripts_and_styles() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))

    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert directives["base-uri"] == "'none'"


def test_an_api_response_carries_the_security_headers(client: TestClient, admin: Headers) -> None:
    r = client.get("/api/v1/auth/me", headers=admin)

    assert r.status_code == 200
    _assert_secured(r.headers)


def test_a_page_carries_the_security_headers(client: TestClient) -> None:
    r = client.get("/login")

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    _assert_secured(r.headers)


def test_a_static_file_carries_the_security_headers(client: TestClient) -> None:
    r = client.get("/static/app.js")

    assert r.status_code == 200
    _assert_secured(r.headers)


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/no-such-page"])
def test_a_404_carries_the_security_headers(client: TestClient, path: str) -> None:
    r = client.get(path)

    assert r.status_code == 404
    _assert_secured(r.headers)


def test_an_unhandled_error_carries_the_security_headers(
    settings: Settings, engine: Engine
) -> None:
    app = create_app(settings, engine=engine)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/boom")

    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    _assert_secured(r.headers)


def test_strict_transport_security_only_over_https(client: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/healthz").headers

    r = client.get("https://testserver/healthz")

    assert r.headers["strict-transport-security"].startswith("max-age=")


def test_the_api_docs_get_their_own_policy_and_other_pages_do_not(client: TestClient) -> None:
    docs = client.get("/docs")

    assert docs.status_code == 200
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    assert docs.headers["x-frame-options"] == "DENY"
    assert client.get("/openapi.json").headers["content-security-policy"] == (
        CONTENT_SECURITY_POLICY
    )


# ---------------------------------------------------------------- CORS


def test_cors_is_closed_by_default(client: TestClient) -> None:
    preflight = client.options(
        LOGIN, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    simple = client.get("/healthz", headers={"Origin": ORIGIN})

    assert not [h for h in preflight.headers if h.startswith("access-control-")]
    assert not [h for h in simple.headers if h.startswith("access-control-")]


@pytest.fixture
def cors_app(settings: Settings, engine: Engine) -> Iterator[FastAPI]:
    yield create_app(settings.model_copy(update={"cors_origins": [ORIGIN]}), engine=engine)


def test_a_configured_origin_gets_cors_headers(cors_app: FastAPI) -> None:
    with TestClient(cors_app) as c:
        preflight = c.options(
            LOGIN,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Content-Type",
            },
        )
        simple = c.get("/healthz", headers={"Origin": ORIGIN})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert simple.headers["access-control-allow-origin"] == ORIGIN


def test_an_origin_not_listed_gets_no_cors_headers(cors_app: FastAPI) -> None:
    with TestClient(cors_app) as c:
        r = c.get("/healthz", headers={"Origin": "https://evil.example.net"})

    assert "access-control-allow-origin" not in r.headers


def test_cors_origins_are_read_from_a_comma_separated_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TENURE_CORS_ORIGINS", f"{ORIGIN}/, http://localhost:3000")

    assert Settings().cors_origins == [ORIGIN, "http://localhost:3000"]
