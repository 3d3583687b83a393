"""``tenure analytics``, run for real in a subprocess on the test database."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenure.analytics.models import AnalyticsCustomer, AnalyticsRun
from tenure.config import Settings
from tests.analytics.conftest import Bought, Shop, simulate


def _tenure(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update(
        TENURE_DATA_DIR=str(settings.data_dir),
        TENURE_DATABASE_URL=str(settings.database_url),
        COLUMNS="200",
        NO_COLOR="1",
    )
    return subprocess.run(
        [sys.executable, "-m", "tenure", "analytics", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_run_is_computed_and_stored(shop: Shop, session: Session, settings: Settings) -> None:
    bought: Bought = simulate(shop, 120, seed=3)

    done = _tenure(
        settings, "run", "--as-of", "2024-06-30", "--period", "month",
        "--churn-horizon-days", "60", "--min-support", "0.05",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "Run 1: " in done.stdout and "as of 2024-06-30 in EUR" in done.stdout
    assert "BG/NBD r=" in done.stdout
    run = session.scalars(select(AnalyticsRun)).one()
    assert (run.period, run.parameters["churn_horizon_days"]) == ("month", 60)
    stored = session.scalar(select(func.count()).select_from(AnalyticsCustomer))
    assert stored == sum(1 for c in bought.orders if bought.days(c))
    listed = _tenure(settings, "runs")
    assert "2024-06-30" in listed.stdout and "month" in listed.stdout


def test_a_cutoff_in_the_future_is_refused_and_nothing_stored(
    shop: Shop, session: Session, settings: Settings
) -> None:
    simulate(shop, 10, seed=3)

    done = _tenure(settings, "run", "--as-of", "2999-01-01")

    assert done.returncode == 1
    assert "The cutoff 2999-01-01 is after today" in " ".join(done.stderr.split())
    assert session.scalar(select(func.count()).select_from(AnalyticsRun)) == 0
