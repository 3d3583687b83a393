"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tenure.ops import migrate
from tenure.security import keyring

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process answers."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers, its schema is at the latest revision, and the
    keyring that encrypts customers' sensitive fields can be read."""
    try:
        current, head = migrate.revisions(request.app.state.engine)
    except Exception as exc:  # any failure to reach the database means not ready
        return JSONResponse(
            {"status": "unavailable", "reason": f"database unreachable: {type(exc).__name__}"},
            status_code=503,
        )
    if current != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": f"schema at {current}, expected {head}; run 'tenure upgrade'",
            },
            status_code=503,
        )
    problem = keyring.live(request.app.state.settings).check()
    if problem is not None:
        return JSONResponse(
            {"status": "unavailable", "reason": f"keyring not readable: {problem}"},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "schema": current})
