"""A real ``tenure serve`` in a subprocess, over a database of its own, and its clients.

Each server runs in a session of its own, so a test can SIGKILL the whole of it (the
supervisor and its workers) as a crash would, and always stops what it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from tenure.config import Settings
from tenure.db import make_sessionmaker, unit_of_work
from tenure.ops import setup
from tenure.security import service as security_service

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "reliability-admin-password"
STARTUP_SECONDS = 90  # workers importing the app on a busy machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a ``tenure`` subprocess over ``settings``' database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env["TENURE_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["TENURE_DATABASE_URL"] = settings.database_url
    if settings.keyring_file:
        env["TENURE_KEYRING_FILE"] = str(settings.keyring_file)
    env["TENURE_ADMIN_EMAIL"] = ADMIN_EMAIL
    env["TENURE_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    env["TENURE_LOG_LEVEL"] = "warning"
    env.update(extra)
    return env


@dataclass
class Server:
    """``tenure serve`` on a free loopback port; ``url`` once it answers /readyz."""

    settings: Settings
    root: Path
    workers: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.root / f"server-{self.starts}.log"

    def start(self) -> Server:
        self.starts += 1
        port = free_port()
        metrics = self.root / f"metrics-{self.starts}"
        metrics.mkdir(parents=True)
        env = server_env(self.settings, PROMETHEUS_MULTIPROC_DIR=str(metrics), **self.env)
        command = [sys.executable, "-m", "tenure", "serve", "--port", str(port)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--workers", str(self.workers)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{port}"
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        with httpx2.Client(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    pytest.fail(f"The server exited at start:\n{self.log.read_text()}")
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"The server was not ready in {STARTUP_SECONDS} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL the server and its workers at once, as a crash or power cut would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM the server (SIGKILL if it lingers); nothing of it is left running."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def token(self) -> str:
        """A bearer token of the first admin."""
        r = httpx2.post(
            f"{self.url}/api/v1/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def client(self, token: str, **kwargs: Any) -> httpx2.Client:
        kwargs.setdefault("timeout", 30)
        return httpx2.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )


@dataclass(frozen=True)
class Site:
    """An initialised database (schema at the latest revision, the first admin), with an
    engine on it for checks and an API key of the admin."""

    settings: Settings
    engine: Engine
    api_key: str


def initialise(settings: Settings, engine: Engine) -> Site:
    """What ``tenure init`` does (the schema at the latest revision, the first admin), and
    an API key of that admin."""
    admin = settings.model_copy(update={"admin_password": SecretStr(ADMIN_PASSWORD)})
    setup.initialise(engine, admin)
    with unit_of_work(make_sessionmaker(engine)) as session:
        user = security_service.get_user_by_email(session=session, email=ADMIN_EMAIL)
        assert user is not None
        _key, secret = security_service.create_api_key(session=session, user=user, name="tests")
    return Site(settings, engine, secret)


@contextmanager
def serving(
    settings: Settings, root: Path, *, workers: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """A started server over ``settings``' database, stopped at the end of the block."""
    server = Server(settings, root, workers=workers, env=dict(env or {}))
    try:
        yield server.start()
    finally:
        server.stop()


def create_products(client: httpx2.Client, count: int = 3) -> list[dict[str, Any]]:
    products = []
    for n in range(count):
        r = client.post(
            "/api/v1/products",
            json={"sku": f"REL-{n}", "name": f"Product {n}", "unit_price": f"{n + 1}.25"},
        )
        assert r.status_code == 201, r.text
        products.append(r.json())
    return products
