"""Sign-in, sign-out, language choice and the static files of the web UI."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from babel.dates import format_timedelta
from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from tenure.core.errors import TenureError, Unauthenticated
from tenure.core.routing import SessionRouter
from tenure.deps import SessionDep, SettingsDep
from tenure.security import service as security_service
from tenure.security import throttle
from tenure.web import i18n
from tenure.web.session import (
    SESSION_COOKIE,
    Csrf,
    WebUser,
    clear_session_cookie,
    set_session_cookie,
)
from tenure.web.templating import gettext_for, render, request_locale

STATIC_DIR = Path(__file__).resolve().parent / "static"
static_files = StaticFiles(directory=STATIC_DIR)
router = SessionRouter(include_in_schema=False)


def safe_next(value: str | None) -> str:
    """Only local paths, so the login form cannot send people to another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def login_redirect(path: str, *, expired: bool) -> str:
    target = f"/login?next={quote(path, safe='/')}"
    return target + "&expired=1" if expired else target


@router.get("/login")
def login_page(request: Request, next: str | None = None, expired: bool = False) -> Response:
    return render(request, "auth/login.html", {"next": safe_next(next), "expired": expired})


@router.post("/login", dependencies=[Csrf])
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        token, _user = security_service.login(
            session=session,
            email=email,
            password=password,
            ttl_seconds=settings.token_ttl_seconds,
            client_address=request.client.host if request.client else None,
            policy=throttle.Policy.from_settings(settings),
        )
    except throttle.TooManyAttempts as exc:
        return _login_refused(request, email, next, _wait_message(request, exc.retry_after), exc)
    except Unauthenticated as exc:
        # Answered, not raised: the failure is committed and counts towards throttling.
        _ = gettext_for(request)
        return _login_refused(request, email, next, _("The email or password is wrong."), exc)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(request, response, token, settings.token_ttl_seconds)
    return response


def _wait_message(request: Request, seconds: int) -> str:
    """How long to wait, in the reader's words: "45 seconds", "15 minutes" (rounded up)."""
    if seconds >= 60:
        seconds = math.ceil(seconds / 60) * 60
    wait = format_timedelta(timedelta(seconds=seconds), threshold=1, locale=request_locale(request))
    _ = gettext_for(request)
    return str(_("Too many failed sign-ins. Wait %(wait)s, then try again.") % {"wait": wait})


def _login_refused(
    request: Request, email: str, next: str, message: str, exc: TenureError
) -> Response:
    return render(
        request,
        "auth/login.html",
        {"error": message, "email": email, "next": safe_next(next)},
        status_code=exc.status,
        headers=exc.headers,
    )


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request, session: SessionDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            principal = security_service.authenticate(session=session, credential=token)
            security_service.logout(session=session, principal=principal)
        except Unauthenticated:
            pass  # already expired or revoked: signing out still clears the cookie
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.post("/preferences/language", dependencies=[Csrf])
def set_language(
    session: SessionDep,
    user: WebUser,
    locale: Annotated[str, Form()] = "",  # empty: follow the browser's language
    next: Annotated[str, Form()] = "/",
) -> Response:
    chosen = locale if locale in i18n.SUPPORTED else None
    security_service.set_locale(session=session, user=user, locale=chosen)
    return RedirectResponse(safe_next(next), status_code=303)
