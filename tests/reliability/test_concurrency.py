"""Concurrency: two worker processes and 20 clients doing read-modify-write with
``If-Match`` on the same few customers, retrying on 412. No update is lost: the final
values account for every write that was answered 200, and for nothing else; and the
SQLite file, written by both workers and their checkpointers at once, is sound."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.reliability.checks import sqlite_problems
from tests.reliability.served import Site, serving

CLIENTS = 20
RECORDS = 3
WRITES_PER_CLIENT = 5
MAX_ATTEMPTS = 200  # per write: the others' writes keep moving the version on


def test_no_update_is_lost_under_concurrent_read_modify_write(site: Site, root: Path) -> None:
    with serving(site.settings, root, workers=2) as server:
        token = site.api_key
        with server.client(token) as client:
            ids = []
            for n in range(RECORDS):
                r = client.post(
                    "/api/v1/customers", json={"name": f"Contended {n}", "custom": {"count": 0}}
                )
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])

        conflicts = Counter[int]()
        lock = threading.Lock()

        def increment(client_no: int) -> list[tuple[int, str]]:
            """This client's writes, each a customer id and the token it appended."""
            done = []
            with server.client(token) as client:
                for n in range(WRITES_PER_CLIENT):
                    customer_id = ids[(client_no + n) % RECORDS]
                    mark = f"c{client_no}w{n}"
                    for _ in range(MAX_ATTEMPTS):
                        status = _append(client, customer_id, mark)
                        if status == 200:
                            done.append((customer_id, mark))
                            break
                        assert status == 412, status
                        with lock:
                            conflicts[customer_id] += 1
                    else:
                        raise AssertionError(f"{mark} never got through")
            return done

        with ThreadPoolExecutor(CLIENTS) as pool:
            written = [w for done in pool.map(increment, range(CLIENTS)) for w in done]

        assert len(written) == CLIENTS * WRITES_PER_CLIENT
        assert sum(conflicts.values()) > 0, "the clients never contended"
        with server.client(token) as client:
            for customer_id in ids:
                customer = client.get(f"/api/v1/customers/{customer_id}").json()
                marks = sorted(m for c, m in written if c == customer_id)
                assert sorted(customer["notes"].split()) == marks
                assert customer["custom"] == {"count": len(marks)}
                assert customer["version"] == 1 + len(marks)
    if site.settings.is_sqlite:
        assert sqlite_problems(site.settings) == []


def _append(client: Any, customer_id: int, mark: str) -> int:
    """Read the customer, add one to its count and ``mark`` to its notes, write it back
    with ``If-Match``; the status of the write."""
    r = client.get(f"/api/v1/customers/{customer_id}")
    assert r.status_code == 200, r.text
    customer = r.json()
    notes = f"{customer['notes'] or ''} {mark}".strip()
    count = customer["custom"]["count"] + 1
    r = client.patch(
        f"/api/v1/customers/{customer_id}",
        json={"notes": notes, "custom": {"count": count}},
        headers={"If-Match": r.headers["ETag"]},
    )
    if r.status_code == 412:
        assert r.headers["content-type"] == "application/problem+json"
    else:
        assert r.status_code == 200, r.text
        assert r.headers["ETag"] == f'"{customer["version"] + 1}"'
    return int(r.status_code)
