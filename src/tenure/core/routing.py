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

Routers made here also open the request's unit of work (its ``Session``) around the
handler and its dependencies when one of them asks for it, instead of FastAPI doing so
through a generator dependency: see :class:`SessionRoute`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import fastapi
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from tenure.db import WriterLock, become_writer, line_up
from tenure.sqlite import sqlite3

INLINE = "tenure.inline"
WRITER = "tenure.writer"
# Where a request keeps its unit of work and its signed-in caller (ASGI scope keys).
SESSION = "tenure.session"
PRINCIPAL = "tenure.principal"

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
    lock = line_up(session)
    if lock is None:  # pragma: no cover - an in-memory database: nobody to queue behind
        return _write(session, endpoint, args, kwargs)
    async with _queue(lock):
        await _turn(lock)
        become_writer(session, locked=True)  # on failure the connection has let the lock go
        result = endpoint(*args, **kwargs)
        session.commit()
    return result


# Per event loop and lock: writers of one process line up first (asyncio.Lock is first
# come, first served), so only the head of the line polls for the lock shared with other
# processes. Polling by all of them let a newcomer take the lock from one that had waited
# longest, which made the slowest writes several times slower than the rest.
_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[WriterLock, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _queue(lock: WriterLock) -> asyncio.Lock:
    queues = _queues.setdefault(asyncio.get_running_loop(), {})
    return queues.setdefault(lock, asyncio.Lock())


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


def request_session(request: Request) -> Session:
    """The request's unit of work, opened by its route (see :class:`SessionRoute`)."""
    try:
        session: Session = request.scope[SESSION]
    except KeyError:
        raise RuntimeError(
            f"{request.url.path}: no unit of work; make the router with tenure.core.routing"
        ) from None
    return session


UnitOfWork = Callable[[Request], AbstractAsyncContextManager[Any]]


def unit_of_work_of(dependant: Dependant) -> UnitOfWork | None:
    """The unit of work a route's dependencies ask for: the ``unit_of_work`` attribute of
    one of them (``tenure.deps.get_session`` carries it), or None."""
    pending = [dependant]
    while pending:
        current = pending.pop()
        opener: UnitOfWork | None = getattr(current.call, "unit_of_work", None)
        if opener is not None:
            return opener
        pending.extend(current.dependencies)
    return None


Shortcut = Callable[[Request], Response | None]
SHORTCUT = "tenure_shortcut"


def shortcut(answer: Shortcut) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Give a route a faster way to its most frequent answer: ``answer(request)`` runs
    first, on the event loop, before the router looks at the routes, FastAPI solves the
    route's dependencies or a unit of work is opened (see :class:`Shortcuts`); when it
    returns None the request is routed as any other.

    For the few reads on the path of nearly every client: routing, the dependencies and
    the session cost several times the queries. A shortcut answers only the plain case it
    was written for, exactly as the route would; anything else (another credential, an
    error of any kind, an option it does not handle) it leaves to the route, so refusals,
    their audit entries and error answers have one implementation. It reads on the
    app's held connection (``app.state.held``, a ``tenure.db.HeldConnection``, which
    opens no transaction: what must be consistent is read in one statement), and never
    awaits while it does."""

    def mark(endpoint: Callable[..., T]) -> Callable[..., T]:
        setattr(endpoint, SHORTCUT, answer)
        return endpoint

    return mark


@dataclass(frozen=True)
class _Shortcut:
    route: RouteContext
    answer: Shortcut
    methods: frozenset[str]  # the route's: other requests pass on without a path match
    # The routes before this one that could take the same requests: while one of them
    # does, the router would choose it, so the shortcut stays out of the way.
    rivals: tuple[RouteContext, ...]


class Shortcuts:
    """The app's router, with the route shortcuts (``shortcut``) tried first.

    A request that the router would give to a route with a shortcut goes to the
    shortcut without the router matching it against the routes before (one by one) and
    without FastAPI's per-route machinery; what the shortcut leaves goes to the router.
    The routes are read at the first request, once the app has them all: a route added
    later comes after them, so it cannot take their requests."""

    def __init__(self, router: fastapi.routing.APIRouter) -> None:
        self.router = router
        self._shortcuts: tuple[_Shortcut, ...] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            shortcuts = self._shortcuts
            if shortcuts is None:
                shortcuts = self._shortcuts = _shortcuts(self.router.routes)
            for found in shortcuts:
                if scope["method"] not in found.methods:
                    continue
                match, child_scope = found.route.matches(scope)
                if match is not Match.FULL or any(
                    rival.matches(scope)[0] is Match.FULL for rival in found.rivals
                ):
                    continue
                scope.update(child_scope, route=found.route.original_route)
                response = found.answer(Request(scope, receive, send))
                if response is not None:
                    await response(scope, receive, send)
                    return
                break
        await self.router(scope, receive, send)


def _shortcuts(routes: Sequence[BaseRoute]) -> tuple[_Shortcut, ...]:
    ordered = list(iter_route_contexts(routes))
    found = []
    for at, route in enumerate(ordered):
        answer: Shortcut | None = getattr(route.endpoint, SHORTCUT, None)
        if answer is not None:
            rivals = tuple(other for other in ordered[:at] if _may_overlap(route, other))
            found.append(_Shortcut(route, answer, frozenset(route.methods or ()), rivals))
    return tuple(found)


def _may_overlap(route: RouteContext, earlier: RouteContext) -> bool:
    """Whether ``earlier`` might match a request that ``route`` matches: they share a
    method (or ``earlier`` takes any, as a mount does) and neither path's fixed start
    rules the other out."""
    methods, other_methods = route.methods or set(), earlier.methods
    if other_methods is not None and not methods & other_methods:
        return False
    path, other = route.path_format or "", earlier.path_format or ""
    if "{" not in other:  # one path only: does this route take it?
        return route.path_regex.match(other) is not None
    start, other_start = path.split("{", 1)[0], other.split("{", 1)[0]
    return start.startswith(other_start) or other_start.startswith(start)


class SessionRoute(APIRoute):
    """A route that runs its dependencies and handler inside the request's unit of work
    when one of them asks for it: opened before they are solved, committed (or rolled
    back on an error) once the handler has answered and before the answer is sent.

    The dependencies then only read the session from the request, which FastAPI resolves
    several times faster than a generator dependency and the ones depending on it.
    Dependencies added when a router is included are not looked at: the app adds none."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        opener = unit_of_work_of(self.dependant)
        if opener is not None:
            handler = _in_unit_of_work(opener, handler)
        return handler


def _in_unit_of_work(
    opener: UnitOfWork, handler: Callable[[Request], Coroutine[Any, Any, Response]]
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def in_unit_of_work(request: Request) -> Response:
        async with opener(request):
            return await handler(request)

    return in_unit_of_work


class PlacedRoute(SessionRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, placed(endpoint), **kwargs)


class APIRouter(fastapi.APIRouter):
    """``fastapi.APIRouter`` whose ``def`` handlers run where their database work belongs."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("route_class", PlacedRoute)
        super().__init__(**kwargs)


class SessionRouter(fastapi.APIRouter):
    """``fastapi.APIRouter`` whose routes open the request's unit of work, for handlers
    that FastAPI places itself (``def`` ones in the thread pool): pages, and API routers
    whose handlers may run long."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("route_class", SessionRoute)
        super().__init__(**kwargs)
