"""The customer timeline over HTTP: /api/v1/customers/{id}/timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel

from tenure.core.routing import APIRouter
from tenure.core.schemas import Id
from tenure.customers import service as customers_service
from tenure.deps import ScopeDep, SessionDep, require
from tenure.security.permissions import CUSTOMERS_READ
from tenure.security.service import Principal
from tenure.timeline import service

Reader = Annotated[Principal, Depends(require(CUSTOMERS_READ))]

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


class TimelineEntryRead(BaseModel):
    at: datetime
    kind: str
    title: str
    detail: str | None
    url: str | None


class TimelineRead(BaseModel):
    items: list[TimelineEntryRead]
    next_before: datetime | None
    kinds: list[str]


@router.get("/{customer_id}/timeline", response_model=TimelineRead)
def customer_timeline(
    customer_id: Id,
    session: SessionDep,
    scope: ScopeDep,
    actor: Reader,
    kind: Annotated[str | None, Query(max_length=40, description="One kind only.")] = None,
    before: Annotated[
        datetime | None, Query(description="next_before of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = service.DEFAULT_LIMIT,
) -> TimelineRead:
    """Everything that happened with the customer (orders, opportunities, interactions,
    tasks, changes to the customer, ...), newest first; the kinds you may see are listed."""
    customers_service.get(session=session, customer_id=customer_id, scope=scope)
    result = service.page(
        session=session,
        customer_id=customer_id,
        role=actor.role,
        kind=kind or None,
        before=before,
        limit=limit,
    )
    return TimelineRead(
        items=[TimelineEntryRead(**service.as_dict(e)) for e in result.entries],
        next_before=result.next_before,
        kinds=service.kinds(role=actor.role),
    )
