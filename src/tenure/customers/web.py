"""Customer pages: list and search, the customer 360 page, create, edit, trash and restore.

Thin handlers over ``customers.service`` (and ``orders.service`` for the figures): they
parse the query or form, call the service and render; the rules live in the services.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import BackgroundTasks, Depends, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from starlette.datastructures import FormData

from tenure.analytics import web as analytics_web
from tenure.audit import service as audit_service
from tenure.audit.models import AuditEntry
from tenure.audit.recorder import MASK
from tenure.core.errors import InvalidInput, NotFound, PermissionDenied
from tenure.core.pagination import MAX_LIMIT, Sort, parse_sort
from tenure.core.routing import SessionRouter
from tenure.customers import exports, personal, privacy, service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate, CustomerUpdate, Kind, LifecycleStage
from tenure.deps import SessionDep
from tenure.orders import service as orders_service
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import (
    ANALYTICS_READ,
    CUSTOMERS_DELETE,
    CUSTOMERS_ERASE,
    CUSTOMERS_EXPORT,
    CUSTOMERS_READ,
    CUSTOMERS_REVEAL,
    CUSTOMERS_WRITE,
    ORDERS_READ,
    has_permission,
)
from tenure.security.scope import RecordScope
from tenure.timeline import web as timeline_web
from tenure.web.forms import FieldErrors, FormDep, errors_of, form_dict, parse, path_id
from tenure.web.i18n import Formatter
from tenure.web.session import Csrf, PageScope, page_require
from tenure.web.templating import gettext_for, is_htmx, render, request_locale

router = SessionRouter(include_in_schema=False)

PAGE_SIZE = 50
ORDERS_PAGE_SIZE = 20
# The choices of the sort select; "" is the service default (newest, or best match).
SORTS = ("", "name", "-name", "-created_at", "created_at", "-updated_at", "updated_at")
SORTABLE_COLUMNS = ("name", "created_at", "updated_at")
ADDRESS_PARTS = ("line1", "line2", "city", "region", "postal_code", "country")
# Every field of the create and edit forms, in the order they are shown and compared.
FORM_FIELDS = (
    "name",
    "kind",
    "company_name",
    "email",
    "phone",
    *(f"address.{part}" for part in ADDRESS_PARTS),
    "birth_date",
    "tax_id",
    "lifecycle_stage",
    "owner_id",
    "tags",
    "source",
    "notes",
)
# The fields that go to the schema as they are (address and tags are reshaped).
_PLAIN_FIELDS = tuple(f for f in FORM_FIELDS if f != "tags" and not f.startswith("address."))

Reader = Annotated[User, page_require(CUSTOMERS_READ)]
Writer = Annotated[User, page_require(CUSTOMERS_WRITE)]
Deleter = Annotated[User, page_require(CUSTOMERS_DELETE)]
Exporter = Annotated[User, page_require(CUSTOMERS_EXPORT)]
Eraser = Annotated[User, page_require(CUSTOMERS_ERASE)]
Revealer = Annotated[User, page_require(CUSTOMERS_REVEAL)]
Values = dict[str, str]


CustomerId = Annotated[int, Depends(path_id("customer"))]


def load_customer(customer_id: CustomerId, session: SessionDep, scope: PageScope) -> Customer:
    """The customer named in the path (not in the trash, in the user's scope), or a 404
    page."""
    return service.get(session=session, customer_id=customer_id, scope=scope)


CustomerDep = Annotated[Customer, Depends(load_customer)]


def field_labels(gettext: Callable[[str], str]) -> dict[str, str]:
    """The label of each form field, in the reader's language."""
    return {
        "name": gettext("Name"),
        "kind": gettext("Kind"),
        "company_name": gettext("Company"),
        "email": gettext("Email"),
        "phone": gettext("Phone"),
        "address.line1": gettext("Address line 1"),
        "address.line2": gettext("Address line 2"),
        "address.city": gettext("City"),
        "address.region": gettext("Region"),
        "address.postal_code": gettext("Postal code"),
        "address.country": gettext("Country"),
        "birth_date": gettext("Birth date"),
        "tax_id": gettext("Tax ID"),
        "lifecycle_stage": gettext("Lifecycle stage"),
        "owner_id": gettext("Owner"),
        "tags": gettext("Tags"),
        "source": gettext("Source"),
        "notes": gettext("Notes"),
    }


# ---------------------------------------------------------------- list and search


@dataclass(frozen=True)
class ListQuery:
    """What the list shows, as read from (and written back to) its URL."""

    q: str | None = None
    lifecycle_stage: str | None = None
    owner_id: int | None = None
    tag: str | None = None
    sort: str = ""
    limit: int = PAGE_SIZE

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.q, self.lifecycle_stage, self.owner_id, self.tag))

    def filters(self) -> service.CustomerFilter:
        return service.CustomerFilter(
            q=self.q, lifecycle_stage=self.lifecycle_stage, owner_id=self.owner_id, tag=self.tag
        )

    def service_sort(self) -> Sort | None:
        """None asks the service for best matches first (a search without a chosen order)."""
        if not self.sort and self.q is not None:
            return None
        return parse_sort(self.sort or None, service.SORT_FIELDS, service.DEFAULT_SORT)

    def url(self, **changes: Any) -> str:
        """This list's address with ``changes``; empty values are left out."""
        params: dict[str, Any] = {
            "q": self.q,
            "lifecycle_stage": self.lifecycle_stage,
            "owner_id": self.owner_id,
            "tag": self.tag,
            "sort": self.sort or None,
            "limit": self.limit if self.limit != PAGE_SIZE else None,
        }
        params.update(changes)
        kept = {k: v for k, v in params.items() if v is not None and v != ""}
        return "/customers" + ("?" + urlencode(kept) if kept else "")


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _bad(param: str, msg: str) -> InvalidInput:
    return InvalidInput(f"{param}: {msg}", errors=[{"loc": ["query", param], "msg": msg}])


