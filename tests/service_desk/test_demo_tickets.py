"""Demo tickets: a few hundred at most, about demo customers and their orders, the same
ones for the same seed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tenure.config import Settings
from tenure.db import make_engine
from tenure.ops import demo, migrate
from tenure.orders.models import Order
from tenure.security.fields import Sealer
from tenure.service_desk import priority
from tenure.service_desk.models import Ticket

END = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def fresh_sqlite(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(Settings(data_dir=tmp_path / "other"))
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def _tickets(engine: Engine) -> list[tuple[Any, ...]]:
    columns = [c for c in Ticket.__table__.c if c.name not in ("id", "version")]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).order_by(Ticket.id))]


def test_demo_data_holds_tickets_about_its_customers(engine: Engine, sealer: Sealer) -> None:
    stats = demo.load(engine, customers=150, seed=3, end=END, sealer=sealer)

    with engine.connect() as conn:
        tickets = list(conn.execute(select(Ticket)))
        order_customer = {o: c for o, c in conn.execute(select(Order.id, Order.customer_id))}
    assert stats.tickets == len(tickets) == 30
    for t in tickets:
        assert t.order_id is None or order_customer[t.order_id] == t.customer_id
        assert (
            t.computed_priority
            == priority.assess(urgency=t.urgency, impact=t.impact, complexity=t.complexity).priority
        )
        assert t.queue_rank.startswith(t.priority)
        assert t.resolved_at is None or t.status in ("resolved", "closed")
    assert {t.status for t in tickets} >= {"closed"}
    assert any(t.satisfaction_rating is not None for t in tickets)


def test_the_same_seed_gives_the_same_tickets(
    engine: Engine, fresh_sqlite: Engine, sealer: Sealer
) -> None:
    demo.load(engine, customers=100, seed=5, end=END, sealer=sealer)
    demo.load(fresh_sqlite, customers=100, seed=5, end=END, sealer=sealer)

    assert _tickets(engine) == _tickets(fresh_sqlite)
