"""The analytics pages over a stored run: who may open them, the figures they show, the
per-customer lists in the caller's record scope, the charts, and the empty state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import httpx2 as httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tenure.analytics import charts
from tenure.analytics import run as analytics_run
from tenure.analytics import service as analytics_service
from tenure.customers.models import Customer
from tenure.db import unit_of_work
from tenure.security import passwords
from tenure.security import service as security_service
from tenure.security.permissions import Role
from tenure.security.schemas import TeamCreate
from tests.analytics.conftest import AS_OF, Shop, simulate
from tests.conftest import MakeUser, web_sign_in

PAGES = ("/analytics", "/analytics/rfm", "/analytics/clv", "/analytics/churn", "/analytics/baskets")
OPTIONS = analytics_run.RunOptions(
    as_of=AS_OF, period="week", churn_horizon_days=60, min_support=0.05, min_confidence=0.3
)


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture(autouse=True)
def _no_kept_charts() -> Iterator[None]:
    """Run ids repeat from one emptied database to the next: drawings must not."""
    charts.forget()
    yield
    charts.forget()


class Browser:
    """One client, signed in as one user at a time (the session cookie is swapped)."""

    def __init__(self, client: TestClient, make_user: MakeUser) -> None:
        self.client = client
        self.make_user = make_user
        self.tokens: dict[str, dict[str, str]] = {}

    def sign_in(self, who: str, role: Role) -> int:
        user = self.make_user(role)
        self.client.cookies.clear()
        web_sign_in(self.client, user)
        self.tokens[who] = dict(self.client.cookies.items())
        return user.id

    def get(self, who: str, url: str, **kwargs: str) -> httpx.Response:
        self.client.cookies.clear()
        for name, value in self.tokens[who].items():
            self.client.cookies.set(name, value)
        return self.client.get(url, params=kwargs or None, follow_redirects=False)


@pytest.fixture
def browser(client: TestClient, make_user: MakeUser) -> Browser:
    return Browser(client, make_user)


@dataclass
class World:
    run_id: int
    north: set[int]  # the manager's team's customers
    buyers: set[int]


@pytest.fixture
def world(browser: Browser, shop: Shop, sessions: sessionmaker[Session]) -> World:
    bought = simulate(shop, 300, seed=7)
    with unit_of_work(sessions) as s:
        north = security_service.create_team(session=s, data=TeamCreate(name="North")).id
    manager_id = browser.sign_in("manager", Role.MANAGER)
    browser.sign_in("analyst", Role.ANALYST)
    browser.sign_in("sales", Role.SALES)
    with unit_of_work(sessions) as s:
        manager = security_service.get_user(session=s, user_id=manager_id)
        security_service.set_team(session=s, user=manager, team_id=north)
    buyers = sorted(c for c in bought.orders if bought.days(c))
    with unit_of_work(sessions) as s:
        s.execute(update(Customer).where(Customer.id.in_(buyers[:5])).values(owner_id=manager_id))
    with unit_of_work(sessions, write=False) as s:
        computed = analytics_run.compute(session=s, options=OPTIONS, today=date(2024, 7, 1))
    assert computed.skipped == {}
    with unit_of_work(sessions) as s:
        run_id = analytics_run.save(session=s, computed=computed)
    return World(run_id, set(buyers[:5]), set(buyers))


def _listed(html: str) -> list[int]:
    return [int(v) for v in re.findall(r'data-customer="(\d+)"', html)]


def test_without_a_run_each_page_says_how_to_run_analytics(browser: Browser) -> None:
    browser.sign_in("analyst", Role.ANALYST)

    for page in PAGES:
        r = browser.get("analyst", page)
        assert r.status_code == 200, page
        assert 'data-testid="no-run"' in r.text, page
        assert "tenure analytics run" in r.text, page
    assert browser.get("analyst", "/analytics/charts/clv.svg").status_code == 404


def test_sales_may_not_open_analytics(browser: Browser) -> None:
    browser.sign_in("sales", Role.SALES)

    for url in (*PAGES, "/analytics/charts/rfm-customers.svg", "/analytics/charts/roc.png"):
        assert browser.get("sales", url).status_code == 403, url
    assert 'href="/analytics"' not in browser.get("sales", "/").text


def test_the_navigation_links_analytics_for_readers(browser: Browser) -> None:
    browser.sign_in("analyst", Role.ANALYST)

    assert 'href="/analytics"' in browser.get("analyst", "/").text


@pytest.mark.parametrize("who", ["analyst", "manager"])
def test_every_page_answers_with_a_stored_run(browser: Browser, world: World, who: str) -> None:
    for page in PAGES:
        r = browser.get(who, page)
        assert r.status_code == 200, page
        assert 'data-testid="no-run"' not in r.text, page
        assert f"Run {world.run_id}," in r.text, page


def test_the_overview_shows_the_run_and_segment_sizes(
    browser: Browser, world: World, sessions: sessionmaker[Session]
) -> None:
    r = browser.get("analyst", "/analytics")

    with unit_of_work(sessions, write=False) as s:
        run = analytics_service.get_run(session=s)
        sizes = [seg["customers"] for seg in run.results["segments"] if seg["customers"]]
        orders_n = run.results["statistics"]["orders"]["n"]
    customers = re.findall(r'data-testid="run-customers">([\d,]+)<', r.text)
    shown = [
        int(n.replace(",", ""))
        for n in re.findall(r'data-testid="segment-customers">([\d,]+)<', r.text)
    ]
    assert customers == [str(len(world.buyers))]
    assert shown == sizes
    assert sum(shown) == len(world.buyers)
    assert "Nothing: every part had enough history." in r.text
    assert 'data-testid="stat-orders"' in r.text
    assert f'<td class="num">{orders_n}</td>' in r.text


def test_the_overview_shows_satisfaction_only_once_someone_rated(
    browser: Browser, world: World, sessions: sessionmaker[Session]
) -> None:
    assert 'data-testid="stat-satisfaction"' not in browser.get("analyst", "/analytics").text
    rated = {"n": 12, "mean": "4.2500", "median": "4.5000", "variance": "0.75", "std": "0.8660"}
    with unit_of_work(sessions) as s:
        run = analytics_service.get_run(session=s)
        kept = run.results
        run.results = {**kept, "satisfaction": {"overall": rated, "by_segment": {}}}
    try:
        r = browser.get("analyst", "/analytics")
    finally:  # the run is shared by the module's tests
        with unit_of_work(sessions) as s:
            analytics_service.get_run(session=s).results = kept

    row = r.text[r.text.index('data-testid="stat-satisfaction"') :].split("</tr>")[0]
    assert "Satisfaction (CSAT 1-5)" in row
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["12", "4.25", "4.5", "0.87"]


def test_the_rfm_page_embeds_the_heat_map_of_the_run(browser: Browser, world: World) -> None:
    by_customers = browser.get("analyst", "/analytics/rfm").text
    by_value = browser.get("analyst", "/analytics/rfm", by="value").text

    assert f'src="/analytics/charts/rfm-customers.svg?run_id={world.run_id}"' in by_customers
    assert f'src="/analytics/charts/rfm-value.svg?run_id={world.run_id}"' in by_value
    assert browser.get("analyst", "/analytics/rfm", by="other").status_code == 422


def test_the_churn_list_is_highest_risk_first(browser: Browser, world: World) -> None:
    r = browser.get("analyst", "/analytics/churn")

    listed = _listed(r.text)
    risks = [
        float(v.rstrip("%")) for v in re.findall(r'data-testid="churn-risk">([\d.]+)%<', r.text)
    ]
    assert len(listed) == 25
    assert risks == sorted(risks, reverse=True)
    assert all(f'href="/customers/{c}"' in r.text for c in listed)
    assert 'data-testid="models"' in r.text
    assert "ROC" in r.text


def test_the_clv_page_lists_the_highest_values_first(browser: Browser, world: World) -> None:
    r = browser.get("analyst", "/analytics/clv")

    values = [
        float(v.replace(",", "")) for v in re.findall(r'data-testid="clv">€([\d,.]+)<', r.text)
    ]
    assert len(values) == 25
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize("page", ["/analytics/clv", "/analytics/churn"])
def test_a_manager_sees_only_their_teams_customers(
    browser: Browser, world: World, page: str
) -> None:
    listed = _listed(browser.get("manager", page).text)

    assert set(listed) == world.north
    assert set(_listed(browser.get("analyst", page).text)) - world.north


def test_the_baskets_page_shows_rules_and_clusters(browser: Browser, world: World) -> None:
    r = browser.get("analyst", "/analytics/baskets")

    assert 'data-testid="rules"' in r.text
    assert len(re.findall(r'data-testid="lift"', r.text)) > 0
    assert "honey" in r.text or "tea" in r.text
    assert r.text.count("Cluster ") >= 2
    assert "Typically last bought" in r.text


@pytest.mark.parametrize("chart", charts.CHARTS)
def test_each_chart_is_an_svg_and_a_png(browser: Browser, world: World, chart: str) -> None:
    svg = browser.get("manager", f"/analytics/charts/{chart}.svg")
    png = browser.get("manager", f"/analytics/charts/{chart}.png", run_id=str(world.run_id))

    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content[:1000]
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert browser.get("manager", f"/analytics/charts/{chart}.svg").content == svg.content


def test_an_unknown_chart_is_not_found(browser: Browser, world: World) -> None:
    assert browser.get("analyst", "/analytics/charts/pie.svg").status_code == 404
    assert browser.get("analyst", "/analytics/charts/clv.svg", run_id="999").status_code == 404


def test_the_customer_page_shows_churn_risk_to_analytics_readers(
    browser: Browser, world: World
) -> None:
    customer_id = min(world.north)

    manager = browser.get("manager", f"/customers/{customer_id}").text
    assert 'data-testid="churn-risk"' in manager
    assert 'data-testid="purchase-probability"' in manager


def test_the_customer_page_keeps_analytics_from_other_roles(
    browser: Browser, world: World, sessions: sessionmaker[Session]
) -> None:
    customer_id = max(world.buyers)
    sales = browser.sign_in("rep", Role.SALES)
    with unit_of_work(sessions) as s:
        s.execute(update(Customer).where(Customer.id == customer_id).values(owner_id=sales))

    r = browser.get("rep", f"/customers/{customer_id}")

    assert r.status_code == 200
    assert 'data-testid="analytics-figures"' not in r.text
