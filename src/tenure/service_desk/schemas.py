"""Request and response shapes for tickets, service levels and satisfaction."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tenure.core.schemas import Id, Instant
from tenure.security.schemas import Strict


class TicketType(StrEnum):
    CONSULTATION = "consultation"
    COMPLAINT = "complaint"
    FEEDBACK = "feedback"


class Channel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    WEB = "web"
    CHAT = "chat"


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


# Which status may follow which; resolved and closed tickets may be reopened.
TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.NEW: frozenset({TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.RESOLVED}),
    TicketStatus.OPEN: frozenset({TicketStatus.PENDING, TicketStatus.RESOLVED}),
    TicketStatus.PENDING: frozenset({TicketStatus.OPEN, TicketStatus.RESOLVED}),
    TicketStatus.RESOLVED: frozenset({TicketStatus.CLOSED, TicketStatus.OPEN}),
    TicketStatus.CLOSED: frozenset({TicketStatus.OPEN}),
}
# Still being worked on: their service levels run.
ACTIVE = frozenset({TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING})
DONE = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})

Priority = Literal["P1", "P2", "P3", "P4"]
Rating = Annotated[int, Field(ge=1, le=4, strict=True)]
Subject = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, max_length=20_000)]
Reason = Annotated[str, Field(max_length=2_000)]


class TicketCreate(Strict):
    customer_id: Id
    order_id: Id | None = Field(default=None, description="An order of that customer.")
    type: TicketType
    channel: Channel = Channel.EMAIL
    subject: Subject
    description: Text
    urgency: Rating = Field(default=2, description="1 (low) to 4 (critical).")
    impact: Rating = Field(default=2, description="1 (one person) to 4 (the whole business).")
    complexity: Rating = Field(default=2, description="1 (simple) to 4 (complex).")
    assignee_id: Id | None = None
    team_id: Id | None = None
    opened_at: Instant | None = Field(
        default=None, description="When the customer got in touch; defaults to now."
    )


class TicketUpdate(Strict):
    """Fields sent are changed; a status follows the allowed transitions."""

    type: TicketType | None = None
    channel: Channel | None = None
    subject: Subject | None = None
    description: Text | None = None
    order_id: Id | None = None
    status: TicketStatus | None = None
    urgency: Rating | None = None
    impact: Rating | None = None
    complexity: Rating | None = None
    team_id: Id | None = None
    reason: Reason | None = Field(default=None, description="Why (kept in the history).")


class PriorityOverride(Strict):
    priority: Priority | None = Field(
        description="The priority to use; null returns to the computed one."
    )
    reason: Reason = Field(description="Why the computed priority does not fit (required).")


class Assignment(Strict):
    assignee_id: Id | None = Field(description="The agent; null leaves it unassigned.")


class BulkAssignment(Strict):
    ticket_ids: Annotated[list[Id], Field(min_length=1, max_length=500)]
    assignee_id: Id | None


class MessageCreate(Strict):
    body: Text
    internal: bool = Field(default=False, description="An internal note, not a public reply.")


class SatisfactionIn(Strict):
    rating: Annotated[int, Field(ge=1, le=5, strict=True, description="CSAT, 1 to 5.")]
    comment: Annotated[str, Field(max_length=5_000)] | None = None


class SlaPolicyUpdate(Strict):
    first_response_minutes: Annotated[int, Field(ge=1, le=525_600, strict=True)] | None = None
    resolution_minutes: Annotated[int, Field(ge=1, le=525_600, strict=True)] | None = None
    business_hours: bool | None = None


class SlaPolicyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    priority: str
    first_response_minutes: int
    resolution_minutes: int
    business_hours: bool
    version: int


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    author_id: int | None
    internal: bool
    body: str
    created_at: datetime


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor_id: int | None
    kind: str
    from_value: str | None
    to_value: str | None
    reason: str | None
    created_at: datetime


class TicketRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    order_id: int | None
    type: TicketType
    channel: Channel
    subject: str
    description: str
    status: TicketStatus
    urgency: int
    impact: int
    complexity: int
    priority: str
    computed_priority: str
    priority_reasons: list[str]
    priority_override_reason: str | None
    assignee_id: int | None
    team_id: int | None
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_responded_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    first_response_breached: bool
    resolution_breached: bool
    satisfaction_rating: int | None
    satisfaction_comment: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int


class TicketDetail(TicketRead):
    messages: list[MessageRead]
    events: list[EventRead]


class SurveyLink(BaseModel):
    url: str
    expires_at: datetime


class Distribution(BaseModel):
    count: int
    mean: float | None
    median: float | None
    p90: float | None


class GroupFigures(BaseModel):
    key: str
    tickets: int
    complaints: int
    first_response_minutes: Distribution
    resolution_minutes: Distribution
    csat_mean: float | None
    sla_compliance: float | None


class Figures(BaseModel):
    start: datetime
    end: datetime
    period: Literal["week", "month"]
    tickets: int
    first_response_minutes: Distribution
    resolution_minutes: Distribution
    csat: dict[str, float | int | None]
    sla_compliance: float | None
    complaints_by_category: dict[str, int]
    per_agent: list[GroupFigures]
    per_period: list[GroupFigures]
