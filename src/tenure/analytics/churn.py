"""Churn and purchase probability: supervised models on features as of a cutoff.

The label of a customer at a cutoff is whether they buy (on at least one day) within the
next ``horizon_days``. Validation is by time: models learn at the cutoff
``as_of - 2 * horizon`` (labels from the horizon after it) and are scored at
``as_of - horizon`` (labels up to ``as_of``), so no test label is ever seen in training.
The model chosen (lowest Brier score on the test cutoff: it rewards probabilities that
are both sharp and calibrated) is then refitted at ``as_of - horizon`` and applied to the
customers as of ``as_of``: ``purchase_probability``, and ``churn_risk`` = 1 minus it.

On large histories models learn on a seeded random sample of at most
``MAX_TRAINING_CUSTOMERS`` customers and their test metrics are measured on a seeded
sample of at most ``MAX_EVALUATION_CUSTOMERS`` (200,000 each: the metrics' sampling error
is then in the third decimal); the chosen model still scores every customer.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sqlalchemy.orm import Session

from tenure.analytics import activity as activity_data
from tenure.analytics.activity import Activity, History
from tenure.analytics.errors import TooLittleHistory

FloatArray = NDArray[np.float64]
RECENT_DAYS = 90
MAX_TRAINING_CUSTOMERS = 200_000
MAX_EVALUATION_CUSTOMERS = 200_000
MIN_CUSTOMERS = 50
MIN_PER_CLASS = 10
CALIBRATION_BINS = 10
ROC_POINTS = 200
FEATURES = (
    "recency_days",
    "purchase_days",
    "orders",
    "log_revenue",
    "log_spend_per_day",
    "age_days",
    f"purchase_days_last_{RECENT_DAYS}",
    "mean_interval_days",
)


@dataclass(frozen=True)
class Snapshot:
    """Customers as of a cutoff: their history, recent purchase days, and (when the
    future is known) whether they bought within the horizon after it."""

    cutoff: date
    activity: Activity
    recent_days: NDArray[np.int64]
    label: NDArray[np.bool_] | None


def _aligned(
    ids: NDArray[np.int64], other: Activity, values: NDArray[np.int64]
) -> NDArray[np.int64]:
    """``values`` of ``other``'s customers placed at ``ids`` (0 for those absent)."""
    out = np.zeros(len(ids), dtype=np.int64)
    position = np.searchsorted(ids, other.customer_id)
    inside = position < len(ids)
    found = inside & (ids[np.minimum(position, len(ids) - 1)] == other.customer_id)
    out[position[found]] = values[found]
    return out


def snapshot(
    *, session: Session, currency: str, cutoff: date, horizon_days: int | None
) -> Snapshot:
    """Load the customers as of ``cutoff`` (and their label when ``horizon_days`` is given)."""
    end = cutoff + timedelta(days=horizon_days or 0)
    history = activity_data.load_history(session=session, currency=currency, as_of=end)
    return snapshot_of(history, cutoff=cutoff, horizon_days=horizon_days)


def snapshot_of(history: History, *, cutoff: date, horizon_days: int | None) -> Snapshot:
    """The customers as of ``cutoff`` cut out of ``history`` (which must reach the end of
    the horizon when ``horizon_days`` is given)."""
    past = history.activity(cutoff)
    recent = history.activity(cutoff, since=cutoff - timedelta(days=RECENT_DAYS - 1))
    label = None
    if horizon_days is not None:
        future = history.activity(
            cutoff + timedelta(days=horizon_days), since=cutoff + timedelta(days=1)
        )
        label = _aligned(past.customer_id, future, future.days) > 0
    return Snapshot(cutoff, past, _aligned(past.customer_id, recent, recent.days), label)


def features(s: Snapshot) -> FloatArray:
    """The feature matrix, one row per customer, columns as ``FEATURES``."""
    a = s.activity
    revenue = a.revenue_units / 10_000
    span = (a.last_day - a.first_day).astype(np.float64)
    interval = np.where(a.days > 1, span / np.maximum(a.days - 1, 1), a.age_days + 1.0)
    matrix: FloatArray = np.column_stack(
        [
            a.recency_days,
            a.days,
            a.orders,
            np.log1p(np.maximum(revenue, 0)),
            np.log1p(np.maximum(revenue / a.days, 0)),
            a.age_days,
            s.recent_days,
            interval,
        ]
    ).astype(np.float64)
    return matrix


def candidates(seed: int = 0) -> dict[str, ClassifierMixin]:
    """The models compared, untrained."""
    return {
        "logistic_regression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=1000, C=1.0)
        ),
        "decision_tree": DecisionTreeClassifier(
            max_depth=6, min_samples_leaf=50, random_state=seed
        ),
        "gradient_boosting": HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=seed
        ),
    }


