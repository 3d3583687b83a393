"""``tenure backup``: a consistent archive with a manifest, made while the server writes;
``--verify`` finds a backup that cannot be trusted."""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import tarfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, text

from tenure import __version__
from tenure.config import Settings
from tenure.core.time import UTCDateTime, utcnow
from tenure.db import make_engine
from tenure.ops import backup, demo, migrate, restore
from tenure.security.fields import Sealer
from tenure.sqlite import sqlite3
from tests.ops.conftest import RunCli
from tests.ops.tables import contents

END = datetime(2026, 1, 1, tzinfo=UTC)
INSERT_PRODUCT = text(
    "INSERT INTO product (sku, name, unit_price, currency, active, created_at, updated_at, "
    "version) VALUES (:sku, 'Pair', 100, 'EUR', true, :now, :now, 1)"
).bindparams(bindparam("now", type_=UTCDateTime()))


@pytest.fixture
def loaded(migrated: Engine, sealer: Sealer) -> Engine:
    demo.load(migrated, customers=30, seed=5, end=END, products=20, sealer=sealer)
    return migrated


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        out: dict[str, bytes] = {}
        for member in tar.getmembers():
            fh = tar.extractfile(member)
            assert fh is not None
            out[member.name] = fh.read()
        return out


def _rewrite(
    archive: Path, *, manifest: dict[str, Any] | None = None, data: bytes | None = None
) -> None:
    """Replace the manifest or the data file inside an archive, leaving the rest as it was."""
    members = _members(archive)
    old_manifest = json.loads(members.pop(backup.MANIFEST))
    ((name, old_data),) = members.items()
    with tarfile.open(archive, "w:gz") as tar:
        for member_name, body in (
            (backup.MANIFEST, json.dumps(manifest or old_manifest).encode()),
            (name, old_data if data is None else data),
        ):
            info = tarfile.TarInfo(member_name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))


