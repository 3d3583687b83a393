"""``tenure logs``: read the server's JSON logs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tenure.observability.log_analysis import Report, analyze, read_lines

app = typer.Typer(help="Read the server's logs.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@app.command("analyze")
def analyze_command(
    files: Annotated[list[Path], typer.Argument(help="JSON log files (.gz too), in order.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON, not tables.")] = False,
    window: Annotated[
        int, typer.Option(min=1, help="Seconds per time window for error bursts.")
    ] = 60,
    top: Annotated[int, typer.Option(min=0, help="How many of the slowest requests.")] = 10,
    min_errors: Annotated[
        int, typer.Option(min=1, help="Server errors in one window that make a burst.")
    ] = 5,
) -> None:
    """Per route: requests, error rate, p50/p95/p99; the slowest requests; error bursts."""
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        err.print(f"[red]error:[/red] no such file: {', '.join(missing)}")
        raise typer.Exit(code=1)
    report = analyze(read_lines(files), window=window, top=top, min_errors=min_errors)
    if json_output:
        typer.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    _print(report)


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _print(report: Report) -> None:
    if not report.requests:
        console.print(f"No access log entries in {report.lines:,} lines.")
        return
    console.print(
        f"{report.requests:,} requests from {report.first or '?'} to {report.last or '?'}; "
        f"{report.server_errors:,} server errors ({report.error_rate:.2%}); "
        f"{report.skipped:,} other lines skipped."
    )
    routes = Table(title="Routes (durations in ms)")
    for column in ("route", "requests", "4xx", "5xx", "error rate", "p50", "p95", "p99", "max"):
        routes.add_column(column, justify="left" if column == "route" else "right")
    for r in report.routes:
        routes.add_row(
            r.route,
            f"{r.requests:,}",
            f"{r.client_errors:,}",
            f"{r.server_errors:,}",
            f"{r.error_rate:.2%}",
            _ms(r.p50_ms),
            _ms(r.p95_ms),
            _ms(r.p99_ms),
            _ms(r.max_ms),
        )
    console.print(routes)
    if report.slowest:
        slow = Table(title="Slowest requests")
        for column in ("ms", "status", "route", "path", "time", "request id"):
            slow.add_column(column, justify="right" if column in ("ms", "status") else "left")
        for s in report.slowest:
            slow.add_row(
                _ms(s.duration_ms), str(s.status), s.route, s.path or "", s.time or "",
                s.request_id or "",
            )  # fmt: skip
        console.print(slow)
    if not report.bursts:
        console.print(
            f"No error bursts (windows of {report.window_seconds} s with "
            f"{report.min_errors} or more server errors)."
        )
        return
    bursts = Table(title=f"Error bursts ({report.window_seconds} s windows)")
    for column in ("from", "to", "requests", "5xx", "error rate", "routes"):
        bursts.add_column(column, justify="right" if column in ("requests", "5xx") else "left")
    for b in report.bursts:
        top_routes = ", ".join(f"{route} ({n})" for route, n in list(b.routes.items())[:3])
        bursts.add_row(
            b.start, b.end, f"{b.requests:,}", f"{b.server_errors:,}", f"{b.error_rate:.2%}",
            top_routes,
        )  # fmt: skip
    console.print(bursts)
