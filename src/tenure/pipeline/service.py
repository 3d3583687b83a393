"""The sales pipeline: stages, opportunities, moves on the board, the weighted forecast,
and the order a won opportunity becomes.

An opportunity is in a caller's scope when its owner is (own, team or all, as customers);
its customer must be one the caller reaches when it is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from tenure.core.errors import Conflict, NotFound, PermissionDenied, field_error
from tenure.core.money import quantize
from tenure.core.pagination import AnySelect, Slice, Sort, SortField, keyset_page
from tenure.core.time import as_utc, utcnow
from tenure.core.timeline import N_, Amount, Message, Text, TimelineEntry
from tenure.customers import service as customers_service
from tenure.orders import service as orders_service
from tenure.orders.models import Order
from tenure.orders.schemas import OrderCreate
from tenure.pipeline.models import Opportunity, PipelineStage, StageChange
from tenure.pipeline.schemas import (
    OpportunityCreate,
    OpportunityOrder,
    OpportunityUpdate,
    StageCreate,
    StageKind,
    StageUpdate,
)
from tenure.security.models import User
from tenure.security.scope import RecordScope

SORT_FIELDS = (
    SortField("id", Opportunity.id, int),
    SortField("created_at", Opportunity.created_at, datetime),
    SortField("updated_at", Opportunity.updated_at, datetime),
)
DEFAULT_SORT = "-id"
# Cards are placed this far apart, so a card dropped between two rarely moves others.
GAP = 1024
DEFAULT_STAGES = (
    ("Qualification", 1, 10, StageKind.OPEN),
    ("Needs analysis", 2, 25, StageKind.OPEN),
    ("Proposal", 3, 50, StageKind.OPEN),
    ("Negotiation", 4, 75, StageKind.OPEN),
    ("Won", 5, 100, StageKind.WON),
    ("Lost", 6, 0, StageKind.LOST),
)


class OwnerNotAssignable(PermissionDenied):
    """Refused: the caller may not give an opportunity to that owner."""

    code = "owner-not-assignable"
    title = "You cannot assign opportunities to that owner"


class StageInUse(Conflict):
    code = "stage-in-use"
    title = "The stage holds opportunities"


class NotWon(Conflict):
    code = "opportunity-not-won"
    title = "Only a won opportunity becomes an order"


class AlreadyOrdered(Conflict):
    code = "opportunity-already-ordered"
    title = "The opportunity already became an order"


@dataclass(frozen=True)
class OpportunityFilter:
    stage_id: int | None = None
    owner_id: int | None = None
    customer_id: int | None = None
    status: str | None = None
    trashed: bool = False


# --- stages ---------------------------------------------------------------------------


def seed_default_stages(*, session: Session) -> list[PipelineStage]:
    """The default stages, when there are none yet (a new database has them already)."""
    if session.scalar(select(func.count(PipelineStage.id))):
        return list_stages(session=session)
    for name, position, probability, kind in DEFAULT_STAGES:
        session.add(
            PipelineStage(name=name, position=position, probability=probability, kind=kind.value)
        )
    session.flush()
    return list_stages(session=session)


def list_stages(*, session: Session) -> list[PipelineStage]:
    """Every stage in board order."""
    return list(
        session.scalars(select(PipelineStage).order_by(PipelineStage.position, PipelineStage.id))
    )


def get_stage(*, session: Session, stage_id: int) -> PipelineStage:
    """A stage by id; ``NotFound`` when there is none."""
    stage = session.get(PipelineStage, stage_id)
    if stage is None:
        raise NotFound(f"There is no stage {stage_id}.")
    return stage


def _stage_for(session: Session, stage_id: int) -> PipelineStage:
    stage = session.get(PipelineStage, stage_id)
    if stage is None:
        raise field_error("stage_id", f"There is no stage {stage_id}.")
    return stage


def _name_taken(session: Session, name: str, stage_id: int | None) -> None:
    found = session.scalar(
        select(PipelineStage.id).where(func.lower(PipelineStage.name) == name.lower())
    )
    if found is not None and found != stage_id:
        raise field_error("name", f"There is already a stage named {name!r}.")


def create_stage(*, session: Session, data: StageCreate) -> PipelineStage:
    """A new stage, placed last unless ``position`` says otherwise."""
    _name_taken(session, data.name, None)
    position = data.position
    if position is None:
        position = (session.scalar(select(func.max(PipelineStage.position))) or 0) + 1
    stage = PipelineStage(
        name=data.name, position=position, probability=data.probability, kind=data.kind.value
    )
    session.add(stage)
    session.flush()
    return stage


def _holds(session: Session, stage_id: int) -> int:
    return (
        session.scalar(select(func.count(Opportunity.id)).where(Opportunity.stage_id == stage_id))
        or 0
    )


def update_stage(*, session: Session, stage: PipelineStage, data: StageUpdate) -> PipelineStage:
    """Rename, reorder or reweigh a stage; its kind changes only while it is empty."""
    changes = data.model_dump(exclude_unset=True)
    for required in ("name", "position", "probability", "kind"):
        if required in changes and changes[required] is None:
            raise field_error(required, f"{required} cannot be null.")
    if data.name is not None:
        _name_taken(session, data.name, stage.id)
        stage.name = data.name
    if data.kind is not None and data.kind != stage.kind:
        if _holds(session, stage.id):
            raise StageInUse(
                "A stage's kind (open, won, lost) can change only while it holds no "
                "opportunities; move them first."
            )
        stage.kind = data.kind.value
    if data.position is not None:
        stage.position = data.position
    if data.probability is not None:
        stage.probability = data.probability
    stage.updated_at = utcnow()
    session.flush()
    return stage


def delete_stage(*, session: Session, stage: PipelineStage) -> None:
    """Remove a stage that holds no opportunities (trashed ones count) and no history."""
    used = _holds(session, stage.id) or session.scalar(
        select(func.count(StageChange.id)).where(
            (StageChange.to_stage_id == stage.id) | (StageChange.from_stage_id == stage.id)
        )
    )
    if used:
        raise StageInUse(
            f"The stage {stage.name!r} holds opportunities or their history; move them to "
            "another stage, or keep it."
        )
    session.delete(stage)
    session.flush()


# --- opportunities --------------------------------------------------------------------


def get(
    *, session: Session, opportunity_id: int, scope: RecordScope, include_trashed: bool = False
) -> Opportunity:
    """An opportunity by id; ``NotFound`` when missing, in the trash or its owner out of
    ``scope``."""
    found = session.get(Opportunity, opportunity_id)
    if (
        found is None
        or not scope.reaches(found.owner_id)
        or (found.deleted_at is not None and not include_trashed)
    ):
        raise NotFound(f"There is no opportunity {opportunity_id}.")
    return found


def _check_owner(session: Session, owner_id: int, scope: RecordScope) -> None:
    if not scope.may_assign(owner_id):
        msg = (
            "You can assign opportunities only to yourself."
            if scope.owners is not None and len(scope.owners) == 1
            else "You can assign opportunities only to members of your team."
        )
        raise OwnerNotAssignable(msg, errors=[{"loc": ["body", "owner_id"], "msg": msg}])
    if session.get(User, owner_id) is None:
        raise field_error("owner_id", f"There is no user {owner_id}.")


def _check_amount(amount: Decimal, currency: str) -> None:
    if quantize(amount, currency) != amount:
        raise field_error("amount", f"Too many decimals for {currency}.")


def _last_position(session: Session, stage_id: int) -> int:
    top = session.scalar(
        select(func.max(Opportunity.position)).where(Opportunity.stage_id == stage_id)
    )
    return GAP if top is None else top + GAP


def _first_open_stage(session: Session) -> PipelineStage:
    stage = session.scalar(
        select(PipelineStage)
        .where(PipelineStage.kind == StageKind.OPEN.value)
        .order_by(PipelineStage.position, PipelineStage.id)
        .limit(1)
    )
    if stage is None:
        raise field_error("stage_id", "There is no open stage; give a stage_id.")
    return stage


def _enter(
    session: Session,
    opportunity: Opportunity,
    stage: PipelineStage,
    *,
    from_stage_id: int | None,
    actor_id: int | None,
) -> None:
    now = utcnow()
    opportunity.stage_id = stage.id
    opportunity.status = stage.kind
    opportunity.stage_entered_at = now
    opportunity.closed_at = None if stage.kind == StageKind.OPEN else now
    session.add(
        StageChange(
            opportunity_id=opportunity.id,
            from_stage_id=from_stage_id,
            to_stage_id=stage.id,
            actor_id=actor_id,
            at=now,
        )
    )


def create(
    *, session: Session, data: OpportunityCreate, actor_id: int, scope: RecordScope
) -> Opportunity:
    """A new opportunity for a customer in ``scope``, owned by ``data.owner_id`` or else
    by the actor (someone the actor may assign records to)."""
    if not customers_service.exists_active(
        session=session, customer_id=data.customer_id, scope=scope
    ):
        raise field_error("customer_id", f"There is no customer {data.customer_id}.")
    owner_id = data.owner_id if data.owner_id is not None else actor_id
    _check_owner(session, owner_id, scope)
    stage = (
        _stage_for(session, data.stage_id)
        if data.stage_id is not None
        else _first_open_stage(session)
    )
    _check_amount(data.amount, data.currency)
    now = utcnow()
    opportunity = Opportunity(
        customer_id=data.customer_id,
        title=data.title,
        amount=data.amount,
        currency=data.currency,
        stage_id=stage.id,
        status=stage.kind,
        position=_last_position(session, stage.id),
        expected_close_on=data.expected_close_on,
        owner_id=owner_id,
        notes=data.notes,
        stage_entered_at=now,
        closed_at=None if stage.kind == StageKind.OPEN else now,
    )
    session.add(opportunity)
    session.flush()
    session.add(
        StageChange(
            opportunity_id=opportunity.id,
            from_stage_id=None,
            to_stage_id=stage.id,
            actor_id=actor_id,
            at=now,
        )
    )
    session.flush()
    return opportunity


def update(
    *,
    session: Session,
    opportunity: Opportunity,
    data: OpportunityUpdate,
    actor_id: int | None,
    scope: RecordScope,
) -> Opportunity:
    """Change the fields sent; a new stage moves the opportunity to the end of its column."""
    changes = data.model_dump(exclude_unset=True)
    for required in ("title", "amount", "currency", "stage_id", "owner_id"):
        if required in changes and changes[required] is None:
            raise field_error(required, f"{required} cannot be null.")
    if data.owner_id is not None and data.owner_id != opportunity.owner_id:
        _check_owner(session, data.owner_id, scope)
    stage = (
        _stage_for(session, data.stage_id)
        if data.stage_id is not None and data.stage_id != opportunity.stage_id
        else None
    )
    amount = data.amount if data.amount is not None else opportunity.amount
    currency = data.currency or opportunity.currency
    _check_amount(amount, currency)
    for name in ("title", "amount", "currency", "owner_id"):
        if changes.get(name) is not None:
            setattr(opportunity, name, getattr(data, name))
    for name in ("expected_close_on", "notes"):
        if name in changes:
            setattr(opportunity, name, getattr(data, name))
    if stage is not None:
        previous = opportunity.stage_id
        opportunity.position = _last_position(session, stage.id)
        _enter(session, opportunity, stage, from_stage_id=previous, actor_id=actor_id)
    opportunity.updated_at = utcnow()
    session.flush()
    return opportunity


def move(
    *,
    session: Session,
    opportunity: Opportunity,
    stage_id: int,
    position: int | None,
    actor_id: int | None,
) -> Opportunity:
    """Put an opportunity into a stage's column at ``position`` (0 is the top; None: the
    end). A change of stage is recorded in its history."""
    stage = _stage_for(session, stage_id)
    previous = opportunity.stage_id
    opportunity.position = _place(session, stage.id, opportunity.id, position)
    if stage.id != previous:
        _enter(session, opportunity, stage, from_stage_id=previous, actor_id=actor_id)
    opportunity.updated_at = utcnow()
    session.flush()
    return opportunity


def _column(session: Session, stage_id: int, moving_id: int) -> list[tuple[int, int]]:
    stmt = (
        select(Opportunity.id, Opportunity.position)
        .where(
            Opportunity.stage_id == stage_id,
            Opportunity.deleted_at.is_(None),
            Opportunity.id != moving_id,
        )
        .order_by(Opportunity.position, Opportunity.id)
    )
    return [(i, p) for i, p in session.execute(stmt)]


def _place(session: Session, stage_id: int, moving_id: int, index: int | None) -> int:
    """The position that puts a card at ``index`` among the others of the column; the
    column is spread out again (without counting as a change to those cards) when there
    is no room left between two of them."""
    others = _column(session, stage_id, moving_id)
    if index is None or index >= len(others):
        return (others[-1][1] + GAP) if others else GAP
    before = others[index - 1][1] if index > 0 else 0
    after = others[index][1]
    if after - before > 1:
        return (before + after) // 2
    for n, (other_id, _position) in enumerate(others):
        slot = (n + 1 if n < index else n + 2) * GAP
        session.execute(
            sql_update(Opportunity).where(Opportunity.id == other_id).values(position=slot),
            execution_options={"synchronize_session": False},
        )
    return (index + 1) * GAP


def trash(*, session: Session, opportunity: Opportunity) -> Opportunity:
    """Move an opportunity to the trash."""
    opportunity.deleted_at = utcnow()
    session.flush()
    return opportunity


def restore(*, session: Session, opportunity_id: int, scope: RecordScope) -> Opportunity:
    """Bring an opportunity back from the trash."""
    opportunity = get(
        session=session, opportunity_id=opportunity_id, scope=scope, include_trashed=True
    )
    if opportunity.deleted_at is not None:
        opportunity.deleted_at = None
        session.flush()
    return opportunity


def _scoped(stmt: AnySelect, scope: RecordScope) -> AnySelect:
    if scope.owners is None:
        return stmt
    return stmt.where(Opportunity.owner_id.in_(sorted(scope.owners)))


def _filtered(stmt: AnySelect, f: OpportunityFilter, scope: RecordScope) -> AnySelect:
    stmt = _scoped(stmt, scope).where(
        Opportunity.deleted_at.is_not(None) if f.trashed else Opportunity.deleted_at.is_(None)
    )
    if f.stage_id is not None:
        stmt = stmt.where(Opportunity.stage_id == f.stage_id)
    if f.owner_id is not None:
        stmt = stmt.where(Opportunity.owner_id == f.owner_id)
    if f.customer_id is not None:
        stmt = stmt.where(Opportunity.customer_id == f.customer_id)
    if f.status:
        stmt = stmt.where(Opportunity.status == f.status)
    return stmt


def list_opportunities(
    *,
    session: Session,
    filters: OpportunityFilter,
    scope: RecordScope,
    sort: Sort,
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[Opportunity]:
    """A page of the opportunities whose owner is in ``scope``."""
    return keyset_page(
        session,
        _filtered(select(Opportunity), filters, scope),
        sort=sort,
        id_column=Opportunity.id,
        cursor=cursor,
        limit=limit,
        count_cap=count_cap,
    )


def history(*, session: Session, opportunity_id: int) -> list[StageChange]:
    """An opportunity's moves, oldest first."""
    stmt = (
        select(StageChange)
        .where(StageChange.opportunity_id == opportunity_id)
        .order_by(StageChange.at, StageChange.id)
    )
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class StageStay:
    stage_id: int
    entered_at: datetime
    left_at: datetime | None  # None: it is still there
    actor_id: int | None

    def seconds(self, now: datetime) -> float:
        return ((self.left_at or now) - self.entered_at).total_seconds()


