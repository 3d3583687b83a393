"""The one SQLite driver in Tenure: pysqlite3, the standard library's ``sqlite3`` module
built with a current SQLite (the pinned wheel carries SQLite 3.53).

Python's own module uses the system's SQLite, 3.40.1 on Debian 12, which has the WAL-reset
bug (https://sqlite.org/wal.html#walresetbug: SQLite 3.7.0 to 3.51.2; fixed in 3.51.3 and in
the 3.44.6 and 3.50.7 patch releases). A checkpoint that overlaps a write from another
connection can leave committed pages out of the database file. The server checkpoints from
a thread while two worker processes write, and with the system's SQLite the API benchmark at
1,000,000 customers left the file damaged.

Everything that opens a database file takes the driver from here, and SQLAlchemy engines are
made by :func:`tenure.db.create_engine`. Two SQLite libraries must never open one file in one
process: closing a file in one drops the other's locks on it. Ruff bans ``import sqlite3``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same interface, and the standard library has the type stubs
    import sqlite3  # noqa: TID251
else:
    from pysqlite3 import dbapi2 as sqlite3

__all__ = ["has_wal_reset_bug", "sqlite3"]

FIXED = (3, 51, 3)  # the WAL-reset fix, in every release from this one on
PATCHED = ((3, 44, 6), (3, 50, 7))  # and in these patch releases of older lines


def has_wal_reset_bug(version: tuple[int, int, int]) -> bool:
    """Whether this SQLite version can corrupt a database by the WAL-reset race."""
    if version >= FIXED:
        return False
    return not any(version[:2] == patched[:2] and version >= patched for patched in PATCHED)
