"""Demo data for the pipeline: a few hundred opportunities with consistent histories,
interactions and tasks, the same for the same seed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, select

from tenure.config import Settings
from tenure.interactions.models import Interaction, Task
from tenure.ops import demo
from tenure.pipeline import demo as pipeline_demo
from tenure.pipeline.models import Opportunity, PipelineStage, StageChange
from tenure.security import fields

END = datetime(2026, 6, 1, tzinfo=UTC)


def _rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    Opportunity.customer_id,
                    Opportunity.title,
                    Opportunity.amount,
                    Opportunity.stage_id,
                    Opportunity.expected_close_on,
                ).order_by(Opportunity.id)
            )
        ]


def test_demo_opportunities_have_histories_ending_in_their_stage(
    engine: Engine, base_settings: Settings
) -> None:
    demo.load(
        engine,
        customers=400,
        seed=11,
        end=END,
        products=20,
        sealer=fields.sealer_for(base_settings),
    )

    with engine.connect() as conn:
        opportunities = conn.execute(
            select(Opportunity.id, Opportunity.stage_id, Opportunity.status)
        ).all()
        last = {}
        for opportunity_id, to_stage in conn.execute(
            select(StageChange.opportunity_id, StageChange.to_stage_id).order_by(
                StageChange.at, StageChange.id
            )
        ):
            last[opportunity_id] = to_stage
        kinds = dict(conn.execute(select(PipelineStage.id, PipelineStage.kind)).all())
        interactions = conn.execute(select(Interaction.id)).all()
    assert len(opportunities) == 300
    assert all(last[o.id] == o.stage_id for o in opportunities)
    assert all(kinds[o.stage_id] == o.status for o in opportunities)
    assert {o.status for o in opportunities} == {"open", "won", "lost"}
    assert len(interactions) >= 300


def test_the_same_seed_gives_the_same_opportunities(
    engine: Engine, base_settings: Settings
) -> None:
    sealer = fields.sealer_for(base_settings)
    demo.load(engine, customers=50, seed=3, end=END, products=10, sealer=sealer)
    first = _rows(engine)
    with engine.begin() as conn:
        conn.execute(cast(Table, StageChange.__table__).delete())
        conn.execute(cast(Table, Interaction.__table__).delete())
        conn.execute(cast(Table, Task.__table__).delete())
        conn.execute(cast(Table, Opportunity.__table__).delete())

    pipeline_demo.load(engine, seed=3, end=END)

    assert _rows(engine) == first
    assert len(first) == 50
