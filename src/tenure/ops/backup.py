"""Backups: one archive holding a consistent copy of the database and a manifest.

A backup is made while the server is serving: SQLite through its online backup API,
PostgreSQL through ``pg_dump`` in one snapshot (the row counts in the manifest are read
in that same snapshot). The archive is a ``.tar.gz`` with ``manifest.json`` and the data
file; the manifest carries the SHA-256 of the data file, so a damaged backup is found
before anything is restored from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Connection, make_url, text
from sqlalchemy.pool import NullPool

from tenure import __version__
from tenure.config import Settings
from tenure.db import create_engine
from tenure.ops import pgtools
from tenure.ops.errors import OpsError
from tenure.sqlite import sqlite3

FORMAT = 1
MANIFEST = "manifest.json"
DATA_FILES = {"sqlite": "tenure.sqlite3", "postgresql": "tenure.pgdump"}
LAST_BACKUP = "last-backup.json"
CHUNK = 1 << 20

DatabaseKind = Literal["sqlite", "postgresql"]
# progress(stage, done, total): ``total`` is None when the size is not known up front.
Progress = Callable[[str, int, int | None], None]


class BackupError(OpsError):
    """A backup could not be made, read or trusted; the message says why and what to do."""


class Manifest(BaseModel):
    """What a backup holds; written beside the data file in every archive."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: int
    tenure_version: str
    database: DatabaseKind
    schema_revision: str | None
    created_at: datetime
    data_file: str
    sha256: str
    size_bytes: int
    row_counts: dict[str, int]

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())


@dataclass(frozen=True)
class LastBackup:
    """The most recent backup made from this data directory."""

    path: Path
    created_at: datetime
    sha256: str


def no_progress(_stage: str, _done: int, _total: int | None) -> None:
    return None


def database_kind(settings: Settings) -> DatabaseKind:
    return "sqlite" if settings.is_sqlite else "postgresql"


def sqlite_path(settings: Settings) -> Path:
    """The SQLite database file the settings point at."""
    database = make_url(settings.sqlalchemy_url).database
    if not database or database == ":memory:":
        raise BackupError("The SQLite database is in memory; there is no file to back up.")
    return Path(database)


def backup_dir(settings: Settings) -> Path:
    return settings.data_dir / "backups"


def default_path(settings: Settings, now: datetime | None = None) -> Path:
    """``<data dir>/backups/tenure-<UTC time>.tar.gz``, never an existing file."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    path = backup_dir(settings) / f"tenure-{stamp}.tar.gz"
    n = 1
    while path.exists():
        n += 1
        path = backup_dir(settings) / f"tenure-{stamp}-{n}.tar.gz"
    return path


# --- making a backup --------------------------------------------------------------------


def create(
    settings: Settings, *, output: Path | None = None, progress: Progress | None = None
) -> tuple[Path, Manifest]:
    """Back up the configured database into one archive; returns its path and manifest."""
    report = progress or no_progress
    kind = database_kind(settings)
    output = (output or default_path(settings)).resolve()
    if output.exists():
        raise BackupError(f"{output} exists already; choose another --output.")
    _make_private_dir(output.parent)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".tenure-backup-") as work:
        data = Path(work) / DATA_FILES[kind]
        if kind == "sqlite":
            revision, counts = _copy_sqlite(sqlite_path(settings), data, report)
        else:
            revision, counts = _dump_postgres(settings, data, report)
        digest = sha256_file(data, report)
        manifest = Manifest(
            format=FORMAT,
            tenure_version=__version__,
            database=kind,
            schema_revision=revision,
            created_at=datetime.now(UTC),
            data_file=data.name,
            sha256=digest,
            size_bytes=data.stat().st_size,
            row_counts=counts,
        )
        _write_archive(output, manifest, data, report)
    _record_last(settings, output, manifest)
    return output, manifest


def _make_private_dir(path: Path) -> None:
    """Backups hold every customer's data: their directory is the owner's only."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)


def _copy_sqlite(source: Path, target: Path, report: Progress) -> tuple[str | None, dict[str, int]]:
    if not source.is_file():
        raise BackupError(f"There is no database at {source}; nothing to back up.")
    report("Copying the database", 0, None)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        # One step: the copy is one read transaction, so it is consistent and never
        # restarts however busy the server is (WAL readers do not block writers).
        src.backup(dst)
        # A self-contained file: no -wal beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
        revision, counts = sqlite_contents(dst)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"Could not copy {source}: {exc}") from exc
    finally:
        dst.close()
        src.close()
    report("Copying the database", 1, 1)
    return revision, counts


