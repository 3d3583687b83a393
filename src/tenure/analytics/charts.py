"""Charts of a stored run, drawn on the server with matplotlib (Agg, no display) as SVG or
PNG: the RFM grid as a heat map (customers or revenue per cell), the CLV distribution,
and the ROC curves and calibration of the churn models compared.

Every chart is an aggregate over the whole customer base (it names no customer), so one
drawing serves everyone who reads analytics. A run never changes once stored: drawings
are kept in memory per run, chart, format and wording, a small number of them at most.
Words on a chart come from the caller as ``Labels``: translated where the fonts can show
them, otherwise language-neutral symbols (R, FM, n, FPR, ...).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tenure.analytics import service as analytics_service
from tenure.analytics.models import AnalyticsRun
from tenure.core.errors import NotFound

if TYPE_CHECKING:  # matplotlib loads on the first drawing, not with the application
    from matplotlib.figure import Figure

CHARTS = ("rfm-customers", "rfm-value", "clv", "roc", "calibration")
FORMATS = {"svg": "image/svg+xml", "png": "image/png"}
CACHE_SIZE = 48
# Font families that hold Chinese characters, in order of preference.
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)
# What a chart says when its words cannot be shown in the reader's language.
NEUTRAL = {
    "recency": "R",
    "fm": "FM",
    "customers": "n",
    "revenue": "Σ {currency}",
    "clv": "CLV ({currency})",
    "fpr": "FPR",
    "tpr": "TPR",
    "predicted": "p̂",
    "observed": "p",
    "chance": "AUC 0.5",
    "perfect": "p = p̂",
}
GRID_COLOURS = {"rfm-customers": "Blues", "rfm-value": "Greens"}
MODEL_COLOURS = ("#1f5fa8", "#c2571a", "#2e8b57", "#7a4fa3", "#6b6b6b")


@dataclass(frozen=True)
class Labels:
    """The words of the charts: ``key`` names the wording (a locale, or "neutral") for the
    cache; ``texts`` holds every entry of ``NEUTRAL`` and the model names ("model:<kind>")."""

    key: str
    texts: Mapping[str, str] = field(default_factory=lambda: dict(NEUTRAL))

    def __call__(self, name: str, **values: str) -> str:
        text = self.texts.get(name, NEUTRAL.get(name, name))
        return text.format(**values) if values else text


@cache
def cjk_font() -> str | None:
    """The name of an installed font that shows Chinese characters, if there is one."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def can_write(locale: str) -> bool:
    """Whether charts can show words in ``locale`` (Chinese needs a CJK font)."""
    return not locale.startswith("zh") or cjk_font() is not None


# --- the cache ---------------------------------------------------------------------------

_drawn: OrderedDict[tuple[int, str, str, str], bytes] = OrderedDict()
_lock = threading.Lock()


def _cached(key: tuple[int, str, str, str], draw: Callable[[], bytes]) -> bytes:
    with _lock:
        found = _drawn.get(key)
        if found is not None:
            _drawn.move_to_end(key)
            return found
    body = draw()  # outside the lock: two first requests may both draw, harmlessly
    with _lock:
        _drawn[key] = body
        _drawn.move_to_end(key)
        while len(_drawn) > CACHE_SIZE:
            _drawn.popitem(last=False)
    return body


def forget() -> None:
    """Drop every kept drawing (tests; a run deleted)."""
    with _lock:
        _drawn.clear()


def chart(*, session: Session, run: AnalyticsRun, name: str, fmt: str, labels: Labels) -> bytes:
    """Chart ``name`` of ``run`` as ``fmt`` ("svg" or "png"); ``NotFound`` for an unknown
    chart, ``TooLittleHistory`` when the run skipped the part it draws."""
    if name not in CHARTS or fmt not in FORMATS:
        raise NotFound(
            f"There is no analytics chart {name}.{fmt}; choose one of: {', '.join(CHARTS)} "
            "as .svg or .png."
        )
    data = _DATA[name](session, run)  # checks the part first, so a skipped one is refused
    return _cached((run.id, name, fmt, labels.key), lambda: _save(_DRAW[name](data, labels), fmt))


# --- data per chart (cheap: read before the cache, so a skipped part is always refused) ---


def _grid_data(session: Session, run: AnalyticsRun) -> dict[str, Any]:
    return {"run": run, "session": session}


def _clv_data(session: Session, run: AnalyticsRun) -> dict[str, Any]:
    analytics_service.require_part(run, "clv")
    return {"run": run, "session": session}


def _churn_data(session: Session, run: AnalyticsRun) -> dict[str, Any]:
    return {"models": analytics_service.require_part(run, "churn")["models"]}


_DATA: dict[str, Callable[[Session, AnalyticsRun], dict[str, Any]]] = {
    "rfm-customers": _grid_data,
    "rfm-value": _grid_data,
    "clv": _clv_data,
    "roc": _churn_data,
    "calibration": _churn_data,
}


# --- drawing -----------------------------------------------------------------------------


