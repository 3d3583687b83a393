"""API benchmark: a large SQLite database served by ``tenure serve``, driven over real HTTP.

    .venv/bin/python benchmarks/api.py            # 1,000,000 customers, ~5,000,000 lines
    .venv/bin/python benchmarks/api.py --small    # 50,000 customers: a quick run

The data directory under ``benchmarks/work/`` is kept and reused by later runs of the
same size (``--fresh`` reloads it). The server runs as ``tenure serve --workers 2``; the
load comes from a separate process (an asyncio HTTP/1.1 keep-alive client on uvloop)
with 8 concurrent connections. Results go to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tenure.sqlite import sqlite3

ROOT = Path(__file__).resolve().parent
WORK = ROOT / "work"
RESULTS = ROOT / "results"
PASSWORD = "benchmark-password-1"
ADMIN = "admin@example.com"
FULL_CUSTOMERS = 1_000_000
SMALL_CUSTOMERS = 50_000
LINES_PER_CUSTOMER = 5.0
SEED = 7
WARMUP = 100  # requests per operation before measuring, not counted
PAIR_ROUNDS = 5  # /healthz and GET /customers/{id} alternate in this many rounds

# Targets from the issue: (operation, description, check on the results).
SEARCH = "GET /customers?q=<prefix>"
GET_ONE = "GET /customers/{id}"
POST_CUSTOMER = "POST /customers"
POST_ORDER = "POST /orders (3 lines)"
HEALTHZ = "GET /healthz"
OPERATIONS = (HEALTHZ, GET_ONE, SEARCH, POST_CUSTOMER, POST_ORDER)
KEYS = {
    "healthz": HEALTHZ,
    "get": GET_ONE,
    "search": SEARCH,
    "post-customer": POST_CUSTOMER,
    "post-order": POST_ORDER,
}
EXPECTED = {HEALTHZ: 200, GET_ONE: 200, SEARCH: 200, POST_CUSTOMER: 201, POST_ORDER: 201}

console = Console(width=None if sys.stdout.isatty() else 150)


# --- Sharing the machine ------------------------------------------------------------

# Benchmarks that would disturb this one (and that wait for this one in turn).
OTHER_BENCHMARKS = r"benchmarks/(load|web)\.py|locust"


def other_benchmarks(pattern: str = OTHER_BENCHMARKS) -> list[int]:
    """Pids of other benchmarks running now (this process and its children excepted)."""
    mine = {os.getpid(), *children(os.getpid())}
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(cmdline.parent.name)
        if pid not in mine and re.search(pattern, args):
            found.append(pid)
    return found


def check_alone(enabled: bool, pattern: str = OTHER_BENCHMARKS) -> list[int]:
    """Refuse to start while another benchmark runs (``enabled``); the pids running.

    Not a wait: the other benchmarks wait while this one runs, so two that waited for
    each other would wait for ever."""
    others = other_benchmarks(pattern)
    if others and enabled:
        raise SystemExit(
            f"Another benchmark is running (pids {others}); run this one when it has ended, "
            "or with --no-wait to run beside it."
        )
    return others


# --- Data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    customers: int
    seed: int
    lines_per_customer: float


def data_dir(dataset: Dataset) -> Path:
    return WORK / f"api-{dataset.customers}"


def _env(directory: Path, log_level: str = "warning") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env |= {
        "TENURE_DATA_DIR": str(directory),
        "TENURE_ADMIN_EMAIL": ADMIN,
        "TENURE_ADMIN_PASSWORD": PASSWORD,
        "TENURE_LOG_LEVEL": log_level,
        "TENURE_LOG_FORMAT": "json",
    }
    return env


def _tenure() -> str:
    return str(Path(sys.executable).parent / "tenure")


def prepare(dataset: Dataset, *, fresh: bool) -> dict[str, Any]:
    """The data directory for ``dataset``: reused when loaded already, else made and loaded."""
    directory = data_dir(dataset)
    marker = directory / "demo.json"
    if fresh and directory.exists():
        shutil.rmtree(directory)
    if marker.exists():
        loaded: dict[str, Any] = json.loads(marker.read_text())
        if loaded["dataset"] == asdict(dataset):
            console.print(f"Reusing {directory} (loaded {loaded['loaded_at']}).")
            subprocess.run([_tenure(), "init"], env=_env(directory), check=True)
            return loaded
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([_tenure(), "init"], env=_env(directory), check=True)
    stats = _load(dataset, directory)
    loaded = {
        "dataset": asdict(dataset),
        "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_seconds": round(stats.seconds, 1),
        "loaded": {
            "customers": stats.customers,
            "products": stats.products,
            "orders": stats.orders,
            "order_lines": stats.order_lines,
        },
    }
    marker.write_text(json.dumps(loaded, indent=2))
    return loaded


def _load(dataset: Dataset, directory: Path) -> Any:
    """Demo data through ``tenure.ops.demo.load`` (the CLI's loader, with lines per customer)."""
    from tenure.config import Settings
    from tenure.db import make_engine
    from tenure.ops import demo
    from tenure.security import fields, keyring

    settings = Settings(data_dir=directory)
    keyring.ensure_file(settings)  # the server started over this directory reads it too
    engine = make_engine(settings)
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        stats = demo.load(
            engine,
            customers=dataset.customers,
            seed=dataset.seed,
            lines_per_customer=dataset.lines_per_customer,
            sealer=fields.sealer_for(settings),
            progress=report,
        )
    engine.dispose()
    console.print(
        f"Loaded {stats.customers:,} customers, {stats.orders:,} orders, "
        f"{stats.order_lines:,} lines in {stats.seconds:.0f} s."
    )
    return stats


def table_counts(directory: Path) -> dict[str, int]:
    with sqlite3.connect(directory / "tenure.db") as db:
        return {
            name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in ("customer", "customer_search_term", "product", "sales_order", "order_line")
        }


# --- Requests -----------------------------------------------------------------------


Job = tuple[str, str, str]  # method, path, JSON body ("" for none)


def build_jobs(directory: Path, n: int, rng: random.Random) -> dict[str, list[Job]]:
    """``n`` requests per operation (plus warm-up), drawn from the data itself."""
    total = n + WARMUP
    with sqlite3.connect(directory / "tenure.db") as db:
        (top,) = db.execute("SELECT max(id) FROM customer").fetchone()
        ids = [rng.randint(1, top) for _ in range(total)]
        sample = ",".join(str(rng.randint(1, top)) for _ in range(total))
        names = [row[0] for row in db.execute(f"SELECT name FROM customer WHERE id IN ({sample})")]
        products = [row[0] for row in db.execute("SELECT id FROM product WHERE active")]
    prefixes = [_prefix(name, rng) for name in names]
    rng.shuffle(prefixes)
    run = f"{int(time.time())}"
    return {
        HEALTHZ: [("GET", "/healthz", "")] * total,
        GET_ONE: [("GET", f"/api/v1/customers/{i}", "") for i in ids],
        SEARCH: [
            ("GET", "/api/v1/customers?q=" + urllib.parse.quote(p), "")
            for p in (prefixes * (total // max(1, len(prefixes)) + 1))[:total]
        ],
        POST_CUSTOMER: [
            ("POST", "/api/v1/customers", _customer(run, i, rng)) for i in range(total)
        ],
        POST_ORDER: [
            ("POST", "/api/v1/orders", _order(rng.randint(1, top), products, rng))
            for _ in range(total)
        ],
    }


def _prefix(name: str, rng: random.Random) -> str:
    """The first 2-4 letters of a word of a real name, as a user would type them."""
    words = [w for w in name.lower().split() if len(w) >= 2] or [name.lower()]
    word = rng.choice(words)
    return word[: rng.randint(2, 4)]


def _customer(run: str, i: int, rng: random.Random) -> str:
    given = rng.choice(("Ada", "Björn", "Chloé", "Dmitri", "Elif", "Fang", "Grace", "Hugo"))
    family = rng.choice(("Lovelace", "Berg", "Martin", "Ivanov", "Yilmaz", "Wang", "Hopper"))
    return json.dumps(
        {
            "name": f"{given} {family}",
            "email": f"bench-{run}-{i}@bench.example",
            "phone": "+49 30 1234567",
            "address": {"line1": "Hauptstraße 1", "city": "Berlin", "country": "DE"},
            "tags": ["benchmark"],
            "lifecycle_stage": "lead",
            "source": "benchmark",
        }
    )


def _order(customer_id: int, products: list[int], rng: random.Random) -> str:
    lines = [{"product_id": p, "quantity": rng.randint(1, 3)} for p in rng.sample(products, 3)]
    return json.dumps({"customer_id": customer_id, "status": "placed", "lines": lines})


# --- The load-generating client (runs in its own process) ---------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length, chunked, close = 0, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
    if not chunked:
        return status, await reader.readexactly(length), close
    body = b""
    while True:
        size = int((await reader.readline()).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body, close
        body += chunk[:-2]


async def _connection(
    host: str, port: int, token: str, jobs: list[Job], expected: int, out: dict[str, Any]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    for method, path, body in jobs:
        payload = body.encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}Accept: */*\r\n"
        if payload:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        request = head.encode() + b"\r\n" + payload
        out["sent"] += 1
        started = time.perf_counter()
        try:
            writer.write(request)
            status, response, close = await _read_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            out["errors"] += 1
            if len(out["samples"]) < 5:
                out["samples"].append(f"{type(exc).__name__}: {exc}")
            reader, writer = await asyncio.open_connection(host, port)
            continue
        out["latencies"].append(time.perf_counter() - started)
        if status != expected:
            out["errors"] += 1
            if len(out["samples"]) < 5:  # a few examples are enough to see what went wrong
                out["samples"].append(f"{status} {response[:300]!r}")
        if close:
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
    writer.close()


async def _phase(
    host: str, port: int, token: str, jobs: list[Job], expected: int, clients: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "errors": 0, "samples": [], "sent": 0}
    await asyncio.gather(
        *(_connection(host, port, token, jobs[i::clients], expected, out) for i in range(clients))
    )
    return out


def client_main(spec_path: Path) -> None:
    """Run every operation's requests; write their raw results, one JSON object, to the
    file the spec names (a file, not stdout: a pipe has cut it short before)."""
    import uvloop

    spec = json.loads(spec_path.read_text())
    results: dict[str, Any] = {}

    def drive(jobs: list[Job], expected: int) -> dict[str, Any]:
        phase = _phase(spec["host"], spec["port"], spec["token"], jobs, expected, spec["clients"])
        return uvloop.run(phase)

    warmed: set[str] = set()
    for op, start, stop in spec["schedule"]:
        jobs: list[Job] = [(m, p, b) for m, p, b in spec["jobs"][op]]
        if op not in warmed:
            drive(jobs[:WARMUP], spec["expected"][op])
            warmed.add(op)
        server_before = [_cpu_seconds([pid]) for pid in spec["server_pids"]]
        cpu_before, load_before = time.process_time(), os.getloadavg()[0]
        started = time.perf_counter()
        raw = drive(jobs[WARMUP + start : WARMUP + stop], spec["expected"][op])
        wall = time.perf_counter() - started
        raw |= {
            "wall": wall,
            "client_cpu": time.process_time() - cpu_before,
            # Per process (the supervisor, then each worker): shows whether the workers
            # share the load.
            "server_cpu_each": [
                _cpu_seconds([pid]) - before
                for pid, before in zip(spec["server_pids"], server_before, strict=True)
            ],
            "loadavg_1m": [load_before, os.getloadavg()[0]],
        }
        results[op] = _pooled(results[op], raw) if op in results else raw
    Path(spec["results"]).write_text(json.dumps(results))


def schedule(operations: list[str], requests: int) -> list[tuple[str, int, int]]:
    """The slices of each operation's requests, in the order they are measured.

    ``/healthz`` and ``GET /customers/{id}`` alternate in ``PAIR_ROUNDS`` rounds: their
    ratio is a target, and the machine's speed drifts within a run, so each side of the
    ratio is measured across the same stretch of time. The others run whole, in turn."""
    paired = [op for op in (HEALTHZ, GET_ONE) if op in operations]
    rounds = PAIR_ROUNDS if len(paired) == 2 else 1
    bounds = [requests * r // rounds for r in range(rounds + 1)]
    plan = [(op, bounds[r], bounds[r + 1]) for r in range(rounds) for op in paired]
    return plan + [(op, 0, requests) for op in operations if op not in paired]


def _pooled(done: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """One operation's raw results over two of its slices."""
    return {
        "latencies": done["latencies"] + more["latencies"],
        "errors": done["errors"] + more["errors"],
        "samples": (done["samples"] + more["samples"])[:5],
        "sent": done["sent"] + more["sent"],
        "wall": done["wall"] + more["wall"],
        "client_cpu": done["client_cpu"] + more["client_cpu"],
        "server_cpu_each": [
            a + b for a, b in zip(done["server_cpu_each"], more["server_cpu_each"], strict=True)
        ],
        "loadavg_1m": [done["loadavg_1m"][0], more["loadavg_1m"][1]],
    }


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the server processes (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


# --- The server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    pids: list[int] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def start_server(directory: Path, workers: int, log_level: str = "warning") -> Server:
    """``tenure serve`` on a free port, ready; its log (JSON lines) in ``server.log``."""
    port = free_port()
    log = directory / "server.log"
    process = subprocess.Popen(
        [_tenure(), "serve", "--workers", str(workers), "--port", str(port)],
        env=_env(directory, log_level),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(process, port, log)
    try:
        _wait_until_ready(server, workers)
    except BaseException:
        stop_server(server)  # never leave a server behind
        raise
    return server


def _wait_until_ready(server: Server, workers: int) -> None:
    process = server.process
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited; see {server.log}")
        try:
            with urllib.request.urlopen(server.url("/readyz"), timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        time.sleep(0.25)
    else:
        raise SystemExit(f"the server did not become ready; see {server.log}")
    # Wait for every worker before measuring, then note all server pids for CPU accounting.
    while len(children(process.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.25)
    server.pids = [process.pid, *children(process.pid)]


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (none once it has gone)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in task.read_text().split()]
        except OSError:  # the thread or the process ended meanwhile
            continue
    return found


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a ``tenure serve`` process gracefully (SIGINT); killed after 30 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_server(server: Server) -> None:
    """Stop the server and wait until its workers are gone too: the last one to close the
    database copies the write-ahead log back into it, which can take a while after a load."""
    stop(server.process)
    deadline = time.monotonic() + 300
    while any(Path(f"/proc/{pid}").exists() for pid in server.pids[1:]):
        if time.monotonic() > deadline:
            raise SystemExit(f"server workers {server.pids[1:]} did not exit")
        time.sleep(0.1)


def sign_in(server: Server) -> str:
    body = json.dumps({"email": ADMIN, "password": PASSWORD}).encode()
    req = urllib.request.Request(
        server.url("/api/v1/auth/login"), data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return str(json.loads(r.read())["access_token"])


# --- Figures ------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(p / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    lat = sorted(raw["latencies"])
    return {
        "requests": raw["sent"],
        "errors": raw["errors"],
        "error_samples": raw["samples"],
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p95_ms": round(percentile(lat, 95) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
        "rps": round(len(lat) / raw["wall"], 1),
        "seconds": round(raw["wall"], 2),
        "client_cpu_share": round(raw["client_cpu"] / raw["wall"], 2),
        "server_cpu_cores": round(sum(raw["server_cpu_each"]) / raw["wall"], 2),
        "worker_cpu_cores": [round(c / raw["wall"], 2) for c in raw["server_cpu_each"][1:]],
        "loadavg_1m": [round(x, 2) for x in raw["loadavg_1m"]],
    }


def targets(ops: dict[str, dict[str, Any]], customers: int) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met."""
    ceiling = ops[HEALTHZ]["rps"]
    full = customers >= FULL_CUSTOMERS
    return [
        {
            "target": "GET /customers/{id} reaches at least half the throughput of /healthz",
            "measured": f"{ops[GET_ONE]['rps']} rps vs {ceiling} rps "
            f"({ops[GET_ONE]['rps'] / ceiling:.0%})",
            "met": ops[GET_ONE]["rps"] >= ceiling / 2,
        },
        {
            "target": "search p95 <= 30 ms at 1,000,000 customers",
            "measured": f"p95 {ops[SEARCH]['p95_ms']} ms at {customers:,} customers",
            "met": ops[SEARCH]["p95_ms"] <= 30 if full else None,
        },
        {
            "target": "POST /orders p95 <= 25 ms",
            "measured": f"p95 {ops[POST_ORDER]['p95_ms']} ms",
            "met": ops[POST_ORDER]["p95_ms"] <= 25,
        },
    ]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        mem = int(meminfo.read_text().split()[1]) // 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mib": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _git() -> dict[str, Any]:
    def run(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "commit": run("rev-parse", "HEAD"),
        "uncommitted_files": len(run("status", "--porcelain").splitlines()),
    }


def write_results(name: str, report: dict[str, Any]) -> tuple[Path, Path]:
    RESULTS.mkdir(exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


def markdown(report: dict[str, Any]) -> str:
    data, m = report["dataset"], report["machine"]
    lines = [
        f"# API benchmark ({report['finished_at']})",
        "",
        f"{data['customers']:,} customers, {data['orders']:,} orders, "
        f"{data['order_lines']:,} order lines, {data['products']:,} products on SQLite; "
        f"`tenure serve --workers {report['workers']}`; {report['clients']} concurrent "
        f"keep-alive clients in a separate process; {report['requests_per_operation']:,} "
        "requests per operation after a warm-up, `/healthz` and `GET /customers/{id}` "
        f"alternating in {PAIR_ROUNDS} rounds; the database file is read into the OS "
        "cache before the server starts.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mib']:,} MiB, Python "
        f"{m['python']}, SQLite {m['sqlite']}; load average at start {m['loadavg_at_start']}.",
        "",
        "| operation | requests | errors | p50 ms | p95 ms | p99 ms | req/s "
        "| server cores (per worker) | client CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for op, r in report["operations"].items():
        lines.append(
            f"| `{op}` | {r['requests']:,} | {r['errors']} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{r['p99_ms']} | {r['rps']:,} | {r['server_cpu_cores']} "
            f"({_per_worker(r)}) | {r['client_cpu_share']:.0%} |"
        )
    lines += ["", f"Database check after the run (SQLite quick_check): {report['database_check']}."]
    lines += ["", "| target | measured | met |", "| --- | --- | --- |"]
    for t in report["targets"]:
        met = "n/a (not the full size)" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def _per_worker(r: dict[str, Any]) -> str:
    return " + ".join(f"{c:.2f}" for c in r["worker_cpu_cores"])


def print_table(report: dict[str, Any]) -> None:
    table = Table(title=f"Tenure API, {report['dataset']['customers']:,} customers")
    for col in ("operation", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s",
                "server cores", "client CPU"):  # fmt: skip
        table.add_column(col, justify="left" if col == "operation" else "right")
    for op, r in report["operations"].items():
        table.add_row(op, f"{r['requests']:,}", str(r["errors"]), f"{r['p50_ms']:.1f}",
                      f"{r['p95_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['rps']:,.0f}",
                      f"{r['server_cpu_cores']:.2f} ({_per_worker(r)})",
                      f"{r['client_cpu_share']:.0%}")  # fmt: skip
    console.print(table)
    check = report["database_check"]
    console.print(
        f"Database check after the run: {'[green]' if check == 'ok' else '[red]'}{check}[/]"
    )
    for t in report["targets"]:
        mark = (
            "[yellow]n/a[/]"
            if t["met"] is None
            else "[green]met[/]"
            if t["met"]
            else "[red]MISSED[/]"
        )
        console.print(f"{mark}  {t['target']}: {t['measured']}")


# --- Main ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help=f"{SMALL_CUSTOMERS:,} customers")
    parser.add_argument("--customers", type=int, help=f"default {FULL_CUSTOMERS:,}")
    parser.add_argument("--lines-per-customer", type=float, default=LINES_PER_CUSTOMER)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--requests", type=int, default=2000, help="per operation")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--fresh", action="store_true", help="reload the data even if present")
    parser.add_argument(
        "--profile",
        choices=sorted(KEYS),
        help="drive only this operation and sample the server with py-spy (results/profile-*)",
    )
    parser.add_argument("--no-wait", action="store_true", help="run beside other benchmarks")
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client)
        return
    check_alone(not args.no_wait)
    customers = args.customers or (SMALL_CUSTOMERS if args.small else FULL_CUSTOMERS)
    name = (
        "api" if customers == FULL_CUSTOMERS else "api-small" if args.small else f"api-{customers}"
    )
    dataset = Dataset(customers, args.seed, args.lines_per_customer)
    loaded = prepare(dataset, fresh=args.fresh)
    directory = data_dir(dataset)
    if args.profile:
        profile(directory, args, name)
        return
    report = run(directory, dataset, loaded, args)
    json_path, md_path = write_results(name, report)
    print_table(report)
    console.print(
        f"Wrote {json_path.relative_to(ROOT.parent)} and {md_path.relative_to(ROOT.parent)}."
    )


def drive(
    directory: Path,
    args: argparse.Namespace,
    operations: list[str],
    sampler: list[str] | None = None,
) -> dict[str, Any]:
    """Start the server, run the client process over ``operations``, stop the server.

    With ``sampler`` (a py-spy command without the pid), the server is sampled meanwhile."""
    jobs = build_jobs(directory, args.requests, random.Random(args.seed))
    warm_file_cache(directory / "tenure.db")
    server = start_server(directory, args.workers)
    spy: subprocess.Popen[bytes] | None = None
    try:
        spec = {
            "host": "127.0.0.1",
            "port": server.port,
            "token": sign_in(server),
            "clients": args.clients,
            "schedule": schedule(operations, args.requests),
            "expected": EXPECTED,
            "jobs": {op: jobs[op] for op in operations},
            "server_pids": server.pids,
        }
        results = directory / "client-results.json"
        results.unlink(missing_ok=True)
        spec["results"] = str(results)
        spec_path = directory / "client-spec.json"
        spec_path.write_text(json.dumps(spec))
        if sampler:
            spy = subprocess.Popen([*sampler, "--pid", str(server.process.pid)])
            time.sleep(1)  # let py-spy attach before the load starts
        console.print(f"Driving {len(operations)} operation(s) x {args.requests:,} requests ...")
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--client", str(spec_path)],
            check=True,
        )
        raw: dict[str, Any] = json.loads(results.read_text())
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        stop_server(server)
    return raw


def database_check(path: Path) -> str:
    """SQLite's quick_check of the database after the run: "ok", or what it found. The
    run wrote thousands of customers and orders from two processes at once."""
    with closing(sqlite3.connect(path)) as db:
        found = [row[0] for row in db.execute("PRAGMA quick_check(10)")]
    return "; ".join(found)


def warm_file_cache(path: Path) -> None:
    """Read the database file once, so its pages are in the OS cache as on a server that
    has been answering for a while. This machine drops cached file pages within minutes;
    without it random reads measure the disk (GET /customers/{id}: 624 req/s cold against
    1,436 warm at 1,000,000 customers)."""
    with path.open("rb") as f:
        while f.read(16 * 2**20):
            pass


def run(
    directory: Path, dataset: Dataset, loaded: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Every operation in one run, and the report with the targets checked."""
    counts = table_counts(directory)
    check_alone(not args.no_wait)
    started_machine = machine()
    raw = drive(directory, args, list(OPERATIONS))
    others = other_benchmarks()
    ops = {op: summarise(raw[op]) for op in OPERATIONS}
    return {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": {
            "customers": counts["customer"],
            "orders": counts["sales_order"],
            "order_lines": counts["order_line"],
            "products": counts["product"],
            "search_terms": counts["customer_search_term"],
            "database_mib": round((directory / "tenure.db").stat().st_size / 2**20),
            "seed": dataset.seed,
            "load_seconds": loaded.get("load_seconds"),
        },
        "workers": args.workers,
        "clients": args.clients,
        "requests_per_operation": args.requests,
        "warmup_per_operation": WARMUP,
        "machine": started_machine | {"loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "other_benchmarks_at_end": others,
        "code": _git(),
        "operations": ops,
        "targets": targets(ops, counts["customer"]),
        "database_check": database_check(directory / "tenure.db"),
    }


# --- Profiles -----------------------------------------------------------------------


def profile(directory: Path, args: argparse.Namespace, name: str) -> None:
    """Drive one operation while py-spy samples the server; summarise where time goes."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/python -m pip install py-spy")
    op = KEYS[args.profile]
    stacks = directory / f"profile-{args.profile}.txt"
    sampler = [py_spy, "record", "--subprocesses", "--nonblocking", "--rate", "250",
               "--format", "raw", "--output", str(stacks)]  # fmt: skip
    raw = drive(directory, args, [op], sampler)
    figures = summarise(raw[op])
    text_ = profile_summary(stacks, op, figures, table_counts(directory)["customer"])
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"profile-{name}-{args.profile}.txt"
    out.write_text(text_)
    console.print(text_, markup=False, highlight=False)
    console.print(f"Wrote {out.relative_to(ROOT.parent)}; raw stacks in {stacks}.")


def profile_summary(stacks: Path, op: str, figures: dict[str, Any], customers: int) -> str:
    """Top functions by inclusive and by own time, from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in stacks.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        total += count
        for frame in dict.fromkeys(_short(f) for f in frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        leaf = _short(frames[-1])
        own[leaf] = own.get(leaf, 0) + count
    lines = [
        f"py-spy profile of the server (2 workers) under {op}, {customers:,} customers",
        f"(sampled at 250 Hz while {figures['requests']:,} requests ran: p50 "
        f"{figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, {figures['rps']} req/s "
        "with the sampler attached)",
        f"{total:,} samples of busy server threads",
        "",
        "Inclusive time (a function and everything it calls):",
    ]
    lines += _top(inclusive, total, 45)
    lines += ["", "Own time (where the CPU actually was):"]
    lines += _top(own, total, 30)
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    """'func (/long/path/site-packages/pkg/mod.py:12)' -> 'func (pkg/mod.py:12)'."""
    func, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{func} ({where})"


def _top(counts: dict[str, int], total: int, n: int) -> list[str]:
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:n]
    return [f"  {100 * c / total:5.1f}%  {frame}" for frame, c in ranked]


if __name__ == "__main__":
    main()
