"""Shop data for analytics tests: customers, products and orders written straight to the
tables in one transaction (the orders service's own checks are tested elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
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


# --- Simulated customers --------------------------------------------------------------

AS_OF = date(2024, 6, 30)
START = date(2023, 1, 1)
# Products bought in pairs: a customer's basket holds one pair, often with its partner.
PAIRS = (("tea", "honey"), ("pasta", "sauce"), ("bread", "butter"), ("beer", "crisps"))


@dataclass
class Bought:
    """What the simulation bought: per customer, each order's (date, total, items)."""

    orders: dict[int, list[tuple[date, Decimal, tuple[str, ...]]]]

    def days(self, customer_id: int, until: date = AS_OF) -> list[date]:
        return sorted({d for d, _, _ in self.orders[customer_id] if d <= until})


def simulate(shop: Shop, customers: int, seed: int) -> Bought:
    """Customers buying at their own rate until they leave, over 18 months up to AS_OF;
    each order holds one product of a pair, with its partner three times in four."""
    rng = np.random.default_rng(seed)
    bought: dict[int, list[tuple[date, Decimal, tuple[str, ...]]]] = {}
    for i in range(customers):
        cid = shop.customer(f"Customer {i}")
        rate = rng.gamma(2.0, 0.012)  # purchases per day while a customer
        first = int(rng.integers(0, 300))
        leaves = first + rng.exponential(250)
        day, orders = float(first), []
        while day <= min(leaves, (AS_OF - START).days):
            pair: tuple[str, ...] = PAIRS[int(rng.integers(0, len(PAIRS)))]
            items = pair if rng.random() < 0.75 else (pair[int(rng.integers(0, 2))],)
            when = START + timedelta(days=int(day))
            total = Decimal(f"{int(rng.integers(5, 80))}.{int(rng.integers(0, 100)):02d}")
            shop.order(cid, when, str(total), items=items)
            orders.append((when, total, items))
            day += rng.exponential(1 / rate)
        bought[cid] = orders
    shop.save()
    return Bought(bought)
