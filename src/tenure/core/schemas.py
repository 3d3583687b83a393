"""Field types shared by request schemas: record ids, currency codes and money amounts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

from tenure.core.time import as_utc

# Ids are INTEGER columns, 32-bit on PostgreSQL: a larger id cannot exist, and the
# database cannot even be asked about it, so it is refused as invalid input (422).
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID, description="A record id.")]


def _in_utc(value: datetime) -> datetime:
    try:
        return as_utc(value)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before the first representable day
        raise ValueError("must fall within the years 1 to 9999 in UTC") from None


# A moment in time from a client, held in UTC; without an offset it is taken as UTC.
Instant = Annotated[datetime, AfterValidator(_in_utc)]

Currency = Annotated[
    str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR", examples=["EUR"])
]
Amount = Annotated[
    Decimal,
    Field(
        ge=0,
        le=Decimal("1e12"),
        max_digits=18,
        decimal_places=4,
        description='A decimal string, e.g. "12.50"',
        examples=["12.50"],
    ),
]
