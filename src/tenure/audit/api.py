"""The audit log over HTTP: /api/v1/audit, for auditors and administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from tenure.audit import service
from tenure.audit.schemas import AuditEntryRead
from tenure.core.errors import InvalidInput
from tenure.core.pagination import Page, parse_sort, to_page
from tenure.core.routing import SessionRouter
from tenure.core.schemas import MAX_ID, Instant
from tenure.core.time import as_utc
from tenure.deps import ListParamsDep, SessionDep, SettingsDep, require
from tenure.security.models import User
from tenure.security.permissions import AUDIT_READ

Auditor = Annotated[User, Depends(require(AUDIT_READ))]

router = SessionRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=Page[AuditEntryRead])
def list_entries(
    session: SessionDep,
    settings: SettingsDep,
    params: ListParamsDep,
    _actor: Auditor,
    actor_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Entries by this user.")
    ] = None,
    actor_email: Annotated[
        str | None, Query(max_length=320, description="Entries by this email.")
    ] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, description="An action, or a prefix ending in *: auth.*"),
    ] = None,
    entity_type: Annotated[str | None, Query(max_length=32, examples=["customer"])] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[Instant | None, Query(description="From this time (inclusive).")] = None,
    until: Annotated[Instant | None, Query(description="Before this time.")] = None,
) -> Page[AuditEntryRead]:
    """The audit log, newest first: filter by actor, action, record and time range."""
    since = as_utc(since) if since else None
    until = as_utc(until) if until else None
    if since and until and since >= until:
        msg = "since must be before until."
        raise InvalidInput(msg, errors=[{"loc": ["query", "until"], "msg": msg}])
    result = service.list_entries(
        session=session,
        filters=service.AuditFilter(
            actor_id=actor_id,
            actor_email=actor_email,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            since=since,
            until=until,
        ),
        sort=parse_sort(params.sort, service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=params.cursor,
        limit=params.limit,
        count_cap=settings.count_cap if params.count else None,
    )
    return to_page(result, AuditEntryRead.model_validate)
