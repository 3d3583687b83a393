"""Interactions (notes, calls, meetings, emails) with customers, and tasks.

An interaction is in a caller's scope when its customer is. A task is when its assignee
is (as an opportunity's owner): a sales rep gives tasks only to themselves, a manager to
their team.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenure.core.errors import NotFound, PermissionDenied, field_error
from tenure.core.pagination import AnySelect, Slice, Sort, SortField, keyset_page
from tenure.core.time import as_utc, utcnow
from tenure.core.timeline import N_, Message, Text, TimelineEntry
from tenure.customers import service as customers_service
from tenure.interactions.models import Interaction, Task
from tenure.interactions.schemas import (
    TIMED,
    InteractionCreate,
    InteractionKind,
    InteractionUpdate,
    TaskCreate,
    TaskStatus,
    TaskUpdate,
)
from tenure.pipeline import service as pipeline_service
from tenure.security.models import User
from tenure.security.scope import RecordScope
from tenure.service_desk import service as desk_service

INTERACTION_SORT_FIELDS = (
    SortField("id", Interaction.id, int),
    SortField("occurred_at", Interaction.occurred_at, datetime),
    SortField("created_at", Interaction.created_at, datetime),
)
INTERACTION_DEFAULT_SORT = "-occurred_at"
TASK_SORT_FIELDS = (
    SortField("id", Task.id, int),
    SortField("created_at", Task.created_at, datetime),
    SortField("updated_at", Task.updated_at, datetime),
)
TASK_DEFAULT_SORT = "-id"


class AssigneeNotAssignable(PermissionDenied):
    """Refused: the caller may not give a task to that user."""

    code = "assignee-not-assignable"
    title = "You cannot give tasks to that user"


@dataclass(frozen=True)
class InteractionFilter:
    customer_id: int | None = None
    kind: str | None = None
    opportunity_id: int | None = None
    ticket_id: int | None = None
    trashed: bool = False


@dataclass(frozen=True)
class TaskFilter:
    assignee_id: int | None = None
    customer_id: int | None = None
    opportunity_id: int | None = None
    status: str | None = None
    trashed: bool = False


def _check_customer(session: Session, customer_id: int, scope: RecordScope) -> None:
    if not customers_service.exists_active(session=session, customer_id=customer_id, scope=scope):
        raise field_error("customer_id", f"There is no customer {customer_id}.")


def _check_opportunity(
    session: Session, opportunity_id: int, scope: RecordScope, customer_id: int | None
) -> None:
    if not pipeline_service.exists_in_scope(
        session=session, opportunity_id=opportunity_id, scope=scope
    ):
        raise field_error("opportunity_id", f"There is no opportunity {opportunity_id}.")
    if customer_id is not None and customer_id != pipeline_service.customer_of(
        session=session, opportunity_id=opportunity_id
    ):
        raise field_error(
            "opportunity_id", f"Opportunity {opportunity_id} is not one of this customer's."
        )


def _check_ticket(session: Session, ticket_id: int, scope: RecordScope, customer_id: int) -> None:
    try:
        ticket = desk_service.get(session=session, ticket_id=ticket_id, scope=scope)
    except NotFound:
        raise field_error("ticket_id", f"There is no ticket {ticket_id}.") from None
    if ticket.customer_id != customer_id:
        raise field_error("ticket_id", f"Ticket {ticket_id} is not one of this customer's.")


def _check_duration(kind: str, minutes: int | None) -> None:
    if minutes is not None and kind not in TIMED:
        raise field_error("duration_minutes", "Only calls and meetings have a duration.")


# --- interactions ---------------------------------------------------------------------


def get_interaction(
    *, session: Session, interaction_id: int, scope: RecordScope, include_trashed: bool = False
) -> Interaction:
    """An interaction by id; ``NotFound`` when missing, in the trash or its customer out
    of ``scope``."""
    found = session.get(Interaction, interaction_id)
    if (
        found is None
        or (found.deleted_at is not None and not include_trashed)
        or not customers_service.reaches(
            session=session, customer_id=found.customer_id, scope=scope
        )
    ):
        raise NotFound(f"There is no interaction {interaction_id}.")
    return found


def log(
    *, session: Session, data: InteractionCreate, author_id: int | None, scope: RecordScope
) -> Interaction:
    """Log an interaction with a customer in ``scope`` (optionally about an opportunity
    of theirs, or a ticket)."""
    _check_customer(session, data.customer_id, scope)
    if data.opportunity_id is not None:
        _check_opportunity(session, data.opportunity_id, scope, data.customer_id)
    if data.ticket_id is not None:
        _check_ticket(session, data.ticket_id, scope, data.customer_id)
    _check_duration(data.kind, data.duration_minutes)
    interaction = Interaction(
        customer_id=data.customer_id,
        kind=data.kind.value,
        subject=data.subject,
        body=data.body,
        occurred_at=data.occurred_at or utcnow(),
        duration_minutes=data.duration_minutes,
        author_id=author_id,
        ticket_id=data.ticket_id,
        opportunity_id=data.opportunity_id,
    )
    session.add(interaction)
    session.flush()
    return interaction


def update_interaction(
    *, session: Session, interaction: Interaction, data: InteractionUpdate, scope: RecordScope
) -> Interaction:
    """Change the fields sent."""
    changes = data.model_dump(exclude_unset=True)
    for required in ("kind", "subject", "occurred_at"):
        if required in changes and changes[required] is None:
            raise field_error(required, f"{required} cannot be null.")
    if data.opportunity_id is not None and data.opportunity_id != interaction.opportunity_id:
        _check_opportunity(session, data.opportunity_id, scope, interaction.customer_id)
    if data.ticket_id is not None and data.ticket_id != interaction.ticket_id:
        _check_ticket(session, data.ticket_id, scope, interaction.customer_id)
    kind = data.kind or InteractionKind(interaction.kind)
    minutes = changes.get("duration_minutes", interaction.duration_minutes)
    if data.kind is not None and kind not in TIMED and "duration_minutes" not in changes:
        minutes = None
    _check_duration(kind, minutes)
    for name, value in changes.items():
        setattr(interaction, name, value.value if hasattr(value, "value") else value)
    interaction.duration_minutes = minutes
    interaction.updated_at = utcnow()
    session.flush()
    return interaction


def trash_interaction(*, session: Session, interaction: Interaction) -> Interaction:
    """Move an interaction to the trash."""
    interaction.deleted_at = utcnow()
    session.flush()
    return interaction


def restore_interaction(
    *, session: Session, interaction_id: int, scope: RecordScope
) -> Interaction:
    """Bring an interaction back from the trash."""
    interaction = get_interaction(
        session=session, interaction_id=interaction_id, scope=scope, include_trashed=True
    )
    if interaction.deleted_at is not None:
        interaction.deleted_at = None
        session.flush()
    return interaction


def _interactions_in(stmt: AnySelect, f: InteractionFilter, scope: RecordScope) -> AnySelect:
    customers = customers_service.in_scope(scope)
    if customers is not None:
        stmt = stmt.where(Interaction.customer_id.in_(customers))
    stmt = stmt.where(
        Interaction.deleted_at.is_not(None) if f.trashed else Interaction.deleted_at.is_(None)
    )
    if f.customer_id is not None:
        stmt = stmt.where(Interaction.customer_id == f.customer_id)
    if f.kind:
        stmt = stmt.where(Interaction.kind == f.kind)
    if f.opportunity_id is not None:
        stmt = stmt.where(Interaction.opportunity_id == f.opportunity_id)
    if f.ticket_id is not None:
        stmt = stmt.where(Interaction.ticket_id == f.ticket_id)
    return stmt


def list_interactions(
    *,
    session: Session,
    filters: InteractionFilter,
    scope: RecordScope,
    sort: Sort,
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[Interaction]:
    """A page of the interactions with customers in ``scope``."""
    return keyset_page(
        session,
        _interactions_in(select(Interaction), filters, scope),
        sort=sort,
        id_column=Interaction.id,
        cursor=cursor,
        limit=limit,
        count_cap=count_cap,
    )


# What each kind of interaction says on the customer's timeline.
INTERACTION_TITLES = {
    "note": N_("Note: %(subject)s"),
    "call": N_("Call: %(subject)s"),
    "meeting": N_("Meeting: %(subject)s"),
    "email": N_("Email: %(subject)s"),
}


def interaction_entries(
    *, session: Session, customer_id: int, limit: int, before: datetime | None = None
) -> list[TimelineEntry]:
    """A customer's interactions on their timeline, newest first."""
    stmt = (
        select(Interaction)
        .where(Interaction.customer_id == customer_id, Interaction.deleted_at.is_(None))
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(Interaction.occurred_at < before)
    entries = []
    for item in session.scalars(stmt):
        body = (item.body or "")[:200] or None
        detail: Text | None = body
        if item.duration_minutes:
            minutes = {"minutes": item.duration_minutes}
            detail = (
                Message(N_("%(minutes)s min · %(body)s"), {**minutes, "body": body})
                if body
                else Message(N_("%(minutes)s min"), minutes)
            )
        title = INTERACTION_TITLES.get(item.kind)
        entries.append(
            TimelineEntry(
                at=as_utc(item.occurred_at),
                kind="interaction",
                title=(
                    Message(title, {"subject": item.subject})
                    if title
                    else f"{item.kind.capitalize()}: {item.subject}"
                ),
                detail=detail,
                url=f"/interactions/{item.id}",
            )
        )
    return entries


ERASED_SUBJECT = "(erased)"


def of_customer(*, session: Session, customer_id: int) -> tuple[list[Interaction], list[Task]]:
    """A customer's interactions and the tasks about them, the trash included, oldest
    first (a privacy export)."""
    interactions = session.scalars(
        select(Interaction).where(Interaction.customer_id == customer_id).order_by(Interaction.id)
    )
    tasks = session.scalars(select(Task).where(Task.customer_id == customer_id).order_by(Task.id))
    return list(interactions), list(tasks)


def erase_for_customer(*, session: Session, customer_id: int) -> int:
    """Clear what was written about a customer (a privacy erasure): the subject and body
    of their interactions, the notes of tasks about them. Kinds, times and links stay.
    Returns how many interactions were cleared."""
    cleared = 0
    for item in session.scalars(select(Interaction).where(Interaction.customer_id == customer_id)):
        if item.subject != ERASED_SUBJECT or item.body is not None:
            item.subject, item.body = ERASED_SUBJECT, None
            cleared += 1
    for task in session.scalars(select(Task).where(Task.customer_id == customer_id)):
        task.notes = None
    session.flush()
    return cleared


# --- tasks ----------------------------------------------------------------------------


def get_task(
    *, session: Session, task_id: int, scope: RecordScope, include_trashed: bool = False
) -> Task:
    """A task by id; ``NotFound`` when missing, in the trash or its assignee out of
    ``scope``."""
    found = session.get(Task, task_id)
    if (
        found is None
        or not scope.reaches(found.assignee_id)
        or (found.deleted_at is not None and not include_trashed)
    ):
        raise NotFound(f"There is no task {task_id}.")
    return found


def _check_assignee(session: Session, assignee_id: int, scope: RecordScope) -> None:
    if not scope.may_assign(assignee_id):
        msg = (
            "You can give tasks only to yourself."
            if scope.owners is not None and len(scope.owners) == 1
            else "You can give tasks only to members of your team."
        )
        raise AssigneeNotAssignable(msg, errors=[{"loc": ["body", "assignee_id"], "msg": msg}])
    if session.get(User, assignee_id) is None:
        raise field_error("assignee_id", f"There is no user {assignee_id}.")


def create_task(*, session: Session, data: TaskCreate, actor_id: int, scope: RecordScope) -> Task:
    """A new open task for ``data.assignee_id`` or else the actor."""
    assignee_id = data.assignee_id if data.assignee_id is not None else actor_id
    _check_assignee(session, assignee_id, scope)
    if data.customer_id is not None:
        _check_customer(session, data.customer_id, scope)
    if data.opportunity_id is not None:
        _check_opportunity(session, data.opportunity_id, scope, data.customer_id)
    task = Task(
        title=data.title,
        notes=data.notes,
        due_at=data.due_at,
        assignee_id=assignee_id,
        customer_id=data.customer_id,
        opportunity_id=data.opportunity_id,
        status=TaskStatus.OPEN.value,
    )
    session.add(task)
    session.flush()
    return task


def update_task(*, session: Session, task: Task, data: TaskUpdate, scope: RecordScope) -> Task:
    """Change the fields sent; ``status`` done completes the task, open reopens it."""
    changes = data.model_dump(exclude_unset=True)
    for required in ("title", "assignee_id", "status"):
        if required in changes and changes[required] is None:
            raise field_error(required, f"{required} cannot be null.")
    if data.assignee_id is not None and data.assignee_id != task.assignee_id:
        _check_assignee(session, data.assignee_id, scope)
    if data.customer_id is not None and data.customer_id != task.customer_id:
        _check_customer(session, data.customer_id, scope)
    customer_id = changes.get("customer_id", task.customer_id)
    if data.opportunity_id is not None and data.opportunity_id != task.opportunity_id:
        _check_opportunity(session, data.opportunity_id, scope, customer_id)
    status = changes.pop("status", None)
    for name, value in changes.items():
        setattr(task, name, value)
    if status is not None:
        _set_status(task, TaskStatus(status))
    task.updated_at = utcnow()
    session.flush()
    return task


def _set_status(task: Task, status: TaskStatus) -> None:
    if status == task.status:
        return
    task.status = status.value
    task.completed_at = utcnow() if status == TaskStatus.DONE else None


def complete_task(*, session: Session, task: Task) -> Task:
    """Mark a task done (doing it again changes nothing)."""
    if task.status != TaskStatus.DONE:
        _set_status(task, TaskStatus.DONE)
        task.updated_at = utcnow()
        session.flush()
    return task


def trash_task(*, session: Session, task: Task) -> Task:
    """Move a task to the trash."""
    task.deleted_at = utcnow()
    session.flush()
    return task


def restore_task(*, session: Session, task_id: int, scope: RecordScope) -> Task:
    """Bring a task back from the trash."""
    task = get_task(session=session, task_id=task_id, scope=scope, include_trashed=True)
    if task.deleted_at is not None:
        task.deleted_at = None
        session.flush()
    return task


def _tasks_in(stmt: AnySelect, f: TaskFilter, scope: RecordScope) -> AnySelect:
    if scope.owners is not None:
        stmt = stmt.where(Task.assignee_id.in_(sorted(scope.owners)))
    stmt = stmt.where(Task.deleted_at.is_not(None) if f.trashed else Task.deleted_at.is_(None))
    if f.assignee_id is not None:
        stmt = stmt.where(Task.assignee_id == f.assignee_id)
    if f.customer_id is not None:
        stmt = stmt.where(Task.customer_id == f.customer_id)
    if f.opportunity_id is not None:
        stmt = stmt.where(Task.opportunity_id == f.opportunity_id)
    if f.status:
        stmt = stmt.where(Task.status == f.status)
    return stmt


def list_tasks(
    *,
    session: Session,
    filters: TaskFilter,
    scope: RecordScope,
    sort: Sort,
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[Task]:
    """A page of the tasks whose assignee is in ``scope``."""
    return keyset_page(
        session,
        _tasks_in(select(Task), filters, scope),
        sort=sort,
        id_column=Task.id,
        cursor=cursor,
        limit=limit,
        count_cap=count_cap,
    )


def my_tasks(*, session: Session, user_id: int, include_done: bool = False) -> list[Task]:
    """A user's tasks: open ones by due date (undated last), then done ones if asked."""
    stmt = select(Task).where(Task.assignee_id == user_id, Task.deleted_at.is_(None))
    if not include_done:
        stmt = stmt.where(Task.status == TaskStatus.OPEN.value)
    stmt = stmt.order_by(Task.status.desc(), Task.due_at.is_(None), Task.due_at, Task.id)
    return list(session.scalars(stmt.limit(500)))


def open_count(*, session: Session, user_id: int) -> tuple[int, int]:
    """How many open tasks a user has, and how many of them are overdue."""
    base = select(func.count(Task.id)).where(
        Task.assignee_id == user_id,
        Task.deleted_at.is_(None),
        Task.status == TaskStatus.OPEN.value,
    )
    total = session.scalar(base) or 0
    overdue = session.scalar(base.where(Task.due_at < utcnow())) or 0
    return total, overdue


def task_entries(
    *, session: Session, customer_id: int, limit: int, before: datetime | None = None
) -> list[TimelineEntry]:
    """A customer's tasks on their timeline: when each was set, and when it was done."""
    stmt = (
        select(Task)
        .where(Task.customer_id == customer_id, Task.deleted_at.is_(None))
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(limit)
    )
    if before is not None:
        # A task done before ``before`` may have been created long before: both count.
        stmt = stmt.where(Task.created_at < before)
    entries = []
    for task in session.scalars(stmt):
        due = (
            Message(N_("due %(date)s"), {"date": f"{as_utc(task.due_at):%Y-%m-%d}"})
            if task.due_at
            else None
        )
        entries.append(
            TimelineEntry(
                at=as_utc(task.created_at),
                kind="task",
                title=Message(N_("Task: %(title)s"), {"title": task.title}),
                detail=due,
                url="/tasks",
            )
        )
        if task.completed_at is not None and (before is None or task.completed_at < before):
            entries.append(
                TimelineEntry(
                    at=as_utc(task.completed_at),
                    kind="task",
                    title=Message(N_("Task done: %(title)s"), {"title": task.title}),
                    url="/tasks",
                )
            )
    return entries
