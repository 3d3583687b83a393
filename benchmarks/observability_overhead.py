"""What metrics and the access log cost per request: /healthz through the whole ASGI
stack, called directly (no network), with and without the observability middleware.

    .venv/bin/python benchmarks/observability_overhead.py [--rounds 40] [--requests 1000]

Counts CPU time of this process (less disturbed by other work on the machine than wall
time), interleaves the variants, and prints the best and the median round of each in
microseconds per request. The access log goes through the JSON formatter to /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from tenure.app import create_app
from tenure.config import Settings
from tenure.db import make_engine
from tenure.observability.logs import JsonFormatter
from tenure.observability.middleware import ObservabilityMiddleware

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/healthz",
    "raw_path": b"/healthz",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench")],
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8000),
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(_message: Any) -> None:
    pass


async def _round(app: FastAPI, requests: int) -> float:
    start = time.process_time()
    for _ in range(requests):
        await app(dict(SCOPE, state={}), _receive, _send)
    return (time.process_time() - start) / requests * 1e6


def _app(observed: bool, settings: Settings) -> FastAPI:
    app = create_app(settings, engine=make_engine(settings))
    if not observed:
        app.user_middleware = [
            m
            for m in app.user_middleware
            if m.cls is not ObservabilityMiddleware  # type: ignore[comparison-overlap]
        ]
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    settings = Settings(data_dir=Path(tempfile.mkdtemp()))
    apps = {"without": _app(False, settings), "with": _app(True, settings)}
    results: dict[str, list[float]] = {}
    for level, label in ((logging.WARNING, "metrics only"), (logging.INFO, "metrics + log")):
        logging.getLogger().setLevel(level)
        for app in apps.values():
            asyncio.run(_round(app, 200))  # warm up
        for _ in range(args.rounds):
            for name, app in apps.items():
                key = f"{name} ({label})" if name == "with" else name
                results.setdefault(key, []).append(asyncio.run(_round(app, args.requests)))
    base = min(results["without"])
    for key, values in results.items():
        extra = f"  (+{min(values) - base:.1f} µs)" if key != "without" else ""
        median = statistics.median(values)
        print(f"{key:28} best {min(values):6.1f} µs  median {median:6.1f} µs{extra}")


if __name__ == "__main__":
    main()
