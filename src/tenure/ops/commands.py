"""Operations commands: ``tenure backup``, ``restore``, ``upgrade`` and ``doctor``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from tenure.config import get_settings
from tenure.db import make_engine
from tenure.ops import backup, doctor, migrate, restore, upgrade
from tenure.ops.backup import Manifest
from tenure.ops.errors import OpsError
from tenure.ops.progress import stage_reporter

# soft_wrap: paths and messages stay on one line, whatever the terminal's width.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    err.print(Text("error: ", style="red").append(message, style=""))
    return typer.Exit(code=1)


@contextmanager
def _progress() -> Iterator[backup.Progress]:
    """A progress display on standard error (on a terminal); yields the callback to report to."""
    if not err.is_terminal:
        yield backup.no_progress
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bars:
        yield stage_reporter(bars)


def _summary(manifest: Manifest) -> str:
    created = manifest.created_at.isoformat(timespec="seconds")
    kind = "SQLite" if manifest.database == "sqlite" else "PostgreSQL"
    return (
        f"{kind}, schema {manifest.schema_revision or 'empty'}, "
        f"{manifest.total_rows:,} rows in {len(manifest.row_counts)} tables, made {created} "
        f"by Tenure {manifest.tenure_version}"
    )


def backup_command(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Archive to write; default: <data dir>/backups/<time>.tar.gz."
        ),
    ] = None,
    verify: Annotated[
        Path | None,
        typer.Option("--verify", help="Check this backup instead of making one.", metavar="FILE"),
    ] = None,
) -> None:
    """Back up the database (safe while the server runs), or check a backup with --verify."""
    settings = get_settings()
    try:
        with _progress() as report:
            if verify is not None:
                manifest = backup.verify(verify, settings, progress=report)
            else:
                path, manifest = backup.create(settings, output=output, progress=report)
    except OpsError as exc:
        raise _fail(str(exc)) from None
    if verify is not None:
        console.print(f"{verify} is sound: checksum, manifest and data agree.", markup=False)
    else:
        console.print(f"Backup written to {path}", markup=False, highlight=False)
    console.print(_summary(manifest), markup=False, highlight=False)


def restore_command(
    archive: Annotated[Path, typer.Argument(help="The backup to restore.", metavar="FILE")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the database with a backup, after checking the backup can be trusted."""
    settings = get_settings()
    try:
        with ExitStack() as stack:
            with _progress() as report:
                ready = stack.enter_context(restore.prepare(settings, archive, progress=report))
            _confirm(ready, yes)
            with _progress() as report:
                ready.apply(progress=report)
    except OpsError as exc:
        raise _fail(str(exc)) from None
    manifest = ready.manifest
    console.print(f"Restored {archive}: {_summary(manifest)}.", markup=False, highlight=False)
    if manifest.schema_revision != migrate.head():
        console.print(
            f"The restored schema is at {manifest.schema_revision or 'empty'}; run "
            f"'tenure upgrade' to bring it to {migrate.head()} before serving.",
            markup=False,
            highlight=False,
        )


def _confirm(ready: restore.Prepared, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise _fail("Restoring replaces everything in the database; add --yes to go ahead.")
    err.print(f"This replaces everything in {ready.target} with", markup=False, highlight=False)
    err.print(f"  {_summary(ready.manifest)}.", markup=False, highlight=False)
    if not typer.confirm("Restore it?", default=False, err=True):
        raise _fail("Nothing was restored.")


def upgrade_command(
    output: Annotated[
        Path | None,
        typer.Option("--backup-output", help="Where the backup made first goes."),
    ] = None,
) -> None:
    """Back up, apply every pending schema migration, and verify the result."""
    settings = get_settings()
    engine = make_engine(settings)
    try:
        with _progress() as report:
            result = upgrade.run(
                settings,
                engine,
                output=output,
                progress=report,
                say=lambda line: err.print(line, markup=False, highlight=False),
            )
    except upgrade.UpgradeFailed as exc:
        err.print(Text(str(exc), style="bold red"))
        raise typer.Exit(code=1) from None
    except OpsError as exc:
        raise _fail(f"{exc} Nothing was migrated.") from None
    finally:
        engine.dispose()
    if result.before == result.after:
        console.print(f"Schema: already at the latest revision, {result.after}.", markup=False)
        return
    console.print(f"Schema: {result.before or 'empty'} -> {result.after}", markup=False)
    if result.backup_path is not None:
        console.print(
            f"Backup made before migrating: {result.backup_path}", markup=False, highlight=False
        )


STYLES = {
    doctor.Status.OK: "green",
    doctor.Status.INFO: "blue",
    doctor.Status.WARN: "yellow",
    doctor.Status.FAIL: "bold red",
}


def doctor_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Check the installation; each problem comes with how to fix it.

    Exit status: 0 when all is well, 1 when a check failed, 2 when there are only warnings.
    """
    findings = doctor.run()
    code = doctor.exit_code(findings)
    if as_json:
        report = {
            "status": ["ok", "fail", "warn"][code],
            "checks": [f.as_dict() for f in findings],
        }
        typer.echo(json.dumps(report, indent=2))
        raise typer.Exit(code=code)
    width = max(len(f.check) for f in findings)
    for f in findings:
        line = Text(f"{f.status.value.upper():<5} ", style=STYLES[f.status])
        line.append(f"{f.check:<{width}}  {f.message}")
        console.print(line, highlight=False)
        if f.fix and f.status in (doctor.Status.WARN, doctor.Status.FAIL):
            console.print(Text(f"      {'':<{width}}  fix: {f.fix}"), highlight=False)
    failed = sum(f.status == doctor.Status.FAIL for f in findings)
    warned = sum(f.status == doctor.Status.WARN for f in findings)
    if code == 0:
        console.print("Everything checked is fine.")
    else:
        console.print(f"{failed} failed, {warned} warning{'s' if warned != 1 else ''}.")
    raise typer.Exit(code=code)


def register(app: typer.Typer) -> None:
    """Add the operations commands to the ``tenure`` command line."""
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
    app.command("upgrade")(upgrade_command)
    app.command("doctor")(doctor_command)
