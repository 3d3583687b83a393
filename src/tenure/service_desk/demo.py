"""Demo tickets for demo customers: a few hundred, the same ones for the same seed."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tenure.customers.models import Customer
from tenure.orders.models import Order
from tenure.security.models import User
from tenure.security.permissions import TICKETS_WRITE, has_permission
from tenure.service_desk import priority as priorities
from tenure.service_desk import service, sla
from tenure.service_desk.models import Ticket
from tenure.service_desk.schemas import TicketStatus

SUBJECTS = {
    "complaint": (
        "Parcel arrived damaged",
        "Wrong item delivered",
        "Charged twice",
        "Still waiting for my refund",
        "Product stopped working",
    ),
    "consultation": (
        "Which model suits me?",
        "How do I change my address?",
        "Can I pay by invoice?",
        "Question about the warranty",
    ),
    "feedback": ("Great service, thank you", "Suggestion for the website", "Packaging idea"),
}
TYPES = ("complaint", "complaint", "consultation", "consultation", "feedback")
CHANNELS = ("email", "email", "phone", "web", "chat")
WINDOW_DAYS = 180
HOURS = sla.parse_hours("mon-fri 09:00-17:00")


def add_tickets(engine: Engine, *, count: int, seed: int, end: datetime) -> int:
    """Open ``count`` tickets over the ``WINDOW_DAYS`` before ``end`` for customers picked
    by ``seed`` (some about one of their orders), worked on by the agents there are: older
    ones answered, resolved and often rated, recent ones still in the queue. Returns how
    many were made (none without customers)."""
    rng = random.Random(seed * 7919 + 17)
    with Session(engine) as session, session.begin():
        customers = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        if not customers or count <= 0:
            return 0
        users = session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.id))
        agents = [u.id for u in users if has_permission(u.role, TICKETS_WRITE)]
        policies = service.policies(session=session)
        picked = [customers[rng.randrange(len(customers))] for _ in range(count)]
        orders: dict[int, list[int]] = {}
        for customer_id, order_id in session.execute(
            select(Order.customer_id, Order.id)
            .where(Order.customer_id.in_(sorted(set(picked))))
            .order_by(Order.id)
        ):
            orders.setdefault(customer_id, []).append(order_id)
        for customer_id in picked:
            session.add(
                _ticket(rng, customer_id, orders.get(customer_id, []), agents, end, policies)
            )
    return count


def _ticket(
    rng: random.Random,
    customer_id: int,
    orders: list[int],
    agents: list[int],
    end: datetime,
    policies: dict[str, service.Policy],
) -> Ticket:
    kind = rng.choice(TYPES)
    opened = end - timedelta(minutes=rng.randrange(WINDOW_DAYS * 24 * 60))
    urgency, impact, complexity = (rng.choice((1, 2, 2, 3, 4)) for _ in range(3))
    priority = priorities.assess(urgency=urgency, impact=impact, complexity=complexity).priority
    policy = policies[priority]
    age_days = (end - opened).days
    ticket = Ticket(
        customer_id=customer_id,
        order_id=rng.choice(orders) if orders and kind == "complaint" else None,
        type=kind,
        channel=rng.choice(CHANNELS),
        subject=rng.choice(SUBJECTS[kind]),
        description="Written in by the customer.",
        urgency=urgency,
        impact=impact,
        complexity=complexity,
        computed_priority=priority,
        priority=priority,
        assignee_id=rng.choice(agents) if agents and rng.random() < 0.8 else None,
        created_at=opened,
        updated_at=opened,
        status=TicketStatus.NEW.value,
    )
    ticket.first_response_due_at = sla.due(
        opened, policy.first_response_minutes, business=policy.business_hours, hours=HOURS
    )
    ticket.resolution_due_at = sla.due(
        opened, policy.resolution_minutes, business=policy.business_hours, hours=HOURS
    )
    if age_days >= 3 or rng.random() < 0.5:
        # Answered within about the first response time, sometimes late.
        ticket.first_responded_at = opened + timedelta(
            minutes=rng.expovariate(1 / (policy.first_response_minutes * 0.6))
        )
        ticket.status = TicketStatus.OPEN.value
    if age_days >= 7 or (ticket.first_responded_at and rng.random() < 0.3):
        resolved = (ticket.first_responded_at or opened) + timedelta(
            minutes=rng.expovariate(1 / (policy.resolution_minutes * 0.5))
        )
        if resolved < end:
            ticket.resolved_at = resolved
            ticket.status = TicketStatus.RESOLVED.value
            if age_days > 14 and rng.random() < 0.7:
                ticket.status = TicketStatus.CLOSED.value
                ticket.closed_at = resolved + timedelta(days=3)
            if rng.random() < 0.6:
                ticket.satisfaction_rating = rng.choice((1, 2, 3, 4, 4, 5, 5, 5))
                ticket.satisfaction_at = resolved + timedelta(hours=rng.randrange(1, 48))
    elif ticket.first_responded_at and rng.random() < 0.2:
        ticket.status = TicketStatus.PENDING.value
    service.rank(ticket)
    return ticket
