"""The service desk: tickets, their priority and service levels, replies, assignment,
satisfaction, the queue and its figures.

Tickets belong to a customer and are in a caller's record scope when their customer is.
Every change writes the ticket's history (``ticket_event``) and an audit entry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from tenure.audit import recorder
from tenure.catalog.models import Product
from tenure.core.errors import (
    IllegalTransition,
    InvalidInput,
    NotFound,
    field_error,
)
from tenure.core.pagination import AnySelect, Slice, Sort, SortField, keyset_page
from tenure.core.time import as_utc, utcnow
from tenure.core.timeline import N_, Message, TimelineEntry
from tenure.customers import service as customers_service
from tenure.orders import service as orders_service
from tenure.orders.models import OrderLine
from tenure.security import fields
from tenure.security.models import Team, User
from tenure.security.permissions import TICKETS_WRITE, has_permission
from tenure.security.scope import RecordScope
from tenure.service_desk import priority as priorities
from tenure.service_desk import sla
from tenure.service_desk.errors import (
    BadSurveyLink,
    OverrideReasonRequired,
    SatisfactionNotOpen,
    TicketNotFound,
)
from tenure.service_desk.models import SlaPolicy, Ticket, TicketEvent, TicketMessage
from tenure.service_desk.schemas import (
    ACTIVE,
    DONE,
    TRANSITIONS,
    EventRead,
    MessageCreate,
    MessageRead,
    PriorityOverride,
    SatisfactionIn,
    SlaPolicyUpdate,
    TicketCreate,
    TicketDetail,
    TicketRead,
    TicketStatus,
    TicketUpdate,
)

SORT_FIELDS = (
    SortField("queue", Ticket.queue_rank, str),
    SortField("id", Ticket.id, int),
    SortField("created_at", Ticket.created_at, datetime),
    SortField("updated_at", Ticket.updated_at, datetime),
)
DEFAULT_SORT = "queue"
_ACTIVE = sorted(s.value for s in ACTIVE)


# --- service level policies -----------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    priority: str
    first_response_minutes: int
    resolution_minutes: int
    business_hours: bool
    version: int = 0


def policies(*, session: Session) -> dict[str, Policy]:
    """The service level of every priority: as stored, else the built-in default."""
    stored = {p.priority: p for p in session.scalars(select(SlaPolicy))}
    found = {}
    for name, (first, resolution) in sla.DEFAULTS.items():
        row = stored.get(name)
        found[name] = (
            Policy(name, first, resolution, False)
            if row is None
            else Policy(
                name,
                row.first_response_minutes,
                row.resolution_minutes,
                row.business_hours,
                row.version,
            )
        )
    return found


def update_policy(*, session: Session, priority: str, data: SlaPolicyUpdate) -> Policy:
    """Change a priority's service level; open tickets keep the due times they were given
    until their priority changes."""
    if priority not in sla.DEFAULTS:
        raise NotFound(f"There is no priority {priority!r}; use one of P1, P2, P3, P4.")
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise field_error(name, f"{name} cannot be null.")
    row = session.get(SlaPolicy, priority)
    if row is None:
        first, resolution = sla.DEFAULTS[priority]
        row = SlaPolicy(
            priority=priority,
            first_response_minutes=first,
            resolution_minutes=resolution,
            business_hours=False,
        )
        session.add(row)
        session.flush()
    before = {name: getattr(row, name) for name in changes}
    for name, value in changes.items():
        setattr(row, name, value)
    session.flush()
    recorder.add(
        session,
        action="sla_policy.updated",
        entity_type="sla_policy",
        entity_id=priority,
        changes={
            n: {"old": before[n], "new": changes[n]} for n in changes if before[n] != changes[n]
        },
    )
    return policies(session=session)[priority]


# --- reading tickets ------------------------------------------------------------------


def get(
    *, session: Session, ticket_id: int, scope: RecordScope, include_trashed: bool = False
) -> Ticket:
    """A ticket by id; ``TicketNotFound`` when missing, in the trash or of a customer out
    of ``scope``."""
    ticket = session.get(Ticket, ticket_id)
    if (
        ticket is None
        or (ticket.deleted_at is not None and not include_trashed)
        or not customers_service.reaches(
            session=session, customer_id=ticket.customer_id, scope=scope
        )
    ):
        raise TicketNotFound(f"There is no ticket {ticket_id}.")
    return ticket


@dataclass(frozen=True)
class Breaches:
    first_response: bool
    resolution: bool

    @property
    def any(self) -> bool:
        return self.first_response or self.resolution


def breaches(ticket: Ticket, now: datetime | None = None) -> Breaches:
    """Whether the ticket missed its service levels: answered or resolved after they were
    due, or still waiting (while being worked on) past them."""
    now = now or utcnow()
    active = ticket.status in _ACTIVE

    def missed(done: datetime | None, due: datetime | None) -> bool:
        if due is None:
            return False
        if done is not None:
            return as_utc(done) > as_utc(due)
        return active and now > as_utc(due)

    responded = ticket.first_responded_at or ticket.resolved_at
    return Breaches(
        missed(responded, ticket.first_response_due_at),
        missed(ticket.resolved_at, ticket.resolution_due_at),
    )


def breached_condition(now: datetime) -> ColumnElement[bool]:
    """The SQL of ``breaches(...).any``, for lists and counts."""
    active = Ticket.status.in_(_ACTIVE)
    responded = func.coalesce(Ticket.first_responded_at, Ticket.resolved_at)
    return or_(
        responded > Ticket.first_response_due_at,
        and_(responded.is_(None), active, Ticket.first_response_due_at < now),
        Ticket.resolved_at > Ticket.resolution_due_at,
        and_(Ticket.resolved_at.is_(None), active, Ticket.resolution_due_at < now),
    )


def reasons(ticket: Ticket) -> list[str]:
    """Why the ticket has its priority: the formula's reasons, and an override's."""
    found = priorities.assess(
        urgency=ticket.urgency, impact=ticket.impact, complexity=ticket.complexity
    ).reasons
    if ticket.priority != ticket.computed_priority:
        found.append(
            f"overridden to {ticket.priority}: {ticket.priority_override_reason or ''}".rstrip()
        )
    return found


def read_model(ticket: Ticket) -> TicketRead:
    """A ticket as the API shows it, with its priority's reasons and breach flags."""
    found = breaches(ticket)
    return TicketRead.model_validate(
        {
            **{k: getattr(ticket, k) for k in TicketRead.model_fields if hasattr(ticket, k)},
            "priority_reasons": reasons(ticket),
            "first_response_breached": found.first_response,
            "resolution_breached": found.resolution,
        }
    )


