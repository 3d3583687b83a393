"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, and an API
client whose settings send marketing email through it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from tenure.app import create_app
from tenure.config import Settings
from tenure.customers import service as customers_service
from tenure.customers.schemas import CustomerCreate
from tenure.db import unit_of_work
from tenure.security.scope import EVERYTHING
from tests.conftest import Headers, MakeUser

PUBLIC_URL = "https://crm.example"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None
        return str(part.get_content())


@dataclass
class Sink:
    """What the mail server received; addresses in ``refuse`` are refused (550)."""

    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    arrived: threading.Event = field(default_factory=threading.Event)

    def wait(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The messages once ``count`` have arrived (for a server sending in the background)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            self.arrived.wait(max(deadline - time.monotonic(), 0))
            self.arrived.clear()
        return self.received

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[Sink]:
    sink = Sink("127.0.0.1", free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def mail_settings(settings: Settings, smtp: Sink) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "smtp_from": "news@shop.example",
            "smtp_rate": 1000.0,
            "public_url": PUBLIC_URL,
        }
    )


@pytest.fixture
def client(mail_settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(mail_settings, engine=engine)) as c:
        yield c


@pytest.fixture
def marketer(login: Callable[..., Headers]) -> Headers:
    return login("marketing")


MakeCustomer = Callable[..., int]


@pytest.fixture
def make_customer(sessions: sessionmaker[DbSession], make_user: MakeUser) -> MakeCustomer:
    owner = make_user("sales")

    def make(name: str = "Ada Lovelace", **values: Any) -> int:
        values.setdefault("owner_id", owner.id)
        with unit_of_work(sessions) as s:
            return customers_service.create(
                session=s,
                data=CustomerCreate(name=name, **values),
                actor=owner,
                scope=EVERYTHING,
            ).id

    return make
