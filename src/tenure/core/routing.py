"""Where request handlers run: on the event loop, or in the thread pool.

FastAPI runs a ``def`` handler or dependency in a worker thread, so that blocking I/O
does not stall the event loop. Each trip costs about as much as answering a small
request, and under the GIL it buys nothing for work that never waits. On SQLite a
read-only request never waits: its queries run in-process, and in WAL mode readers take
no lock. So the session of such a request is marked *inline*, and its handler and
database work run on the event loop. Writers (which queue for SQLite's write lock) and
everything on PostgreSQL (a network round trip per query) keep the thread pool.

Handlers stay plain ``def`` functions over a ``Session``; routers made here decide per
request where they run.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import fastapi
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

INLINE = "tenure.inline"

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
        if isinstance(session, Session) and is_inline(session):
            return endpoint(*args, **kwargs)
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return handler


class PlacedRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, placed(endpoint), **kwargs)


class APIRouter(fastapi.APIRouter):
    """``fastapi.APIRouter`` whose ``def`` handlers run where their database work belongs."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("route_class", PlacedRoute)
        super().__init__(**kwargs)
