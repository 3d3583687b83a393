"""One entry of a customer's timeline (the 360 page's stream of everything that
happened to them). Each domain turns its own records into entries through a
``timeline_entries(*, session, customer_id, before, limit)`` function in its service;
the timeline merges them newest first.

An entry's sentences are kept as message ids with their values, not as finished text:
the API renders them in English, pages in the reader's language."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tenure.core.money import quantize


def N_(message: str) -> str:
    """Mark ``message`` for extraction (scripts/i18n.sh); it is translated where shown."""
    return message


@dataclass(frozen=True, slots=True)
class Amount:
    """Money in an entry: "12.50 EUR" in English, as the reader writes money on pages."""

    value: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{quantize(self.value, self.currency)} {self.currency}"


@dataclass(frozen=True, slots=True)
class Message:
    """A sentence by its message id (marked with ``N_``) and the values to fill in. The
    values are the user's own words (titles, subjects) and are never translated."""

    msgid: str
    params: Mapping[str, str | int | Amount] = field(default_factory=dict)

    def __str__(self) -> str:
        return say(self)


# A plain str is shown as it is in every language (a user's own text).
Text = str | Message | Amount


def _same(text: str) -> str:
    return text


def say(
    text: Text, gettext: Callable[[str], str] = _same, money: Callable[[Amount], str] = str
) -> str:
    """``text`` in the language of ``gettext`` (English without one), amounts by ``money``."""
    if isinstance(text, Amount):
        return money(text)
    if isinstance(text, str):
        return text
    values = {k: money(v) if isinstance(v, Amount) else v for k, v in text.params.items()}
    return gettext(text.msgid) % values


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime  # UTC, when it happened
    kind: str  # order, ticket, campaign, opportunity, interaction, task, change
    title: Text  # one line a person reads
    detail: Text | None = None  # a second line (status, amount, excerpt), or nothing
    url: str | None = None  # the page of the record, when it has one
