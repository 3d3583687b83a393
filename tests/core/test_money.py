"""Money: exact Decimal storage and rounding to each currency's minor unit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.catalog.models import Product
from tenure.core.money import from_storage, minor_units, quantize, to_storage
from tenure.db import unit_of_work

AMOUNTS = ["0", "0.0001", "0.01", "19.99", "59.98", "-5.5", "1234567.8912", "1000000000000"]


@pytest.mark.parametrize("amount", AMOUNTS)
def test_storage_round_trips_amounts_exactly(amount: str) -> None:
    assert from_storage(to_storage(Decimal(amount))) == Decimal(amount)


def test_storage_is_integer_ten_thousandths() -> None:
    assert to_storage(Decimal("19.99")) == 199_900
    assert from_storage(199_900) == Decimal("19.99")


def _product(sku: str, price: str) -> Product:
    return Product(sku=sku, name=sku, unit_price=Decimal(price), currency="EUR", active=True)


def test_money_column_round_trips_through_the_database(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as s:
        s.add_all(_product(f"P{i}", amount) for i, amount in enumerate(AMOUNTS))
    with sessions() as s:
        stored = {p.sku: p.unit_price for p in s.scalars(select(Product))}
    assert stored == {f"P{i}": Decimal(amount) for i, amount in enumerate(AMOUNTS)}
    assert all(isinstance(v, Decimal) for v in stored.values())


def test_sums_in_sql_are_exact(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as s:
        s.add_all(_product(f"P{i}", "0.1") for i in range(10))
        s.add(_product("Q", "0.2"))
    with sessions() as s:
        total = s.scalar(select(func.sum(Product.unit_price)))
    assert total == Decimal("1.2")


@pytest.mark.parametrize(
    ("currency", "digits"), [("EUR", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("BHD", 3)]
)
def test_minor_units_per_currency(currency: str, digits: int) -> None:
    assert minor_units(currency) == digits


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("5", "EUR", "5.00"),
        ("19.99", "EUR", "19.99"),
        ("0.125", "EUR", "0.12"),
        ("0.135", "EUR", "0.14"),
        ("1500", "JPY", "1500"),
        ("1234.5", "JPY", "1234"),
        ("1235.5", "JPY", "1236"),
        ("1.0005", "BHD", "1.000"),
        ("1.0015", "BHD", "1.002"),
    ],
)
def test_quantize_rounds_half_even_to_the_currency(
    amount: str, currency: str, expected: str
) -> None:
    assert str(quantize(Decimal(amount), currency)) == expected


def test_quantize_keeps_exact_decimal_sums() -> None:
    total = Decimal("19.99") * 3 + Decimal("0.01")
    assert str(quantize(total, "EUR")) == "59.98"
