"""``tenure campaigns``: send a campaign's email from the command line."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tenure.config import get_settings
from tenure.core.errors import TenureError
from tenure.db import make_engine, make_sessionmaker, unit_of_work
from tenure.marketing import sending, service
from tenure.security import fields

app = typer.Typer(help="Marketing campaigns.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@app.command("send")
def send_command(campaign_id: int) -> None:
    """Send the campaign's email to every treatment member not sent to yet (failed ones
    again), throttled to TENURE_SMTP_RATE; run it again to resume after an interruption."""
    settings = get_settings()
    sessions = make_sessionmaker(make_engine(settings), sealer=fields.sealer_for(settings))
    try:
        with unit_of_work(sessions) as session:
            campaign = service.get_campaign(session=session, campaign_id=campaign_id)
            queued = service.queue_send(
                session=session, campaign=campaign, smtp_configured=sending.configured(settings)
            )
    except TenureError as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(code=1) from None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} emails"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"campaign {campaign_id}", total=queued)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report_ = sending.deliver(
            sessions=sessions, settings=settings, campaign_id=campaign_id, progress=report
        )
    console.print(
        f"Campaign {campaign_id}: {report_.sent:,} sent, {report_.failed:,} failed, "
        f"{report_.skipped:,} skipped."
    )
    if report_.error:
        err.print(f"[red]error:[/red] {report_.error}; run the command again to resume.")
        raise typer.Exit(code=1)