def sqlite_contents(conn: sqlite3.Connection) -> tuple[str | None, dict[str, int]]:
    """(schema revision, rows per table) of an open SQLite database."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    counts = {
        name: conn.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()[0] for name in names
    }
    revision = None
    if "alembic_version" in names:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    return revision, counts


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _dump_postgres(
    settings: Settings, target: Path, report: Progress
) -> tuple[str | None, dict[str, int]]:
    pg_dump = pgtools.find("pg_dump", settings)
    conninfo, env = pgtools.connection(settings.sqlalchemy_url)
    engine = create_engine(settings.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with conn.begin():
                # pg_dump reads the same snapshot as the row counts below.
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                args = [
                    pg_dump,
                    "--format=custom",
                    "--no-password",
                    f"--snapshot={snapshot}",
                    f"--file={target}",
                    f"--dbname={conninfo}",
                ]
                _run_watching(args, env, target, "Dumping the database", report)
                revision, counts = _postgres_contents(conn)
    finally:
        engine.dispose()
    return revision, counts


def _postgres_contents(conn: Connection) -> tuple[str | None, dict[str, int]]:
    names = list(
        conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "ORDER BY tablename"
            )
        ).scalars()
    )
    counts = {
        name: int(conn.execute(text(f"SELECT count(*) FROM {_quote(name)}")).scalar_one())
        for name in names
    }
    revision = None
    if "alembic_version" in names:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return revision, counts


def _run_watching(
    args: list[str], env: dict[str, str], output: Path, stage: str, report: Progress
) -> None:
    """Run a tool that writes ``output``, reporting the bytes written while it runs."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        while process.poll() is None:
            report(stage, output.stat().st_size if output.exists() else 0, None)
            time.sleep(0.2)
        if process.returncode != 0:
            stderr.seek(0)
            message = stderr.read().decode(errors="replace").strip()
            raise BackupError(f"{Path(args[0]).name} failed: {message}")
    report(stage, output.stat().st_size, output.stat().st_size)


def sha256_file(path: Path, report: Progress | None = None) -> str:
    report = report or no_progress
    total = path.stat().st_size
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            report("Checksumming", done, total)
    report("Checksumming", total, total)
    return digest.hexdigest()


class _Counting(io.RawIOBase):
    """A file reader that reports how much has been read."""

    def __init__(self, fh: BinaryIO, stage: str, total: int, report: Progress) -> None:
        self._fh, self._stage, self._total, self._report = fh, stage, total, report
        self._done = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        self._done += len(chunk)
        self._report(self._stage, self._done, self._total)
        return chunk


