"""Market basket: frequent itemsets and association rules (FP-growth, mlxtend), products
bought together, and recommendations for a customer with their offline hit rate.

A basket is one order's set of products. Rules X -> Y carry support P(X and Y),
confidence P(Y | X), lift confidence / P(Y), leverage P(X and Y) - P(X) P(Y) and
conviction (1 - P(Y)) / (1 - confidence) (None where confidence is 1: infinite).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import association_rules, fpgrowth
from numpy.typing import NDArray
from scipy import sparse

from tenure.analytics.errors import ProductNeverSold, TooLittleHistory

Item = Hashable
# Above this many baskets, itemsets are mined on a seeded random sample of them
# (co-occurrence counts always use every basket).
MAX_MINED_BASKETS = 200_000


@dataclass(frozen=True)
class Rule:
    antecedents: tuple[Any, ...]
    consequents: tuple[Any, ...]
    support: float
    confidence: float
    lift: float
    leverage: float
    conviction: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "antecedents": list(self.antecedents),
            "consequents": list(self.consequents),
            "support": self.support,
            "confidence": self.confidence,
            "lift": self.lift,
            "leverage": self.leverage,
            "conviction": self.conviction,
        }


@dataclass(frozen=True)
class Together:
    """Another product in baskets with the given one: P(other | given) and its lift."""

    item: Any
    baskets: int
    support: float
    confidence: float
    lift: float


def _sorted_items(items: Iterable[Item]) -> list[Any]:
    return sorted(items, key=lambda v: (str(type(v)), v))


def _matrix(baskets: Sequence[Iterable[Item]], items: list[Any]) -> sparse.csr_matrix:
    index = {item: i for i, item in enumerate(items)}
    rows: list[int] = []
    cols: list[int] = []
    for b, basket in enumerate(baskets):
        for item in set(basket):
            rows.append(b)
            cols.append(index[item])
    data = np.ones(len(rows), dtype=bool)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(baskets), len(items)), dtype=bool)


def mine_rules(
    baskets: Sequence[Iterable[Item]],
    *,
    min_support: float,
    min_confidence: float,
    max_len: int | None = None,
    seed: int = 0,
) -> list[Rule]:
    """Association rules from FP-growth's frequent itemsets, strongest lift first."""
    if not baskets:
        raise TooLittleHistory("There are no baskets (purchased orders with lines) to mine.")
    if len(baskets) > MAX_MINED_BASKETS:
        chosen = np.random.default_rng(seed).choice(len(baskets), MAX_MINED_BASKETS, replace=False)
        baskets = [baskets[i] for i in sorted(chosen)]
    items = _sorted_items({item for basket in baskets for item in basket})
    # Columns named by position (mlxtend refuses some integer names on sparse frames);
    # itemsets come back as positions and are mapped to the items below.
    frame = pd.DataFrame.sparse.from_spmatrix(
        _matrix(baskets, items), columns=[str(i) for i in range(len(items))]
    )
    itemsets = fpgrowth(frame, min_support=min_support, use_colnames=False, max_len=max_len)
    if itemsets.empty:
        return []
    found = association_rules(
        itemsets,
        num_itemsets=len(baskets),
        metric="confidence",
        min_threshold=min_confidence,
        return_metrics=["support", "confidence", "lift", "leverage", "conviction"],
    )
    rules = [
        Rule(
            tuple(_sorted_items(items[i] for i in row.antecedents)),
            tuple(_sorted_items(items[i] for i in row.consequents)),
            float(row.support),
            float(row.confidence),
            float(row.lift),
            float(row.leverage),
            None if not math.isfinite(row.conviction) else float(row.conviction),
        )
        for row in found.itertuples(index=False)
    ]
    rules.sort(key=lambda r: (-r.lift, -r.confidence, -r.support, str(r.antecedents)))
    return rules


