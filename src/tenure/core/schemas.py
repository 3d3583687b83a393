"""Field types shared by request schemas: record ids, currency codes and money amounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

# Ids are INTEGER columns, 32-bit on PostgreSQL: a larger id cannot exist, and the
# database cannot even be asked about it, so it is refused as invalid input (422).
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID, description="A record id.")]

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
