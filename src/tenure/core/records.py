"""Columns every business record carries: id, timestamps, version and trash marker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from tenure.core.time import UTCDateTime, utcnow


class Record:
    """Mixin: ``version`` is checked on every UPDATE, so no change is silently lost."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, index=True
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.version}


class Trashable:
    """Mixin: deleting sets ``deleted_at``; restore clears it."""

    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
