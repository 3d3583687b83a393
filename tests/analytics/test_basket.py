"""Market basket: rules against a brute-force count, the groceries data against the
published arules figures, products bought together, recommendations and hit rate."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
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
    found: dict[tuple[frozenset[str], frozenset[str]], tuple[float, ...]] = {}
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


def _random_histories(seed: int, customers: int) -> dict[int, list[set[int]]]:
    rng = np.random.default_rng(seed)
    histories: dict[int, list[set[int]]] = {}
    for customer in rng.choice(10_000, customers, replace=False).tolist():
        histories[customer] = [
            {int(p) for p in rng.choice(12, int(rng.integers(1, 5)), replace=False, p=_WEIGHTS)}
            for _ in range(int(rng.integers(1, 5)))
        ]
    return histories


_WEIGHTS = np.arange(12, 0, -1) / np.arange(12, 0, -1).sum()


def test_recommending_for_many_customers_picks_what_one_at_a_time_picks() -> None:
    histories = _random_histories(5, 300)
    baskets = [b for bs in histories.values() for b in bs]
    co = basket.CoOccurrence.count(baskets)
    recommender = basket.Recommender(
        basket.mine_rules(baskets, min_support=0.02, min_confidence=0.3), co
    )
    assert recommender.rules
    owned_sets = [set().union(*bs[:-1]) if len(bs) > 1 else bs[0] for bs in histories.values()]
    owned = np.array([[item in s for item in co.items] for s in owned_sets])

    top, real = recommender.recommend_many(owned, k=4)

    for row, s in enumerate(owned_sets):
        expected = [item for item, _ in recommender.recommend(s, k=4)]
        got = [co.items[j] for j, ok in zip(top[row], real[row], strict=True) if ok]
        assert got == expected


def _hit_rate_one_by_one(histories: dict[int, list[set[int]]], k: int) -> tuple[float, float]:
    """The hit rate by its definition, one customer at a time (every customer evaluated)."""
    eligible = [c for c, b in histories.items() if len(b) >= 2]
    training = [b for c, bs in histories.items() for b in (bs[:-1] if len(bs) >= 2 else bs)]
    co = basket.CoOccurrence.count(training)
    recommender = basket.Recommender(
        basket.mine_rules(training, min_support=0.02, min_confidence=0.3), co
    )
    popular = [co.items[j] for j in np.argsort(-co.counts, kind="stable").tolist()]
    hits = popular_hits = 0
    for customer in eligible:
        *earlier, last = histories[customer]
        owned = set().union(*earlier)
        hits += bool(last & {item for item, _ in recommender.recommend(owned, k=k)})
        popular_hits += bool(last & set([p for p in popular if p not in owned][:k]))
    return hits / len(eligible), popular_hits / len(eligible)


def test_the_hit_rate_over_a_basket_matrix_is_the_one_customer_at_a_time_count() -> None:
    histories = _random_histories(6, 400)

    got = basket.hit_rate(histories, k=3, min_support=0.02, min_confidence=0.3)

    assert got.customers == sum(1 for b in histories.values() if len(b) >= 2)
    assert (got.hit_rate, got.popular_hit_rate) == pytest.approx(_hit_rate_one_by_one(histories, 3))


def test_baskets_from_lines_count_an_item_once_per_basket() -> None:
    table = basket.Baskets.from_lines(np.array([0, 0, 0, 2]), np.array([7, 7, 3, 9]))

    assert table.items == [3, 7, 9]
    assert len(table) == 3
    assert table.matrix.toarray().tolist() == [
        [True, True, False], [False, False, False], [False, False, True]
    ]  # fmt: skip
