"""The sales pipeline in the browser: the board (drag a card to move it), the list, the
opportunity page with its stage history, and the order a won opportunity becomes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from tenure.catalog import service as catalog_service
from tenure.core.errors import Conflict, InvalidInput, PermissionDenied
from tenure.core.pagination import MAX_LIMIT, parse_sort
from tenure.core.routing import SessionRouter
from tenure.core.time import utcnow
from tenure.customers import service as customers_service
from tenure.deps import SessionDep
from tenure.interactions import service as interactions_service
from tenure.pipeline import service
from tenure.pipeline.models import Opportunity
from tenure.pipeline.schemas import (
    OpportunityCreate,
    OpportunityOrder,
    OpportunityUpdate,
    StageCreate,
    StageKind,
    StageUpdate,
)
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import (
    INTERACTIONS_READ,
    OPPORTUNITIES_READ,
    OPPORTUNITIES_WRITE,
    ORDERS_WRITE,
    PIPELINE_ADMIN,
    has_permission,
)
from tenure.security.scope import RecordScope
from tenure.web.forms import FieldErrors, FormDep, errors_of, form_dict, form_id, parse, path_id
from tenure.web.session import Csrf, PageScope, page_require
from tenure.web.templating import gettext_for, render

Reader = Annotated[User, page_require(OPPORTUNITIES_READ)]
Writer = Annotated[User, page_require(OPPORTUNITIES_WRITE)]
OrderWriter = Annotated[User, page_require(ORDERS_WRITE)]
Admin = Annotated[User, page_require(PIPELINE_ADMIN)]
Gettext = Callable[[str], str]

router = SessionRouter(include_in_schema=False)
PAGE_SIZE = 50
ORDER_ROWS = 3  # product lines offered by the order form


OpportunityId = Annotated[int, Depends(path_id("opportunity"))]


def _owners(session: Session) -> dict[int, str]:
    return {u.id: u.name for u in security_service.list_users(session=session)}


def _customer_names(
    session: Session, opportunities: list[Opportunity], scope: RecordScope
) -> dict[int, str]:
    return customers_service.names(
        session=session, customer_ids={o.customer_id for o in opportunities}, scope=scope
    )


# --- the board ------------------------------------------------------------------------


def _board_context(session: Session, scope: RecordScope, owner_id: int | None) -> dict[str, Any]:
    columns = service.board(session=session, scope=scope, owner_id=owner_id)
    cards = [card for column in columns for card in column.cards]
    return {
        "columns": columns,
        "customer_names": _customer_names(session, cards, scope),
        "owners": _owners(session),
        "forecast": service.forecast(session=session, scope=scope, owner_id=owner_id),
        "owner_id": owner_id,
    }


@router.get("/pipeline")
def pipeline_board(
    request: Request,
    session: SessionDep,
    _user: Reader,
    scope: PageScope,
    owner_id: str | None = None,
) -> Response:
    context = _board_context(session, scope, form_id(owner_id))
    return render(request, "pipeline/board.html", context)


@router.post("/pipeline/move", dependencies=[Csrf])
def pipeline_move(
    request: Request, session: SessionDep, user: Writer, scope: PageScope, form: FormDep
) -> Response:
    """A card dropped on a column: move it, then answer with the board as it now is."""
    opportunity_id, stage_id = form_id(form.get("opportunity_id")), form_id(form.get("stage_id"))
    if opportunity_id is None or stage_id is None:
        raise InvalidInput("Drop a card on a stage's column.")
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    service.move(
        session=session,
        opportunity=opportunity,
        stage_id=stage_id,
        position=form_id(form.get("position")),
        actor_id=user.id,
    )
    context = _board_context(session, scope, form_id(form.get("owner_id")))
    return render(request, "pipeline/_board.html", context)


# --- the list -------------------------------------------------------------------------


@router.get("/opportunities")
def opportunity_list(
    request: Request,
    session: SessionDep,
    _user: Reader,
    scope: PageScope,
    status: str | None = None,
    stage_id: str | None = None,
    customer_id: str | None = None,
    cursor: str | None = None,
) -> Response:
    status = status if status in {k.value for k in StageKind} else None
    filters = service.OpportunityFilter(
        status=status, stage_id=form_id(stage_id), customer_id=form_id(customer_id)
    )
    page = service.list_opportunities(
        session=session,
        filters=filters,
        scope=scope,
        sort=parse_sort(None, service.SORT_FIELDS, service.DEFAULT_SORT),
        cursor=cursor or None,
        limit=PAGE_SIZE,
    )
    kept = {
        "status": status or "",
        "stage_id": filters.stage_id or "",
        "customer_id": filters.customer_id or "",
    }
    kept = {k: v for k, v in kept.items() if v}
    next_url = (
        "/opportunities?" + urlencode({**kept, "cursor": page.next_cursor})
        if page.next_cursor
        else None
    )
    context = {
        "opportunities": page.items,
        "next_url": next_url,
        "stages": {s.id: s for s in service.list_stages(session=session)},
        "customer_names": _customer_names(session, page.items, scope),
        "owners": _owners(session),
        "status": status or "",
        "stage_id": filters.stage_id,
        "customer_id": filters.customer_id,
        "stage_options": [(s.id, s.name) for s in service.list_stages(session=session)],
    }
    return render(request, "pipeline/list.html", context)


# --- new opportunity ------------------------------------------------------------------

FORM_FIELDS = ("customer_id", "title", "amount", "currency", "stage_id", "expected_close_on")


def _form_page(
    request: Request,
    session: SessionDep,
    user: User,
    scope: RecordScope,
    values: dict[str, Any],
    errors: FieldErrors,
    status_code: int = 200,
) -> Response:
    customer_id = form_id(values.get("customer_id"))
    names = (
        customers_service.names(session=session, customer_ids={customer_id}, scope=scope)
        if customer_id
        else {}
    )
    context = {
        "values": values,
        "errors": errors,
        "opportunity_id": None,
        "customer_name": names.get(customer_id) if customer_id else None,
        "stage_options": [(s.id, s.name) for s in service.list_stages(session=session)],
        "owners": [(uid, name) for uid, name in _owners(session).items() if scope.may_assign(uid)],
    }
    return render(request, "pipeline/form.html", context, status_code=status_code)


@router.get("/opportunities/new")
def opportunity_new(
    request: Request,
    session: SessionDep,
    user: Writer,
    scope: PageScope,
    customer_id: str | None = None,
) -> Response:
    values = {"customer_id": customer_id or "", "currency": "EUR", "owner_id": str(user.id)}
    return _form_page(request, session, user, scope, values, {})


@router.post("/opportunities/new", dependencies=[Csrf])
def opportunity_create(
    request: Request, session: SessionDep, user: Writer, scope: PageScope, form: FormDep
) -> Response:
    _ = gettext_for(request)
    values = form_dict(form)
    data, errors = parse(OpportunityCreate, values, _)
    if data is not None:
        try:
            opportunity = service.create(session=session, data=data, actor_id=user.id, scope=scope)
        except (InvalidInput, PermissionDenied) as exc:
            errors = errors_of(exc, _)
        else:
            return RedirectResponse(f"/opportunities/{opportunity.id}", status_code=303)
    shown = {k: v if v is not None else "" for k, v in values.items()}
    return _form_page(request, session, user, scope, shown, errors, status_code=422)


# --- edit and delete ------------------------------------------------------------------


def _edit_page(
    request: Request,
    session: Session,
    opportunity: Opportunity,
    scope: RecordScope,
    values: dict[str, Any],
    errors: FieldErrors,
    *,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "values": values,
        "errors": errors,
        "opportunity_id": opportunity.id,
        "notice": notice,
        "customer_name": customers_service.names(
            session=session, customer_ids={opportunity.customer_id}, scope=scope
        ).get(opportunity.customer_id),
        "stage_options": [],
        "owners": [(uid, name) for uid, name in _owners(session).items() if scope.may_assign(uid)],
    }
    return render(request, "pipeline/form.html", context, status_code=status_code)


def _values_of(opportunity: Opportunity) -> dict[str, Any]:
    return {
        "customer_id": str(opportunity.customer_id),
        "title": opportunity.title,
        "amount": str(opportunity.amount.normalize()),
        "currency": opportunity.currency,
        "expected_close_on": opportunity.expected_close_on.isoformat()
        if opportunity.expected_close_on
        else "",
        "owner_id": str(opportunity.owner_id),
        "notes": opportunity.notes or "",
        "version": str(opportunity.version),
    }


@router.get("/opportunities/{opportunity_id}/edit")
def opportunity_edit(
    request: Request,
    opportunity_id: OpportunityId,
    session: SessionDep,
    _user: Writer,
    scope: PageScope,
) -> Response:
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    return _edit_page(request, session, opportunity, scope, _values_of(opportunity), {})


EDITABLE = ("title", "amount", "currency", "expected_close_on", "owner_id", "notes")


@router.post("/opportunities/{opportunity_id}/edit", dependencies=[Csrf])
def opportunity_update(
    request: Request,
    opportunity_id: OpportunityId,
    session: SessionDep,
    user: Writer,
    scope: PageScope,
    form: FormDep,
) -> Response:
    _ = gettext_for(request)
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    values = form_dict(form)
    shown = {k: v if v is not None else "" for k, v in values.items()}
    if values.get("version") not in (None, str(opportunity.version)):
        notice = _("Someone changed this opportunity a moment ago. Here it is as it is now.")
        return _edit_page(
            request,
            session,
            opportunity,
            scope,
            _values_of(opportunity),
            {},
            notice=notice,
            status_code=409,
        )
    changes = {k: values.get(k) for k in EDITABLE}
    for required in ("title", "amount", "currency", "owner_id"):
        if changes[required] is None:
            changes.pop(required)
    data, errors = parse(OpportunityUpdate, changes, _)
    if data is not None:
        try:
            service.update(
                session=session, opportunity=opportunity, data=data, actor_id=user.id, scope=scope
            )
        except (InvalidInput, PermissionDenied) as exc:
            errors = errors_of(exc, _)
        else:
            return RedirectResponse(f"/opportunities/{opportunity.id}", status_code=303)
    return _edit_page(request, session, opportunity, scope, shown, errors, status_code=422)


@router.post("/opportunities/{opportunity_id}/delete", dependencies=[Csrf])
def opportunity_delete(
    opportunity_id: OpportunityId, session: SessionDep, _user: Writer, scope: PageScope
) -> Response:
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    service.trash(session=session, opportunity=opportunity)
    return RedirectResponse("/pipeline", status_code=303)


# --- one opportunity ------------------------------------------------------------------


def _days(seconds: float, _: Gettext) -> str:
    days, rest = divmod(int(max(seconds, 0)), 86_400)
    hours, rest = divmod(rest, 3600)
    if days:
        return _("%(days)s d %(hours)s h") % {"days": days, "hours": hours}
    return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": rest // 60}


def _products(session: Session) -> list[tuple[int, str]]:
    """Products on sale, by name, for the order form."""
    products = catalog_service.list_products(
        session=session,
        filters=catalog_service.ProductFilter(active=True),
        sort=parse_sort("name", catalog_service.SORT_FIELDS, "name"),
        cursor=None,
        limit=MAX_LIMIT,
    ).items
    return [(p.id, f"{p.name} ({p.sku})") for p in products]


def _interactions(
    request: Request, session: Session, opportunity: Opportunity, scope: RecordScope
) -> list[Any]:
    """The interactions about this opportunity, newest first, for those who read them."""
    user: User | None = getattr(request.state, "user", None)
    if user is None or not has_permission(user.role, INTERACTIONS_READ):
        return []
    return interactions_service.list_interactions(
        session=session,
        filters=interactions_service.InteractionFilter(opportunity_id=opportunity.id),
        scope=scope,
        sort=parse_sort(
            None,
            interactions_service.INTERACTION_SORT_FIELDS,
            interactions_service.INTERACTION_DEFAULT_SORT,
        ),
        cursor=None,
        limit=20,
    ).items


def _detail(
    request: Request,
    session: Session,
    opportunity: Opportunity,
    scope: RecordScope,
    *,
    notice: str | None = None,
    errors: FieldErrors | None = None,
    status_code: int = 200,
) -> Response:
    _ = gettext_for(request)
    now = utcnow()
    stages = {s.id: s for s in service.list_stages(session=session)}
    stays = service.stays(service.history(session=session, opportunity_id=opportunity.id))
    owners = _owners(session)
    context = {
        "opportunity": opportunity,
        "stage": stages.get(opportunity.stage_id),
        "stage_options": [(s.id, s.name) for s in stages.values()],
        "stays": [
            {
                "stage": stages[s.stage_id].name if s.stage_id in stages else "?",
                "entered_at": s.entered_at,
                "time": _days(s.seconds(now), _),
                "current": s.left_at is None,
                "actor": owners.get(s.actor_id) if s.actor_id else None,
            }
            for s in reversed(stays)
        ],
        "customer_name": customers_service.names(
            session=session, customer_ids={opportunity.customer_id}, scope=scope
        ).get(opportunity.customer_id),
        "owner_name": owners.get(opportunity.owner_id),
        "products": _products(session)
        if opportunity.status == StageKind.WON and opportunity.order_id is None
        else [],
        "rows": range(ORDER_ROWS),
        "interactions": _interactions(request, session, opportunity, scope),
        "notice": notice,
        "errors": errors or {},
    }
    return render(request, "pipeline/detail.html", context, status_code=status_code)


@router.get("/opportunities/{opportunity_id}")
def opportunity_detail(
    request: Request,
    opportunity_id: OpportunityId,
    session: SessionDep,
    _user: Reader,
    scope: PageScope,
) -> Response:
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    return _detail(request, session, opportunity, scope)


@router.post("/opportunities/{opportunity_id}/move", dependencies=[Csrf])
def opportunity_move(
    request: Request,
    opportunity_id: OpportunityId,
    session: SessionDep,
    user: Writer,
    scope: PageScope,
    form: FormDep,
) -> Response:
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    stage_id = form_id(form.get("stage_id"))
    if stage_id is None:
        _ = gettext_for(request)
        notice = _("Choose a stage.")
        return _detail(request, session, opportunity, scope, notice=notice, status_code=422)
    service.move(
        session=session, opportunity=opportunity, stage_id=stage_id, position=None, actor_id=user.id
    )
    return RedirectResponse(f"/opportunities/{opportunity.id}", status_code=303)


@router.post("/opportunities/{opportunity_id}/order", dependencies=[Csrf])
def opportunity_order(
    request: Request,
    opportunity_id: OpportunityId,
    session: SessionDep,
    _user: Writer,
    _orders: OrderWriter,
    scope: PageScope,
    form: FormDep,
) -> Response:
    _ = gettext_for(request)
    opportunity = service.get(session=session, opportunity_id=opportunity_id, scope=scope)
    lines = [
        {"product_id": form_id(product_id), "quantity": form_id(quantity)}
        for product_id, quantity in zip(
            form.getlist("product_id"), form.getlist("quantity"), strict=False
        )
        if str(product_id).strip()
    ]
    data, _errors = parse(OpportunityOrder, {"lines": lines}, _)
    if data is None:
        notice = _("Choose at least one product and a quantity of 1 or more.")
        return _detail(request, session, opportunity, scope, notice=notice, status_code=422)
    try:
        order = service.create_order(
            session=session, opportunity=opportunity, data=data, scope=scope
        )
    except Conflict as exc:
        return _detail(request, session, opportunity, scope, notice=_(exc.detail), status_code=409)
    except InvalidInput as exc:
        return _detail(
            request,
            session,
            opportunity,
            scope,
            notice=_(exc.detail),
            errors=errors_of(exc, _),
            status_code=422,
        )
    return RedirectResponse(f"/orders/{order.id}", status_code=303)


# --- stages ---------------------------------------------------------------------------


def _number(value: object) -> object:
    """A number typed in a form as an int, anything else as typed (validation says why)."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() else text


