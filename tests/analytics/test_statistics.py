"""Descriptive statistics against Python's own ``statistics`` module on exact values."""

from __future__ import annotations

import random
import statistics as py
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np

from tenure.analytics import statistics
from tenure.analytics.activity import Activity


def _activity(orders: list[int], days: list[int], spans: list[int], units: list[int]) -> Activity:
    n = len(orders)
    first = np.full(n, 19_000, dtype=np.int64)
    return Activity(
        date(2024, 1, 1),
        "EUR",
        np.arange(1, n + 1, dtype=np.int64),
        np.array(orders, dtype=np.int64),
        np.array(days, dtype=np.int64),
        first,
        first + np.array(spans, dtype=np.int64),
        np.array(units, dtype=np.int64),
        np.array(units, dtype=np.int64),
    )


def _expected(values: list[Fraction]) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    with localcontext() as ctx:
        ctx.prec = 40
        mean = py.mean(values)
        variance = py.variance(values)
        as_decimal = [Decimal(v.numerator) / Decimal(v.denominator) for v in values]
        std = py.stdev(as_decimal)
        return (
            Decimal(mean.numerator) / Decimal(mean.denominator),
            Decimal(py.median(values).numerator) / Decimal(py.median(values).denominator),
            Decimal(variance.numerator) / Decimal(variance.denominator),
            std,
        )


def test_integer_summary_is_exact() -> None:
    rng = random.Random(3)
    values = [rng.randrange(0, 10**9) for _ in range(1001)]

    got = statistics.describe_integers(np.array(values, dtype=np.int64))

    mean, median, variance, std = _expected([Fraction(v) for v in values])
    assert got.n == 1001
    assert got.mean == +mean  # + rounds to the 28 digits both work in
    assert got.median == median
    with localcontext() as ctx:
        ctx.prec = 28
        assert got.variance == +variance
        assert abs(got.std - std) <= Decimal("1e-18") * std  # type: ignore[operator]


def test_money_statistics_are_exact_in_the_currency() -> None:
    # Revenue 10.00, 20.05, 33.3333 and 0.01: sums, squares and halves of cents exactly.
    units = [100_000, 200_500, 333_333, 100]
    a = _activity([1, 2, 3, 1], [1, 2, 2, 1], [0, 10, 31, 0], units)

    got = statistics.describe(a)

    values = [Fraction(u, 10_000) for u in units]
    mean, median, variance, std = _expected(values)
    assert got.customers == 4
    assert got.revenue.mean == mean.quantize(Decimal("0.01"))
    assert got.revenue.median == median.quantize(Decimal("0.01"))
    assert got.revenue.variance == variance.quantize(Decimal("0.0001"))
    assert got.revenue.std == std.quantize(Decimal("0.01"))
    # Average order value: 10.00, 10.025 -> 10.0250, 11.1111, 0.01 (to 1/10,000).
    aov = [Fraction(10), Fraction(10025, 1000), Fraction(111111, 10000), Fraction(1, 100)]
    aov_mean, aov_median, _, _ = _expected(aov)
    assert got.average_order_value.mean == aov_mean.quantize(Decimal("0.01"))
    assert got.average_order_value.median == aov_median.quantize(Decimal("0.01"))
    assert got.orders.mean == Decimal("1.7500")
    assert got.orders.median == Decimal("1.5000")
    # Purchase intervals of the two repeat customers: 10 / 1 and 31 / 1 days.
    assert got.purchase_interval_days.n == 2
    assert got.purchase_interval_days.mean == Decimal("20.5000")
    assert got.purchase_interval_days.variance == Decimal("220.5000")


def test_average_order_value_rounds_half_even() -> None:
    got = statistics.rounded_ratio(
        np.array([5, 15, 7, -5, 10], dtype=np.int64), np.array([2, 2, 2, 2, 4], dtype=np.int64)
    )

    assert got.tolist() == [2, 8, 4, -2, 2]


def test_one_customer_has_no_variance_and_none_has_no_mean() -> None:
    one = statistics.describe(_activity([2], [1], [0], [5_000]))
    none = statistics.describe(_activity([], [], [], []))

    assert one.revenue.mean == Decimal("0.50")
    assert one.revenue.variance is None and one.revenue.std is None
    assert none.customers == 0 and none.revenue.mean is None


def test_groups_are_described_separately() -> None:
    a = _activity([1, 2, 3], [1, 2, 3], [0, 5, 10], [10_000, 20_000, 30_000])

    groups = statistics.describe_groups(a, np.array(["x", "y", "x"]))

    assert list(groups) == ["x", "y"]
    assert groups["x"].revenue.mean == Decimal("2.00")
    assert groups["y"].orders.mean == Decimal("2.0000")
