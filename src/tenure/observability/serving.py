"""What ``tenure serve`` sets up around uvicorn: our log lines instead of uvicorn's, the
shared metrics directory for several workers, and the metrics port."""

from __future__ import annotations

import ipaddress
import logging
import logging.config
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
