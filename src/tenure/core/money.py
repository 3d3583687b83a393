"""Money: Decimal in code, integer ten-thousandths in the database, strings in JSON."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import BigInteger, Dialect
from sqlalchemy.types import TypeDecorator

SCALE = 10_000
# ISO 4217 minor units where they are not 2.
MINOR_UNITS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3}


def minor_units(currency: str) -> int:
    return MINOR_UNITS.get(currency, 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit (banker's rounding)."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_EVEN)


def to_storage(amount: Decimal) -> int:
    return int((amount * SCALE).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_storage(value: int) -> Decimal:
    return Decimal(value).scaleb(-4)


class Money(TypeDecorator[Decimal]):
    """A Decimal amount kept as a 64-bit integer of 1/10,000 units (exact sums in SQL)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else to_storage(Decimal(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_storage(int(value))
