"""An analytics run: read the purchase history once, compute every analysis, store it.

``compute`` only reads (it can take minutes on a large database without holding the
write lock); ``save`` writes the results in one short transaction of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import BigInteger, Table, func, insert, select, table
from sqlalchemy import column as sql_column
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import TableClause
from threadpoolctl import threadpool_limits

from tenure.analytics import activity as activity_data
from tenure.analytics import basket, churn, clusters, lifetime, rfm, statistics
from tenure.analytics.activity import PERIOD_DAYS, Activity, check_as_of
from tenure.analytics.errors import TooLittleHistory
from tenure.analytics.models import (
    AnalyticsCustomer,
    AnalyticsModel,
    AnalyticsPair,
    AnalyticsProduct,
    AnalyticsRule,
    AnalyticsRun,
)
from tenure.core.errors import InvalidInput, field_error
from tenure.core.money import Money, from_storage, minor_units, quantize, to_storage
from tenure.core.time import utcnow
from tenure.orders import service as orders_service
from tenure.service_desk import service as desk_service

Progress = Callable[[str, int, int], None]
STAGES = ("history", "statistics", "lifetime", "churn", "basket", "clusters")
MAX_STORED_RULES = 5_000
WRITE_CHUNK = 50_000
YEAR_DAYS = 365.2425


def _ignore(_stage: str, _done: int, _total: int) -> None:
    return None


@dataclass(frozen=True)
class RunOptions:
    """What a run computes and how. ``horizon``: periods for expected purchases and CLV
    (default: one year); ``discount_rate``: per year."""

    as_of: date | None = None
    period: str = "week"
    currency: str | None = None
    horizon: float | None = None
    discount_rate: float = 0.10
    churn_horizon_days: int = 90
    min_support: float = 0.01
    min_confidence: float = 0.2
    top_k: int = 10
    seed: int = 0

    def checked(self, today: date) -> RunOptions:
        if self.period not in PERIOD_DAYS:
            raise field_error("period", f"period must be one of: {', '.join(PERIOD_DAYS)}.")
        if self.horizon is not None and self.horizon <= 0:
            raise field_error("horizon", "horizon must be a positive number of periods.")
        if not 0 <= self.discount_rate < 1:
            raise field_error("discount_rate", "discount_rate is a yearly rate from 0 to 1.")
        if self.churn_horizon_days < 1:
            raise field_error("churn_horizon_days", "churn_horizon_days must be at least 1.")
        if not (0 < self.min_support <= 1 and 0 < self.min_confidence <= 1):
            raise InvalidInput("min_support and min_confidence must be in (0, 1].")
        as_of = check_as_of(self.as_of or today, today=today)
        horizon = self.horizon or round(YEAR_DAYS / PERIOD_DAYS[self.period], 2)
        return RunOptions(
            as_of,
            self.period,
            self.currency,
            horizon,
            self.discount_rate,
            self.churn_horizon_days,
            self.min_support,
            self.min_confidence,
            self.top_k,
            self.seed,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "period": self.period,
            "currency": self.currency,
            "horizon_periods": self.horizon,
            "discount_rate": self.discount_rate,
            "churn_horizon_days": self.churn_horizon_days,
            "min_support": self.min_support,
            "min_confidence": self.min_confidence,
            "top_k": self.top_k,
            "seed": self.seed,
        }


@dataclass
class Computed:
    """Everything a run found, ready to be saved."""

    options: RunOptions
    activity: Activity
    rfm: rfm.RFM
    results: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    columns: dict[str, NDArray[Any]] = field(default_factory=dict)
    rules: list[basket.Rule] = field(default_factory=list)
    cooccurrence: basket.CoOccurrence | None = None
    model: churn.Evaluation | None = None
    seconds: float = 0.0


def clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, numpy scalars plain Python."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return str(value)
    return value


def compute(
    *,
    session: Session,
    options: RunOptions,
    progress: Progress = _ignore,
    today: date | None = None,
) -> Computed:
    """Every analysis as of ``options.as_of``; ``TooLittleHistory`` when nothing was bought.

    An analysis that has too little data to work with is skipped, with the reason kept in
    ``results["skipped"]``; the others still run."""
    # One native thread per library pool: on a small, shared machine OpenMP's threads spin
    # against each other and the server (k-means ran a hundred times slower with them).
    with threadpool_limits(limits=1):
        return _compute(session=session, options=options, progress=progress, today=today)


def _compute(
    *, session: Session, options: RunOptions, progress: Progress, today: date | None
) -> Computed:
    started = time.perf_counter()
    options = options.checked(today or utcnow().date())
    currency = options.currency or orders_service.main_currency(session=session)
    if currency is None:
        raise TooLittleHistory("There are no purchased orders yet: nothing to analyse.")
    options = replace(options, currency=currency)
    as_of = options.as_of
    assert as_of is not None
    total = len(STAGES)
    timings: dict[str, float] = {}

    def stage(name: str, done: int, began: float) -> float:
        timings[name] = round(time.perf_counter() - began, 3)
        progress(name, done, total)
        return time.perf_counter()

    began = time.perf_counter()
    history = activity_data.load_history(session=session, currency=currency, as_of=as_of)
    act = history.activity()
    if act.size == 0:
        raise TooLittleHistory(
            f"No customer bought in {currency} on or before {as_of.isoformat()}."
        )
    began = stage("history", 1, began)

    scores = rfm.compute(act)
    computed = Computed(options, act, scores)
    computed.results["currencies"] = {
        c: {"orders": n, "revenue": str(t)}
        for c, (n, t) in orders_service.revenue_by_currency(
            session=session, end=activity_data.end_of(as_of)
        ).items()
    }
    computed.results["rfm"] = {
        "recency_edges_days": scores.recency_edges.tolist(),
        "frequency_edges_days": scores.frequency_edges.tolist(),
        "monetary_edges": [float(v) / 10_000 for v in scores.monetary_edges],
        "grid": _grid(scores),
    }
    began = stage("statistics", 2, began)

    _lifetime(computed)
    began = stage("lifetime", 3, began)
    _churn(history, computed)
    began = stage("churn", 4, began)
    _basket(session, computed)
    began = stage("basket", 5, began)
    try:
        clustering = clusters.cluster(act, seed=options.seed)
        computed.columns["cluster"] = clustering.labels
        computed.results["clusters"] = clustering.to_json()
        computed.results["statistics_by_cluster"] = {
            str(k): v.to_json()
            for k, v in statistics.describe_groups(act, clustering.labels).items()
        }
    except TooLittleHistory as exc:
        computed.skipped["clusters"] = exc.detail
    computed.results["statistics"] = statistics.describe(act).to_json()
    computed.results["statistics_by_segment"] = {
        k: v.to_json() for k, v in statistics.describe_groups(act, scores.segment).items()
    }
    rated_by, rating = desk_service.ratings(session=session, until=activity_data.end_of(as_of))
    groupings: dict[str, NDArray[Any]] = {"segment": scores.segment}
    if "cluster" in computed.columns:
        groupings["cluster"] = computed.columns["cluster"]
    computed.results["satisfaction"] = statistics.satisfaction(
        act, np.asarray(rated_by, dtype=np.int64), np.asarray(rating, dtype=np.int64), groupings
    )
    stage("clusters", 6, began)

    computed.results["segments"] = _segments(computed)
    computed.results["skipped"] = computed.skipped
    computed.results["timings_seconds"] = timings
    computed.seconds = time.perf_counter() - started
    return computed


def _grid(scores: rfm.RFM) -> list[dict[str, Any]]:
    """Customers per (R, FM) cell, for the heat map."""
    cells = 5 * (scores.recency - 1) + (scores.frequency_monetary - 1)
    counts = np.bincount(cells, minlength=25)
    return [
        {"r": r, "fm": fm, "customers": int(counts[5 * (r - 1) + fm - 1])}
        for r in range(1, 6)
        for fm in range(1, 6)
    ]


def _lifetime(c: Computed) -> None:
    a, o = c.activity, c.options
    assert o.as_of is not None and o.horizon is not None
    unit = PERIOD_DAYS[o.period]
    x = (a.days - 1).astype(np.float64)
    t_x = (a.last_day - a.first_day) / unit
    T = a.age_days / unit
    repeat = np.maximum(a.days - 1, 1)
    m = np.where(a.days > 1, (a.revenue_units - a.first_day_revenue_units) / repeat, 0) / 10_000
    try:
        purchases = lifetime.fit_bgnbd(x, t_x, T, seed=o.seed)
    except TooLittleHistory as exc:
        c.skipped["lifetime"] = exc.detail
        return
    params: lifetime.BGNBD = purchases.params
    c.columns["p_alive"] = lifetime.probability_alive(params, x, t_x, T)
    c.columns["expected_purchases"] = lifetime.expected_purchases(params, o.horizon, x, t_x, T)
    c.results["bgnbd"] = purchases.to_json()
    try:
        spend = lifetime.fit_gamma_gamma(x, m, seed=o.seed)
    except TooLittleHistory as exc:
        c.skipped["clv"] = exc.detail
        return
    c.results["gamma_gamma"] = spend.to_json()
    if spend.params.q <= 1:
        c.skipped["clv"] = (
            f"The spend model's q is {spend.params.q:.3f} (at most 1): spend has no finite "
            "expected value, so CLV is not computed."
        )
        return
    period_discount = (1 + o.discount_rate) ** (unit / YEAR_DAYS) - 1
    c.columns["expected_spend"] = lifetime.expected_spend(spend.params, x, m)
    c.columns["clv"] = lifetime.clv(
        params,
        spend.params,
        horizon=o.horizon,
        period_discount=period_discount,
        x=x,
        t_x=t_x,
        T=T,
        m=m,
    )
    c.results["clv"] = {
        "horizon_periods": o.horizon,
        "period": o.period,
        "yearly_discount_rate": o.discount_rate,
        "period_discount_rate": period_discount,
        "total": str(quantize(Decimal(repr(float(c.columns["clv"].sum()))), a.currency)),
    }


def _churn(history: activity_data.History, c: Computed) -> None:
    o = c.options
    assert o.as_of is not None and o.currency is not None
    horizon = timedelta(days=o.churn_horizon_days)
    test_cutoff = o.as_of - horizon
    try:
        train = churn.snapshot_of(
            history, cutoff=test_cutoff - horizon, horizon_days=o.churn_horizon_days
        )
        test = churn.snapshot_of(history, cutoff=test_cutoff, horizon_days=o.churn_horizon_days)
        baseline = _p_alive(test.activity, o)
        evaluation = churn.evaluate(train, test, baseline=baseline, seed=o.seed)
    except TooLittleHistory as exc:
        c.skipped["churn"] = exc.detail
        return
    current = churn.snapshot_of(history, cutoff=o.as_of, horizon_days=None)
    probability = churn.probability(evaluation.model, current)
    aligned = np.zeros(c.activity.size)
    aligned[np.searchsorted(c.activity.customer_id, current.activity.customer_id)] = probability
    c.columns["purchase_probability"] = aligned
    c.columns["churn_risk"] = 1 - aligned
    c.model = evaluation
    c.results["churn"] = {
        "horizon_days": o.churn_horizon_days,
        "train_cutoff": (test_cutoff - horizon).isoformat(),
        "test_cutoff": test_cutoff.isoformat(),
        "features": list(churn.FEATURES),
        "chosen": evaluation.chosen,
        "models": evaluation.metrics,
    }


def _p_alive(a: Activity, o: RunOptions) -> NDArray[np.float64] | None:
    """The BG/NBD P(alive) of ``a``'s customers, fitted on ``a`` (None if it cannot be)."""
    unit = PERIOD_DAYS[o.period]
    x = (a.days - 1).astype(np.float64)
    t_x, T = (a.last_day - a.first_day) / unit, a.age_days / unit
    try:
        fit = lifetime.fit_bgnbd(x, t_x, T, seed=o.seed)
    except TooLittleHistory:
        return None
    return lifetime.probability_alive(fit.params, x, t_x, T)


