"""The supervisor's dispatcher: connections to the port are dealt out to the workers in
turn, wait for a worker when there is none, and skip a worker that has left."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenure.observability.serving import Dispatcher

TIMEOUT = 10


@pytest.fixture
def dispatcher(tmp_path: Path) -> Iterator[Dispatcher]:
    listener = socket.create_server(("127.0.0.1", 0))
    running = Dispatcher(listener, str(tmp_path / "workers"))
    running.start()
    try:
        yield running
    finally:
        running.stop()
        listener.close()


def _worker(dispatcher: Dispatcher) -> socket.socket:
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    channel.settimeout(TIMEOUT)
    channel.connect(dispatcher.path)
    return channel


def _connect(dispatcher: Dispatcher, tag: bytes) -> socket.socket:
    """A client connection that sends ``tag`` so the worker holding it can tell which it is."""
    client = socket.create_connection(dispatcher.listener.getsockname()[:2], timeout=TIMEOUT)
    client.sendall(tag)
    return client


def _take(channel: socket.socket) -> bytes:
    """The next connection handed to this worker: what its client sent."""
    _message, fds, _flags, _address = socket.recv_fds(channel, 1, 1)
    assert len(fds) == 1
    with socket.socket(fileno=fds[0]) as conn:
        conn.settimeout(TIMEOUT)
        return conn.recv(16)


def _joined(dispatcher: Dispatcher, count: int) -> None:
    """Wait until the dispatcher has taken in ``count`` workers."""
    deadline = time.monotonic() + TIMEOUT
    while len(dispatcher.workers) < count:
        assert time.monotonic() < deadline, f"{len(dispatcher.workers)} of {count} joined"
        time.sleep(0.01)


def test_connections_are_dealt_out_in_turn(dispatcher: Dispatcher) -> None:
    first, second = _worker(dispatcher), _worker(dispatcher)
    _joined(dispatcher, 2)
    clients = []
    try:
        for n in range(6):
            clients.append(_connect(dispatcher, b"client %d" % n))
        got = [_take(first), _take(second), _take(first), _take(second)]
        got += [_take(first), _take(second)]
    finally:
        for sock in (*clients, first, second):
            sock.close()
    assert sorted(got) == sorted(b"client %d" % n for n in range(6))


def test_a_connection_waits_for_a_worker(dispatcher: Dispatcher) -> None:
    client = _connect(dispatcher, b"early")
    worker = _worker(dispatcher)
    try:
        assert _take(worker) == b"early"
    finally:
        client.close()
        worker.close()


def test_a_worker_that_left_gets_nothing(dispatcher: Dispatcher) -> None:
    staying, leaving = _worker(dispatcher), _worker(dispatcher)
    leaving.close()
    clients = [_connect(dispatcher, b"client %d" % n) for n in range(3)]
    try:
        assert sorted(_take(staying) for _ in clients) == [b"client 0", b"client 1", b"client 2"]
    finally:
        for sock in (*clients, staying):
            sock.close()
