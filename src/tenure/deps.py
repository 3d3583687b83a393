"""FastAPI dependencies shared by every router: the session, settings and the caller."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import BackgroundTasks, Depends, Header, Query, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from tenure.audit.deps import request_audit
from tenure.config import Settings
from tenure.core.errors import PermissionDenied, Unauthenticated
from tenure.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from tenure.core.routing import (
    INLINE,
    PRINCIPAL,
    SESSION,
    WRITER,
    PlacedRoute,
    request_session,
    run_db,
)
from tenure.db import unit_of_work
from tenure.security import service as security_service
from tenure.security.permissions import Scope, has_permission, scope_of
from tenure.security.scope import RecordScope
from tenure.security.service import Principal

log = logging.getLogger("tenure")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@asynccontextmanager
async def request_unit_of_work(request: Request) -> AsyncIterator[Session]:
    """One unit of work per request: committed before the response is sent.

    Opened by the route around its dependencies and handler (see
    :class:`tenure.core.routing.SessionRoute`) rather than as a dependency of its own:
    a generator dependency, and every dependency that asks for one, costs FastAPI more
    than answering a small request from SQLite.

    A writer's transaction starts as one (SQLite: BEGIN IMMEDIATE): at its first query, or
    on a placed route when its handler runs. Reads on SQLite run on the event loop; see
    :mod:`tenure.core.routing`."""
    state = request.app.state
    write = request.method not in READ_METHODS
    # A writer on a placed route starts its write transaction when its handler runs.
    placed = isinstance(request.scope.get("route"), PlacedRoute)
    if write and not placed:
        session: Session = state.sessions(bind=state.write_engine)
    else:
        session = state.sessions()
    session.info[INLINE] = state.inline_reads and (placed or not write)
    session.info[WRITER] = write and placed
    session.begin()
    request.scope[SESSION] = session
    try:
        with request_audit(session, request):
            yield session
    except BaseException:
        # Off the event loop: a refusal may write an audit entry of its own.
        await run_in_threadpool(_finish, session, commit=False)
        raise
    if session.new or session.dirty or session.deleted:
        session.info[INLINE] = False  # a read that writes after all waits for the lock
    await run_db(session, _finish, session, commit=True)


def _finish(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


D = TypeVar("D", bound=Callable[..., Any])


def needs_session(dependency: D) -> D:
    """Mark ``dependency`` as one that reads the request's session: a route using it opens
    the request's unit of work around its dependencies and handler (see SessionRoute)."""
    dependency.unit_of_work = request_unit_of_work  # type: ignore[attr-defined]
    return dependency


def signs_in(dependency: D) -> D:
    """Mark ``dependency`` as one that signs the caller in (``authenticated``): 401 without
    credentials. Route audits and the API description look for the mark."""
    dependency.signs_in = True  # type: ignore[attr-defined]
    return needs_session(dependency)


@needs_session
async def get_session(request: Request) -> Session:
    """The request's unit of work (opened by its route: ``request_unit_of_work``)."""
    return request_session(request)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def authenticated(request: Request, background: BackgroundTasks) -> Principal:
    """The caller, from ``Authorization: Bearer <token or API key>``; 401 when missing.

    Checked once per request, whichever dependency asks first: the permission check,
    the record scope and the caller itself each take it from here, so none of them needs
    another dependency (each costs FastAPI a full resolution pass)."""
    found: Principal | None = request.scope.get(PRINCIPAL)
    if found is not None:
        return found
    credential = bearer_token(request)
    if credential is None:
        raise Unauthenticated(
            "Send 'Authorization: Bearer <token>'; sign in at /api/v1/auth/login."
        )
    session = request_session(request)
    principal = await run_db(
        session, security_service.authenticate, session=session, credential=credential
    )
    request.scope[PRINCIPAL] = principal
    request.state.user_id = principal.user_id
    if principal.key_use_due and principal.api_key_id is not None:
        # Once the answer is out, in a transaction of its own: a read stays a read.
        background.add_task(_record_key_use, request.app.state.sessions, principal.api_key_id)
    return principal


def bearer_token(request: Request) -> str | None:
    """The token or API key of ``Authorization: Bearer <credential>``, if sent."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


@signs_in
async def get_principal(request: Request, background: BackgroundTasks) -> Principal:
    """The signed-in caller (see ``authenticated``)."""
    return await authenticated(request, background)


def _record_key_use(sessions: sessionmaker[Session], key_id: int) -> None:
    """Best effort: it runs after the answer has started, so it must not raise. A busy or
    full database only delays the note to the key's next use."""
    try:
        with unit_of_work(sessions) as session:
            security_service.record_key_use(session=session, key_id=key_id)
    except DBAPIError as exc:
        log.warning("API key %s: last use not noted: %s", key_id, exc.orig)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: str) -> Callable[[Request, BackgroundTasks], Awaitable[Principal]]:
    """A dependency that lets the request through only with ``permission``; it gives the
    caller (``.user`` loads the user when a handler needs more than the role)."""

    # async: FastAPI runs it inline instead of in the thread pool.
    @signs_in
    async def check(request: Request, background: BackgroundTasks) -> Principal:
        principal = await authenticated(request, background)
        if not has_permission(principal.role, permission):
            raise PermissionDenied(
                f"Your role ({principal.role}) lacks '{permission}'.", permission=permission
            )
        return principal

    check.permission = permission  # type: ignore[attr-defined]  # read by route audits
    return check


@signs_in
async def get_scope(request: Request, background: BackgroundTasks) -> RecordScope:
    """The customers (and orders) the caller reaches; only a team scope asks the database."""
    principal = await authenticated(request, background)
    session = request_session(request)
    if scope_of(principal.role) is not Scope.TEAM:
        return security_service.scope_for(
            session=session, user_id=principal.user_id, role=principal.role
        )
    return await run_db(
        session,
        security_service.scope_for,
        session=session,
        user_id=principal.user_id,
        role=principal.role,
    )


ScopeDep = Annotated[RecordScope, Depends(get_scope)]


@dataclass(frozen=True)
class ListParams:
    limit: int
    cursor: str | None
    sort: str | None
    count: bool


async def list_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    sort: Annotated[
        str | None, Query(description="Field to order by; prefix with - for descending.")
    ] = None,
    count: Annotated[
        bool, Query(description="Also return a total (capped; exact below the cap).")
    ] = False,
) -> ListParams:
    return ListParams(limit=limit, cursor=cursor, sort=sort, count=count)


ListParamsDep = Annotated[ListParams, Depends(list_params)]
IfMatch = Annotated[str | None, Header(description="The ETag you read; a stale one answers 412.")]
