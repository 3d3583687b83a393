"""Load test: a realistic mix over the API from Locust, on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/load.py                    # 100,000 customers, both databases
    .venv/bin/python benchmarks/load.py --small            # 10,000 customers: a quick run
    .venv/bin/python benchmarks/load.py --database sqlite  # one database only

The server runs as ``tenure serve --workers 2`` over demo data (``tenure demo``); the load
comes from one Locust process (``benchmarks/locustfile.py``: search, customer 360, update
with ``If-Match``, create order, create customer) signed in with an API key. The number of
users steps up (each user runs ``--pace`` tasks a second) until a step misses p95 <= 50 ms
or has an error, then ``--refine`` steps bisect between the last step that held and the
first that did not. Each step is a fresh Locust run: ramp, settle, then a measured window.
Meanwhile the workers' RSS and CPU are sampled from /proc.

SQLite data lives under ``benchmarks/work/`` and is reused by later runs of the same size.
PostgreSQL: ``--pg-url`` (or ``$TENURE_TEST_DATABASE_URL``, as ``scripts/postgres.sh start``
exports) names a server, in which a database ``tenure_load_<customers>`` is made and reused;
without one, a throwaway server is started with ``scripts/postgres.sh`` and stopped after,
made durable (fsync on) after the data is loaded. Results go to ``benchmarks/results/``.

Before loading data and before each database's measurement, the run waits until no other
benchmark (``benchmarks/api.py``, ``web.py``, ``demo.py``) is running (``--no-wait`` skips that).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import api
from tenure.sqlite import sqlite3

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
WORK = ROOT / "work"
RESULTS = ROOT / "results"
LOCUSTFILE = ROOT / "locustfile.py"
ADMIN = "admin@example.com"
PASSWORD = "benchmark-password-1"
FULL_CUSTOMERS = 100_000
SMALL_CUSTOMERS = 10_000
SEED = 7
LADDER = (4, 8, 16, 32, 64, 128, 256)
P95_TARGET_MS = 50.0
MEMORY_TARGET_MB = 250.0
HOT_CUSTOMERS = 100  # the accounts being edited during the run
OTHER_BENCHMARKS = r"benchmarks/(api|web|demo)\.py"
SAMPLE_SECONDS = 0.25
STEP_ATTEMPTS = 3  # a step disturbed by another benchmark is measured again
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

console = Console(width=None if sys.stdout.isatty() else 160)


def _tenure() -> str:
    return str(Path(sys.executable).parent / "tenure")


def _locust() -> str:
    return str(Path(sys.executable).parent / "locust")


def other_benchmarks() -> list[int]:
    """Pids of other benchmarks running now (as ``pgrep -f`` would find them)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if re.search(OTHER_BENCHMARKS, args):
            found.append(int(cmdline.parent.name))
    return found


def wait_for_quiet(enabled: bool) -> list[int]:
    """Wait while another benchmark runs (checked every minute); the pids still running."""
    while True:
        others = other_benchmarks()
        if not others or not enabled:
            return others
        console.print(f"Another benchmark is running (pids {others}); checking again in 60 s.")
        time.sleep(60)


def wait_for_idle_cpu(limit: float, max_wait: float) -> float:
    """Wait, up to ``max_wait`` seconds, until the machine uses less than ``limit`` cores
    (measured over 5 s while this run's server is idle: other people's work); the seconds
    waited."""
    started = time.monotonic()
    while True:
        busy0, total0 = _machine_busy_ticks()
        time.sleep(5)
        busy1, total1 = _machine_busy_ticks()
        cores = (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)
        waited = time.monotonic() - started
        if cores < limit or waited >= max_wait:
            return round(waited)
        console.print(f"  The machine is busy ({cores:.2f} cores in use); waiting.")
        time.sleep(10)


# --- Databases ----------------------------------------------------------------------


@dataclass
class Target:
    """One database to load and serve: SQLite in ``directory``, or PostgreSQL at ``url``."""

    kind: str  # "sqlite" | "postgresql"
    directory: Path
    url: str | None = None
    pg_dir: Path | None = None  # a server's directory, for its processes' CPU
    owned_server: bool = False  # started by this run: made durable here, stopped after
    code: Path | None = None  # Tenure's source to run (an exported commit) instead of src/

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
        if self.code is not None:  # ahead of the editable install's path
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(self.code), env.get("PYTHONPATH")])
            )
        env |= {
            "TENURE_DATA_DIR": str(self.directory),
            "TENURE_ADMIN_EMAIL": ADMIN,
            "TENURE_ADMIN_PASSWORD": PASSWORD,
        }
        if self.url:
            env["TENURE_DATABASE_URL"] = self.url
        return env

    def sqlalchemy_url(self) -> str:
        return self.url or f"sqlite:///{self.directory / 'tenure.db'}"


