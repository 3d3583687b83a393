"""Request and response shapes for orders."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from tenure.core.money import quantize
from tenure.core.schemas import Amount, Currency, Id, Instant
from tenure.security.schemas import Strict


class OrderStatus(StrEnum):
    DRAFT = "draft"
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


# Which status may follow which. Terminal states have no way out.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.DRAFT: frozenset({OrderStatus.PLACED, OrderStatus.CANCELLED}),
    OrderStatus.PLACED: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.REFUNDED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}
# Orders that count as purchases in totals and analytics.
PURCHASED = frozenset({OrderStatus.PLACED, OrderStatus.PAID, OrderStatus.SHIPPED})
# A new order may start in one of these.
INITIAL = frozenset({OrderStatus.DRAFT, OrderStatus.PLACED, OrderStatus.PAID})

Quantity = Annotated[int, Field(ge=1, le=1_000_000, strict=True)]


class OrderLineIn(Strict):
    product_id: Id
    quantity: Quantity
    unit_price: Amount | None = Field(default=None, description="Defaults to the product's price.")


class OrderCreate(Strict):
    customer_id: Id
    status: OrderStatus = OrderStatus.DRAFT
    ordered_at: Instant | None = Field(default=None, description="Defaults to now.")
    currency: Currency = "EUR"
    notes: Annotated[str, Field(max_length=10_000)] | None = None
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=500)]


class OrderUpdate(Strict):
    """Status follows the allowed transitions; lines can be replaced only while a draft."""

    status: OrderStatus | None = None
    ordered_at: Instant | None = None
    notes: Annotated[str, Field(max_length=10_000)] | None = None
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=500)] | None = None


class OrderLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    product_id: int
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    status: OrderStatus
    ordered_at: datetime
    currency: str
    total: Decimal
    notes: str | None
    lines: list[OrderLineRead]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int

    @field_serializer("total")
    def _total(self, value: Decimal) -> str:
        return str(quantize(value, self.currency))

    @field_serializer("lines")
    def _lines(self, lines: list[OrderLineRead]) -> list[dict[str, object]]:
        return [
            {
                "id": line.id,
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price": str(quantize(line.unit_price, self.currency)),
                "line_total": str(quantize(line.line_total, self.currency)),
            }
            for line in lines
        ]
