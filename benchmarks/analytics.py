"""Analytics at scale: a full ``tenure analytics run`` over demo data, and the RFM
aggregation in SQL against the same aggregation in DuckDB.

    .venv/bin/python benchmarks/analytics.py                      # 1,000,000 customers
    .venv/bin/python benchmarks/analytics.py --customers 50000    # a quick run

Loads ``tenure demo`` data with 5 order lines per customer on average (about 5,000,000
lines at 1,000,000 customers) into a SQLite database under ``benchmarks/work/`` (reused by
later runs of the same size: a directory holding ``tenure.db``, ``keyring.json`` and a
``demo.json`` with the counts), then times ``tenure analytics run --period week`` from
start to exit with its peak memory (the child's maximum resident set; the run starts no
processes of its own), and reads the wall time of each stage from the stored run.
Separately it times the per-customer aggregation the run starts with (orders, purchase
days, first and last day, revenue and first day's revenue) as the run does it (per customer
and day in SQL, then per customer in numpy), as one per-customer SQL query of the orders
service, and in DuckDB over the same rows copied into memory, checks all three give the
same answer, and prints the ratios. Targets: the run in at most 3 minutes with at most
4 GB at 1,000,000 customers. The load average is recorded: the machine may be shared.
Results: ``benchmarks/results/analytics.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

import api
from api import console
from tenure.analytics import activity
from tenure.config import Settings
from tenure.customers import service as customers_service
from tenure.db import make_engine, make_sessionmaker, unit_of_work
from tenure.ops import demo, migrate
from tenure.orders import service as orders_service
from tenure.security import fields, keyring
from tenure.sqlite import sqlite3

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
    keyring.ensure_file(settings)  # `tenure analytics run` over this directory reads it too
    engine = make_engine(settings)
    migrate.upgrade(engine)
    console.print(f"Loading {customers:,} customers of demo data into {directory} ...")
    stats = demo.load(
        engine,
        customers=customers,
        seed=seed,
        lines_per_customer=LINES_PER_CUSTOMER,
        sealer=fields.sealer_for(settings),
    )
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
    db = sqlite3.connect(directory / "tenure.db")
    run_id, customers, computed, results = db.execute(
        "SELECT id, customers, seconds, results FROM analytics_run ORDER BY id DESC LIMIT 1"
    ).fetchone()
    db.close()
    stages = json.loads(results)["timings_seconds"]
    accounted = float(computed) + stages.get("saving", 0.0)
    return {
        "seconds": round(seconds, 1),
        "peak_memory_mib": round(peak_mib),
        "run_id": run_id,
        "customers_analysed": customers,
        "stages_seconds": {
            **stages,
            "start, imports and the rest": round(seconds - accounted, 3),
        },
        "analyses_seconds": round(float(computed), 1),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "said": said,
    }


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
    """The RFM aggregation as the run does it (per customer and day in SQL, streamed, then
    per customer in numpy), the same in one per-customer SQL query (the orders service's
    ``purchase_activity``), and in DuckDB over the same rows in memory."""
    engine = make_engine(Settings(data_dir=directory))
    sessions = make_sessionmaker(engine)
    today = datetime.now(UTC).date()
    end = activity.end_of(today)
    with unit_of_work(sessions, write=False) as session:
        currency = orders_service.main_currency(session=session) or "EUR"
        started = time.perf_counter()
        history = activity.load_history(session=session, currency=currency, as_of=today)
        act = history.activity()
        run_seconds = time.perf_counter() - started
        started = time.perf_counter()
        rows = orders_service.purchase_activity(session=session, currency=currency, end=end)
        sql_seconds = time.perf_counter() - started
        trashed = customers_service.trashed_ids(session=session)
    engine.dispose()
    # From the rows, not pd.read_sql_query: pandas warns about any DBAPI connection but the
    # standard library's sqlite3, and Tenure's SQLite module is pysqlite3.
    source = sqlite3.connect(directory / "tenure.db")
    cursor = source.execute(
        "SELECT customer_id, status, ordered_at, currency, total, deleted_at FROM sales_order"
    )
    frame = pd.DataFrame.from_records(
        cursor.fetchall(), columns=[column[0] for column in cursor.description]
    )
    source.close()
    db = duckdb.connect()
    db.register("frame", frame)
    db.execute(
        "CREATE TABLE sales_order AS SELECT CAST(customer_id AS INTEGER) AS customer_id, status, "
        "CAST(ordered_at AS TIMESTAMP) AS ordered_at, currency, CAST(total AS BIGINT) AS total, "
        "CAST(deleted_at AS TIMESTAMP) AS deleted_at FROM frame"
    )
    db.unregister("frame")
    del frame
    started = time.perf_counter()
    duck = db.execute(DUCKDB_AGGREGATION, [currency, end.replace(tzinfo=None)]).fetchall()
    duck_seconds = time.perf_counter() - started
    expected = [tuple(int(v) for v in r) for r in duck if int(r[0]) not in trashed]
    per_customer = [
        (r.customer_id, r.orders, r.days, r.first_day, r.last_day, r.revenue_units,
         r.first_day_revenue_units)
        for r in rows
        if r.customer_id not in trashed
    ]  # fmt: skip
    columns = (
        act.customer_id, act.orders, act.days, act.first_day, act.last_day, act.revenue_units,
        act.first_day_revenue_units,
    )  # fmt: skip
    in_run = [tuple(int(v) for v in row) for row in zip(*columns, strict=True)]
    return {
        "customers": act.size,
        "run_step_seconds": round(run_seconds, 2),
        "sql_per_customer_seconds": round(sql_seconds, 2),
        "duckdb_seconds": round(duck_seconds, 2),
        "ratio_run_step_to_duckdb": round(run_seconds / max(duck_seconds, 1e-9), 1),
        "ratio_sql_per_customer_to_duckdb": round(sql_seconds / max(duck_seconds, 1e-9), 1),
        "same_result": expected == in_run == per_customer,
    }


def markdown(report: dict[str, Any]) -> str:
    m, run, agg = report["machine"], report["run"], report["aggregation"]
    return "\n".join(
        [
            f"# Analytics at {report['customers']:,} customers ({report['finished_at']})",
            "",
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mib']:,} MiB; load average "
            f"(1, 5, 15 min) at start {m['loadavg_at_start']}, after the run "
            f"{run['loadavg_after']}, at the end {m['loadavg_at_end']}. {report['note']}",
            f"Data: {report['data']['orders']:,} orders, {report['data']['order_lines']:,} "
            f"order lines; {run['customers_analysed']:,} customers bought.",
            "",
            "| measure | value | target |",
            "| --- | ---: | ---: |",
            f"| `tenure analytics run` wall time | {run['seconds']} s | ≤ {TARGET_SECONDS:.0f} s |",
            f"| peak memory (resident, the run's process) | {run['peak_memory_mib']:,} MiB "
            f"| ≤ {TARGET_MEMORY_MIB:,} MiB |",
            f"| RFM aggregation as the run does it (SQLite + numpy) | {agg['run_step_seconds']} s "
            "| |",
            f"| same in one per-customer SQLite query | {agg['sql_per_customer_seconds']} s | |",
            f"| same in DuckDB (in memory) | {agg['duckdb_seconds']} s | |",
            f"| ratio run's step / DuckDB | {agg['ratio_run_step_to_duckdb']} | |",
            f"| ratio per-customer SQLite query / DuckDB | "
            f"{agg['ratio_sql_per_customer_to_duckdb']} | |",
            f"| same result | {agg['same_result']} | |",
            "",
            "Wall time per stage of the run (seconds):",
            "",
            "| stage | seconds |",
            "| --- | ---: |",
            *[f"| {name} | {value} |" for name, value in run["stages_seconds"].items()],
            "",
            "The run said:",
            "",
            *[f"    {line}" for line in run["said"]],
            "",
        ]
    )


def _load_note(machine: dict[str, Any], run: dict[str, Any]) -> str:
    """Whether others were using the machine: a load average above its cores means the
    run's times include waiting for a core."""
    cores = machine["cores"] or 1
    busiest = max(machine["loadavg_at_start"][0], run["loadavg_after"][0])
    if busiest > cores:
        return (
            f"The machine was busy (1-minute load average up to {busiest:.1f} on {cores} cores, "
            "from other work): the times include waiting for a core and are pessimistic."
        )
    return f"The machine was calm (1-minute load average at most {busiest:.1f} on {cores} cores)."


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
    for name, value in run["stages_seconds"].items():
        console.print(f"  {name:<28} {value:8.1f} s")
    agg = aggregation(directory)
    console.print(
        f"Aggregation: as the run does it {agg['run_step_seconds']} s, one SQLite query "
        f"{agg['sql_per_customer_seconds']} s, DuckDB {agg['duckdb_seconds']} s; ratio "
        f"{agg['ratio_run_step_to_duckdb']} (same result: {agg['same_result']})"
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
        "note": _load_note(started_machine, run),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results = ROOT / "results"
    results.mkdir(exist_ok=True)
    suffix = "" if args.customers == 1_000_000 else f"-{args.customers}"
    (results / f"analytics{suffix}.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / f"analytics{suffix}.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
