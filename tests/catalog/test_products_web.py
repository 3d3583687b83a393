"""Product pages: list, search, create, edit, trash and restore, with their permissions."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.catalog import service as catalog_service
from tenure.catalog.models import Product
from tenure.catalog.schemas import ProductCreate
from tenure.db import unit_of_work
from tests.conftest import MakeUser
from tests.conftest import web_sign_in as sign_in


def add_product(
    sessions: sessionmaker[Session], sku: str, name: str, price: str = "10.00", **extra: object
) -> Product:
    with unit_of_work(sessions) as s:
        return catalog_service.create(
            session=s,
            data=ProductCreate.model_validate(
                {"sku": sku, "name": name, "unit_price": price, **extra}
            ),
        )


def product_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count(Product.id))) or 0


def form(token: str, **fields: str) -> dict[str, str]:
    base = {"sku": "CHAIR-01", "name": "Chair", "unit_price": "49.90", "currency": "EUR"}
    return {**base, "active": "true", "csrf_token": token, **fields}


def test_it_creates_a_product_and_opens_its_page(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, make_user("manager"))
    r = client.post("/products/new", data=form(token), follow_redirects=False)
    assert r.status_code == 303
    with sessions() as s:
        product = s.scalars(select(Product)).one()
    assert r.headers["location"] == f"/products/{product.id}"
    assert (product.sku, product.name, product.unit_price, product.active) == (
        "CHAIR-01",
        "Chair",
        Decimal("49.90"),
        True,
    )
    page = client.get(r.headers["location"])
    assert "€49.90" in page.text


def test_an_invalid_price_shows_the_message_and_creates_nothing(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, make_user("manager"))
    r = client.post("/products/new", data=form(token, unit_price="twelve"))
    assert r.status_code == 422
    assert (
        '<p class="field-error" id="e-unit_price" role="alert">Enter a price of 0 or more with '
        "at most the currency&#39;s decimals, like 12.50.</p>"
    ) in r.text
    assert 'value="twelve"' in r.text  # what was typed stays in the field
    assert product_count(sessions) == 0


def test_a_duplicate_sku_is_reported_on_the_sku_field(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    add_product(sessions, "CHAIR-01", "Old chair")
    token = sign_in(client, make_user("manager"))
    r = client.post("/products/new", data=form(token, name="New chair"))
    assert r.status_code == 422
    assert (
        '<p class="field-error" id="e-sku" role="alert">'
        "Another product already has SKU CHAIR-01.</p>" in r.text
    )
    assert product_count(sessions) == 1


def test_an_unchecked_active_box_makes_the_product_inactive(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, make_user("manager"))
    data = form(token)
    del data["active"]
    client.post("/products/new", data=data, follow_redirects=False)
    with sessions() as s:
        assert s.scalars(select(Product.active)).one() is False


def test_the_list_searches_by_name_or_sku(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    add_product(sessions, "CHAIR-01", "Oak chair")
    add_product(sessions, "DESK-01", "Standing desk")
    add_product(sessions, "LAMP-7", "Desk lamp")
    sign_in(client, make_user("sales"))
    by_name = client.get("/products", params={"q": "chair"})
    assert "Oak chair" in by_name.text
    assert "Standing desk" not in by_name.text
    by_sku = client.get("/products", params={"q": "lamp-7"})
    assert "Desk lamp" in by_sku.text
    assert "Oak chair" not in by_sku.text


def test_the_list_filters_by_category_and_activity(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    add_product(sessions, "A-1", "Armchair", category="Seating")
    add_product(sessions, "A-2", "Stool", category="Seating", active=False)
    add_product(sessions, "B-1", "Bookcase", category="Storage")
    sign_in(client, make_user("sales"))
    r = client.get("/products", params={"category": "Seating", "active": "true"})
    assert "Armchair" in r.text
    assert "Stool" not in r.text
    assert "Bookcase" not in r.text


def test_the_list_pages_with_a_next_link(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    for i in range(51):
        add_product(sessions, f"P-{i:03}", f"Product {i:03}")
    sign_in(client, make_user("sales"))
    first = client.get("/products")
    assert "Product 049" in first.text
    assert "Product 050" not in first.text
    start = first.text.index('<nav class="pager"')
    href = first.text[start:].split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = client.get(href)
    assert "Product 050" in second.text
    assert "Product 049" not in second.text


def test_an_htmx_search_answers_only_the_results(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    add_product(sessions, "CHAIR-01", "Oak chair")
    sign_in(client, make_user("sales"))
    r = client.get("/products", params={"q": "oak"}, headers={"HX-Request": "true"})
    assert r.text.lstrip().startswith('<div id="product-results">')
    assert "Oak chair" in r.text


def test_editing_changes_the_product(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    product = add_product(sessions, "CHAIR-01", "Chair", category="Seating")
    token = sign_in(client, make_user("manager"))
    edit = client.get(f"/products/{product.id}/edit")
    assert 'value="Seating"' in edit.text
    r = client.post(
        f"/products/{product.id}/edit",
        data=form(token, name="Armchair", unit_price="59.00", version=str(product.version)),
        follow_redirects=False,
    )
    assert r.status_code == 303
    with sessions() as s:
        saved = catalog_service.get(session=s, product_id=product.id)
    assert (saved.name, saved.unit_price, saved.category) == ("Armchair", Decimal("59.00"), None)


def test_an_edit_of_a_changed_product_is_refused(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    product = add_product(sessions, "CHAIR-01", "Chair")
    token = sign_in(client, make_user("manager"))
    r = client.post(
        f"/products/{product.id}/edit",
        data=form(token, name="Armchair", version=str(product.version - 1)),
    )
    assert r.status_code == 409
    assert "Someone else changed this product while you were editing it." in r.text
    with sessions() as s:
        assert catalog_service.get(session=s, product_id=product.id).name == "Chair"


def test_delete_moves_to_the_trash_and_restore_brings_it_back(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    product = add_product(sessions, "CHAIR-01", "Chair")
    token = sign_in(client, make_user("manager"))
    r = client.post(f"/products/{product.id}/delete", data={"csrf_token": token})
    assert "This product is in the trash since" in r.text
    assert "Chair" not in client.get("/products").text
    assert "Chair" in client.get("/products", params={"trashed": "true"}).text
    client.post(f"/products/{product.id}/restore", data={"csrf_token": token})
    with sessions() as s:
        assert catalog_service.get(session=s, product_id=product.id).deleted_at is None


def test_a_support_user_may_browse_but_not_create_products(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    product = add_product(sessions, "CHAIR-01", "Chair")
    token = sign_in(client, make_user("support"))
    listing = client.get("/products")
    assert listing.status_code == 200
    assert 'href="/products/new"' not in listing.text
    assert f'href="/products/{product.id}/edit"' not in client.get(f"/products/{product.id}").text
    assert client.get("/products/new").status_code == 403
    assert client.post("/products/new", data=form(token, sku="X-1")).status_code == 403
    assert product_count(sessions) == 1


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    sign_in(client, make_user("manager"))
    data = form("")
    del data["csrf_token"]
    r = client.post("/products/new", data=data)
    assert r.status_code == 403
    assert product_count(sessions) == 0


def test_an_anonymous_visitor_is_sent_to_sign_in(client: TestClient) -> None:
    r = client.get("/products", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/products"
