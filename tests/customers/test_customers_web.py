"""Customer pages: list, search, filters, paging, create, edit conflicts, the 360 page,
trash and restore, with their permissions and CSRF protection."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tenure.catalog import service as catalog_service
from tenure.catalog.schemas import ProductCreate
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate, CustomerUpdate
from tenure.customers.web import FORM_FIELDS
from tenure.db import unit_of_work
from tenure.orders import service as orders_service
from tenure.orders.schemas import OrderCreate
from tenure.security.scope import EVERYTHING, RecordScope
from tests.conftest import MakeUser
from tests.conftest import web_sign_in as sign_in

AddCustomer = Callable[..., Customer]


@pytest.fixture
def add_customer(sessions: sessionmaker[Session], make_user: MakeUser) -> AddCustomer:
    """``add_customer("Alice Archer", lifecycle_stage="customer")``: made by the service."""
    owner = make_user("sales", name="Owner Olga")

    def add(name: str, **fields: Any) -> Customer:
        with unit_of_work(sessions) as s:
            return customers_service.create(
                scope=EVERYTHING,
                session=s,
                data=CustomerCreate.model_validate({"name": name, **fields}),
                actor=owner,
            )

    return add


def customer_form(token: str, **fields: str) -> dict[str, str]:
    """Every field of the customer form, as a browser submits it."""
    base = {
        "name": "Ada Lovelace",
        "kind": "person",
        "company_name": "",
        "email": "ada@example.com",
        "phone": "",
        "address.line1": "",
        "address.line2": "",
        "address.city": "",
        "address.region": "",
        "address.postal_code": "",
        "address.country": "",
        "lifecycle_stage": "lead",
        "owner_id": "",
        "tags": "",
        "source": "",
        "notes": "",
    }
    return {**base, "csrf_token": token, **fields}


def customer_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count(Customer.id))) or 0


def stored(sessions: sessionmaker[Session], customer_id: int) -> Customer:
    with sessions() as s:
        customer = s.get(Customer, customer_id)
        assert customer is not None
        return customer


def clear(sessions: sessionmaker[Session], customer_id: int) -> dict[str, Any]:
    """The customer's sensitive fields, opened."""
    with sessions() as s:
        customer = s.get(Customer, customer_id)
        assert customer is not None
        return customers_service.revealed_fields(session=s, customer=customer)


def listed_names(page: str) -> list[str]:
    """The customer names in a list page or results fragment, in order."""
    return [html.unescape(n) for n in re.findall(r'<td><a href="/customers/\d+">([^<]+)</a>', page)]


def next_link(page: str) -> str | None:
    found = re.search(r'<a class="button" href="([^"]+)"[^>]*>Next page', page)
    return html.unescape(found.group(1)) if found else None


