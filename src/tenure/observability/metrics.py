"""Prometheus metrics: HTTP requests, latency, requests in flight, errors, database query
time, and business gauges computed when scraped.

With several worker processes (``tenure serve --workers N``) every process writes its
values to files under ``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any one of them adds
up all of them (prometheus-client's multiprocess mode). The variable must be set before
this module is first imported in a worker; :mod:`tenure.observability.serving` does that.
"""

from __future__ import annotations

import glob
import hmac
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from tenure import __version__
from tenure.config import Settings
from tenure.core.problems import problem_response
from tenure.customers import service as customers_service
from tenure.db import observe_statements
from tenure.observability.logs import current_request
from tenure.orders import service as orders_service
from tenure.security.scope import EVERYTHING

log = logging.getLogger("tenure.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "<unmatched>"
# Fast API routes answer in milliseconds; the buckets resolve that range finely.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)

# The *_created series (when a label set was first seen) only add noise here; multiprocess
# mode never has them, so one process looks the same as several.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry()
HTTP_REQUESTS = Counter(
    "tenure_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "tenure_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
    registry=REGISTRY,
)
HTTP_IN_FLIGHT = Gauge(
    "tenure_http_requests_in_flight",
    "Requests being served now.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
HTTP_ERRORS = Counter(
    "tenure_http_errors",
    "Responses with a 5xx status; kind is 'exception' when the application raised, "
    "'status' when it answered 5xx itself.",
    ["method", "route", "kind"],
    registry=REGISTRY,
)
DB_DURATION = Histogram(
    "tenure_db_query_duration_seconds",
    "Time the database took to execute a statement, by kind of statement.",
    ["operation"],
    buckets=DB_BUCKETS,
    registry=REGISTRY,
)
DB_ERRORS = Counter(
    "tenure_db_query_errors",
    "Statements the database refused or failed, by kind of statement.",
    ["operation"],
    registry=REGISTRY,
)
ProcessCollector(registry=REGISTRY)  # CPU and memory of this process (single-process mode)

# labels() validates and takes a lock; the middleware reuses each child instead.
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_error_children: dict[tuple[str, str, str], Any] = {}


def observe_request(method: str, route: str, status: int, seconds: float, raised: bool) -> None:
    """Count one answered request and its duration."""
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:
        children = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_DURATION.labels(method, route),
        )
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)
    if status >= 500:
        kind = "exception" if raised else "status"
        error_key = (method, route, kind)
        errors = _error_children.get(error_key)
        if errors is None:
            errors = _error_children[error_key] = HTTP_ERRORS.labels(method, route, kind)
        errors.inc()


# --- database --------------------------------------------------------------------------

