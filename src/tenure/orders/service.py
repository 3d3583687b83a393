"""Orders: create with priced lines, change status by the allowed transitions, list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    Integer,
    String,
    Table,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tenure.audit import recorder
from tenure.catalog import service as catalog_service
from tenure.core.errors import IllegalTransition, InvalidInput, NotFound, field_error
from tenure.core.money import quantize
from tenure.core.pagination import AnySelect, Slice, Sort, SortField, keyset_page
from tenure.core.time import as_utc, utcnow
from tenure.customers import service as customers_service
from tenure.db import Prepared, ReadsIn
from tenure.orders.models import Order, OrderLine, RevenueDay
from tenure.orders.schemas import (
    INITIAL,
    PURCHASED,
    TRANSITIONS,
    OrderCreate,
    OrderLineIn,
    OrderLineRead,
    OrderRead,
    OrderStatus,
    OrderUpdate,
)
from tenure.orders.totals import CustomerTotals, purchases, totals_of
from tenure.security.scope import RecordScope

SORT_FIELDS = (
    SortField("id", Order.id, int),
    SortField("ordered_at", Order.ordered_at, datetime),
    SortField("created_at", Order.created_at, datetime),
)
DEFAULT_SORT = "-id"


@dataclass(frozen=True)
class OrderFilter:
    customer_id: int | None = None
    status: str | None = None
    trashed: bool = False


def get(
    *, session: Session, order_id: int, scope: RecordScope, include_trashed: bool = False
) -> Order:
    """An order by id; ``NotFound`` when missing, in the trash, or of a customer out of
    ``scope`` (orders follow their customer's scope)."""
    order = session.get(Order, order_id)
    if (
        order is None
        or (order.deleted_at is not None and not include_trashed)
        or not customers_service.reaches(
            session=session, customer_id=order.customer_id, scope=scope
        )
    ):
        raise NotFound(f"There is no order {order_id}.")
    return order


@dataclass(frozen=True)
class PricedLines:
    """Order lines priced as an order in one currency would be, and their sum."""

    lines: list[OrderLine]
    total: Decimal


def price_lines(*, session: Session, lines: list[OrderLineIn], currency: str) -> PricedLines:
    """Price ``lines`` for an order in ``currency``; ``InvalidInput`` names each bad line.

    Orders use this when created or when a draft's lines change, and the order form uses it
    to show the total before saving, so both always agree. Nothing is written.
    """
    products = catalog_service.prices(session=session, product_ids={ln.product_id for ln in lines})
    errors: list[dict[str, Any]] = []
    priced: list[OrderLine] = []
    for i, line in enumerate(lines):
        product = products.get(line.product_id)
        loc: list[str | int] = ["body", "lines", i]
        if product is None:
            errors.append({"loc": [*loc, "product_id"], "msg": f"no product {line.product_id}"})
            continue
        if not product.active:
            errors.append(
                {"loc": [*loc, "product_id"], "msg": f"product {product.sku} is inactive"}
            )
            continue
        price = line.unit_price
        if price is None:
            if product.currency != currency:
                errors.append(
                    {
                        "loc": [*loc, "unit_price"],
                        "msg": f"product {product.sku} is priced in {product.currency}, "
                        f"the order in {currency}; give a unit_price",
                    }
                )
                continue
            price = product.unit_price
        if quantize(price, currency) != price:
            errors.append({"loc": [*loc, "unit_price"], "msg": f"too many decimals for {currency}"})
            continue
        priced.append(
            OrderLine(
                product_id=product.id,
                quantity=line.quantity,
                unit_price=price,
                line_total=price * line.quantity,
            )
        )
    if errors:
        raise InvalidInput("Some order lines are not valid.", errors=errors)
    return PricedLines(priced, sum((ln.line_total for ln in priced), Decimal(0)))


@dataclass(frozen=True)
class NewOrder:
    """An order checked and priced, not yet written."""

    customer_id: int
    status: str
    ordered_at: datetime
    currency: str
    notes: str | None
    lines: list[OrderLine]
    total: Decimal


def prepare(*, session: Session, data: OrderCreate, scope: RecordScope) -> NewOrder:
    """Check and price a new order without writing anything, so that its write
    transaction holds the write lock only to insert it (see ``place``)."""
    if data.status not in INITIAL:
        allowed = ", ".join(sorted(INITIAL))
        raise field_error("status", f"A new order starts as one of: {allowed}.")
    if not customers_service.exists_active(
        session=session, customer_id=data.customer_id, scope=scope
    ):
        raise field_error("customer_id", f"There is no customer {data.customer_id}.")
    priced = price_lines(session=session, lines=data.lines, currency=data.currency)
    return NewOrder(
        customer_id=data.customer_id,
        status=data.status.value,
        ordered_at=data.ordered_at or utcnow(),
        currency=data.currency,
        notes=data.notes,
        lines=priced.lines,
        total=priced.total,
    )


_ORDER: Table = Order.__table__  # type: ignore[assignment]  # typed as a FromClause
_LINE: Table = OrderLine.__table__  # type: ignore[assignment]
_INSERT_ORDER = (
    insert(_ORDER)
    .values(version=1)  # the first version, as the ORM numbers it
    .returning(_ORDER.c.id, _ORDER.c.created_at, _ORDER.c.updated_at)
)
_INSERT_LINES = insert(_LINE)
# The lines' ids in the order they were inserted, which is the order they are read in.
_LINE_IDS = Prepared(
    select(_LINE.c.id).where(_LINE.c.order_id == bindparam("order_id")).order_by(_LINE.c.id)
)


def place(*, session: Session, order: NewOrder) -> OrderRead:
    """Write a prepared order and its lines, count it in the revenue per day and record
    it in the audit log; returns the order as stored.

    Core inserts rather than a flush of the ORM: this runs while the writer holds the
    database's write lock, and every other writer waits for it."""
    conn = session.connection()
    values = {
        "customer_id": order.customer_id,
        "status": order.status,
        "ordered_at": order.ordered_at,
        "currency": order.currency,
        "total": order.total,
        "notes": order.notes,
    }
    order_id, created_at, updated_at = conn.execute(_INSERT_ORDER, values).one()
    lines = [
        {
            "product_id": ln.product_id,
            "quantity": ln.quantity,
            "unit_price": ln.unit_price,
            "line_total": ln.line_total,
        }
        for ln in order.lines
    ]
    # One executemany; RETURNING ids in order would take a statement per line on SQLite.
    conn.execute(_INSERT_LINES, [{"order_id": order_id, **ln} for ln in lines])
    line_ids = [row[0] for row in _LINE_IDS.all(conn, order_id=order_id)]
    _count_purchase(
        session, None, _purchased(order.status, order.ordered_at, order.currency, order.total)
    )
    # What a flush of the new Order would record: its values, the lines without their keys.
    recorder.add_created(
        session,
        entity_type="order",
        entity_id=str(order_id),
        values={"lines": lines, **values},
    )
    return OrderRead(
        id=order_id,
        customer_id=order.customer_id,
        status=OrderStatus(order.status),
        ordered_at=order.ordered_at,
        currency=order.currency,
        total=order.total,
        notes=order.notes,
        lines=[OrderLineRead(id=i, **ln) for i, ln in zip(line_ids, lines, strict=True)],
        created_at=created_at,
        updated_at=updated_at,
        deleted_at=None,
        version=1,
    )


def create(*, session: Session, data: OrderCreate, scope: RecordScope) -> Order:
    """A new order for an existing customer in ``scope``; prices default to the products'
    prices. A customer out of scope is refused as if there were none."""
    placed = place(session=session, order=prepare(session=session, data=data, scope=scope))
    return session.get_one(Order, placed.id)


def update(*, session: Session, order: Order, data: OrderUpdate) -> Order:
    """Change status (by the allowed transitions), date, notes, or a draft's lines."""
    changes = data.model_dump(exclude_unset=True)
    for required in ("status", "ordered_at", "lines"):
        if required in changes and changes[required] is None:
            raise field_error(required, f"{required} cannot be null.")
    if data.status is not None and data.status != order.status:
        current = OrderStatus(order.status)
        if data.status not in TRANSITIONS[current]:
            allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final)"
            raise IllegalTransition(
                f"An order that is {current} cannot become {data.status}; allowed: {allowed}."
            )
    before = _purchase(order)
    if data.lines is not None:
        if order.status != OrderStatus.DRAFT:
            raise field_error("lines", "Lines can be changed only while the order is a draft.")
        priced = price_lines(session=session, lines=data.lines, currency=order.currency)
        order.lines = priced.lines
        order.total = priced.total
    if data.status is not None:
        order.status = data.status.value
    if data.ordered_at is not None:
        order.ordered_at = data.ordered_at
    if "notes" in changes:
        order.notes = data.notes
    order.updated_at = utcnow()
    session.flush()
    _count_purchase(session, before, _purchase(order))
    return order


