"""``tenure doctor``: what is wrong with this installation, and how to fix each thing."""

from __future__ import annotations

import contextlib
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import Engine, make_url, text
from sqlalchemy.pool import NullPool

from tenure.config import Settings
from tenure.db import create_engine
from tenure.ops import backup, migrate
from tenure.security import keyring
from tenure.sqlite import has_wal_reset_bug, sqlite3


class Status(StrEnum):
    OK = "ok"
    INFO = "info"  # worth knowing, not a problem
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    message: str
    fix: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {k: str(v) if v is not None else None for k, v in asdict(self).items()}


def exit_code(findings: list[Finding]) -> int:
    """1 when a check failed, 2 when there are only warnings, 0 when all is well."""
    statuses = {f.status for f in findings}
    if Status.FAIL in statuses:
        return 1
    return 2 if Status.WARN in statuses else 0


def run(load: Callable[[], Settings] = Settings, *, now: datetime | None = None) -> list[Finding]:
    """Run every check; a configuration that does not load stops the rest."""
    try:
        settings = load()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        return [
            Finding(
                "configuration",
                Status.FAIL,
                f"The settings do not load: {problems}",
                "Correct the TENURE_* environment variables named (without the TENURE_ "
                "prefix) above; README lists every setting.",
            )
        ]
    findings = [check_configuration(settings)]
    if settings.is_sqlite:
        library = check_sqlite_library()
        findings.append(library)
        if library.status == Status.FAIL:  # no engine can be made with it
            return findings
    engine = _engine(settings)
    try:
        database = check_database(settings, engine)
        findings.append(database)
        keys = check_keyring(settings)
        if database.status == Status.OK:
            schema = check_schema(engine)
            findings.append(schema)
        else:
            schema = Finding("schema", Status.FAIL, "Not checked: the database cannot be read.")
            findings.append(schema)
        findings.append(keys)
        if keys.status == Status.OK and schema.status == Status.OK:
            findings.append(check_keys_in_use(settings, engine))
    finally:
        engine.dispose()
    findings += [
        check_data_dir(settings),
        check_disk(settings),
        check_last_backup(settings, now=now),
    ]
    return findings


def _engine(settings: Settings) -> Engine:
    """An engine that never creates anything (unlike the server's)."""
    if settings.is_sqlite:
        return create_engine(settings.sqlalchemy_url, poolclass=NullPool)
    return create_engine(
        settings.sqlalchemy_url, poolclass=NullPool, connect_args={"connect_timeout": 5}
    )


def _describe(settings: Settings) -> str:
    if settings.is_sqlite:
        return f"SQLite at {backup.sqlite_path(settings)}"
    return "PostgreSQL at " + make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)


def check_configuration(settings: Settings) -> Finding:
    return Finding("configuration", Status.OK, f"Settings load; database: {_describe(settings)}.")


def check_database(settings: Settings, engine: Engine) -> Finding:
    """The database answers and its pages are intact."""
    if settings.is_sqlite:
        return _check_sqlite(backup.sqlite_path(settings))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect is the finding
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Finding(
            "database",
            Status.FAIL,
            f"PostgreSQL does not answer: {reason}",
            "Check that the server is running and reachable, and that TENURE_DATABASE_URL "
            "has the right host, port, user, password and database name.",
        )
    return Finding("database", Status.OK, "PostgreSQL answers.")


def _check_sqlite(path: Path) -> Finding:
    if not path.is_file():
        return Finding(
            "database",
            Status.FAIL,
            f"There is no database at {path}.",
            "Run 'tenure init' to create it, or point TENURE_DATA_DIR (or "
            "TENURE_DATABASE_URL) at the existing one.",
        )
    restore_fix = (
        "Stop the server and restore the last good backup: tenure restore FILE --yes "
        "(tenure backup --verify FILE checks a backup first)."
    )
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
            result = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        return Finding("database", Status.FAIL, f"{path} cannot be read: {exc}.", restore_fix)
    if result != ["ok"]:
        return Finding(
            "database",
            Status.FAIL,
            f"{path} fails its integrity check: {'; '.join(result[:3])}",
            restore_fix,
        )
    return Finding("database", Status.OK, f"{path} opens and passes its integrity check.")


def check_sqlite_library() -> Finding:
    """The SQLite library itself: one with the WAL-reset bug can corrupt the database."""
    shown = ".".join(map(str, sqlite3.sqlite_version_info))
    if has_wal_reset_bug(sqlite3.sqlite_version_info):
        return Finding(
            "sqlite",
            Status.FAIL,
            f"SQLite {shown} has the WAL-reset bug, which can corrupt the database while "
            "the server writes (https://sqlite.org/wal.html#walresetbug).",
            "Reinstall Tenure's locked dependencies (./run does), which include pysqlite3 "
            "with a fixed SQLite.",
        )
    return Finding("sqlite", Status.OK, f"SQLite {shown}, without the WAL-reset bug.")


def check_schema(engine: Engine) -> Finding:
    current, head = migrate.revisions(engine)
    if current == head:
        return Finding("schema", Status.OK, f"At the latest revision, {head}.")
    if current is None:
        return Finding(
            "schema", Status.FAIL, "The database is empty.", "Run 'tenure init' to set it up."
        )
    if not migrate.is_known(current):
        return Finding(
            "schema",
            Status.FAIL,
            f"The database is at revision {current}, which this version of Tenure does not "
            f"know (its latest is {head}): a newer Tenure upgraded it.",
            "Run the version of Tenure that upgraded it, or restore a backup made by this one.",
        )
    return Finding(
        "schema",
        Status.FAIL,
        f"The database is at revision {current}; this version of Tenure needs {head}.",
        "Run 'tenure upgrade' (it backs up first); the server is not ready until then.",
    )


