"""``tenure serve --workers 2`` run for real: metrics add up over both workers, a real
Prometheus server scrapes them (with the metrics token) and answers rate and increase
queries, and the server writes JSON log lines without secrets.

Slow by nature (a server with two workers, and Prometheus); the server is started once
for the module.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from tenure.observability.log_analysis import analyze
from tests.conftest import PASSWORD, MakeUser

TOKEN = "metrics-test-token"
STARTUP_SECONDS = 120  # two workers importing the app on a busy machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(
    url: str, *, data: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def _wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"Timed out after {seconds:.0f} s waiting for {what}.")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process we started (its whole session), SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass
class Served:
    url: str
    metrics_dir: Path
    stderr: Path

    def log_text(self) -> str:
        return self.stderr.read_text()

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, _, text = _http(f"{self.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, text
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def requests_seen(self, route: str, status: int = 200) -> float:
        key = frozenset({"method": "GET", "route": route, "status": str(status)}.items())
        return self.scrape().get(("tenure_http_requests_total", key), 0.0)


def _stale_counts(metrics_dir: Path) -> None:
    """Counts a previous run left behind: 1000 /healthz requests of a long-gone process."""
    code = (
        "from tenure.observability import metrics\n"
        "for _ in range(1000): metrics.observe_request('GET', '/healthz', 200, 0.01, False)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert list(metrics_dir.glob("counter_*.db"))


@pytest.fixture(scope="module")
def served(
    database_url: str,
    engine: Engine,
    keyring_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """``tenure serve --workers 2`` on a free loopback port, over the test database, with a
    metrics token and a metrics directory holding stale counts from an earlier run."""
    root = tmp_path_factory.mktemp("served")
    metrics_dir = root / "metrics"
    metrics_dir.mkdir()
    _stale_counts(metrics_dir)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update(
        TENURE_DATA_DIR=str(root / "data"),
        TENURE_DATABASE_URL=database_url,
        TENURE_KEYRING_FILE=str(keyring_file),
        TENURE_METRICS_TOKEN=TOKEN,
        TENURE_LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    stderr = root / "stderr.log"
    process = _serve_two_workers(env, port, stderr)
    try:
        _wait_for_workers(process, stderr, 2)
        yield Served(f"http://127.0.0.1:{port}", metrics_dir, stderr)
    finally:
        _stop(process)


def _serve_two_workers(env: dict[str, str], port: int, stderr: Path) -> subprocess.Popen[bytes]:
    with stderr.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "tenure", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def _wait_for_workers(process: subprocess.Popen[bytes], stderr: Path, count: int) -> None:
    """Until ``count`` workers (replacements included) have started taking connections."""
    _wait_for(
        lambda: (
            process.poll() is not None or stderr.read_text().count("taking connections") >= count
        ),
        STARTUP_SECONDS,
        f"{count} workers to take connections",
    )
    assert process.poll() is None, stderr.read_text()


def _healthz_per_worker(metrics_dir: Path) -> dict[str, float]:
    """The /healthz count in each worker's own file of the shared directory."""
    counts = {}
    for file in metrics_dir.glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(file)]):  # type: ignore[no-untyped-call]
            for s in family.samples:
                if s.name == "tenure_http_requests_total" and s.labels["route"] == "/healthz":
                    counts[file.name] = s.value
    return counts


def test_counts_from_two_workers_add_up(served: Served) -> None:
    # The stale counts were cleared when the server started.
    assert served.requests_seen("/healthz") == 0
    sent = 200
    with ThreadPoolExecutor(max_workers=8) as pool:  # each request on a new connection
        statuses = list(pool.map(lambda _: _http(f"{served.url}/healthz")[0], range(sent)))
    assert statuses == [200] * sent

    assert served.requests_seen("/healthz") == sent
    per_worker = _healthz_per_worker(served.metrics_dir)
    assert len(per_worker) == 2, per_worker  # both workers served, nothing stale counted
    assert sum(per_worker.values()) == sent
    # Connections are dealt out to the workers in turn: an even split.
    assert sorted(per_worker.values()) == [sent / 2, sent / 2], per_worker
    # The log, written by both workers, tells the same story.
    report = analyze(served.log_text().splitlines())
    assert {r.route: r.requests for r in report.routes}["GET /healthz"] == sent


def test_kept_alive_connections_are_shared_evenly(served: Served) -> None:
    """A few clients that keep their connections (a proxy's pool, a load test) get both
    workers: with connections placed by chance, all of them often landed on one."""
    before = _healthz_per_worker(served.metrics_dir)
    clients, each = 8, 10
    host, port = urllib.parse.urlsplit(served.url).netloc.split(":")
    connections = [http.client.HTTPConnection(host, int(port), timeout=30) for _ in range(clients)]
    try:
        for _ in range(each):
            for connection in connections:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                assert response.status == 200
    finally:
        for connection in connections:
            connection.close()
    after = _healthz_per_worker(served.metrics_dir)
    served_now = sorted(after[name] - before.get(name, 0) for name in after)
    assert served_now == [clients * each / 2, clients * each / 2], (before, after)


