"""Graceful shutdown: on SIGTERM ``tenure serve`` stops taking connections, lets the
request in flight finish and exits cleanly, leaving a consistent database."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tenure.config import Settings
from tenure.customers.models import Customer
from tenure.db import make_sessionmaker, unit_of_work
from tenure.ops import integrity
from tenure.security import service as security_service
from tenure.security.permissions import Role
from tenure.security.schemas import UserCreate
from tests.ops.conftest import cli_env

PASSWORD = "correct-horse-battery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_serving(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited early:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AssertionError(f"the server did not start:\n{log.read_text()}")


def _sign_in(port: int, email: str) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/auth/login",
        data=json.dumps({"email": email, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return str(json.loads(r.read())["access_token"])


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def _read_response(conn: socket.socket) -> tuple[int, dict[str, object]]:
    conn.settimeout(60)
    raw = b""
    while chunk := conn.recv(65536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    token: str = ""

    def post_half(self, body: bytes) -> socket.socket:
        """Send a request's headers and the first half of its body; it is now in flight."""
        conn = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        conn.sendall(
            b"POST /api/v1/customers HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{self.port}\r\n".encode()
            + f"Authorization: Bearer {self.token}\r\n".encode()
            + b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        time.sleep(1)  # let the server read the headers and start the request
        return conn

    def exit_status(self) -> int:
        # uvicorn finishes its graceful shutdown, then re-raises SIGTERM on itself so
        # process managers see how it ended.
        status = self.process.wait(timeout=90)
        assert status in (0, -signal.SIGTERM), self.log.read_text()
        assert "Application shutdown complete." in self.log.read_text()
        return status


def _serve(settings: Settings, engine: Engine, tmp_path: Path, timeout: int) -> Iterator[Server]:
    with unit_of_work(make_sessionmaker(engine)) as s:
        security_service.create_user(
            session=s,
            data=UserCreate(
                email="ops@example.com", name="Ops", password=PASSWORD, role=Role.ADMIN
            ),
        )
    port = _free_port()
    log = tmp_path / "server.log"
    env = cli_env(settings, TENURE_SHUTDOWN_TIMEOUT_SECONDS=str(timeout), TENURE_LOG_FORMAT="text")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tenure", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, log)
    try:
        _wait_until_serving(port, process, log)
        server.token = _sign_in(port, "ops@example.com")
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def server(fresh_settings: Settings, migrated: Engine, tmp_path: Path) -> Iterator[Server]:
    yield from _serve(fresh_settings, migrated, tmp_path, timeout=60)


@pytest.fixture
def impatient_server(
    fresh_settings: Settings, migrated: Engine, tmp_path: Path
) -> Iterator[Server]:
    yield from _serve(fresh_settings, migrated, tmp_path, timeout=1)


def _customer_body(name: str) -> bytes:
    return json.dumps(
        {"name": name, "tags": ["in-flight"], "custom": {"history": "x" * 12_000}}
    ).encode()


def _customers_named(engine: Engine, name: str) -> list[Customer]:
    with Session(engine) as session:
        return list(session.scalars(select(Customer).where(Customer.name == name)))


def test_sigterm_lets_the_request_in_flight_finish_then_exits(
    server: Server, migrated: Engine
) -> None:
    body = _customer_body("Finished after SIGTERM")
    with server.post_half(body) as conn:
        server.process.send_signal(signal.SIGTERM)

        deadline = time.monotonic() + 30
        while not _refuses_connections(server.port):
            assert time.monotonic() < deadline, "the server still takes new connections"
            time.sleep(0.1)
        assert server.process.poll() is None, "the server quit with a request in flight"
        conn.sendall(body[len(body) // 2 :])
        status, created = _read_response(conn)

    assert status == 201, created
    server.exit_status()
    [customer] = _customers_named(migrated, "Finished after SIGTERM")
    assert customer.id == created["id"]
    assert integrity.problems(migrated) == []


def test_a_request_still_unfinished_at_the_shutdown_timeout_is_cut_off_writing_nothing(
    impatient_server: Server, migrated: Engine
) -> None:
    body = _customer_body("Never finished")
    with impatient_server.post_half(body):
        started = time.monotonic()
        impatient_server.process.send_signal(signal.SIGTERM)

        impatient_server.exit_status()

    assert time.monotonic() - started < 60
    assert _customers_named(migrated, "Never finished") == []
    assert integrity.problems(migrated) == []
