"""RFM: recency, frequency and monetary value scored 1-5 by quintile, and named segments.

Quintile edges are the 20th, 40th, 60th and 80th percentiles of the customers' values,
interpolated between order statistics (Hyndman and Fan's type 7, numpy's default). A
score is 1 plus the number of edges the value is above; recency is reversed (6 minus
that), so 5 is always best. Ties are never split: customers with the same value get the
same score, even when that leaves a score empty (most customers with a single purchase
day share one frequency score). A value equal to an edge takes the lower score.

Frequency is the number of distinct purchase days; monetary value is the revenue in the
run's currency; recency is days since the last purchase.

Segments read R and FM = round-half-up of (F + M) / 2 from ``SEGMENT_RULES``: the first
rule whose ranges hold both is the customer's segment. The rules cover all 25 cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tenure.analytics.activity import Activity

QUINTILES = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True)
class SegmentRule:
    segment: str
    recency: tuple[int, int]  # inclusive score range
    frequency_monetary: tuple[int, int]
    meaning: str


SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("champions", (5, 5), (4, 5), "bought recently, often and for much"),
    SegmentRule("champions", (4, 4), (5, 5), "bought recently, often and for much"),
    SegmentRule("loyal", (3, 4), (4, 5), "buy often and for much; not the very latest"),
    SegmentRule("potential loyalists", (4, 5), (2, 3), "recent, with a few purchases"),
    SegmentRule("new", (5, 5), (1, 1), "first purchase only just made"),
    SegmentRule("promising", (4, 4), (1, 1), "bought recently, but little so far"),
    SegmentRule("needs attention", (3, 3), (1, 3), "middling on everything: may slip"),
    SegmentRule("can't lose them", (1, 2), (4, 5), "were among the best, gone quiet"),
    SegmentRule("at risk", (1, 2), (3, 3), "bought fairly often, but long ago"),
    SegmentRule("lost", (1, 1), (1, 1), "one small purchase, long ago"),
    SegmentRule("hibernating", (1, 2), (1, 2), "little, and long ago"),
)
SEGMENTS: tuple[str, ...] = tuple(dict.fromkeys(r.segment for r in SEGMENT_RULES))


def quintile_edges(values: NDArray[np.float64] | NDArray[np.int64]) -> NDArray[np.float64]:
    """The four quintile edges of ``values`` (type 7 interpolation)."""
    if len(values) == 0:
        return np.zeros(4)
    edges: NDArray[np.float64] = np.quantile(values.astype(np.float64), QUINTILES)
    return edges


def score(
    values: NDArray[np.float64] | NDArray[np.int64],
    edges: NDArray[np.float64],
    *,
    higher_is_better: bool = True,
) -> NDArray[np.int64]:
    """1-5: one plus the edges ``values`` lie strictly above (reversed when lower is better)."""
    above = (values.astype(np.float64)[:, None] > edges[None, :]).sum(axis=1).astype(np.int64)
    result: NDArray[np.int64] = 1 + above if higher_is_better else 5 - above
    return result


def segment_of(recency: int, frequency_monetary: int) -> str:
    """The segment of one R and FM score by the first matching rule."""
    for rule in SEGMENT_RULES:
        if (
            rule.recency[0] <= recency <= rule.recency[1]
            and rule.frequency_monetary[0] <= frequency_monetary <= rule.frequency_monetary[1]
        ):
            return rule.segment
    raise ValueError(f"no segment for R={recency}, FM={frequency_monetary}")


# Segment names by cell: index 5 * (R - 1) + (FM - 1).
_GRID = np.array([segment_of(r, fm) for r in range(1, 6) for fm in range(1, 6)])


@dataclass(frozen=True)
class RFM:
    """Scores and segments, parallel to the activity's customers."""

    recency_edges: NDArray[np.float64]
    frequency_edges: NDArray[np.float64]
    monetary_edges: NDArray[np.float64]
    recency: NDArray[np.int64]
    frequency: NDArray[np.int64]
    monetary: NDArray[np.int64]
    segment: NDArray[np.str_]

    @property
    def frequency_monetary(self) -> NDArray[np.int64]:
        fm: NDArray[np.int64] = (self.frequency + self.monetary + 1) // 2
        return fm


def compute(activity: Activity) -> RFM:
    """Score every customer of ``activity`` and name their segment."""
    recency_days = activity.recency_days
    edges = (
        quintile_edges(recency_days),
        quintile_edges(activity.days),
        quintile_edges(activity.revenue_units),
    )
    r = score(recency_days, edges[0], higher_is_better=False)
    f = score(activity.days, edges[1])
    m = score(activity.revenue_units, edges[2])
    fm = (f + m + 1) // 2
    return RFM(*edges, r, f, m, _GRID[5 * (r - 1) + (fm - 1)])
