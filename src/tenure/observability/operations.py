"""The operations page's figures: request rate, error rate and latency percentiles over
time, and the state of the database, its schema and its backups.

Prometheus counters only ever grow, so a rate needs two readings. Every sampling interval
(``TENURE_OPERATIONS_SAMPLE_SECONDS``) one process per metrics source stores the
cumulative request count, 5xx count and latency-bucket counts (:class:`MetricsSample`);
the figures are differences between samples of the same source. A percentile is read
from the bucket counts the way Prometheus' ``histogram_quantile`` does: linearly
interpolated inside the bucket that holds it, so it is as precise as the buckets
(``metrics.HTTP_BUCKETS``) and never above the largest finite bound.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tenure.config import Settings
from tenure.observability import metrics
from tenure.observability.models import MetricsSample
from tenure.observability.schemas import (
    BackupState,
    DatabaseState,
    Figures,
    Overview,
    RevisionState,
    SeriesPoint,
)
from tenure.ops import backup, migrate

log = logging.getLogger("tenure.operations")

REQUESTS = "tenure_http_requests_total"
ERRORS = "tenure_http_errors_total"
BUCKET = "tenure_http_request_duration_seconds_bucket"
IN_FLIGHT = "tenure_http_requests_in_flight"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Samples read before the day's window, so that its first interval has its start.
LOOKBACK = DAY + HOUR
# Without a sample for this many intervals the latest figures are stale, not "now".
STALE_AFTER_INTERVALS = 3
DEFAULT_INTERVAL = 60
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Reading:
    """The request counters of this metrics source (all workers) at one instant."""

    requests: int
    errors: int
    buckets: dict[str, int]  # cumulative count per upper bound: {"0.005": 12, "+Inf": 20}
    in_flight: int


def read_metrics() -> Reading:
    """The request counters now: this process's, or in multiprocess mode all workers'."""
    path = metrics.multiprocess_dir()
    families: Iterable[Any]
    if path:
        metrics.forget_dead_workers(path)
        families = MultiProcessCollector(None, path=path).collect()  # type: ignore[no-untyped-call]
    else:
        families = metrics.REGISTRY.collect()
    totals = {REQUESTS: 0.0, ERRORS: 0.0, IN_FLIGHT: 0.0}
    buckets: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name == BUCKET:
                le = sample.labels["le"]
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name in totals:
                totals[sample.name] += sample.value
    return Reading(
        requests=round(totals[REQUESTS]),
        errors=round(totals[ERRORS]),
        buckets={le: round(count) for le, count in buckets.items()},
        in_flight=max(0, round(totals[IN_FLIGHT])),
    )


def source_name() -> str:
    """Names this metrics source: the host, and the workers' shared directory or the pid."""
    return f"{socket.gethostname()}:{metrics.multiprocess_dir() or os.getpid()}"[:255]


