"""The Content-Security-Policy in a real browser: the pages work under it, and Chromium
reports no violation (it logs each refused script, style or handler to the console)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.sync_api import ConsoleMessage, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import MakeUser
from tests.e2e.helpers import add_customer, add_order, add_product, sign_in


def test_the_pages_run_under_the_content_security_policy_without_a_violation(
    page: Page, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    admin = make_user("admin", name="Ada Admin")
    customer = add_customer(sessions, admin, "Grace Hopper", email="grace@example.com")
    chair = add_product(sessions, "CHAIR-01", "Oak chair", "19.99")
    add_order(sessions, customer, [(chair, 2)], status="paid", ordered_at=datetime.now(UTC))

    sign_in(page, admin)  # the dashboard, with its chart
    expect(page.locator("canvas[data-chart]")).to_have_attribute("data-drawn", "1")

    page.goto("/customers")  # HTMX search as you type
    page.get_by_role("searchbox").first.fill("Gra")
    expect(page.get_by_role("link", name="Grace Hopper")).to_be_visible()
    page.goto(f"/customers/{customer.id}")
    page.goto("/orders/new")  # the priced order form
    page.goto("/products")
    page.goto("/admin/users")

    page.goto("/profile")  # a new key: shown once, selected on focus, with a copy button
    page.get_by_label("Name").fill("Nightly export")
    page.get_by_role("button", name="Create API key").click()
    key = page.get_by_label("The new API key")
    key.focus()
    assert key.evaluate("el => el.selectionEnd - el.selectionStart") == len(key.input_value())

    language = page.get_by_role("navigation", name="Main navigation").get_by_label("Language")
    language.select_option(label="简体中文")  # sent on change, by app.js, not an inline handler
    expect(page.locator("html")).to_have_attribute("lang", re.compile(r"^zh"))

    assert violations == []
