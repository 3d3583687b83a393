"""The customer page's timeline panel: an HTMX fragment, filtered by kind, with "load
more" walking back through older entries."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tenure.core.errors import InvalidInput, NotFound
from tenure.core.schemas import MAX_ID  # a larger id cannot exist: 404
from tenure.core.timeline import TimelineEntry
from tenure.customers import service as customers_service
from tenure.deps import SessionDep
from tenure.security.models import User
from tenure.security.permissions import CUSTOMERS_READ
from tenure.timeline import service
from tenure.web.i18n import Formatter
from tenure.web.messages import N_
from tenure.web.session import PageScope, page_require
from tenure.web.templating import gettext_for, render, request_locale

Gettext = Callable[[str], str]

Reader = Annotated[User, page_require(CUSTOMERS_READ)]

router = APIRouter(include_in_schema=False)
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


def customer_id_param(customer_id: int) -> int:
    if not 1 <= customer_id <= MAX_ID:
        raise NotFound(f"There is no customer {customer_id}.")
    return customer_id


CustomerId = Annotated[int, Depends(customer_id_param)]


# What the domains' entries say (in English, as the API gives them), as patterns to
# translate: the values (titles, subjects) are the user's own and stay as they are.
PATTERNS = (
    N_("Opportunity opened: %(title)s"),
    N_("Opportunity moved: %(title)s"),
    N_("Opportunity won: %(title)s"),
    N_("Opportunity lost: %(title)s"),
    N_("Task: %(title)s"),
    N_("Task done: %(title)s"),
    N_("due %(date)s"),
    N_("Note: %(subject)s"),
    N_("Call: %(subject)s"),
    N_("Meeting: %(subject)s"),
    N_("Email: %(subject)s"),
    N_("%(minutes)s min"),
    N_("Customer created"),
    N_("Customer updated"),
    N_("Customer moved to the trash"),
    N_("Customer restored from the trash"),
    N_("Personal data erased"),
    N_("Ticket opened: %(subject)s"),
    N_("Ticket resolved: %(subject)s"),
    N_("satisfaction %(rating)s/5"),
    N_("%(campaign)s: sent"),
    N_("%(campaign)s: delivered"),
    N_("%(campaign)s: bounced"),
    N_("%(campaign)s: opened"),
    N_("%(campaign)s: clicked"),
    N_("%(campaign)s: unsubscribed"),
    N_("%(campaign)s: converted"),
)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_ORDER = re.compile(r"Order #(?P<id>\d+)")
_ORDER_DETAIL = re.compile(r"(?P<total>-?[\d.]+) (?P<currency>[A-Z]{3}) · (?P<status>\w+)")


@lru_cache
def _compiled() -> tuple[tuple[re.Pattern[str], str], ...]:
    compiled = []
    for msgid in PATTERNS:
        parts = _PLACEHOLDER.split(msgid)
        regex = "".join(
            f"(?P<{part}>.+?)" if i % 2 else re.escape(part) for i, part in enumerate(parts)
        )
        compiled.append((re.compile(regex, re.DOTALL), msgid))
    return tuple(compiled)


def _said(text: str, gettext: Gettext) -> str:
    for regex, msgid in _compiled():
        found = regex.fullmatch(text)
        if found:
            return str(gettext(msgid)) % found.groupdict()
    return text


@dataclass(frozen=True)
class Shown:
    """An entry as the page shows it, in the reader's language."""

    at: datetime
    kind: str
    title: str
    detail: str | None
    url: str | None


_MONEY = re.compile(r"(?P<total>-?\d+(?:\.\d+)?) (?P<currency>[A-Z]{3})")


def _part(text: str, gettext: Gettext, fmt: Formatter) -> str:
    """One part of an entry's detail: an amount formatted, a known sentence translated."""
    money = _MONEY.fullmatch(text)
    if money:
        return str(fmt.money(Decimal(money["total"]), money["currency"]))
    return _said(text, gettext)


def shown(entry: TimelineEntry, gettext: Gettext, fmt: Formatter) -> Shown:
    """``entry`` in the reader's language: known sentences translated, money formatted."""
    title, detail = _said(entry.title, gettext), entry.detail
    order, money = _ORDER.fullmatch(entry.title), _ORDER_DETAIL.fullmatch(detail or "")
    if order and money:
        total = fmt.money(Decimal(money["total"]), money["currency"])
        title = gettext("Order #%(id)s for %(total)s") % {"id": order["id"], "total": total}
        detail = gettext(money["status"])
    elif detail:
        detail = " · ".join(_part(part, gettext, fmt) for part in detail.split(" · "))
    return Shown(entry.at, entry.kind, title, detail, entry.url)


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