def _basket(session: Session, c: Computed) -> None:
    o = c.options
    assert o.as_of is not None and o.currency is not None
    orders: list[NDArray[np.int64]] = []
    products: list[NDArray[np.int64]] = []
    for batch in orders_service.purchased_baskets(
        session=session, currency=o.currency, end=activity_data.end_of(o.as_of)
    ):
        orders.append(np.array([row[:4] for row in batch], dtype=np.int64).reshape(-1, 4))
        # Every basket's product ids, parsed in one pass of numpy's text reader.
        products.append(np.fromstring(",".join([row[4] for row in batch]), np.int64, sep=","))
    table = np.concatenate(orders) if orders else np.zeros((0, 4), dtype=np.int64)
    product_id = np.concatenate(products) if products else np.zeros(0, dtype=np.int64)
    del orders, products
    # Baskets (orders) by customer, day and order id: each customer's oldest first.
    by_age = np.lexsort((table[:, 0], table[:, 2], table[:, 1]))
    row_of_order = np.empty(len(table), dtype=np.int64)
    row_of_order[by_age] = np.arange(len(table))
    baskets = basket.Baskets.from_lines(
        np.repeat(row_of_order, table[:, 3]), product_id, size=len(table)
    )
    buyer = table[by_age, 1]
    del product_id, row_of_order
    # The hit rate samples customers in the order of their ids as text.
    customers = np.unique(buyer)
    by_text = text_order(customers)
    code = np.empty(len(customers), dtype=np.int64)
    code[by_text] = np.arange(len(customers))
    owner = code[np.searchsorted(customers, buyer)]
    try:
        rules = basket.mine_rules(
            baskets, min_support=o.min_support, min_confidence=o.min_confidence, seed=o.seed
        )
        c.cooccurrence = basket.CoOccurrence.count(baskets)
        hits = basket.hit_rate_of(
            baskets,
            owner,
            k=o.top_k,
            min_support=o.min_support,
            min_confidence=o.min_confidence,
            seed=o.seed,
        )
    except TooLittleHistory as exc:
        c.skipped["basket"] = exc.detail
        return
    c.rules = rules
    c.results["basket"] = {
        "baskets": len(baskets),
        "products": len(c.cooccurrence.items),
        "rules": len(rules),
        "rules_stored": min(len(rules), MAX_STORED_RULES),
        "evaluation": hits.to_json(),
    }


