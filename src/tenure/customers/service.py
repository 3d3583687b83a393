"""Customers: create, read, update, trash, restore, list and search."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import Session

from tenure.core.errors import BadCursor, InvalidInput, NotFound, PermissionDenied, field_error
from tenure.core.pagination import (
    AnySelect,
    Slice,
    Sort,
    SortField,
    capped_count,
    decode_cursor,
    encode_cursor,
    keyset_page,
    parse_sort,
)
from tenure.core.time import utcnow
from tenure.customers import personal, search
from tenure.customers.models import Customer, CustomerSearchTerm, CustomerTag
from tenure.customers.schemas import CustomerCreate, CustomerDetail, CustomerRead, CustomerUpdate
from tenure.db import Prepared, ReadsIn, json_array_agg
from tenure.orders.totals import purchases, totals_of
from tenure.security import fields
from tenure.security.fields import InvalidPhone
from tenure.security.models import User
from tenure.security.scope import EVERYTHING, RecordScope

SORT_FIELDS = (
    SortField("id", Customer.id, int),
    SortField("name", Customer.name_sort, str),
    SortField("created_at", Customer.created_at, datetime),
    SortField("updated_at", Customer.updated_at, datetime),
)
DEFAULT_SORT = "-id"


@dataclass(frozen=True)
class CustomerFilter:
    q: str | None = None
    lifecycle_stage: str | None = None
    owner_id: int | None = None
    kind: str | None = None
    tag: str | None = None
    source: str | None = None
    email: str | None = None
    phone: str | None = None
    trashed: bool = False
    # Blind indexes of ``email`` and ``phone``, worked out by the service (``_indexed``).
    email_index: str | None = None
    phone_index: str | None = None


class OwnerNotAssignable(PermissionDenied):
    """Refused: the caller may not give a customer to that owner."""

    code = "owner-not-assignable"
    title = "You cannot assign customers to that owner"


def _not_found(customer_id: int) -> NotFound:
    return NotFound(f"There is no customer {customer_id}.")


def _visible(
    customer: Customer | None, scope: RecordScope, include_trashed: bool
) -> Customer | None:
    if customer is None or not scope.reaches(customer.owner_id):
        return None  # out of scope: as if it did not exist
    if customer.deleted_at is not None and not include_trashed:
        return None
    return customer


def get(
    *, session: Session, customer_id: int, scope: RecordScope, include_trashed: bool = False
) -> Customer:
    """A customer by id; ``NotFound`` when missing, in the trash or out of ``scope``."""
    customer = _visible(session.get(Customer, customer_id), scope, include_trashed)
    if customer is None:
        raise _not_found(customer_id)
    return customer


_CUSTOMER = Customer.__table__
_CUSTOMER_KEYS = tuple(c.key for c in _CUSTOMER.c)
# What a view copies as it is: everything but the sealed values and their indexes.
_PLAIN_KEYS = tuple(k for k in _CUSTOMER_KEYS if k not in personal.COLUMNS)
_TAG = CustomerTag.__table__
# Read on nearly every request: compiled once and run straight on the connection. One
# statement for the customer, their tags and their order totals: one row per currency
# they bought in (one row with no currency when they bought nothing).
_PURCHASES = purchases(bindparam("customer_id")).subquery()
_DETAIL = Prepared(
    select(
        *_CUSTOMER.c,
        select(json_array_agg(_TAG.c.tag).aggregate_order_by(_TAG.c.tag))
        .where(_TAG.c.customer_id == _CUSTOMER.c.id)
        .scalar_subquery()
        .label("tags"),
        *_PURCHASES.c,
    )
    .select_from(_CUSTOMER.outerjoin(_PURCHASES, true()))
    .where(_CUSTOMER.c.id == bindparam("customer_id"), _CUSTOMER.c.deleted_at.is_(None))
)
_TAGS_AT = _DETAIL.keys.index("tags")
_PURCHASES_AT = _DETAIL.keys.index("currency")


def read(
    *,
    session: ReadsIn,
    customer_id: int,
    scope: RecordScope,
    sealer: fields.Sealer,
    reveal: bool = False,
) -> CustomerDetail:
    """A customer by id as the API shows it (sensitive fields opened by ``sealer`` and
    masked unless ``reveal``), with their order summary; ``NotFound`` when missing, in
    the trash or out of ``scope``.

    The record ``get`` loads, read in one statement without making ORM objects and
    validated in one go: the cheap way to answer the most frequent request."""
    rows = _DETAIL.all(session, customer_id=customer_id)
    if not rows:
        raise _not_found(customer_id)
    values = dict(zip(_CUSTOMER_KEYS, rows[0], strict=False))
    if not scope.reaches(values["owner_id"]):
        raise _not_found(customer_id)
    tags = rows[0][_TAGS_AT] or []
    bought = [row[_PURCHASES_AT:] for row in rows if row[_PURCHASES_AT] is not None]
    shown = {**_shown(sealer, values, tags, reveal=reveal), "summary": totals_of(bought)}
    return CustomerDetail.model_validate(shown, from_attributes=True)


def _view(
    sealer: fields.Sealer, row: Any, tags: list[str], *, reveal: bool = False
) -> CustomerRead:
    return CustomerRead.model_validate(_shown(sealer, row, tags, reveal=reveal))


def _shown(sealer: fields.Sealer, row: Any, tags: list[str], *, reveal: bool) -> dict[str, Any]:
    """The fields of a customer (a row mapping or an ORM object) as the API shows them."""
    if isinstance(row, dict):
        values = {key: row[key] for key in _PLAIN_KEYS}
    else:
        values = {key: getattr(row, key) for key in _PLAIN_KEYS}
    shown = personal.revealed(sealer, row) if reveal else personal.masked(sealer, row)
    return {**values, **shown, "tags": tags}


def view(*, session: Session, customer: Customer, reveal: bool = False) -> CustomerRead:
    """A customer as the API and pages show it: sensitive fields masked, or in clear
    when ``reveal`` (the caller records a reveal in the audit log)."""
    return _view(fields.of(session), customer, customer.tags, reveal=reveal)


def views(*, session: Session, customers: Sequence[Customer]) -> list[CustomerRead]:
    """Customers as lists show them, sensitive fields masked (only what is shown is
    opened: the email, phone and address of these rows)."""
    sealer = fields.of(session)
    return [_view(sealer, c, c.tags) for c in customers]


def revealed_fields(*, session: Session, customer: Customer) -> dict[str, Any]:
    """A customer's sensitive fields in clear, by field name (None where empty)."""
    return personal.opened(fields.of(session), customer)


