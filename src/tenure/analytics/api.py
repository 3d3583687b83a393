"""Analytics over HTTP: /api/v1/analytics, read from stored runs (the latest by default,
or ``?run_id=``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response

from tenure.analytics import rfm
from tenure.analytics import service as analytics_service
from tenure.analytics.schemas import (
    Churn,
    Clusters,
    CustomerPage,
    CustomerResult,
    Lifetime,
    ModelList,
    ModelRead,
    ProductScore,
    Recommendations,
    RulePage,
    RuleRead,
    RunList,
    RunRead,
    RunSummary,
    Segments,
    Statistics,
    Together,
    TogetherItem,
)
from tenure.catalog import service as catalog_service
from tenure.core.errors import field_error
from tenure.core.openapi import problems
from tenure.core.routing import SessionRouter
from tenure.core.schemas import Id
from tenure.deps import ScopeDep, SessionDep, require
from tenure.security.permissions import ANALYTICS_READ
from tenure.security.service import Principal
from tenure.service_desk import service as desk_service

Reader = Annotated[Principal, Depends(require(ANALYTICS_READ))]
RunId = Annotated[Id | None, Query(description="A run id; the latest run when left out.")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page.")]

# A plain FastAPI router: these handlers can read for a while (exports, recommendations),
# so they run in the thread pool rather than on the event loop (see tenure.core.routing).
# Every route reads a run (404 without one) and may meet a part skipped for too little
# history (422). Routes that name customers pass the caller's record scope to the service,
# which shows only the customers in it; aggregates over the whole base need no scope.
router = SessionRouter(prefix="/api/v1/analytics", tags=["analytics"], responses=problems(404, 422))


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise field_error("cursor", "cursor must be the next_cursor of a previous page.")
    return int(cursor)


def _next(offset: int, limit: int, got: int) -> str | None:
    return str(offset + limit) if got == limit else None


@router.get("/runs", response_model=RunList)
def list_runs(session: SessionDep, _actor: Reader, limit: Limit = 50) -> RunList:
    """Stored runs, newest first."""
    runs = analytics_service.list_runs(session=session, limit=limit)
    return RunList(items=[RunSummary.model_validate(r) for r in runs])


@router.get("/runs/{run_id}", response_model=RunRead)
def get_run(run_id: Id, session: SessionDep, _actor: Reader) -> RunRead:
    """A run: parameters, fitted parameters with log-likelihoods, metrics and summaries."""
    return RunRead.model_validate(analytics_service.get_run(session=session, run_id=run_id))


@router.get("/statistics", response_model=Statistics)
def statistics(session: SessionDep, _actor: Reader, run_id: RunId = None) -> Statistics:
    """Order count, purchase days, revenue, average order value, purchase interval and
    satisfaction (CSAT): n, mean, median, variance and standard deviation, overall, per
    segment and cluster."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    r = run.results
    return Statistics(
        run_id=run.id,
        currency=run.currency,
        overall=r["statistics"],
        by_segment=r.get("statistics_by_segment", {}),
        by_cluster=r.get("statistics_by_cluster", {}),
        currencies=r.get("currencies", {}),
        satisfaction=r.get("satisfaction", {}),
    )


@router.get("/segments", response_model=Segments)
def segments(session: SessionDep, _actor: Reader, run_id: RunId = None) -> Segments:
    """RFM segments: the rule table, customers per (R, FM) cell, and size and value per
    segment."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    return Segments(
        run_id=run.id,
        currency=run.currency,
        rules=[
            {
                "segment": rule.segment,
                "recency": list(rule.recency),
                "frequency_monetary": list(rule.frequency_monetary),
                "meaning": rule.meaning,
            }
            for rule in rfm.SEGMENT_RULES
        ],
        grid=run.results["rfm"]["grid"],
        segments=run.results["segments"],
    )


@router.get("/rfm", response_model=CustomerPage)
def rfm_customers(
    session: SessionDep,
    _actor: Reader,
    scope: ScopeDep,
    run_id: RunId = None,
    segment: str | None = None,
    cluster: int | None = None,
    sort: str = "customer_id",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CustomerPage:
    """Per-customer results (RFM scores, segment, cluster, CLV, churn risk), filtered by
    segment or cluster; ``sort`` by customer_id, -clv, clv, -churn_risk, churn_risk,
    -revenue or recency_days."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    if segment is not None and segment not in rfm.SEGMENTS:
        raise field_error("segment", f"segment must be one of: {', '.join(rfm.SEGMENTS)}.")
    offset = _offset(cursor)
    rows = analytics_service.customers(
        session=session,
        run=run,
        scope=scope,
        sort=sort,
        segment=segment,
        cluster=cluster,
        limit=limit,
        offset=offset,
    )
    return CustomerPage(
        run_id=run.id,
        currency=run.currency,
        items=[CustomerResult.model_validate(r) for r in rows],
        next_cursor=_next(offset, limit, len(rows)),
    )


