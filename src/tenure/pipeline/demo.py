"""Demo opportunities, stage histories, interactions and tasks for demo customers:
the same seed and end give the same rows. Written in bulk, as the rest of the demo data
is, without an audit entry per row (no one did this work)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.customers.models import Customer
from tenure.db import begin_write
from tenure.interactions.models import Interaction, Task
from tenure.pipeline import service
from tenure.pipeline.models import Opportunity, PipelineStage, StageChange
from tenure.pipeline.schemas import StageKind

DEFAULT_OPPORTUNITIES = 300
TITLES = (
    "Annual renewal", "Fleet upgrade", "Pilot project", "Expansion to new site",
    "Support contract", "Training package", "Hardware refresh", "Consulting retainer",
    "Platform migration", "Second team onboarding", "Bulk order", "Service upgrade",
)  # fmt: skip
SUBJECTS = {
    "note": ("Budget confirmed", "Decision maker changed", "Prefers quarterly billing"),
    "call": ("Discovery call", "Pricing questions", "Follow-up call", "Check-in"),
    "meeting": ("On-site demo", "Quarterly review", "Contract negotiation"),
    "email": ("Sent proposal", "Sent revised quote", "Answered security questionnaire"),
}
TASKS = ("Send proposal", "Call back about pricing", "Prepare demo", "Chase signature")


def load(
    engine: Engine, *, seed: int, end: datetime, opportunities: int = DEFAULT_OPPORTUNITIES
) -> int:
    """Add about ``opportunities`` opportunities (with their stage history, a few
    interactions each and open tasks) to customers that have an owner; returns how many."""
    rng = random.Random(f"pipeline-{seed}")
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        begin_write(session)
        stages = service.seed_default_stages(session=session)
        customers = list(
            session.execute(
                select(Customer.id, Customer.owner_id)
                .where(Customer.owner_id.is_not(None), Customer.deleted_at.is_(None))
                .order_by(Customer.id)
                .limit(opportunities * 20)
            )
        )
        if not customers or not stages:
            return 0
        chosen = rng.sample(customers, min(opportunities, len(customers)))
        return _write(session, rng, end, stages, chosen)


def _write(
    session: Session,
    rng: random.Random,
    end: datetime,
    stages: list[PipelineStage],
    chosen: list[Any],
) -> int:
    open_stages = [s for s in stages if s.kind == StageKind.OPEN]
    closed = [s for s in stages if s.kind != StageKind.OPEN]
    start_position = (session.scalar(select(func.max(Opportunity.position))) or 0) + 1
    rows, paths = [], []
    for n, (customer_id, owner_id) in enumerate(chosen):
        created = end - timedelta(days=rng.randint(5, 180), minutes=rng.randint(0, 1440))
        depth = rng.randint(0, len(open_stages) - 1)
        path = open_stages[: depth + 1]
        if rng.random() < 0.3 and closed:
            path = [*path, rng.choice(closed)]
        moments = sorted(
            created + timedelta(seconds=rng.randint(0, int((end - created).total_seconds())))
            for _ in path[1:]
        )
        times = [created, *moments]
        last = path[-1]
        amount = Decimal(rng.choice((5, 8, 12, 20, 35, 60, 90, 150))) * 100
        rows.append(
            {
                "customer_id": customer_id,
                "title": rng.choice(TITLES),
                "amount": amount,
                "currency": "EUR",
                "stage_id": last.id,
                "status": last.kind,
                "position": (start_position + n) * service.GAP,
                "expected_close_on": (end + timedelta(days=rng.randint(-30, 150))).date(),
                "owner_id": owner_id,
                "notes": None,
                "stage_entered_at": times[-1],
                "closed_at": times[-1] if last.kind != StageKind.OPEN else None,
                "order_id": None,
                "created_at": created,
                "updated_at": times[-1],
                "version": 1,
                "deleted_at": None,
            }
        )
        paths.append((path, times, owner_id, customer_id))
    ids = session.scalars(
        insert(Opportunity).returning(Opportunity.id, sort_by_parameter_order=True), rows
    ).all()
    changes, interactions, tasks = [], [], []
    for opportunity_id, (path, times, owner_id, customer_id) in zip(ids, paths, strict=True):
        previous = None
        for stage, at in zip(path, times, strict=True):
            changes.append(
                {
                    "opportunity_id": opportunity_id,
                    "from_stage_id": previous,
                    "to_stage_id": stage.id,
                    "actor_id": owner_id,
                    "at": at,
                }
            )
            previous = stage.id
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(tuple(SUBJECTS))
            at = times[0] + timedelta(seconds=rng.randint(0, int((end - times[0]).total_seconds())))
            interactions.append(
                {
                    "customer_id": customer_id,
                    "kind": kind,
                    "subject": rng.choice(SUBJECTS[kind]),
                    "body": None,
                    "occurred_at": at,
                    "duration_minutes": rng.choice((15, 30, 45, 60))
                    if kind in ("call", "meeting")
                    else None,
                    "author_id": owner_id,
                    "ticket_id": None,
                    "opportunity_id": opportunity_id,
                    "created_at": at,
                    "updated_at": at,
                    "version": 1,
                    "deleted_at": None,
                }
            )
        if path[-1].kind == StageKind.OPEN and rng.random() < 0.4:
            tasks.append(
                {
                    "title": rng.choice(TASKS),
                    "notes": None,
                    "due_at": end + timedelta(days=rng.randint(-5, 20)),
                    "assignee_id": owner_id,
                    "customer_id": customer_id,
                    "opportunity_id": opportunity_id,
                    "status": "open",
                    "completed_at": None,
                    "created_at": times[-1],
                    "updated_at": times[-1],
                    "version": 1,
                    "deleted_at": None,
                }
            )
    session.execute(insert(StageChange), changes)
    session.execute(insert(Interaction), interactions)
    if tasks:
        session.execute(insert(Task), tasks)
    return len(ids)
