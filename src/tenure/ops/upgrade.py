"""``tenure upgrade``: back up, migrate to the latest revision, verify; say how to go back.

All pending migrations run in one transaction, so a migration that fails leaves the
schema where it was; ``/readyz`` answers 503 as long as the schema is not at the
revision the code expects, so no server reports ready over it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from tenure.config import Settings
from tenure.customers import privacy
from tenure.ops import backup, integrity, migrate
from tenure.ops.backup import Progress
from tenure.ops.errors import OpsError
from tenure.security import fields, keyring


class UpgradeFailed(OpsError):
    """The upgrade stopped; the message says where the database is and how to roll back."""

    def __init__(self, message: str, *, backup_path: Path | None = None) -> None:
        super().__init__(message)
        self.backup_path = backup_path


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None
    after: str | None
    backup_path: Path | None


def _say_nothing(_message: str) -> None:
    return None


def run(
    settings: Settings,
    engine: Engine,
    *,
    output: Path | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] = _say_nothing,
) -> UpgradeResult:
    """Back up (when there is anything to keep), migrate to the latest revision, verify."""
    before, head = migrate.revisions(engine)
    if before is not None and not migrate.is_known(before):
        raise UpgradeFailed(
            f"The database is at schema revision {before}, which this version of Tenure does "
            f"not know (its latest is {head}): a newer Tenure has upgraded it. Run that "
            "version; nothing was changed."
        )
    if before == head:
        _verify(engine, before, head, backup_path=None)
        return UpgradeResult(before, head, None)

    archive = None
    if before is not None:
        say("Backing up before migrating...")
        archive, _ = backup.create(settings, output=output, progress=progress)
        backup.verify(archive, settings, progress=progress)
        say(f"Backup: {archive}")

    made = keyring.ensure_file(settings)
    if made is not None:
        say(f"Made the key file {made}: back it up now, apart from database backups.")
    sealer = fields.sealer_for(settings)
    try:
        sealer.keyring.current()
    except keyring.KeyringError as exc:
        raise UpgradeFailed(
            f"The keyring cannot be used: {exc}. Nothing was migrated.", backup_path=archive
        ) from None
    say(f"Migrating the schema from {before or 'empty'} to {head}...")
    try:
        migrate.upgrade(engine, sealer=sealer)
    except Exception as exc:
        raise UpgradeFailed(
            _failure(f"The migration failed: {type(exc).__name__}: {exc}", engine, before, archive),
            backup_path=archive,
        ) from exc
    # SQLite: values a migration encrypted or removed must not linger in the write-ahead log.
    privacy.settle(engine)
    _verify(engine, before, head, backup_path=archive)
    return UpgradeResult(before, head, archive)


def _verify(
    engine: Engine, before: str | None, head: str | None, *, backup_path: Path | None
) -> None:
    current = migrate.current(engine)
    found: list[str] = []
    if current != head:
        found.append(f"the schema is at {current}, not {head}")
    found += integrity.problems(engine)
    found += [f"schema differs from the code: {diff}" for diff in integrity.schema_drift(engine)]
    if found:
        reason = "Verification after migrating found: " + "; ".join(found[:5])
        raise UpgradeFailed(_failure(reason, engine, before, backup_path), backup_path=backup_path)


def _failure(reason: str, engine: Engine, before: str | None, archive: Path | None) -> str:
    try:
        where = f"The database is at schema revision {migrate.current(engine) or 'empty'}."
    except Exception as exc:  # the database may be what failed
        where = f"The database cannot be read now ({type(exc).__name__})."
    lines = [
        f"Upgrade failed. {reason}",
        f"{where} /readyz answers 503 until the schema is at {migrate.head()}.",
    ]
    if archive is not None:
        lines.append(
            "To roll back: keep running (or reinstall) the previous version of Tenure and "
            f"restore the backup made before migrating:\n  tenure restore {archive} --yes"
        )
    elif before is None:
        lines.append("The database was empty before the upgrade; there is nothing to restore.")
    else:
        lines.append(
            "No migration ran. If data is damaged, restore your last good backup: "
            "tenure restore FILE --yes (check one first with tenure backup --verify FILE)."
        )
    return "\n".join(lines)
