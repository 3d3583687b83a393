"""Customers over HTTP: /api/v1/customers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import BackgroundTasks, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from tenure.audit import service as audit_service
from tenure.core.concurrency import check_if_match, etag
from tenure.core.errors import PermissionDenied, TenureError
from tenure.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, Slice, parse_sort, to_page
from tenure.core.responses import model_response
from tenure.core.routing import INLINE, APIRouter, request_session, shortcut
from tenure.core.schemas import Id
from tenure.customers import exports, personal, privacy, service
from tenure.customers.models import Customer
from tenure.customers.schemas import (
    CustomerCreate,
    CustomerDetail,
    CustomerExport,
    CustomerRead,
    CustomerUpdate,
    Kind,
    LifecycleStage,
)
from tenure.db import DirectRead
from tenure.deps import (
    IfMatch,
    ListParamsDep,
    ScopeDep,
    SessionDep,
    SettingsDep,
    authenticated,
    bearer_token,
    needs_session,
    require,
)
from tenure.orders import service as orders_service
from tenure.orders.schemas import OrderRead
from tenure.security import fields
from tenure.security import service as security_service
from tenure.security.permissions import (
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
from tenure.security.service import Principal

T = TypeVar("T")
Reader = Annotated[Principal, Depends(require(CUSTOMERS_READ))]
Writer = Annotated[Principal, Depends(require(CUSTOMERS_WRITE))]
Deleter = Annotated[Principal, Depends(require(CUSTOMERS_DELETE))]
OrdersReader = Annotated[Principal, Depends(require(ORDERS_READ))]

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


def _detail(session: SessionDep, customer: Customer, response: Response) -> CustomerDetail:
    """The customer as answered to a write: masked, like every response that is kept for
    an Idempotency-Key retry."""
    response.headers["ETag"] = etag(customer.version)
    return _with_summary(session, service.view(session=session, customer=customer))


def _with_summary(session: Session, customer: CustomerRead) -> CustomerDetail:
    """``customer`` with their order summary. Validated again, which costs less than
    ``model_construct``: the validator is compiled, the constructor is Python."""
    totals = orders_service.customer_totals(session=session, customer_id=customer.id)
    return CustomerDetail.model_validate(
        {**customer.__dict__, "summary": totals}, from_attributes=True
    )


Q_MAX_LENGTH = 120
Q = Annotated[
    str | None,
    Query(
        max_length=Q_MAX_LENGTH,
        description="Prefix of a word of the name or company; an email address or a "
        "phone number finds that customer exactly.",
    ),
]


def _read_for_caller(
    request: Request, read: Callable[[DirectRead, RecordScope], T | None]
) -> T | None:
    """What ``read(held, scope)`` gives on the app's held connection for the request's
    caller, when a shortcut may answer for them: signed in with a live credential whose
    use needs no note, reaching their own customers or all, and allowed to read
    customers. None otherwise, or when ``read`` gives None or raises a ``TenureError``:
    the route then signs the caller in and answers, refuses or errs as it does."""
    credential = bearer_token(request)
    if credential is None:
        return None
    with request.app.state.held.read() as held:
        holder = security_service.holder(held, credential)
        if holder is None or holder.key_use_due:  # the route notes the key's use
            return None
        user_id, role = holder.user_id, holder.role
        scope = security_service.scope_without_team(user_id=user_id, role=role)
        if scope is None or not has_permission(role, CUSTOMERS_READ):
            return None
        try:
            found = read(held, scope)
        except TenureError:
            return None
    if found is not None:
        request.state.user_id = user_id  # for the access log, as the route's sign-in does
    return found


_TYPED = frozenset({"q", "limit", "cursor"})


def _search_plainly(request: Request) -> Response | None:
    """GET /customers?q= as the search box asks it (``q``, perhaps ``limit`` and
    ``cursor``, from a caller who reaches every customer), answered on SQLite without a
    unit of work: see ``tenure.core.routing.shortcut``. None for anything else (other
    parameters, a value the route would refuse, an email address or phone number to look
    up), which ``list_customers`` answers."""
    state = request.app.state
    if not state.inline_reads:
        return None
    asked = dict(request.query_params)
    if len(asked) != len(request.query_params.multi_items()) or not asked.keys() <= _TYPED:
        return None
    q, limit, cursor = asked.get("q"), asked.get("limit"), asked.get("cursor")
    if q is None or len(q) > Q_MAX_LENGTH:
        return None
    if limit is not None and not (limit.isascii() and limit.isdigit() and len(limit) < 4):
        return None
    size = DEFAULT_LIMIT if limit is None else int(limit)
    if not 1 <= size <= MAX_LIMIT:
        return None

    def search(held: DirectRead, scope: RecordScope) -> Slice[CustomerRead] | None:
        if not scope.unrestricted:
            return None
        return service.find_typed(on=held, sealer=state.sealer, q=q, cursor=cursor, limit=size)

    found = _read_for_caller(request, search)
    if found is None:
        return None
    return model_response(to_page(found, lambda item: item, Page[CustomerRead]))


@router.get("", response_model=Page[CustomerRead])
@shortcut(_search_plainly)
def list_customers(
    session: SessionDep,
    settings: SettingsDep,
    params: ListParamsDep,
    scope: ScopeDep,
    _actor: Reader,
    q: Q = None,
    lifecycle_stage: LifecycleStage | None = None,
    owner_id: Id | None = None,
    kind: Kind | None = None,
    tag: str | None = None,
    source: str | None = None,
    email: Annotated[str | None, Query(max_length=320, description="Exact email.")] = None,
    phone: Annotated[
        str | None, Query(max_length=40, description="Exact phone number, in any format.")
    ] = None,
    trashed: Annotated[bool, Query(description="List the trash instead.")] = False,
) -> Response:
    """List, filter and search the customers you reach (your own, your team's or all, by
    role). With ``q`` and no ``sort``, best prefix matches first."""
    filters = service.CustomerFilter(
        q=q,
        lifecycle_stage=lifecycle_stage.value if lifecycle_stage else None,
        owner_id=owner_id,
        kind=kind.value if kind else None,
        tag=tag,
        source=source,
        email=email,
        phone=phone,
        trashed=trashed,
    )
    if q is not None and params.sort is None:
        # A search without a chosen order: best matches first, read without ORM objects.
        found = service.find(
            session=session,
            filters=filters,
            scope=scope,
            cursor=params.cursor,
            limit=params.limit,
            count_cap=settings.count_cap if params.count else None,
        )
        return model_response(to_page(found, lambda item: item, Page[CustomerRead]))
    result = service.list_customers(
        session=session,
        filters=filters,
        scope=scope,
        sort=parse_sort(params.sort, service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=params.cursor,
        limit=params.limit,
        count_cap=settings.count_cap if params.count else None,
    )
    shown = Slice(
        service.views(session=session, customers=result.items), result.next_cursor, result.total
    )
    return model_response(to_page(shown, lambda item: item, Page[CustomerRead]))


@router.post("", response_model=CustomerDetail, status_code=status.HTTP_201_CREATED)
def create_customer(
    body: CustomerCreate, response: Response, session: SessionDep, scope: ScopeDep, actor: Writer
) -> CustomerDetail:
    """Create a customer (a person or a company), owned by you unless ``owner_id`` says
    otherwise: a sales rep may give customers only to themselves, a manager to their
    team (403 ``owner-not-assignable`` otherwise)."""
    customer = service.create(session=session, data=body, actor=actor.user, scope=scope)
    response.headers["Location"] = f"/api/v1/customers/{customer.id}"
    return _detail(session, customer, response)


Exporter = Annotated[Principal, Depends(require(CUSTOMERS_EXPORT))]


async def _recording_read(session: SessionDep) -> Session:
    """A read that writes its audit entry first: that may wait for the write lock, so it
    runs in the thread pool, never on the event loop (see tenure.core.routing)."""
    session.info[INLINE] = False
    return session


RecordingSession = Annotated[Session, Depends(_recording_read)]


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The customers, as CSV."}},
)
def export_customers(
    request: Request,
    session: RecordingSession,
    scope: ScopeDep,
    _actor: Exporter,
    q: Q = None,
    lifecycle_stage: LifecycleStage | None = None,
    owner_id: Id | None = None,
    tag: str | None = None,
) -> StreamingResponse:
    """The customers you reach that match the filters (those of the list), as CSV (UTF-8,
    a header line, one customer a line; newest first, best matches first with ``q``).
    Each export is recorded in the audit log (``export``: the filters and the row count)
    before it is sent."""
    filters = service.CustomerFilter(
        q=q,
        lifecycle_stage=lifecycle_stage.value if lifecycle_stage else None,
        owner_id=owner_id,
        tag=tag,
    )
    exports.record(session=session, filters=filters, scope=scope)
    return StreamingResponse(
        exports.lines(sessions=request.app.state.sessions, filters=filters, scope=scope),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="customers.csv"',
            "Cache-Control": "no-store",
        },
    )


@needs_session
async def _reveal(
    request: Request,
    background: BackgroundTasks,
    reveal: Annotated[
        bool,
        Query(
            description="Show the sensitive fields in clear (needs customers:reveal; "
            "recorded in the audit log)."
        ),
    ] = False,
) -> bool:
    if reveal:
        principal = await authenticated(request, background)
        if not has_permission(principal.role, CUSTOMERS_REVEAL):
            raise PermissionDenied(
                f"Your role ({principal.role}) lacks '{CUSTOMERS_REVEAL}'.",
                permission=CUSTOMERS_REVEAL,
            )
        # The audit entry is written before the answer, and may wait for the write lock:
        # off the event loop (see tenure.core.routing).
        request_session(request).info[INLINE] = False
    return reveal


# Asked for only with ?reveal=true: not the route's permission (customers:read is), so
# route audits list it apart from what every call needs.
_reveal.optional_permission = CUSTOMERS_REVEAL  # type: ignore[attr-defined]


def _read_plainly(request: Request) -> Response | None:
    """GET /customers/{id} as most clients ask for it (masked fields, a caller who reaches
    their own customers or all), answered on SQLite without a unit of work: see
    ``tenure.core.routing.shortcut``. None for anything else, which ``get_customer``
    answers."""
    state = request.app.state
    customer_id = request.path_params.get("customer_id", "")
    if (
        not state.inline_reads
        or request.scope["query_string"]
        or not (customer_id.isascii() and customer_id.isdigit() and len(customer_id) < 16)
    ):
        return None

    def detail(held: DirectRead, scope: RecordScope) -> CustomerDetail:
        return service.read(
            session=held, customer_id=int(customer_id), scope=scope, sealer=state.sealer
        )

    found = _read_for_caller(request, detail)
    if found is None:
        return None
    return model_response(found, headers={"ETag": etag(found.version)})


@router.get("/{customer_id}", response_model=CustomerDetail)
@shortcut(_read_plainly)
def get_customer(
    customer_id: Id,
    session: SessionDep,
    scope: ScopeDep,
    _actor: Reader,
    reveal: Annotated[bool, Depends(_reveal)],
) -> Response:
    """One customer with their order summary, sensitive fields masked; with
    ``reveal=true`` in clear (needs customers:reveal; each reveal is recorded in the
    audit log before the answer is sent). ``ETag`` carries the version."""
    customer = service.read(
        session=session,
        customer_id=customer_id,
        scope=scope,
        sealer=fields.of(session),
        reveal=reveal,
    )
    if reveal:
        audit_service.revealed(
            session=session,
            entity_type="customer",
            entity_id=customer_id,
            fields=[name for name in personal.FIELDS if getattr(customer, name) is not None],
            purpose="view",
        )
    headers = {"ETag": etag(customer.version)}
    if reveal:
        headers["Cache-Control"] = "no-store"
    return model_response(customer, headers=headers)


@router.patch("/{customer_id}", response_model=CustomerDetail)
def update_customer(
    customer_id: Id,
    body: CustomerUpdate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    _actor: Writer,
    if_match: IfMatch = None,
) -> CustomerDetail:
    """Change the fields sent. Send ``If-Match`` with the ETag you read to avoid overwriting."""
    customer = service.get(session=session, customer_id=customer_id, scope=scope)
    check_if_match(if_match, customer.version)
    customer = service.update(session=session, customer=customer, data=body, scope=scope)
    return _detail(session, customer, response)


@router.delete("/{customer_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_customer(
    customer_id: Id, session: SessionDep, scope: ScopeDep, _actor: Deleter, if_match: IfMatch = None
) -> Response:
    """Move a customer to the trash (restore with POST .../restore)."""
    customer = service.get(session=session, customer_id=customer_id, scope=scope)
    check_if_match(if_match, customer.version)
    service.trash(session=session, customer=customer)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{customer_id}/restore", response_model=CustomerDetail)
def restore_customer(
    customer_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: Deleter
) -> CustomerDetail:
    """Bring a customer back from the trash."""
    customer = service.restore(session=session, customer_id=customer_id, scope=scope)
    return _detail(session, customer, response)


@router.get("/{customer_id}/orders", response_model=Page[OrderRead])
def customer_orders(
    customer_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    params: ListParamsDep,
    scope: ScopeDep,
    _actor: Reader,
    _orders: OrdersReader,
) -> Page[OrderRead]:
    """The customer's transaction record: their orders, newest first by default."""
    service.get(session=session, customer_id=customer_id, scope=scope)
    result = orders_service.list_orders(
        session=session,
        filters=orders_service.OrderFilter(customer_id=customer_id),
        scope=scope,
        sort=parse_sort(params.sort, orders_service.SORT_FIELDS, "-ordered_at"),
        cursor=params.cursor,
        limit=params.limit,
        count_cap=settings.count_cap if params.count else None,
    )
    return to_page(result, OrderRead.model_validate)


