"""The write-ahead log stays bounded under steady writes (tenure.db.Checkpointer): a long
log is started over once its readers are done with it, a reader still in it defers that
without holding writers up, and a writer waiting its turn has ended its read, so it never
pins the log."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tenure.config import Settings
from tenure.core.routing import INLINE, WRITER, placed
from tenure.db import Checkpointer, WriterLock, make_engine, make_sessionmaker
from tenure.sqlite import sqlite3

RESTART_PAGES = 64
ROW = b"x" * 3000  # one page of the log per committed row


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "log.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE note (body BLOB)")
        db.commit()
    yield path


def _writer(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_autocheckpoint=0")  # as the server's connections: checkpoints are ours
    return db


def _write_rows(db: sqlite3.Connection, n: int) -> None:
    for _ in range(n):
        db.execute("INSERT INTO note VALUES (?)", (ROW,))
        db.commit()


def _log_pages(path: Path) -> int:
    """The pages in the log: where the next commit writes, which a restart sets back.
    Ask while another connection is open: closing the last one empties the log."""
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def _checkpointer(path: Path, reader_wait: float) -> Checkpointer:
    return Checkpointer(
        path,
        writer_lock=WriterLock(Path(f"{path}-lock")),
        restart_pages=RESTART_PAGES,
        reader_wait=reader_wait,
    )


def _in_the_log(path: Path) -> sqlite3.Connection:
    """A reader whose snapshot is older than the last commit: copying and restarting the
    log wait for it, and while it reads, no commit starts the log over by itself."""
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM note").fetchone()
    with closing(_writer(path)) as db:
        _write_rows(db, 1)
    return reader


def test_a_long_log_is_started_over_once_its_readers_are_done(database: Path) -> None:
    checkpointer = _checkpointer(database, reader_wait=10)
    lock = checkpointer.writer_lock
    assert lock is not None
    with closing(_writer(database)) as db:
        _write_rows(db, 2 * RESTART_PAGES)
        reader = _in_the_log(database)
        running = threading.Thread(target=checkpointer.checkpoint)
        running.start()
        while running.is_alive() and lock.try_acquire():  # until it waits for the reader
            lock.release()
        reader.commit()  # the reader is done: the restart goes on
        running.join()
        reader.close()
        _write_rows(db, 1)
        assert _log_pages(database) < RESTART_PAGES  # (closing the last connection would empty it)

    with closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT count(*) FROM note").fetchone()[0] == 2 * RESTART_PAGES + 2


def test_a_reader_that_outlasts_the_wait_keeps_the_log_and_writers_go_on(database: Path) -> None:
    checkpointer = _checkpointer(database, reader_wait=0.01)
    with closing(_writer(database)) as db, closing(_in_the_log(database)) as reader:
        _write_rows(db, 2 * RESTART_PAGES)

        checkpointer.checkpoint()

        lock = checkpointer.writer_lock
        assert lock is not None and lock.try_acquire()  # given back after the wait
        lock.release()
        _write_rows(db, 1)
        assert _log_pages(database) > 2 * RESTART_PAGES
        assert reader.execute("SELECT count(*) FROM note").fetchone()[0] == 0
    with closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT count(*) FROM note").fetchone()[0] == 2 * RESTART_PAGES + 2


def test_a_writer_waiting_its_turn_has_ended_its_read(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=None))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE note (body TEXT)"))
    session = make_sessionmaker(engine)()
    session.info.update({INLINE: True, WRITER: True})  # a write request's session on SQLite

    def endpoint(session: Session) -> str:
        session.execute(text("INSERT INTO note VALUES ('written in turn')"))
        return "written"

    async def scenario() -> None:
        session.execute(text("SELECT count(*) FROM note"))  # the request's reads so far
        raw = session.connection().connection.dbapi_connection
        assert raw is not None and raw.in_transaction
        other = WriterLock(tmp_path / "tenure.db-lock")  # another process is writing
        other.acquire()
        try:
            task = asyncio.create_task(placed(endpoint)(session=session))
            for _ in range(100):
                await asyncio.sleep(0)
                if not raw.in_transaction:
                    break
            assert not task.done()  # still waiting for the other writer
            assert not raw.in_transaction  # ... with its read over
        finally:
            other.release()
        assert await task == "written"

    try:
        asyncio.run(scenario())
    finally:
        session.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT body FROM note")).scalar_one() == "written in turn"
    engine.dispose()