def test_a_worker_that_dies_is_replaced(
    database_url: str, keyring_file: Path, tmp_path: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update(
        TENURE_DATA_DIR=str(tmp_path),
        TENURE_DATABASE_URL=database_url,
        TENURE_KEYRING_FILE=str(keyring_file),
        TENURE_LOG_FORMAT="json",
    )
    stderr = tmp_path / "stderr.log"
    process = _serve_two_workers(env, port, stderr)
    try:
        _wait_for_workers(process, stderr, 2)
        workers = _taking_connections(stderr)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _wait_for_workers(process, stderr, 3)
        assert "starting another" in stderr.read_text()
        # Every connection is served: none is handed to the worker that is gone.
        for _ in range(8):
            assert _http(f"http://127.0.0.1:{port}/healthz")[0] == 200
        os.kill(process.pid, signal.SIGTERM)  # the supervisor alone, as a service manager does
        assert process.wait(timeout=60) == 0
    finally:
        _stop(process)
    assert not any(pid in _children(process.pid) for pid in workers), "workers outlived it"


def _taking_connections(stderr: Path) -> list[int]:
    """The process ids of the workers that started taking connections, in order."""
    return [int(pid) for pid in re.findall(r"worker (\d+) taking connections", stderr.read_text())]


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(child) for child in found.stdout.split()]


def test_a_port_in_use_is_refused_at_once(
    database_url: str, keyring_file: Path, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
        env.update(
            TENURE_DATA_DIR=str(tmp_path),
            TENURE_DATABASE_URL=database_url,
            TENURE_KEYRING_FILE=str(keyring_file),
        )
        done = subprocess.run(
            [sys.executable, "-m", "tenure", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Address already in use" in done.stderr


def test_metrics_need_the_token(served: Served) -> None:
    assert _http(f"{served.url}/metrics")[0] == 401
    assert _http(f"{served.url}/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401


def test_the_server_logs_json_lines_without_secrets(served: Served, make_user: MakeUser) -> None:
    user = make_user("sales")
    status, headers, body = _http(
        f"{served.url}/api/v1/auth/login", data={"email": user.email, "password": PASSWORD}
    )
    assert status == 200, body
    token = json.loads(body)["access_token"]
    status, headers, _ = _http(
        f"{served.url}/api/v1/auth/me",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "serve-me-1"},
    )
    assert status == 200
    assert headers["x-request-id"] == "serve-me-1"

    def logged() -> list[dict[str, Any]]:
        return [json.loads(line) for line in served.log_text().splitlines() if line.strip()]

    _wait_for(
        lambda: any(e.get("request_id") == "serve-me-1" for e in logged()), 10, "the log line"
    )
    [me] = [e for e in logged() if e.get("request_id") == "serve-me-1"]
    assert (me["logger"], me["route"], me["status"], me["user_id"]) == (
        "tenure.access",
        "/api/v1/auth/me",
        200,
        user.id,
    )
    login = [e for e in logged() if e.get("route") == "/api/v1/auth/login"]
    assert login and all(e["status"] == 200 for e in login)
    text = served.log_text()
    assert PASSWORD not in text
    assert token not in text
    assert user.email not in text
    assert '"GET /healthz HTTP/1.1"' not in text  # uvicorn's own access log is off


# --- a real Prometheus ---------------------------------------------------------------


def prometheus_binary() -> str:
    """Prometheus's binary (``TENURE_PROMETHEUS``, else on PATH, else Debian's); skips
    without it, which fails the test under CI=true (tests/conftest.py)."""
    for candidate in (
        os.environ.get("TENURE_PROMETHEUS"),
        shutil.which("prometheus"),
        "/usr/bin/prometheus",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("Prometheus is not installed (apt-get install prometheus); ./test installs it.")


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        query = urllib.parse.urlencode(params)
        status, _, body = _http(f"{self.url}/api/v1/query?{query}")
        assert status == 200, body
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str, at: float | None = None) -> float | None:
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def prometheus(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus on loopback scraping the served app every second, with the token."""
    binary = prometheus_binary()
    root = tmp_path_factory.mktemp("prometheus")
    target = served.url.removeprefix("http://")
    config = root / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: tenure\n"
        "    scrape_timeout: 1s\n"
        "    authorization:\n"
        "      type: Bearer\n"
        f"      credentials: {TOKEN}\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    port = _free_port()
    log = root / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            return True
        try:
            return _http(f"{url}/-/ready")[0] == 200
        except OSError:
            return False

    try:
        _wait_for(ready, 60, "Prometheus to start")
        assert process.poll() is None, log.read_text()
        yield Prometheus(url)
    finally:
        _stop(process)


def test_prometheus_scrapes_the_request_rate(served: Served, prometheus: Prometheus) -> None:
    series = 'tenure_http_requests_total{job="tenure",route="/readyz",status="200"}'
    _wait_for(lambda: prometheus.value('up{job="tenure"}') == 1, 60, "a successful scrape")

    # One request makes the series; wait until Prometheus holds it, so the next requests
    # all fall between two of its samples.
    assert _http(f"{served.url}/readyz")[0] == 200
    _wait_for(lambda: prometheus.value(f"sum({series})") == 1, 30, "the first sample")
    requests = 30
    for _ in range(requests):
        assert _http(f"{served.url}/readyz")[0] == 200
    _wait_for(
        lambda: prometheus.value(f"sum({series})") == 1 + requests, 30, "the requests scraped"
    )
    time.sleep(3)  # a few more samples after the last request

    now = time.time()
    increase = prometheus.value(f"sum(increase({series}[5m]))", at=now)
    rate = prometheus.value(f"sum(rate({series}[5m]))", at=now)
    assert increase is not None and rate is not None
    # increase() extrapolates towards the window's edges, never below what it saw.
    assert requests <= increase <= 2 * requests, increase
    assert rate == pytest.approx(increase / 300)
    scraped = prometheus.value('sum(tenure_http_requests_total{job="tenure",route="/healthz"})')
    assert (scraped or 0) == served.requests_seen("/healthz")
