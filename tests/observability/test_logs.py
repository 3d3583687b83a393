"""Log lines: one JSON object per line with the request id, route, status, duration and
user; secrets never written; uvicorn's access log replaced by ours."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tenure.observability.logs import (
    ACCESS_LOGGER,
    REDACTED,
    JsonFormatter,
    TextFormatter,
    logging_config,
)
from tests.conftest import PASSWORD, MakeUser


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.text.splitlines()]

    def access(self) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e["logger"] == ACCESS_LOGGER]


def _capture(formatter: logging.Formatter) -> Iterator[Captured]:
    """What the server's loggers write (not the test client's, which logs its URLs)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    server = logging.getLogger("tenure")
    level = server.level
    server.addHandler(handler)
    server.setLevel(logging.INFO)
    try:
        yield Captured(stream)
    finally:
        server.removeHandler(handler)
        server.setLevel(level)


@pytest.fixture
def logs() -> Iterator[Captured]:
    yield from _capture(JsonFormatter())


def test_each_request_writes_one_json_line(client: TestClient, logs: Captured) -> None:
    r = client.get("/healthz")

    [entry] = logs.access()
    assert entry["request_id"] == r.headers["x-request-id"]
    assert entry["method"] == "GET"
    assert entry["route"] == "/healthz"
    assert entry["status"] == 200
    assert entry["level"] == "info"
    assert entry["message"] == "GET /healthz 200"
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    assert entry["time"].endswith("Z")
    assert entry["user_id"] is None
    for line in logs.text.splitlines():
        assert isinstance(orjson.loads(line), dict)


def test_an_incoming_request_id_is_honoured(client: TestClient, logs: Captured) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert r.headers["x-request-id"] == "lb-7f3a.42"
    assert logs.access()[0]["request_id"] == "lb-7f3a.42"


def test_an_unsafe_request_id_is_replaced(client: TestClient, logs: Captured) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": 'x" injected=1'})
    generated = r.headers["x-request-id"]
    assert generated != 'x" injected=1' and len(generated) == 32
    assert logs.access()[0]["request_id"] == generated


def test_the_route_template_user_and_database_time_are_logged(
    client: TestClient, make_user: MakeUser, logs: Captured
) -> None:
    user = make_user("sales")
    token = client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    ).json()["access_token"]
    client.get("/api/v1/customers/424242", headers={"Authorization": f"Bearer {token}"})

    entry = logs.access()[-1]
    assert entry["route"] == "/api/v1/customers/{customer_id}"
    assert entry["path"] == "/api/v1/customers/424242"
    assert entry["status"] == 404
    assert entry["user_id"] == user.id
    assert entry["db_queries"] >= 2 and entry["db_ms"] > 0


def test_a_login_password_and_token_never_reach_the_log(
    client: TestClient, make_user: MakeUser, logs: Captured
) -> None:
    user = make_user("admin")
    r = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    token = r.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    client.get("/api/v1/auth/me", headers=headers)
    key = client.post("/api/v1/api-keys", json={"name": "sync"}, headers=headers).json()["key"]
    client.get("/api/v1/customers?q=ann@example.com", headers={"Authorization": f"Bearer {key}"})
    client.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong-" + PASSWORD})

    assert len(logs.access()) == 5
    for secret in (PASSWORD, token, key, "ann@example.com", user.email):
        assert secret not in logs.text


def test_sensitive_fields_and_secrets_in_messages_are_redacted(logs: Captured) -> None:
    log = logging.getLogger("tenure.test")
    log.info(
        "signed in with Bearer tnt_abc123 and key tnk_zzz",
        extra={"password": "hunter2", "Authorization": "Bearer x", "extra_data": {"token": "t"}},
    )
    [entry] = logs.entries()
    assert entry["message"] == f"signed in with {REDACTED} and key {REDACTED}"
    assert entry["password"] == REDACTED
    assert entry["Authorization"] == REDACTED
    assert entry["extra_data"] == {"token": REDACTED}
    assert "hunter2" not in logs.text and "tnt_abc123" not in logs.text


def test_an_unhandled_error_is_logged_with_its_request_id(
    client: TestClient, logs: Captured
) -> None:
    def boom() -> None:
        raise RuntimeError("kaboom")

    client.app.add_api_route("/test/boom", boom)  # type: ignore[attr-defined]
    client.app.middleware_stack = None  # type: ignore[attr-defined]
    with TestClient(client.app, raise_server_exceptions=False) as c:
        r = c.get("/test/boom", headers={"X-Request-ID": "req-boom"})
    assert r.status_code == 500
    errors = [e for e in logs.entries() if e["level"] == "error"]
    assert {e["logger"] for e in errors} == {"tenure", ACCESS_LOGGER}
    assert all(e["request_id"] == "req-boom" for e in errors)
    [access] = [e for e in errors if e["logger"] == ACCESS_LOGGER]
    assert access["status"] == 500 and access["error"] == "RuntimeError"
    assert "kaboom" in next(e for e in errors if e["logger"] == "tenure")["exception"]


def test_text_format_is_one_readable_line(client: TestClient) -> None:
    for logs in _capture(TextFormatter()):
        client.get("/healthz", headers={"X-Request-ID": "abc"})
        [line] = [ln for ln in logs.text.splitlines() if ACCESS_LOGGER in ln]
    assert " INFO    tenure.access: GET /healthz 200  request_id=abc " in line
    assert " route=/healthz " in line and " status=200 " in line


def test_the_server_config_replaces_uvicorns_access_log() -> None:
    config = logging_config(log_format="json", level="info")
    assert config["loggers"]["uvicorn.access"]["propagate"] is False
    assert config["root"]["handlers"] == ["stderr"]
    assert config["handlers"]["stderr"]["stream"] == "ext://sys.stderr"
    assert config["formatters"]["tenure"]["()"] == "tenure.observability.logs.JsonFormatter"
    text = logging_config(log_format="text", level="warning")
    assert text["formatters"]["tenure"]["()"] == "tenure.observability.logs.TextFormatter"
    assert text["root"]["level"] == "WARNING"