def list_query(
    q: str | None = None,
    lifecycle_stage: str | None = None,
    owner_id: str | None = None,
    tag: str | None = None,
    sort: str | None = None,
    limit: str | None = None,
) -> ListQuery:
    """Read the list's query string; an unknown value is refused, not silently ignored."""
    stage = _blank(lifecycle_stage)
    if stage is not None and stage not in {s.value for s in LifecycleStage}:
        raise _bad("lifecycle_stage", "must be one of lead, prospect, customer, churned")
    owner = _blank(owner_id)
    if owner is not None and not (owner.isdigit() and len(owner) < 19):
        raise _bad("owner_id", "must be a user id")
    order = _blank(sort) or ""
    if order not in SORTS:
        raise _bad("sort", "must be one of " + ", ".join(s for s in SORTS if s))
    size = _blank(limit)
    if size is not None and not (size.isdigit() and 1 <= int(size) <= MAX_LIMIT):
        raise _bad("limit", f"must be between 1 and {MAX_LIMIT}")
    return ListQuery(
        q=_blank(q),
        lifecycle_stage=stage,
        owner_id=int(owner) if owner else None,
        tag=_blank(tag),
        sort=order,
        limit=int(size) if size else PAGE_SIZE,
    )


ListQueryDep = Annotated[ListQuery, Depends(list_query)]


@dataclass(frozen=True)
class Column:
    """A sortable column header: where clicking it leads and how the list is sorted now."""

    url: str
    state: str  # "ascending", "descending" or "none" (the values of aria-sort)


def sort_columns(query: ListQuery) -> dict[str, Column]:
    columns = {}
    for name in SORTABLE_COLUMNS:
        if query.sort == name:
            columns[name] = Column(query.url(sort="-" + name), "ascending")
        elif query.sort == "-" + name:
            columns[name] = Column(query.url(sort=name), "descending")
        else:
            first = name if name == "name" else "-" + name  # names A-Z, dates newest first
            columns[name] = Column(query.url(sort=first), "none")
    return columns


