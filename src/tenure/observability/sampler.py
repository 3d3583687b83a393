"""Stores a sample of the request counters every ``TENURE_OPERATIONS_SAMPLE_SECONDS``,
from a task every worker runs for as long as the application does.

Each worker wakes at the start of every slot; the first to insert the slot's row for its
metrics source wins and the others find the row there (or lose the insert) and write
nothing. A sample that fails (the database is busy or away) is logged and the next slot
tries again: sampling never stops the server from serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from tenure.core.time import utcnow
from tenure.db import unit_of_work
from tenure.observability import operations

log = logging.getLogger("tenure.operations")

# Workers wake up to this many seconds apart, so that most find the slot taken before
# reading the metrics files.
JITTER_SECONDS = 1.0


class Sampler:
    """Takes this metrics source's samples into the database."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        seconds: int,
        keep: timedelta,
        source: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.seconds = seconds
        self.keep = keep
        self.source = source or operations.source_name()
        self._last = -float("inf")  # monotonic time of this worker's last attempt

    def sample(self) -> bool:
        """Store the current counters as this slot's sample, unless one is stored already;
        True when this call stored it."""
        self._last = time.monotonic()
        slot = operations.slot_of(utcnow(), self.seconds)
        with self.sessions() as session, session.begin():
            if operations.has_sample(session=session, source=self.source, slot=slot):
                return False
        reading = operations.read_metrics()
        with unit_of_work(self.sessions) as session:
            return operations.record_sample(
                session=session,
                source=self.source,
                reading=reading,
                at=utcnow(),
                slot_seconds=self.seconds,
                keep=self.keep,
            )

    async def _sample_logged(self) -> None:
        try:
            await asyncio.to_thread(self.sample)
        except Exception as exc:  # the next slot tries again
            log.warning("metrics sample not stored: %s: %s", type(exc).__name__, exc)

    async def run(self) -> None:
        """Sample now (the baseline of the first interval), then at the start of each slot."""
        await self._sample_logged()
        while True:
            now = time.time()
            wait = self.seconds - now % self.seconds + random.uniform(0, JITTER_SECONDS)
            await asyncio.sleep(wait)
            # A baseline taken just before the slot began would make a very short interval.
            if time.monotonic() - self._last < self.seconds / 2:
                continue
            await self._sample_logged()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run a :class:`Sampler` while the application runs, unless sampling is off."""
    settings = app.state.settings
    task = None
    if settings.operations_sample_seconds > 0:
        sampler = Sampler(
            app.state.sessions,
            seconds=settings.operations_sample_seconds,
            keep=timedelta(days=settings.operations_keep_days),
        )
        task = asyncio.create_task(sampler.run(), name="tenure-metrics-sampler")
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
