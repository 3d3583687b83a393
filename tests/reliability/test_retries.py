"""Retries: clients whose requests time out, or whose connection is cut, retry with the
same ``Idempotency-Key`` until they get an answer; each order is created exactly once and
every retry is answered with that order."""

from __future__ import annotations

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson
from sqlalchemy import text

from tests.reliability.served import Server, Site, create_products, serving

CLIENTS = 8
ORDERS_PER_CLIENT = 4
# The first tries give up long before an order can be written; the last waits for it.
READ_TIMEOUTS = (0.001, 0.01, 0.05, 0.2, 30.0)
MAX_ATTEMPTS = 60


def test_retried_orders_are_created_exactly_once(site: Site, root: Path) -> None:
    with serving(site.settings, root) as server:
        with server.client(site.api_key) as client:
            products = create_products(client)
            r = client.post("/api/v1/customers", json={"name": "Retrying customer"})
            assert r.status_code == 201, r.text
            customer_id = r.json()["id"]

        def order(key: str) -> dict[str, Any]:
            return {
                "customer_id": customer_id,
                "status": "placed",
                "notes": key,
                "lines": [{"product_id": p["id"], "quantity": 3} for p in products],
            }

        def place(n: int) -> list[Placed]:
            """This client's orders; every other one starts with a connection cut off."""
            placed = []
            for i in range(ORDERS_PER_CLIENT):
                key = f"retry-{n}-{i}-{uuid.uuid4()}"
                cut = _cut_off(server, site.api_key, key, order(key)) if i % 2 else 0
                done = _until_answered(server, site.api_key, key, order(key))
                placed.append(replace(done, lost=done.lost + cut))
            return placed

        with ThreadPoolExecutor(CLIENTS) as pool:
            placed = [p for client_placed in pool.map(place, range(CLIENTS)) for p in client_placed]

        # Most first tries were given up on, and the server finished some of them anyway:
        # their retries were answered with the stored response.
        assert sum(p.lost for p in placed) >= len(placed) // 2
        assert any(p.replayed for p in placed)
        with site.engine.connect() as conn:
            stored: dict[str, int] = dict(
                conn.execute(text("SELECT notes, COUNT(*) FROM sales_order GROUP BY notes")).all()
            )
        assert stored == {p.key: 1 for p in placed}
        with server.client(site.api_key) as client:
            for p in placed:
                assert p.answer["notes"] == p.key
                assert client.get(f"/api/v1/orders/{p.answer['id']}").json() == p.answer


@dataclass(frozen=True)
class Placed:
    key: str
    answer: dict[str, Any]  # the order the client was finally answered with
    lost: int  # tries that went unanswered
    replayed: bool  # the answer was the stored response to an earlier try


def _until_answered(server: Server, api_key: str, key: str, body: dict[str, Any]) -> Placed:
    """POST the order with ``key`` until it is answered 201, giving up on the early tries
    after a longer and longer wait."""
    lost = 0
    for attempt in range(MAX_ATTEMPTS):
        timeout = httpx2.Timeout(30.0, read=READ_TIMEOUTS[min(attempt, len(READ_TIMEOUTS) - 1)])
        with server.client(api_key, timeout=timeout) as client:
            try:
                r = client.post("/api/v1/orders", json=body, headers={"Idempotency-Key": key})
            except httpx2.TimeoutException:
                lost += 1
                continue
        if r.status_code == 201:
            return Placed(key, r.json(), lost, r.headers.get("Idempotent-Replayed") == "true")
        # The first try is still being answered: wait for it, as the problem says.
        assert r.status_code == 409, r.text
        assert r.json()["type"] == "urn:tenure:problem:idempotency-in-progress"
        time.sleep(0.05)
    raise AssertionError(f"{key} was never answered")


def _cut_off(server: Server, api_key: str, key: str, body: dict[str, Any]) -> int:
    """Send the order and close the connection at once, without reading a byte."""
    url = urlsplit(server.url)
    payload = orjson.dumps(body)
    request = (
        f"POST /api/v1/orders HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {api_key}\r\nIdempotency-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(request)
    return 1
