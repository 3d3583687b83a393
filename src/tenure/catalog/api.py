"""Products over HTTP: /api/v1/products."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response, status

from tenure.catalog import service
from tenure.catalog.schemas import ProductCreate, ProductRead, ProductUpdate
from tenure.core.concurrency import check_if_match, tagged
from tenure.core.pagination import Page, parse_sort, to_page
from tenure.core.routing import APIRouter
from tenure.core.schemas import Id
from tenure.deps import IfMatch, ListParamsDep, SessionDep, SettingsDep, require
from tenure.security.permissions import PRODUCTS_READ, PRODUCTS_WRITE
from tenure.security.service import Principal

Reader = Annotated[Principal, Depends(require(PRODUCTS_READ))]
Writer = Annotated[Principal, Depends(require(PRODUCTS_WRITE))]

router = APIRouter(prefix="/api/v1/products", tags=["products"])


@router.get("", response_model=Page[ProductRead])
def list_products(
    session: SessionDep,
    settings: SettingsDep,
    params: ListParamsDep,
    _actor: Reader,
    q: Annotated[str | None, Query(max_length=100, description="Part of the name or SKU.")] = None,
    category: str | None = None,
    active: bool | None = None,
    trashed: bool = False,
) -> Page[ProductRead]:
    """List and filter products."""
    result = service.list_products(
        session=session,
        filters=service.ProductFilter(q=q, category=category, active=active, trashed=trashed),
        sort=parse_sort(params.sort, service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=params.cursor,
        limit=params.limit,
        count_cap=settings.count_cap if params.count else None,
    )
    return to_page(result, ProductRead.model_validate)


@router.post("", response_model=ProductRead, status_code=status.HTTP_201_CREATED)
def create_product(
    body: ProductCreate, response: Response, session: SessionDep, _actor: Writer
) -> ProductRead:
    """Create a product; the SKU must be unique."""
    product = service.create(session=session, data=body)
    response.headers["Location"] = f"/api/v1/products/{product.id}"
    return tagged(ProductRead, product, response)


@router.get("/{product_id}", response_model=ProductRead)
def get_product(
    product_id: Id, response: Response, session: SessionDep, _actor: Reader
) -> ProductRead:
    """One product."""
    return tagged(ProductRead, service.get(session=session, product_id=product_id), response)


@router.patch("/{product_id}", response_model=ProductRead)
def update_product(
    product_id: Id,
    body: ProductUpdate,
    response: Response,
    session: SessionDep,
    _actor: Writer,
    if_match: IfMatch = None,
) -> ProductRead:
    """Change the fields sent."""
    product = service.get(session=session, product_id=product_id)
    check_if_match(if_match, product.version)
    return tagged(
        ProductRead, service.update(session=session, product=product, data=body), response
    )


@router.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_product(
    product_id: Id, session: SessionDep, _actor: Writer, if_match: IfMatch = None
) -> Response:
    """Move a product to the trash."""
    product = service.get(session=session, product_id=product_id)
    check_if_match(if_match, product.version)
    service.trash(session=session, product=product)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{product_id}/restore", response_model=ProductRead)
def restore_product(
    product_id: Id, response: Response, session: SessionDep, _actor: Writer
) -> ProductRead:
    """Bring a product back from the trash."""
    return tagged(ProductRead, service.restore(session=session, product_id=product_id), response)
