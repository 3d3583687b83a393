"""Order pages: the order form with its live total, list, detail and status changes."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.catalog import service as catalog_service
from tenure.catalog.models import Product
from tenure.catalog.schemas import ProductCreate
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate
from tenure.db import unit_of_work
from tenure.orders import service as orders_service
from tenure.orders.models import Order
from tenure.orders.schemas import OrderCreate
from tenure.security.models import User
from tenure.security.scope import EVERYTHING
from tests.conftest import MakeUser
from tests.conftest import web_sign_in as sign_in


@pytest.fixture
def owner(make_user: MakeUser) -> User:
    return make_user("sales", name="Sam Sales")


def add_customer(sessions: sessionmaker[Session], owner: User, name: str) -> Customer:
    with unit_of_work(sessions) as s:
        return customers_service.create(
            scope=EVERYTHING,
            session=s,
            data=CustomerCreate(name=name),
            actor=s.get(User, owner.id) or owner,
        )


def add_product(sessions: sessionmaker[Session], sku: str, name: str, price: str) -> Product:
    with unit_of_work(sessions) as s:
        return catalog_service.create(
            session=s,
            data=ProductCreate.model_validate({"sku": sku, "name": name, "unit_price": price}),
        )


def add_order(
    sessions: sessionmaker[Session], customer: Customer, product: Product, status: str
) -> Order:
    with unit_of_work(sessions) as s:
        return orders_service.create(
            scope=EVERYTHING,
            session=s,
            data=OrderCreate.model_validate(
                {
                    "customer_id": customer.id,
                    "status": status,
                    "lines": [{"product_id": product.id, "quantity": 1}],
                }
            ),
        )


def order_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count(Order.id))) or 0


def status_of(sessions: sessionmaker[Session], order_id: int) -> str:
    with sessions() as s:
        return orders_service.get(scope=EVERYTHING, session=s, order_id=order_id).status


def offered_statuses(html: str) -> set[str]:
    return set(re.findall(r'name="status" value="([a-z]+)"', html))


def lines_form(token: str, *lines: tuple[object, object, object]) -> dict[str, object]:
    return {
        "csrf_token": token,
        "currency": "EUR",
        "line": [str(i) for i in range(len(lines))],
        "product_id": [str(p) for p, _q, _u in lines],
        "quantity": [str(q) for _p, q, _u in lines],
        "unit_price": [str(u) for _p, _q, u in lines],
    }


@pytest.fixture
def chair(sessions: sessionmaker[Session]) -> Product:
    return add_product(sessions, "CHAIR-01", "Oak chair", "19.99")


@pytest.fixture
def cushion(sessions: sessionmaker[Session]) -> Product:
    return add_product(sessions, "CUSH-01", "Seat cushion", "5.00")


def test_the_preview_totals_the_lines_in_the_users_locale(
    client: TestClient, owner: User, chair: Product, cushion: Product
) -> None:
    token = sign_in(client, owner)
    r = client.post(
        "/orders/preview", data=lines_form(token, (chair.id, 2, ""), (cushion.id, 1, ""))
    )
    assert r.status_code == 200
    assert '<strong class="amount" data-testid="order-total">€44.98</strong>' in r.text
    assert (
        '<span id="line-0-total" class="line-total num" hx-swap-oob="true">€39.98</span>' in r.text
    )


def test_the_preview_uses_a_typed_unit_price(
    client: TestClient, owner: User, chair: Product, cushion: Product
) -> None:
    token = sign_in(client, owner)
    r = client.post(
        "/orders/preview", data=lines_form(token, (chair.id, 2, "10.00"), (cushion.id, 1, ""))
    )
    assert '<strong class="amount" data-testid="order-total">€25.00</strong>' in r.text


def test_the_preview_is_formatted_for_the_users_language(
    client: TestClient, owner: User, chair: Product, cushion: Product
) -> None:
    token = sign_in(client, owner)
    r = client.post(
        "/orders/preview",
        data=lines_form(token, (chair.id, 2, ""), (cushion.id, 1, "")),
        headers={"Accept-Language": "zh-CN"},
    )
    assert '<strong class="amount" data-testid="order-total">€44.98</strong>' in r.text
    assert '<html lang="zh-CN">' not in r.text  # a fragment, not a page


def test_the_preview_shows_line_errors_inline_and_no_total(
    client: TestClient, owner: User, chair: Product
) -> None:
    token = sign_in(client, owner)
    r = client.post("/orders/preview", data=lines_form(token, (chair.id, 0, ""), (999, 1, "")))
    assert r.status_code == 200
    assert 'data-testid="order-total"' not in r.text
    assert "Correct the marked lines to see the total." in r.text
    assert (
        '<div id="line-0-errors" class="line-errors" aria-live="polite" hx-swap-oob="true">'
        '<p class="field-error">Enter a whole number of at least 1.</p></div>'
    ) in r.text
    assert (
        '<div id="line-1-errors" class="line-errors" aria-live="polite" hx-swap-oob="true">'
        '<p class="field-error">Choose a product that is on sale.</p></div>'
    ) in r.text


def test_the_preview_saves_nothing(
    client: TestClient, owner: User, chair: Product, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, owner)
    client.post("/orders/preview", data=lines_form(token, (chair.id, 2, "")))
    assert order_count(sessions) == 0


def test_saving_the_form_stores_the_order_and_opens_it(
    client: TestClient,
    owner: User,
    chair: Product,
    cushion: Product,
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer(sessions, owner, "Alice Archer")
    token = sign_in(client, owner)
    data = {
        **lines_form(token, (chair.id, 2, ""), (cushion.id, 1, "")),
        "customer_id": str(customer.id),
        "status": "placed",
        "notes": "Deliver after 5pm",
    }
    r = client.post("/orders/new", data=data, follow_redirects=False)
    assert r.status_code == 303
    with sessions() as s:
        order = s.scalars(select(Order)).one()
        lines = [(ln.product_id, ln.quantity, ln.line_total) for ln in order.lines]
    assert r.headers["location"] == f"/orders/{order.id}"
    assert (order.customer_id, order.status, order.total, order.notes) == (
        customer.id,
        "placed",
        Decimal("44.98"),
        "Deliver after 5pm",
    )
    assert lines == [(chair.id, 2, Decimal("39.98")), (cushion.id, 1, Decimal("5.00"))]
    page = client.get(r.headers["location"])
    assert '<td class="num" data-testid="order-total">€44.98</td>' in page.text
    assert "Alice Archer" in page.text
    assert "Oak chair" in page.text


def test_saving_without_a_customer_shows_the_message_and_creates_nothing(
    client: TestClient, owner: User, chair: Product, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, owner)
    r = client.post("/orders/new", data={**lines_form(token, (chair.id, 1, "")), "status": "draft"})
    assert r.status_code == 422
    assert '<p class="field-error" id="e-customer_id" role="alert">Choose a customer.</p>' in r.text
    assert order_count(sessions) == 0


def test_saving_with_a_bad_line_keeps_the_lines_and_creates_nothing(
    client: TestClient, owner: User, chair: Product, sessions: sessionmaker[Session]
) -> None:
    customer = add_customer(sessions, owner, "Alice Archer")
    token = sign_in(client, owner)
    data = {**lines_form(token, (chair.id, 0, "")), "customer_id": str(customer.id)}
    r = client.post("/orders/new", data=data)
    assert r.status_code == 422
    assert '<p class="field-error">Enter a whole number of at least 1.</p>' in r.text
    assert f'<option value="{chair.id}" selected>' in r.text
    assert order_count(sessions) == 0


def test_the_form_can_start_with_a_customer(
    client: TestClient, owner: User, sessions: sessionmaker[Session]
) -> None:
    customer = add_customer(sessions, owner, "Alice Archer")
    sign_in(client, owner)
    r = client.get("/orders/new", params={"customer_id": customer.id})
    assert (
        f'<input type="hidden" name="customer_id" value="{customer.id}" form="order-form">'
        in r.text
    )
    assert "Alice Archer" in r.text


def test_customer_suggestions_match_what_was_typed(
    client: TestClient, owner: User, sessions: sessionmaker[Session]
) -> None:
    alice = add_customer(sessions, owner, "Alice Archer")
    add_customer(sessions, owner, "Bob Baker")
    sign_in(client, owner)
    r = client.get("/orders/new/customers", params={"customer_q": "arch"})
    assert f'hx-get="/orders/new/customer?customer_id={alice.id}"' in r.text
    assert "Bob Baker" not in r.text


def test_add_line_returns_a_new_row_and_moves_the_button_on(
    client: TestClient, owner: User, chair: Product
) -> None:
    sign_in(client, owner)
    r = client.get("/orders/new/line", params={"index": 3})
    assert '<div class="order-line" id="line-3">' in r.text
    assert f'<option value="{chair.id}" >' in r.text
    assert 'hx-get="/orders/new/line?index=4"' in r.text
    assert 'hx-swap-oob="true"' in r.text


def test_the_detail_page_offers_only_the_allowed_next_statuses(
    client: TestClient, owner: User, chair: Product, sessions: sessionmaker[Session]
) -> None:
    order = add_order(sessions, add_customer(sessions, owner, "Alice Archer"), chair, "placed")
    sign_in(client, owner)
    assert offered_statuses(client.get(f"/orders/{order.id}").text) == {"paid", "cancelled"}


def test_a_final_order_offers_no_status_change(
    client: TestClient, owner: User, chair: Product, sessions: sessionmaker[Session]
) -> None:
    order = add_order(sessions, add_customer(sessions, owner, "Alice Archer"), chair, "draft")
    token = sign_in(client, owner)
    client.post(f"/orders/{order.id}/status", data={"csrf_token": token, "status": "cancelled"})
    page = client.get(f"/orders/{order.id}").text
    assert offered_statuses(page) == set()
    assert "This order is cancelled; that is final, so its status cannot change." in page


def test_an_allowed_status_change_is_saved(
    client: TestClient, owner: User, chair: Product, sessions: sessionmaker[Session]
) -> None:
    order = add_order(sessions, add_customer(sessions, owner, "Alice Archer"), chair, "placed")
    token = sign_in(client, owner)
    r = client.post(
        f"/orders/{order.id}/status",
        data={"csrf_token": token, "status": "paid", "version": str(order.version)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert status_of(sessions, order.id) == "paid"


def test_an_illegal_status_change_is_refused_and_changes_nothing(
    client: TestClient, owner: User, chair: Product, sessions: sessionmaker[Session]
) -> None:
    order = add_order(sessions, add_customer(sessions, owner, "Alice Archer"), chair, "paid")
    token = sign_in(client, owner)
    r = client.post(f"/orders/{order.id}/status", data={"csrf_token": token, "status": "draft"})
    assert r.status_code == 409
    assert (
        "This order is paid, so it cannot become draft. Use one of the status buttons below."
        in r.text
    )
    assert status_of(sessions, order.id) == "paid"


def test_a_status_change_on_a_stale_page_is_refused(
    client: TestClient, owner: User, chair: Product, sessions: sessionmaker[Session]
) -> None:
    order = add_order(sessions, add_customer(sessions, owner, "Alice Archer"), chair, "placed")
    token = sign_in(client, owner)
    r = client.post(
        f"/orders/{order.id}/status",
        data={"csrf_token": token, "status": "paid", "version": str(order.version + 1)},
    )
    assert r.status_code == 409
    assert status_of(sessions, order.id) == "placed"


def test_the_list_filters_by_status_and_customer(
    client: TestClient, owner: User, chair: Product, sessions: sessionmaker[Session]
) -> None:
    alice = add_customer(sessions, owner, "Alice Archer")
    bob = add_customer(sessions, owner, "Bob Baker")
    paid = add_order(sessions, alice, chair, "paid")
    draft = add_order(sessions, alice, chair, "draft")
    bobs = add_order(sessions, bob, chair, "paid")
    sign_in(client, owner)
    by_status = client.get("/orders", params={"status": "paid"}).text
    assert f'href="/orders/{paid.id}"' in by_status
    assert f'href="/orders/{bobs.id}"' in by_status
    assert f'href="/orders/{draft.id}"' not in by_status
    by_customer = client.get("/orders", params={"customer_id": bob.id}).text
    assert "Orders of Bob Baker" in by_customer
    assert f'href="/orders/{bobs.id}"' in by_customer
    assert f'href="/orders/{paid.id}"' not in by_customer


def test_a_support_user_may_read_orders_but_not_change_them(
    client: TestClient,
    owner: User,
    make_user: MakeUser,
    chair: Product,
    sessions: sessionmaker[Session],
) -> None:
    order = add_order(sessions, add_customer(sessions, owner, "Alice Archer"), chair, "placed")
    token = sign_in(client, make_user("support"))
    page = client.get(f"/orders/{order.id}")
    assert page.status_code == 200
    assert offered_statuses(page.text) == set()
    assert 'href="/orders/new' not in client.get("/orders").text
    assert client.get("/orders/new").status_code == 403
    r = client.post(f"/orders/{order.id}/status", data={"csrf_token": token, "status": "paid"})
    assert r.status_code == 403
    assert status_of(sessions, order.id) == "placed"


def test_a_status_change_without_the_csrf_token_is_refused(
    client: TestClient, owner: User, chair: Product, sessions: sessionmaker[Session]
) -> None:
    order = add_order(sessions, add_customer(sessions, owner, "Alice Archer"), chair, "placed")
    sign_in(client, owner)
    r = client.post(f"/orders/{order.id}/status", data={"status": "paid", "csrf_token": "forged"})
    assert r.status_code == 403
    assert status_of(sessions, order.id) == "placed"
