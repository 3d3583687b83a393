"""Purchase history per customer as arrays, aggregated in SQL by the orders service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from tenure.analytics.errors import CutoffInFuture
from tenure.core.time import utcnow
from tenure.customers import service as customers_service
from tenure.orders import service as orders_service

EPOCH = date(1970, 1, 1)
# Days per time unit of the lifetime models; a month is the mean Gregorian month.
PERIOD_DAYS = {"day": 1.0, "week": 7.0, "month": 365.2425 / 12}

IntArray = NDArray[np.int64]


def day_number(day: date) -> int:
    return (day - EPOCH).days


def from_day_number(number: int) -> date:
    return EPOCH + timedelta(days=int(number))


def end_of(day: date) -> datetime:
    """The first instant after ``day`` (UTC): purchases on ``day`` count as of ``day``."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def check_as_of(as_of: date, *, today: date | None = None) -> date:
    """``as_of`` itself, or ``CutoffInFuture`` when it is after today (UTC)."""
    today = today or utcnow().date()
    if as_of > today:
        raise CutoffInFuture(
            f"The cutoff {as_of.isoformat()} is after today ({today.isoformat()}); "
            "choose a date on or before today."
        )
    return as_of


@dataclass(frozen=True)
class Activity:
    """Purchases of each customer up to the end of ``as_of`` (one currency).

    Parallel arrays, one entry per customer who bought at least once, by customer id."""

    as_of: date
    currency: str
    customer_id: IntArray
    orders: IntArray
    days: IntArray
    first_day: IntArray
    last_day: IntArray
    revenue_units: IntArray
    first_day_revenue_units: IntArray

    @property
    def size(self) -> int:
        return len(self.customer_id)

    @property
    def recency_days(self) -> IntArray:
        """Days from the last purchase to ``as_of``."""
        return day_number(self.as_of) - self.last_day

    @property
    def age_days(self) -> IntArray:
        """Days from the first purchase to ``as_of``."""
        return day_number(self.as_of) - self.first_day

    def select(self, mask: NDArray[np.bool_]) -> Activity:
        return Activity(
            self.as_of,
            self.currency,
            *(
                getattr(self, name)[mask]
                for name in (
                    "customer_id",
                    "orders",
                    "days",
                    "first_day",
                    "last_day",
                    "revenue_units",
                    "first_day_revenue_units",
                )
            ),
        )


@dataclass(frozen=True)
class History:
    """Purchases per customer and UTC day up to the end of ``as_of`` (one currency), read
    once from SQL: every window of it (``activity``) is then cut out with numpy.

    Parallel arrays by customer id and day; customers in the trash are left out."""

    as_of: date
    currency: str
    customer_id: IntArray
    day: IntArray
    orders: IntArray
    revenue_units: IntArray

    @property
    def size(self) -> int:
        return len(self.customer_id)

    def activity(self, as_of: date | None = None, *, since: date | None = None) -> Activity:
        """Each customer's purchases on days ``since`` (inclusive) to ``as_of`` (inclusive,
        at most the history's own)."""
        as_of = as_of or self.as_of
        if as_of > self.as_of:
            raise ValueError(f"the history ends on {self.as_of.isoformat()}")
        keep = self.day <= day_number(as_of)
        if since is not None:
            keep &= self.day >= day_number(since)
        customer, day = self.customer_id[keep], self.day[keep]
        orders, revenue = self.orders[keep], self.revenue_units[keep]
        if len(customer) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return Activity(as_of, self.currency, *(empty.copy() for _ in range(7)))
        # Rows are by customer and day: each customer's rows are a run starting at its first day.
        starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
        ends = np.r_[starts[1:], len(customer)] - 1
        return Activity(
            as_of,
            self.currency,
            customer[starts].copy(),
            np.add.reduceat(orders, starts),
            np.diff(np.r_[starts, len(customer)]),
            day[starts].copy(),
            day[ends].copy(),
            np.add.reduceat(revenue, starts),
            revenue[starts].copy(),
        )


def load_history(*, session: Session, currency: str, as_of: date) -> History:
    """Every customer's purchases in ``currency`` per day up to ``as_of`` (inclusive),
    aggregated per customer and day in SQL and streamed into arrays."""
    parts = [
        np.array(batch, dtype=np.int64).reshape(-1, 4)
        for batch in orders_service.purchase_days(
            session=session, currency=currency, end=end_of(as_of)
        )
    ]
    table = np.concatenate(parts) if parts else np.zeros((0, 4), dtype=np.int64)
    trashed = customers_service.trashed_ids(session=session)
    if trashed:
        table = table[~np.isin(table[:, 0], np.fromiter(trashed, dtype=np.int64))]
    return History(as_of, currency, *(table[:, i].copy() for i in range(4)))


def load(*, session: Session, currency: str, as_of: date, since: date | None = None) -> Activity:
    """Each customer's purchases in ``currency`` on days ``since`` (inclusive) to ``as_of``
    (inclusive); customers in the trash are left out."""
    history = load_history(session=session, currency=currency, as_of=as_of)
    return history.activity(as_of, since=since)
