"""Web UI benchmark: server-side time of the pages people open all day, at 1,000,000 customers.

    .venv/bin/python benchmarks/web.py            # the data of benchmarks/api.py (1,000,000)
    .venv/bin/python benchmarks/web.py --small    # 50,000 customers: a quick run

Reuses (or loads) the data directory of ``benchmarks/api.py`` of the same size, gives one
customer 200 orders (through the API, once), signs in through the login form like a
browser (session cookie, CSRF token) and opens, one request at a time: the customers
list (``/customers``), a search (``/customers?q=`` with the first letters of a real
name), that customer's 360 page (``/customers/{id}``) and the dashboard (``/``). The
server-side time of each request is what the server's access log measured (from the
request's arrival in the application to its last byte), matched by request id; the
client's round trip is recorded beside it. Results: ``benchmarks/results/web.json``
and ``.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from rich.table import Table

import api
from api import console
from tenure.sqlite import sqlite3

ORDERS = 200
TARGET_MS = 100.0
LIST = "GET /customers"
SEARCH = "GET /customers?q=<prefix>"
DETAIL = f"GET /customers/{{id}} ({ORDERS} orders)"
DASHBOARD = "GET / (dashboard)"
PAGES = (LIST, SEARCH, DETAIL, DASHBOARD)
TARGETED = (LIST, SEARCH, DETAIL)
WARMUP = 20


# --- The customer with 200 orders ----------------------------------------------------


def busy_customer(directory: Path, server: api.Server) -> int:
    """A customer with exactly ``ORDERS`` orders: the busiest one, topped up through the API."""
    marker = directory / "web-customer.json"
    if marker.exists():
        chosen: int = json.loads(marker.read_text())["customer_id"]
        if _order_count(directory, chosen) == ORDERS:
            return chosen
    with sqlite3.connect(directory / "tenure.db") as db:
        chosen, count = db.execute(
            "SELECT customer_id, count(*) FROM sales_order WHERE deleted_at IS NULL "
            "GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 1"
        ).fetchone()
        products = [row[0] for row in db.execute("SELECT id FROM product WHERE active")]
    if count > ORDERS:
        raise SystemExit(f"customer {chosen} has {count} orders already, more than {ORDERS}")
    token = api.sign_in(server)
    rng = random.Random(api.SEED)
    now = datetime.now(UTC)
    for i in range(ORDERS - count):
        body = {
            "customer_id": chosen,
            "status": rng.choice(("placed", "paid")),
            "ordered_at": (now - timedelta(days=730 * (i + 1) / ORDERS)).isoformat(),
            "lines": [
                {"product_id": p, "quantity": rng.randint(1, 3)}
                for p in rng.sample(products, rng.randint(1, 4))
            ],
        }
        _post_json(server, "/api/v1/orders", body, token)
    if _order_count(directory, chosen) != ORDERS:
        raise SystemExit(f"customer {chosen} did not end up with {ORDERS} orders")
    marker.write_text(json.dumps({"customer_id": chosen}))
    return chosen


def _order_count(directory: Path, customer_id: int) -> int:
    with sqlite3.connect(directory / "tenure.db") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM sales_order WHERE customer_id = ? AND deleted_at IS NULL",
            (customer_id,),
        ).fetchone()
    return int(count)


def _post_json(server: api.Server, path: str, body: dict[str, Any], token: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(
            "POST",
            path,
            json.dumps(body),
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        response = conn.getresponse()
        answer = response.read()
        if response.status != 201:
            raise SystemExit(f"POST {path}: {response.status} {answer[:300]!r}")
    finally:
        conn.close()


# --- A browser, signed in ------------------------------------------------------------


@dataclass
class Browser:
    """One keep-alive connection and the cookies the server set, as a browser keeps them."""

    server: api.Server
    cookies: dict[str, str]
    conn: http.client.HTTPConnection

    @classmethod
    def open(cls, server: api.Server) -> Browser:
        return cls(server, {}, http.client.HTTPConnection("127.0.0.1", server.port, timeout=60))

    def request(
        self, method: str, path: str, *, form: dict[str, str] | None = None, request_id: str = ""
    ) -> tuple[int, bytes, float]:
        headers = {"Accept": "text/html", "Accept-Language": "en"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if request_id:
            headers["X-Request-ID"] = request_id
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        self.conn.request(method, path, body, headers)
        response = self.conn.getresponse()
        content = response.read()
        elapsed = time.perf_counter() - started
        for header in response.headers.get_all("set-cookie") or []:
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response.status, content, elapsed

    def sign_in(self) -> None:
        status, page, _ = self.request("GET", "/login")
        found = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        if status != 200 or found is None:
            raise SystemExit(f"the login page answered {status} without a CSRF token")
        form = {
            "email": api.ADMIN,
            "password": api.PASSWORD,
            "csrf_token": found.group(1).decode(),
            "next": "/",
        }
        status, _, _ = self.request("POST", "/login", form=form)
        if status != 303 or "tenure_session" not in self.cookies:
            raise SystemExit(f"signing in through the form answered {status}")


# --- Measuring -----------------------------------------------------------------------


def page_paths(
    directory: Path, customer_id: int, n: int, rng: random.Random
) -> dict[str, list[str]]:
    """``n`` addresses per page (plus warm-up); searches use the first letters of real names."""
    total = n + WARMUP
    with sqlite3.connect(directory / "tenure.db") as db:
        (top,) = db.execute("SELECT max(id) FROM customer").fetchone()
        sample = ",".join(str(rng.randint(1, top)) for _ in range(total))
        names = [row[0] for row in db.execute(f"SELECT name FROM customer WHERE id IN ({sample})")]
    prefixes = [api._prefix(name, rng) for name in names]
    searches = [
        "/customers?" + urllib.parse.urlencode({"q": p})
        for p in (prefixes * (total // max(1, len(prefixes)) + 1))[:total]
    ]
    return {
        LIST: ["/customers"] * total,
        SEARCH: searches,
        DETAIL: [f"/customers/{customer_id}"] * total,
        DASHBOARD: ["/"] * total,
    }


def measure(server: api.Server, paths: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Open every address one after the other; client and server times per page."""
    browser = Browser.open(server)
    browser.sign_in()
    client: dict[str, list[float]] = {page: [] for page in PAGES}
    ids: dict[str, str] = {}
    run = f"{int(time.time())}"
    for page in PAGES:
        for i, path in enumerate(paths[page]):
            request_id = f"web-{run}-{PAGES.index(page)}-{i}"
            status, body, elapsed = browser.request("GET", path, request_id=request_id)
            if status != 200:
                raise SystemExit(f"{path} answered {status}: {body[:300]!r}")
            if i >= WARMUP:
                client[page].append(elapsed)
                ids[request_id] = page
    time.sleep(1)  # the last access log lines are flushed
    server_side = _server_times(server.log, ids)
    return {page: _figures(server_side[page], client[page]) for page in PAGES}


