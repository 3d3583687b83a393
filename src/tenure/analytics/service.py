"""Reading stored analytics runs: the latest or a named run, per-customer results, rules,
products bought together, recommendations, models and CSV exports.

What names customers (per-customer results, their lists, recommendations, the customers
export) takes the caller's record scope and shows only the customers in it; aggregates
over the whole base (statistics, segment sizes, clusters, rules, models, runs) name no
customer and are the same for everyone who may read analytics."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tenure.analytics.errors import NoRun, ProductNeverSold, TooLittleHistory
from tenure.analytics.models import (
    AnalyticsCustomer,
    AnalyticsModel,
    AnalyticsPair,
    AnalyticsProduct,
    AnalyticsRule,
    AnalyticsRun,
)
from tenure.catalog import service as catalog_service
from tenure.core.errors import NotFound, field_error
from tenure.customers import service as customers_service
from tenure.orders import service as orders_service
from tenure.security.scope import RecordScope

if TYPE_CHECKING:  # pandas, mlxtend and scipy load only when baskets are asked about
    from tenure.analytics import basket

CUSTOMER_SORTS = {
    "customer_id": (AnalyticsCustomer.customer_id,),
    "-clv": (AnalyticsCustomer.clv.desc(), AnalyticsCustomer.customer_id),
    "clv": (AnalyticsCustomer.clv, AnalyticsCustomer.customer_id),
    "-churn_risk": (AnalyticsCustomer.churn_risk.desc(), AnalyticsCustomer.customer_id),
    "churn_risk": (AnalyticsCustomer.churn_risk, AnalyticsCustomer.customer_id),
    "-revenue": (AnalyticsCustomer.revenue.desc(), AnalyticsCustomer.customer_id),
    "recency_days": (AnalyticsCustomer.recency_days, AnalyticsCustomer.customer_id),
}
CUSTOMER_COLUMNS = tuple(c.key for c in AnalyticsCustomer.__table__.columns if c.key != "run_id")
RULE_COLUMNS = (
    "rank", "antecedents", "consequents", "support", "confidence", "lift", "leverage",
    "conviction",
)  # fmt: skip


def get_run(*, session: Session, run_id: int | None = None) -> AnalyticsRun:
    """The run ``run_id``, or the latest; ``NoRun`` when there is none."""
    if run_id is not None:
        run = session.get(AnalyticsRun, run_id)
        if run is None:
            raise NoRun(f"There is no analytics run {run_id}.")
        return run
    run = session.scalars(select(AnalyticsRun).order_by(AnalyticsRun.id.desc()).limit(1)).first()
    if run is None:
        raise NoRun("No analytics run yet: run 'tenure analytics run' first.")
    return run


def list_runs(*, session: Session, limit: int = 50) -> list[AnalyticsRun]:
    """The latest runs, newest first."""
    return list(session.scalars(select(AnalyticsRun).order_by(AnalyticsRun.id.desc()).limit(limit)))


def require_part(run: AnalyticsRun, part: str) -> dict[str, Any]:
    """The results of ``part`` of the run; ``TooLittleHistory`` with the reason it was
    skipped."""
    skipped = run.results.get("skipped", {})
    if part in skipped:
        raise TooLittleHistory(f"Run {run.id} has no {part} results: {skipped[part]}")
    value = run.results.get(part)
    if value is None:
        raise TooLittleHistory(f"Run {run.id} has no {part} results.")
    return value  # type: ignore[no-any-return]


def _in_run(run: AnalyticsRun, scope: RecordScope) -> Select[Any]:
    """The run's per-customer rows of the customers in ``scope``."""
    stmt = select(AnalyticsCustomer).where(AnalyticsCustomer.run_id == run.id)
    reached = customers_service.in_scope(scope)
    if reached is not None:
        stmt = stmt.where(AnalyticsCustomer.customer_id.in_(reached))
    return stmt


def _customers_query(
    run: AnalyticsRun,
    *,
    scope: RecordScope,
    sort: str,
    segment: str | None,
    cluster: int | None,
) -> Select[Any]:
    if sort not in CUSTOMER_SORTS:
        raise field_error("sort", f"sort must be one of: {', '.join(CUSTOMER_SORTS)}.")
    stmt = _in_run(run, scope)
    if segment is not None:
        stmt = stmt.where(AnalyticsCustomer.segment == segment)
    if cluster is not None:
        stmt = stmt.where(AnalyticsCustomer.cluster == cluster)
    if sort.lstrip("-") in ("clv", "churn_risk"):
        column = getattr(AnalyticsCustomer, sort.lstrip("-"))
        stmt = stmt.where(column.is_not(None))
    return stmt.order_by(*CUSTOMER_SORTS[sort])


