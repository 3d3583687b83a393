"""Migrations: they build exactly the schema the models describe, and they run both ways.

Each test uses a database of its own (``fresh_engine``), on SQLite or on PostgreSQL
like the rest of the run, never the shared test database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect
from sqlalchemy.dialects import postgresql

from tenure.app import create_app
from tenure.config import Settings
from tenure.customers import personal
from tenure.customers.models import Customer, CustomerSearchTerm
from tenure.models import metadata
from tenure.ops import migrate
from tenure.security import keyring
from tenure.security.fields import Sealer

VERSION_TABLE = "alembic_version"


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {VERSION_TABLE}


def _schema_diff(engine: Engine) -> list[object]:
    """What ``alembic check`` reports: differences between the database and the models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff: list[object] = compare_metadata(context, metadata)
    return diff


def test_migrated_schema_matches_the_models(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)

    assert _schema_diff(fresh_engine) == []


def test_upgrade_reaches_the_latest_revision(fresh_engine: Engine) -> None:
    assert migrate.current(fresh_engine) is None

    migrate.upgrade(fresh_engine)

    assert migrate.current(fresh_engine) == migrate.head()
    assert _tables(fresh_engine) == set(metadata.tables)


def test_downgrade_to_base_removes_every_table_and_upgrade_rebuilds_them(
    fresh_engine: Engine,
) -> None:
    migrate.upgrade(fresh_engine)

    migrate.downgrade(fresh_engine, "base")
    assert migrate.current(fresh_engine) is None
    assert _tables(fresh_engine) == set()

    migrate.upgrade(fresh_engine)
    assert migrate.current(fresh_engine) == migrate.head()
    assert _schema_diff(fresh_engine) == []


def test_readyz_is_503_with_the_reason_until_the_schema_is_current(
    fresh_settings: Settings, fresh_engine: Engine
) -> None:
    head = migrate.head()
    with TestClient(create_app(fresh_settings, engine=fresh_engine)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {
            "status": "unavailable",
            "reason": f"schema at None, expected {head}; run 'tenure upgrade'",
        }

        migrate.upgrade(fresh_engine)
        r = client.get("/readyz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "schema": head}


def test_readyz_is_503_after_a_downgrade(fresh_settings: Settings, fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    head = migrate.head()
    previous = _previous_revision()
    migrate.downgrade(fresh_engine, previous or "base")

    with TestClient(create_app(fresh_settings, engine=fresh_engine)) as client:
        r = client.get("/readyz")

    assert r.status_code == 503
    assert r.json() == {
        "status": "unavailable",
        "reason": f"schema at {previous}, expected {head}; run 'tenure upgrade'",
    }


def _previous_revision() -> str | None:
    """The revision just before head (None when there is only one)."""
    script = ScriptDirectory.from_config(migrate.config())
    head_id = migrate.head()
    assert head_id is not None
    head = script.get_revision(head_id)
    assert head is not None
    down = head.down_revision
    assert down is None or isinstance(down, str), "head is a merge; pick one parent"
    return down


# --- 0008: customers' sensitive fields encrypted ------------------------------------------

OLD_CUSTOMERS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "Ada Lovelace",
        "email": "ada.lovelace@analytical.example",
        "phone": "+44 20 7946 0000",
        "address": {"line1": "12 St James's Square", "city": "London", "country": "GB"},
    },
    {"id": 2, "name": "Ring Ring", "email": None, "phone": "call me", "address": None},
    {"id": 3, "name": "Nobody", "email": None, "phone": None, "address": None},
]


def _customers_at_0007(engine: Engine) -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    customer = sa.table(
        "customer",
        *(sa.column(c) for c in ("id", "kind", "name", "name_sort", "email", "phone")),
        sa.column("address", json_type),
        sa.column("custom", json_type),
        *(sa.column(c) for c in ("lifecycle_stage", "created_at", "updated_at", "version")),
    )
    terms = sa.table("customer_search_term", sa.column("term"), sa.column("customer_id"))
    now = datetime(2026, 1, 2, tzinfo=UTC)
    with engine.begin() as conn:
        for person in OLD_CUSTOMERS:
            conn.execute(
                customer.insert().values(
                    **person,
                    kind="person",
                    name_sort=person["name"].lower(),
                    custom={},
                    lifecycle_stage="lead",
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            )
            words = {person["name"].lower(), *person["name"].lower().split()}
            if person["email"]:
                words.add(person["email"])
            conn.execute(terms.insert(), [{"term": w, "customer_id": person["id"]} for w in words])


def test_0008_encrypts_existing_customers_and_their_emails_leave_the_search_terms(
    fresh_engine: Engine, sealer: Sealer
) -> None:
    migrate.upgrade(fresh_engine, "0007")
    _customers_at_0007(fresh_engine)

    migrate.upgrade(fresh_engine, sealer=sealer)

    columns = {c["name"] for c in inspect(fresh_engine).get_columns("customer")}
    assert {"email", "phone", "address"}.isdisjoint(columns)
    with fresh_engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(Customer.__table__))}
        terms = set(conn.scalars(sa.select(CustomerSearchTerm.term)))
    for person in OLD_CUSTOMERS:
        row = rows[person["id"]]
        assert personal.opened(sealer, row._mapping, ("email", "phone", "address")) == {
            k: person[k] for k in ("email", "phone", "address")
        }
        assert row.name == person["name"]
    ada = rows[1]
    assert ada.email_index == sealer.email_index("ADA.LOVELACE@analytical.example")
    assert ada.phone_index == sealer.phone_index("+442079460000")
    assert (rows[2].phone_cipher is not None, rows[2].phone_index) == (True, None)  # unreadable
    assert terms == {"ada lovelace", "ada", "lovelace", "ring ring", "ring", "nobody"}


