"""FastAPI dependencies shared by every router: the session, settings and the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.orm import Session

from tenure.audit.deps import request_audit
from tenure.config import Settings
from tenure.core.errors import PermissionDenied, Unauthenticated
from tenure.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from tenure.db import begin_write
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import has_permission
from tenure.security.service import Principal

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed before the response is sent."""
    with request.app.state.sessions() as session, session.begin():
        if request.method not in READ_METHODS:
            begin_write(session)
        with request_audit(session, request):
            yield session


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_principal(request: Request, session: SessionDep) -> Principal:
    """The caller, from ``Authorization: Bearer <token or API key>``; 401 when missing."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthenticated(
            "Send 'Authorization: Bearer <token>'; sign in at /api/v1/auth/login."
        )
    principal = security_service.authenticate(session=session, credential=credential.strip())
    request.state.user_id = principal.user.id
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: str) -> Callable[[Principal], Awaitable[User]]:
    """A dependency that lets the request through only with ``permission``."""

    # async: no I/O here, so FastAPI runs it inline instead of in the thread pool.
    async def check(principal: PrincipalDep) -> User:
        if not has_permission(principal.user.role, permission):
            raise PermissionDenied(f"Your role ({principal.user.role}) lacks '{permission}'.")
        return principal.user

    check.permission = permission  # type: ignore[attr-defined]  # read by route audits
    return check


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
