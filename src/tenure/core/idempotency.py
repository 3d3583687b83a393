"""Idempotency-Key for POST: a retried request returns the first response.

A pure ASGI middleware, so every POST route gets it. The key is claimed in its own
committed transaction before the request runs (a concurrent duplicate gets 409), and
the response is stored when it completes. A request that dies half-way leaves the
claim in place, so a retry is refused rather than run twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import LargeBinary, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenure.core.outage import outage
from tenure.core.problems import problem_bytes
from tenure.core.time import UTCDateTime, utcnow
from tenure.db import Base, unit_of_work

log = logging.getLogger("tenure")
HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 200


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_record"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(default=None)
    headers: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[Any] = mapped_column(UTCDateTime(), default=utcnow, index=True)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, sessions: sessionmaker[Session], ttl_seconds: int) -> None:
        self.app = app
        self.sessions = sessions
        self.ttl = timedelta(seconds=ttl_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw_key = _header(scope, HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_problem(
                send,
                400,
                "bad-idempotency-key",
                "Invalid Idempotency-Key",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            )
            return

        body = await _read_body(receive)
        if body is None:
            await self.app(scope, _replay(b""), send)  # client went away; let the app see it
            return
        auth = _header(scope, b"authorization") or b""
        owner = hashlib.sha256(auth).hexdigest()
        fingerprint = hashlib.sha256(
            scope["method"].encode()
            + b" "
            + scope["path"].encode()
            + b"?"
            + scope.get("query_string", b"")
            + b"\n"
            + body
        ).hexdigest()

        try:
            claim = await run_in_threadpool(self._claim, owner, key, fingerprint)
        except Exception as exc:
            found = outage(exc)
            if found is None:
                raise
            # Locked, full or unreachable: nothing was claimed, so a retry runs afresh.
            log.warning("%s: Idempotency-Key not claimed: %s", found.title, exc)
            retry = [(b"retry-after", str(found.retry_after).encode())]
            await _send_problem(send, 503, found.code, found.title, found.detail, retry)
            return
        if claim is not None:
            await _send_stored_or_problem(send, claim, fingerprint)
            return

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": bytearray()}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, _replay(body), capture)
        finally:
            status = int(captured["status"])
            if status >= 500 or _no_store(captured["headers"]):
                # A server failure is not a result, and a response marked no-store carries a
                # secret (a new token or API key) that must not be kept: either way, free
                # the key so the client can retry.
                await run_in_threadpool(self._release, owner, key)
            else:
                await run_in_threadpool(
                    self._store, owner, key, status, captured["headers"], bytes(captured["body"])
                )

    def _claim(self, owner: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Claim the key; return the existing record when it was already claimed."""
        try:
            with unit_of_work(self.sessions) as session:
                session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.created_at < utcnow() - self.ttl
                    )
                )
                existing = session.get(IdempotencyRecord, (owner, key))
                if existing is not None:
                    session.expunge(existing)
                    return existing
                session.add(IdempotencyRecord(scope=owner, key=key, fingerprint=fingerprint))
            return None
        except IntegrityError:
            with unit_of_work(self.sessions, write=False) as session:
                existing = session.get(IdempotencyRecord, (owner, key))
                if existing is None:  # pragma: no cover - claimed and released in between
                    raise
                session.expunge(existing)
                return existing

    def _store(self, owner: str, key: str, status: int, headers: list[Any], body: bytes) -> None:
        with unit_of_work(self.sessions) as session:
            record = session.get(IdempotencyRecord, (owner, key))
            if record is not None:
                record.status = status
                record.headers = orjson.dumps(
                    [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers]
                )
                record.body = body

    def _release(self, owner: str, key: str) -> None:
        with unit_of_work(self.sessions) as session:
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.scope == owner, IdempotencyRecord.key == key
                )
            )


ERASED_BODY = problem_bytes(
    status=410,
    code="response-erased",
    title="Response erased",
    detail="The response to this request held personal data that has since been erased, "
    "so it is no longer kept. The request was carried out; it is not run again.",
)


def forget(*, session: Session, holds: Callable[[bytes], bool]) -> int:
    """Replace each kept response whose body ``holds`` erased personal data with a 410
    problem. The key stays claimed, so a retry still does not run the request twice.
    Returns how many were replaced."""
    found = session.execute(
        select(IdempotencyRecord.scope, IdempotencyRecord.key, IdempotencyRecord.body).where(
            IdempotencyRecord.body.is_not(None)
        )
    )
    doomed = [(scope, key) for scope, key, body in found if body and holds(bytes(body))]
    headers = orjson.dumps(
        [["content-type", "application/problem+json"], ["content-length", str(len(ERASED_BODY))]]
    )
    for scope, key in doomed:
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
            .values(status=410, headers=headers, body=ERASED_BODY)
        )
    return len(doomed)


def _no_store(headers: list[Any]) -> bool:
    return any(
        bytes(k).lower() == b"cache-control" and b"no-store" in bytes(v).lower() for k, v in headers
    )


async def _read_body(receive: Receive) -> bytes | None:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _send_stored_or_problem(send: Send, record: IdempotencyRecord, fingerprint: str) -> None:
    if record.fingerprint != fingerprint:
        await _send_problem(
            send,
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "This Idempotency-Key was already used for a different request.",
        )
        return
    if record.status is None:
        await _send_problem(
            send,
            409,
            "idempotency-in-progress",
            "Request in progress",
            "A request with this Idempotency-Key is still being processed "
            "(or was interrupted). Use a new key to try again.",
        )
        return
    headers = [
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in orjson.loads(record.headers or b"[]")
    ]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": record.status, "headers": headers})
    await send({"type": "http.response.body", "body": record.body or b""})


async def _send_problem(
    send: Send,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = problem_bytes(status=status, code=code, title=title, detail=detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
