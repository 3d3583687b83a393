"""Service desk pages: the queue, a ticket's page, the survey link, service levels,
figures and the dashboard."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tenure.security.models import User
from tenure.service_desk.models import Ticket
from tests.conftest import MakeUser
from tests.conftest import web_sign_in as sign_in
from tests.service_desk.conftest import Headers, make_customer, make_ticket


@pytest.fixture
def agent(make_user: MakeUser) -> User:
    return make_user("support", name="Sue Support")


def _token(client: TestClient, headers: Headers, ticket_id: int) -> str:
    r = client.post(f"/api/v1/tickets/{ticket_id}/survey-link", headers=headers)
    assert r.status_code == 200, r.text
    url: str = r.json()["url"]
    return url.removeprefix("/survey/")


def test_the_queue_lists_tickets_by_priority_and_bulk_assigns(
    client: TestClient, agent: User, admin: Headers, sessions: sessionmaker[Session]
) -> None:
    customer = make_customer(client, admin)
    low = make_ticket(client, admin, customer_id=customer, subject="Low one", urgency=1, impact=1)
    high = make_ticket(client, admin, customer_id=customer, subject="High one", urgency=4, impact=4)
    csrf = sign_in(client, agent)

    page = client.get("/service-desk")
    r = client.post(
        "/service-desk/bulk-assign",
        data={
            "csrf_token": csrf,
            "ticket_ids": [str(low["id"]), str(high["id"])],
            "assignee_id": "me",
        },
        follow_redirects=False,
    )

    assert page.status_code == 200
    assert page.text.index("High one") < page.text.index("Low one")
    assert r.status_code == 303
    with sessions() as s:
        assert set(s.scalars(select(Ticket.assignee_id))) == {agent.id}
    mine = client.get("/service-desk", params={"mine": "true"})
    assert "High one" in mine.text and "Low one" in mine.text


def test_bulk_assign_without_a_selection_says_so(client: TestClient, agent: User) -> None:
    csrf = sign_in(client, agent)

    r = client.post("/service-desk/bulk-assign", data={"csrf_token": csrf, "assignee_id": "me"})

    assert r.status_code == 422
    assert "Select at least one ticket to assign." in r.text


def test_an_agent_takes_replies_and_resolves_on_the_ticket_page(
    client: TestClient, agent: User, admin: Headers
) -> None:
    t = make_ticket(client, admin, customer_id=make_customer(client, admin))
    csrf = sign_in(client, agent)
    path = f"/service-desk/tickets/{t['id']}"

    client.post(f"{path}/assign", data={"csrf_token": csrf, "assignee_id": "me"})
    client.post(
        f"{path}/messages", data={"csrf_token": csrf, "body": "A new kettle is on its way."}
    )
    client.post(f"{path}/status", data={"csrf_token": csrf, "status": "resolved"})
    page = client.get(path)

    assert 'data-testid="assignee">Sue Support<' in page.text
    assert "A new kettle is on its way." in page.text
    assert re.search(r'data-testid="ticket-status">resolved<', page.text)
    after = client.get(f"/api/v1/tickets/{t['id']}", headers=admin).json()
    assert after["first_responded_at"] is not None
    assert after["assignee_id"] == agent.id


def test_an_illegal_status_on_the_page_is_explained_and_changes_nothing(
    client: TestClient, agent: User, admin: Headers
) -> None:
    t = make_ticket(client, admin, customer_id=make_customer(client, admin))
    csrf = sign_in(client, agent)

    r = client.post(
        f"/service-desk/tickets/{t['id']}/status", data={"csrf_token": csrf, "status": "closed"}
    )

    assert r.status_code == 409
    assert "cannot become closed" in r.text
    assert client.get(f"/api/v1/tickets/{t['id']}", headers=admin).json()["status"] == "new"


def test_an_override_without_a_reason_on_the_page_changes_nothing(
    client: TestClient, agent: User, admin: Headers
) -> None:
    t = make_ticket(client, admin, customer_id=make_customer(client, admin))
    csrf = sign_in(client, agent)

    r = client.post(
        f"/service-desk/tickets/{t['id']}/priority",
        data={"csrf_token": csrf, "priority": "P1", "reason": " "},
    )

    assert r.status_code == 422
    assert client.get(f"/api/v1/tickets/{t['id']}", headers=admin).json()["priority"] == "P3"


def test_a_new_ticket_from_the_form(client: TestClient, agent: User, admin: Headers) -> None:
    customer = make_customer(client, admin)
    csrf = sign_in(client, agent)

    r = client.post(
        "/service-desk/tickets/new",
        data={
            "csrf_token": csrf,
            "customer_id": str(customer),
            "type": "consultation",
            "channel": "phone",
            "subject": "How do I descale?",
            "description": "Asked on the phone.",
            "urgency": "1",
            "impact": "1",
            "complexity": "1",
        },
        follow_redirects=False,
    )
    bad = client.post(
        "/service-desk/tickets/new",
        data={
            "csrf_token": csrf,
            "customer_id": "999999",
            "type": "consultation",
            "channel": "phone",
            "subject": "x",
            "description": "y",
            "urgency": "9",
        },
    )

    assert r.status_code == 303
    created = client.get(r.headers["location"])
    assert "How do I descale?" in created.text and "P4" in created.text
    assert bad.status_code == 422
    listed = client.get("/api/v1/tickets", headers=admin).json()["items"]
    assert [t["subject"] for t in listed] == ["How do I descale?"]


def test_the_customer_rates_a_resolved_ticket_once_through_the_signed_link(
    client: TestClient, admin: Headers
) -> None:
    t = make_ticket(client, admin, customer_id=make_customer(client, admin))
    client.patch(f"/api/v1/tickets/{t['id']}", json={"status": "resolved"}, headers=admin)
    token = _token(client, admin, t["id"])
    anonymous = TestClient(client.app)

    form = anonymous.get(f"/survey/{token}")
    csrf = anonymous.cookies["tenure_csrf"]
    sent = anonymous.post(
        f"/survey/{token}", data={"csrf_token": csrf, "rating": "5", "comment": "Great"}
    )
    again = anonymous.get(f"/survey/{token}")

    assert form.status_code == 200 and 'name="rating"' in form.text
    assert sent.status_code == 200 and 'data-testid="survey-thanks"' in sent.text
    assert again.status_code == 400 and "already recorded" in again.text
    after = client.get(f"/api/v1/tickets/{t['id']}", headers=admin).json()
    assert (after["satisfaction_rating"], after["satisfaction_comment"]) == (5, "Great")


def test_a_bad_survey_link_or_rating_records_nothing(client: TestClient, admin: Headers) -> None:
    t = make_ticket(client, admin, customer_id=make_customer(client, admin))
    client.patch(f"/api/v1/tickets/{t['id']}", json={"status": "resolved"}, headers=admin)
    token = _token(client, admin, t["id"])
    anonymous = TestClient(client.app)
    anonymous.get(f"/survey/{token}")
    csrf = anonymous.cookies["tenure_csrf"]

    forged = anonymous.post(f"/survey/{token[:-2]}xx", data={"csrf_token": csrf, "rating": "1"})
    out_of_range = anonymous.post(f"/survey/{token}", data={"csrf_token": csrf, "rating": "7"})

    assert forged.status_code == 400 and "not one we sent" in forged.text
    assert out_of_range.status_code == 422 and "Choose a rating from 1 to 5." in out_of_range.text
    assert (
        client.get(f"/api/v1/tickets/{t['id']}", headers=admin).json()["satisfaction_rating"]
        is None
    )


def test_an_admin_edits_a_service_level_on_its_page(
    client: TestClient, make_user: MakeUser, agent: User, admin: Headers
) -> None:
    csrf = sign_in(client, make_user("admin"))

    r = client.post(
        "/service-desk/sla/P2",
        data={
            "csrf_token": csrf,
            "first_response_minutes": "45",
            "resolution_minutes": "300",
            "business_hours": "1",
        },
        follow_redirects=False,
    )
    bad = client.post(
        "/service-desk/sla/P2",
        data={"csrf_token": csrf, "first_response_minutes": "0", "resolution_minutes": "300"},
    )

    assert r.status_code == 303
    assert bad.status_code == 422
    p2 = client.get("/api/v1/sla-policies", headers=admin).json()[1]
    assert (p2["first_response_minutes"], p2["resolution_minutes"], p2["business_hours"]) == (
        45,
        300,
        True,
    )
    sign_in(client, agent)
    assert client.get("/service-desk/sla").status_code == 403


def test_the_figures_page_and_its_charts(client: TestClient, agent: User, admin: Headers) -> None:
    t = make_ticket(client, admin, customer_id=make_customer(client, admin))
    client.patch(f"/api/v1/tickets/{t['id']}", json={"status": "resolved"}, headers=admin)
    client.post(f"/api/v1/tickets/{t['id']}/satisfaction", json={"rating": 4}, headers=admin)
    sign_in(client, agent)

    page = client.get("/service-desk/figures", params={"period": "month"})
    chart = client.get("/service-desk/charts/volume.svg")
    times = client.get("/service-desk/charts/times.svg", params={"period": "month"})
    unknown = client.get("/service-desk/charts/nope.svg")
    empty = client.get(
        "/service-desk/charts/volume.svg", params={"from": "2020-01-01", "to": "2020-01-31"}
    )
    today = datetime.now(UTC).date().isoformat()

    assert page.status_code == 200
    assert re.search(r'data-testid="figure-tickets">1<', page.text)
    assert re.search(r'data-testid="figure-csat">4<', page.text)
    assert chart.headers["content-type"] == "image/svg+xml"
    assert chart.text.lstrip().startswith("<?xml") and "<svg" in chart.text
    assert chart.text.count('id="patch_') > empty.text.count('id="patch_')  # its bars
    assert f"to={today}" in page.text  # the charts cover today's tickets too
    assert times.status_code == 200
    assert unknown.status_code == 404


def test_the_dashboard_counts_open_and_late_tickets(
    client: TestClient, agent: User, admin: Headers
) -> None:
    customer = make_customer(client, admin)
    make_ticket(client, admin, customer_id=customer)
    make_ticket(client, admin, customer_id=customer, opened_at="2020-01-01T00:00:00Z")
    sign_in(client, agent)

    page = client.get("/")

    assert re.search(r'data-testid="open-tickets">2<', page.text)
    assert re.search(r'data-testid="breached-tickets">1<', page.text)


def test_the_customer_page_offers_a_new_ticket(
    client: TestClient, agent: User, admin: Headers
) -> None:
    customer = make_customer(client, admin)
    sign_in(client, agent)

    page = client.get(f"/customers/{customer}")

    assert f'href="/service-desk/tickets/new?customer_id={customer}"' in page.text


def test_an_unknown_status_on_the_page_is_refused(
    client: TestClient, agent: User, admin: Headers
) -> None:
    t = make_ticket(client, admin, customer_id=make_customer(client, admin))
    csrf = sign_in(client, agent)

    r = client.post(
        f"/service-desk/tickets/{t['id']}/status", data={"csrf_token": csrf, "status": "bogus"}
    )

    assert r.status_code == 422
    assert "use one of the status buttons" in r.text
    assert client.get(f"/api/v1/tickets/{t['id']}", headers=admin).json()["status"] == "new"