def detail(*, session: Session, ticket: Ticket) -> TicketDetail:
    """A ticket with its replies, notes and history."""
    return TicketDetail(
        **read_model(ticket).model_dump(),
        messages=[
            MessageRead.model_validate(m) for m in messages_of(session=session, ticket=ticket)
        ],
        events=[EventRead.model_validate(e) for e in events_of(session=session, ticket=ticket)],
    )


def of_customer(*, session: Session, customer_id: int) -> list[TicketDetail]:
    """Every ticket of a customer with its messages and history, the trash included,
    oldest first (a privacy export)."""
    stmt = select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id)
    return [detail(session=session, ticket=t) for t in session.scalars(stmt)]


def messages_of(*, session: Session, ticket: Ticket) -> list[TicketMessage]:
    stmt = select(TicketMessage).where(TicketMessage.ticket_id == ticket.id)
    return list(session.scalars(stmt.order_by(TicketMessage.id)))


def events_of(*, session: Session, ticket: Ticket) -> list[TicketEvent]:
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    return list(session.scalars(stmt.order_by(TicketEvent.id)))


# --- changing tickets -----------------------------------------------------------------


def _event(
    session: Session,
    ticket: Ticket,
    kind: str,
    actor_id: int | None,
    old: object = None,
    new: object = None,
    reason: str | None = None,
) -> None:
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            actor_id=actor_id,
            kind=kind,
            from_value=None if old is None else str(old)[:40],
            to_value=None if new is None else str(new)[:40],
            reason=reason,
        )
    )


