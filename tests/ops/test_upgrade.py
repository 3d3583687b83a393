"""``tenure upgrade`` and the migrations under it: data written at every earlier revision
survives the upgrade; the latest migration goes down one step and up again; a failed
migration stops loudly, leaves ``/readyz`` at 503 and says how to roll back."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tenure.app import create_app
from tenure.cli import app as cli_app
from tenure.config import Settings, get_settings
from tenure.core.money import Money
from tenure.core.time import UTCDateTime
from tenure.db import Base
from tenure.ops import backup, integrity, migrate, restore, upgrade
from tenure.security.fields import Sealer
from tests.ops.conftest import cli_env
from tests.ops.tables import contents, fill_every_table, reflect

HISTORY = migrate.history()
EARLIER = HISTORY[:-1]


def _model_tables() -> dict[str, tuple[type[Any] | None, sa.Table]]:
    """Table name -> (mapped class, if any; the table as the code defines it)."""
    mapped = {cast(sa.Table, m.local_table).name: m.class_ for m in Base.registry.mappers}
    return {name: (mapped.get(name), table) for name, table in Base.metadata.tables.items()}


def _as_the_model_gives_it(column: sa.Column[Any], raw: Any, dialect: sa.Dialect) -> Any:
    """The value the models return for ``raw`` as stored: money and UTC times change their
    representation on the way out; everything else comes back as it was written."""
    if isinstance(column.type, Money | UTCDateTime):
        return column.type.process_result_value(raw, dialect)
    return raw


def _read_back_through_the_models(engine: Engine, written: dict[str, dict[str, Any]]) -> None:
    tables = _model_tables()
    checked = 0
    with Session(engine) as session:
        for name, row in written.items():
            if name not in tables:
                continue  # a later migration dropped the table
            model, table = tables[name]
            key = tuple(row[c.name] for c in table.primary_key.columns)
            if model is not None:
                loaded = session.get(model, key if len(key) > 1 else key[0])
                assert loaded is not None, f"{name} row {key} was lost"
                values = {c.name: getattr(loaded, c.key) for c in model.__mapper__.columns}
            else:
                found = session.execute(
                    select(table).where(*(c == row[c.name] for c in table.primary_key.columns))
                ).one()
                values = dict(found._mapping)
            for column in table.columns:
                if column.name in row:
                    expected = _as_the_model_gives_it(column, row[column.name], engine.dialect)
                    assert values[column.name] == expected, f"{name}.{column.name}"
                    checked += 1
    assert checked > 0


@pytest.mark.parametrize("revision", EARLIER)
def test_rows_written_at_an_earlier_revision_survive_the_upgrade_to_the_latest(
    fresh_engine: Engine, sealer: Sealer, revision: str
) -> None:
    migrate.upgrade(fresh_engine, revision)
    written = fill_every_table(fresh_engine, sealer)

    migrate.upgrade(fresh_engine, sealer=sealer)

    assert migrate.current(fresh_engine) == migrate.head()
    _read_back_through_the_models(fresh_engine, written)
    assert integrity.schema_drift(fresh_engine) == []


def test_the_latest_migration_goes_down_one_step_and_up_again_keeping_the_data(
    fresh_engine: Engine, sealer: Sealer
) -> None:
    migrate.upgrade(fresh_engine)
    written = fill_every_table(fresh_engine, sealer)
    previous = HISTORY[-2] if len(HISTORY) > 1 else "base"

    migrate.downgrade(fresh_engine, previous, sealer=sealer)

    assert migrate.current(fresh_engine) == (None if previous == "base" else previous)
    kept = contents(fresh_engine)
    kept_order = {name: list(t.columns.keys()) for name, t in reflect(fresh_engine).tables.items()}
    kept_columns = {name: set(order) for name, order in kept_order.items()}

    migrate.upgrade(fresh_engine, sealer=sealer)

    assert migrate.current(fresh_engine) == migrate.head()
    assert integrity.schema_drift(fresh_engine) == []
    meta = reflect(fresh_engine)
    with fresh_engine.connect() as conn:
        for name, rows in kept.items():
            if name == "alembic_version":
                continue
            table = meta.tables[name]
            # The columns the previous revision had and the latest still has (a column the
            # latest revision replaced, such as a clear value now sealed, is not compared).
            common = reflect_order(kept_columns[name], table)
            columns = [table.c[c] for c in common]
            again = sorted((tuple(r) for r in conn.execute(select(*columns))), key=repr)
            positions = [kept_order[name].index(c) for c in common]
            before = sorted((tuple(row[i] for i in positions) for row in rows), key=repr)
            assert again == before, name
    # What survived the round trip is what was written, read through the models.
    survived = {
        name: {column: value for column, value in row.items() if column in kept_columns[name]}
        for name, row in written.items()
        if kept.get(name)
    }
    _read_back_through_the_models(fresh_engine, survived)


def reflect_order(names: set[str], table: sa.Table) -> list[str]:
    """The columns ``names`` in the table's order (the order ``contents`` read them in)."""
    return [c.name for c in table.columns if c.name in names]


