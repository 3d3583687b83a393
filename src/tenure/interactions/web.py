"""Interactions and tasks in the browser: logging an interaction from the customer page,
an interaction's page, and "My tasks" with the overdue ones marked."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from tenure.core.errors import InvalidInput, PermissionDenied
from tenure.core.routing import SessionRouter
from tenure.core.time import as_utc, utcnow
from tenure.customers import service as customers_service
from tenure.deps import SessionDep
from tenure.interactions import service
from tenure.interactions.schemas import InteractionCreate, InteractionKind, TaskCreate
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import (
    INTERACTIONS_READ,
    INTERACTIONS_WRITE,
    TASKS_READ,
    TASKS_WRITE,
)
from tenure.web.forms import FormDep, errors_of, form_dict, parse, path_id
from tenure.web.session import Csrf, PageScope, page_require
from tenure.web.templating import gettext_for, is_htmx, render

Reader = Annotated[User, page_require(INTERACTIONS_READ)]
Writer = Annotated[User, page_require(INTERACTIONS_WRITE)]
TaskReader = Annotated[User, page_require(TASKS_READ)]
TaskWriter = Annotated[User, page_require(TASKS_WRITE)]

router = SessionRouter(include_in_schema=False)
KINDS = [k.value for k in InteractionKind]


InteractionId = Annotated[int, Depends(path_id("interaction"))]
CustomerId = Annotated[int, Depends(path_id("customer"))]
TaskId = Annotated[int, Depends(path_id("task"))]


@router.post("/customers/{customer_id:int}/interactions", dependencies=[Csrf])
def log_interaction(
    request: Request,
    customer_id: CustomerId,
    session: SessionDep,
    user: Writer,
    scope: PageScope,
    form: FormDep,
) -> Response:
    """The customer page's "Log interaction" form."""
    _ = gettext_for(request)
    customers_service.get(session=session, customer_id=customer_id, scope=scope)
    values = form_dict(form)
    values["customer_id"] = customer_id
    minutes = values.get("duration_minutes")
    data, errors = parse(
        InteractionCreate,
        {**values, "duration_minutes": int(minutes) if minutes and minutes.isdigit() else minutes},
        _,
    )
    if data is not None:
        try:
            service.log(session=session, data=data, author_id=user.id, scope=scope)
        except InvalidInput as exc:
            errors = errors_of(exc, _)
        else:
            if is_htmx(request):
                context = {"customer_id": customer_id, "values": {}, "errors": {}, "saved": True}
                headers = {"HX-Trigger": "timeline-changed"}
                return render(request, "interactions/_form.html", context, headers=headers)
            return RedirectResponse(f"/customers/{customer_id}#timeline", status_code=303)
    context = {
        "customer_id": customer_id,
        "values": {k: v or "" for k, v in values.items()},
        "errors": errors,
        "kinds": KINDS,
    }
    template = "interactions/_form.html" if is_htmx(request) else "interactions/log.html"
    return render(request, template, context, status_code=422)


@router.get("/interactions/{interaction_id:int}")
def interaction_page(
    request: Request,
    interaction_id: InteractionId,
    session: SessionDep,
    _user: Reader,
    scope: PageScope,
) -> Response:
    interaction = service.get_interaction(
        session=session, interaction_id=interaction_id, scope=scope
    )
    author = (
        security_service.get_user(session=session, user_id=interaction.author_id)
        if interaction.author_id
        else None
    )
    names = customers_service.names(
        session=session, customer_ids={interaction.customer_id}, scope=scope
    )
    context = {
        "interaction": interaction,
        "author": author,
        "customer_name": names.get(interaction.customer_id),
    }
    return render(request, "interactions/detail.html", context)


# --- tasks ----------------------------------------------------------------------------


def _tasks_page(
    request: Request,
    session: SessionDep,
    user: User,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    now = utcnow()
    tasks = service.my_tasks(session=session, user_id=user.id, include_done=True)
    context = {
        "open_tasks": [t for t in tasks if t.status == "open"],
        "done_tasks": [t for t in tasks if t.status == "done"][:20],
        "overdue": {
            t.id for t in tasks if t.status == "open" and t.due_at and as_utc(t.due_at) < now
        },
        "values": values,
        "errors": errors,
    }
    return render(request, "interactions/tasks.html", context, status_code=status_code)


@router.get("/tasks")
def my_tasks(request: Request, session: SessionDep, user: TaskReader) -> Response:
    return _tasks_page(request, session, user, {}, {})


@router.get("/tasks/count")
def task_count(request: Request, session: SessionDep, user: TaskReader) -> Response:
    """The navigation's badge: open tasks, marked when some are overdue."""
    total, overdue = service.open_count(session=session, user_id=user.id)
    return render(request, "interactions/_count.html", {"total": total, "overdue": overdue})


@router.post("/tasks/new", dependencies=[Csrf])
def task_create(
    request: Request, session: SessionDep, user: TaskWriter, scope: PageScope, form: FormDep
) -> Response:
    _ = gettext_for(request)
    values = form_dict(form)
    data, errors = parse(TaskCreate, values, _)
    if data is not None:
        try:
            service.create_task(session=session, data=data, actor_id=user.id, scope=scope)
        except (InvalidInput, PermissionDenied) as exc:
            errors = errors_of(exc, _)
        else:
            return RedirectResponse("/tasks", status_code=303)
    shown = {k: v or "" for k, v in values.items()}
    return _tasks_page(request, session, user, shown, errors, status_code=422)


@router.post("/tasks/{task_id:int}/complete", dependencies=[Csrf])
def task_complete(
    task_id: TaskId, session: SessionDep, _user: TaskWriter, scope: PageScope
) -> Response:
    task = service.get_task(session=session, task_id=task_id, scope=scope)
    service.complete_task(session=session, task=task)
    return RedirectResponse("/tasks", status_code=303)
