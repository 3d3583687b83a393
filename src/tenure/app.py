"""The FastAPI application: middleware, routers and error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from tenure import __version__
from tenure.analytics import schedule as analytics_schedule
from tenure.analytics.api import router as analytics_router
from tenure.analytics.web import router as analytics_web_router
from tenure.audit.api import router as audit_router
from tenure.catalog.api import router as products_router
from tenure.catalog.web import router as products_web_router
from tenure.config import Settings, get_settings
from tenure.core.errors import TenureError
from tenure.core.headers import SecurityHeadersMiddleware
from tenure.core.idempotency import IdempotencyMiddleware
from tenure.core.middleware import BodyLimitMiddleware, RequestIdMiddleware
from tenure.core.openapi import add_problem_responses
from tenure.core.outage import UNAVAILABLE, Outage, outage
from tenure.core.problems import problem_response
from tenure.core.routing import Shortcuts
from tenure.customers.api import router as customers_router
from tenure.customers.web import router as customers_web_router
from tenure.db import WRITE_OPTION, HeldConnection, make_engine, make_sessionmaker
from tenure.interactions.api import router as interactions_router
from tenure.interactions.api import tasks_router
from tenure.interactions.web import router as interactions_web_router
from tenure.marketing.api import campaigns_router, segments_router
from tenure.marketing.links import router as marketing_links_router
from tenure.marketing.web import router as marketing_web_router
from tenure.observability.api import router as operations_router
from tenure.observability.health import router as health_router
from tenure.observability.metrics import install as install_metrics
from tenure.observability.middleware import ObservabilityMiddleware
from tenure.observability.sampler import lifespan as sampling
from tenure.observability.web import router as operations_web_router
from tenure.orders.api import router as orders_router
from tenure.orders.web import router as orders_web_router
from tenure.pipeline.api import router as opportunities_router
from tenure.pipeline.api import stages_router
from tenure.pipeline.web import router as pipeline_web_router
from tenure.security import fields
from tenure.security import service as security_service
from tenure.security.api import router as security_router
from tenure.security.models import User
from tenure.security.web import router as security_web_router
from tenure.service_desk.api import router as service_desk_router
from tenure.service_desk.web import router as service_desk_web_router
from tenure.sqlite import sqlite3
from tenure.timeline.api import router as timeline_router
from tenure.timeline.web import router as timeline_web_router
from tenure.web.dashboard import router as dashboard_router
from tenure.web.messages import INTERNAL_ERROR, N_, localize
from tenure.web.pages import login_redirect, static_files
from tenure.web.pages import router as pages_router
from tenure.web.session import SESSION_COOKIE, LoginRequired
from tenure.web.templating import gettext_for, render

log = logging.getLogger("tenure")


class TenureApp(FastAPI):
    """FastAPI with the security headers outside everything, its 500 handler included,
    the route shortcuts in front of the router, and every operation's error answers in
    the OpenAPI document."""

    def build_middleware_stack(self) -> ASGIApp:
        # The route shortcuts go in front of the router, inside every middleware (the
        # exception handlers included), where FastAPI puts the router.
        router = self.router
        self.router = Shortcuts(router)  # type: ignore[assignment]
        try:
            return SecurityHeadersMiddleware(super().build_middleware_stack())
        finally:
            self.router = router

    def openapi(self) -> dict[str, Any]:
        schema = super().openapi()
        add_problem_responses(schema, self.routes)
        return schema


@asynccontextmanager
async def _background(app: FastAPI) -> AsyncIterator[None]:
    """What every worker runs beside serving: the metrics sampler, scheduled analytics.
    When it stops, the connection the route shortcuts read on goes back to the pool."""
    try:
        async with sampling(app), analytics_schedule.lifespan(app):
            yield
    finally:
        app.state.held.close()


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the application for ``settings`` (from the environment when not given)."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings)
    sealer = fields.sealer_for(settings)
    sessions = make_sessionmaker(engine, sealer=sealer)

    app = TenureApp(
        title="Tenure",
        version=__version__,
        summary="A self-hosted CRM: customers, orders, products and more.",
        lifespan=_background,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.sealer = sealer  # for reads on a plain connection (route shortcuts)
    # Their connection, reading the file through a memory map (SQLite).
    app.state.held = HeldConnection(engine, mmap_bytes=settings.sqlite_mmap_mb * 2**20)
    # Writers' sessions start their transaction as writers (SQLite: BEGIN IMMEDIATE).
    app.state.write_engine = engine.execution_options(**{WRITE_OPTION: True})
    # SQLite reads never wait, so they run on the event loop (tenure.core.routing).
    app.state.inline_reads = engine.dialect.name == "sqlite"

    # Routes are matched in order, one by one: the busiest resources come first.
    for router in (
        health_router,
        customers_router,
        orders_router,
        products_router,
        security_router,
        audit_router,
        operations_router,
        analytics_router,
        service_desk_router,
        opportunities_router,
        stages_router,
        interactions_router,
        tasks_router,
        timeline_router,
        segments_router,
        campaigns_router,
    ):
        app.include_router(router)

    app.mount("/static", static_files, name="static")
    for router in (
        pages_router,
        dashboard_router,
        customers_web_router,
        products_web_router,
        orders_web_router,
        security_web_router,
        operations_web_router,
        analytics_web_router,
        service_desk_web_router,
        pipeline_web_router,
        interactions_web_router,
        timeline_web_router,
        marketing_web_router,
        marketing_links_router,
    ):
        app.include_router(router)

    install_metrics(app, settings=settings, engine=engine)
    _install_error_handlers(app)
    # Outermost last: request id wraps everything, then the body limit, then idempotency.
    app.add_middleware(
        IdempotencyMiddleware, sessions=sessions, ttl_seconds=settings.idempotency_ttl_seconds
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware)  # metrics and access log, under the request id
    app.add_middleware(RequestIdMiddleware)
    if settings.cors_origins:  # closed by default: no CORS header unless origins are listed
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    return app


# What a script on another origin may send and read (bearer tokens; no cookies).
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "Idempotency-Key",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = ["ETag", "Location", "Retry-After", "X-Request-ID"]


def _validation_errors(exc: RequestValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return 400, "The request body is not valid JSON.", errors
    fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "body" for e in errors[:5])
    return 422, f"Some fields are not valid: {fields}.", errors


def is_api(request: Request) -> bool:
    """API clients get problem+json; people in a browser get a page."""
    path = request.url.path
    return path.startswith("/api/") or path in ("/openapi.json", "/healthz", "/readyz")


def _reload_user(request: Request) -> None:
    """The request's transaction rolled back on the error, expiring the signed-in user;
    load it again so the error page can show the user's menu and language. When the error
    came before the user was looked up (an address no page has), look them up now."""
    user_id = getattr(request.state, "user_id", None)
    token = request.cookies.get(SESSION_COOKIE)
    if user_id is None and not token:
        return
    with request.app.state.sessions() as session:
        if user_id is not None:
            request.state.user = session.get(User, user_id)
            return
        try:
            principal = security_service.authenticate(session=session, credential=str(token))
        except TenureError:
            return  # signed out or expired: the page is shown as to a visitor
        request.state.user = principal.user
        request.state.user_id = principal.user.id


def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    """An HTML error page; ``title`` and ``detail`` (English) are shown in the reader's language."""
    _reload_user(request)
    _ = gettext_for(request)
    context = {"title": localize(title, _), "detail": localize(detail, _)}
    return render(request, "errors/error.html", context, status_code=status)


