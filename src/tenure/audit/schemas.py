"""Response shapes for the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    seq: int = Field(description="Position in the chain: 1, 2, 3, ... with no gaps.")
    occurred_at: datetime
    actor_id: int | None = Field(description="The user who acted (none: the system or CLI).")
    actor_email: str | None = Field(description="The actor's email when the entry was made.")
    action: str = Field(examples=["customer.updated", "auth.login_failed", "access.denied"])
    entity_type: str | None = Field(examples=["customer"])
    entity_id: str | None
    request_id: str | None
    client_address: str | None
    changes: dict[str, Any] = Field(
        description='Field-level diff, {"field": {"old": ..., "new": ...}}; personal data '
        'and secrets appear only as "[masked]".'
    )
    details: dict[str, Any] = Field(description="What else describes the event (a reason).")
    prev_hash: str = Field(description="SHA-256 of the entry before (64 zeros for the first).")
    hash: str = Field(description="SHA-256 of this entry's canonical form.")
