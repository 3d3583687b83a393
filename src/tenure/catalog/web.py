"""Products in the browser: list, search, detail, create, edit, trash and restore."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from tenure.catalog import service
from tenure.catalog.models import Product
from tenure.catalog.schemas import ProductCreate, ProductUpdate
from tenure.core.errors import Conflict, InvalidInput
from tenure.core.money import quantize
from tenure.core.pagination import parse_sort
from tenure.core.routing import SessionRouter
from tenure.deps import SessionDep
from tenure.security.models import User
from tenure.security.permissions import PRODUCTS_READ, PRODUCTS_WRITE
from tenure.web.forms import FieldErrors, FormDep, errors_of, form_dict, parse, path_id
from tenure.web.session import Csrf, page_require
from tenure.web.templating import gettext_for, is_htmx, render

Reader = Annotated[User, page_require(PRODUCTS_READ)]
Writer = Annotated[User, page_require(PRODUCTS_WRITE)]

router = SessionRouter(include_in_schema=False)
PAGE_SIZE = 50
SORTS = ("name", "-name", "sku", "-created_at")
FIELDS = ("sku", "name", "category", "description", "unit_price", "currency")


ProductId = Annotated[int, Depends(path_id("product"))]


def _friendly(request: Request, errors: FieldErrors) -> FieldErrors:
    """Validation messages people can act on, in their language, per product field."""
    _ = gettext_for(request)
    messages = {
        "sku": _(
            "Enter a SKU of up to 64 letters, digits, dots, dashes or underscores, "
            "starting with a letter or digit."
        ),
        "name": _("Enter a name of up to 200 characters."),
        "category": _("Keep the category to 100 characters."),
        "description": _("Keep the description to 10,000 characters."),
        "unit_price": _(
            "Enter a price of 0 or more with at most the currency's decimals, like 12.50."
        ),
        "currency": _("Enter a three-letter currency code, like EUR."),
    }
    return {field: messages.get(field, msg) for field, msg in errors.items()}


def _values(form: FormData) -> dict[str, Any]:
    values = form_dict(form, skip=("active", "version"))
    values = {k: v for k, v in values.items() if k in FIELDS}
    if values.get("currency"):
        values["currency"] = values["currency"].upper()
    values["active"] = form.get("active") is not None
    return values


def _product_values(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "description": product.description,
        "unit_price": quantize(product.unit_price, product.currency),
        "currency": product.currency,
        "active": product.active,
    }


def _save_errors(request: Request, exc: Conflict | InvalidInput, sku: str) -> FieldErrors:
    if isinstance(exc, Conflict):
        _ = gettext_for(request)
        return {"sku": _("Another product already has SKU %(sku)s.") % {"sku": sku}}
    return _friendly(request, errors_of(exc, gettext_for(request)))


def _form_page(
    request: Request,
    *,
    values: dict[str, Any],
    errors: FieldErrors,
    product: Product | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "products/form.html",
        {"product": product, "values": values, "errors": errors, "notice": notice},
        status_code=status_code,
    )


@router.get("/products")
def product_list(
    request: Request,
    session: SessionDep,
    _user: Reader,
    q: str | None = None,
    category: str | None = None,
    active: str | None = None,
    sort: str | None = None,
    cursor: str | None = None,
    trashed: bool = False,
) -> Response:
    q = (q or "").strip()[:100] or None
    sort = sort if sort in SORTS else service.DEFAULT_SORT
    active_flag = {"true": True, "false": False}.get(active or "")
    page = service.list_products(
        session=session,
        filters=service.ProductFilter(
            q=q, category=category or None, active=active_flag, trashed=trashed
        ),
        sort=parse_sort(sort, service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=cursor or None,
        limit=PAGE_SIZE,
    )
    params = {
        "q": q or "",
        "category": category or "",
        "active": active or "",
        "sort": sort,
        "trashed": "true" if trashed else "",
    }
    kept = {k: v for k, v in params.items() if v}
    next_url = (
        "/products?" + urlencode({**kept, "cursor": page.next_cursor}) if page.next_cursor else None
    )
    context = {
        "products": page.items,
        "next_url": next_url,
        "filters": params,
        "filtered": bool(q or category or active),
        "trashed": trashed,
        "categories": service.categories(session=session),
        "sorts": SORTS,
    }
    restoring = request.headers.get("hx-history-restore-request") == "true"
    if is_htmx(request) and not restoring:
        return render(request, "products/_results.html", context)
    return render(request, "products/list.html", context)


@router.get("/products/new")
def product_new(request: Request, _user: Writer) -> Response:
    return _form_page(request, values={"currency": "EUR", "active": True}, errors={})


@router.post("/products/new", dependencies=[Csrf])
def product_create(request: Request, session: SessionDep, _user: Writer, form: FormDep) -> Response:
    values = _values(form)
    data, errors = parse(ProductCreate, values, gettext_for(request))
    if data is None:
        errors = _friendly(request, errors)
    else:
        try:
            product = service.create(session=session, data=data)
        except (Conflict, InvalidInput) as exc:
            errors = _save_errors(request, exc, data.sku)
        else:
            return RedirectResponse(f"/products/{product.id}", status_code=303)
    return _form_page(request, values=values, errors=errors, status_code=422)


@router.get("/products/{product_id}")
def product_detail(
    request: Request, product_id: ProductId, session: SessionDep, _user: Reader
) -> Response:
    product = service.get(session=session, product_id=product_id, include_trashed=True)
    return render(request, "products/detail.html", {"product": product})


@router.get("/products/{product_id}/edit")
def product_edit(
    request: Request, product_id: ProductId, session: SessionDep, _user: Writer
) -> Response:
    product = service.get(session=session, product_id=product_id)
    return _form_page(request, values=_product_values(product), errors={}, product=product)


@router.post("/products/{product_id}/edit", dependencies=[Csrf])
def product_update(
    request: Request, product_id: ProductId, session: SessionDep, _user: Writer, form: FormDep
) -> Response:
    product = service.get(session=session, product_id=product_id)
    values = _values(form)
    if form.get("version") != str(product.version):
        _ = gettext_for(request)
        notice = _(
            "Someone else changed this product while you were editing it. The form now shows "
            "the saved values; apply your changes again."
        )
        return _form_page(
            request,
            values=_product_values(product),
            errors={},
            product=product,
            notice=notice,
            status_code=409,
        )
    # The form always sends every field, so a complete product is validated, then applied.
    data, errors = parse(ProductCreate, values, gettext_for(request))
    if data is None:
        errors = _friendly(request, errors)
    else:
        try:
            service.update(
                session=session,
                product=product,
                data=ProductUpdate.model_validate(data.model_dump()),
            )
        except (Conflict, InvalidInput) as exc:
            errors = _save_errors(request, exc, data.sku)
        else:
            return RedirectResponse(f"/products/{product.id}", status_code=303)
    return _form_page(request, values=values, errors=errors, product=product, status_code=422)


@router.post("/products/{product_id}/delete", dependencies=[Csrf])
def product_trash(product_id: ProductId, session: SessionDep, _user: Writer) -> Response:
    product = service.get(session=session, product_id=product_id)
    service.trash(session=session, product=product)
    return RedirectResponse(f"/products/{product.id}", status_code=303)


@router.post("/products/{product_id}/restore", dependencies=[Csrf])
def product_restore(product_id: ProductId, session: SessionDep, _user: Writer) -> Response:
    product = service.restore(session=session, product_id=product_id)
    return RedirectResponse(f"/products/{product.id}", status_code=303)
