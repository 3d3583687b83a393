"""Segments (saved customer filters), campaigns, their members and responses."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.money import Money
from tenure.core.records import Record, Trashable
from tenure.core.time import UTCDateTime
from tenure.db import Base, JSONDoc


class Segment(Record, Trashable, Base):
    """A saved filter over customers; its members are worked out whenever it is read."""

    __tablename__ = "segment"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDoc)


class Campaign(Record, Trashable, Base):
    __tablename__ = "campaign"
    __table_args__ = (Index("ix_campaign_status_id", "status", "id"),)

    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    budget: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    segment_id: Mapped[int] = mapped_column(ForeignKey("segment.id"), index=True)
    holdout_percent: Mapped[int] = mapped_column(Integer)
    attribution_days: Mapped[int] = mapped_column(Integer)
    subject_template: Mapped[str | None] = mapped_column(Text)
    body_template: Mapped[str | None] = mapped_column(Text)
    html_template: Mapped[str | None] = mapped_column(Text)
    # The seed of the draw that put members in the control group: the holdout is
    # reproducible from it and the member list.
    seed: Mapped[int | None] = mapped_column(Integer)
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CampaignMember(Base):
    """A customer taken into a campaign at launch; ``control`` members receive nothing.

    ``send_status``: None (nothing to send yet), queued, sent, failed, or skipped (opted
    out by the time of sending, or a channel that sends nothing)."""

    __tablename__ = "campaign_member"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id"),
        Index("ix_campaign_member_customer_id", "customer_id"),
        Index("ix_campaign_member_campaign_id_send_status", "campaign_id", "send_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    control: Mapped[bool] = mapped_column(Boolean)
    send_status: Mapped[str | None] = mapped_column(String(10))
    send_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CampaignResponse(Base):
    """Something a member did or that happened to their message: sent, delivered,
    bounced, opened, clicked, unsubscribed (conversions are worked out from orders)."""

    __tablename__ = "campaign_response"
    __table_args__ = (
        Index("ix_campaign_response_campaign_id_kind", "campaign_id", "kind"),
        Index("ix_campaign_response_member_id", "member_id"),
        Index("ix_campaign_response_customer_id_at", "customer_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("campaign_member.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[str | None] = mapped_column(Text)
