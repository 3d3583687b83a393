"""Field types shared by request schemas: currency codes and money amounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

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