@router.get("/clusters", response_model=Clusters)
def clusters(session: SessionDep, _actor: Reader, run_id: RunId = None) -> Clusters:
    """k-means clusters: k, the silhouette of every k tried, and each cluster in words."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    part = analytics_service.require_part(run, "clusters")
    return Clusters(run_id=run.id, **part)


@router.get("/clv", response_model=Lifetime)
def clv(
    session: SessionDep, _actor: Reader, scope: ScopeDep, run_id: RunId = None, limit: Limit = 50
) -> Lifetime:
    """BG/NBD and Gamma-Gamma parameters with log-likelihoods, CLV settings, and the
    customers with the highest CLV."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    bgnbd = analytics_service.require_part(run, "bgnbd")
    has_clv = "clv" not in run.results.get("skipped", {})
    top = (
        analytics_service.customers(session=session, run=run, scope=scope, sort="-clv", limit=limit)
        if has_clv
        else []
    )
    return Lifetime(
        run_id=run.id,
        period=run.period,
        bgnbd=bgnbd,
        gamma_gamma=run.results.get("gamma_gamma"),
        clv=run.results.get("clv"),
        top=[CustomerResult.model_validate(r) for r in top],
    )


@router.get("/churn", response_model=Churn)
def churn(
    session: SessionDep, _actor: Reader, scope: ScopeDep, run_id: RunId = None, limit: Limit = 50
) -> Churn:
    """Churn models compared (ROC AUC, PR AUC, Brier, calibration; BG/NBD P(alive) as the
    baseline), the chosen model and its version, and the customers most at risk."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    part = analytics_service.require_part(run, "churn")
    rows = analytics_service.customers(
        session=session, run=run, scope=scope, sort="-churn_risk", limit=limit
    )
    return Churn(
        run_id=run.id, churn=part, at_risk=[CustomerResult.model_validate(r) for r in rows]
    )


@router.get("/customers/{customer_id}", response_model=CustomerResult)
def customer(
    customer_id: Id, session: SessionDep, _actor: Reader, scope: ScopeDep, run_id: RunId = None
) -> CustomerResult:
    """One customer's results: scores, segment, cluster, P(alive), expected purchases,
    CLV, purchase_probability and churn_risk."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    row = analytics_service.customer_result(
        session=session, run=run, customer_id=customer_id, scope=scope
    )
    result = CustomerResult.model_validate(row)
    result.satisfaction = desk_service.satisfaction_summary(
        session=session, customer_ids=[customer_id]
    )
    return result


@router.get("/customers/{customer_id}/recommendations", response_model=Recommendations)
def recommendations(
    customer_id: Id,
    session: SessionDep,
    _actor: Reader,
    scope: ScopeDep,
    run_id: RunId = None,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Recommendations:
    """Products to offer a customer, from rules and co-occurrence, not yet bought."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    found = analytics_service.recommendations(
        session=session, run=run, customer_id=customer_id, scope=scope, k=k
    )
    names = catalog_service.names(session=session, product_ids={p for p, _ in found})
    return Recommendations(
        run_id=run.id,
        customer_id=customer_id,
        items=[ProductScore(product_id=p, name=names.get(p), score=s) for p, s in found],
    )


@router.get("/products/{product_id}/together", response_model=Together)
def together(
    product_id: Id,
    session: SessionDep,
    _actor: Reader,
    run_id: RunId = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Together:
    """Products most often in the same order as this one."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    found = analytics_service.together(session=session, run=run, product_id=product_id, limit=limit)
    names = catalog_service.names(session=session, product_ids={t.item for t in found})
    return Together(
        run_id=run.id,
        product_id=product_id,
        items=[
            TogetherItem(
                product_id=t.item,
                name=names.get(t.item),
                baskets=t.baskets,
                support=t.support,
                confidence=t.confidence,
                lift=t.lift,
            )
            for t in found
        ],
    )


@router.get("/rules", response_model=RulePage)
def rules(
    session: SessionDep,
    _actor: Reader,
    run_id: RunId = None,
    product_id: Id | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> RulePage:
    """Association rules by lift, those naming ``product_id`` on either side if given."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    offset = _offset(cursor)
    found = analytics_service.rules(
        session=session, run=run, product_id=product_id, limit=limit, offset=offset
    )
    return RulePage(
        run_id=run.id,
        items=[RuleRead.model_validate(r) for r in found],
        next_cursor=_next(offset, limit, len(found)),
    )


@router.get("/models", response_model=ModelList)
def models(session: SessionDep, _actor: Reader, kind: str | None = None) -> ModelList:
    """Stored churn models with their version and test metrics, newest first."""
    found = analytics_service.models(session=session, kind=kind)
    return ModelList(items=[ModelRead.model_validate(m) for m in found])


@router.get("/export/{table}.csv", response_class=Response)
def export(
    table: str, session: SessionDep, _actor: Reader, scope: ScopeDep, run_id: RunId = None
) -> Response:
    """One table of a run as CSV: customers (those in the caller's scope), rules, segments,
    clusters, statistics, models."""
    run = analytics_service.get_run(session=session, run_id=run_id)
    body = "".join(analytics_service.export_csv(session=session, run=run, table=table, scope=scope))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="analytics-{run.id}-{table}.csv"'},
    )