def calibration_table(
    label: NDArray[np.bool_], probability: FloatArray, bins: int = CALIBRATION_BINS
) -> list[dict[str, Any]]:
    """Per equal-width bin of predicted probability: customers, mean predicted, observed rate."""
    which = np.minimum((probability * bins).astype(np.int64), bins - 1)
    table = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        table.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "customers": n,
                "mean_predicted": float(probability[inside].mean()) if n else None,
                "observed_rate": float(label[inside].mean()) if n else None,
            }
        )
    return table


def roc_points(
    label: NDArray[np.bool_], probability: FloatArray, most: int = ROC_POINTS
) -> dict[str, list[float]]:
    """The ROC curve (false and true positive rates), thinned to at most ``most`` points
    (the ends kept) so that it can be stored with the run and drawn."""
    fpr, tpr, _thresholds = roc_curve(label, probability)
    if len(fpr) > most:
        keep = np.unique(np.linspace(0, len(fpr) - 1, most).round().astype(np.int64))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [round(float(v), 4) for v in fpr], "tpr": [round(float(v), 4) for v in tpr]}


def metrics(label: NDArray[np.bool_], probability: FloatArray) -> dict[str, Any]:
    """ROC AUC, PR AUC (average precision), Brier score, base rate, calibration table and
    the ROC curve."""
    return {
        "roc_auc": float(roc_auc_score(label, probability)),
        "pr_auc": float(average_precision_score(label, probability)),
        "brier": float(brier_score_loss(label, probability)),
        "base_rate": float(label.mean()),
        "customers": len(label),
        "calibration": calibration_table(label, probability),
        "roc_curve": roc_points(label, probability),
    }


def _check(s: Snapshot, role: str) -> NDArray[np.bool_]:
    assert s.label is not None
    positives = int(s.label.sum())
    negatives = len(s.label) - positives
    if len(s.label) < MIN_CUSTOMERS or min(positives, negatives) < MIN_PER_CLASS:
        raise TooLittleHistory(
            f"Churn models need, at the {role} cutoff {s.cutoff.isoformat()}, at least "
            f"{MIN_CUSTOMERS} customers with {MIN_PER_CLASS} who bought in the horizon after "
            f"it and {MIN_PER_CLASS} who did not; there are {len(s.label)} customers, "
            f"{positives} who bought. Use a shorter horizon or a later cutoff."
        )
    return s.label


def _subsample(n: int, seed: int, most: int = MAX_TRAINING_CUSTOMERS) -> NDArray[np.int64] | slice:
    if n <= most:
        return slice(None)
    rng = np.random.default_rng(seed)
    chosen: NDArray[np.int64] = np.sort(rng.choice(n, most, replace=False))
    return chosen


def _rows(s: Snapshot, rows: NDArray[np.int64] | slice) -> Snapshot:
    if isinstance(rows, slice):
        return s
    mask = np.zeros(s.activity.size, dtype=bool)
    mask[rows] = True
    return Snapshot(
        s.cutoff,
        s.activity.select(mask),
        s.recent_days[mask],
        None if s.label is None else s.label[mask],
    )


def _fit(model: ClassifierMixin, s: Snapshot, seed: int) -> ClassifierMixin:
    label = _check(s, "training")
    rows = _subsample(len(label), seed)
    fitted = clone(model)
    fitted.fit(features(s)[rows], label[rows])
    return fitted


def probability(model: ClassifierMixin, s: Snapshot) -> FloatArray:
    """P(buys within the horizon) for each customer of ``s``."""
    if s.activity.size == 0:
        return np.zeros(0)
    result: FloatArray = model.predict_proba(features(s))[:, 1]
    return result


@dataclass(frozen=True)
class Evaluation:
    """Test metrics per model (and the BG/NBD P(alive) baseline), and the chosen model
    refitted on the latest labelled cutoff."""

    metrics: dict[str, dict[str, Any]]
    chosen: str
    model: ClassifierMixin

    def model_bytes(self) -> bytes:
        return pickle.dumps(self.model)


def evaluate(
    train: Snapshot, test: Snapshot, *, baseline: FloatArray | None = None, seed: int = 0
) -> Evaluation:
    """Train each candidate at ``train``'s cutoff, score it at ``test``'s (on a seeded
    sample of ``MAX_EVALUATION_CUSTOMERS`` when there are more), choose by Brier score and
    refit the chosen one at ``test``'s cutoff."""
    _check(test, "test")
    rows = _subsample(test.activity.size, seed + 1, MAX_EVALUATION_CUSTOMERS)
    scored = _rows(test, rows)
    assert scored.label is not None
    test_label = scored.label
    results: dict[str, dict[str, Any]] = {}
    for name, model in candidates(seed).items():
        fitted = _fit(model, train, seed)
        results[name] = metrics(test_label, probability(fitted, scored))
    chosen = min(results, key=lambda name: results[name]["brier"])
    if baseline is not None:
        results["bgnbd_p_alive"] = metrics(test_label, baseline[rows])
    final = _fit(candidates(seed)[chosen], test, seed)
    return Evaluation(results, chosen, final)
