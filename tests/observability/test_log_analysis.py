"""``tenure logs analyze``: per route counts, error rates and percentiles, the slowest
requests and error bursts, from a generated log whose numbers are known."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tenure.cli import app
from tenure.observability.log_analysis import analyze, nearest_rank

START = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
LIST = "GET /api/v1/customers"
CREATE = "POST /api/v1/orders"
# Server errors of the list route, by second: one alone, then a run from 57 s to 65 s.
ERROR_SECONDS = {5, 57, 58, 59, 60, 61, 62, 63, 64, 65}


def _line(second: float, method: str, route: str, status: int, ms: float, rid: str) -> str:
    entry: dict[str, Any] = {
        "time": (START + timedelta(seconds=second)).isoformat(timespec="milliseconds"),
        "level": "error" if status >= 500 else "info",
        "logger": "tenure.access",
        "message": f"{method} {route} {status}",
        "request_id": rid,
        "method": method,
        "route": route,
        "path": route,
        "status": status,
        "duration_ms": ms,
        "user_id": 1,
    }
    return orjson.dumps(entry).decode()


def generated_log() -> list[str]:
    """100 list requests, one a second, taking 1..100 ms in a shuffled order, 10 of them
    failing; 20 order creations every 3 s taking 10, 20, ... 200 ms, the first two 422;
    and lines that are not access log entries."""
    lines = [
        '{"time":"2026-03-02T09:59:59.000Z","level":"info","logger":"uvicorn.error",'
        '"message":"Application startup complete."}',
        "Traceback (most recent call last): not JSON",
        "",
    ]
    for i in range(100):
        status = 500 if i in ERROR_SECONDS else 200
        lines.append(_line(i, "GET", "/api/v1/customers", status, (i * 37) % 100 + 1, f"a{i}"))
        if i % 3 == 0 and i // 3 < 20:
            j = i // 3
            status = 422 if j < 2 else 201
            lines.append(_line(i + 0.5, "POST", "/api/v1/orders", status, 10 * (j + 1), f"b{j}"))
    return lines


def test_counts_error_rates_and_percentiles_per_route() -> None:
    report = analyze(generated_log())

    assert report.requests == 120
    assert report.server_errors == 10
    assert report.error_rate == round(10 / 120, 4)
    assert report.skipped == 2  # the uvicorn line and the traceback; the blank line is nothing
    assert report.first == "2026-03-02T10:00:00.000Z"
    assert report.last == "2026-03-02T10:01:39.000Z"
    by_route = {r.route: r for r in report.routes}
    assert [r.route for r in report.routes] == [LIST, CREATE]  # busiest first
    listing, create = by_route[LIST], by_route[CREATE]
    assert (listing.requests, listing.client_errors, listing.server_errors) == (100, 0, 10)
    assert listing.error_rate == 0.1
    assert (listing.p50_ms, listing.p95_ms, listing.p99_ms, listing.max_ms) == (50, 95, 99, 100)
    assert (create.requests, create.client_errors, create.server_errors) == (20, 2, 0)
    assert create.error_rate == 0
    assert (create.p50_ms, create.p95_ms, create.p99_ms, create.max_ms) == (100, 190, 200, 200)


def test_the_slowest_requests_come_with_their_request_ids() -> None:
    report = analyze(generated_log(), top=4)

    assert [(s.request_id, s.duration_ms) for s in report.slowest] == [
        ("b19", 200),
        ("b18", 190),
        ("b17", 180),
        ("b16", 170),
    ]
    assert report.slowest[0].route == CREATE
    assert report.slowest[0].time == "2026-03-02T10:00:57.500+00:00"
    assert report.slowest[0].status == 201


def test_a_window_with_enough_server_errors_is_a_burst() -> None:
    report = analyze(generated_log(), window=60, min_errors=5)

    # 10:00 holds 4 errors (5, 57, 58, 59 s): not a burst; 10:01 holds 6 of its 40 requests.
    [burst] = report.bursts
    assert (burst.start, burst.end) == ("2026-03-02T10:01:00.000Z", "2026-03-02T10:02:00.000Z")
    assert (burst.requests, burst.server_errors, burst.error_rate) == (40, 6, 0.15)
    assert burst.routes == {LIST: 6}


def test_neighbouring_burst_windows_merge_into_one() -> None:
    report = analyze(generated_log(), window=10, min_errors=3)

    # 10:00:50-10:01:00 has 3 errors and 10:01:00-10:01:10 has 6: one burst of 9 errors in
    # 20 list requests and 3 order creations (at 51.5, 54.5 and 57.5 s).
    [burst] = report.bursts
    assert (burst.start, burst.end) == ("2026-03-02T10:00:50.000Z", "2026-03-02T10:01:10.000Z")
    assert (burst.requests, burst.server_errors) == (23, 9)
    assert burst.error_rate == round(9 / 23, 4)


def test_no_burst_below_the_threshold() -> None:
    assert analyze(generated_log(), window=60, min_errors=7).bursts == []


def test_nearest_rank_is_a_measured_value() -> None:
    assert nearest_rank([3.0], 99) == 3.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 51) == 3.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 100) == 4.0


def test_a_bad_window_is_refused() -> None:
    with pytest.raises(ValueError):
        analyze([], window=0)


@pytest.fixture
def log_files(tmp_path: Path) -> list[Path]:
    """The generated log split over a plain file and a rotated, compressed one."""
    lines = generated_log()
    first, second = tmp_path / "tenure.log.1.gz", tmp_path / "tenure.log"
    with gzip.open(first, "wt") as f:
        f.write("\n".join(lines[:60]) + "\n")
    second.write_text("\n".join(lines[60:]) + "\n")
    return [first, second]


def test_the_command_prints_json(log_files: list[Path]) -> None:
    result = CliRunner().invoke(
        app,
        ["logs", "analyze", *map(str, log_files), "--json", "--window", "10", "--min-errors", "3"],
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report == orjson.loads(
        orjson.dumps(analyze(generated_log(), window=10, min_errors=3).to_dict())
    )
    assert report["requests"] == 120
    assert len(report["slowest"]) == 10
    assert report["bursts"][0]["server_errors"] == 9


def test_the_command_prints_tables(log_files: list[Path]) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "tenure", "logs", "analyze", *map(str, log_files), "--top", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "120 requests from 2026-03-02T10:00:00.000Z to 2026-03-02T10:01:39.000Z" in out
    list_row = next(line for line in out.splitlines() if LIST in line)
    cells = [cell.strip() for cell in list_row.split("│")[2:10]]
    assert cells == ["100", "0", "10", "10.00%", "50.0", "95.0", "99.0", "100.0"]
    assert "b19" in out and "b18" in out and "b17" not in out
    assert "Error bursts (60 s windows)" in out and "2026-03-02T10:01:00.000Z" in out


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["logs", "analyze", str(tmp_path / "nope.log")])
    assert result.exit_code == 1
    assert "no such file" in result.output
