"""Fuzzing: schemathesis sends generated requests, valid and invalid, to every operation
of /openapi.json on a real server, signed in as an admin. No answer is a 5xx, and every
answer is one the document declares: its status, its content type and its body.

Bounded: a few dozen examples per operation, the same ones every run.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tenure.app import create_app
from tenure.config import Settings
from tests.reliability.served import ADMIN_EMAIL, ADMIN_PASSWORD, Server, Site, create_products

# Per operation. ./test sends the same examples every run (derandomized), so a failure is
# one that the last change brought; TENURE_FUZZ_EXAMPLES=500 digs deeper, at random.
EXPLORING = "TENURE_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("TENURE_FUZZ_EXAMPLES", "30"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@dataclass
class Fuzzed:
    server: Server
    token: str
    victim_id: int  # a user the fuzzer may change; never the fuzzer itself
    answers: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))


@pytest.fixture(scope="module")
def fuzzed(module_site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A server with a little of everything: products, customers, orders, a second user."""
    # The fuzzer fails to sign in from 127.0.0.1 all the time; logout needs it to succeed.
    relaxed = {"TENURE_LOGIN_ADDRESS_FAILURES": "1000000"}
    server = Server(module_site.settings, tmp_path_factory.mktemp("fuzzed"), env=relaxed).start()
    try:
        token = server.token()
        with server.client(token) as client:
            products = create_products(client)
            for n in range(3):
                r = client.post("/api/v1/customers", json={"name": f"Fuzzed {n}"})
                assert r.status_code == 201, r.text
                r = client.post(
                    "/api/v1/orders",
                    json={
                        "customer_id": r.json()["id"],
                        "lines": [{"product_id": products[n]["id"], "quantity": 1}],
                    },
                )
                assert r.status_code == 201, r.text
            r = client.post(
                "/api/v1/users",
                json={
                    "email": "victim@example.com",
                    "name": "Fuzzed user",
                    "password": "a-password-to-be-fuzzed",
                    "role": "sales",
                },
            )
            assert r.status_code == 201, r.text
            victim_id = r.json()["id"]
        yield Fuzzed(server, token, victim_id)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed: Fuzzed) -> Any:
    """The served /openapi.json, with the admin's token for its bearer scheme."""
    config = schemathesis.Config.from_str(
        f'base-url = "{fuzzed.server.url}"\n'
        f"request-timeout = 30\n"
        f'[auth.openapi.bearer]\nbearer = "{fuzzed.token}"\n'
    )
    return schemathesis.openapi.from_url(
        f"{fuzzed.server.url}/openapi.json", config=config, timeout=30
    )


def _operations() -> list[str]:
    """Every operation of the API, as "METHOD /path", from the application's own document."""
    app = create_app(Settings(data_dir=Path(tempfile.gettempdir()), database_url="sqlite://"))
    return [
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]


OPERATIONS = _operations()


def test_the_served_document_lists_every_operation(api_schema: Any) -> None:
    served = [f"{op.ok().method.upper()} {op.ok().path}" for op in api_schema.get_all_operations()]
    assert sorted(served) == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_is_declared_and_none_is_a_server_error(
    label: str, api_schema: Any, fuzzed: Fuzzed
) -> None:
    operation = api_schema.find_operation_by_label(label)
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not EXPLORING,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def fuzz(case: Any) -> None:
        headers = {}
        if label == "POST /api/v1/auth/logout":
            # Sign out a token of its own: the fuzzer's must outlive this test.
            headers["Authorization"] = f"Bearer {_fresh_token(fuzzed.server)}"
        if label == "PATCH /api/v1/users/{user_id}":
            # A new password or role for the fuzzer itself would end its sign-in.
            case.path_parameters = {**(case.path_parameters or {}), "user_id": fuzzed.victim_id}
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        fuzzed.answers[label][response.status_code] += 1

    fuzz()


def _fresh_token(server: Server) -> str:
    r = httpx2.post(
        f"{server.url}/api/v1/auth/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_the_fuzzer_was_signed_in_throughout(fuzzed: Fuzzed) -> None:
    """Every operation was reached (not only refused at the door), and nothing the fuzzer
    sent ended its own sign-in."""
    assert sorted(fuzzed.answers) == sorted(OPERATIONS)
    refused = [label for label, seen in fuzzed.answers.items() if set(seen) <= {401, 403}]
    assert refused == []
    with fuzzed.server.client(fuzzed.token) as client:
        assert client.get("/api/v1/auth/me").status_code == 200
