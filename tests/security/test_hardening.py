"""Hardened sign-in and responses: throttling, the password policy, security headers, CORS."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tenure.app import create_app
from tenure.config import Settings
from tenure.core.headers import CONTENT_SECURITY_POLICY

Headers = dict[str, str]
LOGIN = "/api/v1/auth/login"
ORIGIN = "https://crm-widgets.example.com"


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
