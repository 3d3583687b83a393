"""Shop data for analytics tests: customers, products and orders written straight to the
tables in one transaction (the orders service's own checks are tested elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tenure.catalog.models import Product
from tenure.customers.models import Customer
from tenure.orders.models import Order, OrderLine


class Shop:
    """Adds rows in one open transaction; ``save()`` commits them."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.session = sessions()
        self.session.begin()
        self.products: dict[str, int] = {}

    def customer(self, name: str = "Ann") -> int:
        c = Customer(kind="person", name=name, name_sort=name.lower(), lifecycle_stage="customer")
        self.session.add(c)
        self.session.flush()
        return c.id

    def product(self, sku: str, currency: str = "EUR") -> int:
        if sku not in self.products:
            p = Product(sku=sku, name=sku, unit_price=Decimal(1), currency=currency, active=True)
            self.session.add(p)
            self.session.flush()
            self.products[sku] = p.id
        return self.products[sku]

    def order(
        self,
        customer_id: int,
        when: date | datetime,
        total: str = "10.00",
        *,
        items: tuple[str, ...] = ("item",),
        status: str = "paid",
        currency: str = "EUR",
    ) -> None:
        at = when if isinstance(when, datetime) else datetime.combine(when, time(12), tzinfo=UTC)
        amount = Decimal(total)
        each = (amount / len(items)).quantize(Decimal("0.0001"))
        shares = [amount - each * (len(items) - 1)] + [each] * (len(items) - 1)
        lines = [
            OrderLine(
                product_id=self.product(sku, currency),
                quantity=1,
                unit_price=share,
                line_total=share,
            )
            for sku, share in zip(items, shares, strict=True)
        ]
        self.session.add(
            Order(
                customer_id=customer_id,
                status=status,
                ordered_at=at,
                currency=currency,
                total=amount,
                lines=lines,
            )
        )

    def save(self) -> None:
        self.session.commit()
        self.session.close()


@pytest.fixture
def shop(sessions: sessionmaker[Session]) -> Iterator[Shop]:
    s = Shop(sessions)
    yield s
    s.session.close()
