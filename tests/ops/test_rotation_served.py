"""Key rotation without downtime, against a real ``tenure serve``: reads and writes go on
without an error while ``tenure keys rotate`` runs, the server moves its writes to the new
key, and it reads values sealed under a key made after it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.config import Settings
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate
from tenure.db import make_sessionmaker, unit_of_work
from tenure.ops import demo, keys
from tenure.security import fields, keyring
from tenure.security import service as security_service
from tenure.security.fields import key_id_of
from tenure.security.permissions import Role
from tenure.security.schemas import UserCreate
from tenure.security.scope import EVERYTHING
from tests.ops.conftest import cli_env
from tests.ops.test_shutdown import PASSWORD, _free_port, _wait_until_serving

WRITERS = 2  # threads creating and changing customers during the rotation
ADMIN = "rotate@example.com"


@dataclass
class Served:
    settings: Settings
    engine: Engine
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    token: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def client(self) -> httpx2.Client:
        return httpx2.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )


def _serve(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[Served]:
    with unit_of_work(make_sessionmaker(engine)) as s:
        security_service.create_user(
            session=s,
            data=UserCreate(email=ADMIN, name="Rotator", password=PASSWORD, role=Role.ADMIN),
        )
    port = _free_port()
    log = tmp_path / "server.log"
    env = cli_env(
        settings,
        TENURE_KEYRING_FILE=str(settings.keyring_file),
        TENURE_KEYRING_RELOAD_SECONDS=str(settings.keyring_reload_seconds),
        TENURE_LOG_LEVEL="warning",
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tenure", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(settings, engine, f"http://127.0.0.1:{port}", process, log, env=env)
    try:
        _wait_until_serving(port, process, log)
        with httpx2.Client(base_url=served.url, timeout=60) as client:
            r = client.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
            assert r.status_code == 200, r.text
            served.token = r.json()["access_token"]
        yield served
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _own_keys(fresh_settings: Settings, tmp_path: Path, reload_seconds: float) -> Settings:
    path = tmp_path / "served-keyring.json"
    keyring.write_file(path, keyring.generate())
    return fresh_settings.model_copy(
        update={"keyring_file": path, "keyring_reload_seconds": reload_seconds}
    )


@pytest.fixture
def busy(fresh_settings: Settings, migrated: Engine, tmp_path: Path) -> Iterator[Served]:
    """A server over demo data, looking at its key file every half second."""
    settings = _own_keys(fresh_settings, tmp_path, 0.5)
    demo.load(migrated, customers=1500, seed=3, products=20, sealer=fields.sealer_for(settings))
    yield from _serve(settings, migrated, tmp_path)


@pytest.fixture
def idle(fresh_settings: Settings, migrated: Engine, tmp_path: Path) -> Iterator[Served]:
    """A server that looks at its key file only once a minute."""
    yield from _serve(_own_keys(fresh_settings, tmp_path, 60), migrated, tmp_path)


def _sessions(served: Served) -> sessionmaker[Session]:
    """Sessions of this test process, with a keyring of their own read from the file."""
    fresh = keyring.LiveKeyring(served.settings)
    return make_sessionmaker(served.engine, sealer=fields.Sealer(fresh, phone_region="US"))


class Traffic:
    """Readers and writers against the server until told to stop; every answer counted."""

    def __init__(self, served: Served, ids: list[int]) -> None:
        self.served = served
        self.ids = ids
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.answers = 0
        self.created: dict[int, str] = {}

    def _note(self, what: str, response: httpx2.Response, expected: int) -> Any:
        with self.lock:
            self.answers += 1
            if response.status_code != expected:
                self.errors.append(f"{what}: {response.status_code} {response.text[:200]}")
                return None
        return response.json()

    def reader(self, offset: int) -> None:
        with self.served.client() as client:
            n = offset
            while not self.stop.is_set():
                cid = self.ids[n % len(self.ids)]
                body = self._note("reveal", client.get(f"/api/v1/customers/{cid}?reveal=true"), 200)
                if body is not None and body["email"] is not None and "@" not in body["email"]:
                    self.errors.append(f"customer {cid}: email read as {body['email']!r}")
                self._note("search", client.get("/api/v1/customers", params={"q": "a"}), 200)
                n += 7

    def writer(self, offset: int) -> None:
        with self.served.client() as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                email = f"writer{offset}.{n}@rotation.example"
                body = {"name": f"Writer {offset} {n}", "email": email, "phone": "+1 415 555 0199"}
                created = self._note("create", client.post("/api/v1/customers", json=body), 201)
                if created is not None:
                    with self.lock:
                        self.created[created["id"]] = email
                # Each writer changes customers of its own: two saving one customer at the
                # same moment would rightly get 412, which is not what this test is about.
                mine = self.ids[offset::WRITERS]
                cid = mine[n % len(mine)]
                self._note(
                    "patch",
                    client.patch(f"/api/v1/customers/{cid}", json={"tax_id": f"T-{n}"}),
                    200,
                )

    def run(self, during: Any) -> Any:
        threads = [threading.Thread(target=self.reader, args=(i,)) for i in range(2)]
        threads += [threading.Thread(target=self.writer, args=(i,)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        try:
            return during()
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=120)


def test_rotation_while_the_api_is_used_has_no_errors_and_moves_every_value(
    busy: Served, tmp_path: Path
) -> None:
    with busy.engine.connect() as conn:
        ids = list(conn.scalars(select(Customer.id).order_by(Customer.id)))
    old = keyring.load(busy.settings).primary
    traffic = Traffic(busy, ids)

    rotation = traffic.run(
        lambda: subprocess.run(
            [sys.executable, "-m", "tenure", "keys", "rotate"],
            env=busy.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    )

    assert rotation.returncode == 0, rotation.stdout + rotation.stderr
    new = keyring.load(busy.settings).primary
    assert new != old
    assert traffic.errors == []
    assert traffic.answers > 50 and len(traffic.created) > 5
    # Every value, those written while the rotation ran included, is under the new key.
    use = keys.key_use(busy.engine)
    assert use.not_under(new) == 0, use.counts
    assert use.total(new) >= 3 * len(ids)
    # And reads back as written.
    with busy.client() as client:
        for cid, email in traffic.created.items():
            assert client.get(f"/api/v1/customers/{cid}?reveal=true").json()["email"] == email


def test_a_running_server_reads_values_under_a_key_made_after_it_started(idle: Served) -> None:
    with idle.client() as client:
        first = client.post("/api/v1/customers", json={"name": "Before", "email": "b@x.example"})
        assert first.status_code == 201
    old = keyring.load(idle.settings)
    rotated = old.rotated()
    keyring.write_file(keyring.path_of(idle.settings), rotated)
    sessions = _sessions(idle)
    with unit_of_work(sessions) as s:
        actor = security_service.get_user_by_email(session=s, email=ADMIN)
        assert actor is not None
        written = customers_service.create(
            session=s,
            data=CustomerCreate(name="After", email="after@x.example", phone="+49 30 1234567"),
            actor=actor,
            scope=EVERYTHING,
        )
        assert written.email_cipher is not None
        assert key_id_of(written.email_cipher) == rotated.primary

    with idle.client() as client:
        r = client.get(f"/api/v1/customers/{written.id}?reveal=true")
        by_phone = client.get("/api/v1/customers", params={"phone": "+49 (30) 123-4567"})
        later = client.post("/api/v1/customers", json={"name": "Later", "email": "l@x.example"})

    assert r.status_code == 200, r.text
    assert (r.json()["email"], r.json()["phone"]) == ("after@x.example", "+49 30 1234567")
    assert [c["id"] for c in by_phone.json()["items"]] == [written.id]
    assert later.status_code == 201
    with idle.engine.connect() as conn:
        cipher = conn.scalar(select(Customer.email_cipher).where(Customer.id == later.json()["id"]))
    # Having read the file again, the server writes under the new key too.
    assert cipher is not None and key_id_of(cipher) == rotated.primary