def trash(*, session: Session, order: Order) -> Order:
    """Move an order to the trash; it no longer counts in totals."""
    before = _purchase(order)
    order.deleted_at = utcnow()
    session.flush()
    _count_purchase(session, before, None)
    return order


def restore(*, session: Session, order_id: int, scope: RecordScope) -> Order:
    """Bring an order back from the trash."""
    order = get(session=session, order_id=order_id, scope=scope, include_trashed=True)
    before = _purchase(order)
    order.deleted_at = None
    session.flush()
    _count_purchase(session, before, _purchase(order))
    return order


# --- Revenue per day: kept with every change to an order ------------------------------

Purchase = tuple[date, str, Decimal]
_PURCHASED_STATUSES = frozenset(s.value for s in PURCHASED)
_REVENUE: Table = RevenueDay.__table__  # type: ignore[assignment]  # typed as a FromClause
_upserts: dict[str, Any] = {}


def _purchase(order: Order) -> Purchase | None:
    """The day (UTC), currency and total an order adds to revenue; None if it adds none."""
    if order.deleted_at is not None:
        return None
    return _purchased(order.status, order.ordered_at, order.currency, order.total)


def _purchased(status: str, ordered_at: datetime, currency: str, total: Decimal) -> Purchase | None:
    """What an order not in the trash adds to revenue; None if it adds none."""
    if status not in _PURCHASED_STATUSES:
        return None
    return as_utc(ordered_at).date(), currency, total


