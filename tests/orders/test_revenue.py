"""Revenue per day: kept with every change to an order, summed for whole days, rebuilt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.catalog import service as catalog_service
from tenure.catalog.models import Product
from tenure.catalog.schemas import ProductCreate
from tenure.core.money import quantize
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate
from tenure.db import unit_of_work
from tenure.orders import service as orders_service
from tenure.orders.models import Order, RevenueDay
from tenure.orders.schemas import OrderCreate, OrderUpdate
from tenure.security.models import User
from tenure.security.scope import EVERYTHING

Sessions = sessionmaker[Session]
MAY = datetime(2026, 5, 1, tzinfo=UTC)
JUNE = datetime(2026, 6, 1, tzinfo=UTC)
JULY = datetime(2026, 7, 1, tzinfo=UTC)


@pytest.fixture
def customer(sessions: Sessions, make_user: Callable[..., User]) -> Customer:
    owner = make_user("sales")
    with unit_of_work(sessions) as s:
        return customers_service.create(
            scope=EVERYTHING,
            session=s,
            data=CustomerCreate(name="Ada Lovelace"),
            actor=s.get(User, owner.id) or owner,
        )


@pytest.fixture
def lamp(sessions: Sessions) -> Product:
    with unit_of_work(sessions) as s:
        return catalog_service.create(
            session=s,
            data=ProductCreate.model_validate(
                {"sku": "LAMP-1", "name": "Desk lamp", "unit_price": "10.00"}
            ),
        )


def _order(sessions: Sessions, customer: Customer, lamp: Product, **fields: Any) -> Order:
    data = {
        "customer_id": customer.id,
        "status": "placed",
        "lines": [{"product_id": lamp.id, "quantity": 1}],
        **fields,
    }
    with unit_of_work(sessions) as s:
        return orders_service.create(
            scope=EVERYTHING, session=s, data=OrderCreate.model_validate(data)
        )


def _update(sessions: Sessions, order_id: int, **fields: Any) -> None:
    with unit_of_work(sessions) as s:
        order = orders_service.get(scope=EVERYTHING, session=s, order_id=order_id)
        orders_service.update(session=s, order=order, data=OrderUpdate.model_validate(fields))


def _months(sessions: Sessions) -> list[dict[str, Decimal]]:
    with sessions() as s:
        return [
            orders_service.revenue_between(session=s, start=a, end=b)
            for a, b in ((MAY, JUNE), (JUNE, JULY))
        ]


def _summed_from_orders(sessions: Sessions) -> list[dict[str, Decimal]]:
    """The same months, summed from the orders themselves."""
    months = []
    with sessions() as s:
        for start, end in ((MAY, JUNE), (JUNE, JULY)):
            rows = s.execute(
                select(Order.currency, func.sum(Order.total))
                .where(
                    Order.ordered_at >= start,
                    Order.ordered_at < end,
                    Order.status.in_(["placed", "paid", "shipped"]),
                    Order.deleted_at.is_(None),
                )
                .group_by(Order.currency)
            ).all()
            months.append({currency: quantize(total, currency) for currency, total in rows})
    return months


def test_months_add_up_purchases_by_the_day_they_were_ordered(
    sessions: Sessions, customer: Customer, lamp: Product
) -> None:
    _order(sessions, customer, lamp, ordered_at="2026-05-31T23:59:59Z")
    _order(sessions, customer, lamp, status="paid", ordered_at="2026-06-01T00:00:00Z")
    _order(sessions, customer, lamp, status="draft", ordered_at="2026-06-02T10:00:00Z")
    _order(sessions, customer, lamp, currency="USD", ordered_at="2026-06-03T10:00:00Z",
           lines=[{"product_id": lamp.id, "quantity": 3, "unit_price": "2.50"}])  # fmt: skip

    assert _months(sessions) == [
        {"EUR": Decimal("10.00")},
        {"EUR": Decimal("10.00"), "USD": Decimal("7.50")},
    ]


def test_status_changes_date_changes_trash_and_restore_move_the_revenue(
    sessions: Sessions, customer: Customer, lamp: Product
) -> None:
    draft = _order(sessions, customer, lamp, status="draft", ordered_at="2026-05-10T10:00:00Z")
    kept = _order(sessions, customer, lamp, ordered_at="2026-05-11T10:00:00Z")
    cancelled = _order(sessions, customer, lamp, ordered_at="2026-05-12T10:00:00Z")

    _update(sessions, draft.id, lines=[{"product_id": lamp.id, "quantity": 4}])
    _update(sessions, draft.id, status="placed")  # now it counts: 40.00
    _update(sessions, cancelled.id, status="cancelled")  # no longer counts
    _update(sessions, kept.id, ordered_at="2026-06-15T10:00:00Z")  # moves to June
    with unit_of_work(sessions) as s:
        orders_service.trash(
            session=s, order=orders_service.get(scope=EVERYTHING, session=s, order_id=draft.id)
        )
    assert _months(sessions) == [{}, {"EUR": Decimal("10.00")}]

    with unit_of_work(sessions) as s:
        orders_service.restore(scope=EVERYTHING, session=s, order_id=draft.id)
    assert _months(sessions) == [{"EUR": Decimal("40.00")}, {"EUR": Decimal("10.00")}]
    assert _months(sessions) == _summed_from_orders(sessions)


def test_a_rebuild_counts_the_same_as_the_changes_did(
    sessions: Sessions, customer: Customer, lamp: Product
) -> None:
    _order(sessions, customer, lamp, ordered_at="2026-05-20T10:00:00Z")
    paid = _order(sessions, customer, lamp, status="paid", ordered_at="2026-06-20T10:00:00Z")
    _update(sessions, paid.id, status="refunded")
    _order(sessions, customer, lamp, currency="USD", ordered_at="2026-06-21T23:30:00-02:00",
           lines=[{"product_id": lamp.id, "quantity": 1, "unit_price": "3.00"}])  # fmt: skip
    with sessions() as s:
        kept = [(r.day, r.currency, r.orders, r.total) for r in s.scalars(_ALL)]

    with unit_of_work(sessions) as s:
        orders_service.rebuild_revenue(connection=s.connection())

    with sessions() as s:
        rebuilt = [(r.day, r.currency, r.orders, r.total) for r in s.scalars(_ALL)]
    assert [row for row in kept if row[2]] == rebuilt
    assert _months(sessions) == [{"EUR": Decimal("10.00")}, {"USD": Decimal("3.00")}]


_ALL = select(RevenueDay).order_by(RevenueDay.day, RevenueDay.currency)