def _stage_values(form: Any) -> dict[str, Any]:
    """A stage's fields as typed; a blank position means last (new) or unchanged."""
    values = {
        "name": str(form.get("name") or "").strip(),
        "probability": _number(form.get("probability")),
        "kind": str(form.get("kind") or "open"),
    }
    position = str(form.get("position") or "").strip()
    if position:
        values["position"] = _number(position)
    return values


def _stages_page(
    request: Request,
    session: Session,
    *,
    errors: dict[int | str, FieldErrors] | None = None,
    typed: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "stages": service.list_stages(session=session),
        "kinds": list(StageKind),
        "errors": errors or {},
        "typed": typed or {},
    }
    return render(request, "pipeline/stages.html", context, status_code=status_code)


StageId = Annotated[int, Depends(path_id("stage"))]


@router.get("/pipeline/stages")
def stages_page(request: Request, session: SessionDep, _user: Admin) -> Response:
    """The pipeline's stages in board order, each editable; a form to add one."""
    return _stages_page(request, session)


@router.post("/pipeline/stages/new", dependencies=[Csrf])
def stage_create(request: Request, session: SessionDep, _user: Admin, form: FormDep) -> Response:
    values = _stage_values(form)
    data, errors = parse(StageCreate, values, gettext_for(request))
    if data is not None:
        try:
            service.create_stage(session=session, data=data)
            return RedirectResponse("/pipeline/stages", status_code=303)
        except (Conflict, InvalidInput) as exc:
            errors = errors_of(exc, gettext_for(request))
    return _stages_page(request, session, errors={"new": errors}, typed=values, status_code=422)


@router.post("/pipeline/stages/{stage_id}", dependencies=[Csrf])
def stage_update(
    request: Request, stage_id: StageId, session: SessionDep, _user: Admin, form: FormDep
) -> Response:
    stage = service.get_stage(session=session, stage_id=stage_id)
    data, errors = parse(StageUpdate, _stage_values(form), gettext_for(request))
    if data is not None:
        try:
            service.update_stage(session=session, stage=stage, data=data)
            return RedirectResponse("/pipeline/stages", status_code=303)
        except (Conflict, InvalidInput) as exc:
            errors = errors_of(exc, gettext_for(request))
    return _stages_page(request, session, errors={stage_id: errors}, status_code=422)


@router.post("/pipeline/stages/{stage_id}/delete", dependencies=[Csrf])
def stage_delete(
    request: Request, stage_id: StageId, session: SessionDep, _user: Admin
) -> Response:
    stage = service.get_stage(session=session, stage_id=stage_id)
    try:
        service.delete_stage(session=session, stage=stage)
    except Conflict as exc:
        return _stages_page(
            request, session, errors={stage_id: errors_of(exc, gettext_for(request))},
            status_code=409,
        )  # fmt: skip
    return RedirectResponse("/pipeline/stages", status_code=303)
