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


@dataclass(frozen=True)
class Baskets:
    """Baskets as a sparse boolean matrix: one row per basket, one column per item
    (``items``, sorted)."""

    matrix: sparse.csr_matrix
    items: list[Any]

    @classmethod
    def of(cls, baskets: Sequence[Iterable[Item]]) -> Baskets:
        items = _sorted_items({item for basket in baskets for item in basket})
        return cls(_matrix(baskets, items), items)

    @classmethod
    def from_lines(
        cls, basket: NDArray[np.int64], item: NDArray[np.int64], *, size: int | None = None
    ) -> Baskets:
        """Baskets from parallel arrays, one entry per line: the basket's row (0 to
        ``size`` - 1) and the item (an integer); an item twice in a basket counts once."""
        if len(item) and int(item.min()) >= 0 and int(item.max()) < 4 * len(item) + 1_000:
            # Small non-negative ids (products): a lookup table instead of a sort.
            items = np.flatnonzero(np.bincount(item))
            lookup = np.zeros(int(item.max()) + 1, dtype=np.int64)
            lookup[items] = np.arange(len(items))
            column = lookup[item]
        else:
            items, column = np.unique(item, return_inverse=True)
        rows = int(basket.max()) + 1 if size is None and len(basket) else (size or 0)
        counts = sparse.csr_matrix(
            (np.ones(len(basket), dtype=np.int32), (basket, column.reshape(-1))),
            shape=(rows, len(items)),
        )
        return cls(counts.astype(bool), items.tolist())

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def rows(self, which: NDArray[np.int64] | NDArray[np.bool_]) -> Baskets:
        return Baskets(self.matrix[which], self.items)

    def present(self) -> tuple[Baskets, NDArray[np.int64]]:
        """These baskets with only the items some basket holds, and those items' columns."""
        held = np.flatnonzero(np.asarray(self.matrix.sum(axis=0)).reshape(-1) > 0)
        return Baskets(self.matrix[:, held], [self.items[i] for i in held]), held


