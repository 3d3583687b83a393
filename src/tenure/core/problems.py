"""RFC 9457 problem details: the one shape every error answer takes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

MEDIA_TYPE = "application/problem+json"


def problem_body(
    *, status: int, code: str, title: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:tenure:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return body


def problem_bytes(**kwargs: Any) -> bytes:
    return orjson.dumps(problem_body(**kwargs))


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        problem_bytes(status=status, code=code, title=title, detail=detail, errors=errors),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )
