"""Analytics runs: the run (parameters, fitted models, metrics), per-customer results,
association rules, basket counts per product and pair, and versioned churn models

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "results",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_run")),
    )
    with op.batch_alter_table("analytics_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_run_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "analytics_customer",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("purchase_days", sa.Integer(), nullable=False),
        sa.Column("first_purchase", sa.Date(), nullable=False),
        sa.Column("last_purchase", sa.Date(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.Column("recency_days", sa.Integer(), nullable=False),
        sa.Column("r_score", sa.Integer(), nullable=False),
        sa.Column("f_score", sa.Integer(), nullable=False),
        sa.Column("m_score", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=24), nullable=False),
        sa.Column("cluster", sa.Integer(), nullable=True),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("expected_purchases", sa.Float(), nullable=True),
        sa.Column("expected_spend", sa.BigInteger(), nullable=True),
        sa.Column("clv", sa.BigInteger(), nullable=True),
        sa.Column("purchase_probability", sa.Float(), nullable=True),
        sa.Column("churn_risk", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytics_run.id"],
            name=op.f("fk_analytics_customer_run_id_analytics_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name=op.f("pk_analytics_customer")),
    )
    with op.batch_alter_table("analytics_customer", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_customer_customer_id", ["customer_id"], unique=False)
        batch_op.create_index(
            "ix_analytics_customer_run_id_churn_risk", ["run_id", "churn_risk"], unique=False
        )
        batch_op.create_index("ix_analytics_customer_run_id_clv", ["run_id", "clv"], unique=False)

    op.create_table(
        "analytics_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytics_run.id"],
            name=op.f("fk_analytics_model_run_id_analytics_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_model")),
        sa.UniqueConstraint("kind", "version", name=op.f("uq_analytics_model_kind")),
    )
    with op.batch_alter_table("analytics_model", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analytics_model_run_id"), ["run_id"], unique=False)

    op.create_table(
        "analytics_pair",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=False),
        sa.Column("baskets", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytics_run.id"],
            name=op.f("fk_analytics_pair_run_id_analytics_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "product_id", "other_id", name=op.f("pk_analytics_pair")),
    )
    op.create_table(
        "analytics_product",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("baskets", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytics_run.id"],
            name=op.f("fk_analytics_product_run_id_analytics_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "product_id", name=op.f("pk_analytics_product")),
    )
    op.create_table(
        "analytics_rule",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column(
            "antecedents",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "consequents",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.Column("leverage", sa.Float(), nullable=False),
        sa.Column("conviction", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytics_run.id"],
            name=op.f("fk_analytics_rule_run_id_analytics_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "rank", name=op.f("pk_analytics_rule")),
    )


def downgrade() -> None:
    op.drop_table("analytics_rule")
    op.drop_table("analytics_product")
    op.drop_table("analytics_pair")
    with op.batch_alter_table("analytics_model", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_model_run_id"))

    op.drop_table("analytics_model")
    with op.batch_alter_table("analytics_customer", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_customer_run_id_clv")
        batch_op.drop_index("ix_analytics_customer_run_id_churn_risk")
        batch_op.drop_index("ix_analytics_customer_customer_id")

    op.drop_table("analytics_customer")
    with op.batch_alter_table("analytics_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_run_created_at"))

    op.drop_table("analytics_run")