# --- privacy rights -------------------------------------------------------------------

Eraser = Annotated[Principal, Depends(require(CUSTOMERS_ERASE))]


@router.get("/{customer_id}/export", response_model=CustomerExport)
def export_customer(
    customer_id: Id,
    response: Response,
    session: RecordingSession,
    scope: ScopeDep,
    _actor: Exporter,
) -> CustomerExport:
    """Everything held about the customer (trashed or erased ones too): profile, order
    figures, orders with lines and the audit log's entries about them. Each export is
    recorded in the audit log (``customer.exported``) before it is sent."""
    response.headers["Cache-Control"] = "no-store"
    return privacy.export(session=session, customer_id=customer_id, scope=scope)


@router.post("/{customer_id}/erase", response_model=CustomerDetail)
def erase_customer(
    customer_id: Id,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    background: BackgroundTasks,
    _actor: Eraser,
) -> CustomerDetail:
    """Remove the customer's personal data for good (also from the trash): name replaced
    by a placeholder; email, phone, address, company, notes, custom attributes, tags,
    search terms and the notes of their orders cleared. Orders and amounts stay. It
    cannot be undone; erasing again changes nothing."""
    customer = privacy.erase(session=session, customer_id=customer_id, scope=scope)
    background.add_task(privacy.settle, session.get_bind())
    return _detail(session, customer, response)
