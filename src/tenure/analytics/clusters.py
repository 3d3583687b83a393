"""Clusters: k-means on standardised log recency, frequency and monetary value, with k
chosen by the silhouette score, and each cluster described in words.

k-means is fitted on at most 100,000 customers (a seeded sample) and then assigns every
customer; the silhouette score of each k is measured on at most 5,000 of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from tenure.analytics.activity import Activity
from tenure.analytics.errors import TooLittleHistory

K_RANGE = range(2, 9)
MAX_FIT = 100_000
SILHOUETTE_SAMPLE = 5_000

_WORDS = {
    "recency": ("bought recently", "last bought a while ago", "have not bought for a long time"),
    "frequency": ("bought on one day or few", "buy now and then", "buy often"),
    "monetary": ("spend little", "spend a moderate amount", "spend a lot"),
}


@dataclass(frozen=True)
class Cluster:
    cluster: int
    customers: int
    share: float
    median_recency_days: float
    median_purchase_days: float
    median_revenue: float
    description: str
    # Where the medians sit among all customers (0 lowest, 1 middle, 2 highest third), per
    # "recency", "frequency" and "monetary": the words of the description, for translating.
    levels: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Clustering:
    k: int
    silhouette: dict[int, float]
    labels: NDArray[np.int64]
    clusters: list[Cluster]

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "silhouette": {str(k): v for k, v in self.silhouette.items()},
            "clusters": [c.to_json() for c in self.clusters],
        }


def rfm_features(a: Activity) -> NDArray[np.float64]:
    """log(1 + recency days), log(1 + purchase days), log(1 + revenue) per customer."""
    revenue = np.maximum(a.revenue_units, 0) / 10_000
    matrix: NDArray[np.float64] = np.log1p(
        np.column_stack([a.recency_days, a.days, revenue]).astype(np.float64)
    )
    return matrix


def _level(value: float, population: NDArray[np.float64]) -> int:
    low, high = np.quantile(population, [1 / 3, 2 / 3])
    if value < low or (value == low and low < high):
        return 0
    return 2 if value > high else 1


def levels_of(values: dict[str, NDArray[np.float64]], inside: NDArray[np.bool_]) -> dict[str, int]:
    """The third (0, 1, 2) each median of the customers ``inside`` falls in among everyone's."""
    return {name: _level(float(np.median(values[name][inside])), values[name]) for name in _WORDS}


def describe_cluster(
    values: dict[str, NDArray[np.float64]], inside: NDArray[np.bool_], currency: str
) -> str:
    """Plain words for the customers ``inside``: how their medians sit among everyone's."""
    levels = levels_of(values, inside)
    parts = [words[levels[name]] for name, words in _WORDS.items()]
    recency = np.median(values["recency"][inside])
    days = np.median(values["frequency"][inside])
    revenue = np.median(values["monetary"][inside])
    return (
        f"{', '.join(parts).capitalize()}. Typically last bought {recency:,.0f} days ago, "
        f"on {days:,.0f} day{'s' if days != 1 else ''}, spending {revenue:,.2f} {currency} "
        "in all."
    )


def cluster(a: Activity, *, seed: int = 0, k_range: range = K_RANGE) -> Clustering:
    """Cluster the customers of ``a``; ``TooLittleHistory`` with too few of them."""
    if a.size < max(k_range) * 5:
        raise TooLittleHistory(
            f"Clustering needs at least {max(k_range) * 5} customers; there are {a.size}."
        )
    scaled = StandardScaler().fit_transform(rfm_features(a))
    rng = np.random.default_rng(seed)
    fit_rows = (
        np.sort(rng.choice(a.size, MAX_FIT, replace=False)) if a.size > MAX_FIT else slice(None)
    )
    sample = (
        fit_rows
        if a.size <= SILHOUETTE_SAMPLE
        else np.sort(rng.choice(a.size, SILHOUETTE_SAMPLE, replace=False))
    )
    models: dict[int, KMeans] = {}
    silhouette: dict[int, float] = {}
    for k in k_range:
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(scaled[fit_rows])
        labels = model.predict(scaled[sample])
        if len(set(labels.tolist())) < 2:
            continue
        models[k] = model
        silhouette[k] = float(silhouette_score(scaled[sample], labels))
    if not silhouette:
        raise TooLittleHistory("The customers are too alike to form two clusters.")
    best = max(silhouette, key=lambda k: (silhouette[k], -k))
    raw = models[best].predict(scaled)
    # Number clusters by value: 0 is the one with the highest median revenue.
    revenue = np.maximum(a.revenue_units, 0) / 10_000
    order = sorted(set(raw.tolist()), key=lambda c: -float(np.median(revenue[raw == c])))
    labels = np.zeros(a.size, dtype=np.int64)
    for new, old in enumerate(order):
        labels[raw == old] = new
    values = {
        "recency": a.recency_days.astype(np.float64),
        "frequency": a.days.astype(np.float64),
        "monetary": revenue,
    }
    described = [
        Cluster(
            c,
            int((labels == c).sum()),
            float((labels == c).mean()),
            float(np.median(values["recency"][labels == c])),
            float(np.median(values["frequency"][labels == c])),
            float(np.median(revenue[labels == c])),
            describe_cluster(values, labels == c, a.currency),
            levels_of(values, labels == c),
        )
        for c in range(len(order))
    ]
    return Clustering(best, silhouette, labels, described)