@cache
def _setup() -> None:
    """Once: the Agg backend (no display), stable SVG ids, and a CJK font first if any."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import rcParams

    rcParams["svg.hashsalt"] = "tenure"  # the same drawing gives the same file
    rcParams["font.size"] = 9
    font = cjk_font()
    if font is not None:
        rcParams["font.sans-serif"] = [font, *rcParams["font.sans-serif"]]


def _figure(width: float = 6.4, height: float = 4.2) -> Figure:
    from matplotlib.figure import Figure

    _setup()
    return Figure(figsize=(width, height), layout="constrained")


def _save(figure: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {"Software": None}
    figure.savefig(buffer, format=fmt, dpi=110, metadata=metadata)
    return buffer.getvalue()


def _short(value: float) -> str:
    """A compact number for a heat map cell: 950, 12.3k, 4.5M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def _draw_grid(data: dict[str, Any], labels: Labels, by: str) -> Figure:
    run: AnalyticsRun = data["run"]
    values = [[0.0] * 5 for _ in range(5)]  # rows R 5..1, columns FM 1..5
    if by == "customers":
        for cell in run.results["rfm"]["grid"]:
            values[5 - cell["r"]][cell["fm"] - 1] = float(cell["customers"])
        scale = labels("customers")
    else:
        revenue = analytics_service.grid_revenue(session=data["session"], run=run)
        for (r, fm), amount in revenue.items():
            values[5 - r][fm - 1] = float(amount)
        scale = labels("revenue", currency=run.currency)
    figure = _figure(5.6, 4.4)
    axes = figure.subplots()
    image = axes.imshow(values, cmap=GRID_COLOURS[f"rfm-{by}"], aspect="equal")
    top = max(max(row) for row in values) or 1.0
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            colour = "white" if value > top * 0.6 else "black"
            axes.text(j, i, _short(value), ha="center", va="center", color=colour)
    axes.set_xticks(range(5), [str(fm) for fm in range(1, 6)])
    axes.set_yticks(range(5), [str(r) for r in range(5, 0, -1)])
    axes.set_xlabel(labels("fm"))
    axes.set_ylabel(labels("recency"))
    figure.colorbar(image, ax=axes, label=scale, shrink=0.85)
    return figure


def _draw_clv(data: dict[str, Any], labels: Labels) -> Figure:
    import numpy as np

    run: AnalyticsRun = data["run"]
    values = np.array(
        [float(v) for v in analytics_service.clv_values(session=data["session"], run=run)]
    )
    figure = _figure()
    axes = figure.subplots()
    if values.size:
        # Clip the long tail at the 99th percentile so the bulk of customers stays visible.
        high = float(np.quantile(values, 0.99)) or float(values.max()) or 1.0
        axes.hist(np.minimum(values, high), bins=40, color=MODEL_COLOURS[0], edgecolor="white")
    axes.set_xlabel(labels("clv", currency=run.currency))
    axes.set_ylabel(labels("customers"))
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def _model_name(labels: Labels, kind: str) -> str:
    return labels.texts.get(f"model:{kind}", kind)


def _draw_roc(data: dict[str, Any], labels: Labels) -> Figure:
    figure = _figure(5.2, 4.6)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle=":", color="#999999", label=labels("chance"))
    for i, (kind, found) in enumerate(sorted(data["models"].items())):
        curve = found.get("roc_curve")
        if not curve:
            continue  # a run stored before ROC curves were kept
        axes.plot(
            curve["fpr"],
            curve["tpr"],
            color=MODEL_COLOURS[i % len(MODEL_COLOURS)],
            label=f"{_model_name(labels, kind)} (AUC {found['roc_auc']:.3f})",
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel(labels("fpr"))
    axes.set_ylabel(labels("tpr"))
    axes.legend(loc="lower right", fontsize=8)
    return figure


def _draw_calibration(data: dict[str, Any], labels: Labels) -> Figure:
    figure = _figure(5.2, 4.6)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle=":", color="#999999", label=labels("perfect"))
    for i, (kind, found) in enumerate(sorted(data["models"].items())):
        rows = [r for r in found["calibration"] if r["customers"]]
        axes.plot(
            [r["mean_predicted"] for r in rows],
            [r["observed_rate"] for r in rows],
            marker="o",
            markersize=3,
            color=MODEL_COLOURS[i % len(MODEL_COLOURS)],
            label=f"{_model_name(labels, kind)} (Brier {found['brier']:.3f})",
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel(labels("predicted"))
    axes.set_ylabel(labels("observed"))
    axes.legend(loc="upper left", fontsize=8)
    return figure


_DRAW: dict[str, Callable[[dict[str, Any], Labels], Figure]] = {
    "rfm-customers": lambda data, labels: _draw_grid(data, labels, "customers"),
    "rfm-value": lambda data, labels: _draw_grid(data, labels, "value"),
    "clv": _draw_clv,
    "roc": _draw_roc,
    "calibration": _draw_calibration,
}
