"""Samples of the request counters, kept so the operations page can show rates and
latency percentiles over time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.time import UTCDateTime
from tenure.db import Base


class MetricsSample(Base):
    """The cumulative request, error and latency-bucket counts of one metrics source (a
    process, or the workers sharing one multiprocess directory) at one instant.

    Rates come from the difference between two samples of the same source. One row per
    source and time slot: the workers of a source all try to write the slot's row and
    the unique key lets the first one win.
    """

    __tablename__ = "metrics_sample"
    __table_args__ = (UniqueConstraint("source", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(255))
    slot: Mapped[datetime] = mapped_column(UTCDateTime())
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    requests: Mapped[int] = mapped_column(BigInteger())
    errors: Mapped[int] = mapped_column(BigInteger())
    # Cumulative request counts per latency bucket, keyed by upper bound ("0.005", "+Inf").
    buckets: Mapped[dict[str, Any]] = mapped_column(JSON())