def test_0008_goes_down_to_clear_columns_and_up_again(fresh_engine: Engine, sealer: Sealer) -> None:
    migrate.upgrade(fresh_engine, "0007")
    _customers_at_0007(fresh_engine)
    migrate.upgrade(fresh_engine, sealer=sealer)

    migrate.downgrade(fresh_engine, "0007", sealer=sealer)

    with fresh_engine.connect() as conn:
        clear = conn.execute(sa.text("SELECT id, email, phone FROM customer ORDER BY id")).all()
    assert [tuple(r) for r in clear] == [(p["id"], p["email"], p["phone"]) for p in OLD_CUSTOMERS]

    migrate.upgrade(fresh_engine, sealer=sealer)

    assert _schema_diff(fresh_engine) == []
    with fresh_engine.connect() as conn:
        ada = conn.execute(sa.select(Customer.__table__).where(Customer.id == 1)).one()
    assert personal.opened(sealer, ada._mapping, ("email",)) == {"email": OLD_CUSTOMERS[0]["email"]}


def test_readyz_is_503_with_the_reason_while_the_keyring_cannot_be_read(
    fresh_settings: Settings, fresh_engine: Engine, tmp_path: Path
) -> None:
    migrate.upgrade(fresh_engine)
    path = tmp_path / "readyz-keyring.json"
    keyring.write_file(path, keyring.generate())
    settings = fresh_settings.model_copy(update={"keyring_file": path})

    with TestClient(create_app(settings, engine=fresh_engine)) as client:
        assert client.get("/readyz").status_code == 200
        path.chmod(0o644)
        too_open = client.get("/readyz")
        path.unlink()
        gone = client.get("/readyz")

    assert too_open.status_code == 503
    assert too_open.json() == {
        "status": "unavailable",
        "reason": f"keyring not readable: the key file {path} can be read or written by "
        f"others (mode 0644); run: chmod 600 {path}",
    }
    assert gone.status_code == 503
    assert gone.json()["reason"] == (
        f"keyring not readable: the key file {path} does not exist (run 'tenure init')"
    )
