"""The customer page's timeline panel: an HTMX fragment, filtered by kind, with "load
more" walking back through older entries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tenure.core.errors import InvalidInput, NotFound
from tenure.core.schemas import MAX_ID  # a larger id cannot exist: 404
from tenure.customers import service as customers_service
from tenure.deps import SessionDep
from tenure.security.models import User
from tenure.security.permissions import CUSTOMERS_READ
from tenure.timeline import service
from tenure.web.session import PageScope, page_require
from tenure.web.templating import render

Reader = Annotated[User, page_require(CUSTOMERS_READ)]

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20


def customer_id_param(customer_id: int) -> int:
    if not 1 <= customer_id <= MAX_ID:
        raise NotFound(f"There is no customer {customer_id}.")
    return customer_id


CustomerId = Annotated[int, Depends(customer_id_param)]


def panel(
    *,
    session: Session,
    customer_id: int,
    user: User,
    kind: str | None = None,
    before: datetime | None = None,
) -> dict[str, Any]:
    """What the timeline panel shows: one page of entries, the kinds to filter by and the
    link to the next page."""
    kinds = service.kinds(role=user.role)
    kind = kind if kind in kinds else None
    page = service.page(
        session=session,
        customer_id=customer_id,
        role=user.role,
        kind=kind,
        before=before,
        limit=PAGE_SIZE,
    )
    more_url = None
    if page.next_before is not None:
        query = {"before": page.next_before.isoformat(), **({"kind": kind} if kind else {})}
        more_url = f"/customers/{customer_id}/timeline?{urlencode(query)}"
    return {
        "timeline_customer": customer_id,
        "timeline_entries": page.entries,
        "timeline_kinds": kinds,
        "timeline_kind": kind or "",
        "timeline_more": more_url,
    }


@router.get("/customers/{customer_id:int}/timeline")
def timeline_fragment(
    request: Request,
    customer_id: CustomerId,
    session: SessionDep,
    user: Reader,
    scope: PageScope,
    kind: str | None = None,
    before: str | None = None,
) -> Response:
    """The panel (a kind chosen) or, with ``before``, the entries that follow."""
    customers_service.get(session=session, customer_id=customer_id, scope=scope)
    moment = None
    if before:
        try:
            moment = datetime.fromisoformat(before)
        except ValueError:
            raise InvalidInput(
                "before must be a moment, as the 'load more' link gives it."
            ) from None
    context = panel(
        session=session, customer_id=customer_id, user=user, kind=kind or None, before=moment
    )
    template = "timeline/_entries.html" if moment is not None else "timeline/_panel.html"
    return render(request, template, context)
