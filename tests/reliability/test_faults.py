"""Faults of the embedded database (SQLite): another process holding it locked past the
busy timeout, and its disk filling up. Each gives a clear 503 problem (with Retry-After)
that changed nothing, reads go on meanwhile, the file stays sound, and the server serves
writes again as soon as the fault is gone. (These run on the SQLite run only.)"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import make_url, text

from tenure.config import Settings
from tenure.db import make_engine
from tenure.sqlite import sqlite3
from tests.reliability.checks import audit_chain_intact, sqlite_problems
from tests.reliability.served import Site, initialise, serving

DISK_MB = 12


def _problem(r: httpx2.Response, code: str) -> dict[str, Any]:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["Retry-After"]) > 0
    body: dict[str, Any] = r.json()
    assert body["type"] == f"urn:tenure:problem:{code}"
    assert body["status"] == 503
    assert "nothing was changed" in body["detail"]
    return body


def _stored_names(site: Site) -> set[str]:
    with site.engine.connect() as conn:
        return set(conn.execute(text("SELECT name FROM customer")).scalars())


def _site(data_dir: Path) -> Iterator[Site]:
    settings = Settings(data_dir=data_dir, database_url=None)
    engine = make_engine(settings)
    try:
        yield initialise(settings, engine)
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path / "data")


def test_a_locked_database_answers_503_and_recovers(sqlite_site: Site, root: Path) -> None:
    site = sqlite_site
    with serving(site.settings, root) as server, server.client(site.api_key) as client:
        r = client.post("/api/v1/customers", json={"name": "Before the lock"})
        assert r.status_code == 201, r.text
        before = r.json()["id"]

        path = make_url(site.settings.sqlalchemy_url).database
        assert path
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # as a maintenance script might, for too long
        try:
            # Reads go on; writes wait out the busy timeout, then are refused.
            assert client.get(f"/api/v1/customers/{before}").status_code == 200
            with ThreadPoolExecutor(2) as pool:
                plain = pool.submit(client.post, "/api/v1/customers", json={"name": "Locked 1"})
                keyed = pool.submit(
                    client.post,
                    "/api/v1/customers",
                    json={"name": "Locked 2"},
                    headers={"Idempotency-Key": "during-the-lock"},
                )
                busy = [_problem(plain.result(), "database-busy")]
                busy.append(_problem(keyed.result(), "database-busy"))
        finally:
            holder.rollback()
            holder.close()

        r = client.post("/api/v1/customers", json={"name": "After the lock"})
        assert r.status_code == 201, r.text
        # The refused request claimed nothing: its retry goes through.
        r = client.post(
            "/api/v1/customers",
            json={"name": "Locked 2"},
            headers={"Idempotency-Key": "during-the-lock"},
        )
        assert r.status_code == 201, r.text
    assert _stored_names(site) == {"Before the lock", "After the lock", "Locked 2"}
    assert sqlite_problems(site.settings) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of a few megabytes: a real filesystem that fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with one file; return it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    chunk = b"\0" * 65536
    try:
        while True:
            try:
                written = os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                if len(chunk) == 1:
                    return filler
                chunk = chunk[: len(chunk) // 2]
                continue
            if written < len(chunk):
                chunk = chunk[: max(1, len(chunk) // 2)]
    finally:
        os.close(fd)


def test_a_full_disk_answers_503_and_recovers(small_disk: Path, root: Path) -> None:
    site = next(_site(small_disk / "data"))
    try:
        _full_disk(site, root, small_disk)
    finally:
        site.engine.dispose()


def _full_disk(site: Site, root: Path, disk: Path) -> None:
    saved: list[str] = []
    refused: list[str] = []
    with serving(site.settings, root) as server, server.client(site.api_key) as client:
        r = client.post("/api/v1/customers", json={"name": "Before the disk filled"})
        assert r.status_code == 201, r.text
        before = r.json()["id"]

        filler = _fill(disk)
        # Writes may still fit in pages SQLite had already; soon they do not.
        for n in range(400):
            name = f"Full {n}"
            r = client.post("/api/v1/customers", json={"name": name, "notes": "x" * 8000})
            if r.status_code == 201:
                saved.append(name)
                continue
            _problem(r, "storage-full")
            refused.append(name)
            if len(refused) == 3:
                break
        assert len(refused) == 3, f"{len(saved)} writes fitted on a full disk"
        assert client.get(f"/api/v1/customers/{before}").status_code == 200

        filler.unlink()
        time.sleep(0.1)
        r = client.post("/api/v1/customers", json={"name": "After the disk was freed"})
        assert r.status_code == 201, r.text
    stored = _stored_names(site)
    assert stored == {"Before the disk filled", "After the disk was freed", *saved}
    assert sqlite_problems(site.settings) == []
    audit_chain_intact(site.settings)
