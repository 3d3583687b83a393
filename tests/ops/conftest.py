"""Fixtures for the operations tests: a migrated database of the test's own (SQLite, or
PostgreSQL on the PostgreSQL run) and ``tenure`` run for real in a subprocess against it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from tenure.config import Settings
from tenure.ops import migrate

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment for a ``tenure`` subprocess on ``settings``' database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env["TENURE_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["TENURE_DATABASE_URL"] = settings.database_url
    if settings.keyring_file:
        env["TENURE_KEYRING_FILE"] = str(settings.keyring_file)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


@pytest.fixture
def run_cli(fresh_settings: Settings) -> RunCli:
    """``run_cli("backup", "--output", path)``: the CLI on this test's database."""

    def run(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tenure", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=cli_env(fresh_settings, **env),
            timeout=180,
            start_new_session=True,  # no controlling terminal: never interactive
        )

    return run


@pytest.fixture
def migrated(fresh_engine: Engine) -> Engine:
    """The test's own database at the latest revision."""
    migrate.upgrade(fresh_engine)
    return fresh_engine
