"""Request and response shapes for products."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from tenure.core.money import quantize
from tenure.core.schemas import Amount, Currency
from tenure.security.schemas import Strict

Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class ProductCreate(Strict):
    sku: Sku
    name: Annotated[str, Field(min_length=1, max_length=200)]
    category: Annotated[str, Field(max_length=100)] | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    unit_price: Amount
    currency: Currency = "EUR"
    active: bool = True


class ProductUpdate(Strict):
    sku: Sku | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    category: Annotated[str, Field(max_length=100)] | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    unit_price: Amount | None = None
    currency: Currency | None = None
    active: bool | None = None


class ProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    name: str
    category: str | None
    description: str | None
    unit_price: Decimal
    currency: str
    active: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int

    @field_serializer("unit_price")
    def _money(self, value: Decimal) -> str:
        return str(quantize(value, self.currency))
