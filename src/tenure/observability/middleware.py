"""One pure ASGI middleware for metrics and the access log: it notes the time, lets the
request through, and records method, route template, status and duration once."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenure.observability import metrics
from tenure.observability.logs import ACCESS_FIELDS, ACCESS_LOGGER, RequestStats, current_request

access_log = logging.getLogger(ACCESS_LOGGER)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Status recorded for a request whose client went away before any answer (as nginx does).
CLIENT_CLOSED = 499


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/customers/{customer_id}``), never the raw
    path: raw paths would make one time series per record."""
    route = scope.get("route")
    if route is None:
        return metrics.UNMATCHED_ROUTE
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else metrics.UNMATCHED_ROUTE


class ObservabilityMiddleware:
    """Counts and times each HTTP request and writes its access log line.

    Sits inside :class:`~tenure.core.middleware.RequestIdMiddleware` (so the request id is
    known) and outside everything else (so 413s and replays are counted too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, _on_shutdown(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()
        state = scope.get("state") or {}
        # Not reset afterwards: each request runs in a task of its own, and the error
        # handler outside this middleware still logs with the request id.
        stats = RequestStats(request_id=state.get("request_id"))
        current_request.set(stats)
        status = 0
        recorded = False

        def record(raised: BaseException | None) -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                metrics.HTTP_IN_FLIGHT.dec()
                self._record(scope, status, start, stats, raised)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Recorded before the last byte leaves: a client that has its answer finds
                # it counted by the next scrape and in the log.
                record(None)
            await send(message)

        metrics.HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            record(exc)
            raise
        finally:
            record(None)

    @staticmethod
    def _record(
        scope: Scope, status: int, start: float, stats: RequestStats, raised: BaseException | None
    ) -> None:
        seconds = time.perf_counter() - start
        if not status:
            cancelled = isinstance(raised, asyncio.CancelledError)
            status = CLIENT_CLOSED if cancelled else 500
        failed = raised is not None and isinstance(raised, Exception)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        route = route_template(scope)
        metrics.observe_request(method, route, status, seconds, failed)
        if not access_log.isEnabledFor(logging.INFO):
            return
        state = scope.get("state") or {}
        fields: dict[str, Any] = {
            "request_id": stats.request_id,
            "method": method,
            "route": route,
            "path": scope["path"],
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "db_ms": round(stats.db_seconds * 1000, 2),
            "db_queries": stats.db_queries,
            "user_id": state.get("user_id"),
            "client": scope["client"][0] if scope.get("client") else None,
        }
        if failed:
            fields["error"] = type(raised).__name__
        level = logging.ERROR if status >= 500 else logging.INFO
        # The path only, never the query string: searches carry names and emails.
        access_log.log(
            level, "%s %s %s", method, scope["path"], status, extra={ACCESS_FIELDS: fields}
        )


def _on_shutdown(receive: Receive) -> Receive:
    """In multiprocess mode, a worker that shuts down takes its in-flight gauge along."""

    async def wrapped() -> Message:
        message = await receive()
        if message["type"] == "lifespan.shutdown":
            path = metrics.multiprocess_dir()
            if path:
                metrics.worker_stopped(os.getpid(), path)
        return message

    return wrapped