def _audit(
    session: Session,
    ticket: Ticket,
    action: str,
    changes: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    recorder.add(
        session,
        action=f"ticket.{action}",
        entity_type="ticket",
        entity_id=str(ticket.id),
        changes=changes,
        details=details,
    )


def _refresh_sla(session: Session, ticket: Ticket, hours: sla.BusinessHours) -> None:
    """Due times from the opening under the priority's policy, and the queue position."""
    policy = policies(session=session)[ticket.priority]
    opened = as_utc(ticket.created_at)
    ticket.first_response_due_at = sla.due(
        opened, policy.first_response_minutes, business=policy.business_hours, hours=hours
    )
    ticket.resolution_due_at = sla.due(
        opened, policy.resolution_minutes, business=policy.business_hours, hours=hours
    )
    rank(ticket)


def rank(ticket: Ticket) -> None:
    """Set the ticket's place in the queue from its priority and next due time."""
    due: datetime | None = None
    if ticket.status in _ACTIVE:
        due = (
            ticket.first_response_due_at
            if ticket.first_responded_at is None
            else ticket.resolution_due_at
        )
    stamp = as_utc(due).strftime("%Y-%m-%dT%H:%M:%S") if due is not None else "~"
    ticket.queue_rank = f"{ticket.priority} {stamp}"


def _check_customer(session: Session, customer_id: int, scope: RecordScope) -> None:
    if not customers_service.exists_active(session=session, customer_id=customer_id, scope=scope):
        raise field_error("customer_id", f"There is no customer {customer_id}.")


def _check_order(session: Session, order_id: int, customer_id: int, scope: RecordScope) -> None:
    try:
        order = orders_service.get(session=session, order_id=order_id, scope=scope)
    except NotFound:
        raise field_error("order_id", f"There is no order {order_id}.") from None
    if order.customer_id != customer_id:
        raise field_error(
            "order_id", f"Order {order_id} is not an order of customer {customer_id}."
        )


def _check_assignee(session: Session, assignee_id: int, field: str = "assignee_id") -> User:
    user = session.get(User, assignee_id)
    if user is None or not user.is_active:
        raise field_error(field, f"There is no active user {assignee_id}.")
    if not has_permission(user.role, TICKETS_WRITE):
        raise field_error(field, f"{user.name} ({user.role}) cannot work on tickets.")
    return user


def _check_team(session: Session, team_id: int) -> None:
    if session.get(Team, team_id) is None:
        raise field_error("team_id", f"There is no team {team_id}.")


def create(
    *,
    session: Session,
    data: TicketCreate,
    scope: RecordScope,
    actor_id: int | None,
    hours: sla.BusinessHours,
) -> Ticket:
    """A new ticket for a customer in ``scope`` (and optionally one of their orders); its
    priority is computed and its service levels set."""
    _check_customer(session, data.customer_id, scope)
    if data.order_id is not None:
        _check_order(session, data.order_id, data.customer_id, scope)
    if data.assignee_id is not None:
        _check_assignee(session, data.assignee_id)
    if data.team_id is not None:
        _check_team(session, data.team_id)
    opened = data.opened_at or utcnow()
    if opened > utcnow() + timedelta(minutes=5):
        raise field_error("opened_at", "A ticket cannot be opened in the future.")
    assessed = priorities.assess(
        urgency=data.urgency, impact=data.impact, complexity=data.complexity
    )
    ticket = Ticket(
        customer_id=data.customer_id,
        order_id=data.order_id,
        type=data.type.value,
        channel=data.channel.value,
        subject=data.subject,
        description=data.description,
        status=TicketStatus.NEW.value,
        urgency=data.urgency,
        impact=data.impact,
        complexity=data.complexity,
        computed_priority=assessed.priority,
        priority=assessed.priority,
        assignee_id=data.assignee_id,
        team_id=data.team_id,
        created_at=opened,
        updated_at=opened,
    )
    _refresh_sla(session, ticket, hours)
    session.add(ticket)
    session.flush()
    _event(session, ticket, "created", actor_id, None, TicketStatus.NEW.value)
    if data.assignee_id is not None:
        _event(session, ticket, "assigned", actor_id, None, data.assignee_id)
    _audit(
        session,
        ticket,
        "created",
        details={
            "customer_id": ticket.customer_id,
            "order_id": ticket.order_id,
            "type": ticket.type,
            "channel": ticket.channel,
            "priority": ticket.priority,
            "assignee_id": ticket.assignee_id,
        },
    )
    session.flush()
    return ticket


def _set_status(
    session: Session,
    ticket: Ticket,
    target: TicketStatus,
    actor_id: int | None,
    reason: str | None,
    now: datetime,
) -> None:
    current = TicketStatus(ticket.status)
    if target == current:
        return
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current]))
        raise IllegalTransition(
            f"A ticket that is {current} cannot become {target}; allowed: {allowed}."
        )
    if target == TicketStatus.RESOLVED:
        ticket.resolved_at = now
    elif target == TicketStatus.CLOSED:
        ticket.closed_at = now
    elif current in DONE:  # reopened: it is worked on again, and will be resolved again
        ticket.resolved_at = None
        ticket.closed_at = None
    ticket.status = target.value
    _event(session, ticket, "status", actor_id, current.value, target.value, reason)
    _audit(
        session,
        ticket,
        "status_changed",
        changes={"status": {"old": current.value, "new": target.value}},
        details={"reason": reason} if reason else None,
    )


