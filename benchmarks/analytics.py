"""Analytics at scale: a full ``tenure analytics run`` over demo data, and the RFM
aggregation in SQL against the same aggregation in DuckDB.

    .venv/bin/python benchmarks/analytics.py                      # 1,000,000 customers
    .venv/bin/python benchmarks/analytics.py --customers 50000    # a quick run

Loads ``tenure demo`` data with 5 order lines per customer on average (about 5,000,000
lines at 1,000,000 customers) into a SQLite database under ``benchmarks/work/`` (reused by
later runs of the same size), then times ``tenure analytics run --period week`` from start
to exit with its peak memory (the child's maximum resident set). Separately it times the
per-customer aggregation the run starts with (orders, purchase days, first and last day,
revenue and first day's revenue, in SQL through the orders service) and the same query in
DuckDB over the same rows copied into memory, checks both give the same answer, and prints
the ratio. Targets: the run in at most 3 minutes with at most 4 GB at 1,000,000 customers.
Results: ``benchmarks/results/analytics.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

import api
from api import console
from tenure.config import Settings
from tenure.db import make_engine, make_sessionmaker, unit_of_work
from tenure.ops import demo, migrate
from tenure.orders import service as orders_service

ROOT = Path(__file__).resolve().parent
TARGET_SECONDS = 180.0
TARGET_MEMORY_MIB = 4096
LINES_PER_CUSTOMER = 5.0
PURCHASED = ("placed", "paid", "shipped")


def prepare(customers: int, seed: int) -> Path:
    """A data directory holding demo data of this size (made once)."""
    directory = ROOT / "work" / f"analytics-{customers}"
    marker = directory / "demo.json"
    if marker.exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=directory)
    engine = make_engine(settings)
    migrate.upgrade(engine)
    console.print(f"Loading {customers:,} customers of demo data into {directory} ...")
    stats = demo.load(engine, customers=customers, seed=seed, lines_per_customer=LINES_PER_CUSTOMER)
    engine.dispose()
    marker.write_text(json.dumps({"customers": customers, "seed": seed, **stats.__dict__}))
    return directory


def full_run(directory: Path) -> dict[str, Any]:
    """``tenure analytics run`` in a child process: wall time and peak memory."""
    env = api._env(directory)
    env["COLUMNS"] = "200"
    started = time.perf_counter()
    done = subprocess.run(
        [api._tenure(), "analytics", "run", "--period", "week"],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"tenure analytics run failed:\n{done.stdout}\n{done.stderr}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    said = [line.strip() for line in done.stdout.splitlines() if line.strip()][-5:]
    return {"seconds": round(seconds, 1), "peak_memory_mib": round(peak_mib), "said": said}


DUCKDB_AGGREGATION = """
WITH per_day AS (
    SELECT customer_id, CAST(ordered_at AS DATE) - DATE '1970-01-01' AS day,
           count(*) AS n, sum(total) AS spent,
           row_number() OVER (PARTITION BY customer_id ORDER BY
                              CAST(ordered_at AS DATE) - DATE '1970-01-01') AS nth
    FROM sales_order
    WHERE currency = ? AND status IN ('placed', 'paid', 'shipped') AND deleted_at IS NULL
      AND ordered_at < ?
    GROUP BY customer_id, CAST(ordered_at AS DATE) - DATE '1970-01-01'
)
SELECT customer_id, sum(n), count(*), min(day), max(day), sum(spent),
       sum(CASE WHEN nth = 1 THEN spent ELSE 0 END)