def hidden(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{re.escape(name)}" value="([^"]*)">', page)
    assert found, f"no hidden {name} field"
    return html.unescape(found.group(1))


# ---------------------------------------------------------------- list, search, filters


def test_list_shows_customers(
    client: TestClient, make_user: MakeUser, add_customer: AddCustomer
) -> None:
    add_customer("Alice Archer")
    add_customer("Bob Baker")
    sign_in(client, make_user("admin"))
    r = client.get("/customers")
    assert r.status_code == 200
    assert "<html" in r.text
    assert listed_names(r.text) == ["Bob Baker", "Alice Archer"]  # newest first


def test_search_fragment_returns_name_prefix_matches_for_htmx(
    client: TestClient, make_user: MakeUser, add_customer: AddCustomer
) -> None:
    add_customer("Alice Archer")
    add_customer("Alina Cole")
    add_customer("Bob Baker")
    sign_in(client, make_user("admin"))
    r = client.get("/customers?q=ali&lifecycle_stage=&sort=", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert "<html" not in r.text
    assert sorted(listed_names(r.text)) == ["Alice Archer", "Alina Cole"]
    assert r.headers["HX-Push-Url"] == "/customers?q=ali"
    assert "HX-Request" in r.headers["Vary"]


def test_search_without_htmx_renders_the_whole_page_with_matches(
    client: TestClient, make_user: MakeUser, add_customer: AddCustomer
) -> None:
    add_customer("Alice Archer")
    add_customer("Bob Baker")
    sign_in(client, make_user("admin"))
    r = client.get("/customers?q=Ali")
    assert r.status_code == 200
    assert "<html" in r.text
    assert listed_names(r.text) == ["Alice Archer"]
    assert 'name="q" value="Ali"' in r.text


def test_search_without_matches_says_what_to_do(
    client: TestClient, make_user: MakeUser, add_customer: AddCustomer
) -> None:
    add_customer("Alice Archer")
    sign_in(client, make_user("admin"))
    r = client.get("/customers?q=zed", headers={"HX-Request": "true"})
    assert listed_names(r.text) == []
    assert "No customers match “zed”." in r.text
    assert 'href="/customers/new">Add a customer</a>' in r.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lifecycle_stage=customer", ["Carol Customer"]),
        ("tag=vip", ["Vera Vip"]),
        ("lifecycle_stage=lead&tag=vip", ["Vera Vip"]),
    ],
)
def test_filters_narrow_the_list(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    query: str,
    expected: list[str],
) -> None:
    add_customer("Carol Customer", lifecycle_stage="customer")
    add_customer("Vera Vip", tags=["vip"])
    add_customer("Larry Lead")
    sign_in(client, make_user("admin"))
    r = client.get(f"/customers?{query}")
    assert r.status_code == 200
    assert listed_names(r.text) == expected


def test_owner_filter_lists_only_that_owners_customers(
    client: TestClient, make_user: MakeUser, add_customer: AddCustomer
) -> None:
    other = make_user("sales", name="Other Owner")
    add_customer("Mine Maybe")
    add_customer("Theirs Surely", owner_id=other.id)
    sign_in(client, make_user("admin"))
    r = client.get(f"/customers?owner_id={other.id}")
    assert listed_names(r.text) == ["Theirs Surely"]


def test_unknown_filter_value_is_refused_not_ignored(
    client: TestClient, make_user: MakeUser, add_customer: AddCustomer
) -> None:
    add_customer("Alice Archer")
    sign_in(client, make_user("admin"))
    r = client.get("/customers?lifecycle_stage=wizard")
    assert r.status_code == 422
    assert "lifecycle_stage: must be one of lead, prospect, customer, churned" in r.text
    assert "Alice Archer" not in r.text


def test_sort_by_name(client: TestClient, make_user: MakeUser, add_customer: AddCustomer) -> None:
    for name in ("Carol", "alice", "Bob"):
        add_customer(name)
    sign_in(client, make_user("admin"))
    assert listed_names(client.get("/customers?sort=name").text) == ["alice", "Bob", "Carol"]
    assert listed_names(client.get("/customers?sort=-name").text) == ["Carol", "Bob", "alice"]


def test_next_page_link_walks_every_page(
    client: TestClient, make_user: MakeUser, add_customer: AddCustomer
) -> None:
    names = [f"Customer {n:02d}" for n in range(5)]
    for name in names:
        add_customer(name)
    sign_in(client, make_user("admin"))
    url: str | None = "/customers?sort=name&limit=2"
    pages = []
    while url:
        r = client.get(url)
        assert r.status_code == 200
        pages.append(listed_names(r.text))
        url = next_link(r.text)
    assert pages == [names[0:2], names[2:4], names[4:5]]


def test_next_page_link_walks_search_results(
    client: TestClient, make_user: MakeUser, add_customer: AddCustomer
) -> None:
    for n in range(3):
        add_customer(f"Ann {n}")
    add_customer("Bob")
    sign_in(client, make_user("admin"))
    first = client.get("/customers?q=ann&limit=2", headers={"HX-Request": "true"})
    url = next_link(first.text)
    assert url is not None
    second = client.get(url, headers={"HX-Request": "true"})
    assert sorted(listed_names(first.text) + listed_names(second.text)) == [
        "Ann 0",
        "Ann 1",
        "Ann 2",
    ]
    assert next_link(second.text) is None


# ---------------------------------------------------------------- create


def test_create_with_an_invalid_email_shows_the_message_by_the_field_and_creates_nothing(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, make_user("admin"))
    r = client.post("/customers/new", data=customer_form(token, email="not-an-email"))
    assert r.status_code == 422
    assert (
        '<p class="field-error" id="e-email" role="alert">'
        "must be an email address like name@example.com</p>"
    ) in r.text
    assert 'name="name" type="text" value="Ada Lovelace"' in r.text
    assert 'name="email" type="email" value="not-an-email"' in r.text
    assert customer_count(sessions) == 0


def test_create_redirects_to_the_new_customers_page(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user("admin")
    token = sign_in(client, user)
    data = customer_form(
        token,
        tags="vip, newsletter ,vip",
        **{"address.city": "London", "address.country": "gb"},
    )
    r = client.post("/customers/new", data=data, follow_redirects=False)
    assert r.status_code == 303
    with sessions() as s:
        customer = s.scalars(select(Customer)).one()
        assert r.headers["location"] == f"/customers/{customer.id}"
        assert (customer.name, customer.owner_id) == ("Ada Lovelace", user.id)
        assert customer.tags == ["newsletter", "vip"]
    personal = clear(sessions, customer.id)
    assert personal["email"] == "ada@example.com"
    assert personal["address"] == {"city": "London", "country": "GB"}
    page = client.get(r.headers["location"])
    assert page.status_code == 200
    assert "<h1>Ada Lovelace" in page.text


def test_create_refused_by_the_service_rerenders_the_form(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, make_user("admin"))
    r = client.post("/customers/new", data=customer_form(token, owner_id="987654"))
    assert r.status_code == 422
    assert '<p class="field-error" id="e-owner_id" role="alert">There is no user 987654.</p>' in (
        r.text
    )
    assert customer_count(sessions) == 0


# ---------------------------------------------------------------- the 360 page


def test_customer_page_shows_totals_orders_and_timeline(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer("Grace Hopper", email="grace@example.com")
    with unit_of_work(sessions) as s:
        product = catalog_service.create(
            session=s, data=ProductCreate(sku="BOOK", name="Book", unit_price=Decimal("10.00"))
        )
        orders = [
            orders_service.create(
                scope=EVERYTHING,
                session=s,
                data=OrderCreate.model_validate(
                    {
                        "customer_id": customer.id,
                        "status": status,
                        "ordered_at": datetime(2024, month, 5, 12, tzinfo=UTC),
                        "lines": [{"product_id": product.id, "quantity": qty, **price}],
                    }
                ),
            )
            for month, status, qty, price in (
                (1, "placed", 2, {}),
                (2, "paid", 1, {"unit_price": "5.50"}),
                (3, "draft", 9, {}),  # not a purchase: listed, but not in the figures
            )
        ]
    sign_in(client, make_user("admin"))
    r = client.get(f"/customers/{customer.id}")
    assert r.status_code == 200
    assert '<span class="value" data-testid="order-count">2</span>' in r.text
    assert '<span class="value" data-testid="total-spent">€25.50</span>' in r.text
    assert '<span class="value" data-testid="average-order">€12.75</span>' in r.text
    assert '<span data-testid="first-order">Jan 5, 2024</span>' in r.text
    assert '<span data-testid="last-order">Feb 5, 2024</span>' in r.text
    # Transaction record: every order, newest first, linked.
    linked = re.findall(r'<td><a href="/orders/(\d+)">', r.text)
    assert linked == [str(o.id) for o in reversed(orders)]
    # Timeline: the customer's creation, then the orders, newest first.
    kinds = re.findall(r'<li data-kind="([^"]+)">', r.text)
    assert kinds == ["change", "order", "order", "order"]
    assert f"Order #{orders[2].id} for €90.00" in r.text
    # Personal data is masked on the page.
    assert '<dd data-testid="email">g•••@example.com</dd>' in r.text
    assert "grace@example.com" not in r.text


def test_customer_page_pages_through_orders(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer("Many Orders")
    with unit_of_work(sessions) as s:
        product = catalog_service.create(
            session=s, data=ProductCreate(sku="PEN", name="Pen", unit_price=Decimal("1.00"))
        )
        ids = [
            orders_service.create(
                scope=EVERYTHING,
                session=s,
                data=OrderCreate.model_validate(
                    {
                        "customer_id": customer.id,
                        "status": "placed",
                        "ordered_at": datetime(2024, 1, 1, tzinfo=UTC).replace(day=n + 1),
                        "lines": [{"product_id": product.id, "quantity": 1}],
                    }
                ),
            ).id
            for n in range(25)
        ]
    sign_in(client, make_user("admin"))
    first = client.get(f"/customers/{customer.id}")
    older = re.search(r'href="(/customers/\d+\?orders_cursor=[^"]+)"', first.text)
    assert older is not None
    second = client.get(html.unescape(older.group(1)))
    seen = re.findall(r'<td><a href="/orders/(\d+)">', first.text) + re.findall(
        r'<td><a href="/orders/(\d+)">', second.text
    )
    assert seen == [str(i) for i in reversed(ids)]
    assert 'data-testid="order-count">25<' in second.text


def test_unknown_customer_is_a_friendly_404_page(client: TestClient, make_user: MakeUser) -> None:
    sign_in(client, make_user("admin"))
    for url in ("/customers/999", "/customers/999/edit", "/customers/99999999999999999999999"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert r.headers["content-type"].startswith("text/html")
        assert "Traceback" not in r.text
        assert "<h1>Not found</h1>" in r.text or "<h1>Not Found</h1>" in r.text
    assert "There is no customer 999." in client.get("/customers/999").text


# ---------------------------------------------------------------- edit and conflicts


def test_edit_saves_the_changes(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer("Old Name", email="old@example.com", tags=["a"])
    token = sign_in(client, make_user("admin"))
    form = client.get(f"/customers/{customer.id}/edit").text
    assert hidden(form, "version") == "1"
    r = client.post(
        f"/customers/{customer.id}/edit",
        data=customer_form(token, name="New Name", email="", tags="b", version="1"),
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/customers/{customer.id}"
    saved = stored(sessions, customer.id)
    assert (saved.name, saved.tags, saved.version) == ("New Name", ["b"], 2)
    assert clear(sessions, customer.id)["email"] is None


def test_edit_with_an_invalid_value_rerenders_and_changes_nothing(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer("Kept Name", phone="+49 30 1234567")
    token = sign_in(client, make_user("admin"))
    r = client.post(
        f"/customers/{customer.id}/edit",
        data=customer_form(token, name="Changed", phone="call me", version="1"),
    )
    assert r.status_code == 422
    assert (
        '<p class="field-error" id="e-phone" role="alert">'
        "must be a phone number of digits, spaces, + ( ) - . /</p>"
    ) in r.text
    assert 'value="call me"' in r.text
    assert hidden(r.text, "version") == "1"
    saved = stored(sessions, customer.id)
    assert (saved.name, saved.version) == ("Kept Name", 1)
    assert clear(sessions, customer.id)["phone"] == "+49 30 1234567"


def _change_elsewhere(sessions: sessionmaker[Session], customer_id: int, **fields: Any) -> None:
    with unit_of_work(sessions) as s:
        customer = customers_service.get(scope=EVERYTHING, session=s, customer_id=customer_id)
        customers_service.update(
            scope=EVERYTHING,
            session=s,
            customer=customer,
            data=CustomerUpdate.model_validate(fields),
        )


def test_edit_conflict_shows_both_versions_and_keeps_the_other_change(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer("Original", phone="+1 555 0100")
    token = sign_in(client, make_user("admin"))
    version = hidden(client.get(f"/customers/{customer.id}/edit").text, "version")
    _change_elsewhere(sessions, customer.id, name="Their Name")
    r = client.post(
        f"/customers/{customer.id}/edit",
        data=customer_form(
            token,
            name="My Name",
            email="",
            phone="+1 555 0199",
            owner_id=str(customer.owner_id),
            version=version,
        ),
    )
    assert r.status_code == 409
    assert "Your changes have not been saved." in r.text
    assert "Theirs (saved, version 2)" in r.text
    changed = re.findall(r'<tr class="changed" data-field="([^"]+)">', r.text)
    assert changed == ["name", "phone", "name", "phone"]  # marked in both columns
    assert "<td>Their Name</td>" in r.text
    assert "<td>My Name</td>" in r.text
    saved = stored(sessions, customer.id)
    assert (saved.name, saved.version) == ("Their Name", 2)
    assert clear(sessions, customer.id)["phone"] == "+1 555 0100"


def test_applying_mine_after_a_conflict_saves_on_top_of_the_new_version(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer("Original")
    token = sign_in(client, make_user("admin"))
    _change_elsewhere(sessions, customer.id, source="fair")
    conflict = client.post(
        f"/customers/{customer.id}/edit",
        data=customer_form(token, name="My Name", email="", source="fair", version="1"),
    )
    assert conflict.status_code == 409
    # The "apply mine" form carries my values and the version now stored.
    resubmit = {name: hidden(conflict.text, name) for name in ("version", *FORM_FIELDS)}
    assert resubmit["version"] == "2"
    assert resubmit["name"] == "My Name"
    r = client.post(
        f"/customers/{customer.id}/edit",
        data={"csrf_token": token, **resubmit},
        follow_redirects=False,
    )
    assert r.status_code == 303
    saved = stored(sessions, customer.id)
    assert (saved.name, saved.source, saved.version) == ("My Name", "fair", 3)


def test_a_change_landing_between_check_and_write_is_a_conflict_too(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer = add_customer("Original")
    token = sign_in(client, make_user("admin"))
    real_get = customers_service.get_for_update

    def read_then_overtaken(*, session: Session, customer_id: int, scope: RecordScope) -> Customer:
        found = real_get(session=session, customer_id=customer_id, scope=scope)
        # Another writer saves after the version was read, before ours is written.
        session.execute(
            update(cast(Table, Customer.__table__))
            .where(Customer.__table__.c.id == customer_id)
            .values(name="Racer", version=Customer.__table__.c.version + 1)
        )
        return found

    monkeypatch.setattr(customers_service, "get_for_update", read_then_overtaken)
    r = client.post(
        f"/customers/{customer.id}/edit",
        data=customer_form(token, name="Mine", email="", version="1"),
    )
    assert r.status_code == 409
    assert "<td>Racer</td>" in r.text
    saved = stored(sessions, customer.id)
    assert (saved.name, saved.version) == ("Racer", 2)


# ---------------------------------------------------------------- permissions and CSRF


def test_a_post_without_a_valid_csrf_token_is_refused_and_changes_nothing(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer("Safe")
    sign_in(client, make_user("admin"))
    created = client.post("/customers/new", data=customer_form("forged"))
    deleted = client.post(f"/customers/{customer.id}/delete", data={"csrf_token": "forged"})
    edited = client.post(
        f"/customers/{customer.id}/edit",
        data={k: v for k, v in customer_form("", name="Hacked", version="1").items()},
    )
    assert [created.status_code, deleted.status_code, edited.status_code] == [403, 403, 403]
    assert "This form has expired" in created.text
    assert customer_count(sessions) == 1
    saved = stored(sessions, customer.id)
    assert (saved.name, saved.deleted_at, saved.version) == ("Safe", None, 1)


def test_a_role_without_customers_write_gets_403_on_new(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, make_user("marketing"))
    page = client.get("/customers/new")
    post = client.post("/customers/new", data=customer_form(token))
    assert (page.status_code, post.status_code) == (403, 403)
    assert "<h1>Permission denied</h1>" in page.text
    assert customer_count(sessions) == 0


def test_a_role_without_customers_delete_cannot_delete_and_sees_no_buttons(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer("Kept")
    token = sign_in(client, make_user("support"))  # may write, may not delete
    page = client.get(f"/customers/{customer.id}")
    assert f'href="/customers/{customer.id}/edit"' in page.text
    assert f'action="/customers/{customer.id}/delete"' not in page.text
    r = client.post(f"/customers/{customer.id}/delete", data={"csrf_token": token})
    assert r.status_code == 403
    assert stored(sessions, customer.id).deleted_at is None


def test_a_read_only_role_sees_no_edit_button(
    client: TestClient, make_user: MakeUser, add_customer: AddCustomer
) -> None:
    customer = add_customer("Read Me")
    sign_in(client, make_user("analyst"))
    page = client.get(f"/customers/{customer.id}")
    assert page.status_code == 200
    assert f'href="/customers/{customer.id}/edit"' not in page.text
    assert f'action="/customers/{customer.id}/delete"' not in page.text


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    r = client.get("/customers?q=a", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/customers"


# ---------------------------------------------------------------- trash and restore


def test_delete_moves_to_the_trash_and_restore_brings_it_back(
    client: TestClient,
    make_user: MakeUser,
    add_customer: AddCustomer,
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer("Temporary Tim")
    add_customer("Staying Sue")
    token = sign_in(client, make_user("admin"))

    r = client.post(
        f"/customers/{customer.id}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/customers?deleted={customer.id}"
    after = client.get(r.headers["location"])
    assert listed_names(after.text) == ["Staying Sue"]
    assert "“Temporary Tim” was moved to the trash." in after.text
    assert client.get(f"/customers/{customer.id}").status_code == 404
    trash = client.get("/customers/trash")
    assert "<td>Temporary Tim</td>" in trash.text
    assert "Staying Sue" not in trash.text
    assert stored(sessions, customer.id).deleted_at is not None

    r = client.post(
        f"/customers/{customer.id}/restore", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/customers/{customer.id}"
    assert client.get(r.headers["location"]).status_code == 200
    assert stored(sessions, customer.id).deleted_at is None
    assert "The trash is empty." in client.get("/customers/trash").text
