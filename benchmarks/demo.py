"""Demo data loading speed: ``tenure demo --customers 100000`` into a fresh SQLite database.

    .venv/bin/python benchmarks/demo.py                      # 100,000 customers
    .venv/bin/python benchmarks/demo.py --customers 10000    # a quick run

Runs the command as a user would (``tenure init`` first, in a new data directory under
``benchmarks/work/``), times it from start to exit, counts what it wrote and checks the
issue's target: 100,000 customers with about 1,000,000 order lines in under a minute.
Results: ``benchmarks/results/demo.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import api
from api import console
from tenure.sqlite import sqlite3

TARGET_SECONDS = 60.0
TARGET_CUSTOMERS = 100_000


def load(customers: int, seed: int, directory: Path) -> dict[str, Any]:
    """Time ``tenure demo`` into a new database in ``directory``."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    env = api._env(directory)
    subprocess.run([api._tenure(), "init"], env=env, check=True, capture_output=True)
    started = time.perf_counter()
    done = subprocess.run(
        [api._tenure(), "demo", "--customers", str(customers), "--seed", str(seed)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    with sqlite3.connect(directory / "tenure.db") as db:
        counts = {
            name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in ("customer", "customer_search_term", "product", "sales_order", "order_line")
        }
    words = " ".join(done.stdout.split())  # the console wraps long lines
    said = [words[words.index("Loaded") :]] if "Loaded" in words else []
    return {
        "seconds": round(seconds, 1),
        "command_said": said[-1] if said else None,
        "rows": counts,
        "database_mib": round((directory / "tenure.db").stat().st_size / 2**20),
    }


def markdown(report: dict[str, Any]) -> str:
    m, rows = report["machine"], report["load"]["rows"]
    lines = [
        f"# Demo data loading ({report['finished_at']})",
        "",
        f"`tenure demo --customers {report['customers']:,} --seed {report['seed']}` into a new "
        f"SQLite database (after `tenure init`), timed from start to exit: "
        f"**{report['load']['seconds']} s**.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mib']:,} MiB, Python "
        f"{m['python']}, SQLite {m['sqlite']}; load average at start {m['loadavg_at_start']}, "
        f"at end {m['loadavg_at_end']}.",
        "",
        "| customers | search terms | products | orders | order lines | database MiB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {rows['customer']:,} | {rows['customer_search_term']:,} | {rows['product']:,} | "
        f"{rows['sales_order']:,} | {rows['order_line']:,} | {report['load']['database_mib']:,} |",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
    ]
    for t in report["targets"]:
        met = "n/a (not the full size)" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=TARGET_CUSTOMERS)
    parser.add_argument("--seed", type=int, default=api.SEED)
    parser.add_argument("--keep", action="store_true", help="keep the loaded data directory")
    parser.add_argument("--no-wait", action="store_true", help="run beside other benchmarks")
    args = parser.parse_args()
    api.check_alone(not args.no_wait, r"benchmarks/(load|api|web)\.py|locust")
    directory = api.WORK / f"demo-{args.customers}"
    machine = api.machine()
    console.print(f"Loading {args.customers:,} customers with tenure demo ...")
    loaded = load(args.customers, args.seed, directory)
    if not args.keep:
        shutil.rmtree(directory)
    lines = loaded["rows"]["order_line"]
    full = args.customers == TARGET_CUSTOMERS
    report = {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "customers": args.customers,
        "seed": args.seed,
        "load": loaded,
        "machine": machine | {"loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "code": api._git(),
        "targets": [
            {
                "target": "tenure demo --customers 100000 loads about 1,000,000 order lines "
                "in under 60 s",
                "measured": f"{loaded['seconds']} s for {args.customers:,} customers and "
                f"{lines:,} order lines",
                "met": (loaded["seconds"] < TARGET_SECONDS) if full else None,
            }
        ],
    }
    name = "demo" if full else f"demo-{args.customers}"
    api.RESULTS.mkdir(exist_ok=True)
    json_path, md_path = api.RESULTS / f"{name}.json", api.RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown(report))
    console.print(loaded["command_said"] or "")
    console.print(f"{loaded['seconds']} s; wrote {json_path.relative_to(api.ROOT.parent)}.")


if __name__ == "__main__":
    main()
