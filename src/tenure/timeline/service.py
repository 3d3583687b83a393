"""The customer 360 timeline: everything that happened with a customer, from every
domain, in one stream, newest first.

Each domain gives a *source*: a function ``(*, session, customer_id, limit)`` returning
that domain's newest ``limit`` entries (``tenure.core.timeline.TimelineEntry``) about
the customer, newest first. A source that also takes ``before`` (a datetime) returns only
entries older than it; for one that does not, older entries are found by asking it for
more. Registering a domain is one line in ``SOURCES``; the kinds a caller may filter by
are read from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tenure.audit import service as audit_service
from tenure.core.errors import InvalidInput
from tenure.core.pagination import parse_sort
from tenure.core.time import as_utc
from tenure.core.timeline import N_, Amount, Message, TimelineEntry, say
from tenure.interactions import service as interactions_service
from tenure.marketing import service as marketing_service
from tenure.orders import service as orders_service
from tenure.pipeline import service as pipeline_service
from tenure.security.permissions import (
    CAMPAIGNS_READ,
    CUSTOMERS_READ,
    INTERACTIONS_READ,
    OPPORTUNITIES_READ,
    ORDERS_READ,
    TASKS_READ,
    TICKETS_READ,
    has_permission,
)
from tenure.security.scope import EVERYTHING
from tenure.service_desk import service as desk_service

SourceFn = Callable[..., list[TimelineEntry]]
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# A source without ``before`` is asked for at most this many entries to reach older ones.
MAX_FETCH = 5_000


def order_entries(*, session: Session, customer_id: int, limit: int) -> list[TimelineEntry]:
    """A customer's orders (the trash left out), newest first."""
    newest = parse_sort("-ordered_at", orders_service.SORT_FIELDS, "-ordered_at")
    orders = orders_service.list_orders(
        session=session,
        filters=orders_service.OrderFilter(customer_id=customer_id),
        scope=EVERYTHING,
        sort=newest,
        cursor=None,
        limit=limit,
    ).items
    return [
        TimelineEntry(
            at=as_utc(order.ordered_at),
            kind="order",
            title=Message(N_("Order #%(id)s"), {"id": order.id}),
            detail=Message(
                N_("%(total)s · %(status)s"),
                {"total": Amount(order.total, order.currency), "status": order.status},
            ),
            url=f"/orders/{order.id}",
        )
        for order in orders
    ]


CHANGE_TITLES = {
    "customer.created": N_("Customer created"),
    "customer.updated": N_("Customer updated"),
    "customer.trashed": N_("Customer moved to the trash"),
    "customer.restored": N_("Customer restored from the trash"),
    "customer.erased": N_("Personal data erased"),
}


def change_entries(*, session: Session, customer_id: int, limit: int) -> list[TimelineEntry]:
    """Changes to the customer itself, from the audit log (values are not shown: personal
    data is masked there), newest first."""
    entries = []
    for entry in audit_service.history_for(session, "customer", customer_id, limit):
        title = CHANGE_TITLES.get(entry.action)
        if title is None:
            continue  # reads, reveals and exports are not changes
        fields = sorted(entry.changes) if entry.action == "customer.updated" else []
        entries.append(
            TimelineEntry(
                at=as_utc(entry.occurred_at),
                kind="change",
                title=Message(title),
                detail=", ".join(fields) or None,
                url=f"/customers/{customer_id}#history",
            )
        )
    return entries


@dataclass(frozen=True)
class Source:
    kind: str
    entries: SourceFn
    permission: str  # a caller without it does not see this kind


# One line per domain; the order is the order of the kind filter.
SOURCES: list[Source] = [
    Source("order", order_entries, ORDERS_READ),
    Source("opportunity", pipeline_service.timeline_entries, OPPORTUNITIES_READ),
    Source("interaction", interactions_service.interaction_entries, INTERACTIONS_READ),
    Source("task", interactions_service.task_entries, TASKS_READ),
    Source("ticket", desk_service.timeline_entries, TICKETS_READ),
    Source("campaign", marketing_service.timeline_entries, CAMPAIGNS_READ),
    Source("change", change_entries, CUSTOMERS_READ),
]


def register(kind: str, entries: SourceFn, permission: str) -> None:
    """Add a domain's entries to every customer's timeline (at import time)."""
    SOURCES.append(Source(kind, entries, permission))


def kinds(*, role: str | None = None) -> list[str]:
    """The kinds of entries, those ``role`` may see when given."""
    return [s.kind for s in SOURCES if role is None or has_permission(role, s.permission)]


@dataclass(frozen=True)
class TimelinePage:
    entries: list[TimelineEntry]
    next_before: datetime | None  # pass as ``before`` for the next (older) page


def _takes_before(fn: SourceFn) -> bool:
    try:
        return "before" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _fetch(
    source: Source, session: Session, customer_id: int, limit: int, before: datetime | None
) -> list[TimelineEntry]:
    if before is None:
        return list(source.entries(session=session, customer_id=customer_id, limit=limit))
    if _takes_before(source.entries):
        return list(
            source.entries(session=session, customer_id=customer_id, limit=limit, before=before)
        )
    asked = limit
    while True:
        got = list(source.entries(session=session, customer_id=customer_id, limit=asked))
        older = [e for e in got if as_utc(e.at) < before]
        if len(older) >= limit or len(got) < asked or asked >= MAX_FETCH:
            return older
        asked = min(asked * 4, MAX_FETCH)


def page(
    *,
    session: Session,
    customer_id: int,
    role: str,
    kind: str | None = None,
    before: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> TimelinePage:
    """One page of a customer's timeline as ``role`` sees it: entries older than
    ``before`` (all when None), of one ``kind`` or every kind, newest first."""
    allowed = kinds(role=role)
    if kind is not None and kind not in allowed:
        msg = f"must be one of {', '.join(allowed)}"
        raise InvalidInput(f"kind {msg}.", errors=[{"loc": ["query", "kind"], "msg": msg}])
    limit = max(1, min(limit, MAX_LIMIT))
    before = as_utc(before) if before is not None else None
    merged: list[TimelineEntry] = []
    for source in SOURCES:
        if source.kind in allowed and (kind is None or source.kind == kind):
            merged.extend(_fetch(source, session, customer_id, limit + 1, before))
    merged.sort(key=lambda e: as_utc(e.at), reverse=True)
    shown = _cut(merged, limit)
    more = len(merged) > len(shown)
    return TimelinePage(shown, as_utc(shown[-1].at) if more and shown else None)


def _cut(entries: Sequence[TimelineEntry], limit: int) -> list[TimelineEntry]:
    """The first ``limit`` entries, and any more at the same moment as the last one, so
    that a page never ends between two entries of one instant (the next page starts
    strictly before it)."""
    shown = list(entries[:limit])
    if shown:
        last = as_utc(shown[-1].at)
        shown.extend(e for e in entries[limit:] if as_utc(e.at) == last)
    return shown


def as_dict(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "at": as_utc(entry.at),
        "kind": entry.kind,
        "title": say(entry.title),
        "detail": say(entry.detail) if entry.detail is not None else None,
        "url": entry.url,
    }
