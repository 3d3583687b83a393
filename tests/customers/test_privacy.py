"""Privacy rights: a customer's data exported whole, and erased for good (the database
file, backups, search, kept responses and the audit log included), over the API and in
the web UI, for the roles allowed to."""

from __future__ import annotations

import html
import json
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.audit import service as audit_service
from tenure.audit.models import AuditEntry
from tenure.config import Settings
from tenure.models import metadata
from tenure.ops import backup, pgtools
from tenure.security import passwords
from tenure.security.permissions import ROLE_PERMISSIONS, Role
from tests.conftest import MakeUser, live_file_bytes, web_sign_in

Headers = dict[str, str]
Login = Callable[..., Headers]
URL = "/api/v1/customers"

# Each value is unusual enough that finding it anywhere means it was not erased.
PERSON: dict[str, Any] = {
    "name": "Zelda Quixotewright",
    "email": "zelda.quixotewright@example.org",
    "phone": "+44 20 7946 0321",
    "address": {"line1": "17 Marlowe Crescent", "city": "Thornbury", "country": "GB"},
    "company_name": "Quixotewright Lanterns",
    "tags": ["lantern-collector", "vip"],
    "lifecycle_stage": "customer",
    "source": "fair",
    "notes": "Allergic to brass polish; call after six.",
    "custom": {"loyalty_card": "QX-99812", "pets": ["Bramblefoot"]},
}
SECRETS = [
    "Zelda",
    "Quixotewright",
    "zelda.quixotewright",
    "7946 0321",
    "Marlowe Crescent",
    "Thornbury",
    "Allergic to brass",
    "QX-99812",
    "Bramblefoot",
    "lantern-collector",
    "Deliver to the back door",
]
ORDER_NOTE = "Deliver to the back door, ask for Zelda."


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing in is not what these tests are about; keep Argon2 cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def _person(
    client: TestClient, headers: Headers, owner_id: int | None = None, **extra: str
) -> dict[str, Any]:
    """A customer made through the API (owned by ``owner_id``, else the caller)."""
    body: dict[str, Any] = PERSON if owner_id is None else {**PERSON, "owner_id": owner_id}
    r = client.post(URL, json=body, headers={**headers, **extra})
    assert r.status_code == 201, r.text
    body = r.json()
    return body


def _product(client: TestClient, headers: Headers) -> int:
    product = {"sku": "LAMP-1", "name": "Storm lantern", "unit_price": "19.99"}
    r = client.post("/api/v1/products", json=product, headers=headers)
    assert r.status_code == 201, r.text
    product_id: int = r.json()["id"]
    return product_id


def _order(
    client: TestClient, headers: Headers, customer_id: int, product_id: int, **extra: str
) -> dict[str, Any]:
    body = {
        "customer_id": customer_id,
        "status": "paid",
        "notes": ORDER_NOTE,
        "lines": [{"product_id": product_id, "quantity": 3}],
    }
    r = client.post("/api/v1/orders", json=body, headers={**headers, **extra})
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    return order


