"""Charts of the service figures, drawn with the analytics charts' matplotlib set-up
(Agg backend, stable SVG output): tickets and complaints per period, and the median
response and resolution times per period."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tenure.analytics.charts import _figure as new_figure
from tenure.analytics.charts import _save as save_figure

CHARTS = ("volume", "times")


def draw(name: str, figures: Mapping[str, Any], labels: Mapping[str, str]) -> bytes:
    """Chart ``name`` of ``figures`` (``service.figures``) as SVG."""
    periods = figures["per_period"]
    keys = [p["key"] for p in periods]
    from matplotlib.ticker import MaxNLocator  # loaded with the first drawing

    figure = new_figure(6.4, 3.4)
    axes = figure.subplots()
    positions = list(range(len(keys)))
    if name == "volume":
        # Side by side: all tickets, and the complaints among them.
        width = 0.4
        axes.bar(
            [x - width / 2 for x in positions],
            [p["tickets"] for p in periods],
            width=width,
            color="#1f5fa8",
            label=labels["tickets"],
        )
        axes.bar(
            [x + width / 2 for x in positions],
            [p["complaints"] for p in periods],
            width=width,
            color="#c2571a",
            label=labels["complaints"],
        )
        axes.set_ylabel(labels["tickets"])
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        for field, colour in (("first_response", "#1f5fa8"), ("resolution", "#2e8b57")):
            # A period without any answered (or resolved) ticket has no point, not a zero.
            medians = [p[f"{field}_minutes"]["median"] for p in periods]
            values = [m / 60 if m is not None else math.nan for m in medians]
            axes.plot(positions, values, marker="o", color=colour, label=labels[field])
        axes.set_ylim(bottom=0)
    axes.set_xticks(positions, keys, rotation=45, ha="right")
    axes.grid(axis="y", alpha=0.3)
    if keys:
        axes.legend(loc="upper left", frameon=False)
    return save_figure(figure, "svg")
