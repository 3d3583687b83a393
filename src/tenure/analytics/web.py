"""Analytics pages for managers and analysts: an overview of the latest run, the RFM grid
and segments, lifetime value, churn risk, association rules and clusters, with charts
drawn on the server (``/analytics/charts/<name>.svg`` or ``.png``).

Thin handlers over ``analytics.service`` (the functions the API answers with) and
``analytics.charts``. Lists that name customers take the caller's record scope; the
aggregates and the charts are over the whole customer base, as in the API.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tenure.analytics import charts, rfm
from tenure.analytics import service as analytics_service
from tenure.analytics.errors import NoRun
from tenure.analytics.models import AnalyticsCustomer, AnalyticsRun
from tenure.catalog import service as catalog_service
from tenure.core.errors import NotFound
from tenure.core.routing import SessionRouter
from tenure.core.schemas import Id
from tenure.customers import service as customers_service
from tenure.deps import SessionDep
from tenure.security.models import User
from tenure.security.permissions import ANALYTICS_READ
from tenure.security.scope import RecordScope
from tenure.web.messages import N_, localize
from tenure.web.session import PageScope, page_require
from tenure.web.templating import gettext_for, render, request_locale

Reader = Annotated[User, page_require(ANALYTICS_READ)]
RunId = Annotated[Id | None, Query()]
Gettext = Callable[[str], str]

router = SessionRouter(include_in_schema=False)
LIST_SIZE = 25
RULES_SHOWN = 20
RUN_COMMAND = "tenure analytics run"

# Words the analytics templates translate from a stored value: ``{{ _(segment) }}``.
VOCABULARY = (
    # RFM segments
    N_("champions"),
    N_("loyal"),
    N_("potential loyalists"),
    N_("new"),
    N_("promising"),
    N_("needs attention"),
    N_("can't lose them"),
    N_("at risk"),
    N_("lost"),
    N_("hibernating"),
    # what the segments mean
    N_("bought recently, often and for much"),
    N_("buy often and for much; not the very latest"),
    N_("recent, with a few purchases"),
    N_("first purchase only just made"),
    N_("bought recently, but little so far"),
    N_("middling on everything: may slip"),
    N_("were among the best, gone quiet"),
    N_("bought fairly often, but long ago"),
    N_("one small purchase, long ago"),
    N_("little, and long ago"),
    # churn models
    N_("logistic_regression"),
    N_("decision_tree"),
    N_("gradient_boosting"),
    N_("bgnbd_p_alive"),
    # run periods and parts
    N_("day"),
    N_("week"),
    N_("month"),
    N_("bgnbd"),
    N_("gamma_gamma"),
    N_("clv"),
    N_("churn"),
    N_("basket"),
    N_("clusters"),
)
PARAMETER_NAMES = {
    "as_of": N_("As of"),
    "period": N_("Time unit"),
    "currency": N_("Currency"),
    "horizon_periods": N_("CLV horizon (periods)"),
    "discount_rate": N_("Yearly discount rate"),
    "churn_horizon_days": N_("Churn horizon (days)"),
    "min_support": N_("Minimum support"),
    "min_confidence": N_("Minimum confidence"),
    "top_k": N_("Recommendations per customer"),
    "seed": N_("Random seed"),
}
# How a cluster's medians sit among everyone's (0 lowest third, 2 highest), in words.
CLUSTER_WORDS = {
    "recency": (
        N_("bought recently"),
        N_("last bought a while ago"),
        N_("have not bought for a long time"),
    ),
    "frequency": (N_("bought on one day or few"), N_("buy now and then"), N_("buy often")),
    "monetary": (N_("spend little"), N_("spend a moderate amount"), N_("spend a lot")),
}


def chart_labels(request: Request) -> charts.Labels:
    """The words of the charts in the reader's language, or neutral symbols when the
    installed fonts cannot show that language."""
    locale = request_locale(request)
    if not charts.can_write(locale):
        return charts.Labels("neutral")
    _ = gettext_for(request)
    texts = {
        "recency": _("Recency score (R)"),
        "fm": _("Frequency and monetary score (FM)"),
        "customers": _("Customers"),
        "revenue": _("Revenue ({currency})"),
        "clv": _("Lifetime value ({currency})"),
        "fpr": _("False positive rate"),
        "tpr": _("True positive rate"),
        "predicted": _("Predicted probability of buying"),
        "observed": _("Share who bought"),
        "chance": _("Chance"),
        "perfect": _("Perfect calibration"),
    }
    for kind in ("logistic_regression", "decision_tree", "gradient_boosting", "bgnbd_p_alive"):
        texts[f"model:{kind}"] = _(kind)
    return charts.Labels(locale, texts)


def _latest(session: Session) -> AnalyticsRun | None:
    try:
        return analytics_service.get_run(session=session)
    except NoRun:
        return None


def _skipped(run: AnalyticsRun, part: str, gettext: Gettext) -> str | None:
    """Why ``part`` of the run was skipped, in the reader's language where known."""
    reason = run.results.get("skipped", {}).get(part)
    if reason is None and run.results.get(part) is None:
        return gettext("This run has no results for this part.")
    return None if reason is None else localize(str(reason), gettext)


