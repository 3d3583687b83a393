"""The home dashboard: the figures a CRM user looks at first."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from fastapi import Request
from fastapi.responses import Response

from tenure.core.routing import SessionRouter
from tenure.core.time import utcnow
from tenure.customers import service as customers_service
from tenure.deps import SessionDep
from tenure.orders import service as orders_service
from tenure.security.permissions import CUSTOMERS_READ, ORDERS_READ, TICKETS_READ, has_permission
from tenure.service_desk import service as service_desk
from tenure.web.i18n import Formatter
from tenure.web.session import PageScope, WebUser
from tenure.web.templating import render, request_locale

router = SessionRouter(include_in_schema=False)
CHART_MONTHS = 6


def month_starts(now: datetime, count: int) -> list[datetime]:
    """The first instants of the last ``count`` months, oldest first, plus next month's."""
    year, month = now.year, now.month
    starts = []
    for _ in range(count + 1):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    starts.reverse()
    nxt = (now.year, now.month + 1) if now.month < 12 else (now.year + 1, 1)
    return [*starts[1:], datetime(nxt[0], nxt[1], 1, tzinfo=UTC)]


def _change(current: Decimal, previous: Decimal) -> Decimal | None:
    if previous == 0:
        return None
    return ((current - previous) / previous * 100).quantize(Decimal("0.1"))


@router.get("/")
def dashboard(request: Request, session: SessionDep, user: WebUser, scope: PageScope) -> Response:
    context: dict[str, object] = {}
    if has_permission(user.role, CUSTOMERS_READ):
        # The customers the user reaches (their own, their team's or all of them).
        context["customer_count"] = customers_service.count_active(session=session, scope=scope)
        context["my_customers"] = customers_service.recent(
            session=session, scope=scope, owner_id=user.id
        )
    if has_permission(user.role, ORDERS_READ):
        fmt = Formatter(request_locale(request))
        bounds = month_starts(utcnow(), CHART_MONTHS)
        months = [
            orders_service.revenue_between(session=session, start=a, end=b)
            for a, b in itertools.pairwise(bounds)
        ]
        # Show the currency that earned most this month (or last month, early in a month).
        latest = months[-1] or months[-2] or {"EUR": Decimal(0)}
        currency = max(latest, key=lambda c: latest[c])
        series = [m.get(currency, Decimal(0)) for m in months]
        recent = orders_service.recent(session=session, scope=scope, limit=8)
        context.update(
            open_orders=orders_service.open_count(session=session, scope=scope),
            currency=currency,
            this_month=series[-1],
            last_month=series[-2],
            change=_change(series[-1], series[-2]),
            chart={
                "labels": [fmt.month(b) for b in bounds[:-1]],
                "values": [float(v) for v in series],
                "currency": currency,
            },
            recent_orders=recent,
            customer_names=customers_service.names(
                session=session, customer_ids={o.customer_id for o in recent}, scope=scope
            ),
        )
    if has_permission(user.role, TICKETS_READ):
        context["open_tickets"] = service_desk.open_count(session=session, scope=scope)
        context["breached_tickets"] = service_desk.breached_count(session=session, scope=scope)
    return render(request, "dashboard.html", context)
