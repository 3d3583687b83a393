"""Orders in the browser: list, detail, status changes, and the order form with a live total.

The form prices its lines through ``orders_service.price_lines`` (the code that prices an
order when it is created), so the total shown before saving is the total that is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from tenure.catalog import service as catalog_service
from tenure.catalog.models import Product
from tenure.core.errors import IllegalTransition, InvalidInput, NotFound
from tenure.core.pagination import MAX_LIMIT, parse_sort
from tenure.core.routing import SessionRouter
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.deps import SessionDep
from tenure.orders import service
from tenure.orders.models import Order
from tenure.orders.schemas import (
    INITIAL,
    TRANSITIONS,
    OrderCreate,
    OrderLineIn,
    OrderStatus,
    OrderUpdate,
)
from tenure.security.models import User
from tenure.security.permissions import ORDERS_READ, ORDERS_WRITE
from tenure.security.scope import RecordScope
from tenure.web.forms import FieldErrors, FormDep, form_dict, parse, path_id
from tenure.web.messages import localize
from tenure.web.session import Csrf, PageScope, page_require
from tenure.web.templating import gettext_for, render

Reader = Annotated[User, page_require(ORDERS_READ)]
Writer = Annotated[User, page_require(ORDERS_WRITE)]
Gettext = Callable[[str], str]

router = SessionRouter(include_in_schema=False)
PAGE_SIZE = 50
SORTS = ("-id", "id", "-ordered_at", "ordered_at")
SUGGESTIONS = 8
MAX_LINES = 500
LINE_FIELDS = ("line", "product_id", "quantity", "unit_price")
CURRENCY = re.compile(r"^[A-Z]{3}$")
# New orders start in one of these, offered in this order.
START_STATUSES = [s for s in OrderStatus if s in INITIAL]


OrderId = Annotated[int, Depends(path_id("order"))]


@dataclass
class LineRow:
    """One product line of the order form, as typed (strings), keyed by its row number."""

    index: int
    product_id: str = ""
    quantity: str = "1"
    unit_price: str = ""


@dataclass
class Pricing:
    """What the form shows for its lines: per-row messages, line totals, and the total."""

    errors: dict[int, FieldErrors] = field(default_factory=dict)
    line_totals: dict[int, Decimal] = field(default_factory=dict)
    total: Decimal | None = None
    lines: list[OrderLineIn] = field(default_factory=list)


def _rows(form: FormData) -> list[LineRow]:
    columns = [[str(v) for v in form.getlist(name)] for name in LINE_FIELDS]
    rows = []
    for position, (index, product_id, quantity, unit_price) in enumerate(
        zip(*columns, strict=False)
    ):
        number = int(index) if index.isdigit() else position
        rows.append(LineRow(number, product_id.strip(), quantity.strip(), unit_price.strip()))
    return rows[:MAX_LINES]


def _line_messages(_: Gettext) -> dict[str, str]:
    return {
        "product_id": _("Choose a product that is on sale."),
        "quantity": _("Enter a whole number of at least 1."),
        "unit_price": _(
            "Give a price of 0 or more in the order's currency (at most its decimals), "
            "or leave it empty for the product's price."
        ),
    }


def _header_messages(_: Gettext) -> dict[str, str]:
    return {
        "customer_id": _("Choose a customer."),
        "status": _("Choose how the order starts."),
        "currency": _("Enter a three-letter currency code, like EUR."),
        "notes": _("Keep the notes to 10,000 characters."),
        "lines": _("Add at least one product line."),
    }


def _price(session: Session, rows: list[LineRow], currency: str, _: Gettext) -> Pricing:
    """Validate the typed lines, then price them with the order service."""
    messages = _line_messages(_)
    result = Pricing()
    indexes: list[int] = []
    for row in rows:
        if not row.product_id:
            continue  # a row without a product is an unused row, not an error
        quantity: object = int(row.quantity) if row.quantity.isdigit() else row.quantity or None
        line, errors = parse(
            OrderLineIn,
            {
                "product_id": row.product_id,
                "quantity": quantity,
                "unit_price": row.unit_price or None,
            },
            _,
        )
        if line is None:
            result.errors[row.index] = {f: messages.get(f, m) for f, m in errors.items()}
            continue
        indexes.append(row.index)
        result.lines.append(line)
    if not result.lines or not CURRENCY.match(currency):
        return result
    try:
        priced = service.price_lines(session=session, lines=result.lines, currency=currency)
    except InvalidInput as exc:
        for err in exc.errors or []:
            loc = list(err.get("loc", []))
            if len(loc) >= 4 and loc[1] == "lines" and isinstance(loc[2], int):
                name = str(loc[3])
                message = messages.get(name) or localize(str(err["msg"]), _)
                result.errors.setdefault(indexes[loc[2]], {})[name] = message
        return result
    result.line_totals = {i: ln.line_total for i, ln in zip(indexes, priced.lines, strict=True)}
    if not result.errors:
        result.total = priced.total
    return result


def _create_errors(exc: InvalidInput, messages: dict[str, str], _: Gettext) -> FieldErrors:
    """Messages for what ``orders_service.create`` refused, by form field."""
    found: FieldErrors = {}
    for err in exc.errors or []:
        loc = [str(part) for part in err.get("loc", [])]
        name = loc[1] if len(loc) > 1 else ""
        if name == "customer_id":
            found[name] = _("This customer no longer exists; choose another.")
        elif name in ("status", "currency", "notes"):
            found[name] = messages[name]
        else:  # lines that changed between the preview and saving (a product went inactive)
            found["lines"] = _("Some lines can no longer be priced; check them and save again.")
    return found or {"lines": messages["lines"]}


def _product_choices(session: Session) -> list[Product]:
    return catalog_service.list_products(
        session=session,
        filters=catalog_service.ProductFilter(active=True),
        sort=parse_sort("name", catalog_service.SORT_FIELDS, "name"),
        cursor=None,
        limit=MAX_LIMIT,
    ).items


def _customer_or_none(session: Session, customer_id: object, scope: RecordScope) -> Customer | None:
    if not isinstance(customer_id, int) and not (
        isinstance(customer_id, str) and customer_id.isdigit() and len(customer_id) < 19
    ):
        return None
    try:
        return customers_service.get(session=session, customer_id=int(customer_id), scope=scope)
    except NotFound:
        return None


def _suggest(session: Session, q: str, scope: RecordScope) -> list[Customer]:
    """The customers the user reaches whose words start with ``q``."""
    try:
        page = customers_service.list_customers(
            session=session,
            filters=customers_service.CustomerFilter(q=q[:100]),
            scope=scope,
            sort=None,
            cursor=None,
            limit=SUGGESTIONS,
        )
    except InvalidInput:
        return []  # nothing searchable typed yet (no letter or digit)
    return page.items


def _form_page(
    request: Request,
    session: Session,
    *,
    scope: RecordScope,
    values: dict[str, Any],
    rows: list[LineRow],
    errors: FieldErrors,
    pricing: Pricing | None = None,
    customer_q: str | None = None,
    status_code: int = 200,
) -> Response:
    customer = _customer_or_none(session, values.get("customer_id"), scope)
    products = _product_choices(session)
    currencies = sorted({p.currency for p in products} | {"EUR", values.get("currency") or "EUR"})
    context = {
        "values": values,
        "rows": rows,
        "errors": errors,
        "pricing": pricing or Pricing(),
        "currency": values.get("currency") or "EUR",
        "customer": customer,
        "customer_q": customer_q or "",
        "suggestions": (
            _suggest(session, customer_q, scope) if customer_q and not customer else None
        ),
        "products": products,
        "currencies": currencies,
        "statuses": START_STATUSES,
        "next_index": max((r.index for r in rows), default=-1) + 1,
    }
    return render(request, "orders/form.html", context, status_code=status_code)


def _detail(
    request: Request,
    session: Session,
    order: Order,
    *,
    scope: RecordScope,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    current = OrderStatus(order.status)
    context = {
        "order": order,
        "customer_name": customers_service.names(
            session=session, customer_ids={order.customer_id}, scope=scope
        ).get(order.customer_id),
        "product_names": catalog_service.names(
            session=session, product_ids={ln.product_id for ln in order.lines}
        ),
        "next_statuses": [s for s in OrderStatus if s in TRANSITIONS[current]],
        "notice": notice,
    }
    return render(request, "orders/detail.html", context, status_code=status_code)


@router.get("/orders")
def order_list(
    request: Request,
    session: SessionDep,
    _user: Reader,
    scope: PageScope,
    status: str | None = None,
    customer_id: int | None = None,
    sort: str | None = None,
    cursor: str | None = None,
) -> Response:
    status = status if status in set(OrderStatus) else None
    sort = sort if sort in SORTS else service.DEFAULT_SORT
    page = service.list_orders(
        session=session,
        filters=service.OrderFilter(customer_id=customer_id, status=status),
        scope=scope,
        sort=parse_sort(sort, service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=cursor or None,
        limit=PAGE_SIZE,
    )
    kept = {"status": status or "", "customer_id": customer_id or "", "sort": sort}
    kept = {k: v for k, v in kept.items() if v and not (k == "sort" and v == service.DEFAULT_SORT)}
    next_url = (
        "/orders?" + urlencode({**kept, "cursor": page.next_cursor}) if page.next_cursor else None
    )
    names = customers_service.names(
        session=session,
        customer_ids={o.customer_id for o in page.items}
        | ({customer_id} if customer_id is not None else set()),
        scope=scope,
    )
    context = {
        "orders": page.items,
        "next_url": next_url,
        "status": status or "",
        "customer_id": customer_id,
        "customer_name": names.get(customer_id) if customer_id is not None else None,
        "customer_names": names,
        "sort": sort,
        "sorts": SORTS,
        "statuses": list(OrderStatus),
        "filtered": bool(status or customer_id),
    }
    return render(request, "orders/list.html", context)


@router.get("/orders/new")
def order_new(
    request: Request,
    session: SessionDep,
    _user: Writer,
    scope: PageScope,
    customer_id: int | None = None,
    customer_q: str | None = None,
) -> Response:
    values = {"customer_id": customer_id, "status": OrderStatus.DRAFT.value, "currency": "EUR"}
    return _form_page(
        request,
        session,
        scope=scope,
        values=values,
        rows=[LineRow(0)],
        errors={},
        customer_q=customer_q,
    )


@router.post("/orders/new", dependencies=[Csrf])
def order_create(
    request: Request, session: SessionDep, _user: Writer, scope: PageScope, form: FormDep
) -> Response:
    _ = gettext_for(request)
    rows = _rows(form)
    header = form_dict(form, skip=(*LINE_FIELDS, "customer_q"))
    values = {k: header.get(k) for k in ("customer_id", "status", "currency", "notes")}
    currency = str(values["currency"] or "EUR").upper()
    values["currency"] = currency
    pricing = _price(session, rows, currency, _)
    messages = _header_messages(_)
    lines = [ln.model_dump() for ln in pricing.lines]
    data, found = parse(OrderCreate, {**values, "lines": lines}, _)
    errors = {f.split(".")[0]: messages.get(f.split(".")[0], m) for f, m in found.items()}
    if data is not None and not pricing.errors:
        try:
            order = service.create(session=session, data=data, scope=scope)
        except InvalidInput as exc:
            errors.update(_create_errors(exc, messages, _))
        else:
            return RedirectResponse(f"/orders/{order.id}", status_code=303)
    if pricing.errors:
        errors.pop("lines", None)
    return _form_page(
        request,
        session,
        scope=scope,
        values=values,
        rows=rows or [LineRow(0)],
        errors=errors,
        pricing=pricing,
        status_code=422,
    )


@router.post("/orders/preview", dependencies=[Csrf])
def order_preview(request: Request, session: SessionDep, _user: Writer, form: FormDep) -> Response:
    _ = gettext_for(request)
    rows = _rows(form)
    value = form.get("currency")
    currency = value.strip().upper() if isinstance(value, str) and value.strip() else "EUR"
    pricing = _price(session, rows, currency, _)
    context = {
        "rows": rows,
        "pricing": pricing,
        "currency": currency,
        "currency_ok": bool(CURRENCY.match(currency)),
        "oob": True,
    }
    return render(request, "orders/_total.html", context)


@router.get("/orders/new/line")
def order_line(request: Request, session: SessionDep, _user: Writer, index: int = 0) -> Response:
    context = {
        "row": LineRow(max(index, 0)),
        "products": _product_choices(session),
        "next_index": max(index, 0) + 1,
        "autofocus": True,
        "oob": True,
    }
    return render(request, "orders/_line.html", context)


@router.get("/orders/new/customers")
def customer_suggestions(
    request: Request, session: SessionDep, _user: Writer, scope: PageScope, customer_q: str = ""
) -> Response:
    q = customer_q.strip()
    context: dict[str, object] = {
        "suggestions": _suggest(session, q, scope) if q else None,
        "customer_q": q,
    }
    return render(request, "orders/_suggestions.html", context)


@router.get("/orders/new/customer")
def customer_picker(
    request: Request,
    session: SessionDep,
    _user: Writer,
    scope: PageScope,
    customer_id: int | None = None,
) -> Response:
    customer = _customer_or_none(session, customer_id, scope)
    context: dict[str, object] = {
        "customer": customer,
        "customer_q": "",
        "errors": {},
        "autofocus": True,
    }
    return render(request, "orders/_customer.html", context)


@router.get("/orders/{order_id}")
def order_detail(
    request: Request, order_id: OrderId, session: SessionDep, _user: Reader, scope: PageScope
) -> Response:
    order = service.get(session=session, order_id=order_id, scope=scope)
    return _detail(request, session, order, scope=scope)


@router.post("/orders/{order_id}/status", dependencies=[Csrf])
def order_status(
    request: Request,
    order_id: OrderId,
    session: SessionDep,
    _user: Writer,
    scope: PageScope,
    form: FormDep,
) -> Response:
    _ = gettext_for(request)
    order = service.get(session=session, order_id=order_id, scope=scope)
    version = form.get("version")
    if version is not None and version != str(order.version):
        notice = _("Someone changed this order a moment ago. Here it is as it is now.")
        return _detail(request, session, order, scope=scope, notice=notice, status_code=409)
    target = str(form.get("status") or "")
    try:
        service.update(session=session, order=order, data=OrderUpdate(status=OrderStatus(target)))
    except (ValueError, IllegalTransition):
        current = _(order.status)
        if TRANSITIONS[OrderStatus(order.status)]:
            notice = _(
                "This order is %(current)s, so it cannot become %(target)s. "
                "Use one of the status buttons below."
            ) % {"current": current, "target": _(target) if target in set(OrderStatus) else target}
        else:
            notice = _("This order is %(current)s; that is final, so its status cannot change.") % {
                "current": current
            }
        return _detail(request, session, order, scope=scope, notice=notice, status_code=409)
    return RedirectResponse(f"/orders/{order.id}", status_code=303)
