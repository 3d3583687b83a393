"""The service desk in the browser: the queue with bulk assignment, a ticket's page
(reply, note, status, priority, assignment, satisfaction link), the new-ticket form, the
service level policies, the figures with charts, and the customer's survey page (open to
anyone holding a signed link)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from tenure.core.errors import InvalidInput, NotFound, TenureError
from tenure.core.pagination import parse_sort
from tenure.core.routing import SessionRouter
from tenure.core.schemas import MAX_ID
from tenure.core.time import utcnow
from tenure.customers import service as customers_service
from tenure.deps import SessionDep, SettingsDep
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import (
    SERVICE_ADMIN,
    TICKETS_ASSIGN,
    TICKETS_READ,
    TICKETS_WRITE,
)
from tenure.service_desk import charts, service, sla
from tenure.service_desk.models import Ticket
from tenure.service_desk.schemas import (
    TRANSITIONS,
    Channel,
    MessageCreate,
    PriorityOverride,
    SatisfactionIn,
    SlaPolicyUpdate,
    TicketCreate,
    TicketStatus,
    TicketType,
    TicketUpdate,
)
from tenure.web.forms import FormDep, errors_of, form_dict, form_id, parse, path_id
from tenure.web.messages import N_, localize
from tenure.web.session import Csrf, PageScope, page_require
from tenure.web.templating import gettext_for, render

Reader = Annotated[User, page_require(TICKETS_READ)]
Writer = Annotated[User, page_require(TICKETS_WRITE)]
Assigner = Annotated[User, page_require(TICKETS_ASSIGN)]
Admin = Annotated[User, page_require(SERVICE_ADMIN)]

router = SessionRouter(include_in_schema=False)
PAGE_SIZE = 50
STATUS_CHOICES = ("active", *(s.value for s in TicketStatus))
# Stored values shown on the pages, translated where they are shown.
WORDS = (
    N_("consultation"),
    N_("complaint"),
    N_("feedback"),
    N_("email"),
    N_("phone"),
    N_("web"),
    N_("chat"),
    N_("new"),
    N_("open"),
    N_("pending"),
    N_("resolved"),
    N_("closed"),
    N_("created"),
    N_("status"),
    N_("assigned"),
    N_("priority"),
    N_("priority_override"),
)


TicketId = Annotated[int, Depends(path_id("ticket"))]


# --- the queue ------------------------------------------------------------------------


@router.get("/service-desk")
def queue(
    request: Request,
    session: SessionDep,
    user: Reader,
    scope: PageScope,
    mine: bool = False,
    team_id: int | None = None,
    unassigned: bool = False,
    breached: bool = False,
    type: str | None = None,
    status: str | None = "active",
    customer_id: int | None = None,
    cursor: str | None = None,
) -> Response:
    """The queue: by priority, then the next due time; filters as in the API."""
    return _queue(
        request,
        session,
        user,
        scope,
        service.TicketFilter(
            mine_of=user.id if mine else None,
            team_id=team_id,
            unassigned=unassigned,
            breached=breached,
            type=type,
            status=status,
            customer_id=customer_id,
        ),
        cursor=cursor,
    )


def _queue(
    request: Request,
    session: Session,
    user: User,
    scope: Any,
    asked: service.TicketFilter,
    *,
    cursor: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    mine, team_id, unassigned, breached = (
        asked.mine_of is not None,
        asked.team_id,
        asked.unassigned,
        asked.breached,
    )
    type = asked.type if asked.type in set(TicketType) else None
    status = asked.status if asked.status in STATUS_CHOICES else None
    customer_id = asked.customer_id
    team_id = team_id if team_id and team_id <= MAX_ID else None
    filters = service.TicketFilter(
        mine_of=user.id if mine else None,
        team_id=team_id,
        unassigned=unassigned,
        breached=breached,
        type=type,
        status=status,
        customer_id=customer_id if customer_id and customer_id <= MAX_ID else None,
    )
    page = service.list_tickets(
        session=session,
        filters=filters,
        scope=scope,
        sort=parse_sort(None, service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=cursor or None,
        limit=PAGE_SIZE,
    )
    kept: dict[str, Any] = {
        "mine": "true" if mine else "",
        "team_id": team_id or "",
        "unassigned": "true" if unassigned else "",
        "breached": "true" if breached else "",
        "type": type or "",
        "status": status or "",
        "customer_id": filters.customer_id or "",
    }
    kept = {k: v for k, v in kept.items() if v}
    next_url = (
        "/service-desk?" + urlencode({**kept, "cursor": page.next_cursor})
        if page.next_cursor
        else None
    )
    context = {
        "tickets": page.items,
        "breaches": {t.id: service.breaches(t) for t in page.items},
        "customer_names": customers_service.names(
            session=session, customer_ids={t.customer_id for t in page.items}, scope=scope
        ),
        "user_names": service.user_names(
            session=session, user_ids={t.assignee_id for t in page.items}
        ),
        "agents": service.agents(session=session),
        "teams": [team for team, _n in security_service.list_teams(session=session)],
        "filters": kept,
        "mine": mine,
        "team_id": team_id,
        "unassigned": unassigned,
        "breached": breached,
        "type": type or "",
        "status": status or "",
        "customer_id": filters.customer_id,
        "types": list(TicketType),
        "statuses": STATUS_CHOICES,
        "next_url": next_url,
        "notice": notice,
        "back": str(request.url.path) + ("?" + urlencode(kept) if kept else ""),
    }
    return render(request, "service_desk/queue.html", context, status_code=status_code)


def _back(form: FormData) -> str:
    target = str(form.get("back") or "/service-desk")
    if target.startswith("/service-desk") and "//" not in target and "\\" not in target:
        return target
    return "/service-desk"


@router.post("/service-desk/bulk-assign", dependencies=[Csrf])
def bulk_assign(
    request: Request, session: SessionDep, user: Assigner, scope: PageScope, form: FormDep
) -> Response:
    _ = gettext_for(request)
    ids = [i for v in form.getlist("ticket_ids") if (i := form_id(v)) is not None]
    raw = str(form.get("assignee_id") or "")
    assignee = user.id if raw == "me" else form_id(raw)
    back = _back(form)
    if not ids:
        notice = _("Select at least one ticket to assign.")
    elif raw and assignee is None:
        notice = _("Choose someone to assign the tickets to.")
    else:
        try:
            service.bulk_assign(
                session=session, ticket_ids=ids, assignee_id=assignee, scope=scope, actor_id=user.id
            )
        except TenureError as exc:
            notice = localize(exc.detail, _)
        else:
            return RedirectResponse(back, status_code=303)
    session.rollback()  # nothing of a refused assignment is kept
    return _queue(
        request,
        session,
        user,
        scope,
        service.TicketFilter(status="active"),
        notice=notice,
        status_code=422,
    )


# --- a ticket -------------------------------------------------------------------------


def _detail(
    request: Request,
    session: Session,
    ticket: Ticket,
    *,
    scope: Any,
    notice: str | None = None,
    survey_url: str | None = None,
    status_code: int = 200,
) -> Response:
    messages = service.messages_of(session=session, ticket=ticket)
    events = service.events_of(session=session, ticket=ticket)
    people = {m.author_id for m in messages} | {e.actor_id for e in events} | {ticket.assignee_id}
    for e in events:
        if e.kind == "assigned":
            people |= {form_id(e.from_value), form_id(e.to_value)}
    context = {
        "ticket": ticket,
        "reasons": service.reasons(ticket),
        "breach": service.breaches(ticket),
        "messages": messages,
        "events": events,
        "names": service.user_names(session=session, user_ids=people),
        "customer_name": customers_service.names(
            session=session, customer_ids={ticket.customer_id}, scope=scope
        ).get(ticket.customer_id),
        "next_statuses": [s for s in TicketStatus if s in TRANSITIONS[TicketStatus(ticket.status)]],
        "agents": service.agents(session=session),
        "priorities": ("P1", "P2", "P3", "P4"),
        "notice": notice,
        "survey_url": survey_url,
    }
    return render(request, "service_desk/detail.html", context, status_code=status_code)


@router.get("/service-desk/tickets/new")
def ticket_new(
    request: Request,
    session: SessionDep,
    _user: Writer,
    scope: PageScope,
    customer_id: int | None = None,
) -> Response:
    return _form_page(request, session, scope, {"customer_id": customer_id}, {})


def _form_page(
    request: Request,
    session: Session,
    scope: Any,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    customer_id = form_id(values.get("customer_id"))
    name = (
        customers_service.names(session=session, customer_ids={customer_id}, scope=scope).get(
            customer_id
        )
        if customer_id
        else None
    )
    context = {
        "values": values,
        "errors": errors,
        "customer_name": name,
        "types": list(TicketType),
        "channels": list(Channel),
    }
    return render(request, "service_desk/form.html", context, status_code=status_code)


@router.post("/service-desk/tickets/new", dependencies=[Csrf])
def ticket_create(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Writer,
    scope: PageScope,
    form: FormDep,
) -> Response:
    _ = gettext_for(request)
    values = form_dict(form)
    data_in = dict(values)
    for name in ("urgency", "impact", "complexity", "customer_id", "order_id"):
        if data_in.get(name) is not None:
            number = form_id(data_in[name])
            data_in[name] = number if number is not None else data_in[name]
    data, errors = parse(TicketCreate, data_in, _)
    if data is not None:
        try:
            ticket = service.create(
                session=session,
                data=data,
                scope=scope,
                actor_id=user.id,
                hours=sla.hours_of(settings),
            )
        except TenureError as exc:
            errors = errors_of(exc, _)
        else:
            return RedirectResponse(f"/service-desk/tickets/{ticket.id}", status_code=303)
    return _form_page(request, session, scope, values, errors, status_code=422)


@router.get("/service-desk/tickets/{ticket_id}")
def ticket_detail(
    request: Request, ticket_id: TicketId, session: SessionDep, _user: Reader, scope: PageScope
) -> Response:
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    return _detail(request, session, ticket, scope=scope)


def _refused(
    request: Request,
    session: Session,
    ticket: Ticket,
    scope: Any,
    exc: TenureError | ValidationError,
) -> Response:
    _ = gettext_for(request)
    if isinstance(exc, ValidationError):
        found = errors_of(exc, _)
        notice = "; ".join(f"{k}: {v}" for k, v in found.items())
        status_code = 422
    else:
        notice = localize(exc.detail, _)
        status_code = exc.status
    session.rollback()  # nothing of a refused change is kept
    fresh = service.get(session=session, ticket_id=ticket.id, scope=scope)
    return _detail(request, session, fresh, scope=scope, notice=notice, status_code=status_code)


@router.post("/service-desk/tickets/{ticket_id}/messages", dependencies=[Csrf])
def ticket_message(
    request: Request,
    ticket_id: TicketId,
    session: SessionDep,
    user: Writer,
    scope: PageScope,
    form: FormDep,
) -> Response:
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    try:
        data = MessageCreate(body=str(form.get("body") or ""), internal=form.get("internal") == "1")
        service.add_message(session=session, ticket=ticket, data=data, actor_id=user.id)
    except (TenureError, ValidationError) as exc:
        return _refused(request, session, ticket, scope, exc)
    return RedirectResponse(f"/service-desk/tickets/{ticket.id}", status_code=303)


@router.post("/service-desk/tickets/{ticket_id}/status", dependencies=[Csrf])
def ticket_status(
    request: Request,
    ticket_id: TicketId,
    session: SessionDep,
    settings: SettingsDep,
    user: Writer,
    scope: PageScope,
    form: FormDep,
) -> Response:
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    try:
        data = TicketUpdate(
            status=TicketStatus(str(form.get("status") or "")),
            reason=str(form.get("reason") or "").strip() or None,
        )
        service.update(
            session=session,
            ticket=ticket,
            data=data,
            scope=scope,
            actor_id=user.id,
            hours=sla.hours_of(settings),
        )
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            return _refused(request, session, ticket, scope, exc)
        refusal = InvalidInput("There is no such status; use one of the status buttons.")
        return _refused(request, session, ticket, scope, refusal)
    except TenureError as exc:
        return _refused(request, session, ticket, scope, exc)
    return RedirectResponse(f"/service-desk/tickets/{ticket.id}", status_code=303)


@router.post("/service-desk/tickets/{ticket_id}/priority", dependencies=[Csrf])
def ticket_priority(
    request: Request,
    ticket_id: TicketId,
    session: SessionDep,
    settings: SettingsDep,
    user: Writer,
    scope: PageScope,
    form: FormDep,
) -> Response:
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    try:
        data = PriorityOverride.model_validate(
            {"priority": form.get("priority") or None, "reason": str(form.get("reason") or "")}
        )
        service.override_priority(
            session=session,
            ticket=ticket,
            data=data,
            actor_id=user.id,
            hours=sla.hours_of(settings),
        )
    except (TenureError, ValidationError) as exc:
        return _refused(request, session, ticket, scope, exc)
    return RedirectResponse(f"/service-desk/tickets/{ticket.id}", status_code=303)


@router.post("/service-desk/tickets/{ticket_id}/assign", dependencies=[Csrf])
def ticket_assign(
    request: Request,
    ticket_id: TicketId,
    session: SessionDep,
    user: Assigner,
    scope: PageScope,
    form: FormDep,
) -> Response:
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    raw = str(form.get("assignee_id") or "")
    assignee = user.id if raw == "me" else form_id(raw)
    try:
        service.assign(session=session, ticket=ticket, assignee_id=assignee, actor_id=user.id)
    except TenureError as exc:
        return _refused(request, session, ticket, scope, exc)
    return RedirectResponse(f"/service-desk/tickets/{ticket.id}", status_code=303)


@router.post("/service-desk/tickets/{ticket_id}/survey-link", dependencies=[Csrf])
def ticket_survey_link(
    request: Request,
    ticket_id: TicketId,
    session: SessionDep,
    settings: SettingsDep,
    _user: Writer,
    scope: PageScope,
) -> Response:
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    try:
        token, _expires = service.survey_token(
            session=session, ticket=ticket, days=settings.satisfaction_link_days
        )
    except TenureError as exc:
        return _refused(request, session, ticket, scope, exc)
    url = str(request.base_url).rstrip("/") + f"/survey/{token}"
    return _detail(request, session, ticket, scope=scope, survey_url=url)


# --- service level policies -----------------------------------------------------------


@router.get("/service-desk/sla")
def sla_page(request: Request, session: SessionDep, _user: Admin) -> Response:
    context = {"policies": service.policies(session=session).values(), "errors": {}}
    return render(request, "service_desk/sla.html", context)


@router.post("/service-desk/sla/{priority}", dependencies=[Csrf])
def sla_update(
    request: Request, priority: str, session: SessionDep, _user: Admin, form: FormDep
) -> Response:
    _ = gettext_for(request)
    if priority not in sla.DEFAULTS:
        raise NotFound(f"There is no priority {priority}.")
    values = {
        "first_response_minutes": form_id(form.get("first_response_minutes")) or 0,
        "resolution_minutes": form_id(form.get("resolution_minutes")) or 0,
        "business_hours": form.get("business_hours") == "1",
    }
    data, errors = parse(SlaPolicyUpdate, values, _)
    if data is not None:
        service.update_policy(session=session, priority=priority, data=data)
        return RedirectResponse("/service-desk/sla", status_code=303)
    context = {"policies": service.policies(session=session).values(), "errors": {priority: errors}}
    return render(request, "service_desk/sla.html", context, status_code=422)


# --- figures --------------------------------------------------------------------------


def _window(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """Whole UTC days from ``start`` to ``end`` (dates, both included): by default the 90
    days up to today; a window backwards or longer than three years falls back to that."""

    def day(text: str | None) -> datetime | None:
        try:
            return datetime.combine(date.fromisoformat(text or ""), time(), UTC)
        except ValueError:
            return None

    today = datetime.combine(utcnow().date(), time(), UTC)
    b = (day(end) or today) + timedelta(days=1)
    a = day(start) or b - timedelta(days=90)
    if a >= b or b - a > timedelta(days=3 * 366):
        a = b - timedelta(days=90)
    return a, b


@router.get("/service-desk/figures")
def figures_page(
    request: Request,
    session: SessionDep,
    _user: Reader,
    scope: PageScope,
    period: str = "week",
) -> Response:
    """The figures of the tickets opened from ``from`` to ``to`` (dates; default: the
    last 90 days)."""
    period = period if period in ("week", "month") else "week"
    a, b = _window(request.query_params.get("from"), request.query_params.get("to"))
    found = service.figures(session=session, start=a, end=b, period=period, scope=scope)
    query = urlencode(
        {
            "from": a.date().isoformat(),
            "to": (b - timedelta(days=1)).date().isoformat(),
            "period": period,
        }
    )
    context = {
        "figures": found,
        "period": period,
        "query": query,
        "start": a,
        "end": b - timedelta(days=1),
    }
    return render(request, "service_desk/figures.html", context)


@router.get("/service-desk/charts/{desk_chart}.svg")
def chart_svg(
    request: Request,
    desk_chart: str,
    session: SessionDep,
    _user: Reader,
    scope: PageScope,
    period: str = "week",
) -> Response:
    _ = gettext_for(request)
    if desk_chart not in charts.CHARTS:
        raise NotFound(f"There is no service desk chart {desk_chart}.")
    period = period if period in ("week", "month") else "week"
    a, b = _window(request.query_params.get("from"), request.query_params.get("to"))
    found = service.figures(session=session, start=a, end=b, period=period, scope=scope)
    labels = {
        "tickets": _("Tickets"),
        "complaints": _("Complaints"),
        "first_response": _("First response, median (hours)"),
        "resolution": _("Resolution, median (hours)"),
        "compliance": _("Service level met (%)"),
    }
    body = charts.draw(desk_chart, found, labels)
    return Response(
        body, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"}
    )


# --- the customer's survey (public: the signed link is the permission) ----------------


@router.get("/survey/{token}")
def survey_page(request: Request, token: str, session: SessionDep) -> Response:
    try:
        ticket = service.ticket_of_token(session=session, token=token[:500])
    except TenureError as exc:
        return _survey_refused(request, exc)
    return render(
        request, "service_desk/survey.html", {"ticket": ticket, "token": token, "errors": {}}
    )


def _survey_refused(request: Request, exc: TenureError) -> Response:
    _ = gettext_for(request)
    context = {"ticket": None, "message": localize(exc.detail, _)}
    return render(request, "service_desk/survey.html", context, status_code=exc.status)


@router.post("/survey/{token}", dependencies=[Csrf])
def survey_submit(request: Request, token: str, session: SessionDep, form: FormDep) -> Response:
    _ = gettext_for(request)
    try:
        ticket = service.ticket_of_token(session=session, token=token[:500])
    except TenureError as exc:
        return _survey_refused(request, exc)
    data, errors = parse(
        SatisfactionIn,
        {"rating": form_id(form.get("rating")) or 0, "comment": form_dict(form).get("comment")},
        _,
    )
    if data is None:
        errors = {"rating": _("Choose a rating from 1 to 5.")} if "rating" in errors else errors
        context = {"ticket": ticket, "token": token, "errors": errors}
        return render(request, "service_desk/survey.html", context, status_code=422)
    try:
        service.record_satisfaction(session=session, ticket=ticket, data=data)
    except TenureError as exc:
        return _survey_refused(request, exc)
    return render(request, "service_desk/survey.html", {"ticket": None, "thanks": True})
