"""Changes to audited records become entries as they are committed: what each entry says,
what it hides, and that work which did not happen leaves none."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.audit import recorder
from tenure.audit import service as audit_service
from tenure.audit.models import AuditEntry
from tenure.catalog import service as catalog_service
from tenure.catalog.schemas import ProductCreate, ProductUpdate
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate, CustomerUpdate
from tenure.db import unit_of_work
from tenure.orders import service as orders_service
from tenure.orders.schemas import OrderCreate, OrderLineIn, OrderStatus, OrderUpdate
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import Role
from tenure.security.schemas import UserUpdate
from tenure.security.scope import EVERYTHING
from tests.audit.conftest import Entries
from tests.conftest import MakeUser

MASK = "[masked]"


@pytest.fixture
def actor(make_user: MakeUser) -> User:
    return make_user(Role.ADMIN, email="actor@example.com")


@pytest.fixture
def work(sessions: sessionmaker[Session], actor: User) -> Iterator[sessionmaker[Session]]:
    """Units of work as a request by ``actor`` would run them."""

    def bound() -> Session:
        s = sessions()
        recorder.bind(
            s,
            recorder.AuditContext(
                request_id="req-7", client_address="192.0.2.10", actor_id=lambda: actor.id
            ),
        )
        return s

    yield bound  # type: ignore[misc]


def _customer(work: sessionmaker[Session], actor: User, **fields: object) -> Customer:
    with unit_of_work(work) as s:
        return customers_service.create(
            scope=EVERYTHING,
            session=s,
            data=CustomerCreate.model_validate({"name": "Ada", **fields}),
            actor=actor,
        )


def test_a_new_customer_is_recorded_with_who_where_and_its_values_personal_ones_masked(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    customer = _customer(
        work,
        actor,
        email="ada@example.com",
        phone="+44 20 7946 0958",
        address={"city": "London"},
        company_name="Engines Ltd",
        notes="met at the fair",
        custom={"size": "L"},
        tags=["vip"],
        source="fair",
    )

    [entry] = entries(entity_type="customer")
    assert (entry.action, entry.entity_id) == ("customer.created", str(customer.id))
    assert (entry.actor_id, entry.actor_email) == (actor.id, "actor@example.com")
    assert (entry.request_id, entry.client_address) == ("req-7", "192.0.2.10")
    # What a privacy erasure clears is never in the log, so an erasure leaves no trace.
    assert entry.changes == {
        "kind": {"old": None, "new": "person"},
        "name": {"old": None, "new": MASK},
        "email": {"old": None, "new": MASK},
        "phone": {"old": None, "new": MASK},
        "address": {"old": None, "new": MASK},
        "company_name": {"old": None, "new": MASK},
        "notes": {"old": None, "new": MASK},
        "custom": {"old": None, "new": MASK},
        "lifecycle_stage": {"old": None, "new": "lead"},
        "owner_id": {"old": None, "new": actor.id},
        "source": {"old": None, "new": "fair"},
        "tags": {"old": None, "new": MASK},
        "marketing_opt_out": {"old": None, "new": False},
    }


def test_an_update_records_only_the_fields_that_changed_old_and_new(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    customer = _customer(work, actor, email="ada@example.com", tags=["vip"])

    with unit_of_work(work) as s:
        found = customers_service.get(scope=EVERYTHING, session=s, customer_id=customer.id)
        data = CustomerUpdate(
            name="Ada Lovelace",
            email="ada@lovelace.org",
            phone="+44 20 7946 0000",
            tags=["vip", "b2b"],
            lifecycle_stage="customer",
            source="fair",
        )
        customers_service.update(scope=EVERYTHING, session=s, customer=found, data=data)

    [entry] = entries(action="customer.updated")
    assert entry.changes == {
        "name": {"old": MASK, "new": MASK},
        "email": {"old": MASK, "new": MASK},
        "phone": {"old": None, "new": MASK},
        "tags": {"old": MASK, "new": MASK},
        "lifecycle_stage": {"old": "lead", "new": "customer"},
        "source": {"old": None, "new": "fair"},
    }


def test_no_value_of_a_sensitive_field_reaches_the_log(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    customer = _customer(work, actor, email="ada@example.com", phone="+44 20 7946 0958")
    with unit_of_work(work) as s:
        found = customers_service.get(scope=EVERYTHING, session=s, customer_id=customer.id)
        customers_service.update(
            scope=EVERYTHING,
            session=s,
            customer=found,
            data=CustomerUpdate(email=None, phone="+49 30 1234567"),
        )

    text = repr([(e.changes, e.details) for e in entries()])
    for secret in ("ada@example.com", "7946", "1234567"):
        assert secret not in text


def test_trash_and_restore_are_their_own_actions(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    customer = _customer(work, actor)
    with unit_of_work(work) as s:
        customers_service.trash(
            session=s,
            customer=customers_service.get(scope=EVERYTHING, session=s, customer_id=customer.id),
        )
    with unit_of_work(work) as s:
        customers_service.restore(scope=EVERYTHING, session=s, customer_id=customer.id)

    log = entries(entity_type="customer")
    assert [e.action for e in log] == ["customer.created", "customer.trashed", "customer.restored"]
    assert log[1].changes["deleted_at"]["old"] is None
    assert log[2].changes["deleted_at"]["new"] is None


def test_a_hard_delete_records_the_values_removed(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    customer = _customer(work, actor, source="fair")
    with unit_of_work(work) as s:
        s.delete(customers_service.get(scope=EVERYTHING, session=s, customer_id=customer.id))

    [entry] = entries(action="customer.deleted")
    assert entry.entity_id == str(customer.id)
    assert entry.changes["source"] == {"old": "fair", "new": None}


def test_products_are_recorded_with_money_as_strings(
    work: sessionmaker[Session], entries: Entries
) -> None:
    with unit_of_work(work) as s:
        product = catalog_service.create(
            session=s, data=ProductCreate(sku="P-1", name="Pen", unit_price=Decimal("2.50"))
        )
    with unit_of_work(work) as s:
        found = catalog_service.get(session=s, product_id=product.id)
        catalog_service.update(
            session=s, product=found, data=ProductUpdate(unit_price=Decimal("3.00"))
        )
    with unit_of_work(work) as s:
        catalog_service.trash(
            session=s, product=catalog_service.get(session=s, product_id=product.id)
        )

    log = entries(entity_type="product")
    assert [e.action for e in log] == ["product.created", "product.updated", "product.trashed"]
    assert log[0].changes["unit_price"] == {"old": None, "new": "2.50"}
    assert log[1].changes == {"unit_price": {"old": "2.50", "new": "3.00"}}


def test_orders_are_recorded_with_their_lines_and_status_changes(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    customer = _customer(work, actor)
    with unit_of_work(work) as s:
        product = catalog_service.create(
            session=s, data=ProductCreate(sku="P-1", name="Pen", unit_price=Decimal("2.50"))
        )
        order = orders_service.create(
            scope=EVERYTHING,
            session=s,
            data=OrderCreate(
                customer_id=customer.id, lines=[OrderLineIn(product_id=product.id, quantity=2)]
            ),
        )
    with unit_of_work(work) as s:
        found = orders_service.get(scope=EVERYTHING, session=s, order_id=order.id)
        orders_service.update(session=s, order=found, data=OrderUpdate(status=OrderStatus.PLACED))

    created, updated = entries(entity_type="order")
    assert (created.action, created.entity_id) == ("order.created", str(order.id))
    assert created.changes["lines"] == {
        "old": None,
        "new": [
            {
                "product_id": product.id,
                "quantity": 2,
                "unit_price": "2.50",
                "line_total": "5.00",
            }
        ],
    }
    assert created.changes["total"] == {"old": None, "new": "5.00"}
    assert updated.action == "order.updated"
    assert updated.changes == {"status": {"old": "draft", "new": "placed"}}


def test_a_new_order_is_recorded_with_every_value_as_a_flush_of_it_would_be(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    customer = _customer(work, actor)
    with unit_of_work(work) as s:
        pen = catalog_service.create(
            session=s, data=ProductCreate(sku="P-1", name="Pen", unit_price=Decimal("2.50"))
        )
        ink = catalog_service.create(
            session=s, data=ProductCreate(sku="P-2", name="Ink", unit_price=Decimal("7.00"))
        )
    with unit_of_work(work) as s:
        order = orders_service.create(
            scope=EVERYTHING,
            session=s,
            data=OrderCreate(
                customer_id=customer.id,
                status=OrderStatus.PLACED,
                ordered_at=datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC),
                notes="call first",
                lines=[
                    OrderLineIn(product_id=ink.id, quantity=1, unit_price=Decimal("6.5")),
                    OrderLineIn(product_id=pen.id, quantity=3),
                ],
            ),
        )

    (created,) = entries(entity_type="order")
    assert (created.action, created.entity_id) == ("order.created", str(order.id))
    assert created.changes == {
        "lines": {
            "old": None,
            "new": [
                {"product_id": ink.id, "quantity": 1, "unit_price": "6.50", "line_total": "6.50"},
                {"product_id": pen.id, "quantity": 3, "unit_price": "2.50", "line_total": "7.50"},
            ],
        },
        "customer_id": {"old": None, "new": customer.id},
        "status": {"old": None, "new": "placed"},
        "ordered_at": {"old": None, "new": "2026-03-04T05:06:07.890123Z"},
        "currency": {"old": None, "new": "EUR"},
        "total": {"old": None, "new": "14.00"},
        "notes": {"old": None, "new": MASK},
    }
    with unit_of_work(work, write=False) as s:
        stored = orders_service.get(scope=EVERYTHING, session=s, order_id=order.id)
        flushed = recorder._snapshot(inspect(stored), "order", new=True)
    assert created.changes == flushed


def test_users_role_changes_disabling_and_api_keys_are_recorded_with_secrets_masked(
    work: sessionmaker[Session], make_user: MakeUser, entries: Entries
) -> None:
    user = make_user(Role.SALES, email="sam@example.com")
    with unit_of_work(work) as s:
        target = security_service.get_user(session=s, user_id=user.id)
        key, _secret = security_service.create_api_key(session=s, user=target, name="sync")
    with unit_of_work(work) as s:
        target = security_service.get_user(session=s, user_id=user.id)
        security_service.update_user(session=s, user=target, data=UserUpdate(role=Role.MANAGER))
    with unit_of_work(work) as s:
        target = security_service.get_user(session=s, user_id=user.id)
        security_service.disable_user(session=s, user=target)

    created = entries(action="user.created", entity_id=str(user.id))[0]
    assert created.changes["email"] == {"old": None, "new": MASK}
    assert created.changes["password_hash"] == {"old": None, "new": MASK}
    assert [e.action for e in entries(entity_type="user", entity_id=str(user.id))] == [
        "user.created",
        "user.role_changed",
        "user.disabled",
    ]
    assert entries(action="user.role_changed")[0].changes == {
        "role": {"old": "sales", "new": "manager"}
    }
    key_log = entries(entity_type="api_key", entity_id=str(key.id))
    assert [e.action for e in key_log] == ["api_key.created", "api_key.revoked"]
    assert key_log[0].changes["key_hash"] == {"old": None, "new": MASK}
    assert key_log[0].changes["name"] == {"old": None, "new": "sync"}


def test_work_that_rolls_back_leaves_no_entry(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    before = [e.seq for e in entries()]

    with pytest.raises(RuntimeError), unit_of_work(work) as s:
        customers_service.create(
            scope=EVERYTHING, session=s, data=CustomerCreate(name="Gone"), actor=actor
        )
        raise RuntimeError("the request failed after the flush")

    assert [e.seq for e in entries()] == before


def test_a_savepoint_rolled_back_takes_its_entries_with_it(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    with unit_of_work(work) as s:
        customers_service.create(
            scope=EVERYTHING, session=s, data=CustomerCreate(name="Kept"), actor=actor
        )
        with pytest.raises(RuntimeError), s.begin_nested():
            customers_service.create(
                scope=EVERYTHING, session=s, data=CustomerCreate(name="Undone"), actor=actor
            )
            raise RuntimeError("refused")
        with s.begin_nested():
            customers_service.create(
                scope=EVERYTHING, session=s, data=CustomerCreate(name="Also kept"), actor=actor
            )

    kept = [int(e.entity_id or 0) for e in entries(action="customer.created")]
    with work() as s:
        names = customers_service.names(scope=EVERYTHING, session=s, customer_ids=set(kept))
    assert [names.get(i) for i in kept] == ["Kept", "Also kept"]


def test_a_durable_entry_is_kept_when_the_work_rolls_back(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    with pytest.raises(RuntimeError), unit_of_work(work) as s:
        customers_service.create(
            scope=EVERYTHING, session=s, data=CustomerCreate(name="Gone"), actor=actor
        )
        audit_service.access_denied(
            session=s, code="permission-denied", reason="no", method="POST", path="/x"
        )
        raise RuntimeError("refused")

    [entry] = entries(action="access.denied")
    assert entry.details == {
        "code": "permission-denied",
        "reason": "no",
        "method": "POST",
        "path": "/x",
    }
    assert (entry.actor_id, entry.actor_email, entry.request_id) == (
        actor.id,
        "actor@example.com",
        "req-7",
    )
    assert entries(action="customer.created", entity_type="customer") == []


def test_a_throttled_sign_in_is_kept_with_the_wait_when_the_work_rolls_back(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    with pytest.raises(RuntimeError), unit_of_work(work) as s:
        audit_service.login_throttled(
            session=s, email=" Actor@Example.com", user=actor, wait_seconds=30
        )
        raise RuntimeError("429")

    [entry] = entries(action="auth.login_throttled")
    assert (entry.actor_id, entry.actor_email) == (actor.id, "actor@example.com")
    assert (entry.entity_type, entry.entity_id) == ("user", str(actor.id))
    assert entry.details == {"retry_after_seconds": 30}


def test_a_change_to_bookkeeping_fields_only_is_not_recorded(
    work: sessionmaker[Session], actor: User, entries: Entries
) -> None:
    before = len(entries())
    with unit_of_work(work) as s:
        user = s.get(User, actor.id)
        assert user is not None
        user.last_login_at = user.created_at

    assert len(entries()) == before


def test_history_for_lists_one_records_entries_newest_first(
    work: sessionmaker[Session], actor: User, sessions: sessionmaker[Session]
) -> None:
    customer = _customer(work, actor)
    other = _customer(work, actor)
    for stage in ("prospect", "customer"):
        with unit_of_work(work) as s:
            found = customers_service.get(scope=EVERYTHING, session=s, customer_id=customer.id)
            customers_service.update(
                scope=EVERYTHING,
                session=s,
                customer=found,
                data=CustomerUpdate.model_validate({"lifecycle_stage": stage}),
            )

    with sessions() as s:
        history = audit_service.history_for(s, "customer", customer.id, limit=2)
        everything = audit_service.history_for(s, "customer", customer.id)

    assert [e.changes["lifecycle_stage"]["new"] for e in history] == ["customer", "prospect"]
    assert [e.action for e in everything] == ["customer.updated"] * 2 + ["customer.created"]
    assert all(e.entity_id == str(customer.id) for e in everything)
    assert other.id != customer.id


def test_sessions_without_a_request_use_the_default_context(
    sessions: sessionmaker[Session], entries: Entries
) -> None:
    token = recorder._default_context.set(recorder.AuditContext(client_address="cli:ops"))
    try:
        with unit_of_work(sessions) as s:
            catalog_service.create(
                session=s, data=ProductCreate(sku="P-9", name="Pad", unit_price=Decimal("1"))
            )
    finally:
        recorder._default_context.reset(token)

    [entry] = entries(entity_type="product")
    assert (entry.client_address, entry.actor_id, entry.request_id) == ("cli:ops", None, None)


def test_entries_are_never_loaded_as_changes_of_their_own(
    work: sessionmaker[Session], actor: User, sessions: sessionmaker[Session]
) -> None:
    _customer(work, actor)

    with sessions() as s:
        count = len(list(s.scalars(select(AuditEntry))))
    assert count == 2  # the actor's user.created and the customer.created, nothing more