def wants_fragment(request: Request) -> bool:
    """An HTMX swap of the results, not a history restore (which needs the whole page)."""
    return is_htmx(request) and request.headers.get("hx-history-restore-request") != "true"


def _user_options(
    users: Sequence[User], allowed: Callable[[int], bool], keep: int | None = None
) -> list[tuple[int, str]]:
    return [(u.id, u.name) for u in users if (u.is_active and allowed(u.id)) or u.id == keep]


def _trashed(session: Session, raw: str | None, scope: RecordScope) -> Customer | None:
    """The customer just moved to the trash (for the undo notice), if ``raw`` names one."""
    if not raw or not raw.isdigit() or len(raw) > 18:
        return None
    try:
        customer = service.get(
            session=session, customer_id=int(raw), scope=scope, include_trashed=True
        )
    except NotFound:
        return None
    return customer if customer.deleted_at is not None else None


@router.get("/customers")
def customer_list(
    request: Request,
    session: SessionDep,
    user: Reader,
    scope: PageScope,
    query: ListQueryDep,
    cursor: str | None = None,
    deleted: str | None = None,
) -> Response:
    result = service.list_customers_filled(
        session=session,
        filters=query.filters(),
        scope=scope,
        sort=query.service_sort(),
        cursor=_blank(cursor),
        limit=query.limit,
    )
    users = security_service.list_users(session=session)
    context = {
        "query": query,
        "customers": service.views(session=session, customers=result.items),
        "next_url": query.url(cursor=result.next_cursor) if result.next_cursor else None,
        "columns": sort_columns(query),
        "owners": {u.id: u.name for u in users},
        "owner_options": _user_options(users, scope.reaches, keep=query.owner_id),
        "stages": [s.value for s in LifecycleStage],
        "export_url": (
            query.url().replace("/customers", "/customers/export.csv", 1)
            if has_permission(user.role, CUSTOMERS_EXPORT)
            else None
        ),
    }
    headers = {"Vary": "HX-Request"}
    if wants_fragment(request):
        # The address bar shows the clean, shareable address of what is listed.
        headers["HX-Push-Url"] = query.url(cursor=_blank(cursor))
        return render(request, "customers/_results.html", context, headers=headers)
    context["deleted"] = _trashed(session, deleted, scope)
    return render(request, "customers/list.html", context, headers=headers)


@router.get("/customers/trash")
def customer_trash(
    request: Request,
    session: SessionDep,
    _user: Reader,
    scope: PageScope,
    cursor: str | None = None,
) -> Response:
    # Trashing writes the row, so the latest updated are the latest trashed.
    result = service.list_customers(
        session=session,
        filters=service.CustomerFilter(trashed=True),
        scope=scope,
        sort=parse_sort("-updated_at", service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=_blank(cursor),
        limit=PAGE_SIZE,
    )
    next_url = "/customers/trash?" + urlencode({"cursor": result.next_cursor})
    return render(
        request,
        "customers/trash.html",
        {
            "customers": service.views(session=session, customers=result.items),
            "next_url": next_url if result.next_cursor else None,
        },
    )


@router.get("/customers/export.csv")
def export_list(
    request: Request, session: SessionDep, _user: Exporter, scope: PageScope, query: ListQueryDep
) -> Response:
    """The listed customers (every page, with the list's filters) as a CSV download;
    recorded in the audit log before it is sent."""
    filters = query.filters()
    exports.record(session=session, filters=filters, scope=scope)
    return StreamingResponse(
        exports.lines(sessions=request.app.state.sessions, filters=filters, scope=scope),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="customers.csv"',
            "Cache-Control": "no-store",
        },
    )


