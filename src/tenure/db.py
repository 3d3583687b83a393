"""Engine, session factory and the declarative base shared by every domain."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    JSON,
    Connection,
    Dialect,
    Engine,
    MetaData,
    Select,
    event,
    make_url,
)
from sqlalchemy import create_engine as sqlalchemy_engine  # noqa: TID251
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.functions import GenericFunction

from tenure.config import Settings
from tenure.sqlite import has_wal_reset_bug, sqlite3

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: writers queue per process only
    fcntl = None  # type: ignore[assignment]

WRITE_OPTION = "tenure_write"
BUSY_TIMEOUT_SECONDS = 10.0
# JSON documents: jsonb on PostgreSQL (indexable), JSON text on SQLite.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    # Deleted and overwritten content is zeroed, not left in free space: an erased
    # customer's data must not stay readable in the file (not every build defaults to it).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> Engine:
    """SQLAlchemy's ``create_engine``, with Tenure's SQLite driver for SQLite URLs (see
    tenure.sqlite). Every engine in Tenure is made here."""
    if make_url(url).get_backend_name() == "sqlite":
        if has_wal_reset_bug(sqlite3.sqlite_version_info):
            raise RuntimeError(
                f"SQLite {sqlite3.sqlite_version} can corrupt a database in WAL mode "
                "(https://sqlite.org/wal.html#walresetbug); install Tenure's pinned "
                "pysqlite3, which carries a fixed SQLite."
            )
        kwargs.setdefault("module", sqlite3)
    return sqlalchemy_engine(url, **kwargs)


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured database, with SQLite tuned for a web server."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        database = make_url(url).database
        on_disk = (
            bool(database) and database != ":memory:" and not str(database).startswith("file:")
        )
        attributes: dict[str, Any] = {}
        if on_disk:
            lock = WriterLock(Path(f"{database}-lock"))
            attributes = {
                "writer_lock": lock,
                "checkpointer": Checkpointer(Path(str(database)), lock),
            }
        factory = type("TenureSQLiteConnection", (_SQLiteConnection,), attributes)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "factory": factory},
            pool_size=20,
            # The connection used last comes back first: its page cache (cache_size) is the
            # warm one; in turn, each connection would hold a cold share of the hot pages.
            # (An in-memory database has one connection per thread: nothing to order.)
            **({"pool_use_lifo": True} if on_disk else {}),
            json_deserializer=_json_loads,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # Writers take the lock at BEGIN so concurrent writers queue instead of failing
        # when a read transaction tries to upgrade to a write.
        event.listen(engine, "connect", _sqlite_no_autobegin)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=20, max_overflow=10, pool_pre_ping=True)


def _json_loads(text: str | bytes) -> Any:
    """JSON columns read with orjson (lists read hundreds of these), or the standard
    library for what only it accepts (NaN or Infinity, as json.dumps writes them)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _sqlite_no_autobegin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    write = bool(conn.get_execution_options().get(WRITE_OPTION, False))
    dbapi_connection = conn.connection.dbapi_connection
    if not isinstance(dbapi_connection, _SQLiteConnection):  # pragma: no cover
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
        return
    try:
        dbapi_connection.begin(write=write)
    except sqlite3.Error as exc:
        # As SQLAlchemy reports a failed statement: "database is locked" after the wait.
        statement = "BEGIN IMMEDIATE" if write else "BEGIN"
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc


