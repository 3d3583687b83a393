"""The service desk's service functions: figures, CSAT summary, the customer timeline and
survey tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tenure.catalog import service as catalog_service
from tenure.catalog.schemas import ProductCreate
from tenure.customers import service as customers_service
from tenure.customers.schemas import CustomerCreate
from tenure.db import unit_of_work
from tenure.observability.logs import REDACTED, redact_text
from tenure.orders import service as orders_service
from tenure.orders.schemas import OrderCreate, OrderLineIn
from tenure.security.models import User
from tenure.security.scope import EVERYTHING
from tenure.service_desk import service, sla
from tenure.service_desk.errors import BadSurveyLink
from tenure.service_desk.models import Ticket
from tenure.service_desk.schemas import (
    MessageCreate,
    SatisfactionIn,
    TicketCreate,
    TicketStatus,
    TicketType,
    TicketUpdate,
)
from tests.conftest import MakeUser

HOURS = sla.parse_hours("mon-fri 09:00-17:00")
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def agent(make_user: MakeUser) -> User:
    return make_user("support", name="Sue Support")


def customer(sessions: sessionmaker[Session], agent: User, name: str = "Ada") -> int:
    with unit_of_work(sessions) as s:
        actor = s.get(User, agent.id)
        assert actor is not None
        made = customers_service.create(
            session=s, data=CustomerCreate(name=name), actor=actor, scope=EVERYTHING
        )
        return made.id


def order(sessions: sessionmaker[Session], customer_id: int, category: str) -> int:
    with unit_of_work(sessions) as s:
        product = catalog_service.create(
            session=s,
            data=ProductCreate.model_validate(
                {
                    "sku": f"S-{category}-{customer_id}",
                    "name": category,
                    "unit_price": "1.00",
                    "category": category,
                }
            ),
        )
        made = orders_service.create(
            session=s,
            data=OrderCreate(
                customer_id=customer_id, lines=[OrderLineIn(product_id=product.id, quantity=1)]
            ),
            scope=EVERYTHING,
        )
        return made.id


def ticket(
    sessions: sessionmaker[Session],
    customer_id: int,
    *,
    opened: datetime,
    kind: TicketType = TicketType.COMPLAINT,
    order_id: int | None = None,
    answered_after: timedelta | None = None,
    resolved_after: timedelta | None = None,
    rating: int | None = None,
    assignee: int | None = None,
) -> int:
    """A ticket opened at ``opened``, answered and resolved after the given times."""
    with unit_of_work(sessions) as s:
        t = service.create(
            session=s,
            data=TicketCreate(
                customer_id=customer_id,
                order_id=order_id,
                type=kind,
                subject=f"{kind} at {opened:%d %H:%M}",
                description="d",
                opened_at=opened,
                assignee_id=assignee,
            ),
            scope=EVERYTHING,
            actor_id=None,
            hours=HOURS,
        )
        if answered_after is not None:
            service.add_message(
                session=s, ticket=t, data=MessageCreate(body="on it"), actor_id=None
            )
            t.first_responded_at = opened + answered_after
        if resolved_after is not None:
            service.update(
                session=s,
                ticket=t,
                data=TicketUpdate(status=TicketStatus.RESOLVED),
                scope=EVERYTHING,
                actor_id=None,
                hours=HOURS,
            )
            t.resolved_at = opened + resolved_after
        if rating is not None:
            service.record_satisfaction(session=s, ticket=t, data=SatisfactionIn(rating=rating))
        return t.id


def test_figures_summarise_times_csat_compliance_and_complaints(
    sessions: sessionmaker[Session], agent: User
) -> None:
    ada = customer(sessions, agent)
    tea = order(sessions, ada, "Tea")
    # P3 tickets: first response due in 8 hours, resolution in 72 (calendar time).
    ticket(
        sessions,
        ada,
        opened=START,
        order_id=tea,
        answered_after=timedelta(minutes=30),
        resolved_after=timedelta(hours=2),
        rating=5,
        assignee=agent.id,
    )
    ticket(
        sessions,
        ada,
        opened=START + timedelta(days=1),
        answered_after=timedelta(minutes=90),
        resolved_after=timedelta(hours=4),
        rating=3,
        assignee=agent.id,
    )
    ticket(
        sessions,
        ada,
        opened=START + timedelta(days=8),
        kind=TicketType.FEEDBACK,
        answered_after=timedelta(hours=10),
        resolved_after=timedelta(hours=5),
        rating=4,
    )
    ticket(sessions, ada, opened=START - timedelta(days=30))  # outside the window

    with sessions() as s:
        found = service.figures(
            session=s, start=START, end=START + timedelta(days=14), period="week", scope=EVERYTHING
        )

    assert found["tickets"] == 3
    assert found["first_response_minutes"] == {
        "count": 3,
        "mean": 240.0,
        "median": 90.0,
        "p90": 600.0,
    }
    assert found["resolution_minutes"] == {"count": 3, "mean": 220.0, "median": 240.0, "p90": 300.0}
    assert found["csat"] == {"count": 3, "mean": 4.0, "median": 4.0, "std": 0.8165}
    # the third was answered after 10 hours, 2 hours past its first response due time
    assert found["sla_compliance"] == round(2 / 3, 4)
    assert found["complaints_by_category"] == {"Tea": 1, "no order": 1}
    assert [(g["key"], g["tickets"]) for g in found["per_period"]] == [
        ("2026-W45", 2),
        ("2026-W46", 1),
    ]
    assert [(g["key"], g["tickets"], g["csat_mean"]) for g in found["per_agent"]] == [
        ("Sue Support", 2, 4.0),
        ("unassigned", 1, 4.0),
    ]


def test_satisfaction_summary_over_all_or_some_customers(
    sessions: sessionmaker[Session], agent: User
) -> None:
    ada, bob = customer(sessions, agent, "Ada"), customer(sessions, agent, "Bob")
    for rating in (5, 4, 4):
        ticket(sessions, ada, opened=START, resolved_after=timedelta(hours=1), rating=rating)
    ticket(sessions, bob, opened=START, resolved_after=timedelta(hours=1), rating=1)
    ticket(sessions, bob, opened=START)  # not rated: not counted

    with sessions() as s:
        everyone = service.satisfaction_summary(session=s)
        only_ada = service.satisfaction_summary(session=s, customer_ids=[ada])
        nobody = service.satisfaction_summary(session=s, customer_ids=[])

    assert everyone == {"count": 4, "mean": 3.5, "median": 4.0, "std": 1.5}
    assert only_ada == {"count": 3, "mean": 4.3333, "median": 4.0, "std": 0.4714}
    assert nobody == {"count": 0, "mean": None, "median": None, "std": None}


def test_timeline_entries_are_the_customers_tickets_opened_and_resolved_newest_first(
    sessions: sessionmaker[Session], agent: User
) -> None:
    ada, bob = customer(sessions, agent, "Ada"), customer(sessions, agent, "Bob")
    first = ticket(sessions, ada, opened=START, resolved_after=timedelta(days=3))
    second = ticket(sessions, ada, opened=START + timedelta(days=1), kind=TicketType.FEEDBACK)
    ticket(sessions, bob, opened=START + timedelta(days=2))

    with sessions() as s:
        entries = service.timeline_entries(session=s, customer_id=ada, limit=10)
        two = service.timeline_entries(session=s, customer_id=ada, limit=2)

    assert [(e.at, str(e.title), e.url) for e in entries] == [
        (
            START + timedelta(days=3),
            "Ticket resolved: complaint at 02 08:00",
            f"/service-desk/tickets/{first}",
        ),
        (
            START + timedelta(days=1),
            "Ticket opened: feedback at 03 08:00",
            f"/service-desk/tickets/{second}",
        ),
        (START, "Ticket opened: complaint at 02 08:00", f"/service-desk/tickets/{first}"),
    ]
    assert {e.kind for e in entries} == {"ticket"}
    assert two == entries[:2]


def test_a_survey_token_names_its_ticket_until_it_is_used(
    sessions: sessionmaker[Session], agent: User
) -> None:
    done = ticket(
        sessions, customer(sessions, agent), opened=START, resolved_after=timedelta(hours=1)
    )
    with unit_of_work(sessions) as s:
        token, expires = service.survey_token(session=s, ticket=s.get_one(Ticket, done), days=14)

    with unit_of_work(sessions) as s:
        assert service.ticket_of_token(session=s, token=token).id == done
        answered = s.get(Ticket, done)
        assert answered is not None
        service.record_satisfaction(session=s, ticket=answered, data=SatisfactionIn(rating=5))
    with sessions() as s, pytest.raises(BadSurveyLink, match="already recorded"):
        service.ticket_of_token(session=s, token=token)
    assert expires > datetime.now(UTC) + timedelta(days=13)


def test_an_expired_forged_or_reopened_survey_token_is_refused(
    sessions: sessionmaker[Session], agent: User
) -> None:
    who = customer(sessions, agent)
    done = ticket(sessions, who, opened=START, resolved_after=timedelta(hours=1))
    other = ticket(sessions, who, opened=START, resolved_after=timedelta(hours=1))
    with unit_of_work(sessions) as s:
        expired, _ = service.survey_token(session=s, ticket=s.get_one(Ticket, done), days=-1)
        good, _ = service.survey_token(session=s, ticket=s.get_one(Ticket, done), days=1)
        theirs, _ = service.survey_token(session=s, ticket=s.get_one(Ticket, other), days=1)
    forged = theirs[:-43] + good[-43:]  # another ticket, this signature

    with sessions() as s:
        for token, message in (
            (expired, "expired"),
            (forged, "not one we sent"),
            ("nonsense", "not one we sent"),
            (good + "x", "not one we sent"),
            (good.removeprefix("tns_"), "not one we sent"),
        ):
            with pytest.raises(BadSurveyLink, match=message):
                service.ticket_of_token(session=s, token=token)
    with unit_of_work(sessions) as s:
        s.execute(update(Ticket).where(Ticket.id == done).values(status="open", resolved_at=None))
    with sessions() as s, pytest.raises(BadSurveyLink, match="open again"):
        service.ticket_of_token(session=s, token=good)


def test_business_hours_policies_walk_the_working_week(
    sessions: sessionmaker[Session], agent: User
) -> None:
    from tenure.service_desk.schemas import SlaPolicyUpdate

    with unit_of_work(sessions) as s:
        service.update_policy(
            session=s,
            priority="P3",
            data=SlaPolicyUpdate(first_response_minutes=120, business_hours=True),
        )
    friday_evening = datetime(2026, 11, 6, 16, 30, tzinfo=UTC)
    made = ticket(sessions, customer(sessions, agent), opened=friday_evening)

    with sessions() as s:
        t = s.get(Ticket, made)
        assert t is not None
        # 30 minutes on Friday, 90 on Monday from 09:00
        assert t.first_response_due_at == datetime(2026, 11, 9, 10, 30, tzinfo=UTC)


def test_a_survey_token_is_redacted_from_logged_paths(
    sessions: sessionmaker[Session], agent: User
) -> None:
    done = ticket(
        sessions, customer(sessions, agent), opened=START, resolved_after=timedelta(hours=1)
    )
    with unit_of_work(sessions) as s:
        token, _ = service.survey_token(session=s, ticket=s.get_one(Ticket, done), days=1)

    assert redact_text(f"/survey/{token}") == f"/survey/{REDACTED}"