def slot_of(at: datetime, seconds: int) -> datetime:
    """The start of the sampling slot ``at`` falls in (slots are aligned to the epoch)."""
    stamp = int(at.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(stamp, UTC)


# --- storing samples ----------------------------------------------------------------------


def has_sample(*, session: Session, source: str, slot: datetime) -> bool:
    """Whether ``source`` already has its sample for ``slot``."""
    found = session.scalar(
        select(MetricsSample.id).where(MetricsSample.source == source, MetricsSample.slot == slot)
    )
    return found is not None


def record_sample(
    *,
    session: Session,
    source: str,
    reading: Reading,
    at: datetime,
    slot_seconds: int,
    keep: timedelta,
) -> bool:
    """Store ``reading`` as the sample of ``source`` for the slot of ``at``, and drop
    samples older than ``keep``. False (and nothing written) when another worker stored
    that slot's sample first."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(MetricsSample)
        .values(
            source=source,
            slot=slot_of(at, slot_seconds),
            taken_at=at,
            requests=reading.requests,
            errors=reading.errors,
            buckets=reading.buckets,
        )
        .on_conflict_do_nothing(index_elements=["source", "slot"])
        .returning(MetricsSample.id)
    )
    if session.execute(statement).first() is None:
        return False
    session.execute(delete(MetricsSample).where(MetricsSample.taken_at < at - keep))
    return True


# --- from samples to figures --------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """What one source answered between two of its consecutive samples."""

    start: datetime
    end: datetime
    slot: datetime
    requests: int
    errors: int
    buckets: dict[str, int]


def _delta(before: MetricsSample, after: MetricsSample) -> Interval:
    # A counter that went down was reset (the server restarted): count from zero, as
    # Prometheus' rate() does. A bucket is missing before the first request is timed, and
    # bounds that changed (a new version) come with a restart.
    reset = (
        after.requests < before.requests
        or after.errors < before.errors
        or any(after.buckets.get(le, 0) < n for le, n in before.buckets.items())
    )
    if reset:
        requests, errors, buckets = after.requests, after.errors, dict(after.buckets)
    else:
        requests = after.requests - before.requests
        errors = after.errors - before.errors
        buckets = {le: n - before.buckets.get(le, 0) for le, n in after.buckets.items()}
    return Interval(before.taken_at, after.taken_at, after.slot, requests, errors, buckets)


def intervals(samples: Iterable[MetricsSample]) -> list[Interval]:
    """The intervals between consecutive samples of each source, in the order they end."""
    found: list[Interval] = []
    by_source = sorted(samples, key=lambda s: (s.source, s.taken_at))
    for _source, group in itertools.groupby(by_source, key=lambda s: s.source):
        for before, after in itertools.pairwise(group):
            if after.taken_at > before.taken_at:
                found.append(_delta(before, after))
    found.sort(key=lambda i: i.end)
    return found


def quantile(q: float, buckets: Mapping[str, int]) -> float | None:
    """The ``q`` quantile (0 < q < 1) in seconds of cumulative bucket counts; None when
    they count nothing. Past the largest finite bound it is that bound."""
    bounds = sorted((float(le), count) for le, count in buckets.items())
    if not bounds or bounds[-1][1] <= 0:
        return None
    rank = q * bounds[-1][1]
    lower, below = 0.0, 0
    for upper, count in bounds:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def _sum_buckets(parts: Sequence[Interval]) -> dict[str, int]:
    """The bucket counts of ``parts`` added up. Intervals whose bounds differ from the
    latest interval's (hosts on another version) do not add up with them: left out."""
    bounds = next((p.buckets.keys() for p in reversed(parts) if p.buckets), None)
    total: dict[str, int] = {}
    for part in parts:
        if not part.buckets:
            continue
        if part.buckets.keys() != bounds:
            continue
        for le, n in part.buckets.items():
            total[le] = total.get(le, 0) + n
    return total


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def figures(parts: Sequence[Interval]) -> Figures | None:
    """Rates and percentiles over ``parts``: requests divided by the time from the first
    start to the last end, so sources serving side by side add up, and a restart in
    between (one source after another) is not counted twice."""
    if not parts:
        return None
    start = min(p.start for p in parts)
    end = max(p.end for p in parts)
    seconds = (end - start).total_seconds()
    requests = sum(p.requests for p in parts)
    errors = sum(p.errors for p in parts)
    buckets = _sum_buckets(parts)
    return Figures(
        start=start,
        end=end,
        seconds=seconds,
        requests=requests,
        errors=errors,
        request_rate=requests / seconds,
        error_rate=errors / requests if requests else None,
        p50_ms=_ms(quantile(0.50, buckets)),
        p95_ms=_ms(quantile(0.95, buckets)),
        p99_ms=_ms(quantile(0.99, buckets)),
    )


def series(parts: Sequence[Interval]) -> list[SeriesPoint]:
    """One point per sampling slot: the intervals (of every source) that end in it."""
    points = []
    for slot, group in itertools.groupby(sorted(parts, key=lambda p: p.slot), key=lambda p: p.slot):
        found = figures(list(group))
        assert found is not None
        points.append(
            SeriesPoint(
                at=slot,
                request_rate=found.request_rate,
                error_rate=found.error_rate,
                p95_ms=found.p95_ms,
            )
        )
    return points


# --- the database, its schema and its backups ---------------------------------------------


def database_size(*, session: Session) -> int | None:
    """Bytes the database takes: PostgreSQL's own figure, or the SQLite file and its WAL."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    files = [row[2] for row in conn.exec_driver_sql("PRAGMA database_list") if row[1] == "main"]
    if not files or not files[0]:  # in memory
        page_count = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        page_size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        return int(page_count) * int(page_size)
    paths = (files[0], files[0] + "-wal")
    return sum(os.path.getsize(p) for p in paths if os.path.exists(p))


@functools.cache
def _latest_revision() -> str | None:
    return migrate.head()


def revision_state(*, session: Session) -> RevisionState:
    """The schema revision of the database against the latest this code has."""
    # Read directly: Alembic's MigrationContext logs two lines each time it is made.
    versions = session.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    current = versions[0] if len(versions) == 1 else None
    latest = _latest_revision()
    return RevisionState(current=current, latest=latest, up_to_date=current == latest)


def backup_state(settings: Settings) -> BackupState | None:
    """The last backup ``tenure backup`` recorded; None when there was none."""
    try:
        last = backup.last_backup(settings)
    except backup.BackupError as exc:
        return BackupState(created_at=None, file=None, problem=str(exc))
    if last is None:
        return None
    return BackupState(created_at=last.created_at, file=last.path.name, problem=None)


# --- the overview -------------------------------------------------------------------------


def overview(*, session: Session, settings: Settings, now: datetime) -> Overview:
    """Everything the operations page shows, as of ``now``."""
    samples = session.scalars(
        select(MetricsSample).where(MetricsSample.taken_at > now - LOOKBACK)
    ).all()
    parts = [p for p in intervals(samples) if p.end <= now]
    interval = settings.operations_sample_seconds or DEFAULT_INTERVAL
    latest = None
    if parts and parts[-1].end > now - timedelta(seconds=STALE_AFTER_INTERVALS * interval):
        last_slot = parts[-1].slot
        latest = figures([p for p in parts if p.slot == last_slot])
    hour = [p for p in parts if p.end > now - HOUR]
    return Overview(
        generated_at=now,
        sample_seconds=settings.operations_sample_seconds,
        last_sample_at=max((s.taken_at for s in samples), default=None),
        in_flight=read_metrics().in_flight,
        latest=latest,
        last_hour=figures(hour),
        last_day=figures([p for p in parts if p.end > now - DAY]),
        series=series(hour),
        database=DatabaseState(
            kind="postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite",
            size_bytes=database_size(session=session),
        ),
        revision=revision_state(session=session),
        last_backup=backup_state(settings),
    )
