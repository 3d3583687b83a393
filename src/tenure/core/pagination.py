"""Keyset (cursor) pagination: stable, index-driven, never an unbounded COUNT(*)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import BigInteger, Select, bindparam, func, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from tenure.core.errors import BadCursor, InvalidInput
from tenure.core.time import as_utc

T = TypeVar("T")
AnySelect = Select[*tuple[Any, ...]]
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Cursors carry ids and sort values that fit a database integer; anything larger is forged.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class Page(BaseModel, Generic[T]):
    """A page of a list. ``total`` is present only when ``?count=true`` was asked for."""

    items: list[T]
    next_cursor: str | None
    total: int | None = None
    total_capped: bool | None = None


@dataclass(frozen=True)
class SortField:
    """A column a list may be ordered by; the record id breaks ties."""

    name: str
    column: InstrumentedAttribute[Any]
    kind: type = str


@dataclass(frozen=True)
class Sort:
    field: SortField
    descending: bool

    @property
    def token(self) -> str:
        return ("-" if self.descending else "") + self.field.name


def parse_sort(value: str | None, fields: Sequence[SortField], default: str) -> Sort:
    """Parse ``?sort=name`` / ``?sort=-created_at`` against the allowed fields."""
    raw = value or default
    descending = raw.startswith("-")
    name = raw.lstrip("-+")
    for f in fields:
        if f.name == name:
            return Sort(f, descending)
    allowed = ", ".join(f.name for f in fields)
    raise InvalidInput(
        f"Cannot sort by {name!r}; use one of {allowed} (prefix with - for descending).",
        errors=[{"loc": ["query", "sort"], "msg": f"must be one of {allowed}"}],
    )


def _encode(values: list[Any]) -> str:
    raw = orjson.dumps(values)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise BadCursor(
            "The cursor is not one this server issued. Start again without it."
        ) from exc
    if not isinstance(values, list) or any(
        isinstance(v, int) and not _INT64_MIN <= v <= _INT64_MAX for v in values
    ):
        raise BadCursor("The cursor is not one this server issued. Start again without it.")
    return values


def _cursor_value(field: SortField, raw: Any) -> Any:
    if field.kind is datetime and isinstance(raw, str):
        try:
            return as_utc(datetime.fromisoformat(raw))
        except (ValueError, OverflowError) as exc:
            raise BadCursor("The cursor is not one this server issued. Start again.") from exc
    if field.kind is int and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if field.kind is str and isinstance(raw, str):
        return raw
    raise BadCursor("The cursor does not match this list's sort order. Start again without it.")


def apply_keyset(
    stmt: AnySelect, *, sort: Sort, id_column: InstrumentedAttribute[int], cursor: str | None
) -> AnySelect:
    """Order ``stmt`` by the sort field then id, starting after ``cursor``."""
    col = sort.field.column
    if cursor:
        values = _decode(cursor)
        if len(values) != 3 or values[0] != sort.token or not isinstance(values[2], int):
            raise BadCursor("The cursor does not match this list's sort order. Start again.")
        after = _cursor_value(sort.field, values[1])
        key = tuple_(col, id_column)
        bound = tuple_(
            # Integers bind as BIGINT: a forged value compares instead of overflowing an INT.
            bindparam(None, after, type_=BigInteger() if sort.field.kind is int else col.type),
            bindparam(None, values[2], type_=BigInteger()),
        )
        stmt = stmt.where(key < bound if sort.descending else key > bound)
    if sort.descending:
        return stmt.order_by(col.desc(), id_column.desc())
    return stmt.order_by(col.asc(), id_column.asc())


def next_cursor(rows: Sequence[Any], *, sort: Sort, limit: int) -> str | None:
    """The cursor after the last row, or None when this was the last page."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    value = getattr(last, sort.field.column.key)
    if isinstance(value, datetime):
        value = value.isoformat()
    return _encode([sort.token, value, last.id])


def encode_cursor(values: list[Any]) -> str:
    return _encode(values)


def decode_cursor(cursor: str) -> list[Any]:
    return _decode(cursor)


def capped_count(session: Session, stmt: AnySelect, cap: int) -> tuple[int, bool]:
    """Count rows of ``stmt`` up to ``cap`` + 1; returns (count, capped)."""
    limited = stmt.order_by(None).limit(cap + 1).subquery()
    total = session.scalar(select(func.count()).select_from(limited)) or 0
    return min(total, cap), total > cap


def check_limit(limit: int) -> int:
    if limit < 1 or limit > MAX_LIMIT:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_LIMIT}.",
            errors=[{"loc": ["query", "limit"], "msg": f"must be between 1 and {MAX_LIMIT}"}],
        )
    return limit


@dataclass(frozen=True)
class Slice(Generic[T]):
    """What a service returns for a list: one page, the next cursor, a total if asked."""

    items: list[T]
    next_cursor: str | None
    total: tuple[int, bool] | None = None


def keyset_page(
    session: Session,
    stmt: AnySelect,
    *,
    sort: Sort,
    id_column: InstrumentedAttribute[int],
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[Any]:
    """Run ``stmt`` (selecting one entity) as one keyset page."""
    total = capped_count(session, stmt, count_cap) if count_cap else None
    ordered = apply_keyset(stmt, sort=sort, id_column=id_column, cursor=cursor)
    rows = list(session.scalars(ordered.limit(limit + 1)))
    return Slice(rows[:limit], next_cursor(rows, sort=sort, limit=limit), total)


def to_page(result: Slice[Any], item: Any, page: type[Page[Any]] = Page) -> Page[Any]:
    """The API shape of a service's ``Slice``: ``item`` converts each record; ``page`` is
    the (parametrized) page model to build, e.g. ``Page[CustomerRead]``."""
    return page(
        items=[item(r) for r in result.items],
        next_cursor=result.next_cursor,
        total=result.total[0] if result.total else None,
        total_capped=result.total[1] if result.total else None,
    )
