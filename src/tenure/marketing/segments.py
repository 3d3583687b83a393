"""The segment filter language, checked and compiled to one SELECT over customers.

A filter is a JSON document: a group ``{"all": [...]}`` (every condition holds) or
``{"any": [...]}`` (at least one holds), whose items are conditions
``{"field": ..., "op": ..., "value": ...}`` or further groups. See docs/marketing.md
for the fields and the operators each one takes.

Order figures (``order_count``, ``total_spent``, ``last_order_at``) come from one grouped
subquery over purchased orders (placed, paid or shipped, not in the trash), as a
customer's totals do; analytics fields from the latest stored analytics run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)

from tenure.analytics.models import AnalyticsCustomer
from tenure.core.money import quantize
from tenure.core.time import as_utc
from tenure.customers.models import Customer, CustomerTag
from tenure.marketing.errors import InvalidSegment, NoAnalyticsRun
from tenure.orders.models import Order
from tenure.orders.schemas import PURCHASED
from tenure.security.scope import RecordScope

MAX_CONDITIONS = 100
MAX_DEPTH = 5
COMPARE = ("lt", "lte", "gt", "gte", "between")
EQUALITY = ("eq", "ne", "in", "not_in")
DEFAULT_CURRENCY = "EUR"


@dataclass(frozen=True)
class FieldSpec:
    """A field a condition may name: its kind of value, operators and whether it may be
    empty (``is_null``)."""

    kind: str  # text, int, money, number, datetime, tags, json
    ops: tuple[str, ...]
    source: str  # customer, orders, analytics, tags, custom
    nullable: bool = True


FIELDS: dict[str, FieldSpec] = {
    "kind": FieldSpec("text", EQUALITY, "customer", nullable=False),
    "lifecycle_stage": FieldSpec("text", EQUALITY, "customer", nullable=False),
    "source": FieldSpec("text", (*EQUALITY, "is_null"), "customer"),
    "owner_id": FieldSpec("int", (*EQUALITY, "is_null"), "customer"),
    "created_at": FieldSpec("datetime", COMPARE, "customer", nullable=False),
    "tags": FieldSpec("tags", ("contains", "in", "not_in", "is_null"), "tags"),
    "total_spent": FieldSpec("money", ("eq", "ne", *COMPARE), "orders", nullable=False),
    "order_count": FieldSpec("int", ("eq", "ne", *COMPARE), "orders", nullable=False),
    "last_order_at": FieldSpec("datetime", (*COMPARE, "is_null"), "orders"),
    "rfm_segment": FieldSpec("text", (*EQUALITY, "is_null"), "analytics"),
    "churn_risk": FieldSpec("number", (*COMPARE, "is_null"), "analytics"),
    "clv": FieldSpec("money", (*COMPARE, "is_null"), "analytics"),
    "cluster": FieldSpec("int", (*EQUALITY, "is_null"), "analytics"),
}
CUSTOM = FieldSpec(
    "json", ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "is_null"), "custom"
)
OPS = ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "contains", "between", "is_null")


def spec_of(name: str) -> FieldSpec | None:
    if name.startswith("custom.") and 0 < len(name) - 7 <= 100:
        return CUSTOM
    return FIELDS.get(name)


def field_names() -> list[str]:
    return [*FIELDS, "custom.<key>"]


@dataclass
class _Problems:
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, loc: list[str | int], msg: str) -> None:
        self.errors.append({"loc": ["body", "definition", *loc], "msg": msg})


@dataclass
class _Build:
    """What compiling needs besides the filter: the order figures and the analytics run."""

    run_id: Callable[[], int]
    analytics: bool = False


# --- checking -------------------------------------------------------------------------


def check(definition: Any) -> None:
    """``InvalidSegment`` naming every bad field, operator or value of ``definition``."""
    problems = _Problems()
    count = [0]
    _check_group(definition, [], problems, count, 0)
    if problems.errors:
        first = problems.errors[0]
        raise InvalidSegment(
            f"{'.'.join(str(p) for p in first['loc'][2:]) or 'definition'}: {first['msg']}",
            errors=problems.errors,
        )


def _check_group(
    node: Any, loc: list[str | int], p: _Problems, count: list[int], depth: int
) -> None:
    if not isinstance(node, dict) or len(node) != 1 or next(iter(node)) not in ("all", "any"):
        p.add(loc, 'a group is {"all": [...]} or {"any": [...]}')
        return
    key = next(iter(node))
    items = node[key]
    if not isinstance(items, list):
        p.add([*loc, key], "must be a list of conditions")
        return
    if depth >= MAX_DEPTH:
        p.add([*loc, key], f"groups nest at most {MAX_DEPTH} deep")
        return
    for i, item in enumerate(items):
        count[0] += 1
        if count[0] > MAX_CONDITIONS:
            p.add([*loc, key, i], f"at most {MAX_CONDITIONS} conditions")
            return
        if isinstance(item, dict) and ("all" in item or "any" in item):
            _check_group(item, [*loc, key, i], p, count, depth + 1)
        else:
            _check_condition(item, [*loc, key, i], p)


def _check_condition(node: Any, loc: list[str | int], p: _Problems) -> None:
    if not isinstance(node, dict) or not isinstance(node.get("field"), str):
        p.add(loc, 'a condition is {"field": ..., "op": ..., "value": ...}')
        return
    extra = set(node) - {"field", "op", "value", "currency"}
    if extra:
        p.add(loc, f"unknown key(s): {', '.join(sorted(extra))}")
        return
    name = node["field"]
    spec = spec_of(name)
    if spec is None:
        p.add([*loc, "field"], f"unknown field {name!r}; use one of {', '.join(field_names())}")
        return
    op = node.get("op")
    if op not in spec.ops:
        p.add([*loc, "op"], f"{name}: operator {op!r} is not one of {', '.join(spec.ops)}")
        return
    if "currency" in node and spec.kind != "money":
        p.add([*loc, "currency"], f"{name}: only money fields take a currency")
        return
    if "currency" in node and not (
        isinstance(node["currency"], str)
        and len(node["currency"]) == 3
        and node["currency"].isupper()
    ):
        p.add([*loc, "currency"], f"{name}: currency must be an ISO 4217 code, e.g. EUR")
        return
    msg = _value_problem(spec, op, node.get("value"), "value" in node)
    if msg:
        p.add([*loc, "value"], f"{name}: {msg}")


def _value_problem(spec: FieldSpec, op: str, value: Any, given: bool) -> str | None:
    if op == "is_null":
        return None if isinstance(value, bool) else "is_null takes true or false"
    if not given:
        return "a value is required"
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > 1000:
            return f"{op} takes a list of 1 to 1000 values"
        for item in value:
            msg = _scalar_problem(spec, item)
            if msg:
                return msg
        return None
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            return "between takes a list of two values [low, high]"
        return _scalar_problem(spec, value[0]) or _scalar_problem(spec, value[1])
    return _scalar_problem(spec, value)


def _scalar_problem(spec: FieldSpec, value: Any) -> str | None:
    try:
        _parse(spec, value)
    except ValueError as exc:
        return str(exc)
    return None


def _parse(spec: FieldSpec, value: Any) -> Any:
    """The value as the column compares it; ``ValueError`` says what was expected."""
    kind = spec.kind
    if kind in ("text", "tags"):
        if not isinstance(value, str) or not value or len(value) > 200:
            raise ValueError("must be a text of 1 to 200 characters")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**31 - 1:
            raise ValueError("must be a whole number")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("must be a number")
        try:
            number = float(value)
        except ValueError:
            raise ValueError("must be a number") from None
        if number != number or abs(number) > 1e15:
            raise ValueError("must be a number")
        return number
    if kind == "money":
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ValueError('must be a decimal string, e.g. "100.00"')
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise ValueError('must be a decimal string, e.g. "100.00"') from None
        if not amount.is_finite() or abs(amount) > Decimal("1e12"):
            raise ValueError('must be a decimal string, e.g. "100.00"')
        return amount
    if kind == "datetime":
        if not isinstance(value, str):
            raise ValueError("must be a date or time in ISO 8601, e.g. 2026-01-31")
        try:
            return as_utc(datetime.fromisoformat(value))
        except (ValueError, OverflowError):
            raise ValueError("must be a date or time in ISO 8601, e.g. 2026-01-31") from None
    # json: custom attributes hold text, numbers or booleans
    if isinstance(value, bool) or (isinstance(value, str) and len(value) <= 200):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= 1e15:
        return value
    raise ValueError("must be a text, a number or true/false")


# --- compiling ------------------------------------------------------------------------


def needs_analytics(definition: dict[str, Any]) -> bool:
    """Whether the filter names a field of the analytics run."""
    return any(FIELDS.get(name, CUSTOM).source == "analytics" for name in _names(definition))


def _names(node: Any) -> list[str]:
    if isinstance(node, dict) and ("all" in node or "any" in node):
        items = node.get("all") or node.get("any") or []
        return [n for item in items for n in _names(item)]
    return [node["field"]] if isinstance(node, dict) and "field" in node else []


def members_query(
    definition: dict[str, Any],
    *,
    scope: RecordScope,
    run_id: Callable[[], int | None],
    dialect: str,
) -> Select[Any]:
    """The ids of the customers (in ``scope``, not in the trash) the filter selects, as
    one statement. ``run_id`` gives the latest analytics run when an analytics field is
    named; None there is ``NoAnalyticsRun``."""
    check(definition)

    def latest() -> int:
        found = run_id()
        if found is None:
            raise NoAnalyticsRun(
                "This segment filters on analytics fields, and there is no analytics run "
                "yet: run 'tenure analytics run' first.",
                errors=[{"loc": ["body", "definition"], "msg": "no analytics run"}],
            )
        return found

    build = _Build(run_id=latest)
    for name in _names(definition):
        spec = spec_of(name)
        if spec is not None and spec.source == "analytics":
            build.analytics = True
    orders = _orders_subquery(definition)
    stmt = select(Customer.id)
    if orders is not None:
        stmt = stmt.outerjoin(orders, orders.c.customer_id == Customer.id)
    if build.analytics:
        stmt = stmt.outerjoin(
            AnalyticsCustomer,
            and_(
                AnalyticsCustomer.customer_id == Customer.id,
                AnalyticsCustomer.run_id == build.run_id(),
            ),
        )
    stmt = stmt.where(Customer.deleted_at.is_(None), _group(definition, orders, dialect))
    if scope.owners is not None:
        stmt = stmt.where(Customer.owner_id.in_(sorted(scope.owners)))
    return stmt


def _currencies(node: Any) -> set[str]:
    if isinstance(node, dict) and ("all" in node or "any" in node):
        return {c for item in (node.get("all") or node.get("any") or []) for c in _currencies(item)}
    if isinstance(node, dict) and node.get("field") == "total_spent":
        return {node.get("currency", DEFAULT_CURRENCY)}
    return set()


def _orders_subquery(definition: dict[str, Any]) -> Any:
    names = set(_names(definition))
    if not names & {"order_count", "total_spent", "last_order_at"}:
        return None
    columns: list[Any] = [
        Order.customer_id.label("customer_id"),
        func.count(Order.id).label("order_count"),
        func.max(Order.ordered_at).label("last_order_at"),
    ]
    for currency in sorted(_currencies(definition)):
        columns.append(
            func.sum(case((Order.currency == currency, Order.total), else_=None)).label(
                f"spent_{currency}"
            )
        )
    return (
        select(*columns)
        .where(Order.status.in_([s.value for s in PURCHASED]), Order.deleted_at.is_(None))
        .group_by(Order.customer_id)
        .subquery("order_figures")
    )


def _group(node: dict[str, Any], orders: Any, dialect: str) -> ColumnElement[bool]:
    key = "all" if "all" in node else "any"
    parts = [
        _group(item, orders, dialect)
        if ("all" in item or "any" in item)
        else _condition(item, orders, dialect)
        for item in node[key]
    ]
    if not parts:
        return true() if key == "all" else false()
    return and_(*parts) if key == "all" else or_(*parts)


def _column(name: str, node: dict[str, Any], orders: Any) -> Any:
    if name in ("kind", "lifecycle_stage", "source", "owner_id", "created_at"):
        return getattr(Customer, name)
    if name == "order_count":
        return func.coalesce(orders.c.order_count, 0)
    if name == "last_order_at":
        return orders.c.last_order_at
    if name == "total_spent":
        currency = node.get("currency", DEFAULT_CURRENCY)
        return func.coalesce(orders.c[f"spent_{currency}"], Decimal(0))
    if name == "rfm_segment":
        return AnalyticsCustomer.segment
    if name in ("churn_risk", "clv", "cluster"):
        return getattr(AnalyticsCustomer, name)
    raise AssertionError(name)  # pragma: no cover - checked before


def _condition(node: dict[str, Any], orders: Any, dialect: str) -> ColumnElement[bool]:
    name, op, value = node["field"], node["op"], node.get("value")
    spec = spec_of(name)
    assert spec is not None
    if spec.source == "tags":
        return _tags(op, value)
    if spec.source == "custom":
        return _custom(name.removeprefix("custom."), op, value, dialect)
    column = _column(name, node, orders)
    if op == "is_null":
        null: ColumnElement[bool] = column.is_(None) if value else column.is_not(None)
        return null
    if spec.kind == "money" and name == "total_spent":
        currency = node.get("currency", DEFAULT_CURRENCY)
        parse: Callable[[Any], Any] = lambda v: quantize(_parse(spec, v), currency)  # noqa: E731
    else:
        parse = lambda v: _parse(spec, v)  # noqa: E731
    return _compare(column, op, value, parse)


def _compare(column: Any, op: str, value: Any, parse: Callable[[Any], Any]) -> ColumnElement[bool]:
    if op == "in":
        return column.in_([parse(v) for v in value])  # type: ignore[no-any-return]
    if op == "not_in":
        return or_(column.is_(None), column.not_in([parse(v) for v in value]))
    if op == "between":
        return column.between(parse(value[0]), parse(value[1]))  # type: ignore[no-any-return]
    if op == "ne":
        return or_(column.is_(None), column != parse(value))
    ops = {"eq": "__eq__", "lt": "__lt__", "lte": "__le__", "gt": "__gt__", "gte": "__ge__"}
    return getattr(column, ops[op])(parse(value))  # type: ignore[no-any-return]


def _has_tag(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(CustomerTag.customer_id == Customer.id, condition)


def _tags(op: str, value: Any) -> ColumnElement[bool]:
    if op == "contains":
        return _has_tag(CustomerTag.tag == value)
    if op == "in":
        return _has_tag(CustomerTag.tag.in_(value))
    if op == "not_in":
        return not_(_has_tag(CustomerTag.tag.in_(value)))
    # is_null: true for customers without any tag
    return not_(_has_tag(true())) if value else _has_tag(true())


def _custom(key: str, op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    element = Customer.custom[key]
    if op == "is_null":
        present = func.coalesce(element.as_string(), element.as_float()).is_not(None)
        return not_(present) if value else present
    sample = value[0] if isinstance(value, list) else value
    if isinstance(sample, bool):
        column: Any = _typed(element, "boolean", element.as_boolean(), dialect)
    elif isinstance(sample, int | float):
        column = _typed(element, "number", element.as_float(), dialect)
    else:
        column = element.as_string()
    return _compare(column, op, value, lambda v: v)


def _typed(element: Any, json_type: str, converted: Any, dialect: str) -> Any:
    """``converted`` where the attribute holds a JSON ``json_type``, else NULL: PostgreSQL
    refuses to cast a text such as "large" to a number; SQLite compares it as it is."""
    if dialect != "postgresql":
        return converted
    return case((func.jsonb_typeof(element) == json_type, converted), else_=None)
