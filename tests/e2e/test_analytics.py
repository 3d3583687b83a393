"""The analytics pages in a real browser: the overview and the RFM page of a stored run,
their server-drawn charts loaded as images, under the Content-Security-Policy."""

from __future__ import annotations

from datetime import date

from playwright.sync_api import ConsoleMessage, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from tenure.analytics import run as analytics_run
from tenure.db import unit_of_work
from tests.analytics.conftest import AS_OF, Shop, simulate
from tests.conftest import MakeUser
from tests.e2e.helpers import sign_in


def _stored_run(sessions: sessionmaker[Session]) -> int:
    simulate(Shop(sessions), 300, seed=7)
    options = analytics_run.RunOptions(
        as_of=AS_OF, churn_horizon_days=60, min_support=0.05, min_confidence=0.3
    )
    with unit_of_work(sessions, write=False) as s:
        computed = analytics_run.compute(session=s, options=options, today=date(2024, 7, 1))
    with unit_of_work(sessions) as s:
        return analytics_run.save(session=s, computed=computed)


def test_an_analyst_opens_the_overview_and_the_rfm_grid(
    page: Page, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    run_id = _stored_run(sessions)
    sign_in(page, make_user("analyst", name="Ana Lyst"))

    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Analytics"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Analytics")
    expect(page.get_by_test_id("run-line")).to_contain_text(f"Run {run_id},")
    expect(page.get_by_test_id("segments")).to_be_visible()

    page.get_by_role("navigation", name="Analytics pages").get_by_role(
        "link", name="RFM and segments"
    ).click()
    heat_map = page.get_by_test_id("chart-rfm-customers")
    expect(heat_map).to_be_visible()
    page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=heat_map.element_handle()
    )
    page.get_by_role("link", name="revenue").click()
    value_map = page.get_by_test_id("chart-rfm-value")
    page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=value_map.element_handle()
    )

    assert violations == []
