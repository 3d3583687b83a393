"""Shared fixtures: one migrated database per run (SQLite, or PostgreSQL when
TENURE_TEST_DATABASE_URL is set), emptied after each test, and an API client.

Also the rules that keep the suite honest in CI (``CI=true``):
- a skipped test fails, so nothing is silently left out for want of a service;
- a run marked as the PostgreSQL run (``TENURE_TEST_REQUIRE_POSTGRES=1``, set by
  ``./test``) refuses to start without ``TENURE_TEST_DATABASE_URL`` (always, not only in CI);
- tests marked ``postgres`` are deselected, not skipped, on a SQLite run.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from tenure.app import create_app
from tenure.config import Settings
from tenure.db import create_engine, make_engine, make_sessionmaker, unit_of_work
from tenure.models import metadata
from tenure.ops import migrate
from tenure.security import fields, keyring
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import Role
from tenure.security.schemas import UserCreate

PASSWORD = "correct-horse-battery"
AUDIT_TABLE = "audit_entry"
POSTGRES_URL = os.environ.get("TENURE_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
REQUIRE_POSTGRES = os.environ.get("TENURE_TEST_REQUIRE_POSTGRES", "") not in {"", "0"}


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError(
            "TENURE_TEST_REQUIRE_POSTGRES is set but TENURE_TEST_DATABASE_URL is not: this run "
            "must use PostgreSQL and would silently fall back to SQLite. Start a server "
            "(scripts/postgres.sh start) or run ./test."
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On SQLite, leave out tests that only mean something on PostgreSQL."""
    if POSTGRES_URL:
        return
    kept = [item for item in items if item.get_closest_marker("postgres") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"Skipped under CI=true, where every service the tests need must be present: "
            f"{_skip_reason(report)}"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_skip_in_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _fail_skip_in_ci(report)
    return report


def _create_pg_database(base_url: str) -> str:
    """A fresh, uniquely named database on the test server; returns its URL."""
    name = "tenure_test_" + secrets.token_hex(4)
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(base_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if POSTGRES_URL:
        url = _create_pg_database(POSTGRES_URL)
        yield url
        _drop_pg_database(POSTGRES_URL, url)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'tenure.db'}"


@pytest.fixture
def fresh_settings(tmp_path: Path, keyring_file: Path) -> Iterator[Settings]:
    """Settings for an empty database of this test's own (not migrated), on the same kind
    of server as the run: SQLite under its data directory, or a new PostgreSQL database;
    with the run's key file."""
    data_dir = tmp_path / "fresh-data"
    if POSTGRES_URL:
        url = _create_pg_database(POSTGRES_URL)
        yield Settings(data_dir=data_dir, database_url=url, keyring_file=keyring_file)
        _drop_pg_database(POSTGRES_URL, url)
    else:
        yield Settings(data_dir=data_dir, database_url=None, keyring_file=keyring_file)


@pytest.fixture
def fresh_engine(fresh_settings: Settings) -> Iterator[Engine]:
    """An engine on the ``fresh_settings`` database, disposed after the test."""
    eng = make_engine(fresh_settings)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def keyring_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The key file of the run's database: every app and session of the run uses it."""
    path = tmp_path_factory.mktemp("keys") / "keyring.json"
    keyring.write_file(path, keyring.generate())
    return path


@pytest.fixture(scope="session")
def base_settings(
    database_url: str, keyring_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    # No background sampling for the operations page: a sample landing in the middle of a
    # test would be a row the test did not write (tests/observability samples by hand).
    return Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=database_url,
        keyring_file=keyring_file,
        operations_sample_seconds=0,
    )


@pytest.fixture(scope="session")
def engine(base_settings: Settings) -> Iterator[Engine]:
    eng = make_engine(base_settings)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _empty_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts from empty tables (only for tests that touched the database)."""
    yield
    if "engine" not in request.fixturenames:
        return
    eng: Engine = request.getfixturevalue("engine")
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with eng.begin() as conn, append_only_lifted(conn):
        if eng.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
            conn.execute(text("DELETE FROM sqlite_sequence")) if _has_sequence(conn) else None


@contextmanager
def append_only_lifted(conn: Connection) -> Iterator[None]:
    """Lift the audit log's append-only triggers for the block, as only the database's
    owner can: to empty the tables between tests, or to play an attacker in tamper tests.
    They come back at the end of the block (or with the rollback if it fails)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ALTER TABLE {AUDIT_TABLE} DISABLE TRIGGER USER"))
        yield
        conn.execute(text(f"ALTER TABLE {AUDIT_TABLE} ENABLE TRIGGER USER"))
        return
    triggers = conn.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
        {"t": AUDIT_TABLE},
    ).all()
    for name, _sql in triggers:
        conn.execute(text(f'DROP TRIGGER "{name}"'))
    yield
    for _name, sql in triggers:
        conn.execute(text(sql))


def live_file_bytes(path: Path) -> bytes:
    """The bytes of a database file this process has open, read by a child process.

    Opening and closing a SQLite file in the process that uses it drops that process's
    POSIX locks on it (SQLite's "how to corrupt your database", 2.2): another process
    then takes itself for the only user, deletes the write-ahead log under us, and the
    two no longer see each other's writes."""
    code = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"
    return subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, check=True
    ).stdout


def _has_sequence(conn: Any) -> bool:
    return bool(
        conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).scalar()
    )


@pytest.fixture
def settings(base_settings: Settings, tmp_path: Path) -> Settings:
    return base_settings.model_copy(update={"data_dir": tmp_path})


@pytest.fixture
def sealer(base_settings: Settings) -> fields.Sealer:
    """Seals and opens customers' sensitive fields under the run's key file."""
    return fields.sealer_for(base_settings)


@pytest.fixture
def sessions(engine: Engine, base_settings: Settings) -> sessionmaker[Session]:
    return make_sessionmaker(engine, sealer=fields.sealer_for(base_settings))


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session for arranging and checking data; each ``with session.begin()`` commits."""
    with sessions() as s:
        yield s


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c


MakeUser = Callable[..., User]


@pytest.fixture
def make_user(sessions: sessionmaker[Session]) -> MakeUser:
    def make(
        role: Role | str = Role.ADMIN, email: str | None = None, name: str = "Test User"
    ) -> User:
        with unit_of_work(sessions) as s:
            return security_service.create_user(
                session=s,
                data=UserCreate(
                    email=email or f"{Role(role).value}-{secrets.token_hex(3)}@example.com",
                    name=name,
                    password=PASSWORD,
                    role=Role(role),
                ),
            )

    return make


Headers = dict[str, str]


@pytest.fixture
def login(client: TestClient, make_user: MakeUser) -> Callable[..., Headers]:
    """``login("sales")``: a new user with that role, signed in; returns auth headers."""

    def sign_in(role: Role | str = Role.ADMIN, **kwargs: Any) -> Headers:
        user = make_user(role, **kwargs)
        r = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    return sign_in


@pytest.fixture
def admin(login: Callable[..., Headers]) -> Headers:
    return login(Role.ADMIN)


def web_sign_in(client: TestClient, user: User, password: str = PASSWORD) -> str:
    """Sign in through the login form, as a browser does; returns the CSRF token."""
    client.get("/login")
    token = client.cookies["tenure_csrf"]
    r = client.post(
        "/login",
        data={"email": user.email, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return token
