"""Request and response shapes for segments and campaigns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from tenure.core.money import quantize
from tenure.core.schemas import Amount, Currency, Id, Instant
from tenure.security.schemas import Strict

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=10_000)]
Template = Annotated[str, Field(max_length=100_000)]
Definition = Annotated[
    dict[str, Any],
    Field(
        description='A filter: {"all": [{"field": ..., "op": ..., "value": ...}, ...]} '
        "(see docs/marketing.md)",
        examples=[{"all": [{"field": "lifecycle_stage", "op": "in", "value": ["customer"]}]}],
    ),
]


class SegmentCreate(Strict):
    name: Name
    description: Description | None = None
    definition: Definition


class SegmentUpdate(Strict):
    name: Name | None = None
    description: Description | None = None
    definition: Definition | None = None


class SegmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int


class SegmentPreviewIn(Strict):
    definition: Definition


class MemberCustomer(BaseModel):
    """A customer a segment selects, as lists show them (no personal data)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    lifecycle_stage: str


class SegmentPreview(BaseModel):
    count: int
    count_capped: bool
    members: list[MemberCustomer]


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"
    EVENT = "event"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# Which status may follow which; draft becomes scheduled or running only by a launch.
TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.DRAFT: frozenset({CampaignStatus.CANCELLED}),
    CampaignStatus.SCHEDULED: frozenset({CampaignStatus.RUNNING, CampaignStatus.CANCELLED}),
    CampaignStatus.RUNNING: frozenset({CampaignStatus.COMPLETED, CampaignStatus.CANCELLED}),
    CampaignStatus.COMPLETED: frozenset(),
    CampaignStatus.CANCELLED: frozenset(),
}


class CampaignCreate(Strict):
    name: Name
    channel: Channel = Channel.EMAIL
    budget: Amount = Decimal(0)
    currency: Currency = "EUR"
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    segment_id: Id
    holdout_percent: Annotated[int, Field(ge=0, le=50, description="Members kept as control.")] = 0
    attribution_days: Annotated[int, Field(ge=0, le=365)] = 30
    subject_template: Annotated[str, Field(max_length=1000)] | None = None
    body_template: Template | None = None
    html_template: Template | None = None


class CampaignUpdate(Strict):
    """Status follows the allowed transitions (a draft is launched, not set running)."""

    name: Name | None = None
    status: CampaignStatus | None = None
    channel: Channel | None = None
    budget: Amount | None = None
    currency: Currency | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    segment_id: Id | None = None
    holdout_percent: Annotated[int, Field(ge=0, le=50)] | None = None
    attribution_days: Annotated[int, Field(ge=0, le=365)] | None = None
    subject_template: Annotated[str, Field(max_length=1000)] | None = None
    body_template: Template | None = None
    html_template: Template | None = None


class CampaignRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    channel: Channel
    status: CampaignStatus
    budget: Decimal
    currency: str
    starts_at: datetime | None
    ends_at: datetime | None
    segment_id: int
    holdout_percent: int
    attribution_days: int
    subject_template: str | None
    body_template: str | None
    html_template: str | None
    seed: int | None
    launched_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int

    @field_serializer("budget")
    def _budget(self, value: Decimal) -> str:
        return str(quantize(value, self.currency))


class MemberRead(BaseModel):
    id: int
    customer_id: int
    customer_name: str
    control: bool
    send_status: str | None
    send_error: str | None
    sent_at: datetime | None


class SendReport(BaseModel):
    queued: int
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    error: str | None = None


class ReportedKind(StrEnum):
    DELIVERED = "delivered"
    BOUNCED = "bounced"


class ResponseIn(Strict):
    """A delivery or bounce notice from a mail system, for one member."""

    customer_id: Id
    kind: ReportedKind
    at: Instant | None = None
    detail: Annotated[str, Field(max_length=2000)] | None = None


class ResponseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int
    member_id: int
    customer_id: int
    kind: str
    at: datetime
    detail: str | None


class GroupResults(BaseModel):
    members: int
    counts: dict[str, int]
    rates: dict[str, float]
    conversions: int
    conversion_rate: float
    revenue: str


class Uplift(BaseModel):
    treatment_rate: float
    control_rate: float
    difference: float
    treatment_conversions: int
    treatment_members: int
    control_conversions: int
    control_members: int


class CampaignResults(BaseModel):
    campaign_id: int
    currency: str
    budget: str
    window_start: datetime | None
    window_end: datetime | None
    treatment: GroupResults
    control: GroupResults
    revenue: str
    cost_per_conversion: str | None
    roi: str | None
    uplift: Uplift