# ---------------------------------------------------------------- create and edit


def values_of(session: Session, customer: Customer) -> Values:
    """A customer's fields as the form shows them: sensitive ones in clear (the caller
    records the reveal, see ``_revealed``)."""
    clear = service.revealed_fields(session=session, customer=customer)
    address = clear["address"] or {}
    values = {
        "name": customer.name,
        "kind": customer.kind,
        "company_name": customer.company_name or "",
        "email": clear["email"] or "",
        "phone": clear["phone"] or "",
        "birth_date": clear["birth_date"].isoformat() if clear["birth_date"] else "",
        "tax_id": clear["tax_id"] or "",
        "lifecycle_stage": customer.lifecycle_stage,
        "owner_id": str(customer.owner_id) if customer.owner_id is not None else "",
        "tags": ", ".join(sorted(customer.tags)),
        "source": customer.source or "",
        "notes": customer.notes or "",
    }
    values.update({f"address.{p}": str(address.get(p) or "") for p in ADDRESS_PARTS})
    return values


def values_from_form(form: FormData) -> Values:
    """The submitted fields as text, trimmed; tags tidied the way they will be stored."""
    raw = form_dict(form, skip=("version",))
    values = {name: str(raw.get(name) or "") for name in FORM_FIELDS}
    tags = sorted({t.strip() for t in values["tags"].split(",") if t.strip()})
    values["tags"] = ", ".join(tags)
    values["address.country"] = values["address.country"].upper()
    return values


def schema_input(values: Values) -> dict[str, Any]:
    """The form's values shaped for ``CustomerCreate``/``CustomerUpdate``."""
    data: dict[str, Any] = {name: values[name] or None for name in _PLAIN_FIELDS}
    address = {p: values[f"address.{p}"] or None for p in ADDRESS_PARTS}
    data["address"] = address if any(address.values()) else None
    data["tags"] = [t for t in values["tags"].split(", ") if t]
    return data


def _form_page(
    request: Request,
    session: Session,
    *,
    scope: RecordScope,
    values: Values,
    errors: FieldErrors,
    customer: Customer | None = None,
    version: int | None = None,
    status_code: int = 200,
) -> Response:
    users = security_service.list_users(session=session)
    owner = int(values["owner_id"]) if values["owner_id"].isdigit() else None
    return render(
        request,
        "customers/form.html",
        {
            "customer": customer,
            "values": values,
            "errors": errors,
            "record_version": version,
            "labels": field_labels(gettext_for(request)),
            # Only the owners the user may give a customer to (and the one it has).
            "owner_options": _user_options(users, scope.may_assign, keep=owner),
            "action": f"/customers/{customer.id}/edit" if customer else "/customers/new",
        },
        status_code=status_code,
    )


def _conflict_page(
    request: Request, session: Session, *, customer: Customer, yours: Values
) -> Response:
    """409: the stored record changed since the form was opened; show both, save nothing.
    Theirs are shown in clear, as in the form: a reveal, recorded."""
    theirs = values_of(session, customer)
    _revealed(session, customer, purpose="edit", now=False)
    users = security_service.list_users(session=session)
    return render(
        request,
        "customers/conflict.html",
        {
            "customer": customer,
            "fields": FORM_FIELDS,
            "labels": field_labels(gettext_for(request)),
            "theirs": theirs,
            "yours": yours,
            "changed": {name for name in FORM_FIELDS if theirs[name] != yours[name]},
            "owners": {str(u.id): u.name for u in users},
        },
        status_code=409,
    )


@router.get("/customers/new")
def new_customer(request: Request, session: SessionDep, user: Writer, scope: PageScope) -> Response:
    values = dict.fromkeys(FORM_FIELDS, "")
    values.update(kind=Kind.PERSON.value, lifecycle_stage=LifecycleStage.LEAD.value)
    values["owner_id"] = str(user.id)
    return _form_page(request, session, scope=scope, values=values, errors={})


