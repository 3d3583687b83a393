"""Customer services: create, update, trash and restore, and the terms search uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.core.errors import InvalidInput, NotFound
from tenure.customers import search
from tenure.customers import service as customers_service
from tenure.customers.models import Customer, CustomerSearchTerm
from tenure.customers.schemas import CustomerCreate, CustomerUpdate
from tenure.db import unit_of_work
from tenure.security import passwords
from tenure.security.models import User
from tenure.security.scope import EVERYTHING

Sessions = sessionmaker[Session]


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users are only owners here; keep Argon2 cheap."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    return make_user("sales")


def _create(sessions: Sessions, actor: User, **fields: Any) -> Customer:
    with unit_of_work(sessions) as s:
        return customers_service.create(
            scope=EVERYTHING,
            session=s,
            data=CustomerCreate(**{"name": "Ada Lovelace", **fields}),
            actor=actor,
        )


def _update(sessions: Sessions, customer_id: int, **fields: Any) -> Customer:
    with unit_of_work(sessions) as s:
        customer = customers_service.get(scope=EVERYTHING, session=s, customer_id=customer_id)
        return customers_service.update(
            scope=EVERYTHING, session=s, customer=customer, data=CustomerUpdate(**fields)
        )


def _load(sessions: Sessions, customer_id: int) -> Customer:
    with sessions() as s:
        return customers_service.get(
            scope=EVERYTHING, session=s, customer_id=customer_id, include_trashed=True
        )


def _clear(sessions: Sessions, customer_id: int) -> dict[str, Any]:
    """The customer's sensitive fields, opened."""
    with sessions() as s:
        customer = customers_service.get(
            session=s, customer_id=customer_id, scope=EVERYTHING, include_trashed=True
        )
        return customers_service.revealed_fields(session=s, customer=customer)


def _customer_count(sessions: Sessions) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Customer)) or 0


def _terms(sessions: Sessions, customer_id: int) -> set[str]:
    with sessions() as s:
        return set(
            s.scalars(
                select(CustomerSearchTerm.term).where(CustomerSearchTerm.customer_id == customer_id)
            )
        )


# --- create --------------------------------------------------------------------------------


def test_the_creator_owns_a_new_customer_by_default(sessions: Sessions, owner: User) -> None:
    customer = _create(sessions, owner)

    assert _load(sessions, customer.id).owner_id == owner.id


def test_an_explicit_owner_is_kept(
    sessions: Sessions, owner: User, make_user: Callable[..., User]
) -> None:
    colleague = make_user("sales")

    customer = _create(sessions, owner, owner_id=colleague.id)

    assert _load(sessions, customer.id).owner_id == colleague.id


def test_an_unknown_owner_is_refused(sessions: Sessions, owner: User) -> None:
    with pytest.raises(InvalidInput) as caught:
        _create(sessions, owner, owner_id=999_999)

    assert caught.value.errors == [{"loc": ["body", "owner_id"], "msg": "There is no user 999999."}]
    assert _customer_count(sessions) == 0


def test_every_field_is_stored(sessions: Sessions, owner: User) -> None:
    customer = _create(
        sessions,
        owner,
        kind="person",
        name="Ada Lovelace",
        email="Ada@Example.com",
        phone="+44 20 7946 0000",
        address={"line1": "12 St James's Square", "city": "London", "country": "GB"},
        birth_date="1815-12-10",
        tax_id="GB 123 456 789",
        company_name="Analytical Engines Ltd",
        tags=["vip", "b2b"],
        lifecycle_stage="prospect",
        source="referral",
        notes="Prefers email.",
        custom={"shoe_size": 38, "newsletter": True, "interests": ["maths", "poetry"]},
    )

    stored = _load(sessions, customer.id)
    assert (stored.kind, stored.name) == ("person", "Ada Lovelace")
    assert _clear(sessions, customer.id) == {
        "email": "ada@example.com",
        "phone": "+44 20 7946 0000",
        "address": {"line1": "12 St James's Square", "city": "London", "country": "GB"},
        "birth_date": date(1815, 12, 10),
        "tax_id": "GB 123 456 789",
    }
    assert stored.company_name == "Analytical Engines Ltd"
    assert stored.tags == ["b2b", "vip"]
    assert (stored.lifecycle_stage, stored.source, stored.notes) == (
        "prospect",
        "referral",
        "Prefers email.",
    )
    assert stored.custom == {"shoe_size": 38, "newsletter": True, "interests": ["maths", "poetry"]}
    assert (stored.version, stored.deleted_at) == (1, None)


def test_a_new_customer_is_a_lead_person_by_default(sessions: Sessions, owner: User) -> None:
    stored = _load(sessions, _create(sessions, owner).id)

    assert (stored.kind, stored.lifecycle_stage, stored.tags, stored.custom) == (
        "person",
        "lead",
        [],
        {},
    )


def test_tags_are_trimmed_deduplicated_and_sorted(sessions: Sessions, owner: User) -> None:
    customer = _create(sessions, owner, tags=[" vip", "vip ", "b2b", "  "])

    assert _load(sessions, customer.id).tags == ["b2b", "vip"]