def text_order(ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """The positions of non-negative integer ``ids`` in the order of their decimal text
    ("10" before "9"), without making the text: a number with fewer digits is compared as
    if padded with zeros on the right, and comes first when that ties."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    powers = 10 ** np.arange(19, dtype=np.int64)
    digits = np.searchsorted(powers, ids, side="right")
    digits = np.maximum(digits, 1)
    most = int(digits.max())
    padded = ids * powers[most - digits]
    order: NDArray[np.int64] = np.lexsort((digits, padded))
    return order


def _segments(c: Computed) -> list[dict[str, Any]]:
    """Per segment: customers, share, revenue, and mean CLV and churn risk if known."""
    out = []
    a = c.activity
    for name in rfm.SEGMENTS:
        inside = c.rfm.segment == name
        n = int(inside.sum())
        row: dict[str, Any] = {
            "segment": name,
            "customers": n,
            "share": n / a.size,
            "revenue": str(quantize(from_storage(int(a.revenue_units[inside].sum())), a.currency)),
        }
        for column in ("clv", "churn_risk", "p_alive"):
            values = c.columns.get(column)
            row[f"mean_{column}"] = (
                float(values[inside].mean()) if values is not None and n else None
            )
        out.append(row)
    return out


def money_units(values: NDArray[np.float64], currency: str) -> list[int]:
    """Each value as ``quantize(Decimal(repr(value)), currency)`` would store it (integer
    1/10,000 units), computed in numpy; values within a hair of a half minor unit, where
    binary and decimal rounding could differ, go through ``Decimal`` itself."""
    minor = minor_units(currency)
    scaled = values * 10.0**minor
    rounded = np.rint(scaled)
    fraction = np.abs(scaled - np.floor(scaled))
    unsure = ~np.isfinite(scaled) | (
        np.abs(fraction - 0.5) <= 1e-6 + 1e-12 * np.abs(np.nan_to_num(scaled))
    )
    step = 10 ** (4 - minor)
    units: list[int] = (np.where(unsure, 0, rounded).astype(np.int64) * step).tolist()
    for i in np.flatnonzero(unsure).tolist():
        units[i] = to_storage(quantize(Decimal(repr(float(values[i]))), currency))
    return units


def _customer_table() -> TableClause:
    """analytics_customer with its money columns bound as the integer units they store."""
    t = AnalyticsCustomer.__table__
    assert isinstance(t, Table)
    return table(
        t.name,
        *(sql_column(c.name, BigInteger() if isinstance(c.type, Money) else c.type) for c in t.c),
    )


def _dates(days: NDArray[np.int64]) -> list[date]:
    dates: list[date] = days.astype("datetime64[D]").astype(object).tolist()
    return dates


def save(*, session: Session, computed: Computed, progress: Progress = _ignore) -> int:
    """Store ``computed`` as a new run; returns its id."""
    began = time.perf_counter()
    a, o = computed.activity, computed.options
    assert o.as_of is not None and o.currency is not None
    now = utcnow()
    run = AnalyticsRun(
        created_at=now,
        seconds=round(computed.seconds, 3),
        as_of=o.as_of,
        period=o.period,
        currency=o.currency,
        customers=a.size,
        parameters=clean(o.to_json()),
        results=clean(computed.results),
    )
    session.add(run)
    session.flush()
    cols, scores, total = computed.columns, computed.rfm, a.size
    nothing: list[None] = [None] * total

    def listed(name: str) -> list[Any]:
        return cols[name].tolist() if name in cols else nothing

    def money(name: str) -> list[Any]:
        assert o.currency is not None
        return money_units(cols[name], o.currency) if name in cols else nothing

    values: dict[str, list[Any]] = {
        "run_id": [run.id] * total,
        "customer_id": a.customer_id.tolist(),
        "orders": a.orders.tolist(),
        "purchase_days": a.days.tolist(),
        "first_purchase": _dates(a.first_day),
        "last_purchase": _dates(a.last_day),
        "revenue": a.revenue_units.tolist(),
        "recency_days": a.recency_days.tolist(),
        "r_score": scores.recency.tolist(),
        "f_score": scores.frequency.tolist(),
        "m_score": scores.monetary.tolist(),
        "segment": scores.segment.tolist(),
        "cluster": listed("cluster"),
        "expected_spend": money("expected_spend"),
        "clv": money("clv"),
        **{
            name: listed(name)
            for name in ("p_alive", "expected_purchases", "purchase_probability", "churn_risk")
        },
    }
    names = list(values)
    connection = session.connection()
    compiled = insert(_customer_table()).compile(dialect=connection.dialect)
    if compiled.positional and connection.dialect.name == "sqlite":
        # Straight to the driver's executemany: the values are already what SQLite stores
        # (integers, floats, text; dates as the ISO text SQLAlchemy writes for them).
        for name in ("first_purchase", "last_purchase"):
            values[name] = [d.isoformat() for d in values[name]]
        order = [values[name] for name in (compiled.positiontup or [])]
        for start in range(0, total, WRITE_CHUNK):
            stop = min(start + WRITE_CHUNK, total)
            tuples = list(zip(*(v[start:stop] for v in order), strict=True))
            connection.exec_driver_sql(compiled.string, tuples)
            progress("saving", stop, total)
    else:
        statement = insert(_customer_table())
        for start in range(0, total, WRITE_CHUNK):
            stop = min(start + WRITE_CHUNK, total)
            rows = [
                dict(zip(names, row, strict=True))
                for row in zip(*(v[start:stop] for v in values.values()), strict=True)
            ]
            connection.execute(statement, rows)
            progress("saving", stop, total)
    del values
    _save_basket(session, run.id, computed)
    if computed.model is not None:
        kind = computed.model.chosen
        version = (
            session.scalar(
                select(func.max(AnalyticsModel.version)).where(AnalyticsModel.kind == kind)
            )
            or 0
        ) + 1
        session.add(
            AnalyticsModel(
                run_id=run.id,
                kind=kind,
                version=version,
                created_at=now,
                metrics=clean(computed.model.metrics[kind]),
                model=computed.model.model_bytes(),
            )
        )
        run.results = {**run.results, "churn": {**run.results["churn"], "model_version": version}}
    timings = {
        **run.results.get("timings_seconds", {}),
        "saving": round(time.perf_counter() - began, 3),
    }
    run.results = {**run.results, "timings_seconds": timings}
    session.flush()
    return run.id


def _save_basket(session: Session, run_id: int, computed: Computed) -> None:
    if computed.rules:
        session.execute(
            insert(AnalyticsRule),
            [
                {"run_id": run_id, "rank": rank, **clean(rule.to_json())}
                for rank, rule in enumerate(computed.rules[:MAX_STORED_RULES], start=1)
            ],
        )
    co = computed.cooccurrence
    if co is None:
        return
    session.execute(
        insert(AnalyticsProduct),
        [
            {"run_id": run_id, "product_id": int(item), "baskets": int(n)}
            for item, n in zip(co.items, co.counts.tolist(), strict=True)
            if n > 0
        ],
    )
    pairs = co.pairs.tocoo()
    rows = [
        {
            "run_id": run_id,
            "product_id": int(co.items[i]),
            "other_id": int(co.items[j]),
            "baskets": int(n),
        }
        for i, j, n in zip(pairs.row.tolist(), pairs.col.tolist(), pairs.data.tolist(), strict=True)
    ]
    for start in range(0, len(rows), WRITE_CHUNK):
        session.connection().execute(insert(AnalyticsPair), rows[start : start + WRITE_CHUNK])
