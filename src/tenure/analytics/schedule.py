"""Scheduled analytics runs inside ``tenure serve``.

With ``TENURE_ANALYTICS_SCHEDULE=HH:MM`` (UTC) every worker wakes at that time each day,
and on start: when no run has been stored since the last scheduled time, the worker that
takes the run lock starts ``tenure analytics run`` as a child process (the heavy work
stays out of the process that answers requests) and waits for it; the others find the
lock taken, or the day's run stored, and do nothing. A server that was down at the
scheduled time catches up when it starts, once.

The lock is the database's where several hosts may serve (a PostgreSQL advisory lock),
and a file lock beside the SQLite database otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, time, timedelta

from fastapi import FastAPI
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from tenure.analytics.models import AnalyticsRun
from tenure.config import Settings
from tenure.core.time import utcnow

log = logging.getLogger("tenure.analytics")

# pg_try_advisory_lock key: "tenure analytics run" (any constant the application owns).
ADVISORY_KEY = 0x7E4A_0001
RUN_TIMEOUT_SECONDS = 6 * 3600


def last_slot(now: datetime, at: time) -> datetime:
    """The latest scheduled time at or before ``now`` (UTC)."""
    today = datetime.combine(now.date(), at, tzinfo=now.tzinfo)
    return today if today <= now else today - timedelta(days=1)


def ran_since(*, session: Session, since: datetime) -> bool:
    """Whether a run has been stored at or after ``since``."""
    latest = session.scalar(select(func.max(AnalyticsRun.created_at)))
    return latest is not None and latest >= since


@contextmanager
def run_lock(engine: Engine, settings: Settings) -> Iterator[bool]:
    """Held while one scheduled run is under way; yields False when another holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            taken = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}))
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                conn.rollback()
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with (settings.data_dir / "analytics-run.lock").open("a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


class Scheduler:
    """One worker's part in the daily run."""

    def __init__(
        self, settings: Settings, engine: Engine, sessions: sessionmaker[Session], at: time
    ) -> None:
        self.settings, self.engine, self.sessions, self.at = settings, engine, sessions, at

    def _due(self) -> bool:
        with self.sessions() as session:
            return not ran_since(session=session, since=last_slot(utcnow(), self.at))

    async def tick(self) -> str:
        """Run the analytics if due and nobody else is; says what happened: ``ran``,
        ``failed``, ``busy`` (another worker runs it) or ``done`` (stored already)."""
        if not await asyncio.to_thread(self._due):
            return "done"
        with run_lock(self.engine, self.settings) as taken:
            if not taken:
                return "busy"
            if not await asyncio.to_thread(self._due):  # finished while we looked
                return "done"
            return await self._run()

    async def _run(self) -> str:
        command = [
            sys.executable,
            "-m",
            "tenure",
            "analytics",
            "run",
            "--period",
            self.settings.analytics_period,
        ]
        log.info("scheduled analytics run started")
        child = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(child.communicate(), RUN_TIMEOUT_SECONDS)
        except (TimeoutError, asyncio.CancelledError):
            child.kill()
            await child.wait()
            raise
        said = [line for line in output.decode(errors="replace").splitlines() if line.strip()]
        if child.returncode != 0:
            log.error(
                "scheduled analytics run failed (exit %s): %s",
                child.returncode,
                said[-1] if said else "no output",
            )
            return "failed"
        summary = next((line for line in said if line.startswith("Run ")), "stored")
        log.info("scheduled analytics run finished: %s", summary)
        return "ran"

    async def run_forever(self) -> None:
        """Catch up now if the last scheduled run is missing, then wake at each slot."""
        while True:
            try:
                outcome = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next slot tries again; serving goes on
                log.warning("scheduled analytics run: %s: %s", type(exc).__name__, exc)
                outcome = "failed"
            if outcome == "busy":  # another worker runs it: look again once it may be done
                await asyncio.sleep(60)
                continue
            now = utcnow()
            following = last_slot(now, self.at) + timedelta(days=1)
            await asyncio.sleep((following - now).total_seconds())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run a :class:`Scheduler` while the application runs, when a schedule is set."""
    settings: Settings = app.state.settings
    task = None
    if (at := settings.analytics_time) is not None:
        scheduler = Scheduler(settings, app.state.engine, app.state.sessions, at)
        task = asyncio.create_task(scheduler.run_forever(), name="tenure-analytics-schedule")
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
