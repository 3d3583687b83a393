"""Schema migrations with Alembic: the only way the schema changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def config(connection: Connection | None = None, *, sealer: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    if sealer is not None:  # migrations that encrypt or decrypt data use it (0008)
        cfg.attributes["sealer"] = sealer
    return cfg


def head() -> str | None:
    return ScriptDirectory.from_config(config()).get_current_head()


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def history() -> list[str]:
    """Every revision this code knows, oldest first."""
    return [r.revision for r in reversed(list(script().walk_revisions()))]


def is_known(revision: str) -> bool:
    """Whether this code has the migration ``revision`` (a newer Tenure may have more)."""
    try:
        return script().get_revision(revision) is not None
    except CommandError:
        return False


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(revision the database is at, latest revision this code knows)."""
    return current(engine), head()


def upgrade(engine: Engine, revision: str = "head", *, sealer: Any = None) -> None:
    """Migrate the database to ``revision`` (default: the latest). ``sealer``
    (``tenure.security.fields.Sealer``) encrypts what a migration encrypts; without it,
    the keyring the environment's settings name."""
    with engine.begin() as conn:
        command.upgrade(config(conn, sealer=sealer), revision)


def downgrade(engine: Engine, revision: str, *, sealer: Any = None) -> None:
    with engine.begin() as conn:
        command.downgrade(config(conn, sealer=sealer), revision)
