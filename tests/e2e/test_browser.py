"""The journeys people take through the web UI, in a real browser."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.conftest import MakeUser
from tests.e2e.helpers import sign_in


def test_sign_in_and_out(page: Page, make_user: MakeUser) -> None:
    user = make_user("sales", name="Sam Sales")
    sign_in(page, user)
    expect(page.get_by_role("navigation", name="Main navigation")).to_contain_text("Sam Sales")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url("/login")
    page.goto("/")
    expect(page).to_have_url("/login?next=/")


def test_wrong_password_is_refused(page: Page, make_user: MakeUser) -> None:
    user = make_user("sales")
    page.goto("/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The email or password is wrong.")
