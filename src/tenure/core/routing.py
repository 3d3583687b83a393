"""Where request handlers run: on the event loop, or in the thread pool.

FastAPI runs a ``def`` handler or dependency in a worker thread, so that blocking I/O
does not stall the event loop. Each trip costs about as much as answering a small
request, and under the GIL it buys nothing for work that never waits. On SQLite a
read-only request never waits: its queries run in-process, and in WAL mode readers take
no lock. So the session of such a request is marked *inline*, and its handler and
database work run on the event loop. Writers (which queue for SQLite's write lock) and
everything on PostgreSQL (a network round trip per query) keep the thread pool.

Writers on these routes hold the write lock only while their handler runs: what they
read before it (the credentials) does not need it, and the handler runs in one write
transaction, committed at once. On SQLite the writer waits for its turn without blocking
the event loop, then runs there in one go: in a worker thread it would compete for the
GIL with the event loop while holding the lock, and every writer in the queue would wait
for that too.

Handlers stay plain ``def`` functions over a ``Session``; routers made here decide per
request where they run.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import fastapi
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tenure.db import WriterLock, become_writer, writer_lock
from tenure.sqlite import sqlite3

INLINE = "tenure.inline"
WRITER = "tenure.writer"

P = ParamSpec("P")
T = TypeVar("T")


def is_inline(session: Session) -> bool:
    """Whether this session's work runs on the event loop (a read on SQLite)."""
    return bool(session.info.get(INLINE, False))


async def run_db(session: Session, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``fn`` (which uses ``session``) where the session's work belongs."""
    if is_inline(session):
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


def placed(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as an async handler that runs it inline or in the thread pool, as the
    request's session says. Async endpoints, and ones without a session, are left alone."""
    if (
        inspect.iscoroutinefunction(endpoint)
        or "session" not in inspect.signature(endpoint).parameters
    ):
        return endpoint

    @functools.wraps(endpoint)
    async def handler(*args: Any, **kwargs: Any) -> Any:
        session = kwargs.get("session")
        if not isinstance(session, Session):
            return await run_in_threadpool(endpoint, *args, **kwargs)
        if session.info.get(WRITER, False):
            if is_inline(session):
                return await _write_inline(session, endpoint, args, kwargs)
            return await run_in_threadpool(_write, session, endpoint, args, kwargs)
        if is_inline(session):
            return endpoint(*args, **kwargs)
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return handler


async def _write_inline(
    session: Session, endpoint: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``_write`` on the event loop, once this writer's turn for the lock has come."""
    lock = writer_lock(session)
    if lock is None:  # pragma: no cover - an in-memory database: nobody to queue behind
        return _write(session, endpoint, args, kwargs)
    await _turn(lock)
    become_writer(session, locked=True)  # on failure the connection has let the lock go
    result = endpoint(*args, **kwargs)
    session.commit()
    return result


async def _turn(lock: WriterLock) -> None:
    """Wait, without blocking the event loop, until ``lock`` is taken for this writer."""
    deadline = time.monotonic() + lock.timeout
    pause = 0.0002
    while not lock.try_acquire():
        if time.monotonic() >= deadline:
            raise sqlite3.OperationalError("database is locked")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.001)


def _write(
    session: Session, endpoint: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run a writer's handler in one write transaction, committed before it returns."""
    become_writer(session)  # what was read so far (the credentials) did not need the lock
    result = endpoint(*args, **kwargs)
    session.commit()
    return result


class PlacedRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, placed(endpoint), **kwargs)


class APIRouter(fastapi.APIRouter):
    """``fastapi.APIRouter`` whose ``def`` handlers run where their database work belongs."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("route_class", PlacedRoute)
        super().__init__(**kwargs)
