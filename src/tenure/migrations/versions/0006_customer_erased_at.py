"""customer.erased_at: when a privacy erasure removed the customer's personal data

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Not a batch copy of the table: SQLite (3.35+) drops a plain column in place, and
    # the copy would have to drop a table that orders still reference.
    op.drop_column("customer", "erased_at")