_ACTIVE = Prepared(
    select(_CUSTOMER.c.owner_id).where(
        _CUSTOMER.c.id == bindparam("customer_id"), _CUSTOMER.c.deleted_at.is_(None)
    )
)


def exists_active(*, session: Session, customer_id: int, scope: RecordScope) -> bool:
    """Whether a customer exists, is not in the trash and is in ``scope``."""
    row = _ACTIVE.first(session, customer_id=customer_id)
    return row is not None and scope.reaches(row[0])


_OWNER = Prepared(select(_CUSTOMER.c.owner_id).where(_CUSTOMER.c.id == bindparam("customer_id")))


def reaches(*, session: Session, customer_id: int, scope: RecordScope) -> bool:
    """Whether the customer (in the trash or not) is in ``scope``: their orders are."""
    if scope.owners is None:
        return True
    row = _OWNER.first(session, customer_id=customer_id)
    return row is not None and scope.reaches(row[0])


def in_scope(scope: RecordScope) -> Select[Any] | None:
    """The ids of the customers in ``scope``, as a subquery for other domains' lists
    (None: every customer, no condition needed)."""
    if scope.owners is None:
        return None
    return select(Customer.id).where(_owned_by(scope.owners))


def _owned_by(owners: frozenset[int]) -> ColumnElement[bool]:
    if len(owners) == 1:
        return Customer.owner_id == next(iter(owners))
    return Customer.owner_id.in_(sorted(owners))


def _check_owner(session: Session, owner_id: int | None, scope: RecordScope) -> None:
    if not scope.may_assign(owner_id):
        msg = (
            "You can assign customers only to yourself."
            if scope.owners is not None and len(scope.owners) == 1
            else "You can assign customers only to members of your team."
        )
        raise OwnerNotAssignable(msg, errors=[{"loc": ["body", "owner_id"], "msg": msg}])
    if owner_id is not None and session.get(User, owner_id) is None:
        raise field_error("owner_id", f"There is no user {owner_id}.")