def _erase(client: TestClient, headers: Headers, customer_id: int) -> dict[str, Any]:
    r = client.post(f"{URL}/{customer_id}/erase", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _entries(sessions: sessionmaker[Session], **where: Any) -> list[AuditEntry]:
    with sessions() as s:
        stmt = select(AuditEntry).order_by(AuditEntry.seq)
        for name, value in where.items():
            stmt = stmt.where(getattr(AuditEntry, name) == value)
        return list(s.scalars(stmt))


def _found(blob: str | bytes) -> list[str]:
    """The erased values that ``blob`` still holds (case-insensitive)."""
    data = blob.casefold() if isinstance(blob, str) else blob.decode("utf-8", "replace").casefold()
    return [s for s in SECRETS if s.casefold() in data]


def _all_rows(engine: Engine) -> str:
    """Every row of every table, as text."""
    with engine.connect() as conn:
        dumped = [
            repr(row) for table in metadata.sorted_tables for row in conn.execute(table.select())
        ]
    return "\n".join(dumped)


# ---------------------------------------------------------------- export


def test_an_export_holds_the_profile_orders_with_lines_and_history(
    client: TestClient, admin: Headers, sessions: sessionmaker[Session]
) -> None:
    customer = _person(client, admin)
    cid = customer["id"]
    order = _order(client, admin, cid, _product(client, admin))
    assert client.patch(f"{URL}/{cid}", json={"source": "web"}, headers=admin).status_code == 200

    r = client.get(f"{URL}/{cid}/export", headers=admin)

    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    doc = r.json()
    assert doc["format"] == "tenure.customer-export/1"
    profile = doc["customer"]
    for field in ("name", "email", "phone", "company_name", "notes", "custom", "tags"):
        assert profile[field] == PERSON[field], field
    assert profile["address"] == {**PERSON["address"], "line2": None, "region": None,
                                  "postal_code": None}  # fmt: skip
    assert (profile["source"], profile["erased_at"]) == ("web", None)
    assert doc["summary"]["order_count"] == 1
    assert doc["summary"]["total_spent"] == {"EUR": "59.97"}
    [exported_order] = doc["orders"]
    assert (exported_order["id"], exported_order["notes"]) == (order["id"], ORDER_NOTE)
    assert [(li["quantity"], li["line_total"]) for li in exported_order["lines"]] == [(3, "59.97")]
    assert [(e["action"], e["entity_id"]) for e in doc["history"]] == [
        ("customer.created", str(cid)),
        ("order.created", str(order["id"])),
        ("customer.updated", str(cid)),
    ]
    assert doc["history"][2]["changes"] == {"source": {"old": "fair", "new": "web"}}
    assert "actor_email" not in doc["history"][0]


def test_an_export_holds_tickets_interactions_tasks_and_opportunities(
    client: TestClient, admin: Headers
) -> None:
    cid = _person(client, admin)["id"]
    made: dict[str, dict[str, Any]] = {
        "tickets": {"type": "complaint", "subject": "Broken lid", "description": "It leaks."},
        "interactions": {"kind": "call", "subject": "Asked about the lid"},
        "tasks": {"title": "Send a new lid"},
        "opportunities": {"title": "Kitchen refit", "amount": "900.00"},
    }
    if client.get("/api/v1/pipeline-stages", headers=admin).json() == []:
        for name, p in (("Open", 20), ("Won", 100)):
            kind = "won" if name == "Won" else "open"
            body = {"name": name, "probability": p, "kind": kind}
            client.post("/api/v1/pipeline-stages", json=body, headers=admin)
    for resource, body in made.items():
        r = client.post(f"/api/v1/{resource}", json={"customer_id": cid, **body}, headers=admin)
        assert r.status_code == 201, r.text
    client.post("/api/v1/tickets", json={"customer_id": _person(client, admin)["id"],
                "type": "feedback", "subject": "Someone else's", "description": "."},
                headers=admin)  # fmt: skip

    doc = client.get(f"{URL}/{cid}/export", headers=admin).json()

    assert [t["subject"] for t in doc["tickets"]] == ["Broken lid"]
    assert doc["tickets"][0]["description"] == "It leaks."
    assert [e["kind"] for e in doc["tickets"][0]["events"]] == ["created"]
    assert [i["subject"] for i in doc["interactions"]] == ["Asked about the lid"]
    assert [t["title"] for t in doc["tasks"]] == ["Send a new lid"]
    assert [(o["title"], o["amount"]) for o in doc["opportunities"]] == [
        ("Kitchen refit", "900.00")
    ]


def test_each_export_is_recorded_in_the_audit_log_with_who_asked(
    client: TestClient, login: Login, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    manager = login(Role.MANAGER, email="mia@example.com")
    mia = client.get("/api/v1/auth/me", headers=manager).json()["id"]
    cid = _person(client, login(Role.ADMIN), owner_id=mia)["id"]

    assert client.get(f"{URL}/{cid}/export", headers=manager).status_code == 200
    assert client.get(f"{URL}/{cid}/export", headers=manager).status_code == 200

    exports = _entries(sessions, action="customer.exported")
    assert [(e.entity_type, e.entity_id) for e in exports] == [("customer", str(cid))] * 2
    assert {e.actor_email for e in exports} == {"mia@example.com"}
    assert exports[0].changes == {}


def test_exporting_a_customer_that_does_not_exist_is_404_and_records_nothing(
    client: TestClient, admin: Headers, sessions: sessionmaker[Session]
) -> None:
    r = client.get(f"{URL}/999999/export", headers=admin)

    assert r.status_code == 404
    assert _entries(sessions, action="customer.exported") == []


# ---------------------------------------------------------------- erase


def test_erase_clears_every_personal_field_and_marks_the_record(
    client: TestClient, admin: Headers
) -> None:
    customer = _person(client, admin)
    cid = customer["id"]

    erased = _erase(client, admin, cid)

    assert erased["name"] == f"Erased customer #{cid}"
    for field in ("email", "phone", "address", "company_name", "notes"):
        assert erased[field] is None, field
    assert (erased["custom"], erased["tags"]) == ({}, [])
    assert erased["erased_at"] is not None
    assert erased["version"] == customer["version"] + 1
    # What does not identify the person stays.
    assert (erased["lifecycle_stage"], erased["source"], erased["owner_id"]) == (
        "customer",
        "fair",
        customer["owner_id"],
    )
    assert client.get(f"{URL}/{cid}", headers=admin).json()["name"] == erased["name"]


def test_orders_and_their_amounts_stay_linked_to_the_erased_record(
    client: TestClient, admin: Headers
) -> None:
    cid = _person(client, admin)["id"]
    order = _order(client, admin, cid, _product(client, admin))
    before = client.get(f"{URL}/{cid}", headers=admin).json()["summary"]

    erased = _erase(client, admin, cid)

    kept = client.get(f"/api/v1/orders/{order['id']}", headers=admin).json()
    assert (kept["customer_id"], kept["total"], kept["status"]) == (cid, "59.97", "paid")
    assert [li["quantity"] for li in kept["lines"]] == [3]
    assert kept["notes"] is None
    assert erased["summary"] == before
    assert client.get(f"/api/v1/orders?customer_id={cid}", headers=admin).json()["items"]


def test_an_erased_customer_is_not_found_by_their_old_name_or_email(
    client: TestClient, admin: Headers
) -> None:
    cid = _person(client, admin)["id"]
    for q in ("zelda", "quixotewright", "zelda.quixotewright@example.org", "Quixotewright Lan"):
        assert [c["id"] for c in client.get(URL, params={"q": q}, headers=admin).json()["items"]]

    _erase(client, admin, cid)

    for q in ("zelda", "quixotewright", "zelda.quixotewright@example.org", "Quixotewright Lan"):
        assert client.get(URL, params={"q": q}, headers=admin).json()["items"] == [], q
    by_email = client.get(URL, params={"email": PERSON["email"]}, headers=admin).json()
    assert by_email["items"] == []
    by_tag = client.get(URL, params={"tag": "lantern-collector"}, headers=admin).json()
    assert by_tag["items"] == []


def test_a_trashed_customer_can_be_erased_and_restoring_it_brings_back_no_data(
    client: TestClient, admin: Headers
) -> None:
    cid = _person(client, admin)["id"]
    assert client.delete(f"{URL}/{cid}", headers=admin).status_code == 204

    erased = _erase(client, admin, cid)
    assert erased["deleted_at"] is not None
    trash = client.get(URL, params={"trashed": "true"}, headers=admin).json()["items"]
    assert [(c["id"], c["name"], c["email"]) for c in trash] == [(cid, erased["name"], None)]

    restored = client.post(f"{URL}/{cid}/restore", headers=admin).json()
    assert (restored["name"], restored["email"], restored["tags"]) == (erased["name"], None, [])
    assert restored["erased_at"] == erased["erased_at"]


def test_erasing_again_changes_nothing_and_records_nothing(
    client: TestClient, admin: Headers, sessions: sessionmaker[Session]
) -> None:
    cid = _person(client, admin)["id"]
    first = _erase(client, admin, cid)
    entries = len(_entries(sessions))

    again = _erase(client, admin, cid)

    assert again == first
    assert len(_entries(sessions)) == entries


def test_exporting_an_erased_customer_shows_only_what_is_left(
    client: TestClient, admin: Headers
) -> None:
    cid = _person(client, admin)["id"]
    _order(client, admin, cid, _product(client, admin))
    _erase(client, admin, cid)

    r = client.get(f"{URL}/{cid}/export", headers=admin)

    assert r.status_code == 200
    assert _found(r.text) == []
    doc = r.json()
    assert doc["customer"]["erased_at"] is not None
    assert [o["total"] for o in doc["orders"]] == ["59.97"]
    assert doc["history"][-1]["action"] == "customer.erased"


def test_erasing_a_customer_that_does_not_exist_is_404(
    client: TestClient, admin: Headers, sessions: sessionmaker[Session]
) -> None:
    assert client.post(f"{URL}/999999/erase", headers=admin).status_code == 404
    assert _entries(sessions, action="customer.erased") == []


# ---------------------------------------------------------------- the audit log


def test_the_audit_log_records_the_erasure_once_without_the_values_and_still_verifies(
    client: TestClient, admin: Headers, sessions: sessionmaker[Session]
) -> None:
    cid = _person(client, admin)["id"]
    order = _order(client, admin, cid, _product(client, admin))
    patch = {"notes": "Now prefers letters, Zelda says.", "name": "Zelda Q. Quixotewright"}
    assert client.patch(f"{URL}/{cid}", json=patch, headers=admin).status_code == 200

    _erase(client, admin, cid)

    about = _entries(sessions, entity_type="customer", entity_id=str(cid))
    assert [e.action for e in about] == ["customer.created", "customer.updated", "customer.erased"]
    erasure = about[-1]
    assert erasure.changes == {}
    assert erasure.details == {
        "fields": [
            "address",
            "company_name",
            "custom",
            "email",
            "name",
            "notes",
            "phone",
            "tags",
        ],
        "orders_kept": 1,
        "order_notes_cleared": 1,
        "interactions_cleared": 0,
        "kept_responses_erased": 0,
    }
    assert erasure.actor_id is not None
    [notes_cleared] = _entries(sessions, action="order.updated", entity_id=str(order["id"]))
    assert notes_cleared.changes == {"notes": {"old": "[masked]", "new": None}}
    everything = [(e.changes, e.details) for e in _entries(sessions)]
    assert _found(json.dumps(everything)) == []
    with sessions() as s:
        assert audit_service.verify(session=s).intact


# ---------------------------------------------------------------- nothing left anywhere


def test_no_table_holds_any_erased_value(
    client: TestClient, admin: Headers, engine: Engine
) -> None:
    cid = _person(client, admin)["id"]
    _order(client, admin, cid, _product(client, admin))
    assert _found(_all_rows(engine)) != []  # the check can see them while they are there

    _erase(client, admin, cid)

    assert _found(_all_rows(engine)) == []


def _backup_text(settings: Settings, archive: Path, work: Path) -> bytes:
    """The data of a backup as bytes to search: the SQLite file, or pg_dump's as SQL."""
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(work, filter="data")
    data = next(p for p in work.iterdir() if p.name != backup.MANIFEST)
    if backup.database_kind(settings) == "sqlite":
        return data.read_bytes()
    restore = pgtools.find("pg_restore", settings)
    return subprocess.run([restore, "--file=-", str(data)], capture_output=True, check=True).stdout


def test_the_database_file_and_a_backup_made_afterwards_hold_none_of_it(
    client: TestClient, admin: Headers, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    cid = _person(client, admin)["id"]
    _order(client, admin, cid, _product(client, admin))
    sqlite = engine.dialect.name == "sqlite"
    path = backup.sqlite_path(settings) if sqlite else None
    if path is not None:  # the values reach the file itself, not only the write-ahead log
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        assert _found(live_file_bytes(path)) != []

    _erase(client, admin, cid)

    if path is not None:
        # The erasure emptied the write-ahead log once it had committed; deleted content
        # was zeroed where it lay (secure_delete), so the file holds none of it.
        assert Path(f"{path}-wal").stat().st_size == 0
        assert _found(live_file_bytes(path)) == []
    archive, _manifest = backup.create(settings, output=tmp_path / "after.tar.gz")
    (tmp_path / "unpacked").mkdir()
    assert _found(_backup_text(settings, archive, tmp_path / "unpacked")) == []


def test_kept_responses_that_held_their_data_are_replaced_and_not_run_again(
    client: TestClient, admin: Headers, engine: Engine
) -> None:
    customer = _person(client, admin, owner_id=None, **{"Idempotency-Key": "key-1"})
    cid = customer["id"]
    product = _product(client, admin)
    _order(client, admin, cid, product, **{"Idempotency-Key": "key-2"})
    other = client.post(
        URL, json={"name": "Olaf Other"}, headers={**admin, "Idempotency-Key": "key-3"}
    ).json()

    erased = _erase(client, admin, cid)

    assert erased["id"] == cid
    retried = client.post(URL, json=PERSON, headers={**admin, "Idempotency-Key": "key-1"})
    assert retried.status_code == 410
    assert retried.headers["content-type"] == "application/problem+json"
    assert retried.json()["type"] == "urn:tenure:problem:response-erased"
    assert _found(retried.content) == []
    body = {"customer_id": cid, "status": "paid", "notes": ORDER_NOTE,
            "lines": [{"product_id": product, "quantity": 3}]}  # fmt: skip
    order_retry = client.post(
        "/api/v1/orders", json=body, headers={**admin, "Idempotency-Key": "key-2"}
    )
    assert order_retry.status_code == 410
    # Nothing was created again, and other kept responses are untouched.
    assert client.get(URL, params={"count": "true"}, headers=admin).json()["total"] == 2
    olaf = client.post(
        URL, json={"name": "Olaf Other"}, headers={**admin, "Idempotency-Key": "key-3"}
    )
    assert (olaf.status_code, olaf.json()["id"]) == (201, other["id"])
    assert _found(_all_rows(engine)) == []


# ---------------------------------------------------------------- permissions

EXPORTERS = {role for role, perms in ROLE_PERMISSIONS.items() if "customers:export" in perms}
ERASERS = {role for role, perms in ROLE_PERMISSIONS.items() if "customers:erase" in perms}


def test_admins_and_managers_export_and_only_admins_erase() -> None:
    assert sorted(EXPORTERS) == [Role.ADMIN, Role.MANAGER]
    assert sorted(ERASERS) == [Role.ADMIN]


@pytest.mark.parametrize("role", [r for r in Role if r not in EXPORTERS])
def test_a_role_without_customers_export_gets_403_and_nothing_is_recorded_as_exported(
    client: TestClient, login: Login, admin: Headers, sessions: sessionmaker[Session], role: Role
) -> None:
    cid = _person(client, admin)["id"]

    r = client.get(f"{URL}/{cid}/export", headers=login(role))

    assert r.status_code == 403
    assert r.json()["type"] == "urn:tenure:problem:permission-denied"
    assert _entries(sessions, action="customer.exported") == []


@pytest.mark.parametrize("role", [r for r in Role if r not in ERASERS])
def test_a_role_without_customers_erase_gets_403_and_nothing_is_erased(
    client: TestClient, login: Login, admin: Headers, role: Role
) -> None:
    customer = _person(client, admin)

    r = client.post(f"{URL}/{customer['id']}/erase", headers=login(role))

    assert r.status_code == 403
    after = client.get(f"{URL}/{customer['id']}?reveal=true", headers=admin).json()
    assert (after["name"], after["email"], after["version"]) == (
        PERSON["name"],
        PERSON["email"],
        customer["version"],
    )


# ---------------------------------------------------------------- the web UI


def _page(client: TestClient, cid: int) -> str:
    r = client.get(f"/customers/{cid}")
    assert r.status_code == 200, r.text
    return r.text


@pytest.mark.parametrize(
    ("role", "export", "erase"),
    [(Role.ADMIN, True, True), (Role.MANAGER, True, False), (Role.SALES, False, False)],
)
def test_the_360_page_offers_export_and_erase_only_to_roles_allowed_to(
    client: TestClient,
    admin: Headers,
    make_user: MakeUser,
    role: Role,
    export: bool,
    erase: bool,
) -> None:
    user = make_user(role)
    cid = _person(client, admin, owner_id=user.id)["id"]  # in the user's scope
    web_sign_in(client, user)

    page = _page(client, cid)

    assert (f'href="/customers/{cid}/export"' in page) is export
    assert (f'href="/customers/{cid}/erase"' in page) is erase


def test_the_export_link_downloads_the_json_and_is_recorded(
    client: TestClient, admin: Headers, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    manager = make_user(Role.MANAGER)
    cid = _person(client, admin, owner_id=manager.id)["id"]
    web_sign_in(client, manager)

    r = client.get(f"/customers/{cid}/export")

    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-disposition"] == f'attachment; filename="customer-{cid}.json"'
    assert r.json()["customer"]["email"] == PERSON["email"]
    assert len(_entries(sessions, action="customer.exported")) == 1


def test_web_export_and_erase_are_refused_to_roles_without_the_permission(
    client: TestClient, admin: Headers, make_user: MakeUser
) -> None:
    cid = _person(client, admin)["id"]
    token = web_sign_in(client, make_user(Role.SALES))

    assert client.get(f"/customers/{cid}/export").status_code == 403
    assert client.get(f"/customers/{cid}/erase").status_code == 403
    form = {"csrf_token": token, "confirm_name": PERSON["name"]}
    assert client.post(f"/customers/{cid}/erase", data=form).status_code == 403
    assert client.get(f"{URL}/{cid}", headers=admin).json()["erased_at"] is None


def test_erasing_in_the_web_ui_needs_the_typed_name_and_a_csrf_token(
    client: TestClient, admin: Headers, make_user: MakeUser
) -> None:
    cid = _person(client, admin)["id"]
    token = web_sign_in(client, make_user(Role.ADMIN))
    confirm = client.get(f"/customers/{cid}/erase")
    assert confirm.status_code == 200
    assert 'name="confirm_name"' in confirm.text

    wrong = client.post(
        f"/customers/{cid}/erase", data={"csrf_token": token, "confirm_name": "Zelda"}
    )
    forged = client.post(f"/customers/{cid}/erase", data={"confirm_name": PERSON["name"]})

    assert wrong.status_code == 422
    assert "Type the customer&#39;s name exactly as shown to confirm." in wrong.text
    assert forged.status_code == 403
    assert client.get(f"{URL}/{cid}", headers=admin).json()["erased_at"] is None

    done = client.post(
        f"/customers/{cid}/erase",
        data={"csrf_token": token, "confirm_name": "  zelda   QUIXOTEWRIGHT "},
        follow_redirects=False,
    )

    assert (done.status_code, done.headers["location"]) == (303, f"/customers/{cid}")
    page = _page(client, cid)
    assert 'data-testid="erased"' in page
    assert f'href="/customers/{cid}/erase"' not in page
    assert _found(page) == []


def test_a_trashed_customer_is_erased_from_the_trash_page(
    client: TestClient, admin: Headers, make_user: MakeUser
) -> None:
    cid = _person(client, admin)["id"]
    assert client.delete(f"{URL}/{cid}", headers=admin).status_code == 204
    token = web_sign_in(client, make_user(Role.ADMIN))
    assert f'href="/customers/{cid}/erase"' in client.get("/customers/trash").text

    done = client.post(
        f"/customers/{cid}/erase",
        data={"csrf_token": token, "confirm_name": PERSON["name"]},
        follow_redirects=False,
    )

    assert (done.status_code, done.headers["location"]) == (303, "/customers/trash")
    trash = client.get("/customers/trash").text
    assert f"Erased customer #{cid}" in trash
    assert _found(trash) == []


def test_the_360_page_shows_who_changed_what_and_when_with_personal_values_hidden(
    client: TestClient, make_user: MakeUser
) -> None:
    boss = make_user(Role.ADMIN, name="Bea Boss")
    r = client.post(
        "/api/v1/auth/login", json={"email": boss.email, "password": "correct-horse-battery"}
    )
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    rep = make_user(Role.SALES)
    cid = _person(client, headers, owner_id=rep.id)["id"]
    change = {"lifecycle_stage": "churned", "email": "zq@example.net"}
    assert client.patch(f"{URL}/{cid}", json=change, headers=headers).status_code == 200
    web_sign_in(client, rep)

    page = _page(client, cid)

    history = html.unescape(page[page.index('id="history"') :])
    assert history.index('data-action="customer.updated"') < history.index(
        'data-action="customer.created"'
    )
    assert "Customer changed by Bea Boss" in history
    assert "Customer created by Bea Boss" in history
    assert "<dt>Lifecycle stage</dt><dd>customer → churned</dd>" in history
    assert "<dt>Email</dt><dd>hidden → hidden</dd>" in history
    assert "zq@example.net" not in history
    assert "Quixotewright" not in history
