"""metrics samples: request, error and latency-bucket counts over time

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metrics_sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("buckets", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics_sample")),
        sa.UniqueConstraint("source", "slot", name=op.f("uq_metrics_sample_source")),
    )
    with op.batch_alter_table("metrics_sample", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_metrics_sample_taken_at"), ["taken_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("metrics_sample", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_metrics_sample_taken_at"))
    op.drop_table("metrics_sample")