def _count_purchase(session: Session, before: Purchase | None, after: Purchase | None) -> None:
    """Move an order's total in the revenue per day from where it counted to where it does."""
    if before == after:
        return
    dialect = session.get_bind().dialect.name
    upsert = _upserts[dialect] if dialect in _upserts else _revenue_upsert(dialect)
    for purchase, sign in ((before, -1), (after, 1)):
        if purchase is not None:
            day, currency, total = purchase
            params = {"day": day, "currency": currency, "orders": sign, "total": total * sign}
            session.connection().execute(upsert, params)


def _revenue_upsert(dialect: str) -> Any:
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(_REVENUE).values(
        day=bindparam("day"),
        currency=bindparam("currency"),
        orders=bindparam("orders"),
        total=bindparam("total"),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[_REVENUE.c.day, _REVENUE.c.currency],
        set_={
            "orders": _REVENUE.c.orders + stmt.excluded.orders,
            "total": _REVENUE.c.total + stmt.excluded.total,
        },
    )
    _upserts[dialect] = stmt
    return stmt


def rebuild_revenue(*, connection: Connection) -> None:
    """Count the revenue per day again from the orders (after a bulk load of orders)."""
    order = _ORDER.c
    day = (
        cast(func.timezone("UTC", order.ordered_at), Date)
        if connection.dialect.name == "postgresql"
        else func.date(order.ordered_at)
    )
    purchases = (
        select(day, order.currency, func.count(), func.sum(order.total))
        .where(order.status.in_(sorted(_PURCHASED_STATUSES)), order.deleted_at.is_(None))
        .group_by(day, order.currency)
    )
    connection.execute(delete(_REVENUE))
    connection.execute(
        insert(_REVENUE).from_select(["day", "currency", "orders", "total"], purchases)
    )


def _scoped(stmt: AnySelect, scope: RecordScope) -> AnySelect:
    customers = customers_service.in_scope(scope)
    return stmt if customers is None else stmt.where(Order.customer_id.in_(customers))


