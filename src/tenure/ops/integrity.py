"""Is the database sound? Integrity checks shared by upgrade and doctor."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from tenure.models import metadata


def problems(engine: Engine) -> list[str]:
    """What is wrong with the stored data; empty when nothing is.

    SQLite: ``PRAGMA quick_check`` and ``PRAGMA foreign_key_check``. PostgreSQL keeps its
    own pages consistent; there we check that every table the code uses can be read.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            found = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check")]
            found = [] if found == ["ok"] else found
            found += [
                f"row {row[1]} of {row[0]} refers to a missing row of {row[2]}"
                for row in conn.exec_driver_sql("PRAGMA foreign_key_check")
            ]
            return found[:20]
        for table in metadata.sorted_tables:
            conn.execute(text(f'SELECT 1 FROM "{table.name}" LIMIT 1'))
        return []


def schema_drift(engine: Engine) -> list[str]:
    """Differences between the database's tables and what this code expects."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [str(diff) for diff in compare_metadata(context, metadata)]
