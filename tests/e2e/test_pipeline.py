"""The sales pipeline in a real browser: a sales rep drags an opportunity's card to Won
(HTML5 drag and drop), makes the order from it, and finds both on the customer's
timeline."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tenure.db import unit_of_work
from tenure.orders.models import Order
from tenure.pipeline import service as pipeline_service
from tenure.pipeline.models import Opportunity
from tenure.pipeline.schemas import OpportunityCreate
from tenure.security.scope import EVERYTHING
from tests.conftest import MakeUser
from tests.e2e.helpers import add_customer, add_product, sign_in


def test_a_card_dragged_to_won_becomes_an_order_on_the_customers_timeline(
    page: Page, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    rep = make_user("sales")
    grace = add_customer(sessions, rep, "Grace Hopper")
    add_product(sessions, "SVC-01", "Consulting day", "800.00")
    with unit_of_work(sessions) as s:
        stages = {st.name: st.id for st in pipeline_service.seed_default_stages(session=s)}
        opportunity = pipeline_service.create(
            session=s,
            data=OpportunityCreate.model_validate(
                {
                    "customer_id": grace.id,
                    "title": "Compiler rollout",
                    "amount": "1600.00",
                    "stage_id": stages["Negotiation"],
                }
            ),
            actor_id=rep.id,
            scope=EVERYTHING,
        )

    sign_in(page, rep)
    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Pipeline"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pipeline")
    card = page.get_by_test_id(f"card-{opportunity.id}")
    won = page.get_by_test_id("stage-Won")
    expect(page.get_by_test_id("stage-Negotiation")).to_contain_text("Compiler rollout")

    card.drag_to(won)

    expect(won.get_by_test_id(f"card-{opportunity.id}")).to_be_visible()
    expect(won.get_by_test_id("stage-count")).to_have_text("1 opportunity")
    expect(won).to_contain_text("€1,600.00")
    expect(page.get_by_test_id("stage-Negotiation").get_by_test_id("stage-count")).to_have_text(
        "0 opportunities"
    )

    won.get_by_role("link", name="Compiler rollout").click()
    expect(page.get_by_test_id("opportunity-status")).to_have_text("won")
    page.get_by_label("Product").first.select_option(label="Consulting day (SVC-01)")
    page.get_by_label("Quantity").first.fill("2")
    page.get_by_role("button", name="Create order").click()
    expect(page).to_have_url(re.compile(r"/orders/\d+$"))
    expect(page.get_by_test_id("order-total")).to_have_text("€1,600.00")
    order_id = int(page.url.rsplit("/", 1)[1])

    page.get_by_role("link", name="Grace Hopper").click()
    timeline = page.locator("#timeline")
    expect(timeline.get_by_role("link", name=f"Order #{order_id}")).to_be_visible()
    expect(timeline.get_by_role("link", name="Opportunity won: Compiler rollout")).to_be_visible()
    timeline.get_by_role("link", name="opportunity", exact=True).click()
    expect(timeline.locator("li[data-kind='order']")).to_have_count(0)
    expect(timeline.locator("li[data-kind='opportunity']")).to_have_count(2)

    with sessions() as s:
        stored = s.get(Opportunity, opportunity.id)
        assert stored is not None
        orders = s.scalars(select(Order)).all()
        assert [o.id for o in orders] == [order_id]
        assert (stored.status, stored.order_id) == ("won", order_id)


def test_a_logged_call_appears_on_the_timeline_without_reloading(
    page: Page, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    rep = make_user("sales")
    ada = add_customer(sessions, rep, "Ada Lovelace")

    sign_in(page, rep)
    page.goto(f"/customers/{ada.id}")
    form = page.get_by_test_id("log-interaction")
    form.get_by_label("Kind").select_option("call")
    form.get_by_label("Subject").fill("Talked about engines")
    form.get_by_label("Duration (minutes, calls and meetings)").fill("20")
    form.get_by_role("button", name="Log interaction").click()

    expect(page.get_by_role("status")).to_have_text("Interaction logged.")
    timeline = page.locator("#timeline")
    expect(timeline.get_by_role("link", name="Call: Talked about engines")).to_be_visible()
    expect(timeline).to_contain_text("20 min")
    timeline.get_by_role("link", name="change", exact=True).click()
    expect(timeline.locator("li[data-kind='interaction']")).to_have_count(0)
    expect(timeline.locator("li[data-kind='change']")).to_have_count(1)
    assert page.url.endswith(f"/customers/{ada.id}")
