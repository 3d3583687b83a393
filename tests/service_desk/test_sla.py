"""Due times: calendar minutes, or minutes walked through the business hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenure.config import Settings
from tenure.service_desk.sla import add_business_minutes, due, parse_hours

WEEK = parse_hours("mon-fri 09:00-17:00", "UTC")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_minutes_inside_the_same_working_day() -> None:
    # Thursday 2026-11-26, 10:00 + 90 minutes
    assert add_business_minutes(at("2026-11-26 10:00"), 90, WEEK) == at("2026-11-26 11:30")


def test_time_before_opening_starts_at_opening() -> None:
    assert add_business_minutes(at("2026-11-26 06:00"), 60, WEEK) == at("2026-11-26 10:00")


def test_the_rest_carries_over_to_the_next_working_day() -> None:
    # 16:00 + 2h: one hour on Thursday, one on Friday from 09:00
    assert add_business_minutes(at("2026-11-26 16:00"), 120, WEEK) == at("2026-11-27 10:00")


def test_the_weekend_is_skipped() -> None:
    # Friday 16:30 + 1h: 30 minutes on Friday, 30 on Monday
    assert add_business_minutes(at("2026-11-27 16:30"), 60, WEEK) == at("2026-11-30 09:30")


def test_a_start_on_a_day_off_begins_on_the_next_working_day() -> None:
    # Saturday noon + 8h: all of Monday
    assert add_business_minutes(at("2026-11-28 12:00"), 480, WEEK) == at("2026-11-30 17:00")


def test_several_days_of_business_time() -> None:
    # 24 business hours = three full days: Monday 09:00 -> Wednesday 17:00
    assert add_business_minutes(at("2026-11-30 09:00"), 24 * 60, WEEK) == at("2026-12-02 17:00")


def test_the_business_time_zone_is_used_and_summer_time_ends_cleanly() -> None:
    berlin = parse_hours("mon-fri 09:00-17:00", "Europe/Berlin")
    # Friday 2026-10-23 16:00 Berlin (14:00 UTC, summer time) + 2h; clocks go back on
    # Sunday 25th; Monday 09:00 Berlin is 08:00 UTC in winter time, so +1h = 09:00 UTC.
    assert add_business_minutes(at("2026-10-23 14:00"), 120, berlin) == at("2026-10-26 09:00")


def test_day_lists_are_understood() -> None:
    hours = parse_hours("mon,wed 08:00-12:00")
    # Monday 11:00 + 2h: one on Monday, one on Wednesday from 08:00
    assert add_business_minutes(at("2026-11-30 11:00"), 120, hours) == at("2026-12-02 09:00")


def test_calendar_policies_add_plain_minutes() -> None:
    assert due(at("2026-11-28 12:00"), 60, business=False, hours=WEEK) == at("2026-11-28 13:00")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("weekdays 9-5", "is not like"),
        ("mon-fri 17:00-09:00", "closes before it opens"),
        ("fri-mon 09:00-17:00", "runs backwards"),
        ("mon-fri 25:00-26:00", "does not exist"),
    ],
)
def test_bad_business_hours_are_refused_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hours(spec)


def test_the_settings_refuse_bad_hours_and_unknown_zones() -> None:
    with pytest.raises(ValueError, match="is not like"):
        Settings(business_hours="always")
    with pytest.raises(ValueError, match="is not a time zone"):
        Settings(business_timezone="Mars/Olympus")