class WriterLock:
    """Queues SQLite writers: the threads of a process on a lock, processes on flock(2)
    of a file beside the database.

    SQLite lets one writer in at a time and makes the others retry in steps that grow to
    100 ms (its busy handler), so a queue of a few writers turned into a tail of hundreds
    of milliseconds. Here a writer waits its turn and gets in as soon as it is free.
    """

    def __init__(self, path: Path, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = path
        self.timeout = timeout
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = os.getpid()

    def acquire(self) -> None:
        """Wait for the write lock; ``database is locked`` after ``timeout`` seconds."""
        if self._pid != os.getpid():  # a forked child: its own locks, its own file handle
            self.__init__(self.path, self.timeout)  # type: ignore[misc]
        deadline = time.monotonic() + self.timeout
        if not self._threads.acquire(timeout=self.timeout):
            raise sqlite3.OperationalError("database is locked")
        try:
            self._lock_file(deadline)
        except BaseException:
            self._threads.release()
            raise

    def try_acquire(self) -> bool:
        """Take the write lock if it is free now; never waits."""
        if self._pid != os.getpid():
            self.__init__(self.path, self.timeout)  # type: ignore[misc]
        if not self._threads.acquire(blocking=False):
            return False
        try:
            if fcntl is not None:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._threads.release()
            return False
        except BaseException:
            self._threads.release()
            raise
        return True

    def _lock_file(self, deadline: float) -> None:
        if fcntl is None:  # pragma: no cover
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                # Another process writes; its transactions take a millisecond or two.
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def release(self) -> None:
        if fcntl is not None and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


class Checkpointer:
    """Copies the write-ahead log back into the database file, in the background.

    SQLite does this by default in the commit that fills the log past 1,000 pages, with an
    fsync, while that writer still holds the write lock: every writer queued behind it
    waited for the copy too. Here commits only append to the log, and a thread of this
    process runs a PASSIVE checkpoint (it never waits for, nor blocks, readers or
    writers) at most every ``interval`` seconds after writes.

    A PASSIVE checkpoint copies the log but never starts it over. A writer starts it over
    only when no reader is still in it, which under steady traffic did not happen: the
    log grew by every page written (about 1 GiB in ten thousand new customers) and kept
    the old content of changed and erased rows on disk. Once the log holds
    ``restart_pages``, the checkpointer takes the write lock (writers queue behind it as
    behind any writer) and runs a RESTART checkpoint, which waits up to ``reader_wait``
    seconds for the readers still in the log and makes the next commit write it from the
    start. A long read (an export) that outlasts the wait leaves the log as it is; the
    next try comes after a pause that doubles each time, so writers are not held up
    every quarter second while it runs.
    """

    def __init__(
        self,
        database: Path,
        writer_lock: WriterLock,
        interval: float = 0.25,
        *,
        restart_pages: int = 16_384,
        reader_wait: float = 0.05,
    ) -> None:
        self.database = database
        self.interval = interval
        self.writer_lock = writer_lock
        self.restart_pages = restart_pages
        self.reader_wait = reader_wait
        self._guard = threading.Lock()
        self._running = False
        self._last = 0.0
        self._restart_after = 0.0
        self._restart_pause = interval

    def after_write(self) -> None:
        now = time.monotonic()
        with self._guard:
            if self._running or now - self._last < self.interval:
                return
            self._running, self._last = True, now
        threading.Thread(target=self.checkpoint, name="sqlite-checkpoint", daemon=True).start()

    def checkpoint(self) -> None:
        """Copy the log into the database file, and start it over once it is long."""
        try:
            connection = sqlite3.connect(self.database, timeout=1.0)
            try:
                _busy, pages, _copied = connection.execute(
                    "PRAGMA wal_checkpoint(PASSIVE)"
                ).fetchone()
                if pages >= self.restart_pages and time.monotonic() >= self._restart_after:
                    self._restart(connection)
            finally:
                connection.close()
        except sqlite3.Error:  # the next one will catch up
            pass
        finally:
            with self._guard:
                self._running = False

    def _restart(self, connection: sqlite3.Connection) -> None:
        """Start the log over, holding the write lock for no longer than the readers take."""
        connection.execute(f"PRAGMA busy_timeout={int(self.reader_wait * 1000)}")
        self.writer_lock.acquire()
        try:
            busy, _pages, _copied = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            self.writer_lock.release()
        if busy:
            self._restart_after = time.monotonic() + self._restart_pause
            self._restart_pause = min(self._restart_pause * 2, 30.0)
        else:
            self._restart_pause = self.interval


class _SQLiteConnection(sqlite3.Connection):
    """A SQLite connection that starts its own transactions, writers in turn."""

    writer_lock: WriterLock | None = None
    checkpointer: Checkpointer | None = None
    _writing = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.checkpointer is not None:
            self.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job

    def begin(self, *, write: bool) -> None:
        if write and self.writer_lock is not None:
            self.writer_lock.acquire()
            self._writing = True
        try:
            self.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except BaseException:
            self._release()
            raise

    def begin_again_as_writer(self, *, locked: bool = False) -> None:
        """End a transaction that has only read, and begin a writer's in its place.

        ``locked``: the caller took the write lock already (``WriterLock.try_acquire``);
        this connection releases it when its transaction ends, or at once if this fails."""
        if locked:
            self._writing = True  # from here on this connection lets the lock go
        try:
            if self.in_transaction:
                super().commit()
            if not locked:
                self.begin(write=True)
                return
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise

    def end_read(self) -> None:
        """End a transaction that has only read, so that its snapshot no longer holds the
        write-ahead log back; the next statement, or ``begin_again_as_writer``, begins
        anew."""
        if self.in_transaction and not self._writing:
            super().commit()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release(closed=True)

    def _release(self, *, closed: bool = False) -> None:
        """Let the next writer in once this connection's transaction is over."""
        if self._writing and self.writer_lock is not None and (closed or not self.in_transaction):
            self._writing = False
            self.writer_lock.release()
            if self.checkpointer is not None:
                self.checkpointer.after_write()


def make_sessionmaker(engine: Engine, *, sealer: Any = None) -> sessionmaker[Session]:
    """Sessions whose changes to audited records are written to the audit log.

    ``sealer`` (a ``tenure.security.fields.Sealer``) encrypts and opens customers'
    sensitive fields; sessions that touch them need one."""
    from tenure.audit import recorder  # the audit tables build on this module
    from tenure.security.fields import SEALER

    factory = sessionmaker(
        engine, expire_on_commit=False, info={SEALER: sealer} if sealer is not None else None
    )
    recorder.install(factory)
    return factory


@contextmanager
def unit_of_work(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One transaction: commits when the block ends normally, rolls back otherwise."""
    with factory() as session, session.begin():
        if write:
            begin_write(session)
        yield session


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer (SQLite: BEGIN IMMEDIATE)."""
    session.connection(execution_options={WRITE_OPTION: True})


def become_writer(session: Session, *, locked: bool = False) -> None:
    """Turn the session's transaction, which has only read so far, into a writer's.

    SQLite ends the read and begins again with BEGIN IMMEDIATE on the same connection
    (waiting its turn for the write lock unless ``locked``: the caller holds it, see
    ``line_up``); the session keeps its state. Elsewhere a transaction can write as
    it is."""
    dbapi_connection = session.connection().connection.dbapi_connection
    if isinstance(dbapi_connection, _SQLiteConnection):
        dbapi_connection.begin_again_as_writer(locked=locked)


def line_up(session: Session) -> WriterLock | None:
    """Ready a session that has only read to wait its turn to write: its read ends, and
    the lock it waits for is returned (SQLite; None elsewhere, where nobody queues).

    A writer queued for the write lock with its read still open pins the write-ahead log
    at that read's snapshot: a checkpoint can copy the log no further, and one that starts
    the log over waits for the queue that waits for it."""
    dbapi_connection = session.connection().connection.dbapi_connection
    if not isinstance(dbapi_connection, _SQLiteConnection):
        return None
    dbapi_connection.end_read()
    return dbapi_connection.writer_lock


class DirectRead(NamedTuple):
    """A DBAPI connection that only ``Prepared`` statements read on, without SQLAlchemy's
    per-transaction work: ``HeldConnection.read`` gives these."""

    dialect: Dialect
    dbapi_connection: Any


# Where a ``Prepared`` statement can run: a session, a connection, or a direct read.
ReadsIn = Session | Connection | DirectRead


class HeldConnection:
    """One pooled connection kept checked out for reads that run start to finish on one
    thread without giving it up: the route shortcuts on the event loop
    (``tenure.core.routing.shortcut``). Checking a connection out of the pool and back
    in, with its reset, costs more than such a read's queries.

    On SQLite the held connection opens no transaction: each statement reads the latest
    committed state on its own, so a read that needs one consistent view asks for it in
    one statement (``tenure.customers.service.read`` does). Elsewhere, and for another
    thread than the one that owns it, a read is one transaction on a pooled connection.

    The first thread to read owns it. A read that fails gives the connection back to the
    pool (which resets it) and the next read takes another.

    On SQLite the held connection reads the database file through a memory map of up to
    ``mmap_bytes``: pages come from the OS's page cache in place instead of being copied
    in with a system call each, which makes the random reads of a database larger than
    SQLite's cache (one customer among millions) cheaper. Only this connection maps the
    file: on the pool's connections, which also write, it measured slower."""

    def __init__(self, engine: Engine, *, mmap_bytes: int = 0) -> None:
        self.engine = engine
        self.mmap_bytes = mmap_bytes
        self._owner: int | None = None
        self._connection: Connection | None = None

    @contextmanager
    def read(self) -> Iterator[DirectRead]:
        """Statements on the held connection for as long as the block runs."""
        thread = threading.get_ident()
        if self._owner is None:
            self._owner = thread
        if thread != self._owner or self.engine.dialect.name != "sqlite":
            with self.engine.connect() as pooled, pooled.begin():
                yield DirectRead(pooled.dialect, pooled.connection.dbapi_connection)
            return
        held = self._connection
        try:
            if held is None:
                held = self._connection = self.engine.connect()
                _map_file(held, self.mmap_bytes)
            yield DirectRead(held.dialect, held.connection.dbapi_connection)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Give the connection back to the pool (a later read takes one again)."""
        if self._connection is not None:
            try:
                _map_file(self._connection, 0)  # back in the pool as the others are
            except Exception:  # a broken connection: the pool discards it
                self._connection.invalidate()
            self._connection.close()
            self._connection = None
        self._owner = None


def _map_file(connection: Connection, size: int) -> None:
    connection.connection.dbapi_connection.execute(f"PRAGMA mmap_size={int(size)}")  # type: ignore[union-attr]


class json_array_agg(GenericFunction[Any]):
    """The values of a group as one JSON array, in the order of
    ``.aggregate_order_by(...)`` when given: ``json_group_array`` on SQLite (``[]`` for
    no rows), ``json_agg`` on PostgreSQL (NULL for no rows)."""

    type = JSON()
    inherit_cache = True


@compiles(json_array_agg, "sqlite")
def _json_array_agg_sqlite(element: json_array_agg, compiler: Any, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


@compiles(json_array_agg, "postgresql")
def _json_array_agg_postgresql(element: json_array_agg, compiler: Any, **kw: Any) -> str:
    return f"json_agg({compiler.process(element.clauses, **kw)})"


StatementObserver = Callable[[str, float], None]
_observers: list[StatementObserver] = []


def observe_statements(observer: StatementObserver) -> None:
    """Have ``observer(operation, seconds)`` called after each ``Prepared`` statement
    (once, however often asked): the statement metrics, which time every other
    statement through the engine's cursor events."""
    if observer not in _observers:
        _observers.append(observer)


class Prepared:
    """A Core SELECT compiled once per dialect and run straight on the DBAPI cursor.

    For the few statements on the path of nearly every request (the token check, a
    customer and their totals): SQLAlchemy's per-execution work (cache key, execution
    context, result object, cursor events) costs several times what SQLite takes to
    answer them. The values come back converted by the columns' own types, as
    ``Connection.execute`` would return them. Each statement is reported to the
    statement observers (``observe_statements``) instead of the engine's cursor events.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self.keys = tuple(c.key for c in statement.selected_columns)
        self._plans: dict[str, _Plan] = {}

    def all(self, on: ReadsIn, **params: Any) -> list[tuple[Any, ...]]:
        """Every row, with ``params`` bound by name, in the transaction of ``on``."""
        if isinstance(on, DirectRead):
            dialect, dbapi_connection = on
        else:
            conn = on.connection() if isinstance(on, Session) else on
            dialect, dbapi_connection = conn.dialect, conn.connection.dbapi_connection
        plan = self._plans.get(dialect.name) or self._plan(dialect)
        values = plan.parameters(params)
        cursor = dbapi_connection.cursor()
        try:
            started = time.perf_counter()
            cursor.execute(plan.sql, values)
            raw = cursor.fetchall()
            seconds = time.perf_counter() - started
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(plan.sql, values, exc, dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()
        for observe in _observers:
            observe("SELECT", seconds)
        return [plan.convert(row) for row in raw]

    def first(self, on: ReadsIn, **params: Any) -> tuple[Any, ...] | None:
        """The first row, or None."""
        rows = self.all(on, **params)
        return rows[0] if rows else None

    def _plan(self, dialect: Dialect) -> _Plan:
        compiled = self.statement.compile(dialect=dialect)
        binds = {name: bind.value for name, bind in compiled.binds.items()}
        processors = {
            name: process
            for name, bind in compiled.binds.items()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        results = [
            c.type.dialect_impl(dialect).result_processor(dialect, None)
            for c in self.statement.selected_columns
        ]
        positional = compiled.positiontup if dialect.positional else None
        plan = _Plan(
            compiled.string, binds, processors, tuple(positional) if positional else None, results
        )
        self._plans[dialect.name] = plan
        return plan


@dataclass(frozen=True)
class _Plan:
    sql: str
    defaults: dict[str, Any]
    bind_processors: Mapping[str, Callable[[Any], Any]]
    positional: tuple[str, ...] | None
    result_processors: Sequence[Callable[[Any], Any] | None]
    # The columns that have a processor, by position: the others pass as they are.
    converted: tuple[tuple[int, Callable[[Any], Any]], ...] = field(init=False)

    def __post_init__(self) -> None:
        converted = tuple((i, p) for i, p in enumerate(self.result_processors) if p is not None)
        object.__setattr__(self, "converted", converted)

    def parameters(self, params: dict[str, Any]) -> Any:
        values = {**self.defaults, **params}
        for name, process in self.bind_processors.items():
            values[name] = process(values[name])
        if self.positional is None:
            return values
        return tuple(values[name] for name in self.positional)

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        if not self.converted:
            return tuple(row)
        values = list(row)
        for i, process in self.converted:
            values[i] = process(values[i])
        return tuple(values)
