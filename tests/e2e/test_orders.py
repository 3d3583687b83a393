"""The order form in a real browser: pick a customer, add product lines, watch the
running total, save, and find the same total on the order."""

from __future__ import annotations

import re
from decimal import Decimal

from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tenure.orders.models import Order
from tests.conftest import MakeUser
from tests.e2e.helpers import add_customer, add_product, sign_in


def test_an_order_with_two_lines_shows_its_running_total_and_saves_it(
    page: Page, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user("sales")
    grace = add_customer(sessions, user, "Grace Hopper", company_name="Navy")
    add_customer(sessions, user, "Alan Turing")
    chair = add_product(sessions, "CHAIR-01", "Oak chair", "19.99")
    lamp = add_product(sessions, "LAMP-01", "Desk lamp", "1200.50")
    expected = chair.unit_price * 2 + lamp.unit_price * 3
    assert expected == Decimal("3641.48")

    sign_in(page, user)
    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Orders"
    ).click()
    page.get_by_role("link", name="New order").first.click()  # the head, or the empty state
    expect(page.get_by_role("heading", level=1)).to_have_text("New order")

    page.get_by_label("Find the customer").press_sequentially("Gra")
    page.get_by_role("link", name="Grace Hopper").click()
    picked = page.locator("#customer-picker")
    expect(picked.get_by_role("button", name="Change customer")).to_be_visible()
    expect(picked).to_contain_text("Grace Hopper")

    total = page.locator("#order-form").get_by_test_id("order-total")
    page.get_by_label("Product, line 1").select_option(label="Oak chair (CHAIR-01) · €19.99")
    page.get_by_label("Quantity, line 1").fill("2")
    expect(total).to_have_text("€39.98")

    page.get_by_role("button", name="Add line").click()
    page.get_by_label("Product, line 2").select_option(label="Desk lamp (LAMP-01) · €1,200.50")
    page.get_by_label("Quantity, line 2").fill("3")
    expect(page.locator("#line-1-total")).to_have_text("€3,601.50")
    expect(total).to_have_text("€3,641.48")

    page.get_by_role("button", name="Save order").click()
    expect(page).to_have_url(re.compile(r"/orders/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Order #")
    lines = page.locator("table tbody tr")
    expect(lines).to_have_count(2)
    expect(lines.nth(0)).to_contain_text("Oak chair")
    expect(lines.nth(1)).to_contain_text("Desk lamp")
    expect(page.get_by_test_id("order-total")).to_have_text("€3,641.48")
    expect(page.get_by_role("link", name="Grace Hopper")).to_be_visible()

    with sessions() as s:
        orders = s.scalars(select(Order)).all()
        assert [(o.customer_id, o.total, len(o.lines)) for o in orders] == [(grace.id, expected, 2)]
