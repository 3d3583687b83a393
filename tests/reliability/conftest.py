"""Reliability tests run real servers over a database of their own: SQLite under the
test's data directory, or a new database on the PostgreSQL test server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tenure.config import Settings
from tests.reliability.served import Site, initialise


@pytest.fixture
def site(fresh_settings: Settings, fresh_engine: Engine) -> Site:
    return initialise(fresh_settings, fresh_engine)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Where servers keep their logs and metrics."""
    path = tmp_path / "served"
    path.mkdir()
    return path
