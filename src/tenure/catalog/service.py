"""Products: create, read, update, trash, restore and list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Integer, bindparam, func, or_, select
from sqlalchemy.orm import Session

from tenure.catalog.models import Product
from tenure.catalog.schemas import ProductCreate, ProductUpdate
from tenure.core.errors import Conflict, NotFound, field_error
from tenure.core.money import quantize
from tenure.core.pagination import Slice, Sort, SortField, keyset_page
from tenure.core.time import utcnow
from tenure.db import Prepared

SORT_FIELDS = (
    SortField("id", Product.id, int),
    SortField("name", Product.name, str),
    SortField("sku", Product.sku, str),
    SortField("created_at", Product.created_at, datetime),
)
DEFAULT_SORT = "name"


@dataclass(frozen=True)
class ProductFilter:
    q: str | None = None
    category: str | None = None
    active: bool | None = None
    trashed: bool = False


def get(*, session: Session, product_id: int, include_trashed: bool = False) -> Product:
    """A product by id; ``NotFound`` when missing or in the trash."""
    product = session.get(Product, product_id)
    if product is None or (product.deleted_at is not None and not include_trashed):
        raise NotFound(f"There is no product {product_id}.")
    return product


# Every new order prices its lines with these: built once, so a call only binds the ids.
_MANY = select(Product).where(
    Product.id.in_(bindparam("ids", expanding=True)), Product.deleted_at.is_(None)
)


def get_many(*, session: Session, product_ids: set[int]) -> dict[int, Product]:
    """Products by id (trash excluded); missing ids are simply absent."""
    rows = session.scalars(_MANY, {"ids": list(product_ids)})
    return {p.id: p for p in rows}


class Price(NamedTuple):
    """What pricing an order line needs to know of a product."""

    id: int
    sku: str
    active: bool
    currency: str
    unit_price: Decimal


_T = Product.__table__
PRICES_AT_ONCE = 20
# Every new order prices its lines: a fixed list of ids (the rest left empty), so the
# statement is the same every time and runs prepared.
_PRICES = Prepared(
    select(_T.c.id, _T.c.sku, _T.c.active, _T.c.currency, _T.c.unit_price).where(
        _T.c.id.in_([bindparam(f"id{i}", type_=Integer()) for i in range(PRICES_AT_ONCE)]),
        _T.c.deleted_at.is_(None),
    )
)


def prices(*, session: Session, product_ids: set[int]) -> dict[int, Price]:
    """The prices of products by id (trash excluded); missing ids are simply absent."""
    ids = sorted(product_ids)
    found: dict[int, Price] = {}
    for start in range(0, len(ids), PRICES_AT_ONCE):
        chunk = ids[start : start + PRICES_AT_ONCE]
        params = {f"id{i}": chunk[i] if i < len(chunk) else None for i in range(PRICES_AT_ONCE)}
        for row in _PRICES.all(session, **params):
            price = Price(*row)
            found[price.id] = price
    return found


def _check_price(price: Any, currency: str) -> None:
    if price is not None and quantize(price, currency) != price:
        raise field_error("unit_price", f"{currency} amounts have at most the currency's decimals.")


def _check_sku_free(session: Session, sku: str, product_id: int | None = None) -> None:
    clash = session.scalar(select(Product.id).where(Product.sku == sku))
    if clash is not None and clash != product_id:
        raise Conflict(f"Another product (id {clash}) already has SKU {sku}.")


def create(*, session: Session, data: ProductCreate) -> Product:
    """A new product; the SKU must be unused."""
    _check_price(data.unit_price, data.currency)
    _check_sku_free(session, data.sku)
    product = Product(**data.model_dump())
    session.add(product)
    session.flush()
    return product


def update(*, session: Session, product: Product, data: ProductUpdate) -> Product:
    """Apply the fields that were sent."""
    changes = data.model_dump(exclude_unset=True)
    for required in ("sku", "name", "unit_price", "currency", "active"):
        if required in changes and changes[required] is None:
            raise field_error(required, f"{required} cannot be null.")
    _check_price(
        changes.get("unit_price", product.unit_price), changes.get("currency", product.currency)
    )
    if "sku" in changes:
        _check_sku_free(session, changes["sku"], product.id)
    for field, value in changes.items():
        setattr(product, field, value)
    product.updated_at = utcnow()
    session.flush()
    return product


def trash(*, session: Session, product: Product) -> Product:
    """Move a product to the trash; orders that use it keep it."""
    product.deleted_at = utcnow()
    session.flush()
    return product


def restore(*, session: Session, product_id: int) -> Product:
    """Bring a product back from the trash."""
    product = get(session=session, product_id=product_id, include_trashed=True)
    product.deleted_at = None
    session.flush()
    return product


def list_products(
    *,
    session: Session,
    filters: ProductFilter,
    sort: Sort,
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[Product]:
    """A page of products."""
    stmt = select(Product).where(
        Product.deleted_at.is_not(None) if filters.trashed else Product.deleted_at.is_(None)
    )
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        stmt = stmt.where(
            or_(func.lower(Product.name).like(pattern), func.lower(Product.sku).like(pattern))
        )
    if filters.category:
        stmt = stmt.where(Product.category == filters.category)
    if filters.active is not None:
        stmt = stmt.where(Product.active.is_(filters.active))
    return keyset_page(
        session,
        stmt,
        sort=sort,
        id_column=Product.id,
        cursor=cursor,
        limit=limit,
        count_cap=count_cap,
    )


def categories(*, session: Session) -> list[str]:
    """The categories products outside the trash use, alphabetically (for filters)."""
    rows = session.scalars(
        select(Product.category)
        .where(Product.category.is_not(None), Product.deleted_at.is_(None))
        .distinct()
        .order_by(Product.category)
    )
    return [c for c in rows if c]


def names(*, session: Session, product_ids: set[int]) -> dict[int, str]:
    """Product names by id, trashed ones included, for labelling order lines."""
    if not product_ids:
        return {}
    rows = session.execute(select(Product.id, Product.name).where(Product.id.in_(product_ids)))
    return {row[0]: row[1] for row in rows}