def update(
    *,
    session: Session,
    ticket: Ticket,
    data: TicketUpdate,
    scope: RecordScope,
    actor_id: int | None,
    hours: sla.BusinessHours,
) -> Ticket:
    """Change the fields sent: the status by the allowed transitions, the ratings (the
    computed priority follows, and with it the due times unless overridden)."""
    changes = data.model_dump(exclude_unset=True)
    changes.pop("reason", None)
    for name in ("type", "channel", "subject", "description", "status"):
        if name in changes and changes[name] is None:
            raise field_error(name, f"{name} cannot be null.")
    for name in ("urgency", "impact", "complexity"):
        if name in changes and changes[name] is None:
            raise field_error(name, f"{name} must be between 1 and 4.")
    if changes.get("order_id") is not None:
        _check_order(session, changes["order_id"], ticket.customer_id, scope)
    if changes.get("team_id") is not None:
        _check_team(session, changes["team_id"])
    now = utcnow()
    if data.status is not None:
        _set_status(session, ticket, data.status, actor_id, data.reason, now)
    plain = ("type", "channel", "subject", "description", "order_id", "team_id")
    before = {n: getattr(ticket, n) for n in plain if n in changes}
    for name in before:
        value = changes[name]
        setattr(ticket, name, value.value if hasattr(value, "value") else value)
    ratings = {n: changes[n] for n in ("urgency", "impact", "complexity") if n in changes}
    if ratings:
        for name, value in ratings.items():
            before[name] = getattr(ticket, name)
            setattr(ticket, name, value)
        assessed = priorities.assess(
            urgency=ticket.urgency, impact=ticket.impact, complexity=ticket.complexity
        )
        overridden = ticket.priority != ticket.computed_priority
        if assessed.priority != ticket.computed_priority:
            before["computed_priority"] = ticket.computed_priority
            ticket.computed_priority = assessed.priority
            if not overridden:
                _event(session, ticket, "priority", actor_id, ticket.priority, assessed.priority)
                before["priority"] = ticket.priority
                ticket.priority = assessed.priority
                _refresh_sla(session, ticket, hours)
    diff = {
        n: _masked(n, {"old": old, "new": getattr(ticket, n)})
        for n, old in before.items()
        if old != getattr(ticket, n)
    }
    if diff:
        _audit(session, ticket, "updated", changes=diff)
    rank(ticket)
    ticket.updated_at = now
    session.flush()
    return ticket


# What customers write and agents answer: personal data, never copied into the audit log.
_FREE_TEXT = frozenset({"subject", "description"})


def _masked(name: str, pair: dict[str, Any]) -> dict[str, Any]:
    if name in _FREE_TEXT:
        return {side: None if value is None else recorder.MASK for side, value in pair.items()}
    return pair


def override_priority(
    *,
    session: Session,
    ticket: Ticket,
    data: PriorityOverride,
    actor_id: int | None,
    hours: sla.BusinessHours,
) -> Ticket:
    """Set the priority by hand (or back to the computed one, with ``priority`` null), with
    a written reason; the due times follow the new priority."""
    reason = data.reason.strip()
    if not reason:
        raise OverrideReasonRequired(
            "Say why the priority is overridden.",
            errors=[{"loc": ["body", "reason"], "msg": "a reason is required"}],
        )
    target = data.priority or ticket.computed_priority
    old = ticket.priority
    ticket.priority = target
    ticket.priority_override_reason = reason if target != ticket.computed_priority else None
    _event(session, ticket, "priority_override", actor_id, old, target, reason)
    _audit(
        session,
        ticket,
        "priority_overridden",
        changes={"priority": {"old": old, "new": target}},
        details={"reason": reason, "computed_priority": ticket.computed_priority},
    )
    _refresh_sla(session, ticket, hours)
    ticket.updated_at = utcnow()
    session.flush()
    return ticket


def assign(
    *, session: Session, ticket: Ticket, assignee_id: int | None, actor_id: int | None
) -> Ticket:
    """Give the ticket to an agent (someone who may work on tickets), or to no one."""
    if assignee_id is not None:
        _check_assignee(session, assignee_id)
    if assignee_id == ticket.assignee_id:
        return ticket
    old = ticket.assignee_id
    ticket.assignee_id = assignee_id
    ticket.updated_at = utcnow()
    _event(session, ticket, "assigned", actor_id, old, assignee_id)
    _audit(session, ticket, "assigned", changes={"assignee_id": {"old": old, "new": assignee_id}})
    session.flush()
    return ticket


def bulk_assign(
    *,
    session: Session,
    ticket_ids: Sequence[int],
    assignee_id: int | None,
    scope: RecordScope,
    actor_id: int | None,
) -> list[Ticket]:
    """Assign several tickets at once: all of them, or (one missing) none."""
    if assignee_id is not None:
        _check_assignee(session, assignee_id)
    tickets = []
    missing = []
    for ticket_id in dict.fromkeys(ticket_ids):
        try:
            tickets.append(get(session=session, ticket_id=ticket_id, scope=scope))
        except TicketNotFound:
            missing.append(ticket_id)
    if missing:
        listed = ", ".join(str(i) for i in missing)
        raise InvalidInput(
            f"There is no ticket {listed}; nothing was assigned.",
            errors=[{"loc": ["body", "ticket_ids"], "msg": f"no ticket {listed}"}],
        )
    for ticket in tickets:
        assign(session=session, ticket=ticket, assignee_id=assignee_id, actor_id=actor_id)
    return tickets


def add_message(
    *, session: Session, ticket: Ticket, data: MessageCreate, actor_id: int | None
) -> TicketMessage:
    """A public reply or an internal note. An agent's first public reply answers the
    ticket (``first_responded_at``) and opens a new one."""
    now = utcnow()
    message = TicketMessage(
        ticket_id=ticket.id,
        author_id=actor_id,
        internal=data.internal,
        body=data.body,
        created_at=now,
    )
    session.add(message)
    if not data.internal and ticket.first_responded_at is None:
        ticket.first_responded_at = now
    session.flush()
    _audit(
        session,
        ticket,
        "replied",
        details={"message_id": message.id, "internal": data.internal, "length": len(data.body)},
    )
    if not data.internal and ticket.status == TicketStatus.NEW:
        _set_status(session, ticket, TicketStatus.OPEN, actor_id, None, now)
    ticket.updated_at = now
    rank(ticket)
    session.flush()
    return message


def trash(*, session: Session, ticket: Ticket) -> Ticket:
    """Move a ticket to the trash."""
    ticket.deleted_at = utcnow()
    _audit(
        session, ticket, "updated", changes={"deleted_at": {"old": None, "new": ticket.deleted_at}}
    )
    session.flush()
    return ticket


def restore(*, session: Session, ticket_id: int, scope: RecordScope) -> Ticket:
    """Bring a ticket back from the trash."""
    ticket = get(session=session, ticket_id=ticket_id, scope=scope, include_trashed=True)
    if ticket.deleted_at is not None:
        old = ticket.deleted_at
        ticket.deleted_at = None
        _audit(session, ticket, "updated", changes={"deleted_at": {"old": old, "new": None}})
        session.flush()
    return ticket


ERASED = "[erased]"


def clear_personal(*, session: Session, customer_id: int) -> int:
    """Remove what a customer's tickets say (subject, description, replies, notes,
    satisfaction comment, reasons in the history) for good, as a privacy erasure does;
    types, statuses, times and ratings stay for the figures. Returns how many tickets."""
    tickets = list(session.scalars(select(Ticket).where(Ticket.customer_id == customer_id)))
    for ticket in tickets:
        ticket.subject = ERASED
        ticket.description = ERASED
        ticket.satisfaction_comment = None
        ticket.priority_override_reason = None
        _audit(session, ticket, "erased")
    ids = [t.id for t in tickets]
    if ids:
        for message in session.scalars(
            select(TicketMessage).where(TicketMessage.ticket_id.in_(ids))
        ):
            message.body = ERASED
        for event in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(ids))):
            event.reason = None
    session.flush()
    return len(tickets)


# --- satisfaction ---------------------------------------------------------------------


def record_satisfaction(*, session: Session, ticket: Ticket, data: SatisfactionIn) -> Ticket:
    """The customer's rating (1-5) and comment of a resolved (or closed) ticket, once."""
    if ticket.status not in {s.value for s in DONE}:
        raise SatisfactionNotOpen(
            f"Ticket {ticket.id} is {ticket.status}; satisfaction is asked once it is resolved."
        )
    if ticket.satisfaction_rating is not None:
        raise SatisfactionNotOpen(f"Satisfaction with ticket {ticket.id} is already recorded.")
    ticket.satisfaction_rating = data.rating
    ticket.satisfaction_comment = data.comment or None
    ticket.satisfaction_at = utcnow()
    _audit(session, ticket, "satisfaction_recorded", details={"rating": data.rating})
    session.flush()
    return ticket


_LINK_LABEL = b"tenure service desk satisfaction link v1"
# Survey tokens look like Tenure's other credentials (``tns_...``), so logs redact them.
TOKEN_PREFIX = "tns_"
_SIGNATURE_CHARS = 43  # HMAC-SHA256 in unpadded base64url


