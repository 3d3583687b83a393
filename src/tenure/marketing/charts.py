"""The results chart of a campaign: response and conversion rates of the treatment and
control groups side by side, drawn with the analytics charts' matplotlib helpers."""

from __future__ import annotations

from collections.abc import Callable

from tenure.analytics.charts import _figure, _save
from tenure.marketing.schemas import CampaignResults

KINDS = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed")


def labels(gettext: Callable[[str], str]) -> dict[str, str]:
    words = {kind: gettext(kind) for kind in KINDS}
    words.update(
        converted=gettext("converted"),
        treatment=gettext("Treatment"),
        control=gettext("Control"),
        rate=gettext("Share of members"),
    )
    return words


def results_chart(results: CampaignResults, *, labels: dict[str, str]) -> bytes:
    """A grouped bar chart (SVG) of the rate of each response and of conversions."""
    names = [*KINDS, "converted"]
    treatment = [results.treatment.rates[k] for k in KINDS] + [results.treatment.conversion_rate]
    control = [results.control.rates[k] for k in KINDS] + [results.control.conversion_rate]
    figure = _figure(6.4, 3.6)
    axes = figure.subplots()
    positions = range(len(names))
    width = 0.4
    axes.bar(
        [p - width / 2 for p in positions],
        treatment,
        width,
        label=labels["treatment"],
        color="#1f5fa8",
    )
    axes.bar(
        [p + width / 2 for p in positions], control, width, label=labels["control"], color="#c2571a"
    )
    axes.set_xticks(list(positions), [labels[n] for n in names], rotation=20)
    axes.set_ylabel(labels["rate"])
    axes.set_ylim(0, 1)
    axes.legend()
    return _save(figure, "svg")
