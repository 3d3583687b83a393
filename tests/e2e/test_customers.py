"""Customer journeys in a real browser: instant search, the 360 page's figures, inline
validation on edit, and the edit conflict."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import MakeUser
from tests.e2e.helpers import (
    add_customer,
    add_order,
    add_product,
    change_status,
    personal_data,
    sign_in,
    stored_customer,
)


def results(page: Page) -> list[str]:
    """The customer names listed in the results table, in order."""
    return page.locator("#results tbody tr td:first-child a").all_inner_texts()


def test_search_finds_customers_by_the_first_letters_as_you_type(
    page: Page, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user("sales")
    for name in ("Margaret Hamilton", "Marvin Minsky", "Ada Lovelace"):
        add_customer(sessions, user, name)
    sign_in(page, user)
    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Customers"
    ).click()
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(3)

    search = page.get_by_role("searchbox", name="Search")
    search.press_sequentially("Mar")
    # No Enter pressed: the debounced search fires by itself and swaps the results in.
    expect(rows).to_have_count(2)
    assert sorted(results(page)) == ["Margaret Hamilton", "Marvin Minsky"]
    expect(page).to_have_url(re.compile(r"/customers\?q=Mar$"))

    search.press_sequentially("g")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Margaret Hamilton")
    expect(page).to_have_url(re.compile(r"/customers\?q=Marg$"))

    search.press_sequentially("x")
    expect(page.locator("#results")).to_contain_text("No customers match “Margx”.")


def test_the_360_page_shows_the_customers_figures(
    page: Page, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user("sales")
    grace = add_customer(sessions, user, "Grace Hopper")
    alan = add_customer(sessions, user, "Alan Turing")
    chair = add_product(sessions, "CHAIR-01", "Oak chair", "19.99")
    desk = add_product(sessions, "DESK-01", "Standing desk", "1000.00")
    purchased = [
        add_order(sessions, grace, [(chair, 2)], status="placed", ordered_at=at(2024, 1, 10)),
        add_order(sessions, grace, [(chair, 1)], status="paid", ordered_at=at(2024, 2, 3)),
        add_order(sessions, grace, [(desk, 1)], status="paid", ordered_at=at(2024, 3, 5)),
    ]
    # Not purchases, so no figure counts them: a draft (the newest order), a refunded order
    # (the oldest), and another customer's order.
    add_order(sessions, grace, [(desk, 3)], status="draft", ordered_at=at(2024, 4, 1))
    refunded = add_order(sessions, grace, [(chair, 9)], status="paid", ordered_at=at(2024, 1, 1))
    change_status(sessions, refunded, "refunded")
    add_order(sessions, alan, [(desk, 1)], status="paid", ordered_at=at(2024, 5, 1))

    total = sum((o.total for o in purchased), Decimal(0))
    average = (total / len(purchased)).quantize(Decimal("0.01"))
    assert (total, average) == (Decimal("1059.97"), Decimal("353.32"))

    sign_in(page, user)
    page.goto("/customers")
    page.get_by_role("link", name="Grace Hopper").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Grace Hopper")
    expect(page.get_by_test_id("order-count")).to_have_text("3")
    expect(page.get_by_test_id("total-spent")).to_have_text(f"€{total:,.2f}")
    expect(page.get_by_test_id("average-order")).to_have_text(f"€{average:,.2f}")
    expect(page.get_by_test_id("first-order")).to_have_text("Jan 10, 2024")
    expect(page.get_by_test_id("last-order")).to_have_text("Mar 5, 2024")
    record = page.get_by_role("region", name="Transaction record")
    expect(record.locator("tbody tr")).to_have_count(5)


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, 0, tzinfo=UTC)


def test_an_invalid_email_is_refused_inline_and_nothing_is_saved(
    page: Page, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user("sales")
    ada = add_customer(sessions, user, "Ada Lovelace", email="ada@example.com")
    sign_in(page, user)
    page.goto(f"/customers/{ada.id}")
    page.get_by_role("link", name="Edit", exact=True).click()

    page.get_by_label("Name *").fill("Ada King")
    email = page.get_by_label("Email", exact=True)
    email.fill("ada-at-example")
    email.press("Enter")  # saving from the keyboard

    expect(page.get_by_role("alert").first).to_have_text("Please correct the fields marked below.")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description("must be an email address like name@example.com")
    # What was typed is kept for correcting, and nothing reached the database.
    expect(email).to_have_value("ada-at-example")
    expect(page.get_by_label("Name *")).to_have_value("Ada King")
    saved = stored_customer(sessions, ada.id)
    assert (saved.name, saved.version) == ("Ada Lovelace", 1)
    assert personal_data(sessions, ada.id)["email"] == "ada@example.com"


def test_an_edit_conflict_is_refused_with_both_versions_shown(
    page: Page,
    browser: Browser,
    live_server: str,
    make_user: MakeUser,
    sessions: sessionmaker[Session],
) -> None:
    me = make_user("sales", name="Sam Sales")
    colleague = make_user("support", name="Cora Colleague")  # reaches every customer
    customer = add_customer(sessions, me, "Linus Torvalds", phone="+1 555 0100")
    sign_in(page, me)
    page.goto(f"/customers/{customer.id}/edit")
    page.get_by_label("Phone").fill("+1 555 0199")

    # Meanwhile a colleague, in their own browser, renames the customer and saves.
    theirs = browser.new_context(base_url=live_server, locale="en-US")
    try:
        other = theirs.new_page()
        sign_in(other, colleague)
        other.goto(f"/customers/{customer.id}/edit")
        other.get_by_label("Name *").fill("Linus B. Torvalds")
        other.get_by_role("button", name="Save changes").click()
        expect(other.get_by_role("heading", level=1)).to_contain_text("Linus B. Torvalds")
    finally:
        theirs.close()

    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit conflict: Linus B. Torvalds")
    expect(page.get_by_role("alert")).to_contain_text("Your changes have not been saved.")
    saved_side = page.locator(".card", has=page.get_by_role("heading", name=re.compile("^Theirs")))
    mine_side = page.locator(".card", has=page.get_by_role("heading", name="Yours (not saved)"))
    expect(saved_side.get_by_role("heading")).to_have_text("Theirs (saved, version 2)")
    expect(saved_side.locator('tr[data-field="name"]')).to_contain_text("Linus B. Torvalds")
    expect(saved_side.locator('tr[data-field="phone"]')).to_contain_text("+1 555 0100")
    expect(mine_side.locator('tr[data-field="name"]')).to_contain_text("Linus Torvalds")
    expect(mine_side.locator('tr[data-field="phone"]')).to_contain_text("+1 555 0199")
    expect(mine_side.locator('tr[data-field="phone"]')).to_contain_text("differs")
    saved = stored_customer(sessions, customer.id)
    assert (saved.name, saved.version) == ("Linus B. Torvalds", 2)
    assert personal_data(sessions, customer.id)["phone"] == "+1 555 0100"


def test_personal_data_is_masked_until_revealed(
    page: Page, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user("support")
    grace = add_customer(
        sessions,
        user,
        "Grace Hopper",
        email="grace.hopper@navy.example",
        phone="+1 202 555 0143",
        tax_id="US-123-45",
    )
    sign_in(page, user)
    page.goto(f"/customers/{grace.id}")
    personal = page.locator("#personal")
    expect(personal.get_by_test_id("email")).to_have_text("g•••@navy.example")
    expect(personal.get_by_test_id("phone")).to_have_text("•••• 0143")
    expect(personal.get_by_test_id("tax-id")).to_have_text("hidden")

    personal.get_by_role("button", name="Reveal").click()

    revealed = page.locator('#personal[data-revealed="true"]')
    expect(revealed.get_by_test_id("email")).to_have_text("grace.hopper@navy.example")
    expect(revealed.get_by_test_id("tax-id")).to_have_text("US-123-45")
    revealed.get_by_role("button", name="Hide").click()
    expect(page.locator('#personal[data-revealed="false"]').get_by_test_id("email")).to_have_text(
        "g•••@navy.example"
    )
