"""Browser sessions and CSRF protection.

The session cookie holds a sign-in token (the same kind the API issues, so expiry and
revocation work the same way). Forms carry a CSRF token that must match a second,
SameSite=Strict cookie (double submit); HTMX sends it as ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from tenure.core.errors import PermissionDenied, TenureError
from tenure.deps import SessionDep
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import has_permission
from tenure.security.scope import RecordScope

SESSION_COOKIE = "tenure_session"
CSRF_COOKIE = "tenure_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(TenureError):
    status = 401
    code = "login-required"
    title = "Please sign in"

    def __init__(self, detail: str, *, expired: bool) -> None:
        super().__init__(detail)
        self.expired = expired


class CsrfFailed(TenureError):
    status = 403
    code = "csrf-failed"
    title = "This form has expired"


def set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def csrf_token(request: Request) -> str:
    """This browser's CSRF token; a new one is made (and set as a cookie) when missing."""
    token: str | None = getattr(request.state, "csrf_token", None)
    if token is None:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        request.state.csrf_token = token
    return token


def attach_csrf_cookie(request: Request, response: Response) -> None:
    token = getattr(request.state, "csrf_token", None)
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing request whose CSRF token does not match the cookie."""
    expected = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise CsrfFailed("The form was not sent from this site or has expired. Reload and retry.")


def current_user(request: Request, session: SessionDep) -> User:
    """The signed-in user of this browser, or ``LoginRequired``."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired("Please sign in.", expired=False)
    try:
        principal = security_service.authenticate(session=session, credential=token)
    except TenureError:
        raise LoginRequired(
            "Your session has expired. Please sign in again.", expired=True
        ) from None
    request.state.user = principal.user
    request.state.user_id = principal.user.id
    return principal.user


WebUser = Annotated[User, Depends(current_user)]
Csrf = Depends(check_csrf)


def page_require(permission: str) -> Any:
    """A dependency for pages: the signed-in user, checked for ``permission``."""

    def check(user: WebUser) -> User:
        if not has_permission(user.role, permission):
            raise PermissionDenied(
                f"Your role ({user.role}) cannot open this page.", permission=permission
            )
        return user

    check.permission = permission  # type: ignore[attr-defined]  # read by route audits
    return Depends(check)


def page_scope(user: WebUser, session: SessionDep) -> RecordScope:
    """The customers (and orders) the signed-in user reaches."""
    return security_service.scope_for(session=session, user_id=user.id, role=user.role)


PageScope = Annotated[RecordScope, Depends(page_scope)]
