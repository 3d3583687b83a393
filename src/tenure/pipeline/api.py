"""The sales pipeline over HTTP: /api/v1/opportunities and /api/v1/pipeline-stages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response, status

from tenure.core.concurrency import check_if_match, tagged
from tenure.core.pagination import Page, parse_sort, to_page
from tenure.core.routing import APIRouter
from tenure.core.schemas import Id
from tenure.deps import IfMatch, ListParamsDep, ScopeDep, SessionDep, SettingsDep, require
from tenure.orders.schemas import OrderRead
from tenure.pipeline import service
from tenure.pipeline.schemas import (
    Forecast,
    ForecastMonth,
    OpportunityCreate,
    OpportunityMove,
    OpportunityOrder,
    OpportunityRead,
    OpportunityUpdate,
    StageChangeRead,
    StageCreate,
    StageKind,
    StageRead,
    StageUpdate,
)
from tenure.security.permissions import (
    OPPORTUNITIES_READ,
    OPPORTUNITIES_WRITE,
    ORDERS_WRITE,
    PIPELINE_ADMIN,
)
from tenure.security.service import Principal

Reader = Annotated[Principal, Depends(require(OPPORTUNITIES_READ))]
Writer = Annotated[Principal, Depends(require(OPPORTUNITIES_WRITE))]
Admin = Annotated[Principal, Depends(require(PIPELINE_ADMIN))]
OrderWriter = Annotated[Principal, Depends(require(ORDERS_WRITE))]

router = APIRouter(prefix="/api/v1/opportunities", tags=["opportunities"])
stages_router = APIRouter(prefix="/api/v1/pipeline-stages", tags=["opportunities"])


# --- stages ---------------------------------------------------------------------------


@stages_router.get("", response_model=list[StageRead])
def list_stages(session: SessionDep, _actor: Reader) -> list[StageRead]:
    """The pipeline's stages in board order."""
    return [StageRead.model_validate(s) for s in service.list_stages(session=session)]


@stages_router.post("", response_model=StageRead, status_code=status.HTTP_201_CREATED)
def create_stage(
    body: StageCreate, response: Response, session: SessionDep, _actor: Admin
) -> StageRead:
    """Add a stage (kind open, won or lost; win probability 0-100)."""
    stage = service.create_stage(session=session, data=body)
    response.headers["Location"] = f"/api/v1/pipeline-stages/{stage.id}"
    return tagged(StageRead, stage, response)


@stages_router.get("/{stage_id}", response_model=StageRead)
def get_stage(stage_id: Id, response: Response, session: SessionDep, _actor: Reader) -> StageRead:
    """One stage."""
    return tagged(StageRead, service.get_stage(session=session, stage_id=stage_id), response)


@stages_router.patch("/{stage_id}", response_model=StageRead)
def update_stage(
    stage_id: Id,
    body: StageUpdate,
    response: Response,
    session: SessionDep,
    _actor: Admin,
    if_match: IfMatch = None,
) -> StageRead:
    """Rename, reorder or reweigh a stage; its kind changes only while it is empty."""
    stage = service.get_stage(session=session, stage_id=stage_id)
    check_if_match(if_match, stage.version)
    return tagged(
        StageRead, service.update_stage(session=session, stage=stage, data=body), response
    )


@stages_router.delete("/{stage_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_stage(
    stage_id: Id, session: SessionDep, _actor: Admin, if_match: IfMatch = None
) -> Response:
    """Remove a stage that never held an opportunity (409 ``stage-in-use`` otherwise)."""
    stage = service.get_stage(session=session, stage_id=stage_id)
    check_if_match(if_match, stage.version)
    service.delete_stage(session=session, stage=stage)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- opportunities --------------------------------------------------------------------


