"""Clusters: well-separated groups are found, numbered by value and described in words."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from tenure.analytics import clusters
from tenure.analytics.activity import Activity, day_number
from tenure.analytics.errors import TooLittleHistory

AS_OF = date(2024, 6, 30)


def _groups(sizes: tuple[int, int, int], seed: int = 0) -> Activity:
    rng = np.random.default_rng(seed)
    # (recency days, purchase days, revenue): champions, a middle group, long gone.
    centres = [(3, 20, 2000.0), (60, 5, 200.0), (300, 1, 20.0)]
    recency, days, revenue = [], [], []
    for (r, d, m), n in zip(centres, sizes, strict=True):
        noise = rng.lognormal(0, 0.15, (n, 3))
        recency += list(np.round(r * noise[:, 0]))
        days += list(np.maximum(1, np.round(d * noise[:, 1])))
        revenue += list(np.round(m * noise[:, 2] * 10_000))
    n = sum(sizes)
    last = day_number(AS_OF) - np.array(recency, dtype=np.int64)
    counts = np.array(days, dtype=np.int64)
    return Activity(
        AS_OF,
        "EUR",
        np.arange(1, n + 1, dtype=np.int64),
        counts,
        counts,
        last - 10 * counts,
        last,
        np.array(revenue, dtype=np.int64),
        np.array(revenue, dtype=np.int64),
    )


def test_three_separate_groups_are_three_clusters_described_in_words() -> None:
    a = _groups((300, 400, 500))

    got = clusters.cluster(a)

    assert got.k == 3
    assert max(got.silhouette, key=lambda k: got.silhouette[k]) == 3
    assert [c.customers for c in got.clusters] == [300, 400, 500]
    assert got.labels.tolist() == [0] * 300 + [1] * 400 + [2] * 500
    best, _, gone = got.clusters
    assert best.description.startswith("Bought recently, buy often, spend a lot.")
    assert gone.description.startswith(
        "Have not bought for a long time, bought on one day or few, spend little."
    )
    assert best.median_purchase_days == pytest.approx(20, abs=2)
    assert sum(c.share for c in got.clusters) == pytest.approx(1.0)


def test_too_few_customers_are_not_clustered() -> None:
    with pytest.raises(TooLittleHistory, match="at least 40 customers"):
        clusters.cluster(_groups((10, 10, 10)))
