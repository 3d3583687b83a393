"""Hardened sign-in and responses: throttling, the password policy, security headers, CORS."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import cast

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, Table, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.app import create_app
from tenure.audit.models import AuditEntry
from tenure.config import Settings
from tenure.core.headers import CONTENT_SECURITY_POLICY
from tenure.core.time import utcnow
from tenure.ops import migrate
from tenure.security import passwords, throttle
from tenure.security.models import LoginThrottle, User
from tenure.security.passwords import COMMON_PASSWORD
from tenure.security.permissions import Role
from tenure.security.schemas import UserCreate
from tests.conftest import PASSWORD, MakeUser
from tests.conftest import web_sign_in as _web_sign_in

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


# ---------------------------------------------------------------- sign-in throttling

ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 5


class Clock:
    """The throttle's clock, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(throttle, "utcnow", c)
    return c


@pytest.fixture
def throttled_app(settings: Settings, engine: Engine, clock: Clock) -> FastAPI:
    limits = {"login_account_failures": ACCOUNT_LIMIT, "login_address_failures": ADDRESS_LIMIT}
    return create_app(settings.model_copy(update=limits), engine=engine)


@pytest.fixture
def api(throttled_app: FastAPI) -> Iterator[TestClient]:
    """A client at 198.51.100.7."""
    with TestClient(throttled_app, client=("198.51.100.7", 50000)) as c:
        yield c


@pytest.fixture
def elsewhere(throttled_app: FastAPI) -> Iterator[TestClient]:
    """Another client, at 203.0.113.9."""
    with TestClient(throttled_app, client=("203.0.113.9", 50000)) as c:
        yield c


def _login(client: TestClient, email: str, password: str = "not-the-password") -> int:
    return client.post(LOGIN, json={"email": email, "password": password}).status_code


def _fail(client: TestClient, email: str, times: int) -> None:
    assert [_login(client, email) for _ in range(times)] == [401] * times


def test_an_account_is_throttled_after_n_failures(api: TestClient, make_user: MakeUser) -> None:
    user = make_user(Role.SALES)
    _fail(api, user.email, ACCOUNT_LIMIT)

    r = api.post(LOGIN, json={"email": user.email, "password": PASSWORD})

    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:tenure:problem:too-many-attempts"
    assert int(r.headers["retry-after"]) >= 1
    assert "access_token" not in r.text


def test_the_account_throttle_holds_from_another_address(
    api: TestClient, elsewhere: TestClient, make_user: MakeUser
) -> None:
    user = make_user(Role.SALES)
    _fail(api, user.email, ACCOUNT_LIMIT)

    assert _login(elsewhere, user.email, PASSWORD) == 429
    assert _login(elsewhere, user.email.upper(), PASSWORD) == 429


def test_one_failure_short_of_the_limit_is_not_throttled(
    api: TestClient, make_user: MakeUser
) -> None:
    user = make_user(Role.SALES)
    _fail(api, user.email, ACCOUNT_LIMIT - 1)

    assert _login(api, user.email, PASSWORD) == 200


def test_an_address_is_throttled_after_n_failures_across_accounts(
    api: TestClient, elsewhere: TestClient, make_user: MakeUser
) -> None:
    user = make_user(Role.SALES)
    for i in range(ADDRESS_LIMIT):  # one failure each: no account reaches its limit
        _fail(api, f"guess-{i}@example.com", 1)

    assert _login(api, user.email, PASSWORD) == 429
    assert _login(elsewhere, user.email, PASSWORD) == 200


def test_an_ipv6_address_is_counted_by_its_64_network(
    throttled_app: FastAPI, make_user: MakeUser
) -> None:
    user = make_user(Role.SALES)
    for i in range(ADDRESS_LIMIT):
        with TestClient(throttled_app, client=(f"2001:db8:1:2::{i + 1}", 50000)) as c:
            _fail(c, f"guess-{i}@example.com", 1)

    with TestClient(throttled_app, client=("2001:db8:1:2:ffff::1", 50000)) as same_network:
        assert _login(same_network, user.email, PASSWORD) == 429
    with TestClient(throttled_app, client=("2001:db8:1:3::1", 50000)) as other_network:
        assert _login(other_network, user.email, PASSWORD) == 200


