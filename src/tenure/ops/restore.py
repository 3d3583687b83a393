"""Restore a backup into the configured database, after checking it can be trusted.

Nothing is touched until the archive's checksum, its manifest, the kind of database and
the schema revision have all been checked. The replacement is then all or nothing:
SQLite gets the verified copy in one write transaction (SQLite's backup API, which is
safe while the server has the file open) or, when the file there is not a database at
all, by renaming the copy over it; PostgreSQL gets ``pg_restore --clean`` played by
``psql`` in a single transaction.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url

from tenure import __version__
from tenure.config import Settings
from tenure.ops import backup, migrate, pgtools
from tenure.ops.backup import Manifest, Progress
from tenure.ops.errors import OpsError
from tenure.sqlite import sqlite3

# Empties the schema Tenure lives in, so objects a newer schema added (and the dump does
# not know) do not survive the restore. Runs in the same transaction as the restore.
CLEAR_SCHEMA = """
SET lock_timeout = '60s';
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT format('DROP VIEW IF EXISTS %I.%I CASCADE', schemaname, viewname) AS sql
             FROM pg_views WHERE schemaname = current_schema()
             UNION ALL
             SELECT format('DROP MATERIALIZED VIEW IF EXISTS %I.%I CASCADE',
                           schemaname, matviewname)
             FROM pg_matviews WHERE schemaname = current_schema()
             UNION ALL
             SELECT format('DROP TABLE IF EXISTS %I.%I CASCADE', schemaname, tablename)
             FROM pg_tables WHERE schemaname = current_schema()
    LOOP
        EXECUTE r.sql;
    END LOOP;
    FOR r IN SELECT format('DROP SEQUENCE IF EXISTS %I.%I CASCADE', schemaname, sequencename)
             AS sql FROM pg_sequences WHERE schemaname = current_schema()
             UNION ALL
             SELECT format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')
             UNION ALL
             SELECT format('DROP TYPE IF EXISTS %I.%I CASCADE', n.nspname, t.typname)
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd')
    LOOP
        EXECUTE r.sql;
    END LOOP;
END
$$;
"""


class RestoreError(OpsError):
    """A backup cannot be restored here; nothing was changed."""


@dataclass(frozen=True)
class Prepared:
    """A backup unpacked and checked, ready to replace the configured database."""

    archive: Path
    manifest: Manifest
    data: Path
    settings: Settings

    @property
    def target(self) -> str:
        """The database the restore replaces, for people (no password)."""
        if self.manifest.database == "sqlite":
            return str(backup.sqlite_path(self.settings))
        return make_url(self.settings.sqlalchemy_url).render_as_string(hide_password=True)

    def apply(self, progress: Progress | None = None) -> None:
        """Replace the configured database with the backup, all or nothing."""
        report = progress or backup.no_progress
        report("Restoring", 0, None)
        if self.manifest.database == "sqlite":
            _restore_sqlite(self.data, backup.sqlite_path(self.settings))
        else:
            _restore_postgres(self.data, self.settings)
        report("Restoring", 1, 1)


def check_revision(manifest: Manifest) -> None:
    """Refuse a backup from a schema newer than this code knows."""
    revision = manifest.schema_revision
    if revision is not None and not migrate.is_known(revision):
        raise RestoreError(
            f"This backup is at schema revision {revision}, which this version of Tenure "
            f"({__version__}, schema up to {migrate.head()}) does not know: it was made by a "
            f"newer Tenure (version {manifest.tenure_version}). Restore it with that version "
            "or a later one."
        )


@contextlib.contextmanager
def prepare(
    settings: Settings, archive: Path, *, progress: Progress | None = None
) -> Iterator[Prepared]:
    """Unpack ``archive`` beside the database and check everything a restore relies on.

    Raises before anything is touched when the backup is damaged, was made from another
    kind of database, or comes from a newer schema.
    """
    kind = backup.database_kind(settings)
    workdir = _workdir(settings)
    with backup.unpacked(archive.resolve(), workdir=workdir, progress=progress) as (
        manifest,
        data,
    ):
        if manifest.database != kind:
            raise RestoreError(
                f"This is a {_kind_name(manifest.database)} backup and the configured "
                f"database is {_kind_name(kind)}; a backup restores only into the kind of "
                "database it was made from."
            )
        check_revision(manifest)
        backup.check_data(manifest, data, settings)
        yield Prepared(archive=archive.resolve(), manifest=manifest, data=data, settings=settings)


def _kind_name(kind: str) -> str:
    return "SQLite" if kind == "sqlite" else "PostgreSQL"


def _workdir(settings: Settings) -> Path | None:
    """SQLite: the database's own directory, so the verified copy can be renamed into place."""
    if settings.is_sqlite:
        directory = backup.sqlite_path(settings).parent
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    return None


# --- SQLite ------------------------------------------------------------------------------


def _is_database(path: Path) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return True
    except sqlite3.DatabaseError:
        return False


def _restore_sqlite(data: Path, target: Path) -> None:
    if target.is_file() and _is_database(target):
        # The backup API writes every page in one transaction, under SQLite's own locks:
        # a server that has the file open sees the old database or the restored one, and
        # a crash half-way leaves the old one.
        source = sqlite3.connect(data)
        dest = sqlite3.connect(target, timeout=60)
        try:
            source.backup(dest)
            dest.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            raise RestoreError(f"Could not write {target}: {exc}; it was left as it was.") from exc
        finally:
            dest.close()
            source.close()
        return
    # Missing or not a database (nothing can be using it): rename the copy into place.
    # A stale write-ahead log beside it would be replayed onto the restored file.
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=".tenure-restore-", delete=False
    ) as tmp:
        staged = Path(tmp.name)
    try:
        with data.open("rb") as src, staged.open("wb") as dst:
            while chunk := src.read(backup.CHUNK):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- PostgreSQL --------------------------------------------------------------------------


def _restore_postgres(data: Path, settings: Settings) -> None:
    pg_restore = pgtools.find("pg_restore", settings)
    psql = pgtools.find("psql", settings)
    conninfo, env = pgtools.connection(settings.sqlalchemy_url)
    with tempfile.TemporaryDirectory(dir=_pg_workdir(settings), prefix=".tenure-restore-") as work:
        clear, script = Path(work) / "clear.sql", Path(work) / "restore.sql"
        clear.write_text(CLEAR_SCHEMA)
        # The whole script first: psql must never commit a script cut short.
        produced = subprocess.run(
            [
                pg_restore,
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                f"--file={script}",
                str(data),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if produced.returncode != 0:
            raise RestoreError(
                f"pg_restore could not read the backup: {produced.stderr.strip()}. "
                "The database was left as it was."
            )
        # Empty the schema, then play the script, in one transaction that rolls back at
        # the first error.
        played = subprocess.run(
            [
                psql,
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                "--single-transaction",
                f"--file={clear}",
                f"--file={script}",
                f"--dbname={conninfo}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    if played.returncode != 0:
        raise RestoreError(
            "Restoring into PostgreSQL failed and was rolled back, leaving the database as "
            f"it was: {played.stderr.strip()}"
        )


def _pg_workdir(settings: Settings) -> Path | None:
    """The data directory when it exists (the script is as large as the data), else /tmp."""
    return settings.data_dir if settings.data_dir.is_dir() else None
