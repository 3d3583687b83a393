"""The SQLite library under Tenure: never one with the WAL-reset bug, and the same one for
every connection to a database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tenure.config import Settings
from tenure.db import create_engine, make_engine
from tenure.ops import doctor
from tenure.ops.doctor import Status
from tenure.sqlite import has_wal_reset_bug, sqlite3


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ((3, 7, 0), True),
        ((3, 40, 1), True),  # Debian 12's system library
        ((3, 44, 5), True),
        ((3, 44, 6), False),  # patch releases with the fix
        ((3, 45, 0), True),
        ((3, 50, 6), True),
        ((3, 50, 7), False),
        ((3, 51, 2), True),
        ((3, 51, 3), False),
        ((3, 52, 0), False),
        ((3, 53, 4), False),
        ((4, 0, 0), False),
    ],
)
def test_versions_with_the_wal_reset_bug_are_known(
    version: tuple[int, int, int], affected: bool
) -> None:
    assert has_wal_reset_bug(version) is affected


def test_the_server_s_connections_use_a_sqlite_without_the_bug(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=None))
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT sqlite_version()")).scalar_one()
            raw = conn.connection.dbapi_connection
    finally:
        engine.dispose()

    assert version == sqlite3.sqlite_version
    assert not has_wal_reset_bug(sqlite3.sqlite_version_info)
    assert isinstance(raw, sqlite3.Connection)


def test_an_engine_is_refused_a_sqlite_with_the_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 40, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.40.1")

    with pytest.raises(RuntimeError, match=r"SQLite 3\.40\.1 can corrupt a database"):
        create_engine(f"sqlite:///{tmp_path / 'tenure.db'}")
    assert not (tmp_path / "tenure.db").exists()


def test_doctor_fails_a_sqlite_with_the_bug_and_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 40, 1))
    settings = Settings(data_dir=tmp_path, database_url=None)

    findings = doctor.run(lambda: settings)

    assert [(f.check, f.status) for f in findings] == [
        ("configuration", Status.OK),
        ("sqlite", Status.FAIL),
    ]
    assert "SQLite 3.40.1 has the WAL-reset bug" in findings[-1].message
    assert findings[-1].fix is not None and "pysqlite3" in findings[-1].fix
    assert doctor.exit_code(findings) == 1


def test_doctor_passes_the_sqlite_tenure_ships() -> None:
    found = doctor.check_sqlite_library()

    assert found.status == Status.OK
    assert found.message == f"SQLite {sqlite3.sqlite_version}, without the WAL-reset bug."
