"""The error answers of every operation, written into the OpenAPI document in one place.

A route declares its success answer. The problem+json answers it can give follow from what
the route is, so they are derived here instead of repeated by hand on every route:

- signed in: 401; with a permission: 403 (and the bearer scheme as its security);
- an id in the path: 404; ``If-Match``, or a write to a record: 412;
- a body: 400 (not JSON) and 413 (too large); parameters or a body: 422;
- ``POST`` (``Idempotency-Key``): 400, 409 (still in progress) and 422 (key reused);
- a write: 409 (a duplicate, a missing reference, an illegal status change);
- anything that reads the database: 503 with ``Retry-After`` while it is busy, full or
  unreachable.

A route adds answers only it gives with ``responses=problems(...)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute

from tenure.core.problems import MEDIA_TYPE

PROBLEM_REF = "#/components/schemas/Problem"
BEARER = "bearer"
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}
DESCRIPTIONS = {
    400: "The request cannot be read: a body that is not JSON, an invalid cursor or "
    "Idempotency-Key.",
    401: "Not signed in: the token or API key is missing, unknown, expired or revoked.",
    403: "Signed in, but the role lacks the permission this operation needs.",
    404: "There is no such record (or it is in the trash).",
    409: "Conflicts with existing data (a duplicate, a missing reference, a change the "
    "record's state does not allow), or a request with this Idempotency-Key is in progress.",
    412: "The record changed since it was read: If-Match names an earlier version.",
    413: "The request body is larger than the server accepts.",
    422: "Invalid input: ``errors`` names each field and what is wrong with it.",
    429: "Too many attempts: wait the seconds in Retry-After.",
    503: "The database is busy, full or unreachable; nothing was changed. Retry later.",
}
WITH_RETRY_AFTER = frozenset({429, 503})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ProblemError(BaseModel):
    loc: list[str | int] = Field(description="Where: 'body', 'query' or 'path', then the field.")
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details)."""

    type: str = Field(description="A stable URN naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it.")
    errors: list[ProblemError] | None = Field(default=None, description="Each invalid field.")


def problem(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response object of a problem+json answer with ``status``."""
    response: dict[str, Any] = {
        "description": description or DESCRIPTIONS.get(status, "An error."),
        "content": {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status in WITH_RETRY_AFTER:
        response["headers"] = RETRY_AFTER
    return response


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that gives problem answers beyond the derived ones."""
    return {status: problem(status) for status in statuses}


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def statuses(route: APIRoute, dependant: Dependant, method: str) -> set[int]:
    """The problem answers ``route`` can give for ``method``, from what the route is: a
    dependency marked ``signs_in`` signs the caller in (``tenure.deps.signs_in``), and a
    dependency with a ``permission`` attribute checks one."""
    found = {503}
    dependants = list(_dependants(dependant))
    calls = [d.call for d in dependants]
    if any(getattr(call, "signs_in", False) or hasattr(call, "permission") for call in calls):
        found.add(401)
    if any(hasattr(call, "permission") for call in calls):
        found.add(403)
    path_params = [p for d in dependants for p in d.path_params]
    if path_params:
        found.add(404)
    if any(p.alias.lower() == "if-match" for d in dependants for p in d.header_params):
        found.add(412)
    has_params = path_params or any(d.query_params or d.header_params for d in dependants)
    if route.body_field is not None:
        found |= {400, 413, 422}
    elif has_params:
        found.add(422)
    if method == "POST":
        found |= {400, 409, 422}  # Idempotency-Key: unreadable, in progress, reused
    if method in WRITES:
        found.add(409)
        if path_params:
            found.add(412)  # another writer moved the record on while this one ran
    if any(p.name == "cursor" for d in dependants for p in d.query_params):
        found.add(400)
    return found


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[APIRoute, Any]]:
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.include_in_schema:
            yield route, context


def add_problem_responses(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    """Write the problem answers of every API operation into ``schema`` (in place; doing it
    again changes nothing). Routes outside ``/api/`` (health probes) keep their own."""
    components = schema.setdefault("components", {})
    models = components.setdefault("schemas", {})
    definitions = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    models.update(definitions.pop("$defs", {}))
    models["Problem"] = definitions
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from POST /api/v1/auth/login, or an API key.",
    }
    for route, context in _api_routes(routes):
        if not context.path_format.startswith("/api/"):
            continue
        for method in sorted(context.methods):
            operation = schema.get("paths", {}).get(context.path_format, {}).get(method.lower())
            if operation is None:
                continue
            found = statuses(route, context.dependant, method)
            responses = operation.setdefault("responses", {})
            for status in sorted(found):
                declared = responses.get(str(status))
                if declared is None or _is_fastapi_validation(declared):
                    responses[str(status)] = problem(status)
            if 401 in found:
                operation["security"] = [{BEARER: []}]
    _drop_unused(models, schema)


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    """FastAPI's own 422, whose shape is not what the API answers."""
    content = response.get("content", {}).get("application/json", {})
    return bool(content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"))


def _drop_unused(models: dict[str, Any], schema: dict[str, Any]) -> None:
    """Remove FastAPI's validation error models once no answer refers to them."""
    if b"/HTTPValidationError" not in orjson.dumps(schema.get("paths", {})):
        models.pop("HTTPValidationError", None)
        models.pop("ValidationError", None)
