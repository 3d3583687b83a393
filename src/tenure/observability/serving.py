"""What ``tenure serve`` sets up around uvicorn: our log lines instead of uvicorn's, the
shared metrics directory for several workers, the metrics port, and one listening socket
per worker."""

from __future__ import annotations

import ipaddress
import logging
import logging.config
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from tenure.config import Settings
from tenure.observability.logs import logging_config

log = logging.getLogger("tenure.serve")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def metrics_directory(*, workers: int) -> Iterator[str | None]:
    """The directory the workers share their metrics through, emptied now; made for this
    run (and removed after it) unless ``PROMETHEUS_MULTIPROC_DIR`` names one. None when a
    single process serves and nothing asked for multiprocess mode."""
    from tenure.observability.metrics import MULTIPROC_ENV

    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # a previous run's counts would be added to ours
            stale.unlink()
        yield str(path)
        return
    if workers <= 1:
        yield None
        return
    made = tempfile.mkdtemp(prefix="tenure-metrics-")
    os.environ[MULTIPROC_ENV] = made  # inherited by the worker processes
    try:
        yield made
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(made, ignore_errors=True)


@contextmanager
def prepared(settings: Settings, *, host: str, workers: int) -> Iterator[dict[str, Any]]:
    """Set up logging and metrics for serving; yields the extra ``uvicorn.run`` arguments."""
    config = logging_config(log_format=settings.log_format, level=settings.log_level)
    logging.config.dictConfig(config)
    with metrics_directory(workers=workers):
        server = None
        if settings.metrics_port is not None:
            from tenure.db import make_engine, make_sessionmaker
            from tenure.observability.metrics import start_metrics_server

            server = start_metrics_server(settings, make_sessionmaker(make_engine(settings)))
            log.info("metrics on http://127.0.0.1:%s/metrics", settings.metrics_port)
        elif not settings.metrics_token and not _is_loopback(host):
            log.warning(
                "/metrics is open to anyone who can reach %s; set TENURE_METRICS_TOKEN "
                "or TENURE_METRICS_PORT",
                host,
            )
        try:
            yield {"log_config": config, "access_log": False}
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()


def _bound(family: int, address: tuple[str, int]) -> socket.socket:
    """A socket bound to ``address`` that shares the port with the other workers'."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


class _OwnSocket:
    """Stands in for the listening socket in what uvicorn hands each worker process.

    uvicorn binds one socket and every worker accepts from its queue; the worker that
    wakes first takes most connections (kept alive, they stay with it), so one core does
    the work of all. Unpickled in a worker, this becomes that worker's own socket on the
    same port (``SO_REUSEPORT``): the kernel then spreads new connections over the
    workers."""

    def __init__(self, family: int, address: tuple[str, int]) -> None:
        self.family, self.address = family, address

    def __reduce__(self) -> tuple[Any, tuple[int, tuple[str, int]]]:
        return _bound, (self.family, self.address)


def run_workers(config: uvicorn.Config) -> None:
    """Serve with ``config.workers`` processes, each accepting on its own socket; uvicorn's
    supervisor restarts a worker that dies and stops them all gracefully on SIGTERM."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    try:
        # Held, never listened on, for the whole run: a port in use fails here, once, and
        # a port of 0 becomes the one port every worker takes.
        held = _bound(family, (config.host, config.port))
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc.strerror)
        sys.exit(STARTUP_FAILURE)
    with held:
        address = held.getsockname()[:2]
        log.info("serving on http://%s:%s with %d workers", *address, config.workers)
        own: Any = [_OwnSocket(family, address)]  # uvicorn only passes it to the workers
        Multiprocess(config, sockets=own).run()