def check_keyring(settings: Settings) -> Finding:
    if settings.keyring is not None:
        try:
            current = keyring.load(settings)
        except keyring.KeyringError as exc:
            return Finding(
                "keyring",
                Status.FAIL,
                str(exc),
                "Correct the JSON in TENURE_KEYRING (or unset it to use the key file).",
            )
        return Finding(
            "keyring",
            Status.OK,
            f"From TENURE_KEYRING: {len(current.keys)} key(s), primary {current.primary} "
            "(read-only: rotating needs a key file).",
        )
    path = keyring.path_of(settings)
    if not path.exists():
        return Finding(
            "keyring",
            Status.FAIL,
            f"The key file {path} does not exist.",
            "A new installation: run 'tenure init', which makes it. Otherwise put the key "
            "file back from your key backup, or correct TENURE_KEYRING_FILE; encrypted data "
            "cannot be read without it.",
        )
    if not path.is_file():
        return Finding(
            "keyring",
            Status.FAIL,
            f"{path} is not a file.",
            "Point TENURE_KEYRING_FILE at the key file.",
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Finding(
            "keyring",
            Status.FAIL,
            f"The key file {path} can be read or written by others (mode {mode:04o}).",
            f"chmod 600 {path}",
        )
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        return Finding(
            "keyring",
            Status.FAIL,
            f"The key file {path} cannot be read: {exc.strerror}.",
            f"Make it owned by the user Tenure runs as: chown <user> {path}",
        )
    try:
        current = keyring.read_file(path)
    except keyring.KeyringError as exc:
        return Finding(
            "keyring",
            Status.FAIL,
            f"{exc}.",
            "Put the key file back from your key backup; encrypted data cannot be read without it.",
        )
    return Finding(
        "keyring",
        Status.OK,
        f"{path} is readable by its owner only: {len(current.keys)} key(s), primary "
        f"{current.primary}.",
    )


def check_keys_in_use(settings: Settings, engine: Engine) -> Finding:
    """Every key id the database's sealed values name is in the keyring."""
    from tenure.ops import keys

    current = keyring.load(settings)
    try:
        missing = keys.missing_keys(engine, current)
        pending = keys.key_use(engine).not_under(current.primary)
    except Exception as exc:  # the database may fail here after all
        return Finding("keys in use", Status.WARN, f"Not counted: {type(exc).__name__}.")
    if missing:
        listed = ", ".join(f"{k} ({n:,} values)" for k, n in missing.items())
        return Finding(
            "keys in use",
            Status.FAIL,
            f"Values are encrypted under keys the keyring lacks: {listed}.",
            "Put the key file that holds them back from your key backup (tenure keys status "
            "lists the keys in use).",
        )
    if pending:
        return Finding(
            "keys in use",
            Status.WARN,
            f"{pending:,} values are not under the primary key {current.primary}.",
            "Run 'tenure keys rotate' to finish the rotation.",
        )
    return Finding("keys in use", Status.OK, "Every encrypted value's key is in the keyring.")


def check_data_dir(settings: Settings) -> Finding:
    directory = settings.data_dir.resolve()
    if not directory.exists():
        return Finding(
            "data directory",
            Status.WARN,
            f"{directory} does not exist; backups and generated files go there.",
            f"mkdir -p {directory}",
        )
    if not directory.is_dir():
        return Finding(
            "data directory",
            Status.FAIL,
            f"{directory} is not a directory.",
            "Point TENURE_DATA_DIR at a directory.",
        )
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".tenure-doctor-"):
            pass
    except OSError as exc:
        return Finding(
            "data directory",
            Status.FAIL,
            f"Cannot write in {directory}: {exc.strerror}.",
            f"Make it writable by the user Tenure runs as: chown -R <user> {directory}",
        )
    return Finding("data directory", Status.OK, f"{directory} is writable.")


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(settings: Settings) -> Finding:
    directory = _existing(settings.data_dir)
    free_mb = shutil.disk_usage(directory).free // (1024 * 1024)
    if free_mb < settings.min_free_disk_mb:
        return Finding(
            "disk",
            Status.WARN,
            f"Only {free_mb:,} MB free where {directory} is (warning below "
            f"{settings.min_free_disk_mb:,} MB); writes and backups fail when it runs out.",
            "Free space (old backups in the data directory's backups/ are a candidate) or move "
            "TENURE_DATA_DIR to a larger disk.",
        )
    return Finding("disk", Status.OK, f"{free_mb:,} MB free where {directory} is.")


def check_last_backup(settings: Settings, *, now: datetime | None = None) -> Finding:
    schedule = "Run 'tenure backup' and schedule it (for example daily, from cron)."
    try:
        last = backup.last_backup(settings)
    except backup.BackupError as exc:
        return Finding("last backup", Status.WARN, str(exc), schedule)
    if last is None:
        return Finding("last backup", Status.WARN, "No backup has been made here yet.", schedule)
    age_hours = ((now or datetime.now(UTC)) - last.created_at).total_seconds() / 3600
    if not last.path.is_file():
        return Finding(
            "last backup",
            Status.WARN,
            f"The last backup, {last.path}, is no longer there.",
            schedule,
        )
    if age_hours > settings.backup_max_age_hours:
        return Finding(
            "last backup",
            Status.WARN,
            f"The last backup is {age_hours:.0f} hours old (warning after "
            f"{settings.backup_max_age_hours:g}): {last.path}",
            schedule,
        )
    return Finding("last backup", Status.OK, f"{age_hours:.1f} hours old: {last.path}")
