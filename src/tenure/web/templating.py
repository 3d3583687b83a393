"""Rendering pages: one Jinja2 environment, per-request language and formatting."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from tenure import __version__
from tenure.security.models import User
from tenure.security.permissions import has_permission
from tenure.web import i18n
from tenure.web.session import attach_csrf_cookie, csrf_token

env = Environment(
    loader=PackageLoader("tenure.web", "templates"),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]


def request_locale(request: Request) -> str:
    """The locale for this request: the user's choice, else the browser's."""
    cached: str | None = getattr(request.state, "locale", None)
    if cached:
        return cached
    user: User | None = getattr(request.state, "user", None)
    locale = i18n.negotiate(request.headers.get("accept-language"), user.locale if user else None)
    request.state.locale = locale
    return locale


def gettext_for(request: Request) -> Any:
    return i18n.translations(request_locale(request)).gettext


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with the user, language, formatters and CSRF token in scope."""
    locale = request_locale(request)
    tr = i18n.translations(locale)
    user: User | None = getattr(request.state, "user", None)
    fmt = i18n.Formatter(locale)
    page = env.get_template(template).render(
        request=request,
        user=user,
        locale=locale,
        locales=i18n.LABELS,
        fmt=fmt,
        _=tr.gettext,
        gettext=tr.gettext,
        ngettext=tr.ngettext,
        csrf_token=csrf_token(request),
        can=lambda permission: user is not None and has_permission(user.role, permission),
        version=__version__,
        path=request.url.path,
        **(context or {}),
    )
    response = HTMLResponse(page, status_code=status_code, headers=headers)
    attach_csrf_cookie(request, response)
    return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
