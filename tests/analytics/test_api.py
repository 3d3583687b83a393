"""Stored runs over /api/v1/analytics: figures checked against the simulated purchases,
errors a user can act on, permissions and CSV exports."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tenure.analytics import lifetime, rfm
from tenure.analytics import run as analytics_run
from tenure.analytics.errors import CutoffInFuture, TooLittleHistory
from tenure.catalog.models import Product
from tenure.config import Settings
from tenure.core.errors import InvalidInput
from tenure.db import unit_of_work
from tenure.security.scope import EVERYTHING
from tenure.service_desk import service as desk_service
from tenure.service_desk import sla
from tenure.service_desk.schemas import TicketCreate
from tests.analytics.conftest import AS_OF, Bought, Shop, simulate

Headers = dict[str, str]
OPTIONS = analytics_run.RunOptions(
    as_of=AS_OF, period="week", churn_horizon_days=60, min_support=0.05, min_confidence=0.3
)


def _run(sessions: sessionmaker[Session], options: analytics_run.RunOptions = OPTIONS) -> int:
    with unit_of_work(sessions, write=False) as s:
        computed = analytics_run.compute(session=s, options=options, today=date(2024, 7, 1))
    with unit_of_work(sessions) as s:
        return analytics_run.save(session=s, computed=computed)


@pytest.fixture
def bought(shop: Shop, sessions: sessionmaker[Session]) -> Bought:
    return simulate(shop, 300, seed=7)


@pytest.fixture
def run_id(bought: Bought, sessions: sessionmaker[Session]) -> int:
    return _run(sessions)


@pytest.fixture
def analyst(login: Callable[..., Headers]) -> Headers:
    return login("analyst")


def test_no_run_yet_is_a_clear_404(client: TestClient, analyst: Headers) -> None:
    r = client.get("/api/v1/analytics/statistics", headers=analyst)

    assert r.status_code == 404
    assert r.json()["type"] == "urn:tenure:problem:no-analytics-run"
    assert "tenure analytics run" in r.json()["detail"]


def test_roles_without_analytics_read_are_refused(
    client: TestClient, login: Callable[..., Headers], run_id: int
) -> None:
    for role in ("sales", "support", "auditor"):
        assert client.get("/api/v1/analytics/runs", headers=login(role)).status_code == 403
    for role in ("admin", "manager", "marketing", "analyst"):
        assert client.get("/api/v1/analytics/runs", headers=login(role)).status_code == 200


def test_the_stored_bgnbd_fit_is_the_likelihood_of_the_purchases(
    client: TestClient, analyst: Headers, bought: Bought, run_id: int
) -> None:
    r = client.get(f"/api/v1/analytics/runs/{run_id}", headers=analyst)

    assert r.status_code == 200
    body = r.json()
    assert body["parameters"]["period"] == "week"
    fit = body["results"]["bgnbd"]
    # x, t_x and T in weeks, from the simulated purchase dates themselves.
    days = [bought.days(c) for c in sorted(bought.orders) if bought.days(c)]
    x = np.array([len(d) - 1 for d in days], dtype=float)
    t_x = np.array([(d[-1] - d[0]).days / 7 for d in days])
    T = np.array([(AS_OF - d[0]).days / 7 for d in days])
    params = lifetime.BGNBD(**fit["params"])
    assert fit["customers"] == len(days) == body["customers"]
    assert fit["log_likelihood"] == pytest.approx(
        lifetime.bgnbd_log_likelihood(params, x, t_x, T).sum()
    )
    assert fit["converged"] is True
    assert body["results"]["skipped"] == {}


def test_a_customer_has_figures_scores_and_predictions(
    client: TestClient, analyst: Headers, bought: Bought, run_id: int
) -> None:
    customer_id = max(bought.orders, key=lambda c: len(bought.days(c)))

    r = client.get(f"/api/v1/analytics/customers/{customer_id}", headers=analyst)

    assert r.status_code == 200
    got = r.json()
    orders = bought.orders[customer_id]
    assert got["orders"] == len(orders)
    assert got["purchase_days"] == len(bought.days(customer_id))
    assert Decimal(got["revenue"]) == sum(t for _, t, _ in orders)
    assert got["recency_days"] == (AS_OF - bought.days(customer_id)[-1]).days
    assert got["segment"] in rfm.SEGMENTS
    assert got["purchase_probability"] + got["churn_risk"] == pytest.approx(1.0)
    assert 0 < got["p_alive"] <= 1
    assert Decimal(got["clv"]) > 0


def test_customers_sort_by_clv_and_filter_by_segment(
    client: TestClient, analyst: Headers, run_id: int
) -> None:
    r = client.get("/api/v1/analytics/rfm?sort=-clv&limit=20", headers=analyst)
    clv = [Decimal(c["clv"]) for c in r.json()["items"]]
    assert clv == sorted(clv, reverse=True) and len(clv) == 20

    r = client.get("/api/v1/analytics/rfm?segment=champions&limit=500", headers=analyst)
    segments = client.get("/api/v1/analytics/segments", headers=analyst).json()["segments"]
    champions = next(s for s in segments if s["segment"] == "champions")
    assert len(r.json()["items"]) == champions["customers"] > 0

    r = client.get("/api/v1/analytics/rfm?segment=royalty", headers=analyst)
    assert r.status_code == 422


def test_segments_cover_every_customer_once(
    client: TestClient, analyst: Headers, bought: Bought, run_id: int
) -> None:
    body = client.get("/api/v1/analytics/segments", headers=analyst).json()

    buyers = sum(1 for c in bought.orders if bought.days(c))
    assert sum(s["customers"] for s in body["segments"]) == buyers
    assert sum(cell["customers"] for cell in body["grid"]) == buyers
    assert len(body["rules"]) == len(rfm.SEGMENT_RULES)


def test_products_bought_together_count_the_baskets(
    client: TestClient, analyst: Headers, bought: Bought, session: Session, run_id: int
) -> None:
    ids = {p.sku: p.id for p in session.query(Product)}

    r = client.get(f"/api/v1/analytics/products/{ids['tea']}/together", headers=analyst)

    assert r.status_code == 200
    first = r.json()["items"][0]
    assert first["name"] == "honey"
    both = sum(
        1 for o in bought.orders.values() for _, _, items in o if set(items) == {"tea", "honey"}
    )
    tea = sum(1 for o in bought.orders.values() for _, _, items in o if "tea" in items)
    assert first["baskets"] == both
    assert first["confidence"] == pytest.approx(both / tea)


def test_a_product_never_sold_is_a_clear_404(
    client: TestClient, analyst: Headers, session: Session, run_id: int
) -> None:
    with session.begin():
        caviar = Product(sku="caviar", name="caviar", unit_price=Decimal(99), currency="EUR")
        session.add(caviar)
    r = client.get(f"/api/v1/analytics/products/{caviar.id}/together", headers=analyst)

    assert r.status_code == 404
    assert r.json()["type"] == "urn:tenure:problem:product-never-sold"
    assert (
        client.get("/api/v1/analytics/products/999999/together", headers=analyst).status_code == 404
    )


def test_recommendations_leave_out_what_the_customer_bought(
    client: TestClient, analyst: Headers, bought: Bought, run_id: int
) -> None:
    customer_id = next(c for c, o in bought.orders.items() if o)
    owned = {item for _, _, items in bought.orders[customer_id] for item in items}

    r = client.get(
        f"/api/v1/analytics/customers/{customer_id}/recommendations?k=3", headers=analyst
    )

    assert r.status_code == 200
    names = [item["name"] for item in r.json()["items"]]
    assert names and not set(names) & owned
    assert len(names) == min(3, 8 - len(owned))


def test_rules_clusters_clv_churn_and_models_are_served(
    client: TestClient, analyst: Headers, run_id: int
) -> None:
    rules = client.get("/api/v1/analytics/rules", headers=analyst).json()["items"]
    assert rules and [r["lift"] for r in rules] == sorted((r["lift"] for r in rules), reverse=True)
    clusters = client.get("/api/v1/analytics/clusters", headers=analyst).json()
    assert clusters["k"] == len(clusters["clusters"]) >= 2
    clv = client.get("/api/v1/analytics/clv", headers=analyst).json()
    assert set(clv["bgnbd"]["params"]) == {"r", "alpha", "a", "b"}
    assert set(clv["gamma_gamma"]["params"]) == {"p", "q", "gamma"}
    churn = client.get("/api/v1/analytics/churn", headers=analyst).json()["churn"]
    assert set(churn["models"]) == {
        "logistic_regression", "decision_tree", "gradient_boosting", "bgnbd_p_alive"
    }  # fmt: skip
    models = client.get("/api/v1/analytics/models", headers=analyst).json()["items"]
    assert [(m["kind"], m["version"]) for m in models] == [(churn["chosen"], 1)]
    assert churn["model_version"] == 1


def test_a_second_run_versions_the_model_again(
    client: TestClient, analyst: Headers, sessions: sessionmaker[Session], run_id: int
) -> None:
    second = _run(sessions)

    models = client.get("/api/v1/analytics/models", headers=analyst).json()["items"]
    assert [m["version"] for m in models] == [2, 1]
    assert models[0]["run_id"] == second
    runs = client.get("/api/v1/analytics/runs", headers=analyst).json()["items"]
    assert [r["id"] for r in runs] == [second, run_id]


def test_every_table_exports_as_csv(
    client: TestClient, analyst: Headers, bought: Bought, run_id: int
) -> None:
    r = client.get("/api/v1/analytics/export/customers.csv", headers=analyst)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert f"analytics-{run_id}-customers.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == sum(1 for c in bought.orders if bought.days(c))
    assert {"customer_id", "segment", "clv", "churn_risk"} <= set(rows[0])
    for table in ("rules", "segments", "clusters", "statistics", "models"):
        r = client.get(f"/api/v1/analytics/export/{table}.csv", headers=analyst)
        assert r.status_code == 200, table
        assert len(r.text.splitlines()) > 1, table
    assert client.get("/api/v1/analytics/export/nope.csv", headers=analyst).status_code == 404


def _rate(sessions: sessionmaker[Session], ratings: dict[int, list[int]], at: datetime) -> None:
    """Resolved tickets with these satisfaction ratings, per customer, rated at ``at``."""
    with unit_of_work(sessions) as s:
        for customer_id, given in ratings.items():
            for rating in given:
                ticket = desk_service.create(
                    session=s,
                    data=TicketCreate(
                        customer_id=customer_id,
                        type="feedback",
                        subject="How was it",
                        description=".",
                    ),
                    scope=EVERYTHING,
                    actor_id=None,
                    hours=sla.hours_of(Settings()),
                )
                ticket.status, ticket.resolved_at = "resolved", at
                ticket.satisfaction_rating, ticket.satisfaction_at = rating, at


def test_statistics_hold_satisfaction_overall_and_per_segment(
    client: TestClient, analyst: Headers, bought: Bought, sessions: sessionmaker[Session]
) -> None:
    buyers = sorted(c for c in bought.orders if bought.days(c))
    given = {buyers[0]: [5, 4], buyers[1]: [1], buyers[2]: [3, 5, 2], buyers[3]: [4]}
    _rate(sessions, given, datetime(2024, 6, 1, tzinfo=UTC))
    _rate(sessions, {buyers[4]: [1]}, datetime(2024, 7, 15, tzinfo=UTC))  # after the run's date
    run_id = _run(sessions)

    body = client.get("/api/v1/analytics/statistics", headers=analyst).json()

    everything = [r for rs in given.values() for r in rs]
    overall = body["satisfaction"]["overall"]
    assert overall["n"] == len(everything) == 7
    assert Decimal(overall["mean"]) == round(Decimal(sum(everything)) / 7, 4)
    assert Decimal(overall["median"]) == Decimal(statistics.median(everything))
    assert float(overall["std"]) == pytest.approx(statistics.stdev(everything), abs=1e-4)
    # Per segment: the ratings of the customers the run put in each segment.
    segment_of = {
        c["customer_id"]: c["segment"]
        for c in client.get("/api/v1/analytics/rfm", params={"limit": 500}, headers=analyst).json()[
            "items"
        ]
    }
    expected: dict[str, list[int]] = {}
    for customer_id, rs in given.items():
        expected.setdefault(segment_of[customer_id], []).extend(rs)
    by_segment = body["satisfaction"]["by_segment"]
    assert {k: v["n"] for k, v in by_segment.items()} == {k: len(v) for k, v in expected.items()}
    for name, rs in expected.items():
        assert Decimal(by_segment[name]["mean"]) == round(Decimal(sum(rs)) / len(rs), 4)
    # And one customer's own ratings, as they are now.
    r = client.get(f"/api/v1/analytics/customers/{buyers[2]}", headers=analyst).json()
    assert (r["satisfaction"]["count"], r["satisfaction"]["mean"]) == (
        3,
        pytest.approx(10 / 3, abs=1e-4),
    )
    assert run_id


def test_a_run_without_purchases_is_too_little_history(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(TooLittleHistory, match="no purchased orders yet"):
        _run(sessions)


def test_a_run_on_a_future_date_or_unknown_period_is_refused(
    sessions: sessionmaker[Session], bought: Bought
) -> None:
    with pytest.raises(CutoffInFuture):
        _run(sessions, analytics_run.RunOptions(as_of=date(2024, 7, 2)))
    with pytest.raises(InvalidInput, match="period must be one of"):
        _run(sessions, analytics_run.RunOptions(as_of=AS_OF, period="fortnight"))


def test_a_run_with_little_history_skips_what_cannot_be_fitted(
    shop: Shop, sessions: sessionmaker[Session]
) -> None:
    simulate(shop, 8, seed=1)

    run_id = _run(sessions)

    with unit_of_work(sessions, write=False) as s:
        from tenure.analytics import service

        skipped = service.get_run(session=s, run_id=run_id).results["skipped"]
    assert set(skipped) >= {"lifetime", "churn", "clusters"}
    assert "at least 20 customers" in skipped["lifetime"]
