"""Dashboard figures at any size: purchases per day (order_revenue_day, filled from the
orders there are), and partial indexes for the open orders and the trashed customers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The day of an order in UTC, as each database stores it.
DAY = {
    "sqlite": "date(ordered_at)",
    "postgresql": "(ordered_at AT TIME ZONE 'UTC')::date",
}


def upgrade() -> None:
    op.create_table(
        "order_revenue_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "currency", name=op.f("pk_order_revenue_day")),
    )
    day = DAY[op.get_bind().dialect.name]
    op.execute(
        "INSERT INTO order_revenue_day (day, currency, orders, total) "
        f"SELECT {day}, currency, count(*), sum(total) FROM sales_order "
        "WHERE status IN ('placed', 'paid', 'shipped') AND deleted_at IS NULL "
        f"GROUP BY {day}, currency"
    )
    with op.batch_alter_table("sales_order", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sales_order_status_active",
            ["status"],
            unique=False,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_trashed_updated_at_id",
            ["updated_at", "id"],
            unique=False,
            sqlite_where=sa.text("deleted_at IS NOT NULL"),
            postgresql_where=sa.text("deleted_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_trashed_updated_at_id")
    with op.batch_alter_table("sales_order", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_order_status_active")
    op.drop_table("order_revenue_day")
