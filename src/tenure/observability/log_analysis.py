"""Reading the server's JSON access log: per route counts, error rates and latency
percentiles, the slowest requests, and bursts of server errors over time windows."""

from __future__ import annotations

import gzip
import heapq
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tenure.observability.logs import ACCESS_LOGGER


@dataclass
class RouteStats:
    route: str  # "GET /api/v1/customers/{customer_id}"
    requests: int
    client_errors: int  # 4xx
    server_errors: int  # 5xx
    error_rate: float  # server errors / requests
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class SlowRequest:
    time: str | None
    request_id: str | None
    route: str
    path: str | None
    status: int
    duration_ms: float


@dataclass
class Burst:
    start: str
    end: str
    requests: int
    server_errors: int
    error_rate: float
    routes: dict[str, int]  # server errors per route in the burst, most first


@dataclass
class Report:
    requests: int
    server_errors: int
    error_rate: float
    first: str | None
    last: str | None
    lines: int
    skipped: int  # lines that are not access log entries (other logs, or not JSON)
    window_seconds: int
    min_errors: int
    routes: list[RouteStats] = field(default_factory=list)
    slowest: list[SlowRequest] = field(default_factory=list)
    bursts: list[Burst] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def nearest_rank(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile by nearest rank: the smallest value with at least p% of the
    values at or below it (so always a duration that was really measured)."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def read_lines(paths: Iterable[Path]) -> Iterator[str]:
    """Every line of every file in order; ``.gz`` files are read compressed."""
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            yield from f


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Window:
    requests: int = 0
    server_errors: int = 0
    routes: Counter[str] = field(default_factory=Counter)


class _Accumulator:
    def __init__(self, *, window: int, top: int) -> None:
        self.window = window
        self.top = top
        self.durations: dict[str, array[float]] = {}
        self.client_errors: Counter[str] = Counter()
        self.server_errors: Counter[str] = Counter()
        self.windows: dict[int, _Window] = {}
        self.slowest: list[tuple[float, int, SlowRequest]] = []  # a min-heap of the top N
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.lines = 0
        self.skipped = 0

    def add_line(self, line: str) -> None:
        self.lines += 1
        entry = _access_entry(line)
        if entry is None:
            if line.strip():
                self.skipped += 1
            return
        route = f"{entry.get('method', '?')} {entry['route']}"
        status = int(entry["status"])
        duration = float(entry["duration_ms"])
        self.durations.setdefault(route, array("d")).append(duration)
        if 400 <= status < 500:
            self.client_errors[route] += 1
        elif status >= 500:
            self.server_errors[route] += 1
        moment = _parse_time(entry.get("time"))
        if moment is not None:
            self._add_to_window(moment, route, status)
        self._add_to_slowest(entry, route, status, duration)

    def _add_to_window(self, moment: datetime, route: str, status: int) -> None:
        self.first = moment if self.first is None or moment < self.first else self.first
        self.last = moment if self.last is None or moment > self.last else self.last
        key = math.floor(moment.timestamp() / self.window)
        bucket = self.windows.get(key)
        if bucket is None:
            bucket = self.windows[key] = _Window()
        bucket.requests += 1
        if status >= 500:
            bucket.server_errors += 1
            bucket.routes[route] += 1

    def _add_to_slowest(
        self, entry: dict[str, Any], route: str, status: int, duration: float
    ) -> None:
        if self.top <= 0:
            return
        item = (
            duration,
            -self.lines,  # on equal durations the earlier line ranks first
            SlowRequest(
                time=entry.get("time"),
                request_id=entry.get("request_id"),
                route=route,
                path=entry.get("path"),
                status=status,
                duration_ms=duration,
            ),
        )
        if len(self.slowest) < self.top:
            heapq.heappush(self.slowest, item)
        elif item[:2] > self.slowest[0][:2]:
            heapq.heapreplace(self.slowest, item)

    def route_stats(self) -> list[RouteStats]:
        stats = []
        for route, durations in self.durations.items():
            values = sorted(durations)
            n = len(values)
            errors = self.server_errors[route]
            stats.append(
                RouteStats(
                    route=route,
                    requests=n,
                    client_errors=self.client_errors[route],
                    server_errors=errors,
                    error_rate=round(errors / n, 4),
                    p50_ms=nearest_rank(values, 50),
                    p95_ms=nearest_rank(values, 95),
                    p99_ms=nearest_rank(values, 99),
                    max_ms=values[-1],
                )
            )
        return sorted(stats, key=lambda s: (-s.requests, s.route))

    def bursts(self, min_errors: int) -> list[Burst]:
        """Windows with at least ``min_errors`` server errors; neighbours merge into one."""
        bursts: list[Burst] = []
        previous: int | None = None
        for key in sorted(k for k, w in self.windows.items() if w.server_errors >= min_errors):
            w = self.windows[key]
            end = _iso(datetime.fromtimestamp((key + 1) * self.window, UTC))
            if bursts and previous == key - 1:
                b = bursts[-1]
                b.end, b.requests = end, b.requests + w.requests
                b.server_errors += w.server_errors
                b.routes = dict(Counter(b.routes) + w.routes)
            else:
                start = _iso(datetime.fromtimestamp(key * self.window, UTC))
                bursts.append(Burst(start, end, w.requests, w.server_errors, 0.0, dict(w.routes)))
            previous = key
        for b in bursts:
            b.error_rate = round(b.server_errors / b.requests, 4)
            b.routes = dict(sorted(b.routes.items(), key=lambda kv: (-kv[1], kv[0])))
        return bursts


def _access_entry(line: str) -> dict[str, Any] | None:
    """The access log entry on ``line``, or None for anything else."""
    if not line.startswith("{"):
        return None
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict):
        return None
    if entry.get("logger", ACCESS_LOGGER) != ACCESS_LOGGER:
        return None
    if not {"route", "status", "duration_ms"} <= entry.keys():
        return None
    try:
        int(entry["status"]), float(entry["duration_ms"])
    except (TypeError, ValueError):
        return None
    return entry


def analyze(
    lines: Iterable[str], *, window: int = 60, top: int = 10, min_errors: int = 5
) -> Report:
    """Analyse access log ``lines``: ``window`` seconds per burst window, ``top`` slowest
    requests, and a burst where a window has at least ``min_errors`` server errors."""
    if window < 1:
        raise ValueError("window must be at least one second")
    acc = _Accumulator(window=window, top=top)
    for line in lines:
        acc.add_line(line)
    routes = acc.route_stats()
    requests = sum(r.requests for r in routes)
    errors = sum(r.server_errors for r in routes)
    return Report(
        requests=requests,
        server_errors=errors,
        error_rate=round(errors / requests, 4) if requests else 0.0,
        first=_iso(acc.first) if acc.first else None,
        last=_iso(acc.last) if acc.last else None,
        lines=acc.lines,
        skipped=acc.skipped,
        window_seconds=window,
        min_errors=min_errors,
        routes=routes,
        slowest=[item[2] for item in sorted(acc.slowest, reverse=True)],
        bursts=acc.bursts(min_errors),
    )
