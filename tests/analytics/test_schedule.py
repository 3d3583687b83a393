"""Scheduled analytics runs: when one is due, that one worker runs it, and nothing twice."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.analytics import schedule
from tenure.analytics.models import AnalyticsRun
from tenure.config import Settings
from tests.analytics.conftest import Shop, simulate


def test_the_last_slot_is_today_once_its_time_has_come() -> None:
    at = time(2, 30)
    assert schedule.last_slot(datetime(2026, 3, 9, 2, 30, tzinfo=UTC), at) == datetime(
        2026, 3, 9, 2, 30, tzinfo=UTC
    )
    assert schedule.last_slot(datetime(2026, 3, 9, 2, 29, tzinfo=UTC), at) == datetime(
        2026, 3, 8, 2, 30, tzinfo=UTC
    )
    # Across a month's end.
    assert schedule.last_slot(datetime(2026, 3, 1, 0, 5, tzinfo=UTC), at) == datetime(
        2026, 2, 28, 2, 30, tzinfo=UTC
    )


def test_a_schedule_is_a_time_of_day(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, analytics_schedule=" 2:05").analytics_time == time(2, 5)
    assert Settings(data_dir=tmp_path, analytics_schedule="").analytics_time is None
    with pytest.raises(ValidationError, match="not a time of day like 02:30"):
        Settings(data_dir=tmp_path, analytics_schedule="25:00")


@pytest.fixture
def scheduler(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> schedule.Scheduler:
    """A worker's scheduler whose slot has just passed; the run it starts is a real
    ``tenure analytics run`` over the test database."""
    monkeypatch.setenv("TENURE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TENURE_DATABASE_URL", settings.sqlalchemy_url)
    monkeypatch.setenv("TENURE_KEYRING_FILE", str(settings.keyring_file))
    just_now = datetime.now(UTC).replace(second=0, microsecond=0).time()
    return schedule.Scheduler(settings, engine, sessions, just_now)


def _runs(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AnalyticsRun)) or 0


def test_a_due_run_is_made_once(
    scheduler: schedule.Scheduler, shop: Shop, session: Session
) -> None:
    simulate(shop, 300, seed=3)
    shop.save()

    assert asyncio.run(scheduler.tick()) == "ran"
    assert _runs(session) == 1
    # The slot's run is stored: neither this worker nor another makes a second.
    assert asyncio.run(scheduler.tick()) == "done"
    assert _runs(session) == 1


def test_a_worker_leaves_the_run_to_the_one_holding_the_lock(
    scheduler: schedule.Scheduler, settings: Settings, engine: Engine, session: Session
) -> None:
    with schedule.run_lock(engine, settings) as taken:
        assert taken
        assert asyncio.run(scheduler.tick()) == "busy"
    assert _runs(session) == 0


def test_a_failed_run_is_logged_and_stores_nothing(
    scheduler: schedule.Scheduler, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    # No orders at all: nothing to analyse.
    with caplog.at_level(logging.ERROR, logger="tenure.analytics"):
        assert asyncio.run(scheduler.tick()) == "failed"
    assert _runs(session) == 0
    assert "scheduled analytics run failed (exit 1)" in caplog.text
