"""The service desk over HTTP: /api/v1/tickets, /api/v1/sla-policies and
/api/v1/service-desk/figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import Depends, Query, Response, status
from sqlalchemy.orm import Session

from tenure.core.concurrency import check_if_match, etag, tagged
from tenure.core.errors import InvalidInput
from tenure.core.pagination import Page, parse_sort, to_page
from tenure.core.routing import APIRouter
from tenure.core.schemas import Id, Instant
from tenure.core.time import utcnow
from tenure.deps import IfMatch, ListParamsDep, ScopeDep, SessionDep, SettingsDep, require
from tenure.security.permissions import (
    SERVICE_ADMIN,
    TICKETS_ASSIGN,
    TICKETS_READ,
    TICKETS_WRITE,
)
from tenure.security.service import Principal
from tenure.service_desk import service, sla
from tenure.service_desk.models import Ticket
from tenure.service_desk.schemas import (
    Assignment,
    BulkAssignment,
    Figures,
    MessageCreate,
    MessageRead,
    PriorityOverride,
    SatisfactionIn,
    SlaPolicyRead,
    SlaPolicyUpdate,
    SurveyLink,
    TicketCreate,
    TicketDetail,
    TicketRead,
    TicketType,
    TicketUpdate,
)

Reader = Annotated[Principal, Depends(require(TICKETS_READ))]
Writer = Annotated[Principal, Depends(require(TICKETS_WRITE))]
Assigner = Annotated[Principal, Depends(require(TICKETS_ASSIGN))]
Admin = Annotated[Principal, Depends(require(SERVICE_ADMIN))]

router = APIRouter(tags=["service desk"])


async def _hours(settings: SettingsDep) -> sla.BusinessHours:
    return sla.hours_of(settings)


HoursDep = Annotated[sla.BusinessHours, Depends(_hours)]


class StatusFilter(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"
    ACTIVE = "active"  # new, open or pending


def _detail(session: Session, ticket: Ticket, response: Response) -> TicketDetail:
    response.headers["ETag"] = etag(ticket.version)
    return service.detail(session=session, ticket=ticket)


@router.get("/api/v1/tickets", response_model=Page[TicketRead])
def list_tickets(
    session: SessionDep,
    settings: SettingsDep,
    params: ListParamsDep,
    scope: ScopeDep,
    actor: Reader,
    mine: Annotated[bool, Query(description="Only tickets assigned to you.")] = False,
    team_id: Id | None = None,
    unassigned: bool = False,
    breached: Annotated[
        bool, Query(description="Only tickets that missed a service level.")
    ] = False,
    type: TicketType | None = None,
    status: StatusFilter | None = None,
    customer_id: Id | None = None,
    trashed: bool = False,
) -> Page[TicketRead]:
    """The queue: tickets of the customers you reach, by priority, then the next due time
    (``sort=queue``, the default), filtered."""
    result = service.list_tickets(
        session=session,
        filters=service.TicketFilter(
            mine_of=actor.user_id if mine else None,
            team_id=team_id,
            unassigned=unassigned,
            breached=breached,
            type=type.value if type else None,
            status=status.value if status else None,
            customer_id=customer_id,
            trashed=trashed,
        ),
        scope=scope,
        sort=parse_sort(params.sort, service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=params.cursor,
        limit=params.limit,
        count_cap=settings.count_cap if params.count else None,
    )
    return to_page(result, service.read_model)


@router.post("/api/v1/tickets", response_model=TicketDetail, status_code=status.HTTP_201_CREATED)
def create_ticket(
    body: TicketCreate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    hours: HoursDep,
    actor: Writer,
) -> TicketDetail:
    """Open a ticket for a customer you reach (and optionally one of their orders); the
    priority is computed from urgency, impact and complexity, the due times from it."""
    ticket = service.create(
        session=session, data=body, scope=scope, actor_id=actor.user_id, hours=hours
    )
    response.headers["Location"] = f"/api/v1/tickets/{ticket.id}"
    return _detail(session, ticket, response)


@router.post("/api/v1/tickets/bulk-assign", response_model=list[TicketRead])
def bulk_assign(
    body: BulkAssignment, session: SessionDep, scope: ScopeDep, actor: Assigner
) -> list[TicketRead]:
    """Assign several tickets to one agent (or to no one): all, or none when one of them
    is not found."""
    tickets = service.bulk_assign(
        session=session,
        ticket_ids=body.ticket_ids,
        assignee_id=body.assignee_id,
        scope=scope,
        actor_id=actor.user_id,
    )
    return [service.read_model(t) for t in tickets]


@router.get("/api/v1/tickets/{ticket_id}", response_model=TicketDetail)
def get_ticket(
    ticket_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: Reader
) -> TicketDetail:
    """One ticket with its replies, internal notes and history."""
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    return _detail(session, ticket, response)


@router.patch("/api/v1/tickets/{ticket_id}", response_model=TicketDetail)
def update_ticket(
    ticket_id: Id,
    body: TicketUpdate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    hours: HoursDep,
    actor: Writer,
    if_match: IfMatch = None,
) -> TicketDetail:
    """Change the fields sent; ``status`` follows new → open → pending → resolved →
    closed, and resolved or closed tickets may be reopened (409 otherwise)."""
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    check_if_match(if_match, ticket.version)
    ticket = service.update(
        session=session, ticket=ticket, data=body, scope=scope, actor_id=actor.user_id, hours=hours
    )
    return _detail(session, ticket, response)


@router.delete("/api/v1/tickets/{ticket_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_ticket(
    ticket_id: Id, session: SessionDep, scope: ScopeDep, _actor: Writer, if_match: IfMatch = None
) -> Response:
    """Move a ticket to the trash."""
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    check_if_match(if_match, ticket.version)
    service.trash(session=session, ticket=ticket)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api/v1/tickets/{ticket_id}/restore", response_model=TicketDetail)
def restore_ticket(
    ticket_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: Writer
) -> TicketDetail:
    """Bring a ticket back from the trash."""
    ticket = service.restore(session=session, ticket_id=ticket_id, scope=scope)
    return _detail(session, ticket, response)


@router.post("/api/v1/tickets/{ticket_id}/priority", response_model=TicketDetail)
def override_priority(
    ticket_id: Id,
    body: PriorityOverride,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    hours: HoursDep,
    actor: Writer,
    if_match: IfMatch = None,
) -> TicketDetail:
    """Override the computed priority with a written reason (kept in the history);
    ``priority: null`` returns to the computed one. The due times follow."""
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    check_if_match(if_match, ticket.version)
    ticket = service.override_priority(
        session=session, ticket=ticket, data=body, actor_id=actor.user_id, hours=hours
    )
    return _detail(session, ticket, response)


@router.post("/api/v1/tickets/{ticket_id}/assign", response_model=TicketDetail)
def assign_ticket(
    ticket_id: Id,
    body: Assignment,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    actor: Assigner,
) -> TicketDetail:
    """Give the ticket to an agent, or to no one."""
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    ticket = service.assign(
        session=session, ticket=ticket, assignee_id=body.assignee_id, actor_id=actor.user_id
    )
    return _detail(session, ticket, response)


@router.post(
    "/api/v1/tickets/{ticket_id}/messages",
    response_model=MessageRead,
    status_code=status.HTTP_201_CREATED,
)
def add_message(
    ticket_id: Id, body: MessageCreate, session: SessionDep, scope: ScopeDep, actor: Writer
) -> MessageRead:
    """A public reply (``internal: false``) or an internal note. The first public reply
    answers the ticket (``first_responded_at``)."""
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    message = service.add_message(session=session, ticket=ticket, data=body, actor_id=actor.user_id)
    return MessageRead.model_validate(message)


@router.post("/api/v1/tickets/{ticket_id}/satisfaction", response_model=TicketDetail)
def record_satisfaction(
    ticket_id: Id,
    body: SatisfactionIn,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    _actor: Writer,
) -> TicketDetail:
    """Record the customer's rating (1-5) and comment of a resolved ticket (once; 409
    before it is resolved or when already recorded)."""
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    ticket = service.record_satisfaction(session=session, ticket=ticket, data=body)
    return _detail(session, ticket, response)


@router.post("/api/v1/tickets/{ticket_id}/survey-link", response_model=SurveyLink)
def survey_link(
    ticket_id: Id, session: SessionDep, settings: SettingsDep, scope: ScopeDep, _actor: Writer
) -> SurveyLink:
    """A signed link (``/survey/<token>``) the customer opens without an account to rate
    a resolved ticket; it expires and works once."""
    ticket = service.get(session=session, ticket_id=ticket_id, scope=scope)
    token, expires = service.survey_token(
        session=session, ticket=ticket, days=settings.satisfaction_link_days
    )
    return SurveyLink(url=f"/survey/{token}", expires_at=expires)


@router.get("/api/v1/sla-policies", response_model=list[SlaPolicyRead])
def list_policies(session: SessionDep, _actor: Reader) -> list[SlaPolicyRead]:
    """The service level of each priority: minutes to the first response and to the
    resolution, and whether they count business hours only."""
    return [
        SlaPolicyRead.model_validate(p, from_attributes=True)
        for p in service.policies(session=session).values()
    ]


@router.patch("/api/v1/sla-policies/{priority}", response_model=SlaPolicyRead)
def update_policy(
    priority: Literal["P1", "P2", "P3", "P4"],
    body: SlaPolicyUpdate,
    response: Response,
    session: SessionDep,
    _actor: Admin,
    if_match: IfMatch = None,
) -> SlaPolicyRead:
    """Change a priority's service level (service:admin). New due times apply to tickets
    opened afterwards and to tickets whose priority changes."""
    check_if_match(if_match, service.policies(session=session)[priority].version)
    policy = service.update_policy(session=session, priority=priority, data=body)
    return tagged(SlaPolicyRead, policy, response)


Period = Literal["week", "month"]


def figures_window(
    start: datetime | None, end: datetime | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """``[start, end)``, by default the last 90 days up to now."""
    now = now or utcnow()
    end = end or now
    start = start or end - timedelta(days=90)
    if start >= end:
        raise InvalidInput(
            "from must be before to.",
            errors=[{"loc": ["query", "from"], "msg": "must be before to"}],
        )
    if end - start > timedelta(days=3 * 366):
        raise InvalidInput(
            "Ask for at most three years at a time.",
            errors=[{"loc": ["query", "from"], "msg": "at most three years before to"}],
        )
    return start.astimezone(UTC), end.astimezone(UTC)


@router.get("/api/v1/service-desk/figures", response_model=Figures)
def figures(
    session: SessionDep,
    scope: ScopeDep,
    _actor: Reader,
    start: Annotated[Instant | None, Query(alias="from")] = None,
    end: Annotated[Instant | None, Query(alias="to")] = None,
    period: Period = "week",
) -> Figures:
    """Service figures over the tickets opened between ``from`` and ``to`` (default: the
    last 90 days) of the customers you reach: first response and resolution times (mean,
    median, p90, in minutes), CSAT (mean, median, standard deviation), service level
    compliance, complaints by product category, per agent and per week or month."""
    a, b = figures_window(start, end)
    return Figures.model_validate(
        service.figures(session=session, start=a, end=b, period=period, scope=scope)
    )
