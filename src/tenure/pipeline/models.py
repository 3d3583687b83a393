"""The sales pipeline: its stages, the opportunities moving through them and each move."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.money import Money
from tenure.core.records import Record, Trashable
from tenure.core.time import UTCDateTime
from tenure.db import Base


class PipelineStage(Record, Base):
    """A column of the board. ``kind`` is open, won or lost; ``probability`` (0-100) weighs
    the forecast."""

    __tablename__ = "pipeline_stage"

    name: Mapped[str] = mapped_column(String(60), unique=True)
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))


class Opportunity(Record, Trashable, Base):
    """A deal with a customer. ``status`` follows the kind of its stage (open, won, lost);
    ``position`` orders the cards of a stage on the board."""

    __tablename__ = "opportunity"
    __table_args__ = (
        Index("ix_opportunity_stage_id_position", "stage_id", "position"),
        Index("ix_opportunity_status_expected_close_on", "status", "expected_close_on"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    stage_id: Mapped[int] = mapped_column(ForeignKey("pipeline_stage.id"))
    status: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    expected_close_on: Mapped[date | None] = mapped_column(Date)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    stage_entered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    order_id: Mapped[int | None] = mapped_column(ForeignKey("sales_order.id"), unique=True)


class StageChange(Base):
    """One move of an opportunity into a stage (``from_stage_id`` is None when it was
    created there): what the time spent in each stage is read from."""

    __tablename__ = "opportunity_stage_change"
    __table_args__ = (
        Index("ix_opportunity_stage_change_opportunity_id_at", "opportunity_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"))
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_stage.id"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("pipeline_stage.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
