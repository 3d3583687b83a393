"""The operations figures over HTTP: /api/v1/operations, for administrators."""

from __future__ import annotations

from fastapi import Depends

from tenure.core.routing import SessionRouter
from tenure.core.time import utcnow
from tenure.deps import SessionDep, SettingsDep, require
from tenure.observability import operations
from tenure.observability.schemas import Overview
from tenure.security.permissions import OPERATIONS_READ

router = SessionRouter(prefix="/api/v1/operations", tags=["operations"])


@router.get("", response_model=Overview, dependencies=[Depends(require(OPERATIONS_READ))])
def get_operations(session: SessionDep, settings: SettingsDep) -> Overview:
    """Request rate, error rate (5xx) and latency percentiles for the latest sampling
    interval, the last hour and the last day, and per interval over the last hour; the
    database's size, its schema revision and the last backup."""
    return operations.overview(session=session, settings=settings, now=utcnow())