def customers(
    *,
    session: Session,
    run: AnalyticsRun,
    scope: RecordScope,
    sort: str = "customer_id",
    segment: str | None = None,
    cluster: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[AnalyticsCustomer]:
    """Per-customer results of a run for the customers in ``scope``, filtered and sorted."""
    stmt = _customers_query(run, scope=scope, sort=sort, segment=segment, cluster=cluster)
    return list(session.scalars(stmt.limit(limit).offset(offset)))


def customer_result(
    *, session: Session, run: AnalyticsRun, customer_id: int, scope: RecordScope
) -> AnalyticsCustomer:
    """One customer's results in the run; ``NotFound`` if they had bought nothing by then
    or are out of ``scope`` (the same answer: as if there were no such customer)."""
    row = session.get(AnalyticsCustomer, (run.id, customer_id))
    if row is None or not customers_service.reaches(
        session=session, customer_id=customer_id, scope=scope
    ):
        raise NotFound(
            f"Customer {customer_id} is not in analytics run {run.id}: no purchase in "
            f"{run.currency} on or before {run.as_of.isoformat()} (or no such customer)."
        )
    return row


def grid_revenue(*, session: Session, run: AnalyticsRun) -> dict[tuple[int, int], Decimal]:
    """Revenue per (R, FM) cell of the run over the whole base, for the heat map by value."""
    stmt = select(
        AnalyticsCustomer.r_score,
        AnalyticsCustomer.f_score,
        AnalyticsCustomer.m_score,
        func.sum(AnalyticsCustomer.revenue),
    ).where(AnalyticsCustomer.run_id == run.id)
    scores = (AnalyticsCustomer.r_score, AnalyticsCustomer.f_score, AnalyticsCustomer.m_score)
    cells: dict[tuple[int, int], Decimal] = {}
    for r, f, m, revenue in session.execute(stmt.group_by(*scores)):
        key = (int(r), (int(f) + int(m) + 1) // 2)  # FM: (F + M) / 2 rounded half up
        cells[key] = cells.get(key, Decimal(0)) + Decimal(revenue or 0)
    return cells


def clv_values(*, session: Session, run: AnalyticsRun) -> list[Decimal]:
    """Every customer's CLV in the run (the whole base), for the distribution."""
    stmt = select(AnalyticsCustomer.clv).where(
        AnalyticsCustomer.run_id == run.id, AnalyticsCustomer.clv.is_not(None)
    )
    return [v for v in session.scalars(stmt) if v is not None]


def rules(
    *,
    session: Session,
    run: AnalyticsRun,
    product_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[AnalyticsRule]:
    """The run's rules by rank (strongest lift first), those naming ``product_id`` if given."""
    require_part(run, "basket")
    stmt = select(AnalyticsRule).where(AnalyticsRule.run_id == run.id).order_by(AnalyticsRule.rank)
    if product_id is None:
        return list(session.scalars(stmt.limit(limit).offset(offset)))
    found = [
        r
        for r in session.scalars(stmt)
        if product_id in r.antecedents or product_id in r.consequents
    ]
    return found[offset : offset + limit]


def _product_counts(session: Session, run: AnalyticsRun) -> dict[int, int]:
    stmt = select(AnalyticsProduct.product_id, AnalyticsProduct.baskets).where(
        AnalyticsProduct.run_id == run.id
    )
    return {int(p): int(n) for p, n in session.execute(stmt)}


def _cooccurrence(session: Session, run: AnalyticsRun, rows_of: set[int]) -> basket.CoOccurrence:
    """The run's basket counts, with the pair counts of the products ``rows_of`` only."""
    from scipy import sparse

    from tenure.analytics import basket

    counts = _product_counts(session, run)
    items = sorted(counts)
    index = {item: i for i, item in enumerate(items)}
    stmt = select(AnalyticsPair.product_id, AnalyticsPair.other_id, AnalyticsPair.baskets).where(
        AnalyticsPair.run_id == run.id, AnalyticsPair.product_id.in_(sorted(rows_of))
    )
    rows, cols, data = [], [], []
    for p, o, n in session.execute(stmt):
        rows.append(index[p])
        cols.append(index[o])
        data.append(n)
    pairs = sparse.csr_matrix((data, (rows, cols)), shape=(len(items), len(items)), dtype=np.int64)
    baskets = int(run.results.get("basket", {}).get("baskets", 0))
    return basket.CoOccurrence(items, baskets, np.array([counts[i] for i in items]), pairs)


def together(
    *, session: Session, run: AnalyticsRun, product_id: int, limit: int = 10
) -> list[basket.Together]:
    """Products most often bought with ``product_id`` in the run's baskets."""
    require_part(run, "basket")
    catalog_service.get(session=session, product_id=product_id, include_trashed=True)
    co = _cooccurrence(session, run, {product_id})
    if product_id not in co.index:
        raise ProductNeverSold(
            f"Product {product_id} is in no purchased order in {run.currency} on or before "
            f"{run.as_of.isoformat()}."
        )
    return co.together(product_id, limit=limit)


def recommendations(
    *, session: Session, run: AnalyticsRun, customer_id: int, scope: RecordScope, k: int = 10
) -> list[tuple[int, float]]:
    """Products for a customer in ``scope`` from the run's rules and co-occurrence, not
    yet bought."""
    require_part(run, "basket")
    customer_result(session=session, run=run, customer_id=customer_id, scope=scope)
    owned = orders_service.products_bought(
        session=session, customer_id=customer_id, currency=run.currency
    )
    co = _cooccurrence(session, run, owned)
    from tenure.analytics import basket

    stored = [
        basket.Rule(
            tuple(r.antecedents),
            tuple(r.consequents),
            r.support,
            r.confidence,
            r.lift,
            r.leverage,
            r.conviction,
        )
        for r in session.scalars(select(AnalyticsRule).where(AnalyticsRule.run_id == run.id))
    ]
    return basket.Recommender(stored, co).recommend(owned, k=k)


def models(*, session: Session, kind: str | None = None) -> list[AnalyticsModel]:
    """Stored churn models, newest first."""
    stmt = select(AnalyticsModel).order_by(AnalyticsModel.id.desc())
    if kind is not None:
        stmt = stmt.where(AnalyticsModel.kind == kind)
    return list(session.scalars(stmt))


# --- CSV --------------------------------------------------------------------------------

EXPORTS = ("customers", "rules", "segments", "clusters", "statistics", "models")


def _csv(rows: Iterator[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for i, row in enumerate(rows):
        writer.writerow(["" if v is None else v for v in row])
        if i % 1000 == 999:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _summary_rows(stats: dict[str, Any], group: str, name: str) -> Iterator[list[Any]]:
    for figure, summary in stats.items():
        if figure == "customers":
            continue
        yield [
            group, name, figure, summary["n"], summary["mean"], summary["median"],
            summary["variance"], summary["std"],
        ]  # fmt: skip


def export_rows(
    *, session: Session, run: AnalyticsRun, table: str, scope: RecordScope
) -> Iterator[list[Any]]:
    """The rows (header first) of one exported table of a run; the customers table holds
    the customers in ``scope`` only."""
    if table == "customers":
        yield list(CUSTOMER_COLUMNS)
        last = 0
        while True:
            batch = list(
                session.scalars(
                    _in_run(run, scope)
                    .where(AnalyticsCustomer.customer_id > last)
                    .order_by(AnalyticsCustomer.customer_id)
                    .limit(5000)
                )
            )
            if not batch:
                return
            for row in batch:
                yield [getattr(row, c) for c in CUSTOMER_COLUMNS]
            last = batch[-1].customer_id
    elif table == "rules":
        yield list(RULE_COLUMNS)
        for rule in rules(session=session, run=run, limit=10**9):
            yield [
                rule.rank, " ".join(map(str, rule.antecedents)),
                " ".join(map(str, rule.consequents)), rule.support, rule.confidence, rule.lift,
                rule.leverage, rule.conviction,
            ]  # fmt: skip
    elif table == "segments":
        header = ["segment", "customers", "share", "revenue", "mean_clv", "mean_churn_risk"]
        yield header
        for seg in run.results.get("segments", []):
            yield [seg.get(h) for h in header]
    elif table == "clusters":
        header = [
            "cluster", "customers", "share", "median_recency_days", "median_purchase_days",
            "median_revenue", "description",
        ]  # fmt: skip
        yield header
        for c in require_part(run, "clusters")["clusters"]:
            yield [c[h] for h in header]
    elif table == "statistics":
        yield ["group", "name", "figure", "n", "mean", "median", "variance", "std"]
        yield from _summary_rows(run.results["statistics"], "all", "all")
        for name, stats in run.results.get("statistics_by_segment", {}).items():
            yield from _summary_rows(stats, "segment", name)
        for name, stats in run.results.get("statistics_by_cluster", {}).items():
            yield from _summary_rows(stats, "cluster", name)
    elif table == "models":
        yield ["kind", "version", "run_id", "created_at", "roc_auc", "pr_auc", "brier"]
        for m in models(session=session):
            yield [
                m.kind, m.version, m.run_id, m.created_at.isoformat(), m.metrics.get("roc_auc"),
                m.metrics.get("pr_auc"), m.metrics.get("brier"),
            ]  # fmt: skip
    else:
        raise NotFound(
            f"There is no analytics table {table!r}; choose one of: {', '.join(EXPORTS)}."
        )


def export_csv(
    *, session: Session, run: AnalyticsRun, table: str, scope: RecordScope
) -> Iterator[str]:
    """One exported table as CSV text, in chunks."""
    rows = export_rows(session=session, run=run, table=table, scope=scope)
    first = next(rows)  # raises at once for an unknown table or a skipped part
    return _csv(_chain(first, rows))


def _chain(first: list[Any], rest: Iterator[list[Any]]) -> Iterator[list[Any]]:
    yield first
    yield from rest