STATISTICS = (
    ("orders", N_("Orders"), False),
    ("purchase_days", N_("Purchase days"), False),
    ("revenue", N_("Revenue"), True),
    ("average_order_value", N_("Average order value"), True),
    ("purchase_interval_days", N_("Days between purchases"), False),
)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _statistics(run: AnalyticsRun, gettext: Gettext) -> list[dict[str, Any]]:
    """The run's overall statistics as table rows (money figures flagged)."""
    stats = run.results.get("statistics", {})
    rows = [
        {
            "name": name,
            "label": gettext(label),
            "money": money,
            "n": stats[name]["n"],
            **{k: _decimal(stats[name][k]) for k in ("mean", "median", "std")},
        }
        for name, label, money in STATISTICS
        if name in stats
    ]
    csat = run.results.get("satisfaction", {}).get("overall", {})
    if csat.get("n"):
        rows.append(
            {
                "name": "satisfaction",
                "label": gettext("Satisfaction (CSAT 1-5), per rating"),
                "money": False,
                "n": csat["n"],
                **{k: _decimal(csat[k]) for k in ("mean", "median", "std")},
            }
        )
    return rows


def _segments(run: AnalyticsRun | None) -> list[dict[str, Any]]:
    """Size and value per segment, money as decimals; empty segments left out."""
    if run is None:
        return []
    return [
        {
            **seg,
            "revenue": _decimal(seg["revenue"]),
            "mean_clv": None
            if seg.get("mean_clv") is None
            else _decimal(round(seg["mean_clv"], 2)),
        }
        for seg in run.results.get("segments", [])
        if seg["customers"]
    ]


def _named(
    session: Session, rows: list[AnalyticsCustomer], scope: RecordScope
) -> list[dict[str, Any]]:
    """Per-customer results with the customers' names (all in ``scope``)."""
    names = customers_service.names(
        session=session, customer_ids={r.customer_id for r in rows}, scope=scope
    )
    return [{"row": r, "name": names.get(r.customer_id)} for r in rows if r.customer_id in names]