def _retry_after(client: TestClient, email: str) -> int:
    r = client.post(LOGIN, json={"email": email, "password": "not-the-password"})
    assert r.status_code == 429, r.text
    return int(r.headers["retry-after"])


def test_retry_after_grows_with_each_failure_after_the_wait(
    api: TestClient, make_user: MakeUser, clock: Clock
) -> None:
    user = make_user(Role.SALES)
    _fail(api, user.email, ACCOUNT_LIMIT)
    waits = []
    for _ in range(4):
        wait = _retry_after(api, user.email)
        waits.append(wait)
        clock.advance(wait)  # the wait is over: the next attempt is checked, and fails
        _fail(api, user.email, 1)

    assert waits == [1, 2, 4, 8]
    assert _retry_after(api, user.email) == 16


def test_the_wait_counts_down_and_attempts_while_blocked_do_not_lengthen_it(
    api: TestClient, make_user: MakeUser, clock: Clock
) -> None:
    user = make_user(Role.SALES)
    for _ in range(ACCOUNT_LIMIT + 2):  # each after the previous wait: blocked 1, 2, then 4 s
        clock.advance(60)
        _fail(api, user.email, 1)
    assert _retry_after(api, user.email) == 4

    clock.advance(1.5)

    assert _retry_after(api, user.email) == 3
    assert _retry_after(api, user.email) == 3  # refused attempts did not add to it
    clock.advance(2.5)
    assert _login(api, user.email, PASSWORD) == 200


def test_the_delay_stops_growing_at_the_ceiling() -> None:
    policy = throttle.Policy(account_failures=5, max_delay_seconds=900)

    delays = [policy.delay(throttle.ACCOUNT, n) for n in range(1, 20)]

    assert delays[:4] == [0, 0, 0, 0]
    assert delays[4:9] == [1, 2, 4, 8, 16]
    assert max(delays) == 900
    assert delays[-1] == 900
    assert policy.delay(throttle.ACCOUNT, 10_000) == 900