def start_postgres() -> tuple[str, Path]:
    """A throwaway server from scripts/postgres.sh: its URL and directory."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "postgres.sh"), "start"],
        capture_output=True,
        text=True,
        check=True,
    )
    exports = dict(re.findall(r"^export (\w+)=(.*)$", done.stdout, flags=re.M))
    return exports["TENURE_TEST_DATABASE_URL"], Path(exports["TENURE_PG_DIR"])


def stop_postgres(pg_dir: Path) -> None:
    subprocess.run(
        ["bash", str(REPO / "scripts" / "postgres.sh"), "stop", str(pg_dir)], check=False
    )


def _libpq(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_database(server_url: str, name: str) -> tuple[str, bool]:
    """The URL of database ``name`` on the server, created when missing; whether it existed."""
    import psycopg
    from sqlalchemy.engine import make_url

    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return url, exists is not None


def drop_postgres_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_maintenance(url: str, *, durable: bool) -> None:
    """After a load: vacuum and analyze, checkpoint; make a throwaway server durable."""
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        if durable:
            for setting in ("fsync", "full_page_writes", "synchronous_commit"):
                conn.execute(f"ALTER SYSTEM SET {setting} = on")
            conn.execute("SELECT pg_reload_conf()")
        conn.execute("CHECKPOINT")


def postgres_settings(url: str) -> dict[str, str]:
    import psycopg

    names = ("server_version", "fsync", "synchronous_commit", "full_page_writes",
             "shared_buffers", "work_mem", "max_connections")  # fmt: skip
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


def prepare(target: Target, customers: int, *, fresh: bool, server_url: str | None) -> None:
    """Load ``customers`` demo customers into the target, unless loaded already."""
    marker = target.directory / "demo.json"
    wanted = {"customers": customers, "seed": SEED, "database": target.url}
    reusable = not fresh and marker.exists() and json.loads(marker.read_text()) == wanted
    if target.kind == "postgresql":
        assert server_url is not None and target.url is not None
        name = _database_name(customers)
        if not reusable:
            drop_postgres_database(server_url, name)
        target.url, existed = postgres_database(server_url, name)
        reusable = reusable and existed
    if reusable:
        console.print(f"Reusing the {target.kind} data in {target.directory}.")
        _run([_tenure(), "init"], target)
        return
    if target.directory.exists():
        shutil.rmtree(target.directory)
    target.directory.mkdir(parents=True)
    _run([_tenure(), "init"], target)
    console.print(f"Loading {customers:,} demo customers into {target.kind} ...")
    started = time.monotonic()
    _run([_tenure(), "demo", "--customers", str(customers), "--seed", str(SEED)], target)
    console.print(f"Loaded in {time.monotonic() - started:.0f} s.")
    if target.kind == "postgresql":
        assert target.url is not None
        postgres_maintenance(target.url, durable=target.owned_server)
    marker.write_text(json.dumps(wanted))


def _database_name(customers: int) -> str:
    return f"tenure_load_{customers}"


def _run(command: list[str], target: Target) -> str:
    done = subprocess.run(command, env=target.env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:3])} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def table_counts(target: Target) -> dict[str, int]:
    from sqlalchemy import text

    from tenure.db import create_engine

    engine = create_engine(target.sqlalchemy_url())
    with engine.connect() as conn:
        counts = {
            name: int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
            for name in ("customer", "product", "sales_order", "order_line", "audit_entry")
        }
    engine.dispose()
    return counts


def draw_spec(target: Target, rng: random.Random) -> dict[str, Any]:
    """What the users pick from, drawn from the data: ids, products, search prefixes."""
    from sqlalchemy import text

    from tenure.db import create_engine

    engine = create_engine(target.sqlalchemy_url())
    with engine.connect() as conn:
        top = int(conn.execute(text("SELECT max(id) FROM customer")).scalar_one())
        products = list(conn.execute(text("SELECT id FROM product WHERE active")).scalars())
        ids = ",".join(str(rng.randint(1, top)) for _ in range(2000))
        names = list(conn.execute(text(f"SELECT name FROM customer WHERE id IN ({ids})")).scalars())
    engine.dispose()
    return {
        "max_customer_id": top,
        "product_ids": products,
        "prefixes": [_prefix(name, rng) for name in names],
        "hot_customer_ids": rng.sample(range(1, top + 1), min(HOT_CUSTOMERS, top)),
    }


def _prefix(name: str, rng: random.Random) -> str:
    """The first 2-4 letters of a word of a real name, as a user would type them."""
    words = [w for w in name.lower().split() if len(w) >= 2] or [name.lower()]
    return rng.choice(words)[: rng.randint(2, 4)]


# --- The server and what it uses ----------------------------------------------------


def _is_worker(pid: int) -> bool:
    try:
        return b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        return [p for p in api.children(self.process.pid) if _is_worker(p)]


def start_server(target: Target, workers: int) -> Server:
    port = api.free_port()
    log = target.directory / "server.log"
    process = subprocess.Popen(
        [_tenure(), "serve", "--workers", str(workers), "--port", str(port)],
        env=target.env(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(process, port, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited; see {log}")
        try:
            with urllib.request.urlopen(server.url + "/readyz", timeout=2) as r:
                if r.status == 200 and len(server.workers()) >= workers:
                    return server
        except OSError:
            pass
        time.sleep(0.25)
    api.stop(server.process)
    raise SystemExit(f"the server did not become ready; see {log}")


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """CPU ticks (user + system) and resident pages of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12]), int(fields[21])