def _set_terms(session: Session, customer: Customer) -> None:
    session.execute(delete(CustomerSearchTerm).where(CustomerSearchTerm.customer_id == customer.id))
    session.add_all(
        CustomerSearchTerm(term=term, customer_id=customer.id)
        for term in search.terms(name=customer.name, company_name=customer.company_name)
    )


def _seal(session: Session, customer: Customer, values: dict[str, Any]) -> None:
    """Store the sensitive ``values`` (by field name) sealed, with their blind indexes."""
    try:
        columns = personal.sealed(fields.of(session), values)
    except InvalidPhone:
        raise field_error(
            "phone",
            "This is not a phone number Tenure can read. Write it with its country code, "
            "e.g. +49 30 1234567.",
        ) from None
    for column, value in columns.items():
        setattr(customer, column, value)


def _sensitive(data: CustomerCreate | CustomerUpdate, *, only_set: bool) -> dict[str, Any]:
    sent = data.model_fields_set if only_set else set(personal.FIELDS)
    values: dict[str, Any] = {}
    for name in personal.FIELDS:
        if name not in sent:
            continue
        value = getattr(data, name)
        values[name] = value.model_dump(exclude_none=True) if name == "address" and value else value
    return values


def _set_tags(customer: Customer, tags: Sequence[str]) -> None:
    current = {row.tag: row for row in customer.tag_rows}
    customer.tag_rows = [current.get(tag) or CustomerTag(tag=tag) for tag in tags]


def create(*, session: Session, data: CustomerCreate, actor: User, scope: RecordScope) -> Customer:
    """A new customer, owned by ``data.owner_id`` or else by the actor; the owner must be
    someone the actor may assign customers to (``scope``)."""
    owner_id = data.owner_id if data.owner_id is not None else actor.id
    _check_owner(session, owner_id, scope)
    customer = Customer(
        kind=data.kind.value,
        name=data.name,
        name_sort=search.normalize(data.name),
        company_name=data.company_name,
        lifecycle_stage=data.lifecycle_stage.value,
        owner_id=owner_id,
        source=data.source,
        notes=data.notes,
        custom=data.custom,
    )
    _seal(session, customer, _sensitive(data, only_set=False))
    _set_tags(customer, data.tags)
    session.add(customer)
    session.flush()
    _set_terms(session, customer)
    session.flush()
    return customer


