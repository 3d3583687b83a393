"""Per-customer purchase history aggregated in SQL: what counts, and the figures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure.analytics import activity
from tenure.analytics.errors import CutoffInFuture
from tenure.core.time import utcnow
from tenure.customers.models import Customer
from tenure.orders.models import Order
from tests.analytics.conftest import Shop

AS_OF = date(2024, 3, 31)


def _day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _arrange(shop: Shop) -> dict[str, int]:
    ann, bob, cid, dee = (shop.customer(n) for n in ("Ann", "Bob", "Cid", "Dee"))
    shop.order(ann, datetime(2024, 1, 5, 0, 1, tzinfo=UTC), "10.00")
    shop.order(ann, datetime(2024, 1, 5, 23, 59, tzinfo=UTC), "5.50", status="shipped")
    shop.order(ann, date(2024, 2, 10), "20.00", status="placed")
    shop.order(ann, date(2024, 3, 1), "100.00", status="draft")
    shop.order(ann, date(2024, 3, 2), "100.00", status="cancelled")
    shop.order(ann, date(2024, 3, 5), "7.00", currency="USD")
    shop.order(ann, datetime(2024, 4, 1, 0, 0, tzinfo=UTC), "9.00")
    shop.order(bob, datetime(2024, 3, 31, 23, 30, tzinfo=UTC), "3.3333")
    shop.order(cid, date(2024, 1, 1), "50.00", status="draft")
    shop.order(dee, date(2024, 1, 1), "50.00")
    shop.order(bob, date(2024, 1, 1), "1.00")
    shop.session.flush()
    shop.session.get_one(Customer, dee).deleted_at = utcnow()
    trashed = shop.session.scalars(select(Order).where(Order.total == Decimal(1))).one()
    trashed.deleted_at = utcnow()
    shop.save()
    return {"ann": ann, "bob": bob}


def test_purchases_are_aggregated_per_customer_in_one_currency(
    shop: Shop, session: Session
) -> None:
    ids = _arrange(shop)

    a = activity.load(session=session, currency="EUR", as_of=AS_OF)

    assert a.customer_id.tolist() == [ids["ann"], ids["bob"]]
    assert a.orders.tolist() == [3, 1]
    assert a.days.tolist() == [2, 1]
    assert a.first_day.tolist() == [_day(date(2024, 1, 5)), _day(date(2024, 3, 31))]
    assert a.last_day.tolist() == [_day(date(2024, 2, 10)), _day(date(2024, 3, 31))]
    assert a.revenue_units.tolist() == [355_000, 33_333]
    assert a.first_day_revenue_units.tolist() == [155_000, 33_333]
    assert a.recency_days.tolist() == [(AS_OF - date(2024, 2, 10)).days, 0]


def test_a_window_counts_only_its_own_days(shop: Shop, session: Session) -> None:
    ids = _arrange(shop)

    a = activity.load(session=session, currency="EUR", as_of=AS_OF, since=date(2024, 2, 10))

    assert a.customer_id.tolist() == [ids["ann"], ids["bob"]]
    assert a.orders.tolist() == [1, 1]
    assert a.revenue_units.tolist() == [200_000, 33_333]


def test_the_other_currency_is_aggregated_on_its_own(shop: Shop, session: Session) -> None:
    ids = _arrange(shop)

    a = activity.load(session=session, currency="USD", as_of=AS_OF)

    assert a.customer_id.tolist() == [ids["ann"]]
    assert a.revenue_units.tolist() == [70_000]


def test_no_purchases_give_empty_arrays(session: Session) -> None:
    a = activity.load(session=session, currency="EUR", as_of=AS_OF)

    assert a.size == 0
    assert a.days.tolist() == []


def test_a_cutoff_after_today_is_refused() -> None:
    with pytest.raises(CutoffInFuture, match="2030-01-02 is after today"):
        activity.check_as_of(date(2030, 1, 2), today=date(2030, 1, 1))

    assert activity.check_as_of(date(2030, 1, 1), today=date(2030, 1, 1)) == date(2030, 1, 1)
