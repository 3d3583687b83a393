"""The audit log: security events, reading entries, verifying the chain.

Changes to customers, products, orders, users and API keys are recorded by
``tenure.audit.recorder`` as they are flushed; the functions here record what is not a
change to a record (sign-ins, refusals) and read the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure.audit import chain, recorder
from tenure.audit.chain import Progress, Verification
from tenure.audit.models import AuditEntry
from tenure.core.pagination import AnySelect, Slice, Sort, SortField, keyset_page
from tenure.security.models import User

SORT_FIELDS = (
    SortField("seq", AuditEntry.seq, int),
    SortField("occurred_at", AuditEntry.occurred_at, datetime),
)
DEFAULT_SORT = "-seq"


# --- events that are not changes to a record -----------------------------------------


def login_succeeded(*, session: Session, user: User) -> None:
    """A password sign-in worked."""
    recorder.add(
        session,
        action="auth.login",
        entity_type="user",
        entity_id=str(user.id),
        actor_id=user.id,
        actor_email=user.email,
    )


def login_failed(*, session: Session, email: str, user: User | None, reason: str) -> None:
    """A sign-in was refused; kept even though the request's transaction rolls back."""
    recorder.add(
        session,
        action="auth.login_failed",
        entity_type="user" if user else None,
        entity_id=str(user.id) if user else None,
        details={"reason": reason},
        actor_id=user.id if user else None,
        actor_email=email.strip().lower()[:320],
        durable=True,
    )


def login_throttled(
    *, session: Session, email: str, user: User | None, wait_seconds: float
) -> None:
    """A sign-in refused unchecked after repeated failures; kept like any refusal."""
    recorder.add(
        session,
        action="auth.login_throttled",
        entity_type="user" if user else None,
        entity_id=str(user.id) if user else None,
        details={"retry_after_seconds": wait_seconds},
        actor_id=user.id if user else None,
        actor_email=email.strip().lower()[:320],
        durable=True,
    )


def logged_out(*, session: Session, user: User) -> None:
    """The user ended a session (revoked the token they signed in with)."""
    recorder.add(
        session,
        action="auth.logout",
        entity_type="user",
        entity_id=str(user.id),
        actor_id=user.id,
        actor_email=user.email,
    )


def access_denied(
    *,
    session: Session,
    code: str,
    reason: str,
    method: str,
    path: str,
    route: str | None = None,
    permission: str | None = None,
) -> None:
    """A request was refused with 403; kept although the request's work is rolled back.
    ``route`` is the matched route's template, ``permission`` the one the caller lacks."""
    details: dict[str, Any] = {"code": code, "reason": reason, "method": method, "path": path}
    if route is not None:
        details["route"] = route
    if permission is not None:
        details["permission"] = permission
    recorder.add(session, action="access.denied", details=details, durable=True)


def exported(*, session: Session, entity_type: str, entity_id: int | str) -> None:
    """A record's data is about to leave (a privacy export): written at once, before it
    does, in a transaction of its own."""
    recorder.write_now(
        session, action=f"{entity_type}.exported", entity_type=entity_type, entity_id=str(entity_id)
    )


def bulk_exported(
    *, session: Session, entity_type: str, filters: dict[str, Any], rows: int, format: str
) -> None:
    """A list of records left as a file (a CSV export): what was asked for and how many
    rows went out, never the values. Written at once, in a transaction of its own."""
    recorder.write_now(
        session,
        action="export",
        entity_type=entity_type,
        details={"filters": filters, "rows": rows, "format": format},
    )


def revealed(
    *,
    session: Session,
    entity_type: str,
    entity_id: int | str,
    fields: list[str],
    purpose: str,
    now: bool = True,
) -> None:
    """Sensitive fields of a record are shown in clear (``purpose``: "view", "edit").
    The entry names the fields, never the values. ``now``: written at once, in a
    transaction of its own, before the values leave (a read); otherwise with the
    request's transaction, and kept even if that rolls back."""
    details = {"fields": sorted(fields), "purpose": purpose}
    action = f"{entity_type}.revealed"
    if now:
        recorder.write_now(
            session, action=action, entity_type=entity_type, entity_id=str(entity_id),
            details=details,
        )  # fmt: skip
        return
    recorder.add(
        session,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        details=details,
        durable=True,
    )


def key_changed(*, session: Session, action: str, key_id: str, details: dict[str, Any]) -> None:
    """An operator changed the encryption keys (``keys.rotated``, ``keys.retired``): which
    key and how many values moved; never key material."""
    recorder.add(session, action=action, entity_type="key", entity_id=key_id, details=details)


def erased(
    *, session: Session, entity_type: str, entity_id: int | str, details: dict[str, Any]
) -> None:
    """A record's personal data was removed for good. ``details`` names what, never the
    values; the record's own diff is not written (see ``recorder.unrecorded``)."""
    recorder.add(
        session,
        action=f"{entity_type}.erased",
        entity_type=entity_type,
        entity_id=str(entity_id),
        details=details,
    )


# --- reading --------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    actor_id: int | None = None
    actor_email: str | None = None
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(stmt: AnySelect, f: AuditFilter) -> AnySelect:
    if f.actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == f.actor_id)
    if f.actor_email is not None:
        stmt = stmt.where(AuditEntry.actor_email == f.actor_email.strip().lower())
    if f.action is not None:
        if f.action.endswith("*"):
            stmt = stmt.where(AuditEntry.action.startswith(f.action[:-1], autoescape=True))
        else:
            stmt = stmt.where(AuditEntry.action == f.action)
    if f.entity_type is not None:
        stmt = stmt.where(AuditEntry.entity_type == f.entity_type)
    if f.entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == f.entity_id)
    if f.since is not None:
        stmt = stmt.where(AuditEntry.occurred_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditEntry.occurred_at < f.until)
    return stmt


def list_entries(
    *,
    session: Session,
    filters: AuditFilter,
    sort: Sort,
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[AuditEntry]:
    """A page of the log, newest first unless sorted otherwise."""
    return keyset_page(
        session,
        _filtered(select(AuditEntry), filters),
        sort=sort,
        id_column=AuditEntry.id,
        cursor=cursor,
        limit=limit,
        count_cap=count_cap,
    )


def history_for(
    session: Session, entity_type: str, entity_id: int | str, limit: int = 50
) -> list[AuditEntry]:
    """What happened to one record (``"customer"``, 7), newest first."""
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id == str(entity_id))
        .order_by(AuditEntry.seq.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def entries_about(
    *, session: Session, entity_type: str, entity_ids: Iterable[int | str]
) -> list[AuditEntry]:
    """Every entry about these records of one type, oldest first (a privacy export)."""
    ids = sorted({str(i) for i in entity_ids})
    if not ids:
        return []
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id.in_(ids))
        .order_by(AuditEntry.seq)
    )
    return list(session.scalars(stmt))


def verify(*, session: Session, progress: Progress | None = None) -> Verification:
    """Walk the whole chain; the result names the first entry altered, removed or moved."""
    return chain.verify(session.connection(), progress=progress)
