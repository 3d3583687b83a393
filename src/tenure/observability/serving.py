"""What ``tenure serve`` sets up around uvicorn: our log lines instead of uvicorn's, the
shared metrics directory for several workers, the metrics port, and with several workers
a supervisor that deals connections out to them in turn."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import logging.config
import os
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn._subprocess import get_subprocess
from uvicorn.config import STARTUP_FAILURE

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


class Dispatcher:
    """The supervisor's side of serving with several workers: it accepts every connection
    on the port and hands each to the next worker in turn, passing the open socket over a
    Unix socket (as Node's cluster module does).

    With one listening socket shared by the workers, or one each on the port
    (``SO_REUSEPORT``), which worker gets a connection is chance: kept alive, connections
    stay where they landed, and a few clients (a proxy's pool, a load test) often end up
    mostly on one worker while the others idle. Taking turns spreads them evenly. Only
    connections go through here; requests go straight to the worker that holds them.

    A worker connects to ``path`` once it is ready to serve, and leaves by closing its end
    (or dying). A worker too busy to take its hand-off right away is skipped for that one.
    """

    def __init__(self, listener: socket.socket, path: str) -> None:
        self.listener = listener
        self.path = path
        listener.setblocking(False)
        self._hub = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._hub.bind(path)
        self._hub.listen()
        self._wake, self._waker = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._hub, selectors.EVENT_READ)
        self._selector.register(self._wake, selectors.EVENT_READ)
        self.workers: list[socket.socket] = []
        self._turn = 0
        self._thread = threading.Thread(target=self._run, name="tenure-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._waker.send(b"x")
        self._thread.join(timeout=10)
        for sock in (*self.workers, self._hub, self._wake, self._waker):
            sock.close()
        self._selector.close()

    def _run(self) -> None:
        listening = False
        while True:
            # Connections wait in the port's backlog until a worker is there to take them.
            if self.workers and not listening:
                self._selector.register(self.listener, selectors.EVENT_READ)
            elif listening and not self.workers:
                self._selector.unregister(self.listener)
            listening = bool(self.workers)
            for key, _events in self._selector.select():
                ready = key.fileobj
                if ready is self._wake:
                    return
                if ready is self._hub:
                    self._join()
                elif ready is self.listener:
                    self._accept()
                else:  # a worker's end only becomes readable when it closes
                    assert isinstance(ready, socket.socket)
                    self._leave(ready)

    def _join(self) -> None:
        channel, _ = self._hub.accept()
        channel.setblocking(False)
        self.workers.append(channel)
        self._selector.register(channel, selectors.EVENT_READ)

    def _leave(self, channel: socket.socket) -> None:
        if channel in self.workers:
            self.workers.remove(channel)
            self._selector.unregister(channel)
            channel.close()

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: let some close first
                log.error("cannot accept connections: %s", exc.strerror)
                time.sleep(ACCEPT_PAUSE_SECONDS)
                return
            with conn:  # the worker has its own copy once it is handed over
                self._hand(conn)

    def _hand(self, conn: socket.socket) -> None:
        for _ in range(len(self.workers)):
            channel = self.workers[self._turn % len(self.workers)]
            self._turn += 1
            try:
                socket.send_fds(channel, [b"c"], [conn.fileno()])
                return
            except BlockingIOError:
                continue  # this worker has a backlog of hand-offs: the next one
            except OSError:
                self._leave(channel)
        log.warning("no worker could take a connection; it was closed")


ACCEPT_BATCH = 64
ACCEPT_PAUSE_SECONDS = 0.1


class HandedServer(uvicorn.Server):
    """A worker's server: it serves the connections the supervisor's ``Dispatcher`` hands
    it, and otherwise runs as uvicorn's own (graceful shutdown included)."""

    def __init__(self, config: uvicorn.Config, hub: str) -> None:
        super().__init__(config)
        self.hub = hub
        self._channel: socket.socket | None = None
        self._handed: set[asyncio.Task[None]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the application's startup; no listening socket
        channel = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        channel.connect(self.hub)  # from now on connections come
        channel.setblocking(False)
        self._channel = channel
        asyncio.get_running_loop().add_reader(channel.fileno(), self._receive)
        log.info("worker %d taking connections", os.getpid())

    def _receive(self) -> None:
        assert self._channel is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, _flags, _address = socket.recv_fds(self._channel, 1, 1)
            except (BlockingIOError, InterruptedError):
                return
            if not message:  # the supervisor is gone: nothing more will come
                self._stop_receiving()
                self.should_exit = True
                return
            for fd in fds:
                task = loop.create_task(self._take(socket.socket(fileno=fd)))
                self._handed.add(task)
                task.add_done_callback(self._handed.discard)

    async def _take(self, conn: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(self._protocol, conn)
        except OSError:  # the client left before it could be served
            conn.close()

    def _protocol(self) -> asyncio.Protocol:
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol

    def _stop_receiving(self) -> None:
        if self._channel is not None:
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
            self._channel.close()  # the dispatcher stops handing this worker connections
            self._channel = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stop_receiving()
        await super().shutdown(sockets)


def _serve_handed(config: uvicorn.Config, hub: str, sockets: list[socket.socket]) -> None:
    """A worker process's body (started by uvicorn's ``get_subprocess``)."""
    HandedServer(config, hub).run()


class Supervisor:
    """Keeps ``config.workers`` worker processes running until SIGINT or SIGTERM: a worker
    that dies is replaced; one that fails to start stops the server (it would fail again)."""

    def __init__(
        self, config: uvicorn.Config, hub: str, *, dispatching: Callable[[], bool]
    ) -> None:
        self.config = config
        self.target = functools.partial(_serve_handed, config, hub)
        self.dispatching = dispatching
        self.stopping = threading.Event()

    def _spawn(self) -> SpawnProcess:
        process = get_subprocess(self.config, self.target, [])
        process.start()
        return process

    def run(self) -> int:
        """Serve until told to stop; the exit status for the command."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())
        workers = [self._spawn() for _ in range(self.config.workers)]
        status = 0
        while not self.stopping.wait(SUPERVISE_SECONDS):
            if not self.dispatching():  # no connection would reach a worker any more
                log.error("the connection dispatcher stopped; stopping the server")
                status = 1
                break
            for index, process in enumerate(workers):
                if process.is_alive():
                    continue
                process.join()
                if process.exitcode == STARTUP_FAILURE:
                    log.error("worker %s failed to start; stopping", process.pid)
                    status = STARTUP_FAILURE
                    self.stopping.set()
                    break
                log.warning(
                    "worker %s exited (%s); starting another", process.pid, process.exitcode
                )
                workers[index] = self._spawn()
        for process in workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)  # each finishes its requests in flight
        for process in workers:
            process.join()
        return status


SUPERVISE_SECONDS = 0.5


def run_workers(config: uvicorn.Config) -> None:
    """Serve with ``config.workers`` processes, the connections dealt out to them in turn
    (see ``Dispatcher``)."""
    try:
        listener = _listening(config.host, config.port, config.backlog)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc.strerror)
        sys.exit(STARTUP_FAILURE)
    with listener, tempfile.TemporaryDirectory(prefix="tenure-serve-") as private:
        address = listener.getsockname()[:2]
        log.info("serving on http://%s:%s with %d workers", *address, config.workers)
        dispatcher = Dispatcher(listener, os.path.join(private, "workers"))
        dispatcher.start()
        try:
            status = Supervisor(config, dispatcher.path, dispatching=dispatcher.running).run()
        finally:
            dispatcher.stop()
    if status:
        sys.exit(status)


def _listening(host: str, port: int, backlog: int) -> socket.socket:
    """The server's listening socket, as uvicorn makes one (an IPv6 address also takes
    IPv4 connections where the system allows it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
