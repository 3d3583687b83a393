"""Privacy rights: everything held about a customer (export), and erasure for good.

An erasure keeps the record and its orders (their amounts are needed for accounting)
but removes every value that says who the person is: the name becomes a placeholder,
the contact details, company, notes, custom attributes and tags are cleared, and so are
their search terms, the notes of their orders and any response kept for an
Idempotency-Key that held their data. The audit log gets one ``customer.erased`` entry
naming the fields, never the values; the log never held those values to begin with
(``tenure.audit.recorder`` masks them), so its hash chain stays intact.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete
from sqlalchemy.orm import Session

from tenure.audit import recorder
from tenure.audit import service as audit_service
from tenure.core import idempotency
from tenure.core.errors import NotFound
from tenure.core.time import utcnow
from tenure.customers import personal, search, service
from tenure.customers.models import Customer, CustomerSearchTerm
from tenure.customers.schemas import (
    CustomerExport,
    CustomerSummary,
    ExportedEntry,
)
from tenure.interactions import service as interactions_service
from tenure.interactions.schemas import InteractionRead, TaskRead
from tenure.orders import service as orders_service
from tenure.orders.schemas import OrderRead
from tenure.pipeline import service as pipeline_service
from tenure.pipeline.schemas import OpportunityRead
from tenure.security.scope import RecordScope
from tenure.service_desk import service as service_desk

log = logging.getLogger("tenure")

PLACEHOLDER = "Erased customer #{id}"
# What an erasure clears, and what each is left as (the sensitive fields too, below).
ERASED_FIELDS: dict[str, Any] = {
    "company_name": None,
    "notes": None,
    "custom": {},
    "tags": [],
}
# Shorter values match too much text to look for inside other text.
_MIN_SEARCHED = 3


def _find(
    session: Session, customer_id: int, scope: RecordScope, *, for_update: bool = False
) -> Customer:
    """A customer by id, the trash included; ``NotFound`` when there is none in ``scope``."""
    customer = session.get(Customer, customer_id, with_for_update=for_update)
    if customer is None or not scope.reaches(customer.owner_id):
        raise NotFound(f"There is no customer {customer_id}.")
    return customer


def export(*, session: Session, customer_id: int, scope: RecordScope) -> CustomerExport:
    """Everything held about a customer: profile, order figures, orders with their lines,
    tickets, interactions, tasks, opportunities, and the audit log's entries about them.
    The export is recorded in the audit log before it is returned."""
    customer = _find(session, customer_id, scope)
    orders = orders_service.of_customer(session=session, customer_id=customer.id)
    totals = orders_service.customer_totals(session=session, customer_id=customer.id)
    interactions, tasks = interactions_service.of_customer(session=session, customer_id=customer.id)
    history = [
        *audit_service.entries_about(
            session=session, entity_type="customer", entity_ids=[customer.id]
        ),
        *audit_service.entries_about(
            session=session, entity_type="order", entity_ids=[o.id for o in orders]
        ),
    ]
    document = CustomerExport(
        exported_at=utcnow(),
        customer=service.view(session=session, customer=customer, reveal=True),
        summary=CustomerSummary.model_validate(totals, from_attributes=True),
        orders=[OrderRead.model_validate(o) for o in orders],
        tickets=service_desk.of_customer(session=session, customer_id=customer.id),
        interactions=[InteractionRead.model_validate(i) for i in interactions],
        tasks=[TaskRead.model_validate(t) for t in tasks],
        opportunities=[
            OpportunityRead.model_validate(o)
            for o in pipeline_service.of_customer(session=session, customer_id=customer.id)
        ],
        history=[ExportedEntry.model_validate(e) for e in sorted(history, key=lambda e: e.seq)],
    )
    audit_service.exported(session=session, entity_type="customer", entity_id=customer.id)
    return document


def erase(*, session: Session, customer_id: int, scope: RecordScope) -> Customer:
    """Remove a customer's personal data for good; their orders and amounts stay, linked
    to the anonymous record. Erasing an erased customer changes nothing."""
    customer = _find(session, customer_id, scope, for_update=True)
    if customer.erased_at is not None:
        return customer
    held = _values(session, customer)
    fields = sorted(
        [
            *(n for n in ("name", *ERASED_FIELDS) if getattr(customer, n) not in (None, {}, [])),
            *personal.present(customer),
        ]
    )
    with recorder.unrecorded(session, "customer", customer.id):
        placeholder = PLACEHOLDER.format(id=customer.id)
        customer.name = placeholder
        customer.name_sort = search.normalize(placeholder)
        for name, empty in ERASED_FIELDS.items():
            if name == "tags":
                customer.tag_rows = []
            else:
                setattr(customer, name, empty)
        for column in personal.COLUMNS:
            setattr(customer, column, None)
        customer.erased_at = customer.updated_at = utcnow()
        # Not even the placeholder is indexed: an erased customer is found by id only.
        session.execute(
            delete(CustomerSearchTerm).where(CustomerSearchTerm.customer_id == customer.id)
        )
    orders = orders_service.of_customer(session=session, customer_id=customer.id)
    notes = orders_service.clear_notes(session=session, customer_id=customer.id)
    service_desk.clear_personal(session=session, customer_id=customer.id)
    interactions = interactions_service.erase_for_customer(session=session, customer_id=customer.id)
    responses = idempotency.forget(session=session, holds=_holding(customer.id, held))
    audit_service.erased(
        session=session,
        entity_type="customer",
        entity_id=customer.id,
        details={
            "fields": fields,
            "orders_kept": len(orders),
            "order_notes_cleared": notes,
            "interactions_cleared": interactions,
            "kept_responses_erased": responses,
        },
    )
    return customer


_SETTLE_ATTEMPTS = 20  # about two seconds in all


def settle(bind: Engine | Connection) -> None:
    """After an erasure has committed, on SQLite: copy the write-ahead log into the
    database and empty it, so old versions of the erased rows do not linger in the
    ``-wal`` file (``secure_delete`` has zeroed them in the database). Best effort."""
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine.dialect.name != "sqlite":
        return
    try:
        raw = engine.raw_connection()
        try:
            # Outside any transaction: the connection does not begin one by itself. SQLite
            # waits (busy timeout) for readers and writers, but answers "busy" at once
            # while another connection checkpoints (the background checkpointer): then
            # try again shortly.
            for attempt in range(_SETTLE_ATTEMPTS):
                busy = raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
                if not busy.fetchone()[0]:
                    return
                time.sleep(0.01 * (attempt + 1))
            log.warning(
                "the write-ahead log stayed busy after an erasure; a later checkpoint empties it"
            )
        finally:
            raw.close()
    except Exception:  # the erasure is done; the log is emptied at a later checkpoint
        log.warning("could not checkpoint the write-ahead log after an erasure", exc_info=True)


# --- what a kept response may hold ----------------------------------------------------


def _values(session: Session, customer: Customer) -> list[str]:
    """Every text that identifies the customer, for finding it in kept responses."""
    clear = service.revealed_fields(session=session, customer=customer)
    texts = [customer.name, customer.company_name, customer.notes, clear["tax_id"]]
    texts.extend(_strings([clear["email"], clear["phone"], clear["address"] or {}]))
    texts.extend(_strings(customer.custom or {}))
    return sorted({t.casefold() for t in texts if t and len(t) >= _MIN_SEARCHED})


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _holding(customer_id: int, values: list[str]) -> Callable[[bytes], bool]:
    """Whether a kept response body is about the customer or holds one of their values."""

    def about(doc: Any) -> bool:
        if isinstance(doc, dict):
            if doc.get("customer_id") == customer_id:
                return True
            if doc.get("id") == customer_id and "lifecycle_stage" in doc:
                return True
            return any(about(v) for v in doc.values())
        if isinstance(doc, list):
            return any(about(v) for v in doc)
        if isinstance(doc, str):
            text = doc.casefold()
            return any(v in text for v in values)
        return False

    def holds(body: bytes) -> bool:
        try:
            return about(orjson.loads(body))
        except orjson.JSONDecodeError:
            text = body.decode("utf-8", errors="replace").casefold()
            return any(v in text for v in values)

    return holds
