"""Records changes to audited records as the session flushes them, and writes the
entries into the chain when the transaction commits.

One mechanism for every domain: after each flush, the inserted, changed and deleted
customers, products, orders, users and API keys are turned into entries with a
field-level diff (sensitive values masked). They join the chain in ``before_commit``,
so a transaction that rolls back leaves no entry behind, and the chain lock is held only
for the instant before the commit. Entries marked *durable* (a refused sign-in, a
refused request) are written in a transaction of their own when the work rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Engine, event, inspect
from sqlalchemy.orm import InstanceState, RelationshipProperty, Session, SessionTransaction
from sqlalchemy.orm import sessionmaker as SessionMaker

from tenure.audit import chain
from tenure.audit.chain import Event
from tenure.core.time import as_utc
from tenure.db import WRITE_OPTION

log = logging.getLogger("tenure.audit")

# Table name -> entity type, for the records whose every change is audited.
AUDITED = {
    "customer": "customer",
    "product": "product",
    "sales_order": "order",
    "user_account": "user",
    "api_key": "api_key",
    "team": "team",
    "pipeline_stage": "pipeline_stage",
    "opportunity": "opportunity",
    "interaction": "interaction",
    "task": "task",
}
# Bookkeeping that changes on its own: not worth an entry.
IGNORED = frozenset(
    {
        "id",
        "created_at",
        "updated_at",
        "version",
        "name_sort",
        "last_login_at",
        "last_used_at",
        # Blind indexes change with the sealed value they index, which is recorded.
        "email_index",
        "phone_index",
    }
)
# Personal data and secrets: an entry says that they changed, never what to.
SENSITIVE = (
    "email",
    "phone",
    "address",
    "birth",
    "tax_id",
    "password",
    "hash",
    "token",
    "secret",
    "cipher",
)
# The rest of what a privacy erasure clears (tenure.customers.privacy), per record:
# masked like the above, so that an erasure leaves nothing of it in the append-only log.
PERSONAL = {
    "customer": frozenset({"name", "company_name", "notes", "custom", "tags"}),
    "order": frozenset({"notes"}),
    "interaction": frozenset({"subject", "body"}),
    "task": frozenset({"notes"}),
    "opportunity": frozenset({"notes"}),
}
MASK = "[masked]"
ALIASES = {
    "tag_rows": "tags",
    # Sealed fields are named as the field they hold (their values are always masked).
    "email_cipher": "email",
    "phone_cipher": "phone",
    "address_cipher": "address",
    "birth_date_cipher": "birth_date",
    "tax_id_cipher": "tax_id",
}

PENDING = "tenure.audit.pending"
CONTEXT = "tenure.audit.context"
UNRECORDED = "tenure.audit.unrecorded"


def _nobody() -> int | None:
    return None


@dataclass(frozen=True)
class AuditContext:
    """Where the work comes from. ``actor_id`` is asked when an entry is made, because
    the caller is known only once the request has authenticated."""

    request_id: str | None = None
    client_address: str | None = None
    actor_id: Callable[[], int | None] = _nobody


_default_context: ContextVar[AuditContext | None] = ContextVar("tenure_audit_context", default=None)


@dataclass
class _Pending:
    event: Event
    durable: bool
    # The savepoint the entry was made in (None: the outer transaction).
    transaction: SessionTransaction | None


def set_default_context(context: AuditContext) -> None:
    """The context of sessions not bound to a request (the command line)."""
    _default_context.set(context)


def bind(session: Session, context: AuditContext) -> None:
    session.info[CONTEXT] = context


def context_of(session: Session) -> AuditContext:
    bound: AuditContext | None = session.info.get(CONTEXT)
    return bound or _default_context.get() or AuditContext()


def add(
    session: Session,
    *,
    action: str,
    entity_type: str | None = None,
    entity_id: str | None = None,
    changes: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    actor_id: int | None = None,
    actor_email: str | None = None,
    durable: bool = False,
) -> None:
    """Queue an entry on the session's transaction; it joins the chain at commit."""
    context = context_of(session)
    entry = Event(
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        changes=plain(changes or {}),
        details=plain(details or {}),
        actor_id=actor_id if actor_id is not None else context.actor_id(),
        actor_email=actor_email,
        request_id=context.request_id,
        client_address=context.client_address,
    )
    _pending(session).append(_Pending(entry, durable, session.get_nested_transaction()))