def _page(request: Request, template: str, run: AnalyticsRun | None, **context: Any) -> Response:
    return render(
        request,
        template,
        {"run": run, "run_command": RUN_COMMAND, **context},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/analytics")
def overview(request: Request, session: SessionDep, _user: Reader) -> Response:
    """The latest run: when, with what, what was skipped; statistics and segments."""
    run = _latest(session)
    if run is None:
        return _page(request, "analytics/overview.html", None)
    _ = gettext_for(request)
    skipped = {
        part: localize(str(reason), _) for part, reason in run.results.get("skipped", {}).items()
    }
    parameters = [
        (PARAMETER_NAMES.get(name, name), value)
        for name, value in run.parameters.items()
        if value is not None
    ]
    return _page(
        request,
        "analytics/overview.html",
        run,
        parameters=parameters,
        skipped=skipped,
        statistics=_statistics(run, _),
        segments=_segments(run),
    )


@router.get("/analytics/rfm")
def rfm_page(
    request: Request,
    session: SessionDep,
    _user: Reader,
    by: Annotated[str, Query(pattern="^(customers|value)$")] = "customers",
) -> Response:
    """The R by FM grid as a heat map, coloured by customers or revenue, and the segments."""
    run = _latest(session)
    return _page(
        request,
        "analytics/rfm.html",
        run,
        by=by,
        segment_rules=rfm.SEGMENT_RULES,
        segments=_segments(run),
    )


@router.get("/analytics/clv")
def clv_page(request: Request, session: SessionDep, _user: Reader, scope: PageScope) -> Response:
    """The CLV distribution and the caller's customers with the highest CLV."""
    run = _latest(session)
    if run is None:
        return _page(request, "analytics/clv.html", None)
    skipped = _skipped(run, "clv", gettext_for(request))
    top = (
        []
        if skipped
        else analytics_service.customers(
            session=session, run=run, scope=scope, sort="-clv", limit=LIST_SIZE
        )
    )
    return _page(
        request,
        "analytics/clv.html",
        run,
        skipped=skipped,
        settings=run.results.get("clv"),
        top=_named(session, top, scope),
    )


@router.get("/analytics/churn")
def churn_page(request: Request, session: SessionDep, _user: Reader, scope: PageScope) -> Response:
    """The caller's customers most at risk of not buying again, and the models compared."""
    run = _latest(session)
    if run is None:
        return _page(request, "analytics/churn.html", None)
    skipped = _skipped(run, "churn", gettext_for(request))
    at_risk = (
        []
        if skipped
        else analytics_service.customers(
            session=session, run=run, scope=scope, sort="-churn_risk", limit=LIST_SIZE
        )
    )
    churn = run.results.get("churn") or {}
    return _page(
        request,
        "analytics/churn.html",
        run,
        skipped=skipped,
        churn=churn,
        models=sorted((churn.get("models") or {}).items()),
        at_risk=_named(session, at_risk, scope),
    )


@router.get("/analytics/baskets")
def baskets_page(request: Request, session: SessionDep, _user: Reader) -> Response:
    """The strongest association rules, and the clusters described in words."""
    run = _latest(session)
    if run is None:
        return _page(request, "analytics/baskets.html", None)
    _ = gettext_for(request)
    basket_skipped = _skipped(run, "basket", _)
    found = (
        []
        if basket_skipped
        else analytics_service.rules(session=session, run=run, limit=RULES_SHOWN)
    )
    products = {p for r in found for p in (*r.antecedents, *r.consequents)}
    names = catalog_service.names(session=session, product_ids=products)
    clusters_skipped = _skipped(run, "clusters", _)
    return _page(
        request,
        "analytics/baskets.html",
        run,
        basket_skipped=basket_skipped,
        basket=run.results.get("basket") or {},
        rules=found,
        product_names=names,
        clusters_skipped=clusters_skipped,
        clusters=[] if clusters_skipped else run.results["clusters"]["clusters"],
        cluster_words=CLUSTER_WORDS,
    )


def _chart(
    request: Request, session: Session, chart: str, fmt: str, run_id: int | None
) -> Response:
    run = analytics_service.get_run(session=session, run_id=run_id)
    body = charts.chart(session=session, run=run, name=chart, fmt=fmt, labels=chart_labels(request))
    return Response(
        body,
        media_type=charts.FORMATS[fmt],
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Disposition": f'inline; filename="analytics-{run.id}-{chart}.{fmt}"',
        },
    )


@router.get("/analytics/charts/{chart}.svg")
def chart_svg(
    request: Request, chart: str, session: SessionDep, _user: Reader, run_id: RunId = None
) -> Response:
    """A chart of the latest run (or ``run_id``) as SVG."""
    return _chart(request, session, chart, "svg", run_id)


@router.get("/analytics/charts/{chart}.png")
def chart_png(
    request: Request, chart: str, session: SessionDep, _user: Reader, run_id: RunId = None
) -> Response:
    """A chart of the latest run (or ``run_id``) as PNG."""
    return _chart(request, session, chart, "png", run_id)


def customer_figures(
    *, session: Session, customer_id: int, scope: RecordScope
) -> dict[str, Any] | None:
    """The customer's results in the latest run, for the 360 page; None without a run or
    when they had bought nothing by then."""
    run = _latest(session)
    if run is None:
        return None
    try:
        row = analytics_service.customer_result(
            session=session, run=run, customer_id=customer_id, scope=scope
        )
    except NotFound:
        return None
    return {"run": run, "row": row}
