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


def load(*, session: Session, currency: str, as_of: date, since: date | None = None) -> Activity:
    """Each customer's purchases in ``currency`` on days ``since`` (inclusive) to ``as_of``
    (inclusive); customers in the trash are left out."""
    rows = orders_service.purchase_activity(
        session=session,
        currency=currency,
        end=end_of(as_of),
        start=end_of(since - timedelta(days=1)) if since is not None else None,
    )
    trashed = customers_service.trashed_ids(session=session)
    table = np.array(
        [
            (
                r.customer_id,
                r.orders,
                r.days,
                r.first_day,
                r.last_day,
                r.revenue_units,
                r.first_day_revenue_units,
            )
            for r in rows
            if r.customer_id not in trashed
        ],
        dtype=np.int64,
    ).reshape(-1, 7)
    return Activity(as_of, currency, *(table[:, i].copy() for i in range(7)))
