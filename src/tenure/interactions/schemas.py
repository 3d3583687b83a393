"""Request and response shapes for interactions and tasks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from tenure.core.schemas import Id, Instant
from tenure.security.schemas import Strict


class InteractionKind(StrEnum):
    NOTE = "note"
    CALL = "call"
    MEETING = "meeting"
    EMAIL = "email"


# Kinds that take time; the others have no duration.
TIMED = frozenset({InteractionKind.CALL, InteractionKind.MEETING})


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


Subject = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=20_000)]
Minutes = Annotated[int, Field(ge=0, le=24 * 60 * 7, strict=True)]


class InteractionCreate(Strict):
    customer_id: Id
    kind: InteractionKind
    subject: Subject
    body: Text | None = None
    occurred_at: Instant | None = Field(default=None, description="Defaults to now.")
    duration_minutes: Minutes | None = Field(default=None, description="Calls and meetings.")
    ticket_id: Id | None = None
    opportunity_id: Id | None = None


class InteractionUpdate(Strict):
    kind: InteractionKind | None = None
    subject: Subject | None = None
    body: Text | None = None
    occurred_at: Instant | None = None
    duration_minutes: Minutes | None = None
    ticket_id: Id | None = None
    opportunity_id: Id | None = None


class InteractionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    kind: InteractionKind
    subject: str
    body: str | None
    occurred_at: datetime
    duration_minutes: int | None
    author_id: int | None
    ticket_id: int | None
    opportunity_id: int | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int


class TaskCreate(Strict):
    title: Subject
    notes: Text | None = None
    due_at: Instant | None = None
    assignee_id: Id | None = Field(default=None, description="Defaults to you.")
    customer_id: Id | None = None
    opportunity_id: Id | None = None


class TaskUpdate(Strict):
    title: Subject | None = None
    notes: Text | None = None
    due_at: Instant | None = None
    assignee_id: Id | None = None
    customer_id: Id | None = None
    opportunity_id: Id | None = None
    status: TaskStatus | None = None


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    notes: str | None
    due_at: datetime | None
    assignee_id: int
    customer_id: int | None
    opportunity_id: int | None
    status: TaskStatus
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int