def test_the_archive_holds_the_data_file_and_a_manifest_describing_it(
    fresh_settings: Settings, loaded: Engine, tmp_path: Path
) -> None:
    before = datetime.now(UTC)

    path, manifest = backup.create(fresh_settings, output=tmp_path / "b.tar.gz")

    members = _members(path)
    kind = "sqlite" if fresh_settings.is_sqlite else "postgresql"
    data_name = backup.DATA_FILES[kind]
    assert list(members) == [backup.MANIFEST, data_name]
    written = json.loads(members[backup.MANIFEST])
    assert written == json.loads(manifest.model_dump_json())
    rows = {name: len(table_rows) for name, table_rows in contents(loaded).items()}
    assert manifest.format == backup.FORMAT
    assert manifest.tenure_version == __version__
    assert manifest.database == kind
    assert manifest.schema_revision == migrate.head()
    assert manifest.row_counts == rows
    assert rows["customer"] == 30
    assert manifest.sha256 == hashlib.sha256(members[data_name]).hexdigest()
    assert manifest.size_bytes == len(members[data_name])
    assert before <= manifest.created_at <= datetime.now(UTC)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_default_archive_is_timestamped_under_the_data_directory_and_recorded(
    fresh_settings: Settings, migrated: Engine
) -> None:
    first, manifest = backup.create(fresh_settings)
    second, _ = backup.create(fresh_settings)

    folder = fresh_settings.data_dir / "backups"
    assert first.parent == second.parent == folder.resolve()
    assert re.fullmatch(r"tenure-\d{8}T\d{6}Z(-\d+)?\.tar\.gz", first.name)
    assert first != second
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    last = backup.last_backup(fresh_settings)
    assert last is not None
    assert last.path == second
    assert abs(last.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert backup.verify(first, fresh_settings).sha256 == manifest.sha256


def test_a_backup_never_overwrites_an_existing_file(
    fresh_settings: Settings, migrated: Engine, tmp_path: Path
) -> None:
    target = tmp_path / "taken.tar.gz"
    target.write_bytes(b"precious")

    with pytest.raises(backup.BackupError, match="exists already"):
        backup.create(fresh_settings, output=target)

    assert target.read_bytes() == b"precious"


def test_verify_accepts_a_sound_backup(
    fresh_settings: Settings, loaded: Engine, tmp_path: Path
) -> None:
    path, made = backup.create(fresh_settings, output=tmp_path / "b.tar.gz")

    assert backup.verify(path, fresh_settings) == made


def test_verify_rejects_data_that_does_not_match_the_checksum(
    fresh_settings: Settings, loaded: Engine, tmp_path: Path
) -> None:
    path, manifest = backup.create(fresh_settings, output=tmp_path / "b.tar.gz")
    data = bytearray(_members(path)[manifest.data_file])
    data[len(data) // 2] ^= 0xFF
    _rewrite(path, data=bytes(data))

    with pytest.raises(backup.BackupError, match="is damaged: its data file does not match"):
        backup.verify(path, fresh_settings)


def test_verify_rejects_a_manifest_that_disagrees_with_the_data(
    fresh_settings: Settings, migrated: Engine, tmp_path: Path
) -> None:
    path, manifest = backup.create(fresh_settings, output=tmp_path / "b.tar.gz")
    edited = json.loads(manifest.model_dump_json()) | {"schema_revision": "0001"}
    _rewrite(path, manifest=edited)

    with pytest.raises(backup.BackupError, match="manifest says schema revision 0001"):
        backup.verify(path, fresh_settings)


def test_verify_rejects_a_file_that_is_not_a_backup(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "notes.tar.gz"
    path.write_bytes(b"meeting notes, not a backup")

    with pytest.raises(backup.BackupError, match="is not a readable Tenure backup"):
        backup.verify(path, fresh_settings)


def test_verify_runs_the_integrity_check_on_the_sqlite_copy(tmp_path: Path, sealer: Sealer) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    engine = make_engine(settings)
    migrate.upgrade(engine)
    demo.load(engine, customers=30, seed=5, end=END, products=20, sealer=sealer)
    engine.dispose()
    path, manifest = backup.create(settings, output=tmp_path / "b.tar.gz")
    # Damage a page in the middle of the file, then give the archive a matching checksum:
    # only the integrity check can tell now.
    data = bytearray(_members(path)[manifest.data_file])
    page = 4096
    middle = (len(data) // page // 2) * page
    # From its first byte: the page's b-tree header too, so that the damage shows whatever
    # the page holds (an empty index page has nothing else to check).
    data[middle : middle + 4000] = bytes(i % 251 for i in range(4000))
    digest = hashlib.sha256(data).hexdigest()
    _rewrite(
        path, manifest=json.loads(manifest.model_dump_json()) | {"sha256": digest}, data=bytes(data)
    )

    with pytest.raises(backup.BackupError, match=r"integrity check|does not open"):
        backup.verify(path, settings)


def test_a_backup_taken_while_writes_go_on_holds_whole_transactions_only(
    fresh_settings: Settings, loaded: Engine, tmp_path: Path
) -> None:
    """A writer commits two products per transaction throughout the backup: the backup
    has an even number of them, as many as its manifest says."""
    stop = threading.Event()
    committed = 0

    def write() -> None:
        nonlocal committed
        writer = make_engine(fresh_settings)
        try:
            while not stop.is_set():
                with writer.begin() as conn:
                    for side in ("a", "b"):
                        conn.execute(
                            INSERT_PRODUCT, {"sku": f"{side}-{committed}", "now": utcnow()}
                        )
                committed += 1
        finally:
            writer.dispose()

    with loaded.connect() as conn:
        demo_products = conn.execute(text("SELECT count(*) FROM product")).scalar_one()
    thread = threading.Thread(target=write)
    thread.start()
    try:
        while committed < 5:
            stop.wait(0.01)
        path, manifest = backup.create(fresh_settings, output=tmp_path / "b.tar.gz")
        at_backup = committed
    finally:
        stop.set()
        thread.join()

    written = manifest.row_counts["product"] - demo_products
    assert written % 2 == 0
    assert written >= 10
    assert written // 2 <= at_backup
    # What the data file holds is what the manifest counted.
    with restore.prepare(fresh_settings, path) as ready:
        ready.apply()
    with loaded.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM product")).scalar_one()
            == (manifest.row_counts["product"])
        )


def test_backing_up_a_missing_sqlite_database_says_so(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "nowhere", database_url=None)

    with pytest.raises(backup.BackupError, match=r"There is no database at .*nothing to back up"):
        backup.create(settings, output=tmp_path / "b.tar.gz")

    assert not (tmp_path / "b.tar.gz").exists()


def test_backup_command_writes_the_archive_and_verify_checks_it(
    run_cli: RunCli, loaded: Engine, tmp_path: Path
) -> None:
    target = tmp_path / "nightly.tar.gz"

    made = run_cli("backup", "--output", str(target))

    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert lines[0] == f"Backup written to {target}"
    assert re.fullmatch(
        rf"(SQLite|PostgreSQL), schema {migrate.head()}, [\d,]+ rows in \d+ tables, made "
        rf"\S+ by Tenure {re.escape(__version__)}",
        lines[1],
    )

    checked = run_cli("backup", "--verify", str(target))

    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines() == [
        f"{target} is sound: checksum, manifest and data agree.",
        lines[1],
    ]

    target.write_bytes(target.read_bytes()[:-100])
    broken = run_cli("backup", "--verify", str(target))

    assert broken.returncode == 1
    assert broken.stdout == ""
    assert broken.stderr.startswith(f"error: {target} is not a readable Tenure backup")


def test_sqlite_copy_is_one_self_contained_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    engine = make_engine(settings)
    migrate.upgrade(engine)
    engine.dispose()
    path, manifest = backup.create(settings, output=tmp_path / "b.tar.gz")
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(_members(path)[manifest.data_file])

    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            migrate.head(),
        )
    finally:
        conn.close()