def stays(changes: Sequence[StageChange]) -> list[StageStay]:
    """Each stay in a stage, from the stage history: how long it spent in each."""
    result = []
    for n, change in enumerate(changes):
        left = changes[n + 1].at if n + 1 < len(changes) else None
        result.append(
            StageStay(change.to_stage_id, as_utc(change.at), left and as_utc(left), change.actor_id)
        )
    return result


# --- the board and the forecast -------------------------------------------------------


@dataclass
class Column:
    stage: PipelineStage
    cards: list[Opportunity] = field(default_factory=list)
    count: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)


def board(
    *, session: Session, scope: RecordScope, owner_id: int | None = None, per_stage: int = 100
) -> list[Column]:
    """Every stage with its opportunities in scope (the first ``per_stage`` by position),
    how many it holds and their amounts per currency."""
    columns = {s.id: Column(s) for s in list_stages(session=session)}
    f = OpportunityFilter(owner_id=owner_id)
    sums = _filtered(
        select(
            Opportunity.stage_id,
            Opportunity.currency,
            func.count(Opportunity.id),
            func.sum(Opportunity.amount),
        ),
        f,
        scope,
    ).group_by(Opportunity.stage_id, Opportunity.currency)
    for stage_id, currency, n, total in session.execute(sums):
        column = columns[stage_id]
        column.count += n
        column.totals[currency] = quantize(total, currency)
    for column in columns.values():
        if column.count:
            stmt = _filtered(
                select(Opportunity).where(Opportunity.stage_id == column.stage.id), f, scope
            )
            column.cards = list(
                session.scalars(
                    stmt.order_by(Opportunity.position, Opportunity.id).limit(per_stage)
                )
            )
    return list(columns.values())


