"""Customers' sensitive fields at rest and on the way out: never in the database in plain
text (not in the SQLite file or its write-ahead log, not in a pg_dump), masked in every
answer unless revealed by someone allowed to, each reveal audited, and still found
exactly by email or phone."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from tenure.audit.models import AuditEntry
from tenure.config import Settings
from tenure.core.idempotency import IdempotencyRecord
from tenure.customers.models import Customer, CustomerSearchTerm
from tenure.ops import backup, pgtools
from tenure.security import passwords
from tenure.security.permissions import Role
from tests.conftest import MakeUser, live_file_bytes
from tests.conftest import web_sign_in as sign_in

Headers = dict[str, str]
Login = Callable[..., Headers]
URL = "/api/v1/customers"

PEOPLE: list[dict[str, Any]] = [
    {
        "name": "Wilhelmina Oyelaran",
        "email": "wilhelmina.oyelaran@quietmail.example",
        "phone": "+1 (415) 555-0187",
        "address": {
            "line1": "1600 Juniperhollow Lane",
            "city": "Springfield",
            "postal_code": "97477",
            "country": "US",
        },
        "birth_date": "1984-07-19",
        "tax_id": "TAXID-558-31-9920",
    },
    {
        "name": "Bartholomew Quist",
        "email": "b.quist@harbourlight.example",
        "phone": "+49 30 90182736",
        "address": {"line1": "Lindenzauberweg 42", "city": "Berlin", "country": "DE"},
    },
]
REVEALERS = {Role.ADMIN, Role.MANAGER, Role.SALES, Role.SUPPORT}


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def _create(client: TestClient, headers: Headers, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(URL, json=body, headers=headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _forms(value: str) -> set[str]:
    """A phone number as typed, as its digits alone, and in E.164."""
    digits = re.sub(r"\D", "", value)
    return {value, digits, "+" + digits}


def _sensitive() -> list[str]:
    """Every sensitive value of PEOPLE, in every form it might be stored in."""
    found: set[str] = set()
    for person in PEOPLE:
        found |= {person["email"], person["email"].upper()} | _forms(person["phone"])
        found.add(person["address"]["line1"])
        for key in ("tax_id", "birth_date"):
            if key in person:
                found.add(person[key])
    return sorted(found)


def _held(blob: bytes) -> list[str]:
    return [value for value in _sensitive() if value.encode() in blob]


def _entries(sessions: sessionmaker[Session], action: str) -> list[AuditEntry]:
    with sessions() as s:
        return list(
            s.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            )
        )


# --- at rest --------------------------------------------------------------------------


def test_the_database_holds_no_email_phone_or_address_in_plain_text(
    client: TestClient, admin: Headers, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    for person in PEOPLE:
        _create(client, admin, person)

    if engine.dialect.name == "sqlite":
        path = backup.sqlite_path(settings)
        # Before a checkpoint the rows are in the write-ahead log; after it, in the file.
        wal = live_file_bytes(Path(f"{path}-wal"))
        assert _held(wal) == []
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        stored = live_file_bytes(path)
    else:
        dump = pgtools.find("pg_dump", settings)
        target, env = pgtools.connection(settings.sqlalchemy_url)
        stored = subprocess.run(
            [dump, "--data-only", f"--dbname={target}"],
            capture_output=True,
            check=True,
            env=env,
        ).stdout
    assert b"Bartholomew Quist" in stored  # the rows are there
    assert _held(stored) == []


def test_sensitive_values_are_stored_sealed_under_the_primary_key(
    client: TestClient, admin: Headers, engine: Engine, sealer: Any
) -> None:
    cid = _create(client, admin, PEOPLE[0])["id"]

    with engine.connect() as conn:
        row = conn.execute(select(Customer.__table__).where(Customer.id == cid)).one()._mapping
    for name in ("email", "phone", "address", "birth_date", "tax_id"):
        assert row[f"{name}_cipher"].startswith(f"{sealer.primary}:")
    assert sealer.open("customer.tax_id", row["tax_id_cipher"]) == PEOPLE[0]["tax_id"]


def test_search_terms_hold_names_and_companies_only(
    client: TestClient, admin: Headers, sessions: sessionmaker[Session]
) -> None:
    _create(client, admin, {**PEOPLE[0], "company_name": "Quiet Mail Ltd"})

    with sessions() as s:
        terms = set(s.scalars(select(CustomerSearchTerm.term)))
    assert terms == {
        "wilhelmina oyelaran",
        "wilhelmina",
        "oyelaran",
        "quiet mail ltd",
        "quiet",
        "mail",
        "ltd",
    }


def test_a_kept_idempotent_response_holds_no_clear_value(
    client: TestClient, admin: Headers, sessions: sessionmaker[Session]
) -> None:
    r = client.post(URL, json=PEOPLE[0], headers={**admin, "Idempotency-Key": "create-1"})
    assert r.status_code == 201

    again = client.post(URL, json=PEOPLE[0], headers={**admin, "Idempotency-Key": "create-1"})

    assert again.json() == r.json()
    with sessions() as s:
        [kept] = s.scalars(select(IdempotencyRecord.body))
    assert kept is not None and b"w\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2@" in kept  # "w•••@"
    assert _held(kept) == []


# --- masked, revealed ------------------------------------------------------------------


def test_answers_are_masked_by_default(client: TestClient, admin: Headers) -> None:
    cid = _create(client, admin, PEOPLE[0])["id"]
    masked = {
        "email": "w•••@quietmail.example",
        "phone": "•••• 0187",
        "address": {
            "line1": None,
            "line2": None,
            "city": "Springfield",
            "region": None,
            "postal_code": None,
            "country": "US",
        },
        "birth_date": None,
        "tax_id": None,
        "revealed": False,
        "withheld": ["email", "phone", "address", "birth_date", "tax_id"],
    }

    detail = client.get(f"{URL}/{cid}", headers=admin).json()
    [listed] = client.get(URL, headers=admin).json()["items"]
    [searched] = client.get(URL, params={"q": "wilhel"}, headers=admin).json()["items"]

    for answer in (detail, listed, searched):
        assert {k: answer[k] for k in masked} == masked


def test_reveal_shows_the_clear_values_and_is_recorded_without_them(
    client: TestClient, admin: Headers, sessions: sessionmaker[Session]
) -> None:
    cid = _create(client, admin, PEOPLE[0])["id"]

    r = client.get(f"{URL}/{cid}", params={"reveal": "true"}, headers=admin)

    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert {k: body[k] for k in ("email", "phone", "birth_date", "tax_id")} == {
        k: PEOPLE[0][k] for k in ("email", "phone", "birth_date", "tax_id")
    }
    assert body["address"]["line1"] == "1600 Juniperhollow Lane"
    assert (body["revealed"], body["withheld"]) == (True, [])
    [entry] = _entries(sessions, "customer.revealed")
    assert (entry.entity_type, entry.entity_id) == ("customer", str(cid))
    assert entry.details == {
        "fields": ["address", "birth_date", "email", "phone", "tax_id"],
        "purpose": "view",
    }
    assert entry.actor_id is not None
    assert _held(repr((entry.changes, entry.details)).encode()) == []


@pytest.mark.parametrize("role", list(Role))
def test_only_roles_with_customers_reveal_may_reveal(
    client: TestClient,
    admin: Headers,
    login: Login,
    sessions: sessionmaker[Session],
    role: Role,
) -> None:
    headers = login(role)
    me = client.get("/api/v1/auth/me", headers=headers).json()["id"]
    cid = _create(client, admin, {**PEOPLE[1], "owner_id": me})["id"]  # in every scope

    r = client.get(f"{URL}/{cid}", params={"reveal": "true"}, headers=headers)

    if role in REVEALERS:
        assert (r.status_code, r.json()["email"]) == (200, PEOPLE[1]["email"])
        assert len(_entries(sessions, "customer.revealed")) == 1
    else:
        assert r.status_code == 403
        assert r.json()["detail"] == f"Your role ({role.value}) lacks 'customers:reveal'."
        assert _held(r.content) == []
        assert _entries(sessions, "customer.revealed") == []
        assert len(_entries(sessions, "access.denied")) == 1


def test_writes_answer_masked(client: TestClient, admin: Headers) -> None:
    created = _create(client, admin, PEOPLE[1])

    patched = client.patch(
        f"{URL}/{created['id']}", json={"tax_id": "DE 811 907 980"}, headers=admin
    ).json()

    assert _held(repr(created).encode()) == _held(repr(patched).encode()) == []
    assert patched["withheld"] == ["email", "phone", "address", "tax_id"]


def test_the_privacy_export_holds_the_clear_values(client: TestClient, admin: Headers) -> None:
    cid = _create(client, admin, PEOPLE[0])["id"]

    exported = client.get(f"{URL}/{cid}/export", headers=admin).json()["customer"]

    assert (exported["email"], exported["tax_id"], exported["revealed"]) == (
        PEOPLE[0]["email"],
        PEOPLE[0]["tax_id"],
        True,
    )


# --- exact lookup ------------------------------------------------------------------------


@pytest.fixture
def two(client: TestClient, admin: Headers) -> list[int]:
    return [_create(client, admin, person)["id"] for person in PEOPLE]


def _ids(client: TestClient, headers: Headers, **params: str) -> list[int]:
    r = client.get(URL, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


@pytest.mark.parametrize(
    "email", ["wilhelmina.oyelaran@quietmail.example", " Wilhelmina.Oyelaran@QUIETMAIL.example "]
)
def test_an_email_finds_its_customer_exactly(
    client: TestClient, admin: Headers, two: list[int], email: str
) -> None:
    assert _ids(client, admin, email=email) == [two[0]]
    assert _ids(client, admin, q=email) == [two[0]]
    assert _ids(client, admin, q=email, sort="name") == [two[0]]


@pytest.mark.parametrize(
    "phone", ["+14155550187", "(415) 555-0187", "415.555.0187", "1 415 555 0187"]
)
def test_a_phone_number_in_any_format_finds_its_customer(
    client: TestClient, admin: Headers, two: list[int], phone: str
) -> None:
    assert _ids(client, admin, phone=phone) == [two[0]]
    assert _ids(client, admin, q=phone) == [two[0]]


def test_part_of_an_email_finds_nobody(client: TestClient, admin: Headers, two: list[int]) -> None:
    assert _ids(client, admin, q="wilhelmina.oyelaran@") == []
    assert _ids(client, admin, email="quietmail.example") == []


def test_a_phone_filter_that_is_not_a_number_is_refused(
    client: TestClient, admin: Headers, two: list[int]
) -> None:
    r = client.get(URL, params={"phone": "12"}, headers=admin)

    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"loc": ["query", "phone"], "msg": "must be a phone number, e.g. +49 30 1234567"}
    ]


def test_a_phone_no_region_can_read_is_refused_and_nothing_is_created(
    client: TestClient, admin: Headers, engine: Engine
) -> None:
    r = client.post(URL, json={"name": "Ada", "phone": "+999 1234567"}, headers=admin)

    assert r.status_code == 422
    assert r.json()["errors"] == [
        {
            "loc": ["body", "phone"],
            "msg": "This is not a phone number Tenure can read. Write it with its country "
            "code, e.g. +49 30 1234567.",
        }
    ]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM customer")).scalar() == 0


# --- the web pages -----------------------------------------------------------------------


def test_the_360_page_masks_and_the_reveal_fragment_shows_and_records(
    client: TestClient,
    admin: Headers,
    make_user: MakeUser,
    sessions: sessionmaker[Session],
) -> None:
    cid = _create(client, admin, PEOPLE[0])["id"]
    sign_in(client, make_user(Role.SUPPORT))

    page = client.get(f"/customers/{cid}").text
    assert _held(page.encode()) == []
    assert '<dd data-testid="phone">•••• 0187</dd>' in page
    assert f'hx-get="/customers/{cid}/personal?reveal=true"' in page
    assert _entries(sessions, "customer.revealed") == []

    fragment = client.get(f"/customers/{cid}/personal", params={"reveal": "true"})

    assert fragment.status_code == 200
    assert fragment.headers["cache-control"] == "no-store"
    assert PEOPLE[0]["email"] in fragment.text
    assert "1600 Juniperhollow Lane" in fragment.text
    assert PEOPLE[0]["tax_id"] in fragment.text
    [entry] = _entries(sessions, "customer.revealed")
    assert entry.details["purpose"] == "view"


def test_a_role_without_reveal_sees_no_reveal_button_and_is_refused(
    client: TestClient, admin: Headers, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    cid = _create(client, admin, PEOPLE[0])["id"]
    sign_in(client, make_user(Role.MARKETING))

    page = client.get(f"/customers/{cid}").text
    fragment = client.get(f"/customers/{cid}/personal", params={"reveal": "true"})

    assert "personal?reveal=true" not in page
    assert "your role cannot reveal it" in page
    assert fragment.status_code == 403
    assert _held(fragment.content) == []
    assert _entries(sessions, "customer.revealed") == []


def test_opening_the_edit_form_is_a_recorded_reveal(
    client: TestClient, admin: Headers, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    cid = _create(client, admin, PEOPLE[1])["id"]
    sign_in(client, make_user(Role.SUPPORT))  # reaches every customer

    form = client.get(f"/customers/{cid}/edit").text

    assert f'value="{PEOPLE[1]["email"]}"' in form
    [entry] = _entries(sessions, "customer.revealed")
    assert entry.details == {"fields": ["address", "email", "phone"], "purpose": "edit"}


def test_the_list_page_shows_masked_contacts(
    client: TestClient, admin: Headers, make_user: MakeUser
) -> None:
    _create(client, admin, PEOPLE[1])
    sign_in(client, make_user(Role.SUPPORT))  # reaches every customer

    page = client.get("/customers").text
    by_phone = client.get("/customers", params={"q": "+49 30 9018 2736"}).text

    assert "<td>b•••@harbourlight.example</td>" in page
    assert "<td>•••• 2736</td>" in page
    assert _held(page.encode()) == []
    assert "Bartholomew Quist" in by_phone