@router.post("/customers/new", dependencies=[Csrf])
def create_customer(
    request: Request, session: SessionDep, user: Writer, scope: PageScope, form: FormDep
) -> Response:
    _ = gettext_for(request)
    values = values_from_form(form)
    data = {k: v for k, v in schema_input(values).items() if v is not None or k == "owner_id"}
    parsed, errors = parse(CustomerCreate, data, _)
    if parsed is not None:
        try:
            with session.begin_nested():
                customer = service.create(session=session, data=parsed, actor=user, scope=scope)
        except (InvalidInput, service.OwnerNotAssignable) as exc:
            errors = errors_of(exc, _)
        else:
            return RedirectResponse(f"/customers/{customer.id}", status_code=303)
    return _form_page(request, session, scope=scope, values=values, errors=errors, status_code=422)


def _revealed(session: Session, customer: Customer, *, purpose: str, now: bool = True) -> None:
    """Record that the customer's sensitive fields are shown in clear (which ones, never
    their values): before they are sent (``now``), or with the request's transaction."""
    audit_service.revealed(
        session=session,
        entity_type="customer",
        entity_id=customer.id,
        fields=personal.present(customer),
        purpose=purpose,
        now=now,
    )


def _may_reveal(user: User) -> None:
    if not has_permission(user.role, CUSTOMERS_REVEAL):
        raise PermissionDenied(f"Your role ({user.role}) cannot see personal data in clear.")


@router.get("/customers/{customer_id:int}/edit")
def edit_customer(
    request: Request, session: SessionDep, user: Writer, scope: PageScope, customer: CustomerDep
) -> Response:
    # The form holds the sensitive fields in clear: opening it is a reveal.
    _may_reveal(user)
    values = values_of(session, customer)
    _revealed(session, customer, purpose="edit")
    return _form_page(
        request,
        session,
        scope=scope,
        values=values,
        errors={},
        customer=customer,
        version=customer.version,
    )


def _version(form: FormData) -> int | None:
    raw = form.get("version")
    return int(raw) if isinstance(raw, str) and raw.isdigit() and len(raw) < 19 else None


@router.post("/customers/{customer_id:int}/edit", dependencies=[Csrf])
def update_customer(
    request: Request,
    session: SessionDep,
    _user: Writer,
    scope: PageScope,
    customer_id: CustomerId,
    form: FormDep,
) -> Response:
    # Locked from here to the commit, so the version compared is the version overwritten.
    customer = service.get_for_update(session=session, customer_id=customer_id, scope=scope)
    yours = values_from_form(form)
    if _version(form) != customer.version:
        return _conflict_page(request, session, customer=customer, yours=yours)
    _ = gettext_for(request)
    parsed, errors = parse(CustomerUpdate, schema_input(yours), _)
    if parsed is not None:
        try:
            with session.begin_nested():
                service.update(session=session, customer=customer, data=parsed, scope=scope)
        except (InvalidInput, service.OwnerNotAssignable) as exc:
            errors = errors_of(exc, _)
        except StaleDataError:
            # Another writer got in between all the same: the version column caught it.
            session.refresh(customer)
            return _conflict_page(request, session, customer=customer, yours=yours)
        else:
            return RedirectResponse(f"/customers/{customer.id}", status_code=303)
    return _form_page(
        request,
        session,
        scope=scope,
        values=yours,
        errors=errors,
        customer=customer,
        version=customer.version,
        status_code=422,
    )


# ---------------------------------------------------------------- trash and restore


@router.post("/customers/{customer_id:int}/delete", dependencies=[Csrf])
def delete_customer(session: SessionDep, _user: Deleter, customer: CustomerDep) -> Response:
    service.trash(session=session, customer=customer)
    return RedirectResponse(f"/customers?deleted={customer.id}", status_code=303)


