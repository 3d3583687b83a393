"""Interactions and tasks over HTTP: /api/v1/interactions and /api/v1/tasks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response, status

from tenure.core.concurrency import check_if_match, tagged
from tenure.core.pagination import Page, parse_sort, to_page
from tenure.core.routing import APIRouter
from tenure.core.schemas import Id
from tenure.deps import IfMatch, ListParamsDep, ScopeDep, SessionDep, SettingsDep, require
from tenure.interactions import service
from tenure.interactions.schemas import (
    InteractionCreate,
    InteractionKind,
    InteractionRead,
    InteractionUpdate,
    TaskCreate,
    TaskRead,
    TaskStatus,
    TaskUpdate,
)
from tenure.security.permissions import (
    INTERACTIONS_READ,
    INTERACTIONS_WRITE,
    TASKS_READ,
    TASKS_WRITE,
)
from tenure.security.service import Principal

Reader = Annotated[Principal, Depends(require(INTERACTIONS_READ))]
Writer = Annotated[Principal, Depends(require(INTERACTIONS_WRITE))]
TaskReader = Annotated[Principal, Depends(require(TASKS_READ))]
TaskWriter = Annotated[Principal, Depends(require(TASKS_WRITE))]

router = APIRouter(prefix="/api/v1/interactions", tags=["interactions"])
tasks_router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.get("", response_model=Page[InteractionRead])
def list_interactions(
    session: SessionDep,
    settings: SettingsDep,
    params: ListParamsDep,
    scope: ScopeDep,
    _actor: Reader,
    customer_id: Id | None = None,
    kind: InteractionKind | None = None,
    opportunity_id: Id | None = None,
    ticket_id: Id | None = None,
    trashed: bool = False,
) -> Page[InteractionRead]:
    """Interactions with the customers you reach, newest first by default."""
    result = service.list_interactions(
        session=session,
        filters=service.InteractionFilter(
            customer_id=customer_id,
            kind=kind.value if kind else None,
            opportunity_id=opportunity_id,
            ticket_id=ticket_id,
            trashed=trashed,
        ),
        scope=scope,
        sort=parse_sort(
            params.sort, service.INTERACTION_SORT_FIELDS, service.INTERACTION_DEFAULT_SORT
        ),
        cursor=params.cursor,
        limit=params.limit,
        count_cap=settings.count_cap if params.count else None,
    )
    return to_page(result, InteractionRead.model_validate)


@router.post("", response_model=InteractionRead, status_code=status.HTTP_201_CREATED)
def log_interaction(
    body: InteractionCreate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    actor: Writer,
) -> InteractionRead:
    """Log a note, call, meeting or email with a customer you reach; you are its author."""
    interaction = service.log(session=session, data=body, author_id=actor.user_id, scope=scope)
    response.headers["Location"] = f"/api/v1/interactions/{interaction.id}"
    return tagged(InteractionRead, interaction, response)


@router.get("/{interaction_id}", response_model=InteractionRead)
def get_interaction(
    interaction_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: Reader
) -> InteractionRead:
    """One interaction."""
    found = service.get_interaction(session=session, interaction_id=interaction_id, scope=scope)
    return tagged(InteractionRead, found, response)


@router.patch("/{interaction_id}", response_model=InteractionRead)
def update_interaction(
    interaction_id: Id,
    body: InteractionUpdate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    _actor: Writer,
    if_match: IfMatch = None,
) -> InteractionRead:
    """Change the fields sent."""
    found = service.get_interaction(session=session, interaction_id=interaction_id, scope=scope)
    check_if_match(if_match, found.version)
    updated = service.update_interaction(session=session, interaction=found, data=body, scope=scope)
    return tagged(InteractionRead, updated, response)


@router.delete("/{interaction_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_interaction(
    interaction_id: Id,
    session: SessionDep,
    scope: ScopeDep,
    _actor: Writer,
    if_match: IfMatch = None,
) -> Response:
    """Move an interaction to the trash (restore with POST .../restore)."""
    found = service.get_interaction(session=session, interaction_id=interaction_id, scope=scope)
    check_if_match(if_match, found.version)
    service.trash_interaction(session=session, interaction=found)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{interaction_id}/restore", response_model=InteractionRead)
def restore_interaction(
    interaction_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: Writer
) -> InteractionRead:
    """Bring an interaction back from the trash."""
    restored = service.restore_interaction(
        session=session, interaction_id=interaction_id, scope=scope
    )
    return tagged(InteractionRead, restored, response)


# --- tasks ----------------------------------------------------------------------------


@tasks_router.get("", response_model=Page[TaskRead])
def list_tasks(
    session: SessionDep,
    settings: SettingsDep,
    params: ListParamsDep,
    scope: ScopeDep,
    _actor: TaskReader,
    assignee_id: Id | None = None,
    customer_id: Id | None = None,
    opportunity_id: Id | None = None,
    status: TaskStatus | None = None,
    trashed: bool = False,
) -> Page[TaskRead]:
    """Tasks of the users you reach (your own, your team's or all, by role)."""
    result = service.list_tasks(
        session=session,
        filters=service.TaskFilter(
            assignee_id=assignee_id,
            customer_id=customer_id,
            opportunity_id=opportunity_id,
            status=status.value if status else None,
            trashed=trashed,
        ),
        scope=scope,
        sort=parse_sort(params.sort, service.TASK_SORT_FIELDS, service.TASK_DEFAULT_SORT),
        cursor=params.cursor,
        limit=params.limit,
        count_cap=settings.count_cap if params.count else None,
    )
    return to_page(result, TaskRead.model_validate)


@tasks_router.post("", response_model=TaskRead, status_code=status.HTTP_201_CREATED)
def create_task(
    body: TaskCreate, response: Response, session: SessionDep, scope: ScopeDep, actor: TaskWriter
) -> TaskRead:
    """A new task, yours unless ``assignee_id`` says otherwise (a sales rep only
    themselves, a manager their team: 403 ``assignee-not-assignable``)."""
    task = service.create_task(session=session, data=body, actor_id=actor.user_id, scope=scope)
    response.headers["Location"] = f"/api/v1/tasks/{task.id}"
    return tagged(TaskRead, task, response)


@tasks_router.get("/{task_id}", response_model=TaskRead)
def get_task(
    task_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: TaskReader
) -> TaskRead:
    """One task."""
    return tagged(
        TaskRead, service.get_task(session=session, task_id=task_id, scope=scope), response
    )


@tasks_router.patch("/{task_id}", response_model=TaskRead)
def update_task(
    task_id: Id,
    body: TaskUpdate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    _actor: TaskWriter,
    if_match: IfMatch = None,
) -> TaskRead:
    """Change the fields sent."""
    task = service.get_task(session=session, task_id=task_id, scope=scope)
    check_if_match(if_match, task.version)
    return tagged(
        TaskRead, service.update_task(session=session, task=task, data=body, scope=scope), response
    )


@tasks_router.post("/{task_id}/complete", response_model=TaskRead)
def complete_task(
    task_id: Id,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    _actor: TaskWriter,
    if_match: IfMatch = None,
) -> TaskRead:
    """Mark a task done."""
    task = service.get_task(session=session, task_id=task_id, scope=scope)
    check_if_match(if_match, task.version)
    return tagged(TaskRead, service.complete_task(session=session, task=task), response)


@tasks_router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_task(
    task_id: Id, session: SessionDep, scope: ScopeDep, _actor: TaskWriter, if_match: IfMatch = None
) -> Response:
    """Move a task to the trash (restore with POST .../restore)."""
    task = service.get_task(session=session, task_id=task_id, scope=scope)
    check_if_match(if_match, task.version)
    service.trash_task(session=session, task=task)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@tasks_router.post("/{task_id}/restore", response_model=TaskRead)
def restore_task(
    task_id: Id, response: Response, session: SessionDep, scope: ScopeDep, _actor: TaskWriter
) -> TaskRead:
    """Bring a task back from the trash."""
    return tagged(
        TaskRead, service.restore_task(session=session, task_id=task_id, scope=scope), response
    )
