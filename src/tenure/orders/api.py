"""Orders over HTTP: /api/v1/orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response, status

from tenure.core.concurrency import check_if_match, etag, tagged
from tenure.core.pagination import Page, parse_sort, to_page
from tenure.core.routing import APIRouter, run_db
from tenure.core.schemas import Id
from tenure.deps import IfMatch, ListParamsDep, ScopeDep, SessionDep, SettingsDep, require
from tenure.orders import service
from tenure.orders.schemas import OrderCreate, OrderRead, OrderStatus, OrderUpdate
from tenure.security.permissions import ORDERS_READ, ORDERS_WRITE
from tenure.security.service import Principal

Reader = Annotated[Principal, Depends(require(ORDERS_READ))]
Writer = Annotated[Principal, Depends(require(ORDERS_WRITE))]

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])


@router.get("", response_model=Page[OrderRead])
def list_orders(
    session: SessionDep,
    settings: SettingsDep,
    params: ListParamsDep,
    scope: ScopeDep,
    _actor: Reader,
    customer_id: Id | None = None,
    status: OrderStatus | None = None,
    trashed: bool = False,
) -> Page[OrderRead]:
    """List and filter the orders of the customers you reach."""
    result = service.list_orders(
        session=session,
        filters=service.OrderFilter(
            customer_id=customer_id, status=status.value if status else None, trashed=trashed
        ),
        scope=scope,
        sort=parse_sort(params.sort, service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=params.cursor,
        limit=params.limit,
        count_cap=settings.count_cap if params.count else None,
    )
    return to_page(result, OrderRead.model_validate)


async def prepared_order(
    body: OrderCreate, session: SessionDep, scope: ScopeDep, _actor: Writer
) -> service.NewOrder:
    """The new order checked and priced before the handler runs: on SQLite a writer's
    handler holds the write lock, and none of this needs it."""
    return await run_db(session, service.prepare, session=session, data=body, scope=scope)


NewOrderDep = Annotated[service.NewOrder, Depends(prepared_order)]


@router.post("", response_model=OrderRead, status_code=status.HTTP_201_CREATED)
def create_order(order: NewOrderDep, response: Response, session: SessionDep) -> OrderRead:
    """Create an order for a customer you reach; totals are computed here, in exact
    decimals."""
    placed = service.place(session=session, order=order)
    response.headers["Location"] = f"/api/v1/orders/{placed.id}"
    response.headers["ETag"] = etag(placed.version)
    return placed


@router.get("/{order_id}", response_model=OrderRead)
def get_order(
    order_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: Reader
) -> OrderRead:
    """One order with its lines."""
    return tagged(OrderRead, service.get(session=session, order_id=order_id, scope=scope), response)


@router.patch("/{order_id}", response_model=OrderRead)
def update_order(
    order_id: Id,
    body: OrderUpdate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    _actor: Writer,
    if_match: IfMatch = None,
) -> OrderRead:
    """Change status (allowed transitions only), date, notes, or a draft's lines."""
    order = service.get(session=session, order_id=order_id, scope=scope)
    check_if_match(if_match, order.version)
    return tagged(OrderRead, service.update(session=session, order=order, data=body), response)


@router.delete("/{order_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_order(
    order_id: Id, session: SessionDep, scope: ScopeDep, _actor: Writer, if_match: IfMatch = None
) -> Response:
    """Move an order to the trash."""
    order = service.get(session=session, order_id=order_id, scope=scope)
    check_if_match(if_match, order.version)
    service.trash(session=session, order=order)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{order_id}/restore", response_model=OrderRead)
def restore_order(
    order_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: Writer
) -> OrderRead:
    """Bring an order back from the trash."""
    return tagged(
        OrderRead, service.restore(session=session, order_id=order_id, scope=scope), response
    )
