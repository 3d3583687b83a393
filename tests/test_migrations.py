"""Migrations: they build exactly the schema the models describe, and they run both ways.

Each test uses a database of its own (``fresh_engine``), on SQLite or on PostgreSQL
like the rest of the run, never the shared test database.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect

from tenure.app import create_app
from tenure.config import Settings
from tenure.models import metadata
from tenure.ops import migrate

VERSION_TABLE = "alembic_version"


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {VERSION_TABLE}


def _schema_diff(engine: Engine) -> list[object]:
    """What ``alembic check`` reports: differences between the database and the models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff: list[object] = compare_metadata(context, metadata)
    return diff


def test_migrated_schema_matches_the_models(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)

    assert _schema_diff(fresh_engine) == []


def test_upgrade_reaches_the_latest_revision(fresh_engine: Engine) -> None:
    assert migrate.current(fresh_engine) is None

    migrate.upgrade(fresh_engine)

    assert migrate.current(fresh_engine) == migrate.head()
    assert _tables(fresh_engine) == set(metadata.tables)


def test_downgrade_to_base_removes_every_table_and_upgrade_rebuilds_them(
    fresh_engine: Engine,
) -> None:
    migrate.upgrade(fresh_engine)

    migrate.downgrade(fresh_engine, "base")
    assert migrate.current(fresh_engine) is None
    assert _tables(fresh_engine) == set()

    migrate.upgrade(fresh_engine)
    assert migrate.current(fresh_engine) == migrate.head()
    assert _schema_diff(fresh_engine) == []


def test_readyz_is_503_with_the_reason_until_the_schema_is_current(
    fresh_settings: Settings, fresh_engine: Engine
) -> None:
    head = migrate.head()
    with TestClient(create_app(fresh_settings, engine=fresh_engine)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {
            "status": "unavailable",
            "reason": f"schema at None, expected {head}; run 'tenure upgrade'",
        }

        migrate.upgrade(fresh_engine)
        r = client.get("/readyz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "schema": head}


def test_readyz_is_503_after_a_downgrade(fresh_settings: Settings, fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    head = migrate.head()
    previous = _previous_revision()
    migrate.downgrade(fresh_engine, previous or "base")

    with TestClient(create_app(fresh_settings, engine=fresh_engine)) as client:
        r = client.get("/readyz")

    assert r.status_code == 503
    assert r.json() == {
        "status": "unavailable",
        "reason": f"schema at {previous}, expected {head}; run 'tenure upgrade'",
    }


def _previous_revision() -> str | None:
    """The revision just before head (None when there is only one)."""
    script = ScriptDirectory.from_config(migrate.config())
    head = script.get_revision(migrate.head())
    assert head is not None
    down = head.down_revision
    assert down is None or isinstance(down, str), "head is a merge; pick one parent"
    return down
