"""JSON responses from response models, serialized once."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel
from starlette.responses import Response


def model_response(
    model: BaseModel, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``model`` as the JSON its schema defines.

    Returned from a route with the same ``response_model``: FastAPI would otherwise
    validate the finished model a second time before serializing it, which costs more
    than the rest of a small read."""
    return Response(
        model.__pydantic_serializer__.to_json(model),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )
