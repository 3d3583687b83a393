"""The hash chain: canonical form, appending under a lock, and walking it to verify.

Each entry's hash is the SHA-256 of its canonical form: JSON of every field but the
hash itself (``prev_hash`` and ``seq`` included), keys sorted, no whitespace, ASCII
only, times as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC. The first entry's ``prev_hash``
is 64 zeros. Changing, removing or reordering an entry therefore breaks either its
own hash, the sequence, or the link from the entry after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, func, insert, select, text

from tenure.audit.models import AuditEntry
from tenure.core.time import as_utc, utcnow
from tenure.db import Prepared
from tenure.security.models import User

GENESIS = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_email",
    "action",
    "entity_type",
    "entity_id",
    "request_id",
    "client_address",
    "changes",
    "details",
    "prev_hash",
)
# pg_advisory_xact_lock key for "the audit chain" (the first 8 bytes of its name's SHA-256).
LOCK_KEY = int.from_bytes(hashlib.sha256(b"tenure.audit_entry").digest()[:8], "big", signed=True)

table = AuditEntry.metadata.tables[AuditEntry.__tablename__]
# Run on every write: built once, so a call only binds its values.
_HEAD = Prepared(select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1))
_USERS = User.__table__
_EMAILS = select(_USERS.c.id, _USERS.c.email).where(
    _USERS.c.id.in_(bindparam("ids", expanding=True))
)
_EMAIL = Prepared(select(_USERS.c.email).where(_USERS.c.id == bindparam("id")))
_INSERT = insert(table)


@dataclass(frozen=True)
class Event:
    """An entry waiting for its place in the chain."""

    action: str
    entity_type: str | None = None
    entity_id: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    actor_id: int | None = None
    actor_email: str | None = None
    request_id: str | None = None
    client_address: str | None = None


def format_time(value: datetime) -> str:
    return as_utc(value).strftime(TIME_FORMAT)


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash is taken over."""
    doc = {name: entry[name] for name in HASHED_FIELDS}
    doc["occurred_at"] = format_time(doc["occurred_at"])
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def append(conn: Connection, events: Sequence[Event]) -> None:
    """Add ``events`` at the head of the chain, inside the caller's transaction.

    Two writers must not both read the same head: on PostgreSQL a transaction-level
    advisory lock is held from here to commit; on SQLite the write transaction itself
    (BEGIN IMMEDIATE) already excludes every other writer. The unique ``seq`` is the
    last line of defence: a fork would fail to commit rather than be stored.
    """
    if not events:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    head = _HEAD.first(conn)
    seq, prev_hash = (head[0], head[1]) if head else (0, GENESIS)
    emails = _emails(conn, {e.actor_id for e in events if e.actor_id and not e.actor_email})
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for event in events:
        seq += 1
        row: dict[str, Any] = {
            "seq": seq,
            "occurred_at": now,
            "actor_id": event.actor_id,
            "actor_email": event.actor_email or emails.get(event.actor_id or 0),
            "action": event.action,
            "entity_type": event.entity_type,
            "entity_id": event.entity_id,
            "request_id": event.request_id,
            "client_address": event.client_address,
            "changes": event.changes,
            "details": event.details,
            "prev_hash": prev_hash,
        }
        row["hash"] = prev_hash = entry_hash(row)
        rows.append(row)
    conn.execute(_INSERT, rows)


def _emails(conn: Connection, user_ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    if len(ids) == 1:  # nearly every write: one actor, looked up without the IN list
        (user_id,) = ids
        row = _EMAIL.first(conn, id=user_id)
        return {} if row is None else {user_id: row[0]}
    found = conn.execute(_EMAILS, {"ids": sorted(ids)})
    return {row[0]: row[1] for row in found}


# --- verification ---------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """The first place the chain is broken."""

    seq: int
    kind: Literal["altered", "removed", "reordered"]
    message: str


@dataclass(frozen=True)
class Verification:
    entries: int
    head_hash: str | None
    problem: Problem | None

    @property
    def intact(self) -> bool:
        return self.problem is None


Progress = Callable[[int, int], None]


def _rows(conn: Connection, batch: int) -> Iterable[Mapping[str, Any]]:
    """Every entry in chain order, a batch at a time (memory stays flat on long chains)."""
    last: int | None = None
    while True:
        stmt = select(table).order_by(table.c.seq).limit(batch)
        if last is not None:
            stmt = stmt.where(table.c.seq > last)
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
        if not rows:
            return
        yield from rows
        last = rows[-1]["seq"]


def _position_of(conn: Connection, hash_: str) -> int | None:
    return conn.scalar(select(table.c.seq).where(table.c.hash == hash_).limit(1))


def _check(conn: Connection, row: Mapping[str, Any], expected: int, prev: str) -> Problem | None:
    seq = row["seq"]
    if seq < expected:  # only a number below 1 can sort before the next expected one
        return Problem(
            expected,
            "reordered",
            f"entry {expected} is out of order: an entry numbered {seq} comes before it",
        )
    if seq > expected:
        return Problem(
            expected,
            "removed",
            f"entry {expected} is missing: the chain goes from entry {expected - 1} to {seq}",
        )
    intact = entry_hash(row) == row["hash"]
    if row["prev_hash"] != prev:
        origin = _position_of(conn, row["prev_hash"])
        if origin is not None:
            return Problem(
                seq,
                "reordered",
                f"entry {seq} is out of order: it was written after the entry now at "
                f"position {origin}, not after entry {seq - 1}",
            )
        if intact and seq > 1:
            return Problem(
                seq - 1,
                "altered",
                f"entry {seq - 1} was altered: entry {seq} links to a different version of it",
            )
        return Problem(seq, "altered", f"entry {seq} was altered: its link to entry {seq - 1}")
    if not intact:
        return Problem(seq, "altered", f"entry {seq} was altered: its hash does not match")
    return None


def verify(
    conn: Connection, *, batch: int = 1000, progress: Progress | None = None
) -> Verification:
    """Walk the chain from the first entry; stop at the first one that does not hold."""
    total = conn.scalar(select(func.count()).select_from(table)) or 0
    expected, prev, done = 1, GENESIS, 0
    for row in _rows(conn, batch):
        problem = _check(conn, row, expected, prev)
        if problem is not None:
            return Verification(done, None, problem)
        expected, prev, done = expected + 1, row["hash"], done + 1
        if progress is not None and (done % batch == 0 or done == total):
            progress(done, total)
    return Verification(done, prev if done else None, None)
