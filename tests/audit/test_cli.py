"""``tenure audit verify`` and changes made from the command line, run for real in a
subprocess against a database of its own."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from tenure.audit.models import AuditEntry
from tenure.config import Settings
from tenure.db import make_sessionmaker, unit_of_work
from tenure.ops import migrate
from tenure.security import service as security_service
from tenure.security.permissions import Role
from tenure.security.schemas import UserCreate
from tests.conftest import append_only_lifted


@pytest.fixture
def sessions(fresh_engine: Engine) -> sessionmaker[Session]:
    """Sessions on a migrated database of this test's own, with three users (three entries)."""
    migrate.upgrade(fresh_engine)
    factory = make_sessionmaker(fresh_engine)
    for n in range(3):
        with unit_of_work(factory) as s:
            security_service.create_user(
                session=s,
                data=UserCreate(
                    email=f"user{n}@example.com",
                    name="Ann Lee",
                    password="a-long-enough-password",
                    role=Role.SALES,
                ),
            )
    return factory


def _tenure(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env["TENURE_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["TENURE_DATABASE_URL"] = settings.database_url
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "tenure", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_verify_reports_an_intact_chain_and_its_head(
    fresh_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    with sessions() as s:
        head = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert head is not None

    result = _tenure(fresh_settings, "audit", "verify")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "3 entries, chain intact.",
        f"Head: entry 3, hash {head.hash}",
    ]


def test_verify_names_the_entry_altered_and_exits_1(
    fresh_settings: Settings, fresh_engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with fresh_engine.begin() as conn, append_only_lifted(conn):
        conn.execute(text("UPDATE audit_entry SET actor_email = 'x@example.com' WHERE seq = 2"))

    result = _tenure(fresh_settings, "audit", "verify")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "Audit log broken: entry 2 was altered: its hash does not match.",
        "1 entry before it is intact.",
    ]


def test_a_change_made_from_the_command_line_names_the_system_account(
    fresh_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    result = _tenure(fresh_settings, "users", "set-role", "user1@example.com", "manager")
    assert result.returncode == 0, result.stderr

    with sessions() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert entry is not None
    assert (entry.action, entry.changes) == (
        "user.role_changed",
        {"role": {"old": "sales", "new": "manager"}},
    )
    assert (entry.actor_id, entry.client_address) == (None, f"cli:{getpass.getuser()}")
