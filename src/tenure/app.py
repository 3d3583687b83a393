"""The FastAPI application: middleware, routers and error handlers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from tenure import __version__
from tenure.catalog.api import router as products_router
from tenure.catalog.web import router as products_web_router
from tenure.config import Settings, get_settings
from tenure.core.errors import TenureError
from tenure.core.idempotency import IdempotencyMiddleware
from tenure.core.middleware import BodyLimitMiddleware, RequestIdMiddleware
from tenure.core.problems import problem_response
from tenure.customers.api import router as customers_router
from tenure.customers.web import router as customers_web_router
from tenure.db import make_engine, make_sessionmaker
from tenure.observability.health import router as health_router
from tenure.observability.metrics import install as install_metrics
from tenure.observability.middleware import ObservabilityMiddleware
from tenure.orders.api import router as orders_router
from tenure.orders.web import router as orders_web_router
from tenure.security.api import router as security_router
from tenure.security.models import User
from tenure.security.web import router as security_web_router
from tenure.web.dashboard import router as dashboard_router
from tenure.web.pages import login_redirect, static_files
from tenure.web.pages import router as pages_router
from tenure.web.session import LoginRequired
from tenure.web.templating import render

log = logging.getLogger("tenure")


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the application for ``settings`` (from the environment when not given)."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings)
    sessions = make_sessionmaker(engine)

    app = FastAPI(
        title="Tenure",
        version=__version__,
        summary="A self-hosted CRM: customers, orders, products and more.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions

    for router in (
        health_router,
        security_router,
        customers_router,
        products_router,
        orders_router,
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
    return app


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
    load it again so the error page can show the user's menu and language."""
    user_id = getattr(request.state, "user_id", None)
    if getattr(request.state, "user", None) is None or user_id is None:
        return
    with request.app.state.sessions() as session:
        request.state.user = session.get(User, user_id)


def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    _reload_user(request)
    return render(
        request, "errors/error.html", {"title": title, "detail": detail}, status_code=status
    )


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
            )
        if isinstance(exc, LoginRequired):
            target = login_redirect(request.url.path, expired=exc.expired)
            if request.headers.get("hx-request") == "true":
                return Response(status_code=401, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
        return _error_page(request, exc.status, exc.title, exc.detail)

    @app.exception_handler(RequestValidationError)
    def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        status, detail, errors = _validation_errors(exc)
        code = "malformed-json" if status == 400 else "invalid-input"
        title = "Malformed JSON" if status == 400 else "Invalid input"
        return problem_response(status=status, code=code, title=title, detail=detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_api(request):
            detail = (
                "There is nothing at this address." if exc.status_code == 404 else str(exc.detail)
            )
            return _error_page(request, exc.status_code, str(exc.detail), detail)
        return problem_response(
            status=exc.status_code,
            code="http-" + str(exc.status_code),
            title=str(exc.detail),
            detail=str(exc.detail),
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(StaleDataError)
    def stale(_request: Request, _exc: StaleDataError) -> Response:
        return problem_response(
            status=412,
            code="precondition-failed",
            title="The record changed since you read it",
            detail="Someone else saved this record at the same moment. Fetch it again.",
        )

    @app.exception_handler(IntegrityError)
    def integrity(_request: Request, exc: IntegrityError) -> Response:
        log.warning("integrity error: %s", type(exc.orig).__name__)
        return problem_response(
            status=409,
            code="conflict",
            title="Conflict",
            detail="The change conflicts with existing data (a duplicate or a missing reference).",
        )

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        detail = (
            "Something went wrong on our side; it has been logged. "
            f"Quote request id {getattr(request.state, 'request_id', '-')} when reporting it."
        )
        if not is_api(request):
            return _error_page(request, 500, "Internal server error", detail)
        return problem_response(
            status=500, code="internal-error", title="Internal server error", detail=detail
        )
