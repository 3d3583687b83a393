"""Helpers for the audit tests: reading the log, and tampering with it as an attacker would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from tenure.audit.models import AuditEntry
from tenure.security import passwords
from tests.conftest import append_only_lifted


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Password strength is not what these tests are about; keep Argon2 cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


Entries = Callable[..., list[AuditEntry]]


@pytest.fixture
def entries(sessions: sessionmaker[Session]) -> Entries:
    """``entries(action=..., entity_type=...)``: the log in chain order, filtered."""

    def read(**where: Any) -> list[AuditEntry]:
        with sessions() as s:
            stmt = select(AuditEntry).order_by(AuditEntry.seq)
            for name, value in where.items():
                stmt = stmt.where(getattr(AuditEntry, name) == value)
            return list(s.scalars(stmt))

    return read


Tamper = Callable[[str, dict[str, Any] | None], None]


@pytest.fixture
def tamper(engine: Engine) -> Tamper:
    """Run SQL statements (``;``-separated) on the database directly, the audit log's
    append-only triggers lifted first, as the database's owner (or whoever holds the
    SQLite file) could."""

    def run(sql: str, params: dict[str, Any] | None = None) -> None:
        with engine.begin() as conn, append_only_lifted(conn):
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(text(statement), params or {})

    return run
