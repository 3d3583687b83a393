"""What the pages refuse, and how they fail: a support user kept out of the admin pages,
and friendly error pages (never a stack trace) for addresses that lead nowhere."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.conftest import MakeUser
from tests.e2e.helpers import sign_in

ADMIN_LINKS = 'a[href^="/admin"]'


def test_an_admin_sees_the_admin_link(page: Page, make_user: MakeUser) -> None:
    sign_in(page, make_user("admin"))
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.locator(ADMIN_LINKS).first).to_be_visible()


def test_a_support_user_sees_no_admin_link_and_is_refused_the_admin_pages(
    page: Page, make_user: MakeUser
) -> None:
    sign_in(page, make_user("support"))
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.get_by_role("link", name="Customers")).to_be_visible()
    expect(nav.locator(ADMIN_LINKS)).to_have_count(0)

    response = page.goto("/admin/users")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Permission denied")
    expect(page.locator("body")).not_to_contain_text("Traceback")
    # Still signed in, with the way back in the menu.
    expect(nav.get_by_role("link", name="Home")).to_be_visible()


UNKNOWN_IDS = (
    "/customers/999999",
    "/customers/99999999999999999999",
    "/orders/999999",
    "/orders/99999999999999999999",
    "/orders/abc",
    "/products/999999",
    "/products/99999999999999999999",
    "/products/abc",
)


def test_unknown_ids_and_addresses_show_a_friendly_404_page(
    page: Page, make_user: MakeUser
) -> None:
    sign_in(page, make_user("sales"))
    for path in (*UNKNOWN_IDS, "/no-such-page"):
        response = page.goto(path)
        assert response is not None, path
        assert (response.status, response.headers["content-type"]) == (
            404,
            "text/html; charset=utf-8",
        ), path
        expect(page.get_by_role("heading", level=1), path).to_have_text("Not found")
        expect(page.locator("body"), path).not_to_contain_text("Traceback")
        if path in UNKNOWN_IDS:  # still within the app, with the way home
            expect(page.get_by_role("link", name="Back to the home page"), path).to_be_visible()
