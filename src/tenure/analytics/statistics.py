"""Descriptive statistics of customers: order count, revenue, average order value and
purchase interval, overall and per group.

Money is described exactly: revenue arrives as integer 1/10,000 units, so the mean, the
median and the (sample) variance are ratios of integers, turned into ``Decimal`` once at
the end; only the standard deviation takes a square root (in 28-digit ``Decimal``). A
customer's average order value is their revenue over their orders rounded half-even to
1/10,000 (the precision money is stored at), then described the same way. Purchase
intervals are not money: they are described in floating point.
Variance and standard deviation are the sample ones (divided by n - 1); both are None
for fewer than two values.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tenure.analytics.activity import Activity
from tenure.core.money import SCALE, quantize

PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Summary:
    """n, mean, median, sample variance and standard deviation of one figure."""

    n: int
    mean: Decimal | None
    median: Decimal | None
    variance: Decimal | None
    std: Decimal | None

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}


def _decimal(value: Fraction) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 28
        return Decimal(value.numerator) / Decimal(value.denominator)


def describe_integers(values: NDArray[np.int64], *, unit: Fraction = Fraction(1)) -> Summary:
    """Exact summary of integers (counts, days, money units) without Fractions per value:
    the median from a numpy sort, the sums in numpy where they cannot overflow 64 bits and
    in Python integers where they could."""
    n = len(values)
    if n == 0:
        return Summary(0, None, None, None, None)
    ordered = np.sort(values)
    middle = n // 2
    median = (
        Fraction(int(ordered[middle]))
        if n % 2
        else Fraction(int(ordered[middle - 1]) + int(ordered[middle]), 2)
    )
    largest = max(abs(int(ordered[0])), abs(int(ordered[-1])))
    as_ints: list[int] | None = None
    if n * largest < 2**62:
        total = int(values.sum())
    else:
        as_ints = values.tolist()
        total = sum(as_ints)
    mean = Fraction(total, n)
    if n < 2:
        return Summary(n, _decimal(mean * unit), _decimal(median * unit), None, None)
    if n * largest * largest < 2**62:
        squares = int(np.dot(values, values))
    else:
        as_ints = as_ints if as_ints is not None else values.tolist()
        squares = sum(map(operator.mul, as_ints, as_ints))
    variance = Fraction(n * squares - total * total, n * (n - 1))
    with localcontext() as ctx:
        ctx.prec = 28
        std = _decimal(variance * unit * unit).sqrt()
    return Summary(
        n, _decimal(mean * unit), _decimal(median * unit), _decimal(variance * unit**2), std
    )


def describe_floats(values: NDArray[np.float64]) -> Summary:
    """Summary of floating-point figures (float64; reported to 4 decimals)."""
    n = len(values)
    if n == 0:
        return Summary(0, None, None, None, None)

    def d(v: float) -> Decimal:
        return Decimal(repr(float(v)))

    if n < 2:
        return Summary(n, d(values.mean()), d(np.median(values)), None, None)
    variance = float(values.var(ddof=1))
    return Summary(
        n, d(values.mean()), d(np.median(values)), d(variance), d(float(np.sqrt(variance)))
    )


def rounded_ratio(
    numerator: NDArray[np.int64], denominator: NDArray[np.int64]
) -> NDArray[np.int64]:
    """numerator / denominator rounded half-even to an integer, exactly (no floats)."""
    quotient, remainder = np.divmod(numerator, denominator)
    twice = 2 * remainder
    up = (twice > denominator) | ((twice == denominator) & (quotient % 2 == 1))
    result: NDArray[np.int64] = quotient + up.astype(np.int64)
    return result


def _money(summary: Summary, currency: str) -> Summary:
    def q(v: Decimal | None) -> Decimal | None:
        return None if v is None else quantize(v, currency)

    variance = None if summary.variance is None else summary.variance.quantize(PLACES)
    return Summary(summary.n, q(summary.mean), q(summary.median), variance, q(summary.std))


def _plain(summary: Summary) -> Summary:
    def q(v: Decimal | None) -> Decimal | None:
        return None if v is None else v.quantize(PLACES)

    return Summary(
        summary.n, q(summary.mean), q(summary.median), q(summary.variance), q(summary.std)
    )


@dataclass(frozen=True)
class CustomerStatistics:
    """The descriptive statistics of a group of customers (money in ``currency``)."""

    customers: int
    orders: Summary
    purchase_days: Summary
    revenue: Summary
    average_order_value: Summary
    purchase_interval_days: Summary

    def to_json(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            **{
                name: getattr(self, name).to_json()
                for name in (
                    "orders",
                    "purchase_days",
                    "revenue",
                    "average_order_value",
                    "purchase_interval_days",
                )
            },
        }


def describe(activity: Activity, mask: NDArray[np.bool_] | None = None) -> CustomerStatistics:
    """Statistics of the customers of ``activity`` (those in ``mask`` when given).

    Average order value is each customer's revenue over their orders; purchase interval is
    each repeat customer's mean gap between purchase days, (last - first) / (days - 1)."""
    a = activity if mask is None else activity.select(mask)
    money_unit = Fraction(1, SCALE)
    aov = rounded_ratio(a.revenue_units, a.orders)
    repeat = a.days > 1
    intervals = (a.last_day[repeat] - a.first_day[repeat]) / (a.days[repeat] - 1.0)
    return CustomerStatistics(
        customers=a.size,
        orders=_plain(describe_integers(a.orders)),
        purchase_days=_plain(describe_integers(a.days)),
        revenue=_money(describe_integers(a.revenue_units, unit=money_unit), a.currency),
        average_order_value=_money(describe_integers(aov, unit=money_unit), a.currency),
        purchase_interval_days=_plain(describe_floats(intervals.astype(np.float64))),
    )


def describe_groups(
    activity: Activity, labels: NDArray[Any], names: Mapping[Any, str] | None = None
) -> dict[str, CustomerStatistics]:
    """Statistics per group: ``labels`` holds each customer's group."""
    groups: dict[str, CustomerStatistics] = {}
    for label in sorted(set(labels.tolist()), key=str):
        name = names[label] if names is not None else str(label)
        groups[name] = describe(activity, labels == label)
    return groups


def satisfaction(
    activity: Activity,
    customer_ids: NDArray[np.int64],
    ratings: NDArray[np.int64],
    groupings: Mapping[str, NDArray[Any]],
) -> dict[str, Any]:
    """CSAT (1-5) summaries: overall over every rating, and per group of each grouping
    (``groupings`` name label arrays parallel to ``activity``'s customers) over the
    ratings of that group's customers. Customers who rated but never bought are in the
    overall figures only."""
    found = np.searchsorted(activity.customer_id, customer_ids)
    inside = found < activity.size
    inside[inside] = activity.customer_id[found[inside]] == customer_ids[inside]
    at, rated = found[inside], ratings[inside]
    result: dict[str, Any] = {"overall": _plain(describe_integers(ratings)).to_json()}
    for name, labels in groupings.items():
        of_rating = labels[at]
        result[f"by_{name}"] = {
            str(label): _plain(describe_integers(rated[of_rating == label])).to_json()
            for label in sorted(set(of_rating.tolist()), key=str)
        }
    return result
