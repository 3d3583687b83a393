"""Ties a request's unit of work to the audit log: who, from where, which request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from sqlalchemy.orm import Session

from tenure.audit import recorder
from tenure.audit import service as audit_service
from tenure.core.errors import TenureError


@contextmanager
def request_audit(session: Session, request: Request) -> Iterator[None]:
    """Entries of ``session`` carry the request's id, client address and caller; a 403
    raised while it runs is recorded, and kept though the request's work is undone."""
    recorder.bind(
        session,
        recorder.AuditContext(
            request_id=getattr(request.state, "request_id", None),
            client_address=request.client.host if request.client else None,
            actor_id=lambda: getattr(request.state, "user_id", None),
        ),
    )
    try:
        yield
    except TenureError as exc:
        if exc.status == 403:
            route = request.scope.get("route")
            audit_service.access_denied(
                session=session,
                code=exc.code,
                reason=exc.detail,
                method=request.method,
                path=request.url.path,
                route=getattr(route, "path_format", None) or getattr(route, "path", None),
                permission=getattr(exc, "permission", None),
            )
        raise
