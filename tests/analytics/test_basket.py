"""Market basket: rules against a brute-force count, the groceries data against the
published arules figures, products bought together, recommendations and hit rate."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import pytest

from tenure.analytics import basket
from tenure.analytics.errors import ProductNeverSold

GROCERIES = Path("/work/shared/data/groceries/groceries.csv")
SMALL = [
    {"bread", "milk"},
    {"bread", "diapers", "beer", "eggs"},
    {"milk", "diapers", "beer", "cola"},
    {"bread", "milk", "diapers", "beer"},
    {"bread", "milk", "diapers", "cola"},
    {"bread", "milk"},
    {"milk", "eggs"},
    {"bread", "diapers", "beer"},
    {"beer", "cola"},
    {"bread", "milk", "eggs", "beer"},
]


def _count(itemset: frozenset[str], baskets: list[set[str]]) -> int:
    return sum(1 for b in baskets if itemset <= b)


def _brute_force_rules(
    baskets: list[set[str]], min_support: float, min_confidence: float
) -> dict[tuple[frozenset[str], frozenset[str]], tuple[float, ...]]:
    n = len(baskets)
    items = sorted(set().union(*baskets))
    found = {}
    for size in range(2, len(items) + 1):
        for combo in combinations(items, size):
            whole = frozenset(combo)
            together = _count(whole, baskets)
            if together / n < min_support or together == 0:
                continue
            for left_size in range(1, size):
                for left in combinations(combo, left_size):
                    x = frozenset(left)
                    y = whole - x
                    confidence = together / _count(x, baskets)
                    if confidence < min_confidence:
                        continue
                    p_y = _count(y, baskets) / n
                    conviction = math.inf if confidence == 1 else (1 - p_y) / (1 - confidence)
                    found[(x, y)] = (
                        together / n,
                        confidence,
                        confidence / p_y,
                        together / n - _count(x, baskets) / n * p_y,
                        conviction,
                    )
    return found


def test_rules_and_their_measures_match_a_brute_force_count() -> None:
    expected = _brute_force_rules(SMALL, 0.2, 0.5)

    rules = basket.mine_rules(SMALL, min_support=0.2, min_confidence=0.5)

    got = {
        (frozenset(r.antecedents), frozenset(r.consequents)): (
            r.support,
            r.confidence,
            r.lift,
            r.leverage,
            math.inf if r.conviction is None else r.conviction,
        )
        for r in rules
    }
    assert set(got) == set(expected)
    for key, values in expected.items():
        assert got[key] == pytest.approx(values), key
    assert [r.lift for r in rules] == sorted((r.lift for r in rules), reverse=True)


def _groceries() -> list[set[str]]:
    baskets: dict[str, set[str]] = defaultdict(set)
    with GROCERIES.open(newline="") as f:
        for row in csv.DictReader(f):
            baskets[row["transaction_id"]].add(row["item"])
    return list(baskets.values())


def test_groceries_give_the_rules_arules_publishes() -> None:
    baskets = _groceries()
    assert len(baskets) == 9835

    rules = basket.mine_rules(baskets, min_support=0.001, min_confidence=0.8)

    # arules: apriori(Groceries, parameter = list(supp = 0.001, conf = 0.8)) -> 410 rules,
    # all with one item on the right; the strongest by lift is
    # {liquor, red/blush wine} => {bottled beer}: support 0.0019, confidence 0.905, lift 11.24.
    single = [r for r in rules if len(r.consequents) == 1]
    assert len(single) == 410
    top = single[0]
    assert (set(top.antecedents), top.consequents) == (
        {"liquor", "red/blush wine"},
        ("bottled beer",),
    )
    assert top.support == pytest.approx(19 / 9835)
    assert top.confidence == pytest.approx(19 / 21)
    assert top.lift == pytest.approx(11.235269, rel=1e-6)


def test_products_bought_together_come_from_pair_counts() -> None:
    co = basket.CoOccurrence.count(SMALL)

    got = co.together("beer", limit=3)

    beer = _count(frozenset({"beer"}), SMALL)
    expected = sorted(
        (
            (_count(frozenset({"beer", other}), SMALL), other)
            for other in set().union(*SMALL) - {"beer"}
        ),
        key=lambda pair: -pair[0],
    )
    assert [t.baskets for t in got] == [n for n, _ in expected[:3]]
    first = got[0]
    assert first.item == "diapers"
    assert first.confidence == pytest.approx(4 / beer)
    assert first.lift == pytest.approx((4 / beer) / (5 / 10))
    assert first.support == pytest.approx(0.4)


def test_a_product_in_no_basket_is_refused() -> None:
    co = basket.CoOccurrence.count(SMALL)

    with pytest.raises(ProductNeverSold, match="Product caviar is in no purchased order"):
        co.together("caviar")


def test_recommendations_leave_out_what_the_customer_bought() -> None:
    rules = basket.mine_rules(SMALL, min_support=0.2, min_confidence=0.5)
    recommender = basket.Recommender(rules, basket.CoOccurrence.count(SMALL))

    got = [item for item, _ in recommender.recommend({"diapers", "bread"}, k=3)]

    assert "diapers" not in got and "bread" not in got
    # diapers -> beer (confidence 0.8) is the strongest rule that applies.
    assert got[0] == "beer"
    assert len(got) == 3


def test_hit_rate_counts_held_out_last_orders_holding_a_recommendation() -> None:
    histories: dict[str, list[set[int]]] = {}
    for pair in range(10):
        for copy in range(10):  # one-basket customers teach that pair goes with pair + 10
            histories[f"teach-{pair}-{copy}"] = [{pair, pair + 10}]
        for copy in range(20):  # they bought pair (and a popular extra); next comes pair + 10
            histories[f"buyer-{pair}-{copy}"] = [{pair, 30 + copy % 5}, {pair + 10}]

    got = basket.hit_rate(histories, k=1, min_support=0.02, min_confidence=0.3)

    assert got.customers == 200
    assert got.hit_rate == 1.0
    assert got.popular_hit_rate == 0.0