STALE = (
    N_("The record changed since you read it"),
    N_("Someone else saved this record at the same moment. Fetch it again."),
)
CONFLICT = (
    N_("Conflict"),
    N_("The change conflicts with existing data (a duplicate or a missing reference)."),
)
BAD_REQUEST_DETAIL = N_(
    "The address or the form has values this page cannot use. Go back and retry."
)
NOT_FOUND_PAGE = (N_("Not found"), N_("There is nothing at this address."))
# Pages for the HTTP errors a browser can meet (titles and details are catalog msgids).
HTTP_PAGES = {
    404: NOT_FOUND_PAGE,
    405: (N_("Method not allowed"), N_("This address does not accept that kind of request.")),
}


def _outage_response(request: Request, exc: Exception, found: Outage) -> Response:
    """503 with Retry-After: the database is locked, full or unreachable for now."""
    log.error(
        "%s on %s %s: %s",
        found.title,
        request.method,
        request.url.path,
        exc,
        exc_info=exc if found is UNAVAILABLE else None,  # the cause may be a bug
    )
    headers = {"Retry-After": str(found.retry_after)}
    if is_api(request):
        return problem_response(
            status=503, code=found.code, title=found.title, detail=found.detail, headers=headers
        )
    try:
        page = _error_page(request, 503, found.title, found.detail)
    except (SQLAlchemyError, sqlite3.Error):  # the page looks up the user, in that database
        page = Response(found.detail, status_code=503, media_type="text/plain")
    page.headers.update(headers)
    return page


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TenureError)
    def tenure_error(request: Request, exc: TenureError) -> Response:
        if is_api(request):
            return problem_response(
                status=exc.status,
                code=exc.code,
                title=exc.title,
                detail=exc.detail,
                errors=exc.errors,
                headers=exc.headers,
            )
        if isinstance(exc, LoginRequired):
            target = login_redirect(request.url.path, expired=exc.expired)
            if request.headers.get("hx-request") == "true":
                return Response(status_code=401, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
        return _error_page(request, exc.status, exc.title, exc.detail)

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError) -> Response:
        status, detail, errors = _validation_errors(exc)
        if not is_api(request):
            if any(e["loc"][:1] == ["path"] for e in errors):  # e.g. /orders/abc
                return _error_page(request, 404, *NOT_FOUND_PAGE)
            return _error_page(request, status, N_("Invalid input"), BAD_REQUEST_DETAIL)
        code = "malformed-json" if status == 400 else "invalid-input"
        title = "Malformed JSON" if status == 400 else "Invalid input"
        return problem_response(status=status, code=code, title=title, detail=detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_api(request):
            title, detail = HTTP_PAGES.get(exc.status_code, (str(exc.detail), str(exc.detail)))
            return _error_page(request, exc.status_code, title, detail)
        return problem_response(
            status=exc.status_code,
            code="http-" + str(exc.status_code),
            title=str(exc.detail),
            detail=str(exc.detail),
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(StaleDataError)
    def stale(request: Request, _exc: StaleDataError) -> Response:
        if not is_api(request):
            return _error_page(request, 412, *STALE)
        return problem_response(
            status=412,
            code="precondition-failed",
            title=STALE[0],
            detail=STALE[1],
        )

    @app.exception_handler(IntegrityError)
    def integrity(request: Request, exc: IntegrityError) -> Response:
        log.warning("integrity error: %s", type(exc.orig).__name__)
        if not is_api(request):
            return _error_page(request, 409, *CONFLICT)
        return problem_response(status=409, code="conflict", title=CONFLICT[0], detail=CONFLICT[1])

    @app.exception_handler(DataError)
    def unstorable(request: Request, exc: DataError) -> Response:
        # A value the database refuses to store: PostgreSQL keeps no NUL character in text.
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "an invalid value"
        log.warning("data error: %s", reason)
        if not is_api(request):
            return _error_page(request, 422, N_("Invalid input"), BAD_REQUEST_DETAIL)
        return problem_response(
            status=422,
            code="invalid-input",
            title="Invalid input",
            detail=f"A value sent cannot be stored ({reason}). Correct it and send again.",
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(sqlite3.OperationalError)
    def database_outage(request: Request, exc: Exception) -> Response:
        return _outage_response(request, exc, outage(exc) or UNAVAILABLE)

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> Response:
        found = outage(exc)
        if found is not None:  # raised outside the routes, in a middleware
            return _outage_response(request, exc, found)
        # exc_info=exc: a sync handler runs in a worker thread, where exc_info() is empty.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        detail = INTERNAL_ERROR % {"id": getattr(request.state, "request_id", "-")}
        if not is_api(request):
            return _error_page(request, 500, N_("Internal server error"), detail)
        return problem_response(
            status=500, code="internal-error", title="Internal server error", detail=detail
        )