def test_a_successful_sign_in_resets_the_accounts_count(
    api: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user(Role.SALES)
    _fail(api, user.email, ACCOUNT_LIMIT - 1)

    assert _login(api, user.email, PASSWORD) == 200

    assert _counts(sessions).get(("account", user.email)) is None
    _fail(api, user.email, ACCOUNT_LIMIT - 1)  # counted from zero again
    assert _login(api, user.email, PASSWORD) == 200


def test_a_successful_sign_in_leaves_the_address_count(
    api: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user(Role.SALES)
    _fail(api, "someone-else@example.com", 2)

    assert _login(api, user.email, PASSWORD) == 200

    assert _counts(sessions)[("address", "198.51.100.7")] == 2


def test_failures_older_than_the_window_no_longer_count(
    api: TestClient, make_user: MakeUser, clock: Clock, settings: Settings
) -> None:
    user = make_user(Role.SALES)
    _fail(api, user.email, ACCOUNT_LIMIT - 1)

    clock.advance(settings.login_failure_window_seconds + 1)
    _fail(api, user.email, ACCOUNT_LIMIT - 1)

    assert _login(api, user.email, PASSWORD) == 200


def test_old_counts_are_cleaned_up_at_the_next_sign_in(
    api: TestClient,
    make_user: MakeUser,
    clock: Clock,
    settings: Settings,
    sessions: sessionmaker[Session],
) -> None:
    user = make_user(Role.SALES)
    for i in range(3):
        _fail(api, f"old-{i}@example.com", 1)
    clock.advance(settings.login_failure_window_seconds + 1)
    _fail(api, "recent@example.com", 1)

    assert _login(api, user.email, PASSWORD) == 200

    assert set(_counts(sessions)) == {
        ("account", "recent@example.com"),
        ("address", "198.51.100.7"),
    }


def test_counts_are_shared_by_every_worker(
    settings: Settings, engine: Engine, make_user: MakeUser, clock: Clock
) -> None:
    """Two application instances on one database, as two workers or hosts are."""
    user = make_user(Role.SALES)
    limits = {"login_account_failures": ACCOUNT_LIMIT}
    one = create_app(settings.model_copy(update=limits), engine=engine)
    two = create_app(settings.model_copy(update=limits), engine=engine)
    with TestClient(one) as first, TestClient(two) as second:
        _fail(first, user.email, ACCOUNT_LIMIT - 1)
        _fail(second, user.email, 1)

        assert _login(first, user.email, PASSWORD) == 429
        assert _login(second, user.email, PASSWORD) == 429


def test_a_throttled_answer_is_not_replayed_for_its_idempotency_key(
    api: TestClient, make_user: MakeUser, clock: Clock
) -> None:
    user = make_user(Role.SALES)
    _fail(api, user.email, ACCOUNT_LIMIT)
    body = {"email": user.email, "password": PASSWORD}
    retried = {"Idempotency-Key": "sign-in-1"}

    refused = api.post(LOGIN, json=body, headers=retried)
    clock.advance(int(refused.headers["retry-after"]))
    again = api.post(LOGIN, json=body, headers=retried)

    assert (refused.status_code, refused.headers["cache-control"]) == (429, "no-store")
    assert again.status_code == 200, again.text


def test_a_throttled_attempt_is_recorded_in_the_audit_log(
    api: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user(Role.SALES)
    _fail(api, user.email, ACCOUNT_LIMIT)

    assert _login(api, user.email.upper(), PASSWORD) == 429

    with sessions() as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [e.action for e in entries if e.action.startswith("auth.")] == [
        *["auth.login_failed"] * ACCOUNT_LIMIT,
        "auth.login_throttled",
    ]
    throttled = entries[-1]
    assert (throttled.actor_id, throttled.actor_email) == (user.id, user.email)
    assert (throttled.entity_type, throttled.entity_id) == ("user", str(user.id))
    assert throttled.client_address == "198.51.100.7"
    assert throttled.details == {"retry_after_seconds": 1}


def _counts(sessions: sessionmaker[Session]) -> dict[tuple[str, str], int]:
    with sessions() as s:
        rows = s.execute(select(LoginThrottle.scope, LoginThrottle.subject, LoginThrottle.failures))
        return {(scope, subject): failures for scope, subject, failures in rows}


def _form_login(client: TestClient, email: str, password: str) -> tuple[int, str, str | None]:
    client.get("/login")
    r = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": client.cookies["tenure_csrf"]},
        follow_redirects=False,
    )
    return r.status_code, r.text, r.headers.get("retry-after")


def test_the_web_login_page_says_how_long_to_wait(
    api: TestClient, make_user: MakeUser, clock: Clock
) -> None:
    user = make_user(Role.SALES)
    for _ in range(ACCOUNT_LIMIT + 4):  # each after the previous wait: 1, 2, 4, 8, then 16 s
        clock.advance(60)
        assert _form_login(api, user.email, "not-the-password")[0] == 401

    status, page, retry_after = _form_login(api, user.email, PASSWORD)

    assert (status, retry_after) == (429, "16")
    assert "Too many failed sign-ins. Wait 16 seconds, then try again." in page
    assert 'role="alert"' in page


def test_the_web_login_page_rounds_a_long_wait_up_to_minutes(
    api: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], clock: Clock
) -> None:
    user = make_user(Role.SALES)
    _fail(api, user.email, ACCOUNT_LIMIT)
    with sessions.begin() as s:  # as if many failures ago: blocked for 14 min 10 s more
        s.execute(
            cast(Table, LoginThrottle.__table__)
            .update()
            .values(blocked_until=clock.now + timedelta(seconds=850))
        )

    status, page, retry_after = _form_login(api, user.email, PASSWORD)

    assert (status, retry_after) == (429, "850")
    assert "Wait 15 minutes, then try again." in page


def test_a_failed_web_sign_in_counts_towards_the_throttle(
    api: TestClient, make_user: MakeUser
) -> None:
    user = make_user(Role.SALES)
    for _ in range(ACCOUNT_LIMIT):
        assert _form_login(api, user.email, "not-the-password")[0] == 401

    assert _login(api, user.email, PASSWORD) == 429


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
