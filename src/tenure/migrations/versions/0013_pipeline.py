"""The sales pipeline: stages (with the default ones), opportunities and their stage
changes; interactions and tasks

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# name, position, win probability, kind
DEFAULT_STAGES = (
    ("Qualification", 1, 10, "open"),
    ("Needs analysis", 2, 25, "open"),
    ("Proposal", 3, 50, "open"),
    ("Negotiation", 4, 75, "open"),
    ("Won", 5, 100, "won"),
    ("Lost", 6, 0, "lost"),
)


def upgrade() -> None:
    op.create_table(
        "pipeline_stage",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_stage")),
        sa.UniqueConstraint("name", name=op.f("uq_pipeline_stage_name")),
    )
    with op.batch_alter_table("pipeline_stage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_stage_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pipeline_stage_updated_at"), ["updated_at"], unique=False
        )

    now = datetime.now(UTC)
    op.bulk_insert(
        sa.table(
            "pipeline_stage",
            sa.column("name", sa.String),
            sa.column("position", sa.Integer),
            sa.column("probability", sa.Integer),
            sa.column("kind", sa.String),
            sa.column("created_at", sa.DateTime(timezone=True)),
            sa.column("updated_at", sa.DateTime(timezone=True)),
            sa.column("version", sa.Integer),
        ),
        [
            {
                "name": name,
                "position": position,
                "probability": probability,
                "kind": kind,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for name, position, probability, kind in DEFAULT_STAGES
        ],
    )

    op.create_table(
        "opportunity",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("expected_close_on", sa.Date(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_opportunity_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["sales_order.id"], name=op.f("fk_opportunity_order_id_sales_order")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["user_account.id"], name=op.f("fk_opportunity_owner_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["stage_id"], ["pipeline_stage.id"], name=op.f("fk_opportunity_stage_id_pipeline_stage")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity")),
        sa.UniqueConstraint("order_id", name=op.f("uq_opportunity_order_id")),
    )
    with op.batch_alter_table("opportunity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_opportunity_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_opportunity_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_opportunity_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(
            "ix_opportunity_stage_id_position", ["stage_id", "position"], unique=False
        )
        batch_op.create_index(
            "ix_opportunity_status_expected_close_on", ["status", "expected_close_on"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_opportunity_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "interaction",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("opportunity_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["user_account.id"], name=op.f("fk_interaction_author_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_interaction_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["opportunity_id"],
            ["opportunity.id"],
            name=op.f("fk_interaction_opportunity_id_opportunity"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_interaction_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interaction")),
    )
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_interaction_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            "ix_interaction_customer_id_occurred_at", ["customer_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interaction_opportunity_id"), ["opportunity_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_interaction_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_interaction_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "opportunity_stage_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("opportunity_id", sa.Integer(), nullable=False),
        sa.Column("from_stage_id", sa.Integer(), nullable=True),
        sa.Column("to_stage_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["user_account.id"],
            name=op.f("fk_opportunity_stage_change_actor_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["from_stage_id"],
            ["pipeline_stage.id"],
            name=op.f("fk_opportunity_stage_change_from_stage_id_pipeline_stage"),
        ),
        sa.ForeignKeyConstraint(
            ["opportunity_id"],
            ["opportunity.id"],
            name=op.f("fk_opportunity_stage_change_opportunity_id_opportunity"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_stage_id"],
            ["pipeline_stage.id"],
            name=op.f("fk_opportunity_stage_change_to_stage_id_pipeline_stage"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_stage_change")),
    )
    with op.batch_alter_table("opportunity_stage_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_opportunity_stage_change_opportunity_id_at", ["opportunity_id", "at"], unique=False
        )

    op.create_table(
        "task",
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("opportunity_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["user_account.id"], name=op.f("fk_task_assignee_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_task_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["opportunity_id"], ["opportunity.id"], name=op.f("fk_task_opportunity_id_opportunity")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(
            "ix_task_assignee_id_status_due_at", ["assignee_id", "status", "due_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_task_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_task_opportunity_id"), ["opportunity_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_task_updated_at"), ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_updated_at"))
        batch_op.drop_index(batch_op.f("ix_task_opportunity_id"))
        batch_op.drop_index(batch_op.f("ix_task_customer_id"))
        batch_op.drop_index(batch_op.f("ix_task_created_at"))
        batch_op.drop_index("ix_task_assignee_id_status_due_at")

    op.drop_table("task")
    with op.batch_alter_table("opportunity_stage_change", schema=None) as batch_op:
        batch_op.drop_index("ix_opportunity_stage_change_opportunity_id_at")

    op.drop_table("opportunity_stage_change")
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interaction_updated_at"))
        batch_op.drop_index(batch_op.f("ix_interaction_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_interaction_opportunity_id"))
        batch_op.drop_index("ix_interaction_customer_id_occurred_at")
        batch_op.drop_index(batch_op.f("ix_interaction_created_at"))

    op.drop_table("interaction")
    with op.batch_alter_table("opportunity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opportunity_updated_at"))
        batch_op.drop_index("ix_opportunity_status_expected_close_on")
        batch_op.drop_index("ix_opportunity_stage_id_position")
        batch_op.drop_index(batch_op.f("ix_opportunity_owner_id"))
        batch_op.drop_index(batch_op.f("ix_opportunity_customer_id"))
        batch_op.drop_index(batch_op.f("ix_opportunity_created_at"))

    op.drop_table("opportunity")
    with op.batch_alter_table("pipeline_stage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_stage_updated_at"))
        batch_op.drop_index(batch_op.f("ix_pipeline_stage_created_at"))

    op.drop_table("pipeline_stage")
