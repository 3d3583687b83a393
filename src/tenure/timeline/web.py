"""The customer page's timeline panel: an HTMX fragment, filtered by kind, with "load
more" walking back through older entries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tenure.core.errors import InvalidInput
from tenure.core.routing import SessionRouter
from tenure.core.timeline import Amount, Message, Text, TimelineEntry, say
from tenure.customers import service as customers_service
from tenure.deps import SessionDep
from tenure.security.models import User
from tenure.security.permissions import CUSTOMERS_READ
from tenure.timeline import service
from tenure.web.forms import path_id
from tenure.web.i18n import Formatter
from tenure.web.messages import N_
from tenure.web.session import PageScope, page_require
from tenure.web.templating import gettext_for, render, request_locale

Gettext = Callable[[str], str]

Reader = Annotated[User, page_require(CUSTOMERS_READ)]

router = SessionRouter(include_in_schema=False)
PAGE_SIZE = 20
# The kinds of entries, as the filter names them (translated where they are shown).
KIND_LABELS = (
    N_("order"),
    N_("opportunity"),
    N_("interaction"),
    N_("task"),
    N_("change"),
    N_("ticket"),
    N_("campaign"),
)


CustomerId = Annotated[int, Depends(path_id("customer"))]


@dataclass(frozen=True)
class Shown:
    """An entry as the page shows it, in the reader's language."""

    at: datetime
    kind: str
    title: str
    detail: str | None
    url: str | None


def shown(entry: TimelineEntry, gettext: Gettext, fmt: Formatter) -> Shown:
    """``entry`` in the reader's language, amounts written the reader's way."""

    def money(amount: Amount) -> str:
        return fmt.money(amount.value, amount.currency)

    def said(text: Text) -> str:
        return say(text, gettext, money)

    title, detail = entry.title, entry.detail
    if entry.kind == "order" and isinstance(title, Message) and isinstance(detail, Message):
        # The page says an order in one line ("Order #5 for €90.00"), its status below.
        total = detail.params["total"]
        amount = money(total) if isinstance(total, Amount) else str(total)
        line = gettext("Order #%(id)s for %(total)s") % {**title.params, "total": amount}
        return Shown(entry.at, entry.kind, line, gettext(str(detail.params["status"])), entry.url)
    return Shown(
        entry.at, entry.kind, said(title), said(detail) if detail is not None else None, entry.url
    )


def panel(
    *,
    session: Session,
    customer_id: int,
    user: User,
    gettext: Gettext,
    fmt: Formatter,
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
        "timeline_entries": [shown(e, gettext, fmt) for e in page.entries],
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
        session=session,
        customer_id=customer_id,
        user=user,
        gettext=gettext_for(request),
        fmt=Formatter(request_locale(request)),
        kind=kind or None,
        before=moment,
    )
    template = "timeline/_entries.html" if moment is not None else "timeline/_panel.html"
    return render(request, template, context)
