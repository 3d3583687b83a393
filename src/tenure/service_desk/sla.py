"""Service levels: when a ticket's first response and resolution are due.

A policy in calendar time adds its minutes to the opening time. A policy in business
hours walks the business week (``TENURE_BUSINESS_HOURS``, e.g. ``mon-fri 09:00-17:00``,
in ``TENURE_BUSINESS_TIMEZONE``) and counts only the minutes inside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from tenure.config import Settings

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC = re.compile(r"^\s*([a-z,\-]+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# The built-in service levels: priority -> (first response, resolution) in minutes.
DEFAULTS: dict[str, tuple[int, int]] = {
    "P1": (60, 8 * 60),
    "P2": (4 * 60, 24 * 60),
    "P3": (8 * 60, 72 * 60),
    "P4": (24 * 60, 120 * 60),
}


@dataclass(frozen=True)
class BusinessHours:
    """Working days (0 = Monday) and the daily opening and closing times, in ``zone``."""

    days: frozenset[int]
    opens: time
    closes: time
    zone: ZoneInfo

    @property
    def minutes_per_day(self) -> int:
        return (self.closes.hour * 60 + self.closes.minute) - (
            self.opens.hour * 60 + self.opens.minute
        )


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{part!r} is not a day or a range of days like mon-fri")
        start, end = DAYS.index(first), DAYS.index(last or first)
        if end < start:
            raise ValueError(f"{part!r} runs backwards; write it like mon-fri")
        days.update(range(start, end + 1))
    return frozenset(days)


def parse_hours(spec: str, timezone: str = "UTC") -> BusinessHours:
    """``"mon-fri 09:00-17:00"`` (days as ranges or lists: ``mon,wed,fri``) in ``timezone``;
    ``ValueError`` saying what is wrong otherwise."""
    match = _SPEC.match(spec.lower())
    if match is None:
        raise ValueError(f"{spec!r} is not like 'mon-fri 09:00-17:00'")
    days = _days(match.group(1))
    h1, m1, h2, m2 = (int(match.group(i)) for i in range(2, 6))
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{spec!r} has a time that does not exist")
    opens = time(h1, m1)
    closes = time.max if h2 == 24 else time(h2, m2)
    if closes <= opens:
        raise ValueError(f"{spec!r} closes before it opens")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{timezone!r} is not a time zone like Europe/Berlin") from None
    return BusinessHours(days, opens, closes, zone)


def add_business_minutes(start: datetime, minutes: int, hours: BusinessHours) -> datetime:
    """The instant (UTC) ``minutes`` of business time after ``start``.

    Walks day by day in the business time zone: time before opening starts at opening,
    time after closing and days off are skipped; a day's minutes are counted on its
    wall clock, so a change to or from summer time moves nothing but the UTC result."""
    if minutes < 0:
        raise ValueError("minutes must be 0 or more")
    local = start.astimezone(hours.zone)
    day = local.date()
    remaining = timedelta(minutes=minutes)
    # A week without any business day would never end: refused when parsed (no days).
    for _ in range(minutes // max(hours.minutes_per_day, 1) * 7 + 14):
        if day.weekday() in hours.days:
            opening = datetime.combine(day, hours.opens, hours.zone)
            closing = datetime.combine(day, hours.closes, hours.zone)
            begin = max(opening, local) if local.date() == day else opening
            if begin < closing:
                available = closing - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(UTC)
                remaining -= available
        day += timedelta(days=1)
    raise ValueError("the business hours have no working day")  # pragma: no cover


def due(start: datetime, minutes: int, *, business: bool, hours: BusinessHours) -> datetime:
    """When something ``minutes`` after ``start`` is due, under a policy's clock."""
    if business:
        return add_business_minutes(start, minutes, hours)
    return (start + timedelta(minutes=minutes)).astimezone(UTC)


@lru_cache(maxsize=8)
def _cached_hours(spec: str, timezone: str) -> BusinessHours:
    return parse_hours(spec, timezone)


def hours_of(settings: Settings) -> BusinessHours:
    """The business hours the settings describe (checked when the settings were read)."""
    return _cached_hours(settings.business_hours, settings.business_timezone)