@router.post("/customers/{customer_id:int}/restore", dependencies=[Csrf])
def restore_customer(
    session: SessionDep, _user: Deleter, scope: PageScope, customer_id: CustomerId
) -> Response:
    customer = service.restore(session=session, customer_id=customer_id, scope=scope)
    return RedirectResponse(f"/customers/{customer.id}", status_code=303)


# ---------------------------------------------------------------- the customer 360 page


@router.get("/customers/{customer_id:int}")
def customer_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    scope: PageScope,
    customer: CustomerDep,
    orders_cursor: str | None = None,
) -> Response:
    owner = (
        security_service.get_user(session=session, user_id=customer.owner_id)
        if customer.owner_id is not None
        else None
    )
    context: dict[str, Any] = {
        "customer": customer,
        "personal": service.view(session=session, customer=customer),
        "owner": owner,
        "orders": [],
    }
    if has_permission(user.role, ORDERS_READ):
        newest_first = parse_sort("-ordered_at", orders_service.SORT_FIELDS, "-ordered_at")
        listed = orders_service.list_orders(
            session=session,
            filters=orders_service.OrderFilter(customer_id=customer.id),
            scope=scope,
            sort=newest_first,
            cursor=_blank(orders_cursor),
            limit=ORDERS_PAGE_SIZE,
        )
        context.update(
            summary=orders_service.customer_totals(session=session, customer_id=customer.id),
            orders=listed.items,
            orders_next_url=(
                f"/customers/{customer.id}?" + urlencode({"orders_cursor": listed.next_cursor})
                if listed.next_cursor
                else None
            ),
        )
    if has_permission(user.role, ANALYTICS_READ):
        context["analytics"] = analytics_web.customer_figures(
            session=session, customer_id=customer.id, scope=scope
        )
    context.update(
        timeline_web.panel(
            session=session,
            customer_id=customer.id,
            user=user,
            gettext=gettext_for(request),
            fmt=Formatter(request_locale(request)),
        )
    )
    context["history"] = history(
        entries=audit_service.history_for(session, "customer", customer.id, HISTORY_SIZE),
        users={u.id: u.name for u in security_service.list_users(session=session)},
        gettext=gettext_for(request),
    )
    return render(request, "customers/detail.html", context)


@router.get("/customers/{customer_id:int}/personal")
def personal_fields(
    request: Request, session: SessionDep, user: Reader, customer: CustomerDep, reveal: bool = False
) -> Response:
    """The customer's personal data (an HTMX fragment of the 360 page): masked, or in
    clear with ``reveal`` (customers:reveal; recorded before it is sent)."""
    if reveal:
        _may_reveal(user)
        _revealed(session, customer, purpose="view")
    shown = service.view(session=session, customer=customer, reveal=reveal)
    return render(
        request,
        "customers/_personal.html",
        {"customer": customer, "personal": shown},
        headers={"Cache-Control": "no-store"} if reveal else None,
    )


# ---------------------------------------------------------------- history (audit log)

HISTORY_SIZE = 50
# Record bookkeeping that the action itself already says.
_HISTORY_SKIPPED = frozenset({"deleted_at", "erased_at"})


@dataclass(frozen=True)
class HistoryChange:
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class HistoryEntry:
    """An audit log entry about the customer, as the 360 page shows it."""

    at: datetime
    action: str
    text: str
    actor: str
    changes: list[HistoryChange]


def _action_text(action: str, gettext: Callable[[str], str]) -> str:
    texts = {
        "customer.created": gettext("Customer created"),
        "customer.updated": gettext("Customer changed"),
        "customer.trashed": gettext("Customer moved to the trash"),
        "customer.restored": gettext("Customer restored from the trash"),
        "customer.deleted": gettext("Customer deleted"),
        "customer.exported": gettext("Personal data exported"),
        "customer.erased": gettext("Personal data erased"),
        "customer.revealed": gettext("Personal data revealed"),
    }
    return texts.get(action, action)