def list_orders(
    *,
    session: Session,
    filters: OrderFilter,
    scope: RecordScope,
    sort: Sort,
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[Order]:
    """A page of the orders of the customers in ``scope``."""
    stmt = _scoped(select(Order), scope).where(
        Order.deleted_at.is_not(None) if filters.trashed else Order.deleted_at.is_(None)
    )
    if filters.customer_id is not None:
        stmt = stmt.where(Order.customer_id == filters.customer_id)
    if filters.status:
        stmt = stmt.where(Order.status == filters.status)
    return keyset_page(
        session,
        stmt,
        sort=sort,
        id_column=Order.id,
        cursor=cursor,
        limit=limit,
        count_cap=count_cap,
    )


# The totals read apart from the customer (answers to customer writes, the customer page,
# privacy exports): compiled once, run straight on the connection.
_TOTALS = Prepared(purchases(bindparam("customer_id")))


def customer_totals(*, session: ReadsIn, customer_id: int) -> CustomerTotals:
    """Order count, spend per currency, average order value and first and last order."""
    return totals_of(_TOTALS.all(session, customer_id=customer_id))


OPEN = (OrderStatus.PLACED, OrderStatus.PAID)


def open_count(*, session: Session, scope: RecordScope) -> int:
    """Orders of the customers in ``scope`` placed or paid but not yet shipped."""
    stmt = select(func.count(Order.id)).where(
        Order.status.in_([s.value for s in OPEN]), Order.deleted_at.is_(None)
    )
    return session.scalar(_scoped(stmt, scope)) or 0


def revenue_between(*, session: Session, start: datetime, end: datetime) -> dict[str, Decimal]:
    """Purchased order totals per currency with ``start <= ordered_at < end``.

    Between midnights (UTC), as a dashboard's months are, the revenue per day is summed."""
    start, end = as_utc(start), as_utc(end)
    if start.timetz() == _MIDNIGHT and end.timetz() == _MIDNIGHT:
        rows = session.execute(_REVENUE_BETWEEN, {"first": start.date(), "stop": end.date()}).all()
    else:
        rows = session.execute(
            select(Order.currency, func.sum(Order.total))
            .where(
                Order.ordered_at >= start,
                Order.ordered_at < end,
                Order.status.in_([s.value for s in PURCHASED]),
                Order.deleted_at.is_(None),
            )
            .group_by(Order.currency)
        ).all()
    return {currency: quantize(total, currency) for currency, total in rows}


_MIDNIGHT = time(tzinfo=UTC)
_REVENUE_BETWEEN = (
    select(_REVENUE.c.currency, func.sum(_REVENUE.c.total))
    .where(_REVENUE.c.day >= bindparam("first"), _REVENUE.c.day < bindparam("stop"))
    .group_by(_REVENUE.c.currency)
    .having(func.sum(_REVENUE.c.orders) > 0)
)


def recent(*, session: Session, scope: RecordScope, limit: int = 10) -> list[Order]:
    """The newest orders of the customers in ``scope``."""
    stmt = _scoped(select(Order), scope).where(Order.deleted_at.is_(None))
    return list(session.scalars(stmt.order_by(Order.id.desc()).limit(limit)))


def of_customer(*, session: Session, customer_id: int) -> list[Order]:
    """Every order of a customer, the trash included, oldest first (a privacy export)."""
    stmt = (
        select(Order).where(Order.customer_id == customer_id).order_by(Order.ordered_at, Order.id)
    )
    return list(session.scalars(stmt))


def clear_notes(*, session: Session, customer_id: int) -> int:
    """Remove the notes of a customer's orders (a privacy erasure); lines and amounts stay.
    Returns how many orders had notes."""
    cleared = 0
    for order in of_customer(session=session, customer_id=customer_id):
        if order.notes is not None:
            order.notes = None
            cleared += 1
    session.flush()
    return cleared


# --- Purchase history for analytics ---------------------------------------------------


@dataclass(frozen=True)
class ActivityRow:
    """One customer's purchases (orders placed, paid or shipped) in one currency and window.

    Days are whole UTC days counted from 1970-01-01; money is integer 1/10,000 units, so
    the sums are exact."""

    customer_id: int
    orders: int
    days: int
    first_day: int
    last_day: int
    revenue_units: int
    first_day_revenue_units: int


def _day_number(dialect: str) -> Any:
    """The UTC day of ``ordered_at`` as an integer, as each database computes it."""
    if dialect == "postgresql":
        return literal_column(
            "((sales_order.ordered_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01')", Integer
        )
    return literal_column(
        "CAST(julianday(date(sales_order.ordered_at)) - 2440587.5 AS INTEGER)", Integer
    )


def _purchased_between(start: datetime | None, end: datetime) -> list[Any]:
    conditions = [
        Order.status.in_([s.value for s in PURCHASED]),
        Order.deleted_at.is_(None),
        Order.ordered_at < end,
    ]
    if start is not None:
        conditions.append(Order.ordered_at >= start)
    return conditions


def purchase_activity(
    *, session: Session, currency: str, end: datetime, start: datetime | None = None
) -> list[ActivityRow]:
    """Per customer, in SQL: orders, distinct purchase days, first and last purchase day,
    revenue and the first day's revenue, over purchased orders in ``currency`` with
    ``start <= ordered_at < end``; ordered by customer id."""
    day = _day_number(session.get_bind().dialect.name)
    units = type_coerce(Order.total, BigInteger)
    per_day = (
        select(
            Order.customer_id.label("customer_id"),
            day.label("day"),
            func.count().label("n"),
            func.sum(units).label("spent"),
            func.row_number().over(partition_by=Order.customer_id, order_by=day).label("nth"),
        )
        .where(Order.currency == currency, *_purchased_between(start, end))
        .group_by(Order.customer_id, day)
        .subquery()
    )
    first_spent = case((per_day.c.nth == 1, per_day.c.spent), else_=0)
    stmt = (
        select(
            per_day.c.customer_id,
            cast(func.sum(per_day.c.n), BigInteger),
            func.count(),
            func.min(per_day.c.day),
            func.max(per_day.c.day),
            cast(func.sum(per_day.c.spent), BigInteger),
            cast(func.sum(first_spent), BigInteger),
        )
        .group_by(per_day.c.customer_id)
        .order_by(per_day.c.customer_id)
    )
    return [ActivityRow(*(int(v) for v in row)) for row in session.execute(stmt)]


def _raw_batches(session: Session, stmt: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``stmt`` as the driver returns them (plain tuples of ints and strings, no
    result processing), in lists of at most ``batch``: for reading millions of rows."""
    result = session.connection().execute(stmt)
    try:
        cursor = result.cursor
        while part := cursor.fetchmany(batch):
            yield list(part)
    finally:
        result.close()


def purchase_days(
    *, session: Session, currency: str, end: datetime, batch: int = 200_000
) -> Iterator[list[tuple[int, int, int, int]]]:
    """Per customer and UTC day, in SQL: (customer id, day number, orders, revenue units)
    over purchased orders in ``currency`` before ``end``, ordered by customer and day;
    streamed in lists of at most ``batch`` rows."""
    day = _day_number(session.get_bind().dialect.name)
    stmt = (
        select(
            Order.customer_id,
            day.label("day"),
            func.count(),
            cast(func.sum(type_coerce(Order.total, BigInteger)), BigInteger),
        )
        .where(Order.currency == currency, *_purchased_between(None, end))
        .group_by(Order.customer_id, day)
        .order_by(Order.customer_id, day)
    )
    yield from _raw_batches(session, stmt, batch)


def purchased_baskets(
    *, session: Session, currency: str, end: datetime, batch: int = 100_000
) -> Iterator[list[tuple[int, int, int, int, str]]]:
    """Per purchased order in ``currency`` before ``end``, aggregated in SQL: (order id,
    customer id, day number, lines, the lines' product ids joined by commas), in no
    particular order; streamed in lists of at most ``batch`` rows."""
    dialect = session.get_bind().dialect.name
    day = _day_number(dialect)
    if dialect == "postgresql":
        products = func.string_agg(cast(OrderLine.product_id, String), literal(","))
    else:
        products = func.group_concat(OrderLine.product_id, literal(","))
    stmt = (
        select(Order.id, Order.customer_id, day, func.count(), products)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.currency == currency, *_purchased_between(None, end))
        .group_by(Order.id)
    )
    yield from _raw_batches(session, stmt, batch)


def main_currency(*, session: Session) -> str | None:
    """The currency most purchased orders are in (None when nothing was bought)."""
    stmt = (
        select(Order.currency)
        .where(Order.status.in_([s.value for s in PURCHASED]), Order.deleted_at.is_(None))
        .group_by(Order.currency)
        .order_by(func.count().desc(), Order.currency)
        .limit(1)
    )
    return session.scalar(stmt)


def revenue_by_currency(*, session: Session, end: datetime) -> dict[str, tuple[int, Decimal]]:
    """Purchased orders and their total per currency before ``end``."""
    stmt = (
        select(Order.currency, func.count(), func.sum(Order.total))
        .where(*_purchased_between(None, end))
        .group_by(Order.currency)
        .order_by(Order.currency)
    )
    return {c: (int(n), quantize(total, c)) for c, n, total in session.execute(stmt)}


def purchased_lines(
    *, session: Session, currency: str, end: datetime, start: datetime | None = None
) -> list[tuple[int, int, int, int]]:
    """(order id, customer id, product id, day number) of every line of purchased orders in
    ``currency`` with ``start <= ordered_at < end``, ordered by customer, day and order."""
    day = _day_number(session.get_bind().dialect.name)
    stmt = (
        select(Order.id, Order.customer_id, OrderLine.product_id, day)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.currency == currency, *_purchased_between(start, end))
        .order_by(Order.customer_id, day, Order.id)
    )
    return [(int(o), int(c), int(p), int(d)) for o, c, p, d in session.execute(stmt)]


def products_bought(*, session: Session, customer_id: int, currency: str) -> set[int]:
    """The products of a customer's purchased orders in ``currency``."""
    stmt = (
        select(OrderLine.product_id)
        .join(Order, OrderLine.order_id == Order.id)
        .where(
            Order.customer_id == customer_id,
            Order.currency == currency,
            Order.status.in_([s.value for s in PURCHASED]),
            Order.deleted_at.is_(None),
        )
        .distinct()
    )
    return set(session.scalars(stmt))