def test_upgrade_backs_up_migrates_from_the_first_revision_and_the_backup_rolls_back(
    fresh_settings: Settings, fresh_engine: Engine
) -> None:
    first = HISTORY[0]
    migrate.upgrade(fresh_engine, first)
    fill_every_table(fresh_engine)
    at_first = contents(fresh_engine)
    said: list[str] = []

    result = upgrade.run(fresh_settings, fresh_engine, say=said.append)

    assert (result.before, result.after) == (first, migrate.head())
    assert migrate.current(fresh_engine) == migrate.head()
    assert result.backup_path is not None
    assert said == [
        "Backing up before migrating...",
        f"Backup: {result.backup_path}",
        f"Migrating the schema from {first} to {migrate.head()}...",
    ]
    manifest = backup.verify(result.backup_path, fresh_settings)
    assert manifest.schema_revision == first
    last = backup.last_backup(fresh_settings)
    assert last is not None and last.path == result.backup_path

    # The way back the upgrade promises: restore its backup.
    with restore.prepare(fresh_settings, result.backup_path) as ready:
        ready.apply()
    assert contents(fresh_engine) == at_first


def test_upgrade_at_the_latest_revision_changes_nothing_and_makes_no_backup(
    fresh_settings: Settings, fresh_engine: Engine
) -> None:
    migrate.upgrade(fresh_engine)

    result = upgrade.run(fresh_settings, fresh_engine)

    assert result == upgrade.UpgradeResult(migrate.head(), migrate.head(), None)
    assert backup.last_backup(fresh_settings) is None


def test_upgrade_refuses_a_database_from_a_newer_tenure(
    fresh_settings: Settings, fresh_engine: Engine
) -> None:
    migrate.upgrade(fresh_engine)
    with fresh_engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))

    with pytest.raises(upgrade.UpgradeFailed, match="9999_future, which this version of Tenure"):
        upgrade.run(fresh_settings, fresh_engine)

    assert migrate.current(fresh_engine) == "9999_future"


BROKEN = '''"""deliberately broken: adds a column, then fails"""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customer", sa.Column("half_done", sa.Integer(), nullable=True))
    raise RuntimeError("this migration is broken on purpose")


def downgrade() -> None:
    pass
'''


@pytest.fixture
def broken_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The code now ships one more migration, and it fails half-way. Yields the old head."""
    old_head = migrate.head()
    assert old_head is not None
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_broken.py").write_text(BROKEN.format(head=old_head))
    monkeypatch.setattr(migrate, "MIGRATIONS", scripts)
    assert migrate.head() == "9999"
    yield old_head


def test_a_failed_migration_stops_loudly_leaves_the_schema_and_readyz_at_503(
    fresh_settings: Settings, fresh_engine: Engine, broken_release: str
) -> None:
    migrate.upgrade(fresh_engine, broken_release)
    fill_every_table(fresh_engine)
    before = contents(fresh_engine)

    with pytest.raises(upgrade.UpgradeFailed) as failed:
        upgrade.run(fresh_settings, fresh_engine)

    archive = failed.value.backup_path
    assert archive is not None and archive.is_file()
    assert str(failed.value) == (
        "Upgrade failed. The migration failed: RuntimeError: this migration is broken on "
        "purpose\n"
        f"The database is at schema revision {broken_release}. /readyz answers 503 until the "
        "schema is at 9999.\n"
        "To roll back: keep running (or reinstall) the previous version of Tenure and restore "
        f"the backup made before migrating:\n  tenure restore {archive} --yes"
    )
    # The migration ran in one transaction: nothing of it is left.
    assert migrate.current(fresh_engine) == broken_release
    columns = {c["name"] for c in inspect(fresh_engine).get_columns("customer")}
    assert "half_done" not in columns
    assert contents(fresh_engine) == before
    with TestClient(create_app(fresh_settings, engine=fresh_engine)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["reason"] == (
        f"schema at {broken_release}, expected 9999; run 'tenure upgrade'"
    )
    assert backup.verify(archive, fresh_settings).schema_revision == broken_release


def test_upgrade_command_prints_the_failure_and_the_restore_command(
    fresh_settings: Settings,
    fresh_engine: Engine,
    broken_release: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    migrate.upgrade(fresh_engine, broken_release)
    for name, value in cli_env(fresh_settings).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["upgrade"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 1
    last = backup.last_backup(fresh_settings)
    assert last is not None
    assert "Upgrade failed. The migration failed: RuntimeError" in result.output
    assert f"tenure restore {last.path} --yes" in result.output
    assert migrate.current(fresh_engine) == broken_release


def test_upgrade_command_reports_the_revisions_and_the_backup(
    fresh_settings: Settings, fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate.upgrade(fresh_engine, HISTORY[0])
    for name, value in cli_env(fresh_settings).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(cli_app, ["upgrade"])
        second = CliRunner().invoke(cli_app, ["upgrade"])
    finally:
        get_settings.cache_clear()

    assert first.exit_code == 0, first.output
    last = backup.last_backup(fresh_settings)
    assert last is not None
    assert first.stdout.splitlines() == [
        f"Schema: {HISTORY[0]} -> {migrate.head()}",
        f"Backup made before migrating: {last.path}",
    ]
    assert last.created_at.tzinfo == UTC
    assert second.exit_code == 0, second.output
    assert second.stdout == f"Schema: already at the latest revision, {migrate.head()}.\n"