def _shown(field: str, value: Any, users: dict[int, str], gettext: Callable[[str], str]) -> str:
    """A value of the log as a person reads it; masked values stay masked."""
    if value is None or value == [] or value == {}:
        return "—"
    if value == MASK:
        return gettext("hidden")
    if field == "owner_id" and isinstance(value, int):
        return users.get(value, f"#{value}")
    if field in ("kind", "lifecycle_stage") and isinstance(value, str):
        return gettext(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def history(
    *, entries: Sequence[AuditEntry], users: dict[int, str], gettext: Callable[[str], str]
) -> list[HistoryEntry]:
    """Who did what to the customer and when, newest first, from the audit log."""
    labels = field_labels(gettext) | {"custom": gettext("Custom attributes")}
    shown: list[HistoryEntry] = []
    for entry in entries:
        changes = [
            HistoryChange(
                labels.get(name, name),
                _shown(name, change.get("old"), users, gettext),
                _shown(name, change.get("new"), users, gettext),
            )
            for name, change in entry.changes.items()
            if name not in _HISTORY_SKIPPED and isinstance(change, dict)
        ]
        actor = (
            users.get(entry.actor_id) if entry.actor_id is not None else None
        ) or entry.actor_email
        shown.append(
            HistoryEntry(
                at=entry.occurred_at,
                action=entry.action,
                text=_action_text(entry.action, gettext),
                actor=actor or gettext("System"),
                changes=changes,
            )
        )
    return shown


# ---------------------------------------------------------------- privacy: export and erase


@router.get("/customers/{customer_id:int}/export")
def export_customer(
    session: SessionDep, _user: Exporter, scope: PageScope, customer_id: CustomerId
) -> Response:
    """Everything held about the customer, downloaded as JSON (recorded in the audit log)."""
    document = privacy.export(session=session, customer_id=customer_id, scope=scope)
    return Response(
        document.model_dump_json(indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="customer-{customer_id}.json"',
            "Cache-Control": "no-store",
        },
    )


def _erasable(session: Session, customer_id: int, scope: RecordScope) -> Customer:
    """The customer to erase (the trash included), or a 404 page."""
    return service.get(session=session, customer_id=customer_id, scope=scope, include_trashed=True)


def _erase_page(
    request: Request, customer: Customer, errors: FieldErrors, status_code: int = 200
) -> Response:
    context = {"customer": customer, "errors": errors}
    return render(request, "customers/erase.html", context, status_code=status_code)


@router.get("/customers/{customer_id:int}/erase")
def erase_form(
    request: Request, session: SessionDep, _user: Eraser, scope: PageScope, customer_id: CustomerId
) -> Response:
    return _erase_page(request, _erasable(session, customer_id, scope), {})


def _same_name(typed: str, name: str) -> bool:
    return " ".join(typed.split()).casefold() == " ".join(name.split()).casefold()


@router.post("/customers/{customer_id:int}/erase", dependencies=[Csrf])
def erase_customer(
    request: Request,
    session: SessionDep,
    _user: Eraser,
    scope: PageScope,
    customer_id: CustomerId,
    form: FormDep,
    background: BackgroundTasks,
) -> Response:
    customer = _erasable(session, customer_id, scope)
    if customer.erased_at is None:
        typed = form.get("confirm_name")
        if not isinstance(typed, str) or not _same_name(typed, customer.name):
            _ = gettext_for(request)
            errors = {"confirm_name": _("Type the customer's name exactly as shown to confirm.")}
            return _erase_page(request, customer, errors, status_code=422)
        privacy.erase(session=session, customer_id=customer.id, scope=scope)
        background.add_task(privacy.settle, session.get_bind())
    if customer.deleted_at is not None:
        return RedirectResponse("/customers/trash", status_code=303)
    return RedirectResponse(f"/customers/{customer.id}", status_code=303)
