"""Interactions logged against customers (notes, calls, meetings, emails) and tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.records import Record, Trashable
from tenure.core.time import UTCDateTime
from tenure.db import Base


class Interaction(Record, Trashable, Base):
    __tablename__ = "interaction"
    __table_args__ = (
        Index("ix_interaction_customer_id_occurred_at", "customer_id", "occurred_at"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    kind: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # A service desk ticket; its reference is declared once that table exists.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunity.id"), index=True)


class Task(Record, Trashable, Base):
    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_assignee_id_status_due_at", "assignee_id", "status", "due_at"),
    )

    title: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assignee_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunity.id"), index=True)
    status: Mapped[str] = mapped_column(String(8))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
