"""The operations page for administrators: request rate, error rate, latency percentiles
with a chart of the last hour, and the database's size, schema revision and last backup.

A thin handler over :func:`tenure.observability.operations.overview`, the function
``GET /api/v1/operations`` answers with. The page refreshes its figures every minute
through HTMX.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import Response

from tenure.core.routing import SessionRouter
from tenure.core.time import utcnow
from tenure.deps import SessionDep, SettingsDep
from tenure.observability import operations
from tenure.observability.schemas import Overview
from tenure.security.models import User
from tenure.security.permissions import OPERATIONS_READ
from tenure.web.i18n import Formatter
from tenure.web.session import page_require
from tenure.web.templating import gettext_for, is_htmx, render, request_locale

OperationsReader = Annotated[User, page_require(OPERATIONS_READ)]
Gettext = Callable[[str], str]

router = SessionRouter(include_in_schema=False)
REFRESH_SECONDS = 60


def chart_slots(overview: Overview) -> list[datetime]:
    """The sampling slots of the last hour, oldest first, so that a slot without a sample
    shows as a gap in the chart rather than being left out."""
    seconds = overview.sample_seconds
    if not seconds:
        return [point.at for point in overview.series]
    step = timedelta(seconds=seconds)
    last = operations.slot_of(overview.generated_at, seconds)
    count = max(1, int(operations.HOUR / step))
    return [last - step * n for n in range(count - 1, -1, -1)]


def chart(overview: Overview, fmt: Formatter, gettext: Gettext) -> dict[str, Any]:
    """Request rate and p95 latency per sampling interval over the last hour."""
    by_slot = {point.at: point for point in overview.series}
    slots = chart_slots(overview)
    rate = [by_slot[s].request_rate if s in by_slot else None for s in slots]
    p95 = [by_slot[s].p95_ms if s in by_slot else None for s in slots]
    return {
        "labels": [fmt.time(s) for s in slots],
        "series": [
            {"label": gettext("Requests per second"), "axis": "rate", "values": rate},
            {"label": gettext("p95 latency (ms)"), "axis": "ms", "values": p95},
        ],
    }


@router.get("/admin/operations")
def operations_page(
    request: Request, session: SessionDep, settings: SettingsDep, _user: OperationsReader
) -> Response:
    overview = operations.overview(session=session, settings=settings, now=utcnow())
    fmt = Formatter(request_locale(request))
    interval = timedelta(seconds=settings.operations_sample_seconds)
    last = overview.last_sample_at
    context = {
        "ops": overview,
        "stale": last is not None
        and overview.generated_at - last > interval * operations.STALE_AFTER_INTERVALS,
        "chart": chart(overview, fmt, gettext_for(request)),
        "refresh_seconds": REFRESH_SECONDS,
    }
    template = "admin/_operations.html" if is_htmx(request) else "admin/operations.html"
    return render(request, template, context, headers={"Cache-Control": "no-store"})
