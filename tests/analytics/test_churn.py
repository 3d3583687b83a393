"""Churn and purchase probability: metrics against brute-force formulas, snapshots
against the simulated purchase dates, and time-based validation on simulated customers."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy.orm import Session

from tenure.analytics import churn
from tenure.analytics.errors import TooLittleHistory
from tests.analytics.conftest import Shop, simulate

AS_OF = date(2024, 6, 30)
HORIZON = 60


def _brute_force_roc_auc(label: np.ndarray, score: np.ndarray) -> float:
    pos, neg = score[label], score[~label]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return float(wins / (len(pos) * len(neg)))


def _brute_force_average_precision(label: np.ndarray, score: np.ndarray) -> float:
    total = label.sum()
    ap, recall_before = 0.0, 0.0
    for threshold in sorted(set(score.tolist()), reverse=True):
        chosen = score >= threshold
        precision = label[chosen].sum() / chosen.sum()
        recall = label[chosen].sum() / total
        ap += (recall - recall_before) * precision
        recall_before = recall
    return ap


def test_metrics_match_their_definitions() -> None:
    rng = np.random.default_rng(4)
    label = rng.random(300) < 0.3
    score = np.round(np.clip(0.3 + 0.4 * label + rng.normal(0, 0.25, 300), 0, 1), 2)

    got = churn.metrics(label, score)  # type: ignore[arg-type]  # numpy types np.round() as float16

    assert got["roc_auc"] == pytest.approx(_brute_force_roc_auc(label, score))
    assert got["pr_auc"] == pytest.approx(_brute_force_average_precision(label, score))
    assert got["brier"] == pytest.approx(float(np.mean((score - label) ** 2)))
    table = got["calibration"]
    assert sum(row["customers"] for row in table) == 300
    lowest = score < 0.1
    assert table[0]["customers"] == lowest.sum()
    assert table[0]["observed_rate"] == pytest.approx(label[lowest].mean())
    top = score >= 0.9
    assert table[-1]["customers"] == top.sum()  # 1.0 falls in the last bin
    assert table[-1]["mean_predicted"] == pytest.approx(score[top].mean())


def _simulate(shop: Shop, customers: int, seed: int) -> dict[int, list[date]]:
    bought = simulate(shop, customers, seed)
    return {c: bought.days(c) for c in bought.orders}


def test_a_snapshot_holds_history_recent_days_and_label(shop: Shop, session: Session) -> None:
    bought = _simulate(shop, 60, seed=1)
    cutoff = AS_OF - timedelta(days=HORIZON)

    s = churn.snapshot(session=session, currency="EUR", cutoff=cutoff, horizon_days=HORIZON)

    expected = {c: [d for d in days if d <= cutoff] for c, days in bought.items()}
    expected = {c: days for c, days in expected.items() if days}
    assert s.activity.customer_id.tolist() == sorted(expected)
    assert s.activity.days.tolist() == [len(expected[c]) for c in sorted(expected)]
    recent_start = cutoff - timedelta(days=churn.RECENT_DAYS - 1)
    assert s.recent_days.tolist() == [
        sum(1 for d in expected[c] if d >= recent_start) for c in sorted(expected)
    ]
    assert s.label is not None
    assert s.label.tolist() == [
        any(cutoff < d <= cutoff + timedelta(days=HORIZON) for d in bought[c])
        for c in sorted(expected)
    ]


def test_models_are_validated_on_a_later_cutoff_than_they_learn_on(
    shop: Shop, session: Session
) -> None:
    _simulate(shop, 400, seed=2)
    test_cutoff = AS_OF - timedelta(days=HORIZON)
    train_cutoff = test_cutoff - timedelta(days=HORIZON)
    train = churn.snapshot(
        session=session, currency="EUR", cutoff=train_cutoff, horizon_days=HORIZON
    )
    test = churn.snapshot(session=session, currency="EUR", cutoff=test_cutoff, horizon_days=HORIZON)
    current = churn.snapshot(session=session, currency="EUR", cutoff=AS_OF, horizon_days=None)

    result = churn.evaluate(train, test, baseline=np.full(test.activity.size, 0.5))

    assert set(result.metrics) == {
        "logistic_regression", "decision_tree", "gradient_boosting", "bgnbd_p_alive"
    }  # fmt: skip
    assert result.chosen == min(
        ("logistic_regression", "decision_tree", "gradient_boosting"),
        key=lambda name: result.metrics[name]["brier"],
    )
    # Who bought lately buys again: the chosen model must rank far better than chance.
    assert result.metrics[result.chosen]["roc_auc"] > 0.75
    assert result.metrics["bgnbd_p_alive"]["roc_auc"] == pytest.approx(0.5)
    p = churn.probability(result.model, current)
    assert p.shape == (current.activity.size,)
    assert ((p >= 0) & (p <= 1)).all()


def test_too_few_buyers_in_the_horizon_is_too_little_history(shop: Shop, session: Session) -> None:
    _simulate(shop, 20, seed=3)
    cutoff = AS_OF - timedelta(days=HORIZON)
    s = churn.snapshot(session=session, currency="EUR", cutoff=cutoff, horizon_days=HORIZON)

    with pytest.raises(TooLittleHistory, match="at least 50 customers"):
        churn.evaluate(s, s)
