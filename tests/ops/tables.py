"""Whole-database helpers for the operations tests: read every row of every table, and
write a row into every table with plain SQL (no models), whatever the schema revision."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

# Far from the ids the services and the demo data hand out.
BASE_ID = 900_000
WHEN = datetime(2025, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)


def reflect(engine: Engine) -> sa.MetaData:
    meta = sa.MetaData()
    meta.reflect(engine)
    return meta


def contents(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the migrations' version table too), in a stable order."""
    meta = reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted((tuple(row) for row in conn.execute(sa.select(table))), key=repr)
            for name, table in sorted(meta.tables.items())
        }


def _sample(column: sa.Column[Any], index: int, dialect: str) -> Any:
    """A value of the column's stored type; ``index`` keeps integers apart."""
    kind = column.type
    if isinstance(kind, sa.Enum):
        return kind.enums[0]
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.Integer):
        return BASE_ID + index
    if isinstance(kind, sa.DateTime):
        # What the models write: naive UTC on SQLite, timestamptz on PostgreSQL.
        return WHEN.replace(tzinfo=None) if dialect == "sqlite" else WHEN
    if isinstance(kind, sa.Date):
        return date(2025, 3, 4)
    if isinstance(kind, sa.Float):  # not a Numeric in every SQLAlchemy version
        return 1.5
    if isinstance(kind, sa.Numeric):
        return Decimal("12.5")
    if isinstance(kind, sa.JSON):
        return {"written_at": "an earlier revision", "n": index}
    if isinstance(kind, sa.LargeBinary):
        return b"\x00raw\xff" + bytes([index % 256])
    if isinstance(kind, sa.String):  # Text, VARCHAR, ...
        value = f"{column.table.name}.{column.name}"
        return value[: kind.length] if kind.length else value
    raise AssertionError(f"no sample value for {column.table.name}.{column.name}: {kind!r}")


# What a sealed column (``<field>_cipher``) holds once opened: each a value of its field.
SEALED_SAMPLES = {
    "email": "someone@example.com",
    "phone": "+49 30 1234567",
    "address": '{"city": "Berlin", "country": "DE"}',
    "birth_date": "1980-01-02",
    "tax_id": "DE 123 456 789",
}


def fill_every_table(engine: Engine, sealer: Any = None) -> dict[str, dict[str, Any]]:
    """Insert one row, every column set, into every table there is; returns the rows.
    Sealed columns get values sealed by ``sealer`` (a ``tenure.security.fields.Sealer``),
    as the application would write them."""
    meta = reflect(engine)
    written: dict[str, dict[str, Any]] = {}
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            row: dict[str, Any] = {}
            for index, column in enumerate(table.columns):
                foreign = next(iter(column.foreign_keys), None)
                field = column.name.removesuffix("_cipher")
                if foreign is not None:
                    row[column.name] = written[foreign.column.table.name][foreign.column.name]
                elif sealer is not None and field in SEALED_SAMPLES and field != column.name:
                    row[column.name] = sealer.seal(f"{table.name}.{field}", SEALED_SAMPLES[field])
                else:
                    row[column.name] = _sample(column, index, engine.dialect.name)
            conn.execute(table.insert().values(row))
            written[table.name] = row
    return written