@dataclass
class CoOccurrence:
    """How many baskets hold each product, and each pair of products."""

    items: list[Any]
    baskets: int
    counts: NDArray[np.int64]
    pairs: sparse.csr_matrix
    index: dict[Any, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {item: i for i, item in enumerate(self.items)}

    @classmethod
    def count(cls, baskets: Sequence[Iterable[Item]]) -> CoOccurrence:
        items = _sorted_items({item for basket in baskets for item in basket})
        matrix = _matrix(baskets, items).astype(np.int64)
        pairs = (matrix.T @ matrix).tocsr()
        counts = np.asarray(pairs.diagonal(), dtype=np.int64)
        pairs.setdiag(0)
        pairs.eliminate_zeros()
        return cls(items, len(baskets), counts, pairs)

    def together(self, item: Item, *, limit: int = 10) -> list[Together]:
        """Products most often in the same basket as ``item``; ``ProductNeverSold`` if
        no basket holds it."""
        i = self.index.get(item)
        if i is None or self.counts[i] == 0:
            raise ProductNeverSold(f"Product {item} is in no purchased order.")
        row = self.pairs.getrow(i)
        found = []
        for j, n in zip(row.indices.tolist(), row.data.tolist(), strict=True):
            confidence = n / self.counts[i]
            found.append(
                Together(
                    self.items[j],
                    int(n),
                    n / self.baskets,
                    float(confidence),
                    float(confidence / (self.counts[j] / self.baskets)),
                )
            )
        found.sort(key=lambda t: (-t.baskets, -t.lift, str(t.item)))
        return found[:limit]

    def cosine(self, bought: Iterable[Item]) -> NDArray[np.float64]:
        """Per product: the sum over ``bought`` of the cosine similarity of their baskets."""
        score = np.zeros(len(self.items))
        norms = np.sqrt(np.maximum(self.counts, 1).astype(np.float64))
        for item in bought:
            i = self.index.get(item)
            if i is None:
                continue
            row = self.pairs.getrow(i)
            score[row.indices] += row.data / (norms[i] * norms[row.indices])
        return score


@dataclass
class Recommender:
    """Rules plus item-to-item co-occurrence: for each product not yet bought, the best
    confidence of a rule whose antecedents the customer has all bought and whose
    consequents name it, plus the summed cosine similarity to what they bought; ties go
    to the more popular product."""

    rules: list[Rule]
    cooccurrence: CoOccurrence
    _by_antecedent: dict[tuple[Any, ...], list[Rule]] = field(init=False)

    def __post_init__(self) -> None:
        grouped: dict[tuple[Any, ...], list[Rule]] = defaultdict(list)
        for rule in self.rules:
            grouped[rule.antecedents].append(rule)
        self._by_antecedent = dict(grouped)

    def recommend(self, bought: Iterable[Item], *, k: int = 10) -> list[tuple[Any, float]]:
        owned = set(bought)
        co = self.cooccurrence
        best_rule = np.zeros(len(co.items))
        for antecedents, rules in self._by_antecedent.items():
            if not owned.issuperset(antecedents):
                continue
            for rule in rules:
                for item in rule.consequents:
                    j = co.index.get(item)
                    if j is not None:
                        best_rule[j] = max(best_rule[j], rule.confidence)
        score = best_rule + co.cosine(owned)
        popularity = co.counts / max(co.baskets, 1)
        order = np.lexsort((-popularity, -score))
        picked = []
        for j in order.tolist():
            if co.items[j] in owned or co.counts[j] == 0:
                continue
            picked.append((co.items[j], float(score[j])))
            if len(picked) == k:
                break
        return picked


@dataclass(frozen=True)
class HitRate:
    """Share of customers whose held-out last order holds one of the top k products."""

    k: int
    customers: int
    hit_rate: float
    popular_hit_rate: float  # the same for the k most popular products not yet bought

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "customers": self.customers,
            "hit_rate": self.hit_rate,
            "popular_hit_rate": self.popular_hit_rate,
        }


def hit_rate(
    histories: dict[Any, list[set[Any]]],
    *,
    k: int,
    min_support: float,
    min_confidence: float,
    max_customers: int = 10_000,
    seed: int = 0,
) -> HitRate:
    """Hold out each customer's last basket (``histories``: baskets oldest first), learn
    rules and co-occurrence from every other basket, recommend ``k`` products from the
    earlier baskets and count a hit when one of them is in the held-out basket. Customers
    with two or more baskets are evaluated (a seeded sample of ``max_customers`` at most)."""
    eligible = sorted((c for c, b in histories.items() if len(b) >= 2), key=str)
    if not eligible:
        raise TooLittleHistory("No customer has two or more orders to hold one out.")
    if len(eligible) > max_customers:
        rng = np.random.default_rng(seed)
        eligible = [eligible[i] for i in sorted(rng.choice(len(eligible), max_customers, False))]
    held = set(eligible)
    training = [
        basket
        for customer, baskets in histories.items()
        for basket in (baskets[:-1] if customer in held else baskets)
    ]
    recommender = Recommender(
        mine_rules(training, min_support=min_support, min_confidence=min_confidence, seed=seed),
        CoOccurrence.count(training),
    )
    popular = [
        recommender.cooccurrence.items[j]
        for j in np.argsort(-recommender.cooccurrence.counts, kind="stable").tolist()
    ]
    hits = popular_hits = 0
    for customer in eligible:
        *earlier, last = histories[customer]
        owned = set().union(*earlier)
        top = [item for item, _ in recommender.recommend(owned, k=k)]
        hits += bool(last.intersection(top))
        baseline = [item for item in popular if item not in owned][:k]
        popular_hits += bool(last.intersection(baseline))
    n = len(eligible)
    return HitRate(k, n, hits / n, popular_hits / n)
