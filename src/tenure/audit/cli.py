"""``tenure audit``: check the audit log from the command line."""

from __future__ import annotations

import getpass

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tenure.audit import recorder
from tenure.audit import service as audit_service
from tenure.config import get_settings
from tenure.db import make_engine, make_sessionmaker, unit_of_work

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def cli_context() -> recorder.AuditContext:
    """Changes made from the command line name the operating-system account."""
    try:
        who = getpass.getuser()
    except (OSError, KeyError):
        who = "unknown"
    return recorder.AuditContext(client_address=f"cli:{who}"[:100])


def _entries(count: int) -> str:
    return f"{count:,} entry" if count == 1 else f"{count:,} entries"


@app.command()
def verify() -> None:
    """Walk the hash chain; exit 1 naming the first entry altered, removed or reordered."""
    sessions = make_sessionmaker(make_engine(get_settings()))
    with (
        unit_of_work(sessions, write=False) as session,
        Progress(
            TextColumn("Verifying the audit log"),
            BarColumn(),
            TextColumn("{task.completed:,} entries"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("verify", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = audit_service.verify(session=session, progress=report)
    if result.problem is not None:
        err.print(f"[red]Audit log broken:[/red] {result.problem.message}.")
        intact = "entry before it is" if result.entries == 1 else "entries before it are"
        err.print(f"{result.entries:,} {intact} intact.")
        raise typer.Exit(code=1)
    console.print(f"{_entries(result.entries)}, chain intact.")
    if result.head_hash:
        console.print(f"Head: entry {result.entries}, hash {result.head_hash}")