@dataclass
class MonthFigure:
    month: str
    currency: str
    opportunities: int = 0
    amount: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)


@dataclass(frozen=True)
class ForecastResult:
    months: list[MonthFigure]
    undated: list[MonthFigure]


def forecast(
    *, session: Session, scope: RecordScope, owner_id: int | None = None
) -> ForecastResult:
    """Open opportunities in scope by expected close month and currency: their amount and
    the amount weighted by their stage's win probability."""
    stmt = _filtered(
        select(
            Opportunity.expected_close_on,
            Opportunity.currency,
            Opportunity.amount,
            PipelineStage.probability,
        ).join(PipelineStage, PipelineStage.id == Opportunity.stage_id),
        OpportunityFilter(owner_id=owner_id, status=StageKind.OPEN.value),
        scope,
    )
    figures: dict[tuple[str, str], MonthFigure] = {}
    for close_on, currency, amount, probability in session.execute(stmt):
        month = close_on.strftime("%Y-%m") if close_on else ""
        figure = figures.setdefault((month, currency), MonthFigure(month, currency))
        figure.opportunities += 1
        figure.amount += amount
        figure.weighted += amount * probability / 100
    for figure in figures.values():
        figure.amount = quantize(figure.amount, figure.currency)
        figure.weighted = quantize(figure.weighted, figure.currency)
    ordered = sorted(figures.values(), key=lambda f: (f.month, f.currency))
    return ForecastResult(
        months=[f for f in ordered if f.month], undated=[f for f in ordered if not f.month]
    )


