"""Crash: the server is SIGKILLed in the middle of a write load. After a restart, every
write that was answered 2xx is there as it was answered, nothing is half-written, and the
database passes its integrity checks (SQLite: integrity_check; both: no partial orders,
an intact audit chain)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx2

from tests.reliability.checks import audit_chain_intact, partial_orders, sqlite_problems
from tests.reliability.served import Server, Site, create_products

WRITERS = 6
ACKNOWLEDGED_BEFORE_CRASH = 60  # customers and orders answered 201 before the kill
LOAD_SECONDS = 20


class WriteLoad:
    """Writers creating customers and, for each, an order of two lines, until the crash."""

    def __init__(self, server: Server, token: str, products: list[dict[str, Any]]) -> None:
        self.server = server
        self.token = token
        self.products = products
        self.customers: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.cut = 0  # requests the crash cut off, their outcome unknown to the client
        self.errors: list[str] = []
        self.killed = threading.Event()
        self._lock = threading.Lock()

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return len(self.customers) + len(self.orders)

    def write(self, writer: int) -> None:
        with self.server.client(self.token, timeout=15) as client:
            for seq in range(100_000):
                try:
                    self._customer_and_order(client, writer, seq)
                except httpx2.TransportError:
                    if self.killed.wait(10):
                        with self._lock:
                            self.cut += 1
                        return
                    raise
                if self.killed.is_set() or self.errors:
                    return

    def _customer_and_order(self, client: httpx2.Client, writer: int, seq: int) -> None:
        body = {
            "name": f"Crash {writer}-{seq}",
            "notes": f"written by writer {writer} as number {seq}",
            "tags": ["crash", f"w{writer}"],
            "custom": {"writer": writer, "seq": seq},
        }
        r = client.post("/api/v1/customers", json=body)
        if r.status_code != 201:
            self.errors.append(f"customer: {r.status_code} {r.text}")
            return
        customer = r.json()
        with self._lock:
            self.customers[customer["id"]] = customer
        a = self.products[seq % len(self.products)]
        b = self.products[(seq + 1) % len(self.products)]
        order = {
            "customer_id": customer["id"],
            "status": "placed",
            "notes": f"order of writer {writer} number {seq}",
            "lines": [
                {"product_id": a["id"], "quantity": 1 + seq % 4},
                {"product_id": b["id"], "quantity": 2, "unit_price": "0.99"},
            ],
        }
        r = client.post("/api/v1/orders", json=order)
        if r.status_code != 201:
            self.errors.append(f"order: {r.status_code} {r.text}")
            return
        with self._lock:
            self.orders[r.json()["id"]] = r.json()

    def crash_when_loaded(self) -> None:
        """Run the writers; SIGKILL the server once enough writes were acknowledged."""
        threads = [threading.Thread(target=self.write, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + LOAD_SECONDS
        while self.acknowledged < ACKNOWLEDGED_BEFORE_CRASH and time.monotonic() < deadline:
            if self.errors or not any(t.is_alive() for t in threads):
                break
            time.sleep(0.02)
        self.server.kill()
        self.killed.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not self.errors, self.errors
        assert self.acknowledged >= ACKNOWLEDGED_BEFORE_CRASH, "the load did not get going"


def _stored(customer: dict[str, Any]) -> dict[str, Any]:
    """The customer as written; the summary moves on as orders are added."""
    return {k: v for k, v in customer.items() if k != "summary"}


def test_every_acknowledged_write_survives_a_crash(site: Site, root: Path) -> None:
    server = Server(site.settings, root).start()
    try:
        token = site.api_key
        with server.client(token) as client:
            products = create_products(client)
        load = WriteLoad(server, token, products)
        load.crash_when_loaded()
        # Writes were in flight when it died: their clients never heard back.
        assert load.cut > 0

        if site.settings.is_sqlite:
            assert sqlite_problems(site.settings) == []
        server.start()
        with server.client(token) as client:
            for customer_id, written in load.customers.items():
                r = client.get(f"/api/v1/customers/{customer_id}")
                assert r.status_code == 200, r.text
                assert _stored(r.json()) == _stored(written)
            for order_id, written in load.orders.items():
                r = client.get(f"/api/v1/orders/{order_id}")
                assert r.status_code == 200, r.text
                assert r.json() == written
            # The restarted server takes writes again.
            r = client.post("/api/v1/customers", json={"name": "After the crash"})
            assert r.status_code == 201, r.text
    finally:
        server.stop()
    assert partial_orders(site.engine) == {}
    audit_chain_intact(site.settings)
