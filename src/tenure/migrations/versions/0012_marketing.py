"""Marketing: segments (saved customer filters), campaigns, their members and responses;
customers' marketing opt-out

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segment",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment")),
    )
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segment_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_segment_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "campaign",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("budget", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("holdout_percent", sa.Integer(), nullable=False),
        sa.Column("attribution_days", sa.Integer(), nullable=False),
        sa.Column("subject_template", sa.Text(), nullable=True),
        sa.Column("body_template", sa.Text(), nullable=True),
        sa.Column("html_template", sa.Text(), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segment.id"], name=op.f("fk_campaign_segment_id_segment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
    )
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_segment_id"), ["segment_id"], unique=False)
        batch_op.create_index("ix_campaign_status_id", ["status", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "campaign_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("control", sa.Boolean(), nullable=False),
        sa.Column("send_status", sa.String(length=10), nullable=True),
        sa.Column("send_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_campaign_member_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_campaign_member_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_member")),
        sa.UniqueConstraint(
            "campaign_id", "customer_id", name=op.f("uq_campaign_member_campaign_id")
        ),
    )
    with op.batch_alter_table("campaign_member", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_member_campaign_id_send_status",
            ["campaign_id", "send_status"],
            unique=False,
        )
        batch_op.create_index("ix_campaign_member_customer_id", ["customer_id"], unique=False)

    op.create_table(
        "campaign_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_campaign_response_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["campaign_member.id"],
            name=op.f("fk_campaign_response_member_id_campaign_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_response")),
    )
    with op.batch_alter_table("campaign_response", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_response_campaign_id_kind", ["campaign_id", "kind"], unique=False
        )
        batch_op.create_index(
            "ix_campaign_response_customer_id_at", ["customer_id", "at"], unique=False
        )
        batch_op.create_index("ix_campaign_response_member_id", ["member_id"], unique=False)

    # In place, not a batch copy of the table: the copy would drop the customers' tags
    # and search terms with the table they reference.
    op.add_column(
        "customer",
        sa.Column("marketing_opt_out", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("customer", "marketing_opt_out")

    with op.batch_alter_table("campaign_response", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_response_member_id")
        batch_op.drop_index("ix_campaign_response_customer_id_at")
        batch_op.drop_index("ix_campaign_response_campaign_id_kind")

    op.drop_table("campaign_response")
    with op.batch_alter_table("campaign_member", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_member_customer_id")
        batch_op.drop_index("ix_campaign_member_campaign_id_send_status")

    op.drop_table("campaign_member")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_updated_at"))
        batch_op.drop_index("ix_campaign_status_id")
        batch_op.drop_index(batch_op.f("ix_campaign_segment_id"))
        batch_op.drop_index(batch_op.f("ix_campaign_created_at"))

    op.drop_table("campaign")
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_updated_at"))
        batch_op.drop_index(batch_op.f("ix_segment_created_at"))

    op.drop_table("segment")
