"""Customers' sensitive fields encrypted at rest: email, phone and address sealed with
AES-256-GCM under the keyring (existing rows encrypted in batches), blind indexes for
exact lookup by email and phone, new sealed fields birth_date and tax_id, the clear
columns dropped, and emails no longer kept as search terms

The keyring comes from ``tenure.ops.migrate.upgrade(..., sealer=...)`` (``tenure init``
and ``tenure upgrade`` make the key file first when there is none), or else from the
settings in the environment. A downgrade opens the values again into clear columns and
loses birth dates and tax ids (emails become search terms again only as customers are
saved).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
SEALED = ("email", "phone", "address", "birth_date", "tax_id")
INDEXED = ("email", "phone")
JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
INSERT_TERM = sa.text(
    "INSERT INTO customer_search_term (term, customer_id) VALUES (:term, :customer_id)"
)


def _sealer() -> Any:
    from tenure.config import get_settings
    from tenure.security.fields import sealer_for

    config = op.get_context().config
    given = config.attributes.get("sealer") if config is not None else None
    return given or sealer_for(get_settings())


def _batches(conn: sa.Connection, columns: Sequence[sa.ColumnClause[Any]]) -> Iterator[list[Any]]:
    """Customer rows (id first), BATCH at a time, in id order."""
    customer = sa.table("customer", sa.column("id", sa.BigInteger()), *columns)
    last = 0
    while True:
        rows = conn.execute(
            sa.select(customer.c.id, *(customer.c[c.name] for c in columns))
            .where(customer.c.id > last)
            .order_by(customer.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield list(rows)
        last = rows[-1][0]


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def upgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        for name in SEALED:
            batch_op.add_column(sa.Column(f"{name}_cipher", sa.Text(), nullable=True))
        for name in INDEXED:
            batch_op.add_column(sa.Column(f"{name}_index", sa.String(length=32), nullable=True))
            batch_op.create_index(f"ix_customer_{name}_index", [f"{name}_index"], unique=False)
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT 1 FROM customer LIMIT 1")).first() is not None:
        _encrypt(conn)
    op.drop_index("ix_customer_email", table_name="customer")
    for name in ("email", "phone", "address"):
        op.drop_column("customer", name)
    # Search terms held whole emails: they go, and only names and companies stay.
    _drop_email_terms(conn)


def _encrypt(conn: sa.Connection) -> None:
    from tenure.customers import personal

    sealer = _sealer()
    columns: list[sa.ColumnClause[Any]] = [
        sa.column("email", sa.String()),
        sa.column("phone", sa.String()),
        sa.column("address", JSONDoc),
    ]
    update = sa.text(
        "UPDATE customer SET email_cipher = :email_cipher, email_index = :email_index, "
        "phone_cipher = :phone_cipher, phone_index = :phone_index, "
        "address_cipher = :address_cipher WHERE id = :id"
    )
    for rows in _batches(conn, columns):
        values = []
        for customer_id, email, phone, address in rows:
            sealed = personal.sealed(sealer, {"email": email, "address": _json(address)})
            try:
                sealed |= personal.sealed(sealer, {"phone": phone})
            except ValueError:  # a number no region reads: kept sealed, found by no index
                sealed |= {
                    "phone_cipher": sealer.seal(personal.column_of("phone"), phone),
                    "phone_index": None,
                }
            values.append({"id": customer_id, **sealed})
        conn.execute(update, values)


def _drop_email_terms(conn: sa.Connection) -> None:
    from tenure.customers import search

    conn.execute(sa.text("DELETE FROM customer_search_term WHERE term LIKE '%@%'"))
    # A name or company with an @ in it lost its whole-value term: put those back.
    named = conn.execute(
        sa.text(
            "SELECT id, name, company_name FROM customer WHERE erased_at IS NULL AND "
            "(name LIKE '%@%' OR company_name LIKE '%@%')"
        )
    ).all()
    kept = [
        {"term": term, "customer_id": customer_id}
        for customer_id, name, company in named
        for term in search.terms(name=name, company_name=company)
        if "@" in term
    ]
    if kept:
        conn.execute(
            sa.text(
                "INSERT INTO customer_search_term (term, customer_id) VALUES (:term, :customer_id)"
            ),
            kept,
        )


def downgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("phone", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("address", JSONDoc, nullable=True))
        batch_op.create_index("ix_customer_email", ["email"], unique=False)
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT 1 FROM customer WHERE email_cipher IS NOT NULL OR "
                            "phone_cipher IS NOT NULL OR address_cipher IS NOT NULL "
                            "LIMIT 1")).first() is not None:  # fmt: skip
        _decrypt(conn)
    for name in INDEXED:
        op.drop_index(f"ix_customer_{name}_index", table_name="customer")
        op.drop_column("customer", f"{name}_index")
    for name in SEALED:
        op.drop_column("customer", f"{name}_cipher")


def _decrypt(conn: sa.Connection) -> None:
    from tenure.customers import personal

    sealer = _sealer()
    columns = [sa.column(f"{name}_cipher", sa.Text()) for name in ("email", "phone", "address")]
    customer = sa.table(
        "customer",
        sa.column("id", sa.BigInteger()),
        sa.column("email", sa.String()),
        sa.column("phone", sa.String()),
        sa.column("address", JSONDoc),
    )
    update = (
        sa.update(customer)
        .where(customer.c.id == sa.bindparam("customer_id"))
        .values(
            email=sa.bindparam("email"),
            phone=sa.bindparam("phone"),
            address=sa.bindparam("address"),
        )
    )
    for rows in _batches(conn, columns):
        values = []
        for customer_id, email, phone, address in rows:
            clear = personal.opened(
                sealer,
                {"email_cipher": email, "phone_cipher": phone, "address_cipher": address},
                ("email", "phone", "address"),
            )
            values.append({"customer_id": customer_id, **clear})
        conn.execute(update, values)