def _link_key(session: Session) -> bytes:
    """A key for survey links, derived from the keyring's (never rotated) index key, so
    links stay valid across key rotations and no other secret needs configuring."""
    index_key = fields.of(session).keyring.current().index_key
    return hmac.new(index_key, _LINK_LABEL, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def survey_token(*, session: Session, ticket: Ticket, days: int) -> tuple[str, datetime]:
    """A signed link token for the customer to rate a resolved ticket without an account;
    it expires after ``days`` and works once."""
    if ticket.status not in {s.value for s in DONE} or ticket.resolved_at is None:
        raise SatisfactionNotOpen(
            f"Ticket {ticket.id} is {ticket.status}; satisfaction is asked once it is resolved."
        )
    expires = utcnow().replace(microsecond=0) + timedelta(days=days)
    payload = _b64(orjson.dumps([ticket.id, int(expires.timestamp())]))
    signature = hmac.new(_link_key(session), payload.encode("ascii"), hashlib.sha256).digest()
    return f"{TOKEN_PREFIX}{payload}{_b64(signature)}", expires


def ticket_of_token(*, session: Session, token: str) -> Ticket:
    """The ticket a survey token names; ``BadSurveyLink`` when the token was not signed
    here, has expired or was used, or the ticket is not resolved."""
    body = token.removeprefix(TOKEN_PREFIX)
    payload, signature = body[:-_SIGNATURE_CHARS], body[-_SIGNATURE_CHARS:]
    ticket_id: object = None
    expires: object = None
    valid = token.startswith(TOKEN_PREFIX) and len(body) > _SIGNATURE_CHARS
    try:
        if valid:
            expected = hmac.new(
                _link_key(session), payload.encode("ascii"), hashlib.sha256
            ).digest()
            valid = hmac.compare_digest(expected, _unb64(signature))
        if valid:
            ticket_id, expires = orjson.loads(_unb64(payload))
    except (ValueError, UnicodeEncodeError, TypeError):
        valid = False
    if not valid or not isinstance(ticket_id, int) or not isinstance(expires, int):
        raise BadSurveyLink("This link is not one we sent. Use the link from your email.")
    if utcnow().timestamp() > expires:
        raise BadSurveyLink("This link has expired.")
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.deleted_at is not None:
        raise BadSurveyLink("This link is no longer valid.")
    if ticket.satisfaction_rating is not None:
        raise BadSurveyLink("Thank you: your rating of this request is already recorded.")
    if ticket.status not in {s.value for s in DONE}:
        raise BadSurveyLink("This request is open again; you can rate it once it is resolved.")
    return ticket


# --- the queue ------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFilter:
    mine_of: int | None = None  # tickets assigned to this user
    team_id: int | None = None
    unassigned: bool = False
    breached: bool = False
    type: str | None = None
    status: str | None = None  # a status, or "active" for new, open and pending
    customer_id: int | None = None
    trashed: bool = False


def _scoped(stmt: AnySelect, scope: RecordScope) -> AnySelect:
    customers = customers_service.in_scope(scope)
    return stmt if customers is None else stmt.where(Ticket.customer_id.in_(customers))


def _filtered(stmt: AnySelect, f: TicketFilter, scope: RecordScope) -> AnySelect:
    stmt = _scoped(stmt, scope).where(
        Ticket.deleted_at.is_not(None) if f.trashed else Ticket.deleted_at.is_(None)
    )
    if f.mine_of is not None:
        stmt = stmt.where(Ticket.assignee_id == f.mine_of)
    if f.team_id is not None:
        stmt = stmt.where(Ticket.team_id == f.team_id)
    if f.unassigned:
        stmt = stmt.where(Ticket.assignee_id.is_(None))
    if f.breached:
        stmt = stmt.where(breached_condition(utcnow()))
    if f.type:
        stmt = stmt.where(Ticket.type == f.type)
    if f.status == "active":
        stmt = stmt.where(Ticket.status.in_(_ACTIVE))
    elif f.status:
        stmt = stmt.where(Ticket.status == f.status)
    if f.customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == f.customer_id)
    return stmt


def list_tickets(
    *,
    session: Session,
    filters: TicketFilter,
    scope: RecordScope,
    sort: Sort,
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[Ticket]:
    """A page of the queue: by default by priority, then the next due time."""
    return keyset_page(
        session,
        _filtered(select(Ticket), filters, scope),
        sort=sort,
        id_column=Ticket.id,
        cursor=cursor,
        limit=limit,
        count_cap=count_cap,
    )


def open_count(*, session: Session, scope: RecordScope) -> int:
    """Tickets being worked on (new, open, pending) of the customers in ``scope``."""
    stmt = _filtered(select(func.count(Ticket.id)), TicketFilter(status="active"), scope)
    return session.scalar(stmt) or 0


def breached_count(*, session: Session, scope: RecordScope) -> int:
    """Tickets being worked on that are past a due time or were answered late."""
    stmt = _filtered(
        select(func.count(Ticket.id)), TicketFilter(status="active", breached=True), scope
    )
    return session.scalar(stmt) or 0


def user_names(*, session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {int(user_id): str(name) for user_id, name in rows}


def agents(*, session: Session) -> list[User]:
    """Active users who may work on tickets, by name."""
    users = session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.name))
    return [u for u in users if has_permission(u.role, TICKETS_WRITE)]


