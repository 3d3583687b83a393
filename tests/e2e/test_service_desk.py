"""A support agent works the queue in a real browser: takes the top ticket, replies,
resolves it, the customer rates it through the signed link, and the rating shows in the
figures."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from tenure.db import unit_of_work
from tenure.security.scope import EVERYTHING
from tenure.service_desk import service as desk_service
from tenure.service_desk import sla
from tenure.service_desk.schemas import TicketCreate, TicketType
from tests.conftest import MakeUser
from tests.e2e.helpers import add_customer, sign_in


def add_ticket(
    sessions: sessionmaker[Session], customer_id: int, subject: str, urgency: int, impact: int
) -> int:
    with unit_of_work(sessions) as s:
        ticket = desk_service.create(
            session=s,
            data=TicketCreate(
                customer_id=customer_id,
                type=TicketType.COMPLAINT,
                subject=subject,
                description="Reported by email.",
                urgency=urgency,
                impact=impact,
            ),
            scope=EVERYTHING,
            actor_id=None,
            hours=sla.parse_hours("mon-fri 09:00-17:00"),
        )
        return ticket.id


def test_an_agent_takes_the_top_ticket_resolves_it_and_sees_the_rating_in_the_figures(
    page: Page,
    browser: Browser,
    live_server: str,
    make_user: MakeUser,
    sessions: sessionmaker[Session],
) -> None:
    agent = make_user("support", name="Sue Support")
    customer = add_customer(sessions, agent, "Grace Hopper")
    add_ticket(sessions, customer.id, "Where is my invoice?", urgency=1, impact=1)
    add_ticket(sessions, customer.id, "The kettle leaks", urgency=4, impact=4)

    sign_in(page, agent)
    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Service desk"
    ).click()
    rows = page.get_by_test_id("ticket-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("P1")
    rows.nth(0).get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("The kettle leaks")

    page.get_by_role("button", name="Assign to me").click()
    expect(page.get_by_test_id("assignee")).to_have_text("Sue Support")
    page.get_by_label("Reply").fill("A new kettle is on its way.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("message")).to_contain_text("A new kettle is on its way.")
    expect(page.get_by_test_id("ticket-status")).to_have_text("open")
    page.get_by_role("button", name="Resolved").click()
    expect(page.get_by_test_id("ticket-status")).to_have_text("resolved")

    page.get_by_role("button", name="Make a satisfaction survey link").click()
    link = page.get_by_test_id("survey-link").get_attribute("href")
    assert link is not None and link.startswith(f"{live_server}/survey/")

    customer_view = browser.new_context(locale="en-US")  # no account, no cookies
    survey = customer_view.new_page()
    survey.goto(link)
    expect(survey.get_by_role("heading", level=1)).to_have_text("How did we do?")
    survey.get_by_role("radio", name="5").check()
    survey.get_by_label("Anything you want to tell us (optional)").fill("Fast and friendly.")
    survey.get_by_role("button", name="Send").click()
    expect(survey.get_by_test_id("survey-thanks")).to_be_visible()
    survey.goto(link)
    expect(survey.get_by_test_id("survey-refused")).to_contain_text("already recorded")
    customer_view.close()

    page.reload()
    expect(page.get_by_test_id("satisfaction")).to_have_text("5/5")
    page.goto("/service-desk/figures")
    expect(page.get_by_test_id("figure-tickets")).to_have_text("2")
    expect(page.get_by_test_id("figure-csat")).to_have_text("5")
    expect(page.get_by_test_id("per-agent")).to_contain_text("Sue Support")
    expect(page.get_by_test_id("chart-volume")).to_be_visible()
    assert re.search(r"/service-desk/figures$", page.url)
