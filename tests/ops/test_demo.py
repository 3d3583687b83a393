"""Demo data: repeatable, consistent, realistic enough to demo, and the API still works after."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.orm import Session

from tenure.catalog.models import Product
from tenure.config import Settings
from tenure.core.money import to_storage
from tenure.customers import service as customers_service
from tenure.customers.models import Customer, CustomerSearchTerm, CustomerTag
from tenure.db import make_engine
from tenure.ops import demo, migrate
from tenure.orders.models import Order, OrderLine
from tenure.security.fields import Sealer
from tenure.security.models import User

END = datetime(2026, 1, 1, tzinfo=UTC)
SEED = 11
TABLES = (Product, Customer, CustomerTag, CustomerSearchTerm, Order, OrderLine)


_RUN: dict[str, Sealer] = {}


@pytest.fixture(autouse=True)
def _run_sealer(sealer: Sealer) -> None:
    """Demo data is sealed under the run's keyring, which the API of the run reads."""
    _RUN["sealer"] = sealer


def _load(engine: Engine, customers: int = 300, seed: int = SEED) -> demo.DemoStats:
    return demo.load(engine, customers=customers, seed=seed, end=END, sealer=_RUN["sealer"])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, Decimal):
        return str(value.normalize())
    return value


def _opened(table: Any, row: Any) -> tuple[Any, ...]:
    """A row with its sealed values opened (sealing is randomised; their clear values are
    what the seed decides)."""
    values = []
    for column, value in zip(table.columns, row, strict=True):
        if column.name.endswith("_cipher") and value is not None:
            field = column.name.removesuffix("_cipher")
            value = _RUN["sealer"].open(f"{table.name}.{field}", value)
        values.append(_plain(value))
    return tuple(values)


def _digest(engine: Engine) -> str:
    """A hash of every demo row, read back through the column types."""
    h = hashlib.sha256()
    with engine.connect() as conn:
        for model in TABLES:
            table = cast(Table, model.__table__)
            rows = sorted(repr(_opened(table, row)) for row in conn.execute(select(table)))
            h.update(f"{table.name}:{len(rows)}\n".encode())
            for row in rows:
                h.update(row.encode() + b"\n")
    return h.hexdigest()


