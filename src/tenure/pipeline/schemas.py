"""Request and response shapes for the sales pipeline."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from tenure.core.money import quantize
from tenure.core.schemas import Amount, Currency, Id
from tenure.orders.schemas import OrderLineIn, OrderStatus
from tenure.security.schemas import Strict


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


Title = Annotated[str, Field(min_length=1, max_length=200)]
StageName = Annotated[str, Field(min_length=1, max_length=60)]
Probability = Annotated[int, Field(ge=0, le=100, strict=True)]
Position = Annotated[int, Field(ge=0, le=1_000_000, strict=True)]
Notes = Annotated[str, Field(max_length=10_000)]


class StageCreate(Strict):
    name: StageName
    position: Position | None = Field(default=None, description="Defaults to the last place.")
    probability: Probability
    kind: StageKind = StageKind.OPEN


class StageUpdate(Strict):
    name: StageName | None = None
    position: Position | None = None
    probability: Probability | None = None
    kind: StageKind | None = None


class StageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    position: int
    probability: int
    kind: StageKind
    created_at: datetime
    updated_at: datetime
    version: int


class OpportunityCreate(Strict):
    customer_id: Id
    title: Title
    amount: Amount
    currency: Currency = "EUR"
    stage_id: Id | None = Field(default=None, description="Defaults to the first open stage.")
    expected_close_on: date | None = None
    owner_id: Id | None = Field(default=None, description="Defaults to you.")
    notes: Notes | None = None


class OpportunityUpdate(Strict):
    """Fields sent are changed; a new stage is a move (recorded in the stage history)."""

    title: Title | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    stage_id: Id | None = None
    expected_close_on: date | None = None
    owner_id: Id | None = None
    notes: Notes | None = None


class OpportunityMove(Strict):
    stage_id: Id
    position: Position | None = Field(
        default=None, description="Place in the stage's column, from 0; defaults to the end."
    )


class OpportunityOrder(Strict):
    """The order a won opportunity becomes: its lines (priced as any order's)."""

    status: OrderStatus = OrderStatus.PLACED
    notes: Notes | None = None
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=500)]


class OpportunityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    title: str
    amount: Decimal
    currency: str
    stage_id: int
    status: StageKind
    position: int
    expected_close_on: date | None
    owner_id: int
    notes: str | None
    stage_entered_at: datetime
    closed_at: datetime | None
    order_id: int | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int

    @field_serializer("amount")
    def _amount(self, value: Decimal) -> str:
        return str(quantize(value, self.currency))


class StageChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_stage_id: int | None
    to_stage_id: int
    actor_id: int | None
    at: datetime


class ForecastMonth(BaseModel):
    month: str = Field(description="YYYY-MM of the expected close date.")
    currency: str
    opportunities: int
    amount: Decimal
    weighted: Decimal = Field(description="Sum of amount times the stage's win probability.")

    @field_serializer("amount", "weighted")
    def _money(self, value: Decimal) -> str:
        return str(quantize(value, self.currency))


class Forecast(BaseModel):
    months: list[ForecastMonth]
    undated: list[ForecastMonth] = Field(
        description="Open opportunities without an expected close date, per currency."
    )