def update(
    *, session: Session, customer: Customer, data: CustomerUpdate, scope: RecordScope
) -> Customer:
    """Apply the fields that were sent; the version check guards against lost updates.
    A new owner must be someone the caller may assign customers to (``scope``)."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise field_error("name", "A customer must have a name.")
    for required in ("kind", "lifecycle_stage"):
        if required in changes and changes[required] is None:
            raise field_error(required, f"{required} cannot be null.")
    if "owner_id" in changes and changes["owner_id"] != customer.owner_id:
        _check_owner(session, changes["owner_id"], scope)
    kind = changes.get("kind", customer.kind)
    company = changes.get("company_name", customer.company_name)
    if kind == "company" and company:
        raise field_error(
            "company_name", "company_name is for people; a company's name goes in name"
        )
    if "tags" in changes:
        _set_tags(customer, changes.pop("tags") or [])
    sensitive = _sensitive(data, only_set=True)
    for name in sensitive:
        changes.pop(name)
    # Sealing is randomised: a value sent unchanged (a form sends every field) is kept
    # as it is, so that it is not recorded as changed.
    current = personal.opened(fields.of(session), customer, sensitive)
    _seal(session, customer, {k: v for k, v in sensitive.items() if v != current[k]})
    for field, value in changes.items():
        setattr(customer, field, value.value if hasattr(value, "value") else value)
    if "name" in changes:
        customer.name_sort = search.normalize(customer.name)
    customer.updated_at = utcnow()  # bumps the version even when only tags changed
    session.flush()
    if {"name", "company_name"} & changes.keys():
        _set_terms(session, customer)
        session.flush()
    return customer


def trash(*, session: Session, customer: Customer) -> Customer:
    """Move a customer to the trash (restorable)."""
    customer.deleted_at = utcnow()
    session.flush()
    return customer


def restore(*, session: Session, customer_id: int, scope: RecordScope) -> Customer:
    """Bring a customer back from the trash."""
    customer = get(session=session, customer_id=customer_id, scope=scope, include_trashed=True)
    if customer.deleted_at is not None:
        customer.deleted_at = None
        session.flush()
    return customer


def _filtered(stmt: AnySelect, f: CustomerFilter, scope: RecordScope | None) -> AnySelect:
    stmt = stmt.where(
        Customer.deleted_at.is_not(None) if f.trashed else Customer.deleted_at.is_(None)
    )
    if scope is not None and scope.owners is not None:
        stmt = stmt.where(_owned_by(scope.owners))
    if f.lifecycle_stage:
        stmt = stmt.where(Customer.lifecycle_stage == f.lifecycle_stage)
    if f.owner_id is not None:
        stmt = stmt.where(Customer.owner_id == f.owner_id)
    if f.kind:
        stmt = stmt.where(Customer.kind == f.kind)
    if f.source:
        stmt = stmt.where(Customer.source == f.source)
    if f.email_index is not None:
        stmt = stmt.where(Customer.email_index == f.email_index)
    if f.phone_index is not None:
        stmt = stmt.where(Customer.phone_index == f.phone_index)
    if f.tag:
        stmt = stmt.where(
            exists().where(and_(CustomerTag.customer_id == Customer.id, CustomerTag.tag == f.tag))
        )
    return stmt


def _indexed(session: Session, f: CustomerFilter) -> CustomerFilter:
    """``f`` with the blind indexes of its email and phone filters worked out."""
    if not f.email and not f.phone:
        return f
    sealer = fields.of(session)
    phone_index = None
    if f.phone:
        try:
            phone_index = sealer.phone_index(f.phone)
        except InvalidPhone:
            msg = "must be a phone number, e.g. +49 30 1234567"
            raise InvalidInput(
                f"phone: {msg}", errors=[{"loc": ["query", "phone"], "msg": msg}]
            ) from None
    email_index = sealer.email_index(f.email) if f.email else None
    return replace(f, email_index=email_index, phone_index=phone_index)


_EMAIL_QUERY = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_QUERY = re.compile(r"^\+?[0-9 ()./-]{5,30}$")


def _exact_kind(q: str) -> str | None:
    """Whether a (stripped) search is an email address ("email"), a phone number
    ("phone") or words (None)."""
    if _EMAIL_QUERY.fullmatch(q):
        return "email"
    if _PHONE_QUERY.fullmatch(q) and sum(c.isdigit() for c in q) >= 5:
        return "phone"
    return None


def _exact(session: Session, f: CustomerFilter) -> CustomerFilter | None:
    """A search that is an email address or a phone number, as an exact lookup by blind
    index (the filter without ``q``); None when it is neither, or when nothing matches it
    exactly (then its words are searched as usual)."""
    assert f.q is not None
    q = f.q.strip()
    kind = _exact_kind(q)
    if kind is None:
        return None
    sealer = fields.of(session)
    if kind == "email":
        index = sealer.email_index(q)
        if f.email_index not in (None, index):
            return None
        exact = replace(f, q=None, email_index=index)
    else:
        try:
            index = sealer.phone_index(q)
        except InvalidPhone:
            return None
        if f.phone_index not in (None, index):
            return None
        exact = replace(f, q=None, phone_index=index)
    # Whether anyone has it: the caller's scope narrows the list that follows.
    found = session.execute(_filtered(select(Customer.id), exact, EVERYTHING).limit(1)).first()
    return exact if found is not None else None


def _term_range(q: str) -> tuple[str, str]:
    bounds = search.prefix_range(q)
    if bounds is None:
        msg = "Type at least one letter or digit to search."
        raise InvalidInput(msg, errors=[{"loc": ["query", "q"], "msg": msg}])
    return bounds


def list_customers(
    *,
    session: Session,
    filters: CustomerFilter,
    scope: RecordScope,
    sort: Sort | None,
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[Customer]:
    """A page of the customers in ``scope``. With ``q`` and no explicit sort, matches come
    in term order; a ``q`` that is an email address or a phone number finds that customer
    exactly."""
    filters = _indexed(session, filters)
    if filters.q is not None:
        filters = _exact(session, filters) or filters
    if filters.q is not None and sort is None:
        return _search_page(session, filters, scope, cursor, limit, count_cap)
    sort = sort or parse_sort(None, SORT_FIELDS, DEFAULT_SORT)
    stmt = _filtered(select(Customer), filters, scope)
    if filters.q is not None:
        lo, hi = _term_range(filters.q)
        stmt = stmt.where(
            Customer.id.in_(
                select(CustomerSearchTerm.customer_id).where(
                    CustomerSearchTerm.term >= lo, CustomerSearchTerm.term < hi
                )
            )
        )
    return keyset_page(
        session,
        stmt,
        sort=sort,
        id_column=Customer.id,
        cursor=cursor,
        limit=limit,
        count_cap=count_cap,
    )


_TERM = CustomerSearchTerm.__table__
_EARLIER = _TERM.alias("earlier")


def _search_statement(
    filters: CustomerFilter,
    scope: RecordScope | None,
    *,
    lo: str | None = None,
    hi: str | None = None,
    after: tuple[str | None, int | None] | None = None,
) -> AnySelect:
    """The (term, customer id) rows of the customers with a term in [lo, hi), after
    ``after`` (a term and a customer id) when given, in term order.

    A customer matching by several words is listed once, at the first of their terms that
    matches; so every row is another customer and a page is never short. Values left
    None are bound when the statement runs ("lo", "hi", "after_term", "after_id")."""
    term_type = _TERM.c.term.type
    low, high = bindparam("lo", lo, type_=term_type), bindparam("hi", hi, type_=term_type)
    stmt = _filtered(
        select(_TERM.c.term, _TERM.c.customer_id)
        .join(_CUSTOMER, _CUSTOMER.c.id == _TERM.c.customer_id)
        .where(_TERM.c.term >= low, _TERM.c.term < high)
        .where(
            ~exists().where(
                _EARLIER.c.customer_id == _TERM.c.customer_id,
                _EARLIER.c.term >= low,
                _EARLIER.c.term < _TERM.c.term,
            )
        ),
        filters,
        scope,
    )
    if after is not None:
        bound = tuple_(
            bindparam("after_term", after[0], type_=term_type),
            bindparam("after_id", after[1], type_=BigInteger()),
        )
        stmt = stmt.where(tuple_(_TERM.c.term, _TERM.c.customer_id) > bound)
    return stmt.order_by(_TERM.c.term, _TERM.c.customer_id)


def _search_after(cursor: str | None) -> tuple[str | None, int | None] | None:
    if not cursor:
        return None
    values = decode_cursor(cursor)
    if (
        len(values) != 3
        or values[0] != "q"
        or not isinstance(values[1], str)
        or not isinstance(values[2], int)
    ):
        raise BadCursor("The cursor does not belong to this search. Start again without it.")
    return values[1], values[2]


def _search_query(
    filters: CustomerFilter,
    scope: RecordScope,
    cursor: str | None,
    count_cap: int | None,
    session: Session,
) -> tuple[AnySelect, tuple[int, bool] | None]:
    """The statement of a search page (without its limit) and the capped total if asked."""
    assert filters.q is not None
    lo, hi = _term_range(filters.q)
    total = None
    if count_cap:
        every = _search_statement(filters, scope, lo=lo, hi=hi, after=None)
        total = capped_count(session, every.with_only_columns(_TERM.c.customer_id), count_cap)
    return _search_statement(filters, scope, lo=lo, hi=hi, after=_search_after(cursor)), total


def _search_cursor(rows: Sequence[Any], limit: int) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(["q", last[0], last[1]])


def _search_page(
    session: Session,
    filters: CustomerFilter,
    scope: RecordScope,
    cursor: str | None,
    limit: int,
    count_cap: int | None,
) -> Slice[Customer]:
    stmt, total = _search_query(filters, scope, cursor, count_cap, session)
    rows = session.connection().execute(stmt.limit(limit + 1)).all()
    ids = [customer_id for _term, customer_id in rows[:limit]]
    found = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}
    items = [found[i] for i in ids if i in found]
    return Slice(items, _search_cursor(rows, limit), total)


def _plain_search(*, paged: bool) -> Prepared:
    stmt = _search_statement(CustomerFilter(), None, after=(None, None) if paged else None)
    return Prepared(stmt.add_columns(*_CUSTOMER.c).limit(bindparam("limit", type_=Integer())))


# The search people type into the box (a prefix, no filter): compiled once, both pages.
_FIND_FIRST = _plain_search(paged=False)
_FIND_AFTER = _plain_search(paged=True)
# The tags of up to TAGS_AT_ONCE customers: a fixed list of ids (the rest left empty), so
# the statement is the same every time and runs prepared.
TAGS_AT_ONCE = 50
_TAGS_OF = Prepared(
    select(_TAG.c.customer_id, _TAG.c.tag)
    .where(
        _TAG.c.customer_id.in_([bindparam(f"id{i}", type_=Integer()) for i in range(TAGS_AT_ONCE)])
    )
    .order_by(_TAG.c.customer_id, _TAG.c.tag)
)


def _tags_of(on: ReadsIn, ids: Sequence[int]) -> dict[int, list[str]]:
    """Each customer's tags, in order, by customer id."""
    tags: dict[int, list[str]] = {}
    for start in range(0, len(ids), TAGS_AT_ONCE):
        chunk = list(ids[start : start + TAGS_AT_ONCE])
        params = {f"id{i}": chunk[i] if i < len(chunk) else None for i in range(TAGS_AT_ONCE)}
        for customer_id, tag in _TAGS_OF.all(on, **params):
            tags.setdefault(customer_id, []).append(tag)
    return tags