@pytest.fixture
def fresh_sqlite(tmp_path: Path) -> Iterator[Engine]:
    """A second, empty, migrated SQLite database."""
    eng = make_engine(Settings(data_dir=tmp_path / "other"))
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def _count(session: Session, model: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_the_same_seed_gives_the_same_data(engine: Engine, fresh_sqlite: Engine) -> None:
    _load(engine)
    _load(fresh_sqlite)
    assert _digest(engine) == _digest(fresh_sqlite)


def test_another_seed_gives_other_data(engine: Engine, fresh_sqlite: Engine) -> None:
    _load(engine, seed=SEED)
    _load(fresh_sqlite, seed=SEED + 1)
    assert _digest(engine) != _digest(fresh_sqlite)


def test_counts_are_as_asked(engine: Engine, session: Session) -> None:
    stats = _load(engine, customers=400)
    assert (stats.customers, stats.products) == (400, demo.DEFAULT_PRODUCTS)
    assert _count(session, Customer) == 400
    assert _count(session, Product) == demo.DEFAULT_PRODUCTS
    assert _count(session, Order) == stats.orders
    assert _count(session, OrderLine) == stats.order_lines
    # About ten lines per customer by default.
    assert 3_400 <= stats.order_lines <= 4_600
    assert stats.seconds > 0


def test_customers_are_complete_records(engine: Engine, session: Session) -> None:
    _load(engine)
    customers = list(session.scalars(select(Customer)))
    clear = {
        c.id: customers_service.revealed_fields(session=session, customer=c) for c in customers
    }
    assert {c.kind for c in customers} == {"person", "company"}
    assert sum(c.kind == "person" for c in customers) > len(customers) / 2
    emails = [clear[c.id]["email"] for c in customers]
    assert None not in emails and len(set(emails)) == len(emails)
    assert all(c.email_index and c.phone_index for c in customers)
    assert all(v["phone"] and v["address"] and v["address"]["country"] for v in clear.values())
    assert any(c.company_name for c in customers if c.kind == "person")
    assert all(c.version == 1 and c.name_sort == c.name.casefold() for c in customers)
    assert {c.lifecycle_stage for c in customers} == {"lead", "prospect", "customer", "churned"}
    assert all(c.source and c.custom.get("language") for c in customers)
    assert _count(session, CustomerTag) > 0
    # Non-English names, Chinese ones among them.
    countries = {c.id: clear[c.id]["address"]["country"] for c in customers}
    assert any(not c.name.isascii() for c in customers if countries[c.id] == "DE")
    assert "CN" in countries.values()


def test_customers_are_spread_over_demo_sales_users(engine: Engine, session: Session) -> None:
    _load(engine)
    sales = set(session.scalars(select(User.id).where(User.role == "sales")))
    assert len(sales) == len(demo.DEMO_SALES_USERS)
    owners = set(session.scalars(select(Customer.owner_id).distinct()))
    assert owners == sales


def test_every_order_total_is_the_sum_of_its_lines(engine: Engine, session: Session) -> None:
    _load(engine)
    sums = select(OrderLine.order_id, func.sum(OrderLine.line_total).label("s")).group_by(
        OrderLine.order_id
    )
    sub = sums.subquery()
    mismatched = session.scalar(
        select(func.count())
        .select_from(Order)
        .outerjoin(sub, sub.c.order_id == Order.id)
        .where((sub.c.s.is_(None)) | (sub.c.s != Order.total))
    )
    assert mismatched == 0
    for line in session.scalars(select(OrderLine)):
        assert line.line_total == line.unit_price * line.quantity
        assert to_storage(line.unit_price) % 100 == 0  # whole cents


def test_there_are_repeat_buyers_and_churners(engine: Engine, session: Session) -> None:
    _load(engine)
    per_customer = dict(
        session.execute(select(Order.customer_id, func.count()).group_by(Order.customer_id)).all()
    )
    assert sum(n >= 2 for n in per_customer.values()) > len(per_customer) / 3
    assert max(per_customer.values()) >= 10  # heavy buyers
    churned = list(
        session.scalars(select(Customer.id).where(Customer.lifecycle_stage == "churned"))
    )
    assert churned
    last = dict(
        session.execute(
            select(Order.customer_id, func.max(Order.ordered_at))
            .where(Order.customer_id.in_(churned))
            .group_by(Order.customer_id)
        ).all()
    )
    assert set(last) == set(churned)  # churners bought before they stopped
    assert max(last.values()) < END - timedelta(days=180)
    never = select(Customer.id).where(Customer.lifecycle_stage.in_(("lead", "prospect")))
    assert not session.scalar(select(func.count(Order.id)).where(Order.customer_id.in_(never)))


def test_orders_peak_before_christmas(engine: Engine, session: Session) -> None:
    _load(engine, customers=600)
    months = [o.month for o in session.scalars(select(Order.ordered_at))]
    nov_dec = sum(m in (11, 12) for m in months) / 2
    rest = sum(m in (2, 3, 4, 5, 6, 7, 8, 9) for m in months) / 8
    assert nov_dec > 1.2 * rest


def test_statuses_are_mostly_paid_or_shipped(engine: Engine, session: Session) -> None:
    _load(engine)
    statuses = dict(
        session.execute(select(Order.status, func.count()).group_by(Order.status)).all()
    )
    total = sum(statuses.values())
    assert statuses["shipped"] + statuses["paid"] > 0.8 * total
    assert statuses["cancelled"] > 0 and statuses["refunded"] > 0


def test_progress_is_reported_to_the_end(engine: Engine) -> None:
    seen: dict[str, tuple[int, int]] = {}
    stats = demo.load(
        engine,
        customers=250,
        seed=SEED,
        end=END,
        sealer=_RUN["sealer"],
        progress=lambda stage, done, total: seen.__setitem__(stage, (done, total)),
    )
    assert seen["customers"] == (250, 250)
    assert seen["orders"] == (stats.orders, stats.orders)
    assert seen["products"] == (stats.products, stats.products)


def test_has_customers_follows_the_data(engine: Engine) -> None:
    assert demo.has_customers(engine) is False
    _load(engine, customers=5)
    assert demo.has_customers(engine) is True


def test_loading_twice_adds_fresh_records(engine: Engine, session: Session) -> None:
    first = _load(engine, customers=150)
    second = _load(engine, customers=150)
    assert _count(session, Customer) == 300
    assert _count(session, Order) == first.orders + second.orders
    emails = list(session.scalars(select(Customer.email_index)))
    assert len(set(emails)) == len(emails) == 300
    skus = list(session.scalars(select(Product.sku)))
    assert len(set(skus)) == len(skus) == 2 * demo.DEFAULT_PRODUCTS


def test_demo_customers_are_found_by_search(
    engine: Engine, session: Session, client: TestClient, admin: dict[str, str]
) -> None:
    _load(engine)
    customer = session.scalars(select(Customer).where(Customer.kind == "person")).first()
    assert customer is not None
    family = customer.name.split()[-1]
    r = client.get(f"/api/v1/customers?q={family[:3]}&limit=500", headers=admin)
    assert r.status_code == 200, r.text
    assert customer.id in [c["id"] for c in r.json()["items"]]
    han = next(
        c for c in session.scalars(select(Customer)) if " " not in c.name and not c.name.isascii()
    )
    r = client.get(f"/api/v1/customers?q={han.name[0]}&limit=500", headers=admin)
    assert han.id in [c["id"] for c in r.json()["items"]]


def test_the_api_creates_records_after_a_load(
    engine: Engine, session: Session, client: TestClient, admin: dict[str, str]
) -> None:
    _load(engine)
    top_customer = session.scalar(select(func.max(Customer.id)))
    top_order = session.scalar(select(func.max(Order.id)))
    r = client.post("/api/v1/customers", json={"name": "After Demo"}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == (top_customer or 0) + 1
    products = list(session.scalars(select(Product).where(Product.active).limit(3)))
    lines = [{"product_id": p.id, "quantity": 2} for p in products]
    r = client.post(
        "/api/v1/orders",
        json={"customer_id": r.json()["id"], "status": "placed", "lines": lines},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["id"] == (top_order or 0) + 1
    assert Decimal(r.json()["total"]) == sum(p.unit_price * 2 for p in products)
    r = client.post("/api/v1/products", json={"sku": "NEW-1", "name": "New", "unit_price": "1.00"},
                    headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("model", "columns"),
    [
        (Product, demo.PRODUCT_COLUMNS),
        (Customer, demo.CUSTOMER_COLUMNS),
        (Order, demo.ORDER_COLUMNS),
        (OrderLine, demo.LINE_COLUMNS),
    ],
)
def test_every_column_is_written(model: type[Any], columns: tuple[str, ...]) -> None:
    # A column added to the schema must be filled by the demo loader too.
    assert sorted(columns) == sorted(model.__table__.c.keys())