def mine_rules(
    baskets: Sequence[Iterable[Item]] | Baskets,
    *,
    min_support: float,
    min_confidence: float,
    max_len: int | None = None,
    seed: int = 0,
) -> list[Rule]:
    """Association rules from FP-growth's frequent itemsets, strongest lift first."""
    table = baskets if isinstance(baskets, Baskets) else Baskets.of(baskets)
    if len(table) == 0:
        raise TooLittleHistory("There are no baskets (purchased orders with lines) to mine.")
    if len(table) > MAX_MINED_BASKETS:
        chosen = np.random.default_rng(seed).choice(len(table), MAX_MINED_BASKETS, replace=False)
        table = table.rows(np.sort(chosen))
    table, _held = table.present()
    items = table.items
    # Columns named by position (mlxtend refuses some integer names on sparse frames);
    # itemsets come back as positions and are mapped to the items below.
    frame = pd.DataFrame.sparse.from_spmatrix(
        table.matrix, columns=[str(i) for i in range(len(items))]
    )
    itemsets = fpgrowth(frame, min_support=min_support, use_colnames=False, max_len=max_len)
    if itemsets.empty:
        return []
    found = association_rules(
        itemsets,
        num_itemsets=len(table),
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
    def count(cls, baskets: Sequence[Iterable[Item]] | Baskets) -> CoOccurrence:
        table = baskets if isinstance(baskets, Baskets) else Baskets.of(baskets)
        table, _held = table.present()
        matrix = table.matrix.astype(np.int64)
        pairs = (matrix.T @ matrix).tocsr()
        counts = np.asarray(pairs.diagonal(), dtype=np.int64)
        pairs.setdiag(0)
        pairs.eliminate_zeros()
        return cls(table.items, len(table), counts, pairs)

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

    def cosine_many(self, owned: NDArray[np.bool_]) -> NDArray[np.float64]:
        """``cosine`` for many customers at once: ``owned`` holds one row per customer, one
        column per product of ``items`` (the same sums, added in another order)."""
        norms = np.sqrt(np.maximum(self.counts, 1).astype(np.float64))
        pairs = self.pairs.tocoo()
        similarity = np.zeros((len(self.items), len(self.items)))
        similarity[pairs.row, pairs.col] = pairs.data / (norms[pairs.row] * norms[pairs.col])
        score: NDArray[np.float64] = owned.astype(np.float64) @ similarity
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

    def recommend_many(
        self, owned: NDArray[np.bool_], *, k: int = 10
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """``recommend`` for many customers at once. ``owned``: one row per customer, one
        column per product of the co-occurrence's ``items``. Returns the columns of each
        customer's top ``k`` products, best first, and which of them are real picks (a
        customer with fewer than ``k`` products to recommend has the rest marked False)."""
        co = self.cooccurrence
        n, m = owned.shape
        best_rule = np.zeros((n, m))
        for antecedents, rules in self._by_antecedent.items():
            if not all(item in co.index for item in antecedents):
                continue
            columns = [co.index[item] for item in antecedents]
            holds = owned[:, columns].all(axis=1)
            if not holds.any():
                continue
            for rule in rules:
                for item in rule.consequents:
                    j = co.index.get(item)
                    if j is not None:
                        best_rule[holds, j] = np.maximum(best_rule[holds, j], rule.confidence)
        score = best_rule + co.cosine_many(owned)
        popularity = co.counts / max(co.baskets, 1)
        excluded = owned | (co.counts == 0)[None, :]
        order = np.lexsort((np.broadcast_to(-popularity, (n, m)), -score, excluded), axis=-1)
        top = order[:, :k]
        return top, ~np.take_along_axis(excluded, top, axis=1)


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
    with two or more baskets are evaluated (a seeded sample of ``max_customers`` at most,
    drawn from them in the order of their keys as text)."""
    keys = list(histories)
    by_text = sorted(range(len(keys)), key=lambda i: str(keys[i]))
    code = np.empty(len(keys), dtype=np.int64)
    code[by_text] = np.arange(len(keys))
    owner = np.repeat(code, [len(histories[c]) for c in keys])
    table = Baskets.of([basket for c in keys for basket in histories[c]])
    return hit_rate_of(
        table,
        owner,
        k=k,
        min_support=min_support,
        min_confidence=min_confidence,
        max_customers=max_customers,
        seed=seed,
    )


def hit_rate_of(
    baskets: Baskets,
    owner: NDArray[np.int64],
    *,
    k: int,
    min_support: float,
    min_confidence: float,
    max_customers: int = 10_000,
    seed: int = 0,
) -> HitRate:
    """``hit_rate`` over a basket matrix: ``owner`` gives each basket's customer as a code
    (the sample is drawn in code order), each customer's baskets oldest first."""
    if len(owner) == 0:
        raise TooLittleHistory("No customer has two or more orders to hold one out.")
    row = np.arange(len(owner))
    by_owner = np.lexsort((row, owner))
    is_last = np.r_[owner[by_owner][1:] != owner[by_owner][:-1], True]
    last_row = np.full(int(owner.max()) + 1, -1, dtype=np.int64)
    last_row[owner[by_owner][is_last]] = by_owner[is_last]
    counts = np.bincount(owner)
    eligible = np.flatnonzero(counts >= 2)
    if len(eligible) == 0:
        raise TooLittleHistory("No customer has two or more orders to hold one out.")
    if len(eligible) > max_customers:
        rng = np.random.default_rng(seed)
        eligible = eligible[np.sort(rng.choice(len(eligible), max_customers, False))]
    held_rows = last_row[eligible]
    training_rows = np.ones(len(owner), dtype=bool)
    training_rows[held_rows] = False
    training = baskets.rows(training_rows)
    recommender = Recommender(
        mine_rules(training, min_support=min_support, min_confidence=min_confidence, seed=seed),
        CoOccurrence.count(training),
    )
    _present, columns = training.present()
    # Each evaluated customer's earlier baskets together, and their held-out one.
    position = np.full(len(counts), -1, dtype=np.int64)
    position[eligible] = np.arange(len(eligible))
    earlier = training_rows.copy()
    earlier &= position[owner] >= 0
    picks = sparse.csr_matrix(
        (np.ones(int(earlier.sum()), dtype=np.int32), (position[owner[earlier]], row[earlier])),
        shape=(len(eligible), len(owner)),
    )
    owned = np.asarray((picks @ baskets.matrix.astype(np.int32))[:, columns].todense()) > 0
    last = np.asarray(baskets.matrix[held_rows][:, columns].todense())
    top, real = recommender.recommend_many(owned, k=k)
    hits = (np.take_along_axis(last, top, axis=1) & real).any(axis=1)
    popular = np.argsort(-recommender.cooccurrence.counts, kind="stable")
    open_popular = ~owned[:, popular]
    chosen = open_popular & (np.cumsum(open_popular, axis=1) <= k)
    popular_hits = (last[:, popular] & chosen).any(axis=1)
    n = len(eligible)
    return HitRate(k, n, int(hits.sum()) / n, int(popular_hits.sum()) / n)
