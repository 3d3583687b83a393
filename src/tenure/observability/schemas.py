"""What the operations page and ``GET /api/v1/operations`` show."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class Figures(BaseModel):
    """Requests answered between two instants, from the difference of stored samples."""

    start: datetime = Field(description="The earliest sample the figures start from.")
    end: datetime = Field(description="The latest sample the figures end at.")
    seconds: float = Field(description="Time between start and end.")
    requests: int = Field(description="Requests answered (every route, every status).")
    errors: int = Field(description="Of those, answers with a 5xx status.")
    request_rate: float = Field(description="Requests per second.")
    error_rate: float | None = Field(description="Share of requests answered 5xx (0 to 1).")
    p50_ms: float | None = Field(description="Median latency, interpolated in its bucket.")
    p95_ms: float | None = Field(description="95th percentile latency.")
    p99_ms: float | None = Field(description="99th percentile latency.")


class SeriesPoint(BaseModel):
    """The figures of one sampling interval, labelled by the time slot it ends in."""

    at: datetime
    request_rate: float
    error_rate: float | None
    p95_ms: float | None


class DatabaseState(BaseModel):
    kind: Literal["sqlite", "postgresql"]
    size_bytes: int | None = Field(description="On disk: the SQLite file and its WAL.")


class RevisionState(BaseModel):
    current: str | None = Field(description="The schema revision the database is at.")
    latest: str | None = Field(description="The latest revision this version of Tenure has.")
    up_to_date: bool


class BackupState(BaseModel):
    created_at: datetime | None
    file: str | None = Field(description="The archive's file name.")
    problem: str | None = Field(description="Why the last backup's record cannot be read.")


class Overview(BaseModel):
    """How the server performs, and the state of its database, schema and backups."""

    generated_at: datetime
    sample_seconds: int = Field(description="How often samples are stored; 0: sampling is off.")
    last_sample_at: datetime | None
    in_flight: int = Field(description="Requests being served now (this one included).")
    latest: Figures | None = Field(description="The latest sampling interval; null when stale.")
    last_hour: Figures | None
    last_day: Figures | None
    series: list[SeriesPoint] = Field(description="Each sampling interval of the last hour.")
    database: DatabaseState
    revision: RevisionState
    last_backup: BackupState | None = Field(description="Null when no backup was ever made.")
