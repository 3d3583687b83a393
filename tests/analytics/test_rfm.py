"""RFM scores against quintile edges worked out by hand, ties, and the segment table."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from tenure.analytics import rfm
from tenure.analytics.activity import Activity


def test_quintile_edges_interpolate_between_order_statistics() -> None:
    # Type 7: the p-quantile of 1..10 is 1 + 9p.
    edges = rfm.quintile_edges(np.arange(1, 11))

    assert edges.tolist() == pytest.approx([2.8, 4.6, 6.4, 8.2])


def test_scores_count_the_edges_a_value_is_above() -> None:
    values = np.arange(1, 11)

    got = rfm.score(values, rfm.quintile_edges(values))

    assert got.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_lower_is_better_reverses_the_score() -> None:
    values = np.arange(1, 11)

    got = rfm.score(values, rfm.quintile_edges(values), higher_is_better=False)

    assert got.tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_ties_share_a_score_and_an_edge_value_takes_the_lower_score() -> None:
    # Sorted: 1 1 1 1 1 1 2 3 4 5 -> edges 1, 1, 1.4, 3.2.
    values = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 5])
    edges = rfm.quintile_edges(values)

    assert edges.tolist() == pytest.approx([1.0, 1.0, 1.4, 3.2])
    assert rfm.score(values, edges).tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    assert rfm.score(np.array([3.2]), edges).tolist() == [4]


def test_every_cell_of_the_grid_has_exactly_the_segment_of_its_first_rule() -> None:
    expected = {
        5: ["new", "potential loyalists", "potential loyalists", "champions", "champions"],
        4: ["promising", "potential loyalists", "potential loyalists", "loyal", "champions"],
        3: ["needs attention", "needs attention", "needs attention", "loyal", "loyal"],
        2: ["hibernating", "hibernating", "at risk", "can't lose them", "can't lose them"],
        1: ["lost", "hibernating", "at risk", "can't lose them", "can't lose them"],
    }

    for r, row in expected.items():
        assert [rfm.segment_of(r, fm) for fm in range(1, 6)] == row
    assert set(rfm.SEGMENTS) == {s for row in expected.values() for s in row}
    assert len(rfm.SEGMENTS) == 10


def test_customers_get_scores_and_segments_from_their_history() -> None:
    n = 10
    as_of = date(2024, 1, 1)
    today = (as_of - date(1970, 1, 1)).days
    days = np.arange(1, n + 1, dtype=np.int64)  # customer i bought on i distinct days
    last = today - (n - days) * 10  # and the more often, the more recently
    a = Activity(
        as_of,
        "EUR",
        np.arange(1, n + 1, dtype=np.int64),
        days,
        days,
        last - 100,
        last,
        days * 10_000,
        days * 10_000,
    )

    got = rfm.compute(a)

    assert got.recency.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert got.frequency.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert got.monetary.tolist() == got.frequency.tolist()
    assert got.segment.tolist() == [
        "lost", "lost", "hibernating", "hibernating", "needs attention", "needs attention",
        "loyal", "loyal", "champions", "champions",
    ]  # fmt: skip