# --- won opportunities become orders --------------------------------------------------


def create_order(
    *, session: Session, opportunity: Opportunity, data: OpportunityOrder, scope: RecordScope
) -> Order:
    """The order a won opportunity becomes, made by the orders service; the opportunity
    keeps its id. Refused unless won, and refused a second time."""
    if opportunity.status != StageKind.WON:
        raise NotWon(
            f"Opportunity {opportunity.id} is {opportunity.status}; move it to a won stage "
            "before making an order of it."
        )
    if opportunity.order_id is not None:
        raise AlreadyOrdered(
            f"Opportunity {opportunity.id} already became order {opportunity.order_id}."
        )
    order = orders_service.create(
        session=session,
        data=OrderCreate(
            customer_id=opportunity.customer_id,
            status=data.status,
            currency=opportunity.currency,
            notes=data.notes,
            lines=data.lines,
        ),
        scope=scope,
    )
    opportunity.order_id = order.id
    opportunity.updated_at = utcnow()
    session.flush()
    return order


# --- for other domains ----------------------------------------------------------------


def names(*, session: Session, opportunity_ids: set[int]) -> dict[int, str]:
    """Titles of opportunities by id (for links from other records)."""
    if not opportunity_ids:
        return {}
    stmt = select(Opportunity.id, Opportunity.title).where(
        Opportunity.id.in_(sorted(opportunity_ids))
    )
    return {i: t for i, t in session.execute(stmt)}


