"""Locust users for the load test: a CRM's day over the API, signed in with an API key.

Run by ``benchmarks/load.py``, which writes the spec this file reads (``TENURE_LOAD_SPEC``:
the key, the customer ids, products and search prefixes drawn from the data, the pace)
and reads back what it records (the spec's ``out``): every request's latency in
milliseconds between the end of the ramp and the stop, the failures, and this process's
own CPU time over that window.

Each user waits a random, exponentially distributed time (mean ``1 / pace`` seconds)
before each task, so arrivals are random as real users' are. (Locust's
``constant_throughput`` kept every user in the phase it was spawned in: users spawned
within one second then fired in a few bursts, and requests queued behind each other in
the server while it was idle most of the time.)

The mix, per task run:

- 35 search: ``GET /customers?q=<prefix>`` with 2-4 letters of a real name
- 35 customer 360: ``GET /customers/{id}`` then ``GET /customers/{id}/orders``
- 12 update: ``GET /customers/{id}`` for the ETag, then ``PATCH`` with ``If-Match``;
  a 412 (someone else changed it first) reads it again and retries, up to 5 times
- 12 create order: ``POST /orders`` with 3 lines and an ``Idempotency-Key``
- 6 create customer: ``POST /customers`` with an ``Idempotency-Key``
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust import FastHttpUser, events, task
from locust.env import Environment

SPEC: dict[str, Any] = json.loads(Path(os.environ["TENURE_LOAD_SPEC"]).read_text())
UPDATE_ATTEMPTS = 5
STAGES = ("lead", "prospect", "customer", "churned")
GIVEN = ("Ada", "Björn", "Chloé", "Dmitri", "Elif", "Fang", "Grace", "Hugo", "Ines", "Jonas")
FAMILY = ("Lovelace", "Berg", "Martin", "Ivanov", "Özdemir", "Wang", "Hopper", "Novak")

# Names requests are reported under.
SEARCH = "GET /customers?q="
GET_ONE = "GET /customers/{id}"
ORDERS = "GET /customers/{id}/orders"
PATCH = "PATCH /customers/{id}"
CONFLICT = "PATCH /customers/{id} 412 (retried)"
POST_ORDER = "POST /orders"
POST_CUSTOMER = "POST /customers"


class Recorder:
    """Latencies of requests answered inside the measuring window, by request name."""

    def __init__(self) -> None:
        self.measuring = False
        self.starts_at: float | None = None
        self.window: list[float] = []
        self.cpu: list[float] = []
        self.latencies: dict[str, list[float]] = {}
        self.failures: dict[str, int] = {}
        self.samples: list[str] = []

    def start_after(self, seconds: float) -> None:
        self.starts_at = time.time() + seconds

    def start(self) -> None:
        self.window, self.cpu = [time.time()], [time.process_time()]
        self.measuring = True

    def stop(self) -> None:
        if self.measuring:
            self.measuring = False
            self.window.append(time.time())
            self.cpu.append(time.process_time())
        elif not self.window and self.starts_at is not None:
            # Not one request finished once measuring was due: a window without answers,
            # which the step reports as such (no window at all would end the run).
            now = time.time()
            self.window = [min(self.starts_at, now), now]
            self.cpu = [time.process_time()] * 2

    def request(self, name: str, response_time: float, exception: Any, response: Any) -> None:
        if not self.measuring:
            if self.starts_at is None or time.time() < self.starts_at or self.window:
                return
            self.start()
        self.latencies.setdefault(name, []).append(response_time)
        if exception is not None:
            self.failures[name] = self.failures.get(name, 0) + 1
            if len(self.samples) < 10:  # a few examples show what went wrong
                status = getattr(response, "status_code", None)
                body = (getattr(response, "text", None) or "")[:300]
                self.samples.append(f"{name}: {status} {exception!r} {body}")

    def write(self, path: Path) -> None:
        result = {
            "window": self.window,
            "client_cpu_seconds": self.cpu[1] - self.cpu[0] if len(self.cpu) == 2 else None,
            "latencies_ms": self.latencies,
            "failures": self.failures,
            "failure_samples": self.samples,
        }
        path.write_text(json.dumps(result))


recorder = Recorder()


def _listen(hook: Any, handler: Callable[..., None]) -> None:
    hook.add_listener(handler)


def _on_request(
    name: str, response_time: float, exception: Any, response: Any = None, **_: Any
) -> None:
    recorder.request(name, response_time, exception, response)


def _on_spawned(user_count: int, **_: Any) -> None:
    # Measure once every user runs and the first burst has settled.
    recorder.start_after(float(SPEC["settle_seconds"]))


def _on_stopping(environment: Environment, **_: Any) -> None:
    recorder.stop()


def _on_stop(environment: Environment, **_: Any) -> None:
    recorder.stop()
    recorder.write(Path(SPEC["out"]))


_listen(events.request, _on_request)
_listen(events.spawning_complete, _on_spawned)
_listen(events.test_stopping, _on_stopping)
_listen(events.test_stop, _on_stop)


class CrmUser(FastHttpUser):
    """Someone working through the API: searching, reading, editing, ordering."""

    rng = random.Random()  # one generator for every user of this process

    def wait_time(self) -> float:
        return self.rng.expovariate(float(SPEC["pace"]))

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {SPEC['key']}"}

    def customer_id(self) -> int:
        return self.rng.randint(1, int(SPEC["max_customer_id"]))

    @task(35)
    def search(self) -> None:
        prefix = self.rng.choice(SPEC["prefixes"])
        self.client.get(
            "/api/v1/customers", params={"q": prefix}, headers=self.headers, name=SEARCH
        )

    @task(35)
    def customer_360(self) -> None:
        cid = self.customer_id()
        self.client.get(f"/api/v1/customers/{cid}", headers=self.headers, name=GET_ONE)
        self.client.get(f"/api/v1/customers/{cid}/orders", headers=self.headers, name=ORDERS)

    @task(12)
    def update_customer(self) -> None:
        # Reps edit the accounts they work on: a small set, so edits sometimes collide.
        cid = self.rng.choice(SPEC["hot_customer_ids"])
        for _ in range(UPDATE_ATTEMPTS):
            read = self.client.get(f"/api/v1/customers/{cid}", headers=self.headers, name=GET_ONE)
            ok = read.status_code == 200 and read.headers is not None
            tag = read.headers.get("ETag") if ok and read.headers is not None else None
            if tag is None:
                return
            with self.client.patch(
                f"/api/v1/customers/{cid}",
                json=self.change(),
                headers=self.headers | {"If-Match": tag},
                name=PATCH,
                catch_response=True,
            ) as response:
                if response.status_code != 412:
                    return
                # Not an error: the API refused to overwrite a newer version; read, retry.
                response.request_meta["name"] = CONFLICT
                response.success()
        # Still conflicting after every attempt: that one is a failure.
        hook: Any = events.request
        hook.fire(
            request_type="PATCH",
            name=PATCH,
            response_time=0.0,
            response_length=0,
            exception=RuntimeError(f"still 412 after {UPDATE_ATTEMPTS} attempts"),
        )

    def change(self) -> dict[str, Any]:
        change: dict[str, Any] = {"notes": f"Called {time.strftime('%Y-%m-%d %H:%M:%S')}."}
        kind = self.rng.randrange(3)
        if kind == 0:
            change["lifecycle_stage"] = self.rng.choice(STAGES)
        elif kind == 1:
            change["phone"] = f"+49 30 {self.rng.randint(1_000_000, 9_999_999)}"
        else:
            change["tags"] = self.rng.sample(["vip", "newsletter", "partner", "follow-up"], 2)
        return change

    @task(12)
    def create_order(self) -> None:
        lines = [
            {"product_id": p, "quantity": self.rng.randint(1, 3)}
            for p in self.rng.sample(SPEC["product_ids"], 3)
        ]
        body = {"customer_id": self.customer_id(), "status": "placed", "lines": lines}
        headers = self.headers | {"Idempotency-Key": str(uuid.uuid4())}
        self.client.post("/api/v1/orders", json=body, headers=headers, name=POST_ORDER)

    @task(6)
    def create_customer(self) -> None:
        key = uuid.uuid4()
        body = {
            "name": f"{self.rng.choice(GIVEN)} {self.rng.choice(FAMILY)}",
            "email": f"load-{key.hex[:16]}@load.example",
            "phone": "+49 30 1234567",
            "address": {"line1": "Hauptstraße 1", "city": "Berlin", "country": "DE"},
            "tags": ["load-test"],
            "lifecycle_stage": "lead",
            "source": "load-test",
        }
        headers = self.headers | {"Idempotency-Key": str(key)}
        self.client.post("/api/v1/customers", json=body, headers=headers, name=POST_CUSTOMER)
