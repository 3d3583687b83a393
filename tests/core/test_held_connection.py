"""The connection kept checked out for the route shortcuts' reads (tenure.db.HeldConnection):
one per thread that owns it, a fresh transaction per read, replaced when it breaks, and
given back to the pool when closed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tenure.config import Settings
from tenure.db import HeldConnection, make_engine


@pytest.fixture
def own_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=None))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE note (body TEXT)"))
    yield engine
    engine.dispose()


def _dbapi(conn: object) -> object:
    return conn.connection.dbapi_connection  # type: ignore[attr-defined]


def _checked_out(engine: Engine) -> int:
    return engine.pool.checkedout()  # type: ignore[attr-defined, no-any-return]


def test_reads_on_one_thread_share_one_connection_until_it_is_closed(own_engine: Engine) -> None:
    held = HeldConnection(own_engine)
    with held.read() as first:
        seen = _dbapi(first)
    with held.read() as second:
        assert _dbapi(second) is seen
    assert _checked_out(own_engine) == 1

    held.close()

    assert _checked_out(own_engine) == 0


def test_each_read_sees_what_others_committed_before_it(own_engine: Engine) -> None:
    held = HeldConnection(own_engine)
    with held.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM note")).scalar_one() == 0
    with own_engine.begin() as writer:
        writer.execute(text("INSERT INTO note VALUES ('written after the first read')"))

    with held.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM note")).scalar_one() == 1
    held.close()


def test_another_thread_reads_on_a_connection_from_the_pool(own_engine: Engine) -> None:
    held = HeldConnection(own_engine)
    with held.read() as conn:
        owners = _dbapi(conn)
    seen: list[object] = []

    def elsewhere() -> None:
        with held.read() as other:
            seen.append(_dbapi(other))
            assert other.execute(text("SELECT 1")).scalar_one() == 1

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()

    assert seen and seen[0] is not owners
    assert _checked_out(own_engine) == 1  # the other thread's went back
    held.close()


def test_a_failed_read_rolls_back_and_the_next_one_works(own_engine: Engine) -> None:
    held = HeldConnection(own_engine)
    with pytest.raises(Exception, match="no such table"), held.read() as conn:
        conn.execute(text("SELECT * FROM missing"))

    with held.read() as conn:
        assert conn.in_transaction()
        assert conn.execute(text("SELECT count(*) FROM note")).scalar_one() == 0
    held.close()


def test_an_invalidated_connection_is_replaced(own_engine: Engine) -> None:
    held = HeldConnection(own_engine)
    with pytest.raises(ConnectionError), held.read() as conn:
        broken = conn
        conn.invalidate()  # as the pool does when the database connection is lost
        raise ConnectionError

    with held.read() as conn:
        assert conn is not broken
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    held.close()
    assert _checked_out(own_engine) == 0