def _write_archive(output: Path, manifest: Manifest, data: Path, report: Progress) -> None:
    """Write the archive beside ``output`` and rename it: a backup is whole or absent."""
    partial = output.with_name(f".{output.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                body = manifest.model_dump_json(indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(body), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(body))
                info = tar.gettarinfo(str(data), arcname=manifest.data_file)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with data.open("rb") as fh:
                    tar.addfile(info, _Counting(fh, "Compressing", info.size, report))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_dir(output.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- last backup -------------------------------------------------------------------------


def _record_last(settings: Settings, path: Path, manifest: Manifest) -> None:
    record = {
        "path": str(path),
        "created_at": manifest.created_at.isoformat(),
        "sha256": manifest.sha256,
    }
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    target = settings.data_dir / LAST_BACKUP
    partial = target.with_name(f".{LAST_BACKUP}.partial")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(partial, target)


def last_backup(settings: Settings) -> LastBackup | None:
    """The last backup ``tenure backup`` recorded for this data directory, if any."""
    try:
        record: dict[str, Any] = json.loads((settings.data_dir / LAST_BACKUP).read_text())
        return LastBackup(
            path=Path(record["path"]),
            created_at=datetime.fromisoformat(record["created_at"]),
            sha256=str(record["sha256"]),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{settings.data_dir / LAST_BACKUP} is damaged: {exc}") from exc


# --- reading and verifying a backup ------------------------------------------------------


@contextlib.contextmanager
def unpacked(
    archive: Path, *, workdir: Path | None = None, progress: Progress | None = None
) -> Iterator[tuple[Manifest, Path]]:
    """Extract a backup into a temporary directory and check its data file's checksum.

    Yields the manifest and the data file; the directory is removed afterwards.
    """
    report = progress or no_progress
    if not archive.is_file():
        raise BackupError(f"There is no backup at {archive}.")
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".tenure-restore-") as work:
        try:
            manifest, data = _extract(archive, Path(work), report)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise BackupError(f"{archive} is not a readable Tenure backup: {exc}") from exc
        yield manifest, data


def _extract(archive: Path, work: Path, report: Progress) -> tuple[Manifest, Path]:
    with tarfile.open(archive, mode="r:gz") as tar:
        first = tar.next()
        if first is None or first.name != MANIFEST or not first.isfile():
            raise BackupError(f"{archive} has no {MANIFEST} first; it is not a Tenure backup.")
        manifest = _read_manifest(tar, first, archive)
        member = tar.next()
        if member is None or member.name != manifest.data_file or not member.isfile():
            raise BackupError(f"{archive} lacks its data file {manifest.data_file}.")
        data = work / manifest.data_file
        source = tar.extractfile(member)
        assert source is not None  # a regular file always has contents
        digest = hashlib.sha256()
        done = 0
        with data.open("wb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                done += len(chunk)
                report("Reading the backup", done, member.size)
        if tar.next() is not None:
            raise BackupError(f"{archive} holds more than a manifest and a data file.")
    if done != manifest.size_bytes or digest.hexdigest() != manifest.sha256:
        found = f"{done:,} bytes, SHA-256 {digest.hexdigest()}"
        expected = f"{manifest.size_bytes:,} bytes, SHA-256 {manifest.sha256}"
        raise BackupError(
            f"{archive} is damaged: its data file does not match the checksum in its "
            f"manifest ({found}; expected {expected}). Use another backup."
        )
    return manifest, data


def _read_manifest(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: Path) -> Manifest:
    fh = tar.extractfile(member)
    assert fh is not None
    try:
        manifest = Manifest.model_validate_json(fh.read())
    except ValidationError as exc:
        raise BackupError(f"{archive} has an unreadable manifest: {exc}") from exc
    if manifest.format > FORMAT:
        raise BackupError(
            f"{archive} was written in backup format {manifest.format} by Tenure "
            f"{manifest.tenure_version}; this version ({__version__}) reads format {FORMAT}."
        )
    if manifest.data_file != DATA_FILES[manifest.database]:
        raise BackupError(f"{archive} names an unexpected data file {manifest.data_file!r}.")
    if not re.fullmatch(r"[0-9a-f]{64}", manifest.sha256):
        raise BackupError(f"{archive} has no valid SHA-256 checksum in its manifest.")
    return manifest


def data_revision(manifest: Manifest, data: Path, settings: Settings) -> str | None:
    """The schema revision recorded in the data file itself (not in the manifest)."""
    if manifest.database == "sqlite":
        with contextlib.closing(sqlite3.connect(data)) as conn:
            return sqlite_contents(conn)[0]
    pg_restore = pgtools.find("pg_restore", settings)
    result = subprocess.run(
        [pg_restore, "--data-only", "--table=alembic_version", "--file=-", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore cannot read the dump: {result.stderr.strip()}")
    lines = iter(result.stdout.splitlines())
    for line in lines:
        if line.startswith("COPY ") and "alembic_version" in line:
            value = next(lines, "\\.")
            return None if value == "\\." else value
    return None


def check_data(manifest: Manifest, data: Path, settings: Settings) -> None:
    """The data file opens, is intact and agrees with its manifest."""
    if manifest.database == "sqlite":
        _check_sqlite(manifest, data)
    else:
        _check_postgres(data, settings)
    revision = data_revision(manifest, data, settings)
    if revision != manifest.schema_revision:
        raise BackupError(
            f"The manifest says schema revision {manifest.schema_revision} but the data is at "
            f"{revision}; the backup cannot be trusted."
        )


def _check_sqlite(manifest: Manifest, data: Path) -> None:
    try:
        with contextlib.closing(sqlite3.connect(data)) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(
                    "The database in the backup fails its integrity check: "
                    + "; ".join(problems[:5])
                )
            counts = sqlite_contents(conn)[1]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"The database in the backup does not open: {exc}") from exc
    if counts != manifest.row_counts:
        raise BackupError("The row counts in the backup differ from those in its manifest.")


def _check_postgres(data: Path, settings: Settings) -> None:
    pg_restore = pgtools.find("pg_restore", settings)
    result = subprocess.run(
        [pg_restore, "--list", str(data)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore cannot read the dump: {result.stderr.strip()}")


def verify(archive: Path, settings: Settings, *, progress: Progress | None = None) -> Manifest:
    """Check a backup without restoring it: checksum, manifest, and that the data is sound."""
    with unpacked(archive, progress=progress) as (manifest, data):
        check_data(manifest, data, settings)
    return manifest
