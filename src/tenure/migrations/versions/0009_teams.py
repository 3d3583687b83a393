"""Teams: a team table, and each user's optional team (user_account.team_id)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK_NAME = "fk_user_account_team_id_team"


def upgrade() -> None:
    op.create_table(
        "team",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team")),
        sa.UniqueConstraint("name", name=op.f("uq_team_name")),
    )
    op.create_index(op.f("ix_team_created_at"), "team", ["created_at"], unique=False)
    op.create_index(op.f("ix_team_updated_at"), "team", ["updated_at"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        # A column added in place with its reference: a batch copy of user_account would
        # have to drop a table that every other table references.
        op.execute(
            f"ALTER TABLE user_account ADD COLUMN team_id INTEGER CONSTRAINT {FK_NAME} "
            "REFERENCES team (id)"
        )
    else:
        op.add_column("user_account", sa.Column("team_id", sa.Integer(), nullable=True))
        op.create_foreign_key(FK_NAME, "user_account", "team", ["team_id"], ["id"])
    op.create_index(op.f("ix_user_account_team_id"), "user_account", ["team_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_user_account_team_id"), table_name="user_account")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(FK_NAME, "user_account", type_="foreignkey")
    # SQLite (3.35+) drops a column declared with its reference in place.
    op.drop_column("user_account", "team_id")
    op.drop_index(op.f("ix_team_updated_at"), table_name="team")
    op.drop_index(op.f("ix_team_created_at"), table_name="team")
    op.drop_table("team")