@router.get("", response_model=Page[OpportunityRead])
def list_opportunities(
    session: SessionDep,
    settings: SettingsDep,
    params: ListParamsDep,
    scope: ScopeDep,
    _actor: Reader,
    stage_id: Id | None = None,
    owner_id: Id | None = None,
    customer_id: Id | None = None,
    status: StageKind | None = None,
    trashed: bool = False,
) -> Page[OpportunityRead]:
    """List and filter the opportunities you reach (your own, your team's or all, by
    role); ``status`` is open, won or lost."""
    result = service.list_opportunities(
        session=session,
        filters=service.OpportunityFilter(
            stage_id=stage_id,
            owner_id=owner_id,
            customer_id=customer_id,
            status=status.value if status else None,
            trashed=trashed,
        ),
        scope=scope,
        sort=parse_sort(params.sort, service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=params.cursor,
        limit=params.limit,
        count_cap=settings.count_cap if params.count else None,
    )
    return to_page(result, OpportunityRead.model_validate)


@router.get("/forecast", response_model=Forecast)
def forecast(
    session: SessionDep, scope: ScopeDep, _actor: Reader, owner_id: Id | None = None
) -> Forecast:
    """The weighted forecast: open opportunities you reach by expected close month and
    currency, their amount, and the amount times their stage's win probability."""
    result = service.forecast(session=session, scope=scope, owner_id=owner_id)
    return Forecast(
        months=[ForecastMonth.model_validate(m, from_attributes=True) for m in result.months],
        undated=[ForecastMonth.model_validate(m, from_attributes=True) for m in result.undated],
    )


@router.post("", response_model=OpportunityRead, status_code=status.HTTP_201_CREATED)
def create_opportunity(
    body: OpportunityCreate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    actor: Writer,
) -> OpportunityRead:
    """Open an opportunity with a customer you reach, owned by you unless ``owner_id``
    says otherwise (a sales rep only themselves, a manager their team: 403
    ``owner-not-assignable``)."""
    opportunity = service.create(session=session, data=body, actor_id=actor.user_id, scope=scope)
    response.headers["Location"] = f"/api/v1/opportunities/{opportunity.id}"
    return tagged(OpportunityRead, opportunity, response)


@router.get("/{opportunity_id}", response_model=OpportunityRead)
def get_opportunity(
    opportunity_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: Reader
) -> OpportunityRead:
    """One opportunity; ``ETag`` carries its version."""
    return tagged(
        OpportunityRead,
        service.get(session=session, opportunity_id=opportunity_id, scope=scope),
        response,
    )


@router.get("/{opportunity_id}/history", response_model=list[StageChangeRead])
def opportunity_history(
    opportunity_id: Id, session: SessionDep, scope: ScopeDep, _actor: Reader
) -> list[StageChangeRead]:
    """The stages the opportunity went through, oldest first."""
    service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    changes = service.history(session=session, opportunity_id=opportunity_id)
    return [StageChangeRead.model_validate(c) for c in changes]


@router.patch("/{opportunity_id}", response_model=OpportunityRead)
def update_opportunity(
    opportunity_id: Id,
    body: OpportunityUpdate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    actor: Writer,
    if_match: IfMatch = None,
) -> OpportunityRead:
    """Change the fields sent; a new ``stage_id`` is a move, kept in the stage history."""
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    check_if_match(if_match, opportunity.version)
    updated = service.update(
        session=session, opportunity=opportunity, data=body, actor_id=actor.user_id, scope=scope
    )
    return tagged(OpportunityRead, updated, response)


@router.post("/{opportunity_id}/move", response_model=OpportunityRead)
def move_opportunity(
    opportunity_id: Id,
    body: OpportunityMove,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    actor: Writer,
    if_match: IfMatch = None,
) -> OpportunityRead:
    """Move an opportunity on the board: into ``stage_id``, at ``position`` in its column."""
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    check_if_match(if_match, opportunity.version)
    moved = service.move(
        session=session,
        opportunity=opportunity,
        stage_id=body.stage_id,
        position=body.position,
        actor_id=actor.user_id,
    )
    return tagged(OpportunityRead, moved, response)


@router.post("/{opportunity_id}/order", response_model=OrderRead, status_code=201)
def order_opportunity(
    opportunity_id: Id,
    body: OpportunityOrder,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    _actor: Writer,
    _orders: OrderWriter,
) -> OrderRead:
    """Turn a won opportunity into an order with these lines (409
    ``opportunity-not-won`` unless won, ``opportunity-already-ordered`` the second time);
    the opportunity keeps the order's id."""
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    order = service.create_order(session=session, opportunity=opportunity, data=body, scope=scope)
    response.headers["Location"] = f"/api/v1/orders/{order.id}"
    return tagged(OrderRead, order, response)


@router.delete("/{opportunity_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_opportunity(
    opportunity_id: Id,
    session: SessionDep,
    scope: ScopeDep,
    _actor: Writer,
    if_match: IfMatch = None,
) -> Response:
    """Move an opportunity to the trash (restore with POST .../restore)."""
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    check_if_match(if_match, opportunity.version)
    service.trash(session=session, opportunity=opportunity)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{opportunity_id}/restore", response_model=OpportunityRead)
def restore_opportunity(
    opportunity_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: Writer
) -> OpportunityRead:
    """Bring an opportunity back from the trash."""
    return tagged(
        OpportunityRead,
        service.restore(session=session, opportunity_id=opportunity_id, scope=scope),
        response,
    )