def _server_times(log: Path, ids: dict[str, str]) -> dict[str, list[dict[str, float]]]:
    found: dict[str, list[dict[str, float]]] = {page: [] for page in PAGES}
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        page = ids.get(str(record.get("request_id")))
        if page is not None and "duration_ms" in record:
            found[page].append(record)
    for page, records in found.items():
        expected = sum(1 for p in ids.values() if p == page)
        if len(records) != expected:
            raise SystemExit(f"{page}: {len(records)} of {expected} requests in the access log")
    return found


def _figures(server: list[dict[str, Any]], client: list[float]) -> dict[str, Any]:
    duration = sorted(float(r["duration_ms"]) for r in server)
    db = sorted(float(r["db_ms"]) for r in server)
    rtt = sorted(x * 1000 for x in client)
    return {
        "requests": len(duration),
        "server_p50_ms": round(api.percentile(duration, 50), 2),
        "server_p95_ms": round(api.percentile(duration, 95), 2),
        "server_p99_ms": round(api.percentile(duration, 99), 2),
        "server_max_ms": round(duration[-1], 2),
        "db_p50_ms": round(api.percentile(db, 50), 2),
        "db_queries": max(int(r["db_queries"]) for r in server),
        "client_p50_ms": round(api.percentile(rtt, 50), 2),
        "client_p95_ms": round(api.percentile(rtt, 95), 2),
    }


# --- Results -------------------------------------------------------------------------


def targets(pages: dict[str, dict[str, Any]], customers: int) -> list[dict[str, Any]]:
    full = customers >= api.FULL_CUSTOMERS
    rows = []
    for page in PAGES:
        p95 = pages[page]["server_p95_ms"]
        rows.append(
            {
                "target": f"{page}: server-side p95 <= {TARGET_MS:.0f} ms at 1,000,000 customers"
                + ("" if page in TARGETED else " (the dashboard: not in the issue's list)"),
                "measured": f"p95 {p95} ms at {customers:,} customers",
                "met": (p95 <= TARGET_MS) if full else None,
            }
        )
    return rows