_OPERATIONS = ("SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "ROLLBACK", "WITH")
_db_children: dict[str, Any] = {}
_STARTS = "tenure_query_starts"


def _operation(statement: str) -> str:
    head = statement[:12].lstrip().upper()
    for op in _OPERATIONS:
        if head.startswith(op):
            return "SELECT" if op == "WITH" else op
    return "OTHER"


def _before_cursor_execute(conn: Any, *_args: Any) -> None:
    conn.info.setdefault(_STARTS, []).append(time.perf_counter())


def _after_cursor_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    starts = conn.info.get(_STARTS)
    if not starts:
        return
    _observe_statement(_operation(statement), time.perf_counter() - starts.pop())


def _observe_statement(operation: str, seconds: float) -> None:
    """One statement's duration, in the metrics and the request's access log entry."""
    child = _db_children.get(operation)
    if child is None:
        child = _db_children[operation] = DB_DURATION.labels(operation)
    child.observe(seconds)
    stats = current_request.get()
    if stats is not None:
        stats.db_seconds += seconds
        stats.db_queries += 1


def _handle_error(context: Any) -> None:
    conn = context.connection
    starts = conn.info.get(_STARTS) if conn is not None else None
    if starts:
        starts.pop()
        DB_ERRORS.labels(_operation(context.statement or "")).inc()


def instrument_engine(engine: Engine) -> None:
    """Time every statement ``engine`` executes (once per engine, however often called),
    and the ``Prepared`` ones, which do not go through its events."""
    observe_statements(_observe_statement)
    if event.contains(engine, "before_cursor_execute", _before_cursor_execute):
        return
    event.listen(engine, "before_cursor_execute", _before_cursor_execute)
    event.listen(engine, "after_cursor_execute", _after_cursor_execute)
    event.listen(engine, "handle_error", _handle_error)


# --- business gauges -------------------------------------------------------------------


class BusinessCollector(Collector):
    """Customers and open orders, counted when scraped and kept for ``ttl`` seconds, so
    frequent scrapes (or several Prometheus servers) cost the database one count each."""

    def __init__(self, sessions: sessionmaker[Session], *, ttl: float = 10.0) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self._lock = threading.Lock()
        self._values: dict[str, float] | None = None
        self._at = 0.0

    def _read(self) -> dict[str, float] | None:
        with self._lock:
            if self._values is None or time.monotonic() - self._at > self.ttl:
                try:
                    with self.sessions() as session:
                        self._values = {
                            "customers": customers_service.count_active(
                                session=session, scope=EVERYTHING
                            ),
                            "orders_open": orders_service.open_count(
                                session=session, scope=EVERYTHING
                            ),
                        }
                except Exception as exc:  # a scrape must answer even when the database does not
                    log.warning("business gauges unavailable: %s", type(exc).__name__)
                    return None
                self._at = time.monotonic()
            return self._values

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("tenure_build_info", "The running version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        values = self._read()
        if values is None:
            return
        yield GaugeMetricFamily(
            "tenure_customers", "Customers not in the trash.", value=values["customers"]
        )
        yield GaugeMetricFamily(
            "tenure_orders_open",
            "Orders placed or paid and not yet shipped.",
            value=values["orders_open"],
        )


# --- exposition ------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def forget_dead_workers(path: str) -> None:
    """Drop the in-flight gauges of workers that died without shutting down."""
    for file in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = file.rsplit("_", 1)[-1].removesuffix(".db")
        if pid.isdigit() and not _alive(int(pid)):
            worker_stopped(int(pid), path)


def worker_stopped(pid: int, path: str) -> None:
    """Forget the requests in flight of worker ``pid``; its counts stay."""
    mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Scrape:
    def __init__(self, collectors: list[Any]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition(business: Collector | None) -> bytes:
    """Every metric in Prometheus text format, from all worker processes."""
    path = multiprocess_dir()
    collectors: list[Any]
    if path:
        forget_dead_workers(path)
        collectors = [MultiProcessCollector(None, path=path)]  # type: ignore[no-untyped-call]
    else:
        collectors = [REGISTRY]
    if business is not None:
        collectors.append(business)
    return generate_latest(_Scrape(collectors))


def authorized(token: str | None, authorization: str | None) -> bool:
    """True when no token is configured, or ``authorization`` is ``Bearer <token>``."""
    if not token:
        return True
    scheme, _, credential = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credential.strip().encode(), token.encode()
    )


def _token(settings: Settings) -> str | None:
    return settings.metrics_token.get_secret_value() if settings.metrics_token else None


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text format; with ``TENURE_METRICS_TOKEN`` set, only for that bearer."""
    if not authorized(_token(request.app.state.settings), request.headers.get("authorization")):
        return problem_response(
            status=401,
            code="unauthenticated",
            title="Unauthenticated",
            detail="Send 'Authorization: Bearer <TENURE_METRICS_TOKEN>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = exposition(request.app.state.business_metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def install(app: FastAPI, *, settings: Settings, engine: Engine) -> None:
    """Time the engine's statements and serve ``/metrics`` (unless on a port of its own)."""
    instrument_engine(engine)
    app.state.business_metrics = BusinessCollector(app.state.sessions)
    if settings.metrics_port is None:
        app.include_router(router)


# --- a port of its own -----------------------------------------------------------------


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_metrics_server(
    settings: Settings, sessions: sessionmaker[Session], *, host: str = "127.0.0.1"
) -> WSGIServer:
    """Serve ``/metrics`` on ``settings.metrics_port`` (loopback) in a background thread."""
    assert settings.metrics_port is not None
    business = BusinessCollector(sessions)
    token = _token(settings)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not found: metrics are at /metrics\n"]
        if not authorized(token, environ.get("HTTP_AUTHORIZATION")):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"Send 'Authorization: Bearer <TENURE_METRICS_TOKEN>'.\n"]
        body = exposition(business)
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))]
        )
        return [body]

    server = make_server(
        host, settings.metrics_port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