def of_customer(*, session: Session, customer_id: int) -> list[Opportunity]:
    """Every opportunity with a customer, the trash included, oldest first (a privacy
    export)."""
    stmt = select(Opportunity).where(Opportunity.customer_id == customer_id)
    return list(session.scalars(stmt.order_by(Opportunity.id)))


def exists_in_scope(*, session: Session, opportunity_id: int, scope: RecordScope) -> bool:
    """Whether an opportunity exists, is not in the trash and its owner is in ``scope``."""
    row = session.execute(
        select(Opportunity.owner_id).where(
            Opportunity.id == opportunity_id, Opportunity.deleted_at.is_(None)
        )
    ).first()
    return row is not None and scope.reaches(row[0])


def customer_of(*, session: Session, opportunity_id: int) -> int | None:
    """The customer of an opportunity (None when there is no such opportunity)."""
    return session.scalar(select(Opportunity.customer_id).where(Opportunity.id == opportunity_id))


def timeline_entries(
    *, session: Session, customer_id: int, limit: int, before: datetime | None = None
) -> list[TimelineEntry]:
    """A customer's opportunities on their timeline: each one opened, and each move
    (won and lost named as such), newest first."""
    stages = {s.id: s for s in list_stages(session=session)}
    stmt = (
        select(StageChange, Opportunity.title, Opportunity.amount, Opportunity.currency)
        .join(Opportunity, Opportunity.id == StageChange.opportunity_id)
        .where(Opportunity.customer_id == customer_id, Opportunity.deleted_at.is_(None))
        .order_by(StageChange.at.desc(), StageChange.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(StageChange.at < before)
    entries = []
    for change, title, amount, currency in session.execute(stmt):
        stage = stages.get(change.to_stage_id)
        stage_name = stage.name if stage else "?"
        money = Amount(amount, currency)
        detail: Text
        if change.from_stage_id is None:
            text = Message(N_("Opportunity opened: %(title)s"), {"title": title})
            detail = Message(N_("%(stage)s · %(amount)s"), {"stage": stage_name, "amount": money})
        elif stage is not None and stage.kind == StageKind.WON:
            text, detail = Message(N_("Opportunity won: %(title)s"), {"title": title}), money
        elif stage is not None and stage.kind == StageKind.LOST:
            text, detail = Message(N_("Opportunity lost: %(title)s"), {"title": title}), money
        else:
            previous = stages.get(change.from_stage_id)
            text = Message(N_("Opportunity moved: %(title)s"), {"title": title})
            detail = f"{previous.name if previous else '?'} → {stage_name}"
        entries.append(
            TimelineEntry(
                at=as_utc(change.at),
                kind="opportunity",
                title=text,
                detail=detail,
                url=f"/opportunities/{change.opportunity_id}",
            )
        )
    return entries


def open_count(*, session: Session, scope: RecordScope) -> int:
    """Open opportunities in scope."""
    stmt = _filtered(
        select(func.count(Opportunity.id)), OpportunityFilter(status=StageKind.OPEN.value), scope
    )
    return session.scalar(stmt) or 0
