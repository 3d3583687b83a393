"""A customer's order totals: the summary shown with every customer.

Kept apart from ``tenure.orders.service`` so the customer read can fold the totals into
its own statement (``tenure.customers.service.read``) without importing the order
service, which imports the customer service."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select

from tenure.core.money import quantize
from tenure.orders.models import Order
from tenure.orders.schemas import PURCHASED

_ORDER = Order.__table__


@dataclass(frozen=True)
class CustomerTotals:
    order_count: int
    total_spent: dict[str, Decimal]
    average_order_value: dict[str, Decimal]
    first_order_at: datetime | None
    last_order_at: datetime | None


def purchases(customer_id: ColumnElement[Any]) -> Select[Any]:
    """One row per currency of the purchases of ``customer_id`` (a bind parameter or a
    column): currency, orders, spent, first_order_at, last_order_at.

    The statuses are separate literals, not an IN list expanded per execution, so the
    statement compiles once."""
    return (
        select(
            _ORDER.c.currency,
            func.count(_ORDER.c.id).label("orders"),
            func.sum(_ORDER.c.total).label("spent"),
            func.min(_ORDER.c.ordered_at).label("first_order_at"),
            func.max(_ORDER.c.ordered_at).label("last_order_at"),
        )
        .where(
            _ORDER.c.customer_id == customer_id,
            _ORDER.c.status.in_([literal(s.value) for s in sorted(PURCHASED)]),
            _ORDER.c.deleted_at.is_(None),
        )
        .group_by(_ORDER.c.currency)
    )


def totals_of(rows: Iterable[Sequence[Any]]) -> CustomerTotals:
    """The totals from the rows of ``purchases``: order count, spend and average order
    value per currency, first and last order."""
    count = 0
    spent: dict[str, Decimal] = {}
    average: dict[str, Decimal] = {}
    first: datetime | None = None
    last: datetime | None = None
    for currency, orders, total, first_at, last_at in rows:
        count += orders
        spent[currency] = amount = quantize(total, currency)
        average[currency] = quantize(amount / orders, currency)
        if first_at is not None and (first is None or first_at < first):
            first = first_at
        if last_at is not None and (last is None or last_at > last):
            last = last_at
    return CustomerTotals(count, spent, average, first, last)