def test_a_company_cannot_have_a_company_name() -> None:
    with pytest.raises(ValidationError, match="company_name is for people"):
        CustomerCreate(kind="company", name="Globex", company_name="Globex Corporation")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("phone", "call me"),
        ("name", ""),
        ("lifecycle_stage", "friend"),
        ("kind", "robot"),
        ("custom", {"blob": "x" * 20_000}),
        ("tags", ["x" * 51]),
    ],
)
def test_invalid_fields_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        CustomerCreate(**{"name": "Ada", field: value})

    assert [e["loc"][0] for e in caught.value.errors()] == [field]


# --- update --------------------------------------------------------------------------------


def test_update_changes_only_the_fields_sent(sessions: Sessions, owner: User) -> None:
    customer = _create(sessions, owner, email="ada@example.com", source="fair", tags=["vip"])

    _update(sessions, customer.id, lifecycle_stage="customer")

    stored = _load(sessions, customer.id)
    assert (stored.lifecycle_stage, stored.source, stored.tags) == ("customer", "fair", ["vip"])
    assert _clear(sessions, customer.id)["email"] == "ada@example.com"
    assert stored.version == 2


def test_update_with_null_clears_an_optional_field(sessions: Sessions, owner: User) -> None:
    customer = _create(sessions, owner, email="ada@example.com", phone="+44 20 7946 0000")

    _update(sessions, customer.id, email=None)

    clear = _clear(sessions, customer.id)
    assert (clear["email"], clear["phone"]) == (None, "+44 20 7946 0000")
    assert _load(sessions, customer.id).email_index is None


@pytest.mark.parametrize("field", ["name", "kind", "lifecycle_stage"])
def test_update_refuses_to_clear_a_required_field(
    sessions: Sessions, owner: User, field: str
) -> None:
    customer = _create(sessions, owner)

    with pytest.raises(InvalidInput):
        _update(sessions, customer.id, **{field: None})

    stored = _load(sessions, customer.id)
    assert (stored.name, stored.kind, stored.lifecycle_stage, stored.version) == (
        "Ada Lovelace",
        "person",
        "lead",
        1,
    )


def test_a_person_with_a_company_name_cannot_become_a_company(
    sessions: Sessions, owner: User
) -> None:
    customer = _create(sessions, owner, company_name="Analytical Engines Ltd")

    with pytest.raises(InvalidInput) as caught:
        _update(sessions, customer.id, kind="company")

    assert caught.value.errors is not None
    assert caught.value.errors[0]["loc"] == ["body", "company_name"]
    assert _load(sessions, customer.id).kind == "person"


def test_a_tag_change_alone_bumps_the_version(sessions: Sessions, owner: User) -> None:
    customer = _create(sessions, owner, tags=["vip"])

    _update(sessions, customer.id, tags=["vip", "churn-risk"])

    stored = _load(sessions, customer.id)
    assert (stored.tags, stored.version) == (["churn-risk", "vip"], 2)


def test_an_unknown_new_owner_is_refused(sessions: Sessions, owner: User) -> None:
    customer = _create(sessions, owner)

    with pytest.raises(InvalidInput):
        _update(sessions, customer.id, owner_id=999_999)

    assert _load(sessions, customer.id).owner_id == owner.id


def test_renaming_replaces_the_search_terms(sessions: Sessions, owner: User) -> None:
    customer = _create(sessions, owner, name="Ada Lovelace")

    _update(sessions, customer.id, name="Ada King")

    assert _terms(sessions, customer.id) == {"ada king", "ada", "king"}


# --- trash ---------------------------------------------------------------------------------


def test_a_trashed_customer_is_not_found_until_restored(sessions: Sessions, owner: User) -> None:
    customer = _create(sessions, owner)
    with unit_of_work(sessions) as s:
        customers_service.trash(
            session=s,
            customer=customers_service.get(scope=EVERYTHING, session=s, customer_id=customer.id),
        )

    with sessions() as s, pytest.raises(NotFound):
        customers_service.get(scope=EVERYTHING, session=s, customer_id=customer.id)
    with sessions() as s:
        assert not customers_service.exists_active(
            scope=EVERYTHING, session=s, customer_id=customer.id
        )

    with unit_of_work(sessions) as s:
        customers_service.restore(scope=EVERYTHING, session=s, customer_id=customer.id)

    with sessions() as s:
        assert (
            customers_service.get(scope=EVERYTHING, session=s, customer_id=customer.id).deleted_at
            is None
        )
        assert customers_service.exists_active(scope=EVERYTHING, session=s, customer_id=customer.id)


def test_restoring_an_unknown_customer_raises_not_found(sessions: Sessions) -> None:
    with unit_of_work(sessions) as s, pytest.raises(NotFound):
        customers_service.restore(scope=EVERYTHING, session=s, customer_id=999_999)


# --- search terms --------------------------------------------------------------------------


def test_terms_are_each_word_and_the_whole_name_and_company() -> None:
    assert search.terms(name="Ada Lovelace", company_name="Analytical Engines") == {
        "ada lovelace",
        "ada",
        "lovelace",
        "analytical engines",
        "analytical",
        "engines",
    }


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("  Ada   LOVELACE ", "ada lovelace"),
        ("\uff2düller", "müller"),  # a full-width M folds; the umlaut stays
        ("Straße", "strasse"),
        ("José", "josé"),
    ],
)
def test_normalize_folds_case_and_width_and_keeps_accents(text: str, normalized: str) -> None:
    assert search.normalize(text) == normalized


def test_a_blank_query_has_no_prefix_range() -> None:
    assert search.prefix_range("   ") is None
