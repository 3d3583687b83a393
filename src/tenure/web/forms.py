"""Turning submitted forms into schemas, and validation failures into field messages."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from tenure.core.errors import NotFound, TenureError
from tenure.core.schemas import MAX_ID
from tenure.web.messages import Gettext, localize, validation_message

M = TypeVar("M", bound=BaseModel)
FieldErrors = dict[str, str]


async def read_form(request: Request) -> FormData:
    """The submitted form, read before the (sync) handler runs."""
    return await request.form()


FormDep = Annotated[FormData, Depends(read_form)]


def form_id(value: object) -> int | None:
    """A record id chosen in a form (a select's value), or None when blank or not one."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and int(text) <= MAX_ID else None


def path_id(noun: str, label: str | None = None) -> Callable[..., int]:
    """A dependency reading the path's ``<noun>_id`` (``"opportunity"``: opportunity_id):
    an id no record can have is the same 404 page as a record that does not exist, named
    by ``label`` (default: ``noun``)."""
    name = f"{noun}_id"
    label = label or noun

    def checked(**path: int) -> int:
        value = path[name]
        if not 1 <= value <= MAX_ID:
            raise NotFound(f"There is no {label} {value}.")
        return value

    # FastAPI reads the parameter's name (the path's) from the signature.
    keyword = inspect.Parameter.KEYWORD_ONLY
    checked.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, keyword, annotation=int)], return_annotation=int
    )
    return checked


def form_dict(
    form: FormData, *, lists: tuple[str, ...] = (), skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Form fields as a dict: empty strings become None, ``lists`` fields become lists."""
    data: dict[str, Any] = {}
    for key in form:
        if key in skip or key == "csrf_token":
            continue
        if key in lists:
            data[key] = [v for v in form.getlist(key) if isinstance(v, str) and v.strip()]
            continue
        value = form.get(key)
        if isinstance(value, str):
            data[key] = value.strip() or None
    return data


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "__all__"


def errors_of(exc: ValidationError | TenureError, gettext: Gettext | None = None) -> FieldErrors:
    """Field name → first message, for showing next to each input.

    With ``gettext`` the messages are in the reader's language; without, as raised.
    """
    found: FieldErrors = {}
    if isinstance(exc, ValidationError):
        for err in exc.errors():
            if gettext is None:
                msg = err["msg"].removeprefix("Value error, ")
            else:
                msg = validation_message(dict(err), gettext)
            found.setdefault(_field(err["loc"]), msg)
    else:
        details: list[dict[str, Any]] = [dict(e) for e in exc.errors or []]
        for detail in details or [{"loc": [], "msg": exc.detail}]:
            msg = str(detail.get("msg", exc.detail))
            found.setdefault(
                _field(detail.get("loc", [])), localize(msg, gettext) if gettext else msg
            )
    return found


def parse(
    model: type[M], data: dict[str, Any], gettext: Gettext | None = None
) -> tuple[M | None, FieldErrors]:
    """Validate ``data`` as ``model``: (instance, {}) or (None, field errors)."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, errors_of(exc, gettext)
