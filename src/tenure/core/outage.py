"""When the database cannot serve for now: locked by another process, out of disk space,
or unreachable. Such a request changed nothing (its transaction rolled back), so it is
answered 503 with ``Retry-After``, and the next one succeeds once the fault is gone."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tenure.sqlite import sqlite3

# PostgreSQL SQLSTATEs: class 53 is "insufficient resources" (53100: disk full); these
# mean another transaction holds what this one needs (lock timeout, statement timeout,
# serialization failure, deadlock).
PG_BUSY = frozenset({"55P03", "57014", "40001", "40P01"})


@dataclass(frozen=True)
class Outage:
    code: str
    title: str
    detail: str
    retry_after: int  # seconds


BUSY = Outage(
    "database-busy",
    "Database busy",
    "The database is locked by other work and this request could not wait longer; "
    "nothing was changed. Try again in a few seconds.",
    5,
)
FULL = Outage(
    "storage-full",
    "Storage full",
    "The database has run out of disk space; nothing was changed. An administrator must "
    "free space (tenure doctor shows how much is left); then try again.",
    60,
)
UNAVAILABLE = Outage(
    "database-unavailable",
    "Database unavailable",
    "The database cannot be reached; nothing was changed. Try again shortly.",
    10,
)


def outage(exc: BaseException) -> Outage | None:
    """The outage ``exc`` reports, or None when it is some other error."""
    if isinstance(exc, PoolTimeout):  # every connection is in use
        return BUSY
    if isinstance(exc, OperationalError):
        cause: BaseException = exc.orig if exc.orig is not None else exc
    elif isinstance(exc, sqlite3.OperationalError):  # raised before SQLAlchemy saw it
        cause = exc
    else:
        return None
    sqlstate = str(getattr(cause, "sqlstate", "") or "")
    message = str(cause).lower()
    if sqlstate.startswith("53") or "disk is full" in message or "no space" in message:
        return FULL
    if sqlstate in PG_BUSY or "locked" in message or "busy" in message:
        return BUSY
    return UNAVAILABLE
