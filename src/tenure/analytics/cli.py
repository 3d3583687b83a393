"""``tenure analytics``: compute and store a run, list runs, show one."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tenure.config import get_settings
from tenure.core.errors import TenureError
from tenure.db import make_engine, make_sessionmaker, unit_of_work

app = typer.Typer(help="Customer analytics: runs of every analysis.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

STAGE_LABELS = {
    "history": "purchase history",
    "statistics": "statistics and RFM",
    "lifetime": "BG/NBD and Gamma-Gamma",
    "churn": "churn models",
    "basket": "market basket",
    "clusters": "clusters",
}


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-01-31.") from None


@app.command("run")
def run_command(
    as_of: Annotated[
        str | None, typer.Option(help="Cutoff date (YYYY-MM-DD, UTC); default today.")
    ] = None,
    period: Annotated[str, typer.Option(help="Time unit of the lifetime models.")] = "week",
    currency: Annotated[
        str | None, typer.Option(help="Currency to analyse; default the most used.")
    ] = None,
    horizon: Annotated[
        float | None, typer.Option(help="Periods ahead for expected purchases and CLV.")
    ] = None,
    discount_rate: Annotated[float, typer.Option(help="Yearly discount rate for CLV.")] = 0.10,
    churn_horizon_days: Annotated[
        int, typer.Option(help="Days ahead a purchase counts for churn labels.")
    ] = 90,
    min_support: Annotated[float, typer.Option(help="Minimum support of itemsets.")] = 0.01,
    min_confidence: Annotated[float, typer.Option(help="Minimum confidence of rules.")] = 0.2,
    top_k: Annotated[int, typer.Option(help="k of the recommendation hit rate.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed for samples and models.")] = 0,
) -> None:
    """Compute every analysis as of a date and store it as a run."""
    from tenure.analytics import run as analytics_run  # numpy, scipy, scikit-learn: slow to load

    options = analytics_run.RunOptions(
        as_of=_date(as_of),
        period=period,
        currency=currency.upper() if currency else None,
        horizon=horizon,
        discount_rate=discount_rate,
        churn_horizon_days=churn_horizon_days,
        min_support=min_support,
        min_confidence=min_confidence,
        top_k=top_k,
        seed=seed,
    )
    sessions = make_sessionmaker(make_engine(get_settings()))
    try:
        with Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            steps = progress.add_task("analyses", total=len(STAGE_LABELS))
            saving = None

            def report(stage: str, done: int, total: int) -> None:
                nonlocal saving
                if stage == "saving":
                    if saving is None:
                        saving = progress.add_task("saving customers", total=total)
                    progress.update(saving, completed=done, total=total)
                    return
                progress.update(steps, completed=done, description=STAGE_LABELS[stage])

            with unit_of_work(sessions, write=False) as session:
                computed = analytics_run.compute(session=session, options=options, progress=report)
            with unit_of_work(sessions) as session:
                run_id = analytics_run.save(session=session, computed=computed, progress=report)
    except TenureError as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(code=1) from None
    r = computed.results
    console.print(
        f"Run {run_id}: {computed.activity.size:,} customers as of {computed.options.as_of} "
        f"in {computed.options.currency}, {computed.seconds:.1f} s."
    )
    for part, reason in r.get("skipped", {}).items():
        console.print(f"[yellow]skipped {part}:[/yellow] {reason}")
    if "bgnbd" in r:
        p = r["bgnbd"]["params"]
        console.print(
            f"BG/NBD r={p['r']:.4g} alpha={p['alpha']:.4g} a={p['a']:.4g} b={p['b']:.4g}, "
            f"log-likelihood {r['bgnbd']['log_likelihood']:,.2f}"
        )
    if "churn" in r:
        chosen = r["churn"]["chosen"]
        m = r["churn"]["models"][chosen]
        console.print(
            f"Churn model: {chosen} (ROC AUC {m['roc_auc']:.3f}, PR AUC {m['pr_auc']:.3f}, "
            f"Brier {m['brier']:.3f})"
        )
    if "basket" in r:
        e = r["basket"]["evaluation"]
        console.print(
            f"Rules: {r['basket']['rules']:,}; hit rate at {e['k']}: {e['hit_rate']:.3f} "
            f"(most popular: {e['popular_hit_rate']:.3f})"
        )


@app.command("runs")
def runs_command(limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """List stored runs, newest first."""
    from tenure.analytics import service as analytics_service

    sessions = make_sessionmaker(make_engine(get_settings()))
    table = Table("id", "created", "as of", "period", "currency", "customers", "seconds")
    with unit_of_work(sessions, write=False) as session:
        for r in analytics_service.list_runs(session=session, limit=limit):
            table.add_row(
                str(r.id),
                r.created_at.isoformat(timespec="seconds"),
                r.as_of.isoformat(),
                r.period,
                r.currency,
                f"{r.customers:,}",
                f"{r.seconds:.1f}",
            )
    console.print(table)


@app.command("segments")
def segments_command(run_id: Annotated[int | None, typer.Argument()] = None) -> None:
    """Segment sizes and value of a run (the latest by default)."""
    from tenure.analytics import service as analytics_service

    sessions = make_sessionmaker(make_engine(get_settings()))
    try:
        with unit_of_work(sessions, write=False) as session:
            run = analytics_service.get_run(session=session, run_id=run_id)
    except TenureError as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(code=1) from None
    table = Table("segment", "customers", "share", f"revenue ({run.currency})", "mean CLV")
    for s in run.results["segments"]:
        clv = s.get("mean_clv")
        table.add_row(
            s["segment"],
            f"{s['customers']:,}",
            f"{s['share']:.1%}",
            s["revenue"],
            "-" if clv is None else f"{clv:,.2f}",
        )
    console.print(table)
