"""``tenure restore``: every row of every table comes back; a backup that cannot be trusted,
comes from a newer schema or from another kind of database is refused untouched."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, bindparam, text

from tenure.config import Settings
from tenure.core.time import UTCDateTime, utcnow
from tenure.db import make_engine
from tenure.ops import backup, demo, migrate, restore
from tenure.security.fields import Sealer
from tenure.sqlite import sqlite3
from tests.ops.conftest import RunCli
from tests.ops.tables import contents, fill_every_table

END = datetime(2026, 1, 1, tzinfo=UTC)
NEW_PRODUCT = text(
    "INSERT INTO product (sku, name, unit_price, currency, active, created_at, updated_at, "
    "version) VALUES (:sku, 'After', 100, 'EUR', true, :now, :now, 1)"
).bindparams(bindparam("now", type_=UTCDateTime()))


@pytest.fixture
def full(migrated: Engine, sealer: Sealer) -> Engine:
    """Demo data, and a row in every table the demo leaves empty."""
    demo.load(migrated, customers=30, seed=5, end=END, products=20, sealer=sealer)
    fill_every_table(migrated)
    return migrated


def _change_everything(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM order_line"))
        conn.execute(text("UPDATE customer SET name = 'Changed', version = version + 1"))
        conn.execute(NEW_PRODUCT, {"sku": "NEW-1", "now": utcnow()})
        conn.execute(text("CREATE TABLE leftover (x integer)"))


def test_restore_brings_back_every_row_of_every_table(
    fresh_settings: Settings, full: Engine, tmp_path: Path
) -> None:
    before = contents(full)
    path, _ = backup.create(fresh_settings, output=tmp_path / "b.tar.gz")
    _change_everything(full)
    assert contents(full) != before

    with restore.prepare(fresh_settings, path) as ready:
        ready.apply()

    assert contents(full) == before
    # Ids continue after the restored rows (PostgreSQL sequences came back too).
    with full.begin() as conn:
        conn.execute(NEW_PRODUCT, {"sku": "NEW-2", "now": utcnow()})


def test_restore_refuses_a_backup_from_a_newer_schema_and_changes_nothing(
    fresh_settings: Settings, migrated: Engine, tmp_path: Path
) -> None:
    with migrated.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    path, _ = backup.create(fresh_settings, output=tmp_path / "future.tar.gz")
    with migrated.begin() as conn:
        conn.execute(
            text("UPDATE alembic_version SET version_num = :head"), {"head": migrate.head()}
        )
    before = contents(migrated)

    with pytest.raises(restore.RestoreError) as refused, restore.prepare(fresh_settings, path):
        pytest.fail("prepared a backup from a newer schema")

    assert str(refused.value) == (
        "This backup is at schema revision 9999_future, which this version of Tenure "
        f"(0.1.0, schema up to {migrate.head()}) does not know: it was made by a newer Tenure "
        "(version 0.1.0). Restore it with that version or a later one."
    )
    assert contents(migrated) == before


def test_restore_refuses_a_damaged_backup_and_changes_nothing(
    fresh_settings: Settings, full: Engine, tmp_path: Path
) -> None:
    path, _ = backup.create(fresh_settings, output=tmp_path / "b.tar.gz")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    path.write_bytes(bytes(raw))
    _change_everything(full)
    before = contents(full)

    with pytest.raises(backup.BackupError), restore.prepare(fresh_settings, path):
        pytest.fail("prepared a damaged backup")

    assert contents(full) == before


def _relabel_as_other_kind(path: Path) -> str:
    """Make the archive claim the other kind of database (its checksum still holds)."""
    with tarfile.open(path, "r:gz") as tar:
        manifest = json.loads(tar.extractfile(backup.MANIFEST).read())  # type: ignore[union-attr]
        data = tar.extractfile(manifest["data_file"]).read()  # type: ignore[union-attr]
    other = "postgresql" if manifest["database"] == "sqlite" else "sqlite"
    manifest |= {"database": other, "data_file": backup.DATA_FILES[other]}
    with tarfile.open(path, "w:gz") as tar:
        for name, body in (
            (backup.MANIFEST, json.dumps(manifest).encode()),
            (manifest["data_file"], data),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return other


def test_restore_refuses_a_backup_of_another_kind_of_database(
    fresh_settings: Settings, migrated: Engine, tmp_path: Path
) -> None:
    path, _ = backup.create(fresh_settings, output=tmp_path / "b.tar.gz")
    other = _relabel_as_other_kind(path)
    before = contents(migrated)

    with pytest.raises(restore.RestoreError) as refused, restore.prepare(fresh_settings, path):
        pytest.fail("prepared a backup of another kind of database")

    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    configured = "sqlite" if fresh_settings.is_sqlite else "postgresql"
    assert str(refused.value) == (
        f"This is a {names[other]} backup and the configured database is {names[configured]}; "
        "a backup restores only into the kind of database it was made from."
    )
    assert contents(migrated) == before


def test_restore_puts_back_a_sqlite_file_that_is_no_longer_a_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    engine = make_engine(settings)
    migrate.upgrade(engine)
    fill_every_table(engine)
    before = contents(engine)
    engine.dispose()
    path, _ = backup.create(settings, output=tmp_path / "b.tar.gz")
    db = settings.data_dir / "tenure.db"
    db.write_bytes(b"overwritten by accident" * 100)
    Path(f"{db}-wal").write_bytes(b"a stale write-ahead log")

    with restore.prepare(settings, path) as ready:
        ready.apply()

    assert not Path(f"{db}-wal").exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    engine = make_engine(settings)
    try:
        assert contents(engine) == before
    finally:
        engine.dispose()
    assert [p.name for p in db.parent.iterdir() if p.name.startswith(".tenure-")] == []


def test_restore_command_asks_for_yes_when_not_interactive_then_restores(
    run_cli: RunCli, fresh_settings: Settings, full: Engine, tmp_path: Path
) -> None:
    before = contents(full)
    path, manifest = backup.create(fresh_settings, output=tmp_path / "b.tar.gz")
    _change_everything(full)
    changed = contents(full)

    refused = run_cli("restore", str(path))

    assert refused.returncode == 1
    assert refused.stderr == (
        "error: Restoring replaces everything in the database; add --yes to go ahead.\n"
    )
    assert contents(full) == changed

    done = run_cli("restore", str(path), "--yes")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Restored {path}: ")
    assert f"schema {manifest.schema_revision}, {manifest.total_rows:,} rows" in done.stdout
    assert contents(full) == before
