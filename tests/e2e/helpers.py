"""What the browser journeys share: signing in through the login page, and records made
through the services (the same code the API and the pages call)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from playwright.sync_api import Page, expect
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
from tenure.orders.schemas import OrderCreate, OrderStatus, OrderUpdate
from tenure.security.models import User
from tenure.security.scope import EVERYTHING
from tests.conftest import PASSWORD


def sign_in(page: Page, user: User) -> None:
    """Sign in on the login page, by typing and clicking, and land on the dashboard."""
    page.goto("/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def add_customer(
    sessions: sessionmaker[Session], actor: User, name: str, **fields: Any
) -> Customer:
    with unit_of_work(sessions) as s:
        return customers_service.create(
            scope=EVERYTHING,
            session=s,
            data=CustomerCreate.model_validate({"name": name, **fields}),
            actor=actor,
        )


def add_product(
    sessions: sessionmaker[Session], sku: str, name: str, price: str, currency: str = "EUR"
) -> Product:
    with unit_of_work(sessions) as s:
        return catalog_service.create(
            session=s,
            data=ProductCreate.model_validate(
                {"sku": sku, "name": name, "unit_price": price, "currency": currency}
            ),
        )


def add_order(
    sessions: sessionmaker[Session],
    customer: Customer,
    lines: list[tuple[Product, int]],
    *,
    status: str,
    ordered_at: datetime,
    currency: str = "EUR",
) -> Order:
    with unit_of_work(sessions) as s:
        return orders_service.create(
            scope=EVERYTHING,
            session=s,
            data=OrderCreate.model_validate(
                {
                    "customer_id": customer.id,
                    "status": status,
                    "ordered_at": ordered_at,
                    "currency": currency,
                    "lines": [{"product_id": p.id, "quantity": q} for p, q in lines],
                }
            ),
        )


def change_status(sessions: sessionmaker[Session], order: Order, status: str) -> None:
    with unit_of_work(sessions) as s:
        current = orders_service.get(scope=EVERYTHING, session=s, order_id=order.id)
        orders_service.update(
            session=s, order=current, data=OrderUpdate(status=OrderStatus(status))
        )


def stored_customer(sessions: sessionmaker[Session], customer_id: int) -> Customer:
    with sessions() as s:
        customer = s.get(Customer, customer_id)
        assert customer is not None
        return customer


def personal_data(sessions: sessionmaker[Session], customer_id: int) -> dict[str, Any]:
    """The customer's sensitive fields as stored, opened."""
    with sessions() as s:
        customer = s.get(Customer, customer_id)
        assert customer is not None
        return customers_service.revealed_fields(session=s, customer=customer)
