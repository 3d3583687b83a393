"""Segments over the API: the filter language, live counts, members and record scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.catalog import service as catalog_service
from tenure.catalog.schemas import ProductCreate
from tenure.db import unit_of_work
from tenure.marketing.models import Segment
from tenure.orders import service as orders_service
from tenure.orders.schemas import OrderCreate, OrderLineIn, OrderStatus
from tenure.security.scope import EVERYTHING
from tests.conftest import Headers
from tests.marketing.conftest import MakeCustomer


def _cond(field: str, op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value, **extra}


def _preview(client: TestClient, headers: Headers, definition: dict[str, Any]) -> Any:
    return client.post("/api/v1/segments/preview", json={"definition": definition}, headers=headers)


def _names(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [m["name"] for m in r.json()["members"]]


def _buy(
    sessions: sessionmaker[Session], customer_id: int, amount: str, status: OrderStatus
) -> None:
    with unit_of_work(sessions) as s:
        product = catalog_service.create(
            session=s,
            data=ProductCreate(
                sku=f"S-{customer_id}-{amount}-{status}", name="Tea", unit_price=amount
            ),
        )
        orders_service.create(
            session=s,
            data=OrderCreate(
                customer_id=customer_id,
                status=status,
                ordered_at=datetime(2026, 3, 1, tzinfo=UTC),
                lines=[OrderLineIn(product_id=product.id, quantity=1)],
            ),
            scope=EVERYTHING,
        )


def test_fields_tags_and_custom_attributes_select_customers(
    client: TestClient, marketer: Headers, make_customer: MakeCustomer
) -> None:
    make_customer(
        "Ada Lovelace",
        lifecycle_stage="customer",
        tags=["vip"],
        custom={"tier": "gold", "visits": 7},
    )
    make_customer(
        "Bob Byte", lifecycle_stage="lead", source="fair", custom={"tier": "silver", "visits": 2}
    )
    make_customer("Cy Corp", kind="company", lifecycle_stage="customer")

    assert _names(
        _preview(client, marketer, {"all": [_cond("lifecycle_stage", "in", ["customer"])]})
    ) == ["Ada Lovelace", "Cy Corp"]
    assert _names(_preview(client, marketer, {"all": [_cond("tags", "contains", "vip")]})) == [
        "Ada Lovelace"
    ]
    assert _names(_preview(client, marketer, {"all": [_cond("custom.tier", "eq", "silver")]})) == [
        "Bob Byte"
    ]
    assert _names(_preview(client, marketer, {"all": [_cond("custom.visits", "gte", 5)]})) == [
        "Ada Lovelace"
    ]
    assert _names(
        _preview(
            client,
            marketer,
            {"all": [_cond("source", "is_null", True), _cond("kind", "eq", "person")]},
        )
    ) == ["Ada Lovelace"]
    either = {"any": [_cond("source", "eq", "fair"), {"all": [_cond("kind", "eq", "company")]}]}
    assert _names(_preview(client, marketer, either)) == ["Bob Byte", "Cy Corp"]
    r = _preview(client, marketer, {"all": []})
    assert (r.json()["count"], r.json()["count_capped"]) == (3, False)


def test_order_figures_count_purchases_only(
    client: TestClient,
    marketer: Headers,
    make_customer: MakeCustomer,
    sessions: sessionmaker[Session],
) -> None:
    big = make_customer("Big Spender")
    small = make_customer("Small Spender")
    cancelled = make_customer("Cancelled Buyer")
    make_customer("Never Bought")
    _buy(sessions, big, "150.00", OrderStatus.PAID)
    _buy(sessions, small, "20.00", OrderStatus.PLACED)
    _buy(sessions, cancelled, "500.00", OrderStatus.DRAFT)

    rich = {"all": [_cond("total_spent", "gte", "100.00")]}
    assert _names(_preview(client, marketer, rich)) == ["Big Spender"]
    assert _names(_preview(client, marketer, {"all": [_cond("order_count", "eq", 0)]})) == [
        "Cancelled Buyer",
        "Never Bought",
    ]
    assert _names(
        _preview(
            client,
            marketer,
            {"all": [_cond("last_order_at", "between", ["2026-02-01", "2026-04-01"])]},
        )
    ) == ["Big Spender", "Small Spender"]
    assert (
        _names(
            _preview(
                client, marketer, {"all": [_cond("total_spent", "gte", "100.00", currency="USD")]}
            )
        )
        == []
    )


def test_an_unknown_field_is_refused_naming_it_and_nothing_is_saved(
    client: TestClient, marketer: Headers, sessions: sessionmaker[Session]
) -> None:
    body = {"name": "Bad", "definition": {"all": [_cond("shoe_size", "eq", "42")]}}

    r = client.post("/api/v1/segments", json=body, headers=marketer)

    assert r.status_code == 422
    problem = r.json()
    assert problem["type"] == "urn:tenure:problem:invalid-segment"
    assert "shoe_size" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "definition", "all", 0, "field"]
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Segment)) == 0


def test_a_wrong_operator_or_value_type_is_refused_naming_the_field(
    client: TestClient, marketer: Headers
) -> None:
    wrong_op = _preview(client, marketer, {"all": [_cond("tags", "gt", "vip")]})
    wrong_value = _preview(client, marketer, {"all": [_cond("total_spent", "gte", "lots")]})
    wrong_list = _preview(client, marketer, {"all": [_cond("lifecycle_stage", "in", "customer")]})
    not_a_group = _preview(client, marketer, {"every": []})

    assert wrong_op.status_code == 422 and "tags" in wrong_op.json()["detail"]
    assert wrong_op.json()["errors"][0]["loc"][-1] == "op"
    assert wrong_value.status_code == 422 and "total_spent" in wrong_value.json()["detail"]
    assert wrong_value.json()["errors"][0]["loc"][-1] == "value"
    assert wrong_list.status_code == 422 and "lifecycle_stage" in wrong_list.json()["detail"]
    assert not_a_group.status_code == 422


def test_analytics_fields_without_a_run_are_a_clear_error(
    client: TestClient, marketer: Headers
) -> None:
    r = _preview(client, marketer, {"all": [_cond("churn_risk", "gte", 0.5)]})

    assert r.status_code == 422
    assert r.json()["type"] == "urn:tenure:problem:no-analytics-run"
    assert "analytics run" in r.json()["detail"]


def test_crud_with_etags_trash_and_restore(
    client: TestClient, marketer: Headers, make_customer: MakeCustomer
) -> None:
    make_customer("Ada Lovelace", lifecycle_stage="customer")
    r = client.post(
        "/api/v1/segments",
        json={
            "name": "Customers",
            "definition": {"all": [_cond("lifecycle_stage", "eq", "customer")]},
        },
        headers=marketer,
    )
    assert r.status_code == 201
    segment_id, tag = r.json()["id"], r.headers["ETag"]

    renamed = client.patch(
        f"/api/v1/segments/{segment_id}",
        json={"name": "Buyers"},
        headers={**marketer, "If-Match": tag},
    )
    stale = client.patch(
        f"/api/v1/segments/{segment_id}",
        json={"name": "Late"},
        headers={**marketer, "If-Match": tag},
    )
    members = client.get(f"/api/v1/segments/{segment_id}/members?count=true", headers=marketer)
    deleted = client.delete(f"/api/v1/segments/{segment_id}", headers=marketer)
    gone = client.get(f"/api/v1/segments/{segment_id}", headers=marketer)
    trash = client.get("/api/v1/segments?trashed=true", headers=marketer)
    restored = client.post(f"/api/v1/segments/{segment_id}/restore", headers=marketer)

    assert renamed.status_code == 200 and renamed.json()["name"] == "Buyers"
    assert stale.status_code == 412
    assert [m["name"] for m in members.json()["items"]] == ["Ada Lovelace"]
    assert members.json()["total"] == 1
    assert deleted.status_code == 204 and gone.status_code == 404
    assert [s["id"] for s in trash.json()["items"]] == [segment_id]
    assert restored.status_code == 200 and restored.json()["name"] == "Buyers"


def test_members_are_only_the_callers_customers(
    client: TestClient, login: Any, make_customer: MakeCustomer, make_user: Any
) -> None:
    manager = login("manager")
    make_customer("Someone Elses")

    r = _preview(client, manager, {"all": []})

    assert r.status_code == 200
    assert r.json()["count"] == 0 and r.json()["members"] == []


def test_roles_without_segments_permission_are_refused(client: TestClient, login: Any) -> None:
    sales = login("sales")
    analyst = login("analyst")

    assert client.get("/api/v1/segments", headers=sales).status_code == 403
    assert client.get("/api/v1/segments", headers=analyst).status_code == 200
    r = client.post(
        "/api/v1/segments", json={"name": "x", "definition": {"all": []}}, headers=analyst
    )
    assert r.status_code == 403
