"""Domain errors. Services raise these; the API turns them into problem+json."""

from __future__ import annotations

from typing import Any


class TenureError(Exception):
    """Base of every error a user can be shown. ``code`` is stable and documented."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"
    headers: dict[str, str] | None = None  # sent with the answer (e.g. Retry-After)

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class InvalidInput(TenureError):
    status = 422
    code = "invalid-input"
    title = "Invalid input"


class NotFound(TenureError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(TenureError):
    status = 409
    code = "conflict"
    title = "Conflict"


class IllegalTransition(Conflict):
    code = "illegal-transition"
    title = "Illegal status transition"


class PreconditionFailed(TenureError):
    status = 412
    code = "precondition-failed"
    title = "The record changed since you read it"


class Unauthenticated(TenureError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(TenureError):
    status = 403
    code = "permission-denied"
    title = "Permission denied"

    def __init__(
        self,
        detail: str,
        *,
        permission: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail, errors=errors)
        self.permission = permission  # the one the caller lacks, when it is one


class BadCursor(TenureError):
    status = 400
    code = "bad-cursor"
    title = "Invalid cursor"


def field_error(field: str, msg: str) -> InvalidInput:
    """An ``InvalidInput`` naming one body field, shaped like request validation errors."""
    return InvalidInput(msg, errors=[{"loc": ["body", field], "msg": msg}])
