"""The audit log table: append-only, each entry chained to the one before by its hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.time import UTCDateTime
from tenure.db import Base

# SQLite only auto-numbers a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(Base):
    """One thing that happened. ``seq`` is the position in the chain (1, 2, 3, ...);
    ``hash`` is the SHA-256 of the entry's canonical form, which includes ``prev_hash``."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_entity_type_entity_id_seq", "entity_type", "entity_id", "seq"),
        Index("ix_audit_entry_actor_id_seq", "actor_id", "seq"),
        Index("ix_audit_entry_action_seq", "action", "seq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # Snapshots, not references: the log outlives users and records.
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str | None] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    client_address: Mapped[str | None] = mapped_column(String(100))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
