"""The credential check of the route shortcuts (``Holders``): it answers as ``holder``
does at every moment, reading a credential again only once the database has changed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tenure.core.time import utcnow
from tenure.db import HeldConnection
from tenure.security import service as security_service
from tenure.security.service import Holder, Holders

Headers = dict[str, str]


@pytest.fixture
def held(engine: Engine) -> Iterator[HeldConnection]:
    """A held connection of its own, owned by the test's thread (as the event loop's
    thread owns the app's)."""
    held = HeldConnection(engine)
    yield held
    held.close()


def _credential(headers: Headers) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _ask(held: HeldConnection, holders: Holders, credential: str) -> Holder | None:
    with held.read() as read:
        found = holders.holder(read, credential)
        assert found == security_service.holder(read, credential)  # always the same answer
        return found


def test_a_change_anywhere_is_seen_by_the_next_check(
    client: TestClient,
    admin: Headers,
    login: Callable[..., Headers],
    held: HeldConnection,
) -> None:
    holders = Holders(held)
    support = login("support")
    credential = _credential(support)
    found = _ask(held, holders, credential)
    assert found is not None and found.role == "support"
    assert _ask(held, holders, credential) == found

    me = client.get("/api/v1/auth/me", headers=support).json()
    r = client.patch(f"/api/v1/users/{me['id']}", json={"role": "analyst"}, headers=admin)
    assert r.status_code == 200, r.text
    found = _ask(held, holders, credential)
    assert found is not None and found.role == "analyst"

    assert client.post("/api/v1/auth/logout", headers=support).status_code == 204
    assert _ask(held, holders, credential) is None

    other = login("sales")
    assert _ask(held, holders, _credential(other)) is not None
    user_id = client.get("/api/v1/auth/me", headers=other).json()["id"]
    r = client.patch(f"/api/v1/users/{user_id}", json={"is_active": False}, headers=admin)
    assert r.status_code == 200, r.text
    assert _ask(held, holders, _credential(other)) is None


def test_an_api_key_revoked_is_refused_at_once(
    client: TestClient, admin: Headers, held: HeldConnection
) -> None:
    holders = Holders(held)
    r = client.post("/api/v1/api-keys", json={"name": "Nightly"}, headers=admin)
    key, key_id = r.json()["key"], r.json()["id"]
    found = _ask(held, holders, key)
    assert found is not None and found.key_use_due  # never used yet
    assert client.delete(f"/api/v1/api-keys/{key_id}", headers=admin).status_code == 204
    assert _ask(held, holders, key) is None


def test_the_credential_is_read_once_while_nothing_is_written(
    client: TestClient,
    admin: Headers,
    held: HeldConnection,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[str] = []
    lookup = security_service._lookup

    def counted(on: Any, is_key: bool, digest: str) -> Any:
        reads.append(digest)
        return lookup(on, is_key, digest)

    monkeypatch.setattr(security_service, "_lookup", counted)
    holders = Holders(held)
    credential = _credential(admin)
    for _ in range(3):
        assert _ask(held, holders, credential) is not None
    # Each _ask also calls holder() itself: one read each, and Holders' own.
    if engine.dialect.name == "sqlite":
        assert len(reads) == 3 + 1
    else:  # no version to compare: every check reads
        assert len(reads) == 3 + 3

    client.post("/api/v1/customers", json={"name": "Ada Lovelace"}, headers=admin)
    reads.clear()
    assert _ask(held, holders, credential) is not None
    assert len(reads) == 2  # the database changed: read again


def test_a_token_that_expires_meanwhile_is_refused(
    admin: Headers, held: HeldConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    holders = Holders(held)
    credential = _credential(admin)
    assert _ask(held, holders, credential) is not None
    later = utcnow() + timedelta(days=400)
    monkeypatch.setattr(security_service, "utcnow", lambda: later)
    assert _ask(held, holders, credential) is None
