"""The connection kept checked out for the route shortcuts' reads (tenure.db.HeldConnection):
one for the thread that owns it, no transaction left open, given back to the pool when a
read fails or when closed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, column, func, literal_column, select, table, text

from tenure.config import Settings
from tenure.db import DirectRead, HeldConnection, Prepared, make_engine

_NOTES = Prepared(select(func.count()).select_from(table("note")))
_MISSING = Prepared(select(column("x")).select_from(table("missing")))
_ONE = Prepared(select(literal_column("1")))


def _notes(read: DirectRead) -> int:
    (count,) = _NOTES.all(read)[0]
    return int(count)


@pytest.fixture
def own_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=None))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE note (body TEXT)"))
    yield engine
    engine.dispose()


def _checked_out(engine: Engine) -> int:
    return engine.pool.checkedout()  # type: ignore[attr-defined, no-any-return]


def test_reads_on_one_thread_share_one_connection_until_it_is_closed(own_engine: Engine) -> None:
    held = HeldConnection(own_engine)
    with held.read() as first:
        seen = first.dbapi_connection
    with held.read() as second:
        assert second.dbapi_connection is seen
    assert _checked_out(own_engine) == 1

    held.close()

    assert _checked_out(own_engine) == 0


def test_each_read_sees_what_others_committed_before_it(own_engine: Engine) -> None:
    held = HeldConnection(own_engine)
    with held.read() as conn:
        assert _notes(conn) == 0
    with own_engine.begin() as writer:
        writer.execute(text("INSERT INTO note VALUES ('written after the first read')"))

    with held.read() as conn:
        assert _notes(conn) == 1
    held.close()


def test_another_thread_reads_on_a_connection_from_the_pool(own_engine: Engine) -> None:
    held = HeldConnection(own_engine)
    with held.read() as conn:
        owners = conn.dbapi_connection
    seen: list[object] = []

    def elsewhere() -> None:
        with held.read() as other:
            seen.append(other.dbapi_connection)
            assert _ONE.all(other) == [(1,)]

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()

    assert seen and seen[0] is not owners
    assert _checked_out(own_engine) == 1  # the other thread's went back
    held.close()


def test_a_failed_read_gives_its_connection_back_and_the_next_read_takes_another(
    own_engine: Engine,
) -> None:
    held = HeldConnection(own_engine)
    with pytest.raises(Exception, match="no such table"), held.read() as conn:
        _MISSING.all(conn)
    assert _checked_out(own_engine) == 0

    with held.read() as conn:
        assert _notes(conn) == 0
    held.close()
    assert _checked_out(own_engine) == 0


def test_a_read_holds_no_transaction_open(own_engine: Engine) -> None:
    held = HeldConnection(own_engine)
    with held.read() as conn:
        assert _notes(conn) == 0
        assert not conn.dbapi_connection.in_transaction
        raw = conn.dbapi_connection
    with own_engine.begin() as writer:
        writer.execute(text("INSERT INTO note VALUES ('written between two reads')"))

    assert not raw.in_transaction  # an open read would hold back the WAL's checkpoints
    with held.read() as conn:
        assert _notes(conn) == 1
    held.close()


def _mmap_size(dbapi_connection: object) -> int:
    (size,) = dbapi_connection.execute("PRAGMA mmap_size").fetchone()  # type: ignore[attr-defined]
    return int(size)


@pytest.mark.parametrize("megabytes", [64, 0])
def test_the_held_connection_maps_the_file_as_configured_and_gives_it_back_unmapped(
    own_engine: Engine, megabytes: int
) -> None:
    held = HeldConnection(own_engine, mmap_bytes=megabytes * 2**20)
    with held.read() as conn:
        raw = conn.dbapi_connection
        assert _mmap_size(raw) == megabytes * 2**20
    with own_engine.connect() as pooled:  # the pool's other connections map nothing
        assert _mmap_size(pooled.connection.dbapi_connection) == 0

    held.close()

    assert _mmap_size(raw) == 0