def find(
    *,
    session: Session,
    filters: CustomerFilter,
    scope: RecordScope,
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[CustomerRead]:
    """Customers in ``scope`` whose name or company has a word starting with
    ``filters.q``, best matches (in term order) first, as the API shows them (masked);
    each customer once. A ``q`` that is an email address or a phone number finds that
    customer exactly."""
    assert filters.q is not None
    filters = _indexed(session, filters)
    exact = _exact(session, filters)
    if exact is not None:
        found = list_customers(
            session=session,
            filters=exact,
            scope=scope,
            sort=None,
            cursor=cursor,
            limit=limit,
            count_cap=count_cap,
        )
        return Slice(views(session=session, customers=found.items), found.next_cursor, found.total)
    assert filters.q is not None
    if filters == CustomerFilter(q=filters.q) and scope.unrestricted and not count_cap:
        return _typed(session, fields.of(session), filters.q, cursor, limit)
    stmt, total = _search_query(filters, scope, cursor, count_cap, session)
    statement = stmt.add_columns(*_CUSTOMER.c).limit(limit + 1)
    rows = session.connection().execute(statement).all()
    return _found(session, fields.of(session), rows, limit, total)


def find_typed(
    *, on: ReadsIn, sealer: fields.Sealer, q: str, cursor: str | None, limit: int
) -> Slice[CustomerRead] | None:
    """What ``find`` answers for a search as people type it into the box, over every
    customer (no filter, no count), read without a unit of work: the connection ``on``
    needs no transaction, as each page is one statement (and the tags of its rows).
    None when ``q`` is an email address or a phone number, which ``find`` first looks up
    exactly."""
    if _exact_kind(q.strip()) is not None:
        return None
    return _typed(on, sealer, q, cursor, limit)


def _typed(
    on: ReadsIn, sealer: fields.Sealer, q: str, cursor: str | None, limit: int
) -> Slice[CustomerRead]:
    """The customers with a word starting with ``q``, in term order, from ``cursor``."""
    lo, hi = _term_range(q)
    after = _search_after(cursor)
    params: dict[str, Any] = {"lo": lo, "hi": hi, "limit": limit + 1}
    if after is None:
        rows: Sequence[Any] = _FIND_FIRST.all(on, **params)
    else:
        rows = _FIND_AFTER.all(on, after_term=after[0], after_id=after[1], **params)
    return _found(on, sealer, rows, limit, None)


def _found(
    on: ReadsIn,
    sealer: fields.Sealer,
    rows: Sequence[Any],
    limit: int,
    total: tuple[int, bool] | None,
) -> Slice[CustomerRead]:
    """A search page from its rows (term, customer id, then the customer's columns; one
    more than ``limit`` when there is a next page)."""
    page = rows[:limit]
    tags = _tags_of(on, [row[1] for row in page])
    items = []
    for row in page:
        value = dict(zip(_CUSTOMER_KEYS, row[2:], strict=True))
        items.append(_view(sealer, value, tags.get(value["id"], [])))
    return Slice(items, _search_cursor(rows, limit), total)


def count_active(*, session: Session, scope: RecordScope) -> int:
    """How many customers in ``scope`` are not in the trash (for dashboards, not lists).

    For every customer: all of them less the trash. SQLite counts a whole table from its
    smallest index without reading a row, and the trash from its own small index."""
    if scope.owners is not None:
        return count(session=session, filters=CustomerFilter(), scope=scope)
    every = session.scalar(select(func.count()).select_from(Customer)) or 0
    trashed = session.scalar(
        select(func.count()).select_from(Customer).where(Customer.deleted_at.is_not(None))
    )
    return every - (trashed or 0)


def count(*, session: Session, filters: CustomerFilter, scope: RecordScope) -> int:
    """How many customers in ``scope`` match ``filters`` (exactly; for an export)."""
    if filters.q is not None:
        stmt, _total = _search_query(filters, scope, None, None, session)
        counted = stmt.with_only_columns(_TERM.c.customer_id).order_by(None).subquery()
    else:
        counted = _filtered(select(Customer.id), filters, scope).subquery()
    return session.scalar(select(func.count()).select_from(counted)) or 0


def recent(
    *, session: Session, scope: RecordScope, limit: int = 10, owner_id: int | None = None
) -> list[Customer]:
    """The most recently created customers in ``scope``, optionally of one owner."""
    stmt = _filtered(select(Customer), CustomerFilter(), scope)
    if owner_id is not None:
        stmt = stmt.where(Customer.owner_id == owner_id)
    return list(session.scalars(stmt.order_by(Customer.id.desc()).limit(limit)))


def names(*, session: Session, customer_ids: set[int], scope: RecordScope) -> dict[int, str]:
    """Names by id of the customers in ``scope``, for labelling lists of other records."""
    if not customer_ids:
        return {}
    stmt = select(Customer.id, Customer.name).where(Customer.id.in_(customer_ids))
    if scope.owners is not None:
        stmt = stmt.where(_owned_by(scope.owners))
    return {row[0]: row[1] for row in session.execute(stmt)}


def get_for_update(*, session: Session, customer_id: int, scope: RecordScope) -> Customer:
    """A customer by id, row-locked until the transaction ends (so a version check holds);
    ``NotFound`` when missing, in the trash or out of ``scope``."""
    customer = _visible(
        session.get(Customer, customer_id, with_for_update=True), scope, include_trashed=False
    )
    if customer is None:
        raise _not_found(customer_id)
    return customer


def iter_customers(
    *, session: Session, filters: CustomerFilter, scope: RecordScope, batch: int = 500
) -> Iterator[Customer]:
    """Every customer in ``scope`` matching ``filters``, newest first (best matches first
    for a search), read a page at a time: for exports of any size."""
    sort = None if filters.q is not None else parse_sort(None, SORT_FIELDS, DEFAULT_SORT)
    cursor: str | None = None
    while True:
        page = list_customers(
            session=session, filters=filters, scope=scope, sort=sort, cursor=cursor, limit=batch
        )
        yield from page.items
        session.expunge_all()  # a page at a time in memory, whatever the size
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def list_customers_filled(
    *,
    session: Session,
    filters: CustomerFilter,
    scope: RecordScope,
    sort: Sort | None,
    cursor: str | None,
    limit: int,
    max_reads: int = 5,
) -> Slice[Customer]:
    """``list_customers``, with a short search page topped up from the rows that follow.

    A search page lists each customer once, at their first matching word, so a page of
    ``limit`` rows can hold fewer customers (or none) while more follow. Reading on (at
    most ``max_reads`` times) keeps pages from coming up empty; a page may then hold
    somewhat more than ``limit`` customers.
    """
    page = list_customers(
        session=session, filters=filters, scope=scope, sort=sort, cursor=cursor, limit=limit
    )
    items, next_at = list(page.items), page.next_cursor
    reads = 1
    while next_at is not None and len(items) < limit and reads < max_reads:
        more = list_customers(
            session=session, filters=filters, scope=scope, sort=sort, cursor=next_at, limit=limit
        )
        items.extend(more.items)
        next_at = more.next_cursor
        reads += 1
    return Slice(items, next_at)


def trashed_ids(*, session: Session) -> set[int]:
    """Ids of the customers in the trash (a small set, read from its partial index)."""
    return set(session.scalars(select(Customer.id).where(Customer.deleted_at.is_not(None))))