def _pending(session: Session) -> list[_Pending]:
    pending: list[_Pending] = session.info.setdefault(PENDING, [])
    return pending


def write_now(
    session: Session,
    *,
    action: str,
    entity_type: str | None = None,
    entity_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write an entry at once, in a transaction of its own, before what it records takes
    place: data that leaves (an export) must not leave unrecorded. Raises when it cannot
    be written. ``session`` (possibly a read) gives the context and the database."""
    context = context_of(session)
    entry = Event(
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        details=plain(details or {}),
        actor_id=context.actor_id(),
        request_id=context.request_id,
        client_address=context.client_address,
    )
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
        chain.append(conn, [entry])


@contextmanager
def unrecorded(session: Session, entity_type: str, entity_id: int | str) -> Iterator[None]:
    """Changes to one record flushed in the block make no entry of their own: the caller
    writes the one entry that says what happened, without the values (an erasure)."""
    key = (entity_type, str(entity_id))
    quiet: set[tuple[str, str]] = session.info.setdefault(UNRECORDED, set())
    quiet.add(key)
    try:
        yield
        session.flush()
    finally:
        quiet.discard(key)


def install(factory: SessionMaker[Session]) -> None:
    """Audit every session ``factory`` makes."""
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "before_commit", _before_commit)
    event.listen(factory, "after_soft_rollback", _after_soft_rollback)
    event.listen(factory, "after_transaction_end", _after_transaction_end)


# --- session events -------------------------------------------------------------------


def _after_flush(session: Session, _flush_context: Any) -> None:
    for obj in session.new:
        _record(session, obj, "created")
    for obj in session.dirty:
        _record(session, obj, "updated")
    for obj in session.deleted:
        _record(session, obj, "deleted")


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint is released: its entries wait for the real commit
    session.flush()
    pending = session.info.pop(PENDING, [])
    if pending:
        chain.append(session.connection(), [p.event for p in pending])


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.nested:
        # Work undone by a savepoint rollback did not happen; refusals still did.
        session.info[PENDING] = [
            p for p in _pending(session) if p.durable or not _inside(p.transaction, previous)
        ]


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    # Anything still pending belongs to work that was not committed.
    durable = [p.event for p in session.info.pop(PENDING, []) if p.durable]
    if durable:
        bind = session.get_bind()
        _write_alone(bind if isinstance(bind, Engine) else bind.engine, durable)


def _inside(transaction: SessionTransaction | None, savepoint: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is savepoint:
            return True
        transaction = transaction.parent
    return False


def _write_alone(engine: Engine, events: list[Event]) -> None:
    """Write entries in a transaction of their own (the request's was rolled back)."""
    try:
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            chain.append(conn, events)
    except Exception:  # the original error matters more to the caller than this one
        log.exception("could not write %d audit entries", len(events))


# --- diffs ----------------------------------------------------------------------------


def _record(session: Session, obj: object, kind: str) -> None:
    state: InstanceState[Any] = inspect(obj)
    table = getattr(state.mapper.local_table, "name", "")
    entity_type = AUDITED.get(table)
    if entity_type is None:
        return
    # Not state.identity: new objects get theirs only once the flush is over.
    entity_id = ",".join(str(v) for v in state.mapper.primary_key_from_instance(obj))
    if (entity_type, entity_id) in session.info.get(UNRECORDED, ()):
        return
    if kind == "updated":
        changes = _updated(state, entity_type)
        if not changes:
            return
        action = _update_action(entity_type, changes)
    else:
        changes = _snapshot(state, entity_type, new=kind == "created")
        action = kind
    add(
        session,
        action=f"{entity_type}.{action}",
        entity_type=entity_type,
        entity_id=entity_id,
        changes=changes,
    )


def _update_action(entity_type: str, changes: dict[str, dict[str, Any]]) -> str:
    """Name what an update did when it is one of the changes people look for."""
    if "deleted_at" in changes:
        return "trashed" if changes["deleted_at"]["new"] is not None else "restored"
    if entity_type == "user" and "role" in changes:
        return "role_changed"
    if entity_type == "user" and "is_active" in changes:
        return "enabled" if changes["is_active"]["new"] else "disabled"
    if entity_type == "opportunity":
        return _opportunity_action(changes)
    if entity_type == "task" and "status" in changes:
        return "completed" if changes["status"]["new"] == "done" else "reopened"
    if entity_type == "api_key" and "revoked_at" in changes:
        return "revoked" if changes["revoked_at"]["new"] is not None else "updated"
    return "updated"


def _opportunity_action(changes: dict[str, dict[str, Any]]) -> str:
    """An opportunity won, lost, moved to another stage, or turned into an order."""
    if "order_id" in changes:
        return "ordered"
    if "status" in changes and changes["status"]["new"] in ("won", "lost"):
        return str(changes["status"]["new"])
    if "stage_id" in changes:
        return "moved"
    return "updated"


def _fields(state: InstanceState[Any]) -> Iterable[tuple[str, Any]]:
    for prop in state.mapper.iterate_properties:
        if prop.key in IGNORED or prop.key.startswith("_"):
            continue
        if isinstance(prop, RelationshipProperty) and not prop.uselist:
            continue  # a reference (a user's team): its key column says what changed
        yield prop.key, prop


def add_created(
    session: Session, *, entity_type: str, entity_id: str, values: dict[str, Any]
) -> None:
    """Queue the entry for a record inserted without the ORM, as a flush of it would have
    made it: ``values`` by field (related rows described by their own values, without
    their keys), in the order of the model's fields."""
    changes = {
        ALIASES.get(key, key): _masked(entity_type, key, {"old": None, "new": value})
        for key, value in values.items()
        if key not in IGNORED and not _empty(value)
    }
    add(
        session,
        action=f"{entity_type}.created",
        entity_type=entity_type,
        entity_id=entity_id,
        changes=changes,
    )


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _snapshot(
    state: InstanceState[Any], entity_type: str, *, new: bool
) -> dict[str, dict[str, Any]]:
    """Every value of a record made (``new``) or removed, as a diff from or to nothing."""
    changes: dict[str, dict[str, Any]] = {}
    for key, prop in _fields(state):
        value = state.dict.get(key)
        if isinstance(prop, RelationshipProperty):
            value = _items(prop, value or ())
        if _empty(value):
            continue
        pair = {"old": None, "new": value} if new else {"old": value, "new": None}
        changes[ALIASES.get(key, key)] = _masked(entity_type, key, pair)
    return changes


def _updated(state: InstanceState[Any], entity_type: str) -> dict[str, dict[str, Any]]:
    changes: dict[str, dict[str, Any]] = {}
    for key, prop in _fields(state):
        history = state.attrs[key].history
        if not history.added and not history.deleted:
            continue
        if isinstance(prop, RelationshipProperty):
            unchanged = list(history.unchanged or ())
            old: Any = _items(prop, [*unchanged, *(history.deleted or ())])
            new: Any = _items(prop, [*unchanged, *(history.added or ())])
            if old == new:
                continue
        else:
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if old == new:
                continue
        changes[ALIASES.get(key, key)] = _masked(entity_type, key, {"old": old, "new": new})
    return changes


def _items(prop: RelationshipProperty[Any], items: Iterable[object]) -> list[Any]:
    """Related rows in a stable order: plain values (tags) sorted, rows (lines) as they are."""
    described = [_describe(prop, item) for item in items]
    if all(not isinstance(d, dict) for d in described):
        return sorted(described, key=repr)
    return described


def _describe(prop: RelationshipProperty[Any], item: object) -> Any:
    """A related row (a tag, an order line) by its own values, without its keys."""
    links = {c.key for c in prop.remote_side}
    values = {
        attr.key: getattr(item, attr.key)
        for attr in inspect(item).mapper.column_attrs
        if attr.key not in links and attr.key != "id"
    }
    if len(values) == 1:
        return plain(next(iter(values.values())))
    return plain(values)


def _masked(entity_type: str, key: str, pair: dict[str, Any]) -> dict[str, Any]:
    personal = ALIASES.get(key, key) in PERSONAL.get(entity_type, ())
    if personal or any(stem in key for stem in SENSITIVE):
        return {side: None if value is None else MASK for side, value in pair.items()}
    return {side: plain(value) for side, value in pair.items()}


def _decimal(value: Decimal) -> str:
    """Money as the API writes it: at least two decimals, no trailing zeros beyond."""
    whole, _, fraction = format(value, "f").partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def plain(value: Any) -> Any:
    """A JSON value with one spelling: decimals and times as strings, no floats' NaN."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, datetime):
        return chain.format_time(as_utc(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return MASK
    return str(value)
