"""Languages in a real browser: switching to Simplified Chinese changes the labels and the
way numbers, money and dates are written, and the choice stays with the user."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import PASSWORD, MakeUser
from tests.e2e.helpers import add_customer, add_order, add_product, sign_in


def test_switching_to_chinese_shows_chinese_labels_and_formats(
    page: Page, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user("sales", name="Sam Sales")
    customer = add_customer(sessions, user, "Grace Hopper")
    tea = add_product(sessions, "TEA-01", "Oolong", "1234.50", currency="CNY")
    for day in (5, 6):
        add_order(
            sessions,
            customer,
            [(tea, 1)],
            status="paid",
            currency="CNY",
            ordered_at=datetime(2024, 3, day, 12, tzinfo=UTC),
        )

    sign_in(page, user)
    page.goto(f"/customers/{customer.id}")
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.get_by_role("link", name="Customers")).to_be_visible()
    expect(page.get_by_test_id("total-spent")).to_have_text("CN¥2,469.00")
    expect(page.get_by_test_id("last-order")).to_have_text("Mar 6, 2024")

    page.get_by_label("Language").select_option(label="简体中文")

    # The same page again, now in Chinese and written the Chinese way.
    expect(page.locator("html")).to_have_attribute("lang", re.compile(r"^zh(-Hans)?-CN$"))
    expect(page).to_have_url(f"/customers/{customer.id}")
    nav = page.get_by_role("navigation", name="主导航")
    expect(nav.get_by_role("link", name="客户")).to_be_visible()
    expect(nav.get_by_role("link", name="订单")).to_be_visible()
    expect(nav.get_by_role("button", name="退出登录")).to_be_visible()
    expect(page.get_by_text("消费总额")).to_be_visible()
    expect(page.get_by_role("heading", name="交易记录")).to_be_visible()
    expect(page.get_by_test_id("total-spent")).to_have_text("¥2,469.00")
    expect(page.get_by_test_id("average-order")).to_have_text("¥1,234.50")
    expect(page.get_by_test_id("first-order")).to_have_text("2024年3月5日")
    expect(page.get_by_test_id("last-order")).to_have_text("2024年3月6日")

    # The choice belongs to the user: signing in again (from an English browser) keeps it.
    nav.get_by_role("button", name="退出登录").click()
    expect(page).to_have_url("/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("欢迎，Sam Sales")  # noqa: RUF001
