"""One entry of a customer's timeline (the 360 page's stream of everything that
happened to them). Each domain turns its own records into entries through a
``timeline_entries(*, session, customer_id, before, limit)`` function in its service;
the timeline merges them newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime  # UTC, when it happened
    kind: str  # order, ticket, campaign, opportunity, interaction, task, change
    title: str  # one line a person reads, already localised where it comes from a template
    detail: str | None = None  # a second line (status, amount, excerpt), or nothing
    url: str | None = None  # the page of the record, when it has one
