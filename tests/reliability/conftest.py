"""Reliability tests run real servers over a database of their own: SQLite under the
test's data directory, or a new database on the PostgreSQL test server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tenure.config import Settings
from tenure.db import make_engine
from tests.conftest import POSTGRES_URL, _create_pg_database, _drop_pg_database
from tests.reliability.served import Site, initialise

# Faults of the embedded database: they mean nothing on the PostgreSQL run, whose tests
# these would only repeat (they make SQLite databases of their own), so they run once.
SQLITE_ONLY = frozenset({"test_faults.py"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not POSTGRES_URL:
        return
    repeated = [item for item in items if item.path.name in SQLITE_ONLY]
    if repeated:
        config.hook.pytest_deselected(items=repeated)
        items[:] = [item for item in items if item not in repeated]


@pytest.fixture
def site(fresh_settings: Settings, fresh_engine: Engine) -> Site:
    return initialise(fresh_settings, fresh_engine)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Where servers keep their logs and metrics."""
    path = tmp_path / "served"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def module_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Like ``site``, shared by the tests of a module."""
    data_dir = tmp_path_factory.mktemp("site")
    url = _create_pg_database(POSTGRES_URL) if POSTGRES_URL else None
    settings = Settings(data_dir=data_dir, database_url=url)
    engine = make_engine(settings)
    try:
        yield initialise(settings, engine)
    finally:
        engine.dispose()
        if POSTGRES_URL and url:
            _drop_pg_database(POSTGRES_URL, url)