# --- figures --------------------------------------------------------------------------


def _histogram_summary(histogram: dict[int, int]) -> dict[str, Any]:
    """Count, mean, median and (population) standard deviation of ratings counted by
    value."""
    count = sum(histogram.values())
    if count == 0:
        return {"count": 0, "mean": None, "median": None, "std": None}
    total = sum(v * n for v, n in histogram.items())
    mean = total / count
    variance = sum(n * (v - mean) ** 2 for v, n in histogram.items()) / count
    ordered = sorted(histogram.items())

    def nth(k: int) -> int:
        seen = 0
        for value, n in ordered:
            seen += n
            if seen > k:
                return value
        return ordered[-1][0]  # pragma: no cover

    median = (nth((count - 1) // 2) + nth(count // 2)) / 2
    return {
        "count": count,
        "mean": round(mean, 4),
        "median": median,
        "std": round(variance**0.5, 4),
    }


def satisfaction_summary(
    *, session: Session, customer_ids: Iterable[int] | None = None
) -> dict[str, Any]:
    """CSAT over the tickets rated (of ``customer_ids`` when given): count, mean, median
    and population standard deviation, from counts per rating taken in SQL."""
    stmt = (
        select(Ticket.satisfaction_rating, func.count())
        .where(Ticket.satisfaction_rating.is_not(None), Ticket.deleted_at.is_(None))
        .group_by(Ticket.satisfaction_rating)
    )
    if customer_ids is not None:
        stmt = stmt.where(Ticket.customer_id.in_(sorted(set(customer_ids))))
    return _histogram_summary({int(v or 0): int(n) for v, n in session.execute(stmt)})


def ratings(*, session: Session, until: datetime) -> tuple[list[int], list[int]]:
    """Every satisfaction rating given up to ``until``: customer ids and ratings, in
    parallel, by customer id (for the analytics run)."""
    stmt = (
        select(Ticket.customer_id, Ticket.satisfaction_rating)
        .where(
            Ticket.satisfaction_rating.is_not(None),
            Ticket.satisfaction_at <= until,
            Ticket.deleted_at.is_(None),
        )
        .order_by(Ticket.customer_id, Ticket.id)
    )
    rows = session.execute(stmt).all()
    return [int(c) for c, _ in rows], [int(r or 0) for _, r in rows]


def _distribution(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    ordered = sorted(values)
    # p90 by the nearest-rank method: the smallest value at or above 90% of them.
    rank = max(1, -(-9 * len(ordered) // 10))
    return {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered), 2),
        "median": round(statistics.median(ordered), 2),
        "p90": round(ordered[rank - 1], 2),
    }


def _minutes(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    return (as_utc(end) - as_utc(start)).total_seconds() / 60


def period_key(moment: datetime, period: str) -> str:
    """``2026-W48`` (ISO week) or ``2026-11`` (month) of a UTC instant."""
    moment = as_utc(moment)
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{moment.year}-{moment.month:02d}"


def _group(key: str, rows: list[Any], now: datetime) -> dict[str, Any]:
    first = [m for r in rows if (m := _minutes(r.created_at, r.first_responded_at)) is not None]
    resolved = [m for r in rows if (m := _minutes(r.created_at, r.resolved_at)) is not None]
    ratings = [r.satisfaction_rating for r in rows if r.satisfaction_rating is not None]
    judged = [r for r in rows if r.status not in _ACTIVE or r.breached_now]
    met = [r for r in judged if not r.breached_now]
    return {
        "key": key,
        "tickets": len(rows),
        "complaints": sum(1 for r in rows if r.type == "complaint"),
        "first_response_minutes": _distribution(first),
        "resolution_minutes": _distribution(resolved),
        "csat_mean": round(statistics.fmean(ratings), 4) if ratings else None,
        "sla_compliance": round(len(met) / len(judged), 4) if judged else None,
    }


@dataclass
class _Row:
    id: int
    type: str
    status: str
    assignee_id: int | None
    created_at: datetime
    first_responded_at: datetime | None
    resolved_at: datetime | None
    satisfaction_rating: int | None
    breached_now: bool


def figures(
    *, session: Session, start: datetime, end: datetime, period: str, scope: RecordScope
) -> dict[str, Any]:
    """Service figures over the tickets opened in ``[start, end)`` of the customers in
    ``scope``: response and resolution times (mean, median, p90, in minutes), CSAT,
    service level compliance (the share of finished or breached tickets that met both
    service levels), complaints by product category (through the linked order's lines),
    per agent and per week or month."""
    now = utcnow()
    stmt = _filtered(
        select(Ticket, breached_condition(now).label("breached")), TicketFilter(), scope
    ).where(Ticket.created_at >= start, Ticket.created_at < end)
    rows = [
        _Row(
            t.id,
            t.type,
            t.status,
            t.assignee_id,
            t.created_at,
            t.first_responded_at,
            t.resolved_at,
            t.satisfaction_rating,
            bool(b),
        )
        for t, b in session.execute(stmt.order_by(Ticket.id))
    ]
    overall = _group("all", rows, now)
    by_agent: dict[int | None, list[_Row]] = defaultdict(list)
    by_period: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        by_agent[row.assignee_id].append(row)
        by_period[period_key(row.created_at, period)].append(row)
    names = user_names(session=session, user_ids=by_agent)
    per_agent = [
        _group(names.get(a, f"user {a}") if a is not None else "unassigned", rs, now)
        for a, rs in sorted(by_agent.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    ]
    histogram = Counter(r.satisfaction_rating for r in rows if r.satisfaction_rating is not None)
    return {
        "start": start,
        "end": end,
        "period": period,
        "tickets": len(rows),
        "first_response_minutes": overall["first_response_minutes"],
        "resolution_minutes": overall["resolution_minutes"],
        "csat": _histogram_summary(dict(histogram)),
        "sla_compliance": overall["sla_compliance"],
        "complaints_by_category": complaints_by_category(
            session=session, start=start, end=end, scope=scope
        ),
        "per_agent": per_agent,
        "per_period": [_group(k, by_period[k], now) for k in sorted(by_period)],
    }


def complaints_by_category(
    *, session: Session, start: datetime, end: datetime, scope: RecordScope
) -> dict[str, int]:
    """Complaints opened in ``[start, end)`` per product category of their order's lines
    (a complaint about an order of two categories counts in both; without an order:
    "no order"), counted in SQL."""
    category = func.coalesce(Product.category, "uncategorised")
    linked = (
        _filtered(
            select(category, func.count(func.distinct(Ticket.id))),
            TicketFilter(type="complaint"),
            scope,
        )
        .join(OrderLine, OrderLine.order_id == Ticket.order_id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(Ticket.created_at >= start, Ticket.created_at < end)
        .group_by(category)
    )
    found = {str(c): int(n) for c, n in session.execute(linked)}
    unlinked = session.scalar(
        _filtered(select(func.count(Ticket.id)), TicketFilter(type="complaint"), scope).where(
            Ticket.order_id.is_(None), Ticket.created_at >= start, Ticket.created_at < end
        )
    )
    if unlinked:
        found["no order"] = int(unlinked)
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


# --- the customer's timeline ----------------------------------------------------------


def timeline_entries(
    *, session: Session, customer_id: int, limit: int, before: datetime | None = None
) -> list[TimelineEntry]:
    """Tickets opened and resolved for a customer, newest first (at most ``limit``,
    before ``before`` when given)."""
    base = select(Ticket).where(Ticket.customer_id == customer_id, Ticket.deleted_at.is_(None))
    newest_opened = base.order_by(Ticket.created_at.desc(), Ticket.id.desc())
    newest_resolved = base.where(Ticket.resolved_at.is_not(None)).order_by(
        Ticket.resolved_at.desc(), Ticket.id.desc()
    )
    if before is not None:
        newest_opened = newest_opened.where(Ticket.created_at < before)
        newest_resolved = newest_resolved.where(Ticket.resolved_at < before)
    tickets = {
        t.id: t
        for stmt in (newest_opened, newest_resolved)
        for t in session.scalars(stmt.limit(limit))
    }.values()
    entries: list[TimelineEntry] = []
    for t in tickets:
        url = f"/service-desk/tickets/{t.id}"
        entries.append(
            TimelineEntry(
                at=as_utc(t.created_at),
                kind="ticket",
                title=Message(N_("Ticket opened: %(subject)s"), {"subject": t.subject}),
                detail=f"{t.type} · {t.priority} · {t.status}",
                url=url,
            )
        )
        if t.resolved_at is not None:
            entries.append(
                TimelineEntry(
                    at=as_utc(t.resolved_at),
                    kind="ticket",
                    title=Message(N_("Ticket resolved: %(subject)s"), {"subject": t.subject}),
                    detail=(
                        Message(N_("satisfaction %(rating)s/5"), {"rating": t.satisfaction_rating})
                        if t.satisfaction_rating is not None
                        else None
                    ),
                    url=url,
                )
            )
    if before is not None:
        entries = [e for e in entries if e.at < as_utc(before)]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]
