"""The HTTP contract every resource keeps: ETags and If-Match, Idempotency-Key,
problem+json errors that change nothing, the trash, and the OpenAPI description."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from tenure.models import metadata
from tenure.security import passwords

Headers = dict[str, str]
Login = Callable[..., Headers]
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing in is not what these tests are about; keep Argon2 cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def _row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.scalar(select(func.count()).select_from(t)) or 0
            for t in metadata.sorted_tables
        }


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:tenure:problem:")
    assert body["title"]
    assert body["detail"]
    return body


def _locs(body: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in body["errors"]]


def _create_customer(client: TestClient, headers: Headers, name: str = "Ada Lovelace") -> int:
    r = client.post("/api/v1/customers", json={"name": name}, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _create_product(
    client: TestClient, headers: Headers, sku: str = "TEA-1", price: str = "19.99"
) -> int:
    r = client.post(
        "/api/v1/products",
        json={"sku": sku, "name": f"Product {sku}", "unit_price": price, "currency": "EUR"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


class World:
    """A customer and two products, ready for orders."""

    def __init__(self, client: TestClient, headers: Headers) -> None:
        self.client = client
        self.headers = headers
        self.customer_id = _create_customer(client, headers)
        self.product_id = _create_product(client, headers, "TEA-1", "19.99")
        self.other_product_id = _create_product(client, headers, "CUP-1", "0.01")

    def order_body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "customer_id": self.customer_id,
            "lines": [
                {"product_id": self.product_id, "quantity": 3},
                {"product_id": self.other_product_id, "quantity": 1},
            ],
        }
        return {**body, **changes}

    def create_order(self, **changes: Any) -> dict[str, Any]:
        r = self.client.post(
            "/api/v1/orders", json=self.order_body(**changes), headers=self.headers
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
def world(client: TestClient, admin: Headers) -> World:
    return World(client, admin)


# --- ETag and If-Match -------------------------------------------------------------------

RESOURCES = ["customers", "products", "orders"]
CHANGES = {
    "customers": ({"name": "First"}, {"name": "Second"}, "name"),
    "products": ({"name": "First"}, {"name": "Second"}, "name"),
    "orders": ({"notes": "First"}, {"notes": "Second"}, "notes"),
}


def _record_id(world: World, resource: str) -> int:
    if resource == "customers":
        return world.customer_id
    if resource == "products":
        return world.product_id
    return int(world.create_order()["id"])


@pytest.mark.parametrize("resource", RESOURCES)
def test_get_answers_the_version_as_etag(world: World, resource: str) -> None:
    url = f"/api/v1/{resource}/{_record_id(world, resource)}"

    first = world.client.get(url, headers=world.headers)
    changed = world.client.patch(url, json=CHANGES[resource][0], headers=world.headers)
    second = world.client.get(url, headers=world.headers)

    assert (first.json()["version"], first.headers["etag"]) == (1, '"1"')
    assert changed.headers["etag"] == '"2"'
    assert (second.json()["version"], second.headers["etag"]) == (2, '"2"')


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_stale_if_match_is_refused_and_the_first_change_stands(
    world: World, login: Login, resource: str
) -> None:
    url = f"/api/v1/{resource}/{_record_id(world, resource)}"
    alice, bob = login("admin"), login("admin")
    first_change, second_change, field = CHANGES[resource]
    alice_tag = world.client.get(url, headers=alice).headers["etag"]
    bob_tag = world.client.get(url, headers=bob).headers["etag"]

    saved = world.client.patch(url, json=first_change, headers={**alice, "If-Match": alice_tag})
    refused = world.client.patch(url, json=second_change, headers={**bob, "If-Match": bob_tag})

    assert saved.status_code == 200
    _problem(refused, 412)
    now = world.client.get(url, headers=world.headers)
    assert now.json()[field] == first_change[field]
    assert now.headers["etag"] == '"2"'


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_stale_if_match_on_delete_is_refused(world: World, resource: str) -> None:
    url = f"/api/v1/{resource}/{_record_id(world, resource)}"
    stale = world.client.get(url, headers=world.headers).headers["etag"]
    world.client.patch(url, json=CHANGES[resource][0], headers=world.headers)

    r = world.client.delete(url, headers={**world.headers, "If-Match": stale})

    _problem(r, 412)
    assert world.client.get(url, headers=world.headers).status_code == 200


@pytest.mark.parametrize("resource", RESOURCES)
def test_patch_and_delete_work_without_if_match(world: World, resource: str) -> None:
    url = f"/api/v1/{resource}/{_record_id(world, resource)}"

    patched = world.client.patch(url, json=CHANGES[resource][0], headers=world.headers)
    deleted = world.client.delete(url, headers=world.headers)

    assert patched.status_code == 200
    assert deleted.status_code == 204
    assert world.client.get(url, headers=world.headers).status_code == 404


def test_a_current_if_match_on_delete_is_accepted(world: World) -> None:
    url = f"/api/v1/customers/{world.customer_id}"

    r = world.client.delete(url, headers={**world.headers, "If-Match": '"1"'})

    assert r.status_code == 204


# --- Idempotency-Key ---------------------------------------------------------------------


def _order_count(engine: Engine) -> int:
    return _row_counts(engine)["sales_order"]


def test_a_retried_post_with_the_same_key_creates_one_order(world: World, engine: Engine) -> None:
    headers = {**world.headers, "Idempotency-Key": "order-7f3a"}

    first = world.client.post("/api/v1/orders", json=world.order_body(), headers=headers)
    second = world.client.post("/api/v1/orders", json=world.order_body(), headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    for header in ("content-type", "location", "etag"):
        assert second.headers[header] == first.headers[header]
    assert _order_count(engine) == 1


def test_the_same_key_with_a_different_body_is_refused(world: World, engine: Engine) -> None:
    headers = {**world.headers, "Idempotency-Key": "order-7f3a"}
    world.client.post("/api/v1/orders", json=world.order_body(), headers=headers)

    r = world.client.post("/api/v1/orders", json=world.order_body(notes="again"), headers=headers)

    assert _problem(r, 422)["type"] == "urn:tenure:problem:idempotency-key-reused"
    assert _order_count(engine) == 1


def test_different_keys_create_two_orders(world: World, engine: Engine) -> None:
    for key in ("order-1", "order-2"):
        r = world.client.post(
            "/api/v1/orders",
            json=world.order_body(),
            headers={**world.headers, "Idempotency-Key": key},
        )
        assert r.status_code == 201
        assert "idempotent-replayed" not in r.headers

    assert _order_count(engine) == 2


def test_a_key_is_not_shared_between_callers(world: World, login: Login, engine: Engine) -> None:
    other = login("admin")
    first = world.client.post(
        "/api/v1/orders", json=world.order_body(), headers={**world.headers, "Idempotency-Key": "k"}
    )
    second = world.client.post(
        "/api/v1/orders", json=world.order_body(), headers={**other, "Idempotency-Key": "k"}
    )

    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert _order_count(engine) == 2


def test_a_refused_post_is_replayed_and_still_creates_nothing(world: World, engine: Engine) -> None:
    headers = {**world.headers, "Idempotency-Key": "bad-order"}
    body = world.order_body(customer_id=999_999)

    first = world.client.post("/api/v1/orders", json=body, headers=headers)
    second = world.client.post("/api/v1/orders", json=body, headers=headers)

    _problem(first, 422)
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert _order_count(engine) == 0


# --- problem+json, and a refused request leaves nothing behind -----------------------------


def _post_order(world: World, **kwargs: Any) -> Any:
    return world.client.post("/api/v1/orders", headers=world.headers, **kwargs)


def test_malformed_json_answers_400(world: World, engine: Engine) -> None:
    before = _row_counts(engine)

    r = world.client.post(
        "/api/v1/orders",
        content=b'{"customer_id": 1, "lines": [',
        headers={**world.headers, "content-type": "application/json"},
    )

    assert _problem(r, 400)["type"] == "urn:tenure:problem:malformed-json"
    assert _row_counts(engine) == before


def test_wrong_types_answer_422_naming_each_field(world: World, engine: Engine) -> None:
    before = _row_counts(engine)
    body = world.order_body(customer_id="the first one")
    body["lines"][0]["quantity"] = "3"

    r = _post_order(world, json=body)

    assert sorted(_locs(_problem(r, 422))) == [
        ["body", "customer_id"],
        ["body", "lines", 0, "quantity"],
    ]
    assert all(e["msg"] for e in r.json()["errors"])
    assert _row_counts(engine) == before


def test_unknown_fields_answer_422(world: World, engine: Engine) -> None:
    before = _row_counts(engine)

    r = _post_order(world, json=world.order_body(discount="100%"))

    assert _locs(_problem(r, 422)) == [["body", "discount"]]
    assert _row_counts(engine) == before


@pytest.mark.parametrize("quantity", [0, -1])
def test_a_quantity_below_one_answers_422(world: World, engine: Engine, quantity: int) -> None:
    before = _row_counts(engine)
    body = world.order_body()
    body["lines"][1]["quantity"] = quantity

    r = _post_order(world, json=body)

    assert _locs(_problem(r, 422)) == [["body", "lines", 1, "quantity"]]
    assert _row_counts(engine) == before


def test_an_unknown_customer_answers_422(world: World, engine: Engine) -> None:
    before = _row_counts(engine)

    r = _post_order(world, json=world.order_body(customer_id=999_999))

    assert _locs(_problem(r, 422)) == [["body", "customer_id"]]
    assert _row_counts(engine) == before


def test_an_unknown_product_answers_422_with_the_line_index(world: World, engine: Engine) -> None:
    before = _row_counts(engine)
    body = world.order_body()
    body["lines"][1]["product_id"] = 999_999

    r = _post_order(world, json=body)

    assert _locs(_problem(r, 422)) == [["body", "lines", 1, "product_id"]]
    assert _row_counts(engine) == before


def test_an_illegal_status_transition_answers_409(world: World, engine: Engine) -> None:
    order = world.create_order()
    url = f"/api/v1/orders/{order['id']}"
    before = _row_counts(engine)

    r = world.client.patch(url, json={"status": "shipped"}, headers=world.headers)

    assert _problem(r, 409)["type"] == "urn:tenure:problem:illegal-transition"
    assert world.client.get(url, headers=world.headers).json() == order
    assert _row_counts(engine) == before


def _oversized_order(world: World, max_bytes: int) -> bytes:
    return json.dumps(world.order_body(notes="x" * max_bytes)).encode()


def test_an_oversized_body_answers_413(world: World, engine: Engine, settings: Any) -> None:
    before = _row_counts(engine)

    r = world.client.post(
        "/api/v1/orders",
        content=_oversized_order(world, settings.max_body_bytes),
        headers={**world.headers, "content-type": "application/json"},
    )

    assert _problem(r, 413)["type"] == "urn:tenure:problem:body-too-large"
    assert _row_counts(engine) == before


def _chunks(body: bytes, size: int = 65_536) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("idempotency_key", [None, "big-one"])
def test_an_oversized_body_without_a_length_answers_413(
    world: World, engine: Engine, settings: Any, idempotency_key: str | None
) -> None:
    before = _row_counts(engine)
    headers = {**world.headers, "content-type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key

    r = world.client.post(
        "/api/v1/orders",
        content=_chunks(_oversized_order(world, settings.max_body_bytes)),
        headers=headers,
    )

    assert "content-length" not in r.request.headers
    assert _problem(r, 413)["type"] == "urn:tenure:problem:body-too-large"
    assert _row_counts(engine) == before


def test_a_bad_cursor_answers_400(world: World, engine: Engine) -> None:
    r = world.client.get("/api/v1/orders", params={"cursor": "garbage!"}, headers=world.headers)

    assert _problem(r, 400)["type"] == "urn:tenure:problem:bad-cursor"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("resource", RESOURCES)
def test_an_unknown_record_answers_404(
    world: World, engine: Engine, method: str, resource: str
) -> None:
    before = _row_counts(engine)
    change = CHANGES[resource][0]
    kwargs: dict[str, Any] = {"json": change} if method == "PATCH" else {}

    r = world.client.request(method, f"/api/v1/{resource}/999999", headers=world.headers, **kwargs)

    assert _problem(r, 404)["type"] == "urn:tenure:problem:not-found"
    assert _row_counts(engine) == before


# --- trash ---------------------------------------------------------------------------------


def _listed(world: World, resource: str, **params: Any) -> list[int]:
    r = world.client.get(f"/api/v1/{resource}", params=params, headers=world.headers)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


@pytest.mark.parametrize("resource", RESOURCES)
def test_delete_moves_a_record_to_the_trash(world: World, resource: str) -> None:
    record_id = _record_id(world, resource)
    url = f"/api/v1/{resource}/{record_id}"

    r = world.client.delete(url, headers=world.headers)

    assert r.status_code == 204
    _problem(world.client.get(url, headers=world.headers), 404)
    assert record_id not in _listed(world, resource)
    assert _listed(world, resource, trashed="true") == [record_id]


@pytest.mark.parametrize("resource", RESOURCES)
def test_restore_brings_a_record_back_from_the_trash(world: World, resource: str) -> None:
    record_id = _record_id(world, resource)
    url = f"/api/v1/{resource}/{record_id}"
    world.client.delete(url, headers=world.headers)

    r = world.client.post(f"{url}/restore", headers=world.headers)

    assert r.status_code == 200, r.text
    assert r.json()["id"] == record_id
    assert r.json()["deleted_at"] is None
    assert world.client.get(url, headers=world.headers).status_code == 200
    assert record_id in _listed(world, resource)
    assert _listed(world, resource, trashed="true") == []


@pytest.mark.parametrize("resource", RESOURCES)
def test_restoring_an_unknown_record_answers_404(world: World, resource: str) -> None:
    r = world.client.post(f"/api/v1/{resource}/999999/restore", headers=world.headers)

    _problem(r, 404)


# --- OpenAPI -------------------------------------------------------------------------------


def test_openapi_lists_the_customer_product_and_order_paths(client: TestClient) -> None:
    r = client.get("/openapi.json")

    assert r.status_code == 200
    paths = r.json()["paths"]
    for path, methods in {
        "/api/v1/customers": {"get", "post"},
        "/api/v1/customers/{customer_id}": {"get", "patch", "delete"},
        "/api/v1/customers/{customer_id}/restore": {"post"},
        "/api/v1/customers/{customer_id}/orders": {"get"},
        "/api/v1/products": {"get", "post"},
        "/api/v1/products/{product_id}": {"get", "patch", "delete"},
        "/api/v1/products/{product_id}/restore": {"post"},
        "/api/v1/orders": {"get", "post"},
        "/api/v1/orders/{order_id}": {"get", "patch", "delete"},
        "/api/v1/orders/{order_id}/restore": {"post"},
    }.items():
        assert methods <= set(paths[path]), path