def _peak_rss(pid: int) -> int | None:
    """The kernel's high-water mark of the process's resident memory, in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _machine_busy_ticks() -> tuple[int, int]:
    """Busy and total CPU ticks of the whole machine (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


@dataclass
class Sample:
    at: float
    workers: dict[int, tuple[int, int]]  # pid -> (cpu ticks, rss pages)
    master: int  # cpu ticks
    database: dict[int, int]  # pid -> cpu ticks (a PostgreSQL server's processes)
    busy: int
    total: int


@dataclass
class Sampler:
    """Samples the server's processes every SAMPLE_SECONDS in a thread."""

    server: Server
    pg_dir: Path | None
    samples: list[Sample] = field(default_factory=list)
    seen_workers: set[int] = field(default_factory=set)
    others: list[tuple[float, list[int]]] = field(default_factory=list)  # other benchmarks
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.samples.append(self.sample())
            if len(self.samples) % 4 == 0:
                self.others.append((time.time(), other_benchmarks()))

    def others_since(self, start: float) -> list[int]:
        """Other benchmarks seen running since ``start``."""
        return sorted({p for at, pids in self.others if at >= start for p in pids})

    def sample(self) -> Sample:
        workers = {}
        for pid in self.server.workers():
            stat = _proc_stat(pid)
            if stat is not None:
                workers[pid] = stat
                self.seen_workers.add(pid)
        master = _proc_stat(self.server.process.pid)
        database: dict[int, int] = {}
        postmaster = self._postmaster()
        if postmaster:
            for pid in [postmaster, *api.children(postmaster)]:
                stat = _proc_stat(pid)
                if stat is not None:
                    database[pid] = stat[0]
        busy, total = _machine_busy_ticks()
        return Sample(time.time(), workers, master[0] if master else 0, database, busy, total)

    def _postmaster(self) -> int | None:
        if self.pg_dir is None:
            return None
        try:
            return int((self.pg_dir / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def window(self, start: float, end: float) -> dict[str, Any]:
        """CPU cores used and peak worker memory between ``start`` and ``end``."""
        inside = [s for s in self.samples if start <= s.at <= end]
        if len(inside) < 2:
            return {}
        first, last = inside[0], inside[-1]
        seconds = last.at - first.at

        def cores(before: dict[int, int], after: dict[int, int]) -> float:
            ticks = sum(after[p] - before.get(p, 0) for p in after)
            return ticks / TICK / seconds

        workers_cpu = cores(
            {p: v[0] for p, v in first.workers.items()}, {p: v[0] for p, v in last.workers.items()}
        )
        server = workers_cpu + (last.master - first.master) / TICK / seconds
        database = cores(first.database, last.database) if last.database else None
        peak: dict[int, int] = {}
        for s in inside:
            for pid, (_, pages) in s.workers.items():
                peak[pid] = max(peak.get(pid, 0), pages * PAGE)
        machine = (
            (last.busy - first.busy) / max(1, last.total - first.total) * (os.cpu_count() or 1)
        )
        return {
            "server_cores": round(server, 2),
            "database_cores": None if database is None else round(database, 2),
            "machine_busy_cores": round(machine, 2),
            "worker_peak_rss_mb": [round(v / 1e6, 1) for v in peak.values()],
        }


# --- Locust runs ----------------------------------------------------------------------


@dataclass
class Plan:
    duration: float
    settle: float
    warmup: float
    pace: float
    ladder: list[int]
    refine: int
    busy_limit: float = 0.5
    busy_wait: float = 300


def run_locust(
    server: Server, spec: dict[str, Any], users: int, seconds: float, out_dir: Path, label: str
) -> dict[str, Any]:
    """One headless Locust run with ``users`` users; what the locustfile recorded."""
    out = out_dir / f"locust-{label}.json"
    out.unlink(missing_ok=True)
    spec_path = out_dir / f"locust-spec-{label}.json"
    spec_path.write_text(json.dumps(spec | {"out": str(out)}))
    ramp = 1 + users / 200  # spawn rate: every user within about a second
    command = [
        _locust(), "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--users", str(users), "--spawn-rate", str(max(users, 1)),
        "--run-time", f"{round(ramp + spec['settle_seconds'] + seconds)}s",
        "--host", server.url, "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    env = os.environ | {"TENURE_LOAD_SPEC": str(spec_path)}
    with (out_dir / f"locust-{label}.log").open("w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    if not out.exists():
        raise SystemExit(f"Locust wrote no results; see {out_dir / f'locust-{label}.log'}")
    raw: dict[str, Any] = json.loads(out.read_text())
    return raw


def server_side(log: Path, offset: int, start: float, end: float) -> dict[str, Any]:
    """What the server's access log says of the requests it finished between ``start``
    and ``end``: its own duration (from the first middleware to the response) and the time
    spent in the database, by route. Latency the client sees beyond it was spent waiting
    before the server took the request up, or on the way."""
    durations: dict[str, list[float]] = {}
    database: dict[str, list[float]] = {}
    with log.open("rb") as f:
        f.seek(offset)
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("logger") != "tenure.access" or "duration_ms" not in entry:
                continue
            at = datetime.fromisoformat(entry["time"]).timestamp()
            if not start <= at <= end:
                continue
            route = f"{entry['method']} {entry.get('route') or entry['path']}"
            durations.setdefault(route, []).append(float(entry["duration_ms"]))
            database.setdefault(route, []).append(float(entry.get("db_ms") or 0.0))
    everything = [x for values in durations.values() for x in values]
    return {
        "server_p50_ms": _figures(everything)["p50_ms"],
        "server_p95_ms": _figures(everything)["p95_ms"],
        "server_routes": {
            route: {"requests": len(values), **_figures(values)}
            | {"db_p50_ms": _figures(database[route])["p50_ms"]}
            for route, values in sorted(durations.items())
        },
    }


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(p / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _figures(latencies: list[float]) -> dict[str, float]:
    lat = sorted(latencies)
    return {
        "p50_ms": round(percentile(lat, 50), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "max_ms": round(lat[-1], 1) if lat else float("nan"),
    }


def summarise(users: int, pace: float, raw: dict[str, Any], used: dict[str, Any]) -> dict[str, Any]:
    """One step's figures: throughput, latency percentiles, errors, CPU, memory."""
    start, end = raw["window"]
    seconds = max(end - start, 1e-3)  # a step whose requests never came back has no length
    everything = [x for values in raw["latencies_ms"].values() for x in values]
    errors = sum(raw["failures"].values())
    conflicts = len(raw["latencies_ms"].get("PATCH /customers/{id} 412 (retried)", []))
    step = {
        "users": users,
        "offered_tasks_per_s": round(users * pace, 1),
        "seconds": round(seconds, 1),
        "requests": len(everything),
        "rps": round(len(everything) / seconds, 1),
        "errors": errors,
        "error_rate": round(errors / max(1, len(everything)), 5),
        "conflicts_412": conflicts,
        **_figures(everything),
        "client_cpu_share": round(raw["client_cpu_seconds"] / seconds, 2),
        **used,
        "operations": {
            name: {"requests": len(values), "errors": raw["failures"].get(name, 0)}
            | _figures(values)
            for name, values in sorted(raw["latencies_ms"].items())
        },
        "error_samples": raw["failure_samples"],
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    if "machine_busy_cores" in used:
        # CPU used by everything else on the machine meanwhile (other engineers' work).
        ours = used["server_cores"] + (used["database_cores"] or 0) + step["client_cpu_share"]
        step["other_cores"] = round(max(0.0, used["machine_busy_cores"] - ours), 2)
    step["holds"] = errors == 0 and step["p95_ms"] <= P95_TARGET_MS
    return step


def measure(target: Target, plan: Plan, workers: int, customers: int, wait: bool) -> dict[str, Any]:
    """Serve the target, step the users, and summarise every step."""
    counts_before = table_counts(target)
    key_out = _run([_tenure(), "api-keys", "create", ADMIN, "--name", "load test"], target)
    key = key_out.strip().splitlines()[-1].strip()
    key_id = re.search(r"API key (\d+)", key_out)
    spec = draw_spec(target, random.Random(SEED)) | {
        "key": key,
        "pace": plan.pace,
        "settle_seconds": plan.settle,
    }
    others = wait_for_quiet(wait)
    server = start_server(target, workers)
    sampler = Sampler(server, target.pg_dir)
    sampler.start()
    out_dir = target.directory
    steps: list[dict[str, Any]] = []
    started = time.time()
    try:
        console.print(f"[bold]{target.kind}[/]: warm-up, {plan.ladder[0]} users ...")
        run_locust(server, spec, plan.ladder[0], plan.warmup, out_dir, "warmup")

        def step(users: int) -> bool:
            for attempt in range(1, STEP_ATTEMPTS + 1):
                disturbed = wait_for_quiet(wait)
                waited = wait_for_idle_cpu(plan.busy_limit, plan.busy_wait) if wait else 0
                begun, offset = time.time(), server.log.stat().st_size
                raw = run_locust(server, spec, users, plan.duration, out_dir, f"{users}")
                disturbed += sampler.others_since(begun)
                used = sampler.window(*raw["window"])
                used |= server_side(server.log, offset, *raw["window"])
                result = summarise(users, plan.pace, raw, used)
                busy = result.get("other_cores", 0) >= plan.busy_limit
                if not (disturbed or busy) or not wait or attempt == STEP_ATTEMPTS:
                    break
                why = (
                    f"another benchmark ran (pids {disturbed})"
                    if disturbed
                    else (f"other work used {result['other_cores']} cores")
                )
                console.print(f"  {users} users: {why} during the step; measuring it again.")
            others.extend(p for p in disturbed if p not in others)
            result["other_benchmarks"] = sorted(set(disturbed))
            result["attempts"], result["waited_for_idle_s"] = attempt, waited
            steps.append(result)
            _print_step(target.kind, result)
            return bool(result["holds"])

        good, bad = 0, None
        for users in plan.ladder:
            if step(users):
                good = users
            else:
                bad = users
                break
        for _ in range(plan.refine):
            if bad is None or bad - good <= 1:
                break
            users = (good + bad) // 2
            if step(users):
                good = users
            else:
                bad = users
    finally:
        sampler.stop()
        peaks = {pid: _peak_rss(pid) for pid in server.workers()}
        workers_at_end = sorted(peaks)
        api.stop(server.process)
        if key_id:
            _run([_tenure(), "api-keys", "revoke", key_id.group(1)], target)
    return {
        "database": target.kind,
        "database_settings": postgres_settings(target.url) if target.url else _sqlite_settings(),
        "server_log_level": "info (default: one JSON access line a request)",
        "dataset": counts_before | {"demo_customers": customers, "seed": SEED},
        "counts_after": table_counts(target),
        "seconds": round(time.time() - started),
        "steps": sorted(steps, key=lambda s: s["users"]),
        "workers": {
            "seen": len(sampler.seen_workers),
            "restarted": len(sampler.seen_workers) > workers,
            "peak_rss_mb": [round(v / 1e6, 1) for v in peaks.values() if v is not None],
            "pids_at_end": workers_at_end,
        },
        "other_benchmarks_seen": others,
    }


def _sqlite_settings() -> dict[str, str]:
    return {"sqlite_version": sqlite3.sqlite_version, "journal_mode": "wal"}


def _print_step(kind: str, s: dict[str, Any]) -> None:
    mark = "[green]holds[/]" if s["holds"] else "[red]misses[/]"
    console.print(
        f"  {kind} {s['users']:>4} users: {s['rps']:>6.1f} req/s, p50 {s['p50_ms']} ms, "
        f"p95 {s['p95_ms']} ms, p99 {s['p99_ms']} ms (server p95 {s.get('server_p95_ms')} ms), "
        f"{s['errors']} errors, "
        f"server {s.get('server_cores', '?')} cores, client {s['client_cpu_share']:.0%} -> {mark}"
    )


# --- Report ---------------------------------------------------------------------------


def best_step(run: dict[str, Any]) -> dict[str, Any] | None:
    holding = [s for s in run["steps"] if s["holds"]]
    return max(holding, key=lambda s: s["rps"]) if holding else None


def targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met."""
    best = best_step(run)
    errors = sum(s["errors"] for s in run["steps"])
    requests = sum(s["requests"] for s in run["steps"])
    first_miss = next((s for s in run["steps"] if not s["holds"]), None)
    memory = run["workers"]["peak_rss_mb"]
    throughput = (
        f"{best['rps']} req/s at {best['users']} users (p95 {best['p95_ms']} ms)"
        if best
        else "no step held it"
    )
    if first_miss:
        throughput += (
            f"; {first_miss['users']} users: {first_miss['rps']} req/s, "
            f"p95 {first_miss['p95_ms']} ms, {first_miss['errors']} errors"
        )
    return [
        {
            "target": "zero errors",
            "measured": f"{errors} errors in {requests:,} requests over every step",
            "met": errors == 0,
        },
        {
            "target": f"p95 <= {P95_TARGET_MS:g} ms at the highest throughput that holds it",
            "measured": throughput,
            "met": best is not None,
        },
        {
            "target": f"worker memory <= {MEMORY_TARGET_MB:g} MB each",
            "measured": "peak RSS (the kernel's high-water mark over the run) "
            + ", ".join(f"{m} MB" for m in memory),
            "met": bool(memory) and max(memory) <= MEMORY_TARGET_MB,
        },
    ]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mib": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _git_out(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _git(exported: str | None) -> dict[str, Any]:
    if exported:
        return {"commit": exported, "uncommitted_files": 0, "run_from": "an export of the commit"}
    return {
        "commit": _git_out("rev-parse", "HEAD"),
        "uncommitted_files": len(_git_out("status", "--porcelain").splitlines()),
        "run_from": "the working tree",
    }


def export_code(rev: str) -> tuple[Path, str]:
    """Tenure's source at ``rev``, exported under benchmarks/work/: its src and commit."""
    sha = _git_out("rev-parse", "--verify", f"{rev}^{{commit}}")
    dest = WORK / f"code-{sha[:12]}"
    if not (dest / "src" / "tenure").is_dir():
        partial = WORK / f"code-{sha[:12]}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha, "src"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(partial, filter="data")
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)
    return dest / "src", sha


def _disturbed(step: dict[str, Any], limit: float) -> str:
    """A note on a step measured while other work ran (after every attempt)."""
    if step.get("other_benchmarks"):
        return " (another benchmark ran)"
    if step.get("other_cores", 0) >= limit:
        return f" (other work used {step['other_cores']} cores)"
    return ""


def _code_line(code: dict[str, Any]) -> str:
    if code.get("run_from") == "an export of the commit":
        return f"commit {code['commit'][:10]}, run from an export of it"
    return f"{code['commit'][:10]} + {code['uncommitted_files']} uncommitted files (working tree)"


def markdown(report: dict[str, Any]) -> str:
    m, p = report["machine"], report["plan"]
    lines = [
        f"# Load test ({report['finished_at']})",
        "",
        f"Locust ({report['locust']}, one process, FastHttpUser) against `tenure serve "
        f"--workers {report['workers']}` with an API key; `tenure demo --customers "
        f"{report['customers']:,}`. Mix per task: 35 search (`?q=` prefix), 35 customer 360 "
        "(`GET /customers/{id}` + `/orders`), 12 update (`GET` + `PATCH` with `If-Match`, "
        "retried on 412), 12 create order (3 lines), 6 create customer. Each user runs "
        f"{p['pace']:g} tasks/s; users step up until p95 > {P95_TARGET_MS:g} ms or an error, "
        f"then bisect. Each step: ramp, {p['settle']:g} s settle, {p['duration']:g} s measured.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores (shared with the client and anything else "
        f"running), {m['memory_mib']:,} MiB, Python {m['python']}; load average at start "
        f"{m['loadavg_at_start']}. Code: {_code_line(report['code'])}.",
        "",
        "Percentiles are over every request of the measured window. Server cores: CPU of "
        "`tenure serve` (its workers and supervisor); db cores: the PostgreSQL server's "
        "processes; client CPU: the Locust process, as a share of one core; other cores: "
        "everything else on the machine meanwhile; worker RSS: the highest sampled in the step. "
        "A step holds with p95 <= 50 ms and no error; 412s retried are not errors. Before "
        f"each step the run waits (up to {p['busy_wait_s']:g} s) until other work uses less "
        f"than {p['busy_limit_cores']:g} cores, and measures a step again (up to "
        f"{STEP_ATTEMPTS} times) when another benchmark ran or other work used more during it.",
    ]
    for run in report["runs"]:
        d = run["dataset"]
        lines += [
            "",
            f"## {run['database']}",
            "",
            f"{d['customer']:,} customers, {d['sales_order']:,} orders, {d['order_line']:,} "
            f"order lines, {d['product']:,} products at the start. Settings: "
            + ", ".join(f"{k} {v}" for k, v in run["database_settings"].items())
            + ".",
            "",
            "| users | req/s | p50 ms | p95 ms | p99 ms | server p95 ms | errors | 412 retried "
            "| server cores | db cores | client CPU | other cores | worker RSS MB | holds |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| --- | --- |",
        ]
        for s in run["steps"]:
            db = "-" if s.get("database_cores") is None else s["database_cores"]
            lines.append(
                f"| {s['users']} | {s['rps']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} "
                f"| {s.get('server_p95_ms', '?')} | {s['errors']} | {s['conflicts_412']} "
                f"| {s.get('server_cores', '?')} | {db} "
                f"| {s['client_cpu_share']:.0%} | {s.get('other_cores', '?')} "
                f"| {', '.join(str(x) for x in s.get('worker_peak_rss_mb', []))} "
                f"| {'yes' if s['holds'] else '**no**'}{_disturbed(s, p['busy_limit_cores'])} |"
            )
        best = best_step(run)
        if best:
            lines += [
                "",
                f"By request at the best step ({best['users']} users):",
                "",
                "| request | count | errors | p50 ms | p95 ms | p99 ms |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
            ]
            for name, o in best["operations"].items():
                lines.append(
                    f"| `{name}` | {o['requests']:,} | {o['errors']} | {o['p50_ms']} "
                    f"| {o['p95_ms']} | {o['p99_ms']} |"
                )
            lines += [
                "",
                "The same step as the server's access log saw it (from its first middleware to "
                "the response; db: time in database calls):",
                "",
                "| route | count | p50 ms | p95 ms | p99 ms | db p50 ms |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
            ]
            for route, o in best.get("server_routes", {}).items():
                lines.append(
                    f"| `{route}` | {o['requests']:,} | {o['p50_ms']} | {o['p95_ms']} "
                    f"| {o['p99_ms']} | {o['db_p50_ms']} |"
                )
        lines += ["", "| target | measured | met |", "| --- | --- | --- |"]
        for t in run["targets"]:
            lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
        if run["other_benchmarks_seen"]:
            lines += ["", f"Another benchmark ran meanwhile (pids {run['other_benchmarks_seen']})."]
    return "\n".join(lines) + "\n"


def print_tables(report: dict[str, Any]) -> None:
    for run in report["runs"]:
        table = Table(title=f"Load test, {run['database']}, {report['customers']:,} customers")
        for col in ("users", "req/s", "p50 ms", "p95 ms", "p99 ms", "server p95", "errors", "412",
                    "server cores", "db cores", "client CPU", "other cores", "worker RSS MB",
                    "holds"):  # fmt: skip
            table.add_column(col, justify="right")
        for s in run["steps"]:
            db = s.get("database_cores")
            table.add_row(
                str(s["users"]), f"{s['rps']:.1f}", f"{s['p50_ms']:.1f}", f"{s['p95_ms']:.1f}",
                f"{s['p99_ms']:.1f}", f"{s.get('server_p95_ms', 0):.1f}", str(s["errors"]),
                str(s["conflicts_412"]),
                f"{s.get('server_cores', 0):.2f}", "-" if db is None else f"{db:.2f}",
                f"{s['client_cpu_share']:.0%}", f"{s.get('other_cores', 0):.2f}",
                " ".join(f"{x:.0f}" for x in s.get("worker_peak_rss_mb", [])),
                "[green]yes[/]" if s["holds"] else "[red]no[/]",
            )  # fmt: skip
        console.print(table)
        for t in run["targets"]:
            console.print(f"{'[green]met[/]' if t['met'] else '[red]MISSED[/]'}  "
                          f"{t['target']}: {t['measured']}")  # fmt: skip


def write_results(name: str, report: dict[str, Any]) -> tuple[Path, Path]:
    RESULTS.mkdir(exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


# --- Main -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help=f"{SMALL_CUSTOMERS:,} customers")
    parser.add_argument("--customers", type=int, help=f"default {FULL_CUSTOMERS:,}")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=os.environ.get("TENURE_TEST_DATABASE_URL"),
                        help="a PostgreSQL server (default: $TENURE_TEST_DATABASE_URL, "
                        "else a throwaway one)")  # fmt: skip
    parser.add_argument("--users", default=",".join(map(str, LADDER)), help="the user steps")
    parser.add_argument("--refine", type=int, default=2, help="bisecting steps after a miss")
    parser.add_argument("--pace", type=float, default=2.0, help="tasks a second per user")
    parser.add_argument("--duration", type=float, default=20, help="measured seconds a step")
    parser.add_argument("--settle", type=float, default=3, help="seconds after the ramp")
    parser.add_argument("--warmup", type=float, default=10, help="seconds, before the steps")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--fresh", action="store_true", help="reload the data even if present")
    parser.add_argument("--no-wait", action="store_true", help="run beside other benchmarks")
    parser.add_argument(
        "--busy-limit",
        type=float,
        default=0.5,
        help="cores other work may use: before a step, wait until less is in use (at most "
        "--busy-wait s), and measure a step again when more was used during it",
    )
    parser.add_argument("--busy-wait", type=float, default=300, help="seconds, per step")
    parser.add_argument("--name", help="results file name (default: load, load-small, ...)")
    parser.add_argument(
        "--code",
        metavar="REV",
        help="serve Tenure as committed at REV (e.g. HEAD), exported under benchmarks/work/, "
        "instead of the working tree",
    )
    args = parser.parse_args()
    customers = args.customers or (SMALL_CUSTOMERS if args.small else FULL_CUSTOMERS)
    name = args.name or (
        "load"
        if customers == FULL_CUSTOMERS
        else "load-small"
        if customers == SMALL_CUSTOMERS
        else f"load-{customers}"
    )
    plan = Plan(
        duration=args.duration,
        settle=args.settle,
        warmup=args.warmup,
        pace=args.pace,
        ladder=[int(u) for u in args.users.split(",")],
        refine=args.refine,
        busy_limit=args.busy_limit,
        busy_wait=args.busy_wait,
    )
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    # Stopped with SIGTERM: still stop the server and a throwaway PostgreSQL (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wait = not args.no_wait
    started_machine = machine()
    code, exported = export_code(args.code) if args.code else (None, None)
    runs: list[dict[str, Any]] = []
    owned_pg: Path | None = None
    try:
        for kind in kinds:
            wait_for_quiet(wait)
            target = Target(kind, WORK / f"load-{kind}-{customers}", code=code)
            server_url = None
            if kind == "postgresql":
                server_url = args.pg_url
                pg_dir = os.environ.get("TENURE_PG_DIR") if server_url else None
                if server_url is None:
                    console.print("Starting a throwaway PostgreSQL server ...")
                    server_url, owned_pg = start_postgres()
                    pg_dir = str(owned_pg)
                target.url = server_url
                target.pg_dir = Path(pg_dir) if pg_dir else None
                target.owned_server = owned_pg is not None
            prepare(target, customers, fresh=args.fresh, server_url=server_url)
            run = measure(target, plan, args.workers, customers, wait)
            run["targets"] = targets(run)
            runs.append(run)
    finally:
        if owned_pg is not None:
            stop_postgres(owned_pg)
    report = {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "customers": customers,
        "workers": args.workers,
        "locust": subprocess.run(
            [_locust(), "--version"], capture_output=True, text=True
        ).stdout.split(" from ")[0],
        "plan": {
            "pace": plan.pace,
            "duration": plan.duration,
            "settle": plan.settle,
            "warmup": plan.warmup,
            "ladder": plan.ladder,
            "refine": plan.refine,
            "busy_limit_cores": plan.busy_limit,
            "busy_wait_s": plan.busy_wait,
        },
        "machine": started_machine | {"loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "code": _git(exported),
        "runs": runs,
    }
    json_path, md_path = write_results(name, report)
    print_tables(report)
    console.print(f"Wrote {json_path.relative_to(REPO)} and {md_path.relative_to(REPO)}.")


if __name__ == "__main__":
    main()