def markdown(report: dict[str, Any]) -> str:
    data, m = report["dataset"], report["machine"]
    lines = [
        f"# Web UI benchmark ({report['finished_at']})",
        "",
        f"{data['customers']:,} customers, {data['orders']:,} orders, "
        f"{data['order_lines']:,} order lines on SQLite; `tenure serve --workers "
        f"{report['workers']}`; one browser signed in through the login form (session "
        f"cookie), one request at a time, {report['requests_per_page']:,} requests per page "
        f"after {WARMUP} to warm up. The 360 page is customer {report['customer_id']}'s, "
        f"with {ORDERS} orders. Server-side time: the server's access log (arrival in the "
        "application to the last byte), matched by request id.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mib']:,} MiB, Python "
        f"{m['python']}, SQLite {m['sqlite']}; load average at start {m['loadavg_at_start']}.",
        "",
        "| page | requests | server p50 ms | server p95 ms | server p99 ms | database p50 ms "
        "| queries | client p50 ms | client p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for page, r in report["pages"].items():
        lines.append(
            f"| `{page}` | {r['requests']:,} | {r['server_p50_ms']} | {r['server_p95_ms']} | "
            f"{r['server_p99_ms']} | {r['db_p50_ms']} | {r['db_queries']} | "
            f"{r['client_p50_ms']} | {r['client_p95_ms']} |"
        )
    lines += ["", "| target | measured | met |", "| --- | --- | --- |"]
    for t in report["targets"]:
        met = "n/a (not the full size)" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def print_table(report: dict[str, Any]) -> None:
    table = Table(title=f"Tenure web UI, {report['dataset']['customers']:,} customers")
    for col in ("page", "requests", "server p50", "server p95", "server p99", "db p50",
                "queries", "client p95"):  # fmt: skip
        table.add_column(col, justify="left" if col == "page" else "right")
    for page, r in report["pages"].items():
        table.add_row(page, f"{r['requests']:,}", f"{r['server_p50_ms']:.1f}",
                      f"{r['server_p95_ms']:.1f}", f"{r['server_p99_ms']:.1f}",
                      f"{r['db_p50_ms']:.1f}", str(r["db_queries"]),
                      f"{r['client_p95_ms']:.1f}")  # fmt: skip
    console.print(table)
    for t in report["targets"]:
        mark = (
            "[yellow]n/a[/]"
            if t["met"] is None
            else "[green]met[/]"
            if t["met"]
            else "[red]MISSED[/]"
        )
        console.print(f"{mark}  {t['target']}: {t['measured']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help=f"{api.SMALL_CUSTOMERS:,} customers")
    parser.add_argument("--customers", type=int, help=f"default {api.FULL_CUSTOMERS:,}")
    parser.add_argument("--requests", type=int, default=300, help="per page")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--no-wait", action="store_true", help="run beside other benchmarks")
    args = parser.parse_args()
    customers = args.customers or (api.SMALL_CUSTOMERS if args.small else api.FULL_CUSTOMERS)
    name = (
        "web"
        if customers == api.FULL_CUSTOMERS
        else "web-small"
        if args.small
        else f"web-{customers}"
    )
    pattern = r"benchmarks/(load|api)\.py|locust"
    api.check_alone(not args.no_wait, pattern)
    dataset = api.Dataset(customers, api.SEED, api.LINES_PER_CUSTOMER)
    loaded = api.prepare(dataset, fresh=False)
    directory = api.data_dir(dataset)
    api.check_alone(not args.no_wait, pattern)
    started_machine = api.machine()
    server = api.start_server(directory, args.workers, log_level="info")
    try:
        customer_id = busy_customer(directory, server)
        paths = page_paths(directory, customer_id, args.requests, random.Random(api.SEED))
        console.print(f"Opening {len(PAGES)} pages x {args.requests:,} times, one at a time ...")
        pages = measure(server, paths)
    finally:
        api.stop_server(server)
    counts = api.table_counts(directory)
    report = {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": {
            "customers": counts["customer"],
            "orders": counts["sales_order"],
            "order_lines": counts["order_line"],
            "products": counts["product"],
            "database_mib": round((directory / "tenure.db").stat().st_size / 2**20),
            "seed": dataset.seed,
            "load_seconds": loaded.get("load_seconds"),
        },
        "workers": args.workers,
        "requests_per_page": args.requests,
        "warmup_per_page": WARMUP,
        "customer_id": customer_id,
        "machine": started_machine | {"loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "other_benchmarks_at_end": api.other_benchmarks(pattern),
        "code": api._git(),
        "pages": pages,
        "targets": targets(pages, counts["customer"]),
    }
    api.RESULTS.mkdir(exist_ok=True)
    json_path, md_path = api.RESULTS / f"{name}.json", api.RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(report))
    print_table(report)
    root = api.ROOT.parent
    console.print(f"Wrote {json_path.relative_to(root)} and {md_path.relative_to(root)}.")


if __name__ == "__main__":
    main()