FROM per_day GROUP BY customer_id ORDER BY customer_id
"""


def aggregation(directory: Path) -> dict[str, Any]:
    """The RFM aggregation through the orders service (SQLite) and in DuckDB."""
    engine = make_engine(Settings(data_dir=directory))
    sessions = make_sessionmaker(engine)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(1)
    with unit_of_work(sessions, write=False) as session:
        currency = orders_service.main_currency(session=session) or "EUR"
        started = time.perf_counter()
        rows = orders_service.purchase_activity(session=session, currency=currency, end=end)
        sql_seconds = time.perf_counter() - started
    engine.dispose()
    db = duckdb.connect()
    source = sqlite3.connect(directory / "tenure.db")
    db.execute(
        "CREATE TABLE sales_order (customer_id INTEGER, status VARCHAR, ordered_at TIMESTAMP, "
        "currency VARCHAR, total BIGINT, deleted_at TIMESTAMP)"
    )
    cursor = source.execute(
        "SELECT customer_id, status, ordered_at, currency, total, deleted_at FROM sales_order"
    )
    while batch := cursor.fetchmany(200_000):
        db.executemany("INSERT INTO sales_order VALUES (?, ?, ?, ?, ?, ?)", batch)
    source.close()
    started = time.perf_counter()
    duck = db.execute(DUCKDB_AGGREGATION, [currency, end.replace(tzinfo=None)]).fetchall()
    duck_seconds = time.perf_counter() - started
    same = [tuple(int(v) for v in r) for r in duck] == [
        (r.customer_id, r.orders, r.days, r.first_day, r.last_day, r.revenue_units,
         r.first_day_revenue_units)
        for r in rows
    ]  # fmt: skip
    return {
        "customers": len(rows),
        "sql_seconds": round(sql_seconds, 2),
        "duckdb_seconds": round(duck_seconds, 2),
        "ratio_sql_to_duckdb": round(sql_seconds / max(duck_seconds, 1e-9), 1),
        "same_result": same,
    }


def markdown(report: dict[str, Any]) -> str:
    m, run, agg = report["machine"], report["run"], report["aggregation"]
    return "\n".join(
        [
            f"# Analytics at {report['customers']:,} customers ({report['finished_at']})",
            "",
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mib']:,} MiB; load average "
            f"at start {m['loadavg_at_start']}.",
            "",
            "| measure | value | target |",
            "| --- | ---: | ---: |",
            f"| `tenure analytics run` wall time | {run['seconds']} s | ≤ {TARGET_SECONDS:.0f} s |",
            f"| peak memory | {run['peak_memory_mib']:,} MiB | ≤ {TARGET_MEMORY_MIB:,} MiB |",
            f"| RFM aggregation, SQLite (orders service) | {agg['sql_seconds']} s | |",
            f"| same in DuckDB (in memory) | {agg['duckdb_seconds']} s | |",
            f"| ratio SQLite / DuckDB | {agg['ratio_sql_to_duckdb']} | |",
            f"| same result | {agg['same_result']} | |",
            "",
            "The run said:",
            "",
            *[f"    {line}" for line in run["said"]],
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started_machine = api.machine()
    directory = prepare(args.customers, args.seed)
    loaded = json.loads((directory / "demo.json").read_text())
    console.print(f"Data: {loaded['orders']:,} orders, {loaded['order_lines']:,} lines.")
    run = full_run(directory)
    console.print(f"Run: {run['seconds']} s, peak {run['peak_memory_mib']:,} MiB")
    agg = aggregation(directory)
    console.print(
        f"Aggregation: SQLite {agg['sql_seconds']} s, DuckDB {agg['duckdb_seconds']} s, "
        f"ratio {agg['ratio_sql_to_duckdb']} (same result: {agg['same_result']})"
    )
    report = {
        "customers": args.customers,
        "seed": args.seed,
        "data": loaded,
        "run": run,
        "aggregation": agg,
        "targets": {"seconds": TARGET_SECONDS, "memory_mib": TARGET_MEMORY_MIB},
        "met": run["seconds"] <= TARGET_SECONDS and run["peak_memory_mib"] <= TARGET_MEMORY_MIB,
        "machine": {**started_machine, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results = ROOT / "results"
    results.mkdir(exist_ok=True)
    suffix = "" if args.customers == 1_000_000 else f"-{args.customers}"
    (results / f"analytics{suffix}.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / f"analytics{suffix}.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
