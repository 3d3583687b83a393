"""Segments and campaigns in the browser: the segment builder with a live count and
preview, campaign list and form (with a rendered preview), detail with launch and send,
members and results with a chart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from tenure.analytics import charts as analytics_charts
from tenure.config import Settings
from tenure.core.errors import TenureError
from tenure.core.money import quantize
from tenure.core.pagination import parse_sort
from tenure.core.routing import SessionRouter
from tenure.core.time import as_utc
from tenure.deps import SessionDep, SettingsDep
from tenure.marketing import charts, email, segments, sending, service
from tenure.marketing.models import Campaign, Segment
from tenure.marketing.schemas import (
    TRANSITIONS,
    CampaignCreate,
    CampaignStatus,
    CampaignUpdate,
    Channel,
    SegmentCreate,
    SegmentUpdate,
)
from tenure.security.models import User
from tenure.security.permissions import (
    CAMPAIGNS_READ,
    CAMPAIGNS_SEND,
    CAMPAIGNS_WRITE,
    SEGMENTS_READ,
    SEGMENTS_WRITE,
)
from tenure.web.forms import FormDep, errors_of, form_dict, parse, path_id
from tenure.web.session import Csrf, PageScope, page_require
from tenure.web.templating import gettext_for, render, request_locale

SegmentReader = Annotated[User, page_require(SEGMENTS_READ)]
SegmentWriter = Annotated[User, page_require(SEGMENTS_WRITE)]
CampaignReader = Annotated[User, page_require(CAMPAIGNS_READ)]
CampaignWriter = Annotated[User, page_require(CAMPAIGNS_WRITE)]
CampaignSender = Annotated[User, page_require(CAMPAIGNS_SEND)]
Gettext = Callable[[str], str]

router = SessionRouter(include_in_schema=False)
PAGE_SIZE = 50
BUILDER_ROWS = 6


SegmentId = Annotated[int, Depends(path_id("segment"))]
CampaignId = Annotated[int, Depends(path_id("campaign"))]


# --- the segment builder: rows of field, operator and value ---------------------------


def _value(name: str, op: str, text: str) -> Any:
    """A typed value from the builder's text box, as the filter language wants it."""
    spec = segments.spec_of(name)
    text = text.strip()
    if op == "is_null":
        return text.lower() not in ("false", "no", "0")
    if op in ("in", "not_in", "between"):
        return [_scalar(spec, part.strip()) for part in text.split(",") if part.strip()]
    return _scalar(spec, text)


def _scalar(spec: segments.FieldSpec | None, text: str) -> Any:
    kind = spec.kind if spec else "text"
    if kind == "int" and text.lstrip("-").isdigit():
        return int(text)
    if kind == "number" or (kind == "json" and text):
        try:
            number = Decimal(text)
        except InvalidOperation:
            return text
        return int(number) if number == number.to_integral_value() else float(number)
    return text


def _definition(form: FormData) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The filter a builder form describes, and its rows as typed (for showing again)."""
    fields_, ops, values = ([str(v) for v in form.getlist(key)] for key in ("field", "op", "value"))
    rows: list[dict[str, str]] = []
    conditions: list[dict[str, Any]] = []
    for name, op, text in zip(fields_, ops, values, strict=False):
        rows.append({"field": name, "op": op, "value": text})
        if not name.strip():
            continue
        conditions.append({"field": name.strip(), "op": op, "value": _value(name, op, text)})
    match = "any" if form.get("match") == "any" else "all"
    return {match: conditions}, rows


def _rows_of(definition: dict[str, Any]) -> list[dict[str, str]]:
    items = definition.get("all") or definition.get("any") or []
    rows = []
    for item in items:
        if isinstance(item, dict) and "field" in item:
            value = item.get("value")
            text = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
            rows.append({"field": item["field"], "op": item.get("op", ""), "value": text})
    return rows


def _builder(
    request: Request,
    *,
    values: dict[str, Any],
    rows: list[dict[str, str]],
    match: str,
    errors: dict[str, str],
    status_code: int = 200,
    segment: Segment | None = None,
) -> Response:
    padded = rows + [{"field": "", "op": "eq", "value": ""}] * max(BUILDER_ROWS - len(rows), 1)
    context = {
        "values": values,
        "rows": padded,
        "match": match,
        "errors": errors,
        "fields": [*segments.FIELDS, "custom."],
        "ops": segments.OPS,
        "segment": segment,
    }
    return render(request, "marketing/segment_form.html", context, status_code=status_code)


@router.get("/segments")
def segment_list(
    request: Request, session: SessionDep, _user: SegmentReader, cursor: str | None = None
) -> Response:
    page = service.list_segments(
        session=session,
        trashed=False,
        sort=parse_sort(None, service.SEGMENT_SORTS, service.DEFAULT_SORT),
        cursor=cursor or None,
        limit=PAGE_SIZE,
    )
    next_url = f"/segments?cursor={page.next_cursor}" if page.next_cursor else None
    return render(
        request, "marketing/segments.html", {"segments": page.items, "next_url": next_url}
    )


@router.get("/segments/new")
def segment_new(request: Request, _user: SegmentWriter) -> Response:
    return _builder(request, values={}, rows=[], match="all", errors={})


@router.post("/segments/preview", dependencies=[Csrf])
def segment_preview(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    scope: PageScope,
    _user: SegmentReader,
    form: FormDep,
) -> Response:
    definition, _rows = _definition(form)
    try:
        found = service.preview(
            session=session, definition=definition, scope=scope, count_cap=settings.count_cap
        )
    except TenureError as exc:
        return render(request, "marketing/_preview.html", {"error": exc.detail, "preview": None})
    return render(request, "marketing/_preview.html", {"error": None, "preview": found})


@router.post("/segments/new", dependencies=[Csrf])
def segment_create(
    request: Request, session: SessionDep, scope: PageScope, _user: SegmentWriter, form: FormDep
) -> Response:
    _ = gettext_for(request)
    definition, rows = _definition(form)
    values = form_dict(form, skip=("field", "op", "value", "match"))
    data, errors = parse(
        SegmentCreate,
        {
            "name": values.get("name"),
            "description": values.get("description"),
            "definition": definition,
        },
        _,
    )
    if data is not None:
        try:
            segment = service.create_segment(session=session, data=data, scope=scope)
        except TenureError as exc:
            errors = {"definition": exc.detail}
        else:
            return RedirectResponse(f"/segments/{segment.id}", status_code=303)
    match = "any" if "any" in definition else "all"
    return _builder(request, values=values, rows=rows, match=match, errors=errors, status_code=422)


@router.get("/segments/{segment_id}")
def segment_detail(
    request: Request,
    segment_id: SegmentId,
    session: SessionDep,
    settings: SettingsDep,
    scope: PageScope,
    _user: SegmentReader,
) -> Response:
    segment = service.get_segment(session=session, segment_id=segment_id)
    try:
        found = service.preview(
            session=session,
            definition=segment.definition,
            scope=scope,
            count_cap=settings.count_cap,
        )
        error = None
    except TenureError as exc:
        found, error = None, exc.detail
    context = {
        "segment": segment,
        "rows": _rows_of(segment.definition),
        "match": "any" if "any" in segment.definition else "all",
        "preview": found,
        "error": error,
    }
    return render(request, "marketing/segment.html", context)


@router.get("/segments/{segment_id}/edit")
def segment_edit(
    request: Request, segment_id: SegmentId, session: SessionDep, _user: SegmentWriter
) -> Response:
    segment = service.get_segment(session=session, segment_id=segment_id)
    values = {"name": segment.name, "description": segment.description}
    match = "any" if "any" in segment.definition else "all"
    rows = _rows_of(segment.definition)
    return _builder(request, values=values, rows=rows, match=match, errors={}, segment=segment)


@router.post("/segments/{segment_id}/edit", dependencies=[Csrf])
def segment_update(
    request: Request,
    segment_id: SegmentId,
    session: SessionDep,
    scope: PageScope,
    _user: SegmentWriter,
    form: FormDep,
) -> Response:
    _ = gettext_for(request)
    segment = service.get_segment(session=session, segment_id=segment_id)
    definition, rows = _definition(form)
    values = form_dict(form, skip=("field", "op", "value", "match"))
    match = "any" if "any" in definition else "all"
    if values.get("version") != str(segment.version):
        errors = {
            "__all__": _("Someone changed this segment a moment ago. Here it is as it is now.")
        }
        values = {"name": segment.name, "description": segment.description}
        return _builder(
            request,
            values=values,
            rows=_rows_of(segment.definition),
            match="any" if "any" in segment.definition else "all",
            errors=errors,
            segment=segment,
            status_code=409,
        )
    data, errors = parse(
        SegmentUpdate,
        {
            "name": values.get("name"),
            "description": values.get("description"),
            "definition": definition,
        },
        _,
    )
    if data is not None:
        try:
            service.update_segment(session=session, segment=segment, data=data, scope=scope)
        except TenureError as exc:
            errors = {"definition": exc.detail}
        else:
            return RedirectResponse(f"/segments/{segment.id}", status_code=303)
    return _builder(
        request,
        values=values,
        rows=rows,
        match=match,
        errors=errors,
        segment=segment,
        status_code=422,
    )


@router.post("/segments/{segment_id}/delete", dependencies=[Csrf])
def segment_delete(segment_id: SegmentId, session: SessionDep, _user: SegmentWriter) -> Response:
    segment = service.get_segment(session=session, segment_id=segment_id)
    service.trash_segment(session=session, segment=segment)
    return RedirectResponse("/segments", status_code=303)


# --- campaigns ------------------------------------------------------------------------

_CAMPAIGN_FIELDS = (
    "name", "channel", "segment_id", "budget", "currency", "starts_at", "ends_at",
    "holdout_percent", "attribution_days", "subject_template", "body_template", "html_template",
)  # fmt: skip


def _segment_choices(session: SessionDep) -> list[tuple[int, str]]:
    page = service.list_segments(
        session=session,
        trashed=False,
        sort=parse_sort("name", service.SEGMENT_SORTS, "name"),
        cursor=None,
        limit=500,
    )
    return [(s.id, s.name) for s in page.items]


def _campaign_form(
    request: Request,
    session: SessionDep,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
    campaign: Campaign | None = None,
) -> Response:
    context = {
        "values": values,
        "errors": errors,
        "campaign": campaign,
        "draft": campaign is None or campaign.status == CampaignStatus.DRAFT,
        "segments": _segment_choices(session),
        "channels": [c.value for c in Channel],
        "template_variables": ", ".join(
            "{{ " + name + " }}"
            for name in ("name", "first_name", "company", "campaign", "unsubscribe_url")
        ),
        "link_example": "{{ link('https://…') }}",
    }
    return render(request, "marketing/campaign_form.html", context, status_code=status_code)


@router.get("/campaigns")
def campaign_list(
    request: Request,
    session: SessionDep,
    _user: CampaignReader,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    status = status if status in set(CampaignStatus) else None
    page = service.list_campaigns(
        session=session,
        status=status,
        trashed=False,
        sort=parse_sort(None, service.CAMPAIGN_SORTS, service.DEFAULT_SORT),
        cursor=cursor or None,
        limit=PAGE_SIZE,
    )
    next_url = f"/campaigns?cursor={page.next_cursor}" if page.next_cursor else None
    context = {
        "campaigns": page.items,
        "next_url": next_url,
        "status": status or "",
        "statuses": [s.value for s in CampaignStatus],
    }
    return render(request, "marketing/campaigns.html", context)


@router.get("/campaigns/new")
def campaign_new(
    request: Request, session: SessionDep, _user: CampaignWriter, segment_id: int | None = None
) -> Response:
    values = {
        "channel": "email",
        "currency": "EUR",
        "budget": "0.00",
        "holdout_percent": "10",
        "attribution_days": "30",
        "segment_id": segment_id,
    }
    return _campaign_form(request, session, values=values, errors={})


@router.post("/campaigns/preview", dependencies=[Csrf])
def campaign_preview(request: Request, _user: CampaignWriter, form: FormDep) -> Response:
    """The templates rendered for a sample member (nothing is saved)."""
    values = form_dict(form)
    templates = {k: values.get(k) for k in email.TEMPLATE_FIELDS}
    try:
        email.check(templates, channel="", campaign_name=str(values.get("name") or ""))
        rendered = email.render(
            templates,
            email.SAMPLE,
            campaign_name=str(values.get("name") or ""),
            pixel_url="",
        )
    except TenureError as exc:
        return render(request, "marketing/_template_preview.html", {"error": exc.detail})
    context = {"error": None, "rendered": rendered, "sample": email.SAMPLE}
    return render(request, "marketing/_template_preview.html", context)


@router.post("/campaigns/new", dependencies=[Csrf])
def campaign_create(
    request: Request, session: SessionDep, _user: CampaignWriter, form: FormDep
) -> Response:
    _ = gettext_for(request)
    values = form_dict(form)
    body = {k: values.get(k) for k in _CAMPAIGN_FIELDS if values.get(k) is not None}
    data, errors = parse(CampaignCreate, body, _)
    if data is not None:
        try:
            campaign = service.create_campaign(session=session, data=data)
        except TenureError as exc:
            errors = errors_of(exc, _)
        else:
            return RedirectResponse(f"/campaigns/{campaign.id}", status_code=303)
    return _campaign_form(request, session, values=values, errors=errors, status_code=422)


def _local(value: datetime | None) -> str | None:
    """A time as a datetime-local input shows it (UTC, to the minute)."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M") if value is not None else None


def _values_of(campaign: Campaign) -> dict[str, Any]:
    values: dict[str, Any] = {k: getattr(campaign, k) for k in _CAMPAIGN_FIELDS}
    values["budget"] = str(quantize(campaign.budget, campaign.currency))
    values["starts_at"], values["ends_at"] = _local(campaign.starts_at), _local(campaign.ends_at)
    return values


@router.get("/campaigns/{campaign_id}/edit")
def campaign_edit(
    request: Request, campaign_id: CampaignId, session: SessionDep, _user: CampaignWriter
) -> Response:
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    values = {**_values_of(campaign), "version": campaign.version}
    return _campaign_form(request, session, values=values, errors={}, campaign=campaign)


@router.post("/campaigns/{campaign_id}/edit", dependencies=[Csrf])
def campaign_update(
    request: Request,
    campaign_id: CampaignId,
    session: SessionDep,
    _user: CampaignWriter,
    form: FormDep,
) -> Response:
    _ = gettext_for(request)
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    values = form_dict(form)
    if values.get("version") != str(campaign.version):
        notice = _("Someone changed this campaign a moment ago. Here it is as it is now.")
        current = {**_values_of(campaign), "version": campaign.version}
        return _campaign_form(
            request,
            session,
            values=current,
            errors={"__all__": notice},
            campaign=campaign,
            status_code=409,
        )
    # A form sends every field; what only a draft may change is left out once launched.
    editable = [
        k
        for k in _CAMPAIGN_FIELDS
        if campaign.status == CampaignStatus.DRAFT or k not in service.DRAFT_ONLY
    ]
    data, errors = parse(CampaignUpdate, {k: values.get(k) for k in editable}, _)
    if data is not None:
        try:
            service.update_campaign(session=session, campaign=campaign, data=data)
        except TenureError as exc:
            errors = errors_of(exc, _)
        else:
            return RedirectResponse(f"/campaigns/{campaign.id}", status_code=303)
    return _campaign_form(
        request, session, values=values, errors=errors, campaign=campaign, status_code=422
    )


def _campaign_page(
    request: Request,
    session: SessionDep,
    settings: Settings,
    campaign_id: int,
    *,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    segment = service.get_segment(
        session=session, segment_id=campaign.segment_id, include_trashed=True
    )
    context = {
        "campaign": campaign,
        "segment": segment,
        "results": service.results(session=session, campaign=campaign),
        "next_statuses": sorted(TRANSITIONS[CampaignStatus(campaign.status)]),
        "mail_ready": sending.configured(settings),
        "notice": notice,
    }
    return render(request, "marketing/campaign.html", context, status_code=status_code)


@router.get("/campaigns/{campaign_id}")
def campaign_detail(
    request: Request,
    campaign_id: CampaignId,
    session: SessionDep,
    settings: SettingsDep,
    _user: CampaignReader,
) -> Response:
    return _campaign_page(request, session, settings, campaign_id)


@router.post("/campaigns/{campaign_id}/launch", dependencies=[Csrf])
def campaign_launch(
    request: Request,
    campaign_id: CampaignId,
    session: SessionDep,
    settings: SettingsDep,
    scope: PageScope,
    _user: CampaignWriter,
) -> Response:
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    try:
        service.launch(session=session, campaign=campaign, scope=scope)
    except TenureError as exc:
        return _campaign_page(
            request, session, settings, campaign_id, notice=exc.detail, status_code=exc.status
        )
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/campaigns/{campaign_id}/send", dependencies=[Csrf])
def campaign_send(
    request: Request,
    campaign_id: CampaignId,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    _user: CampaignSender,
) -> Response:
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    try:
        service.queue_send(
            session=session, campaign=campaign, smtp_configured=sending.configured(settings)
        )
    except TenureError as exc:
        return _campaign_page(
            request, session, settings, campaign_id, notice=exc.detail, status_code=exc.status
        )
    background.add_task(
        sending.deliver,
        sessions=request.app.state.sessions,
        settings=settings,
        campaign_id=campaign.id,
    )
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/campaigns/{campaign_id}/status", dependencies=[Csrf])
def campaign_status(
    request: Request,
    campaign_id: CampaignId,
    session: SessionDep,
    settings: SettingsDep,
    _user: CampaignWriter,
    form: FormDep,
) -> Response:
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    try:
        target = CampaignStatus(str(form.get("status") or ""))
        service.update_campaign(
            session=session, campaign=campaign, data=CampaignUpdate(status=target)
        )
    except ValueError:
        return _campaign_page(
            request, session, settings, campaign_id, notice="Unknown status.", status_code=422
        )
    except TenureError as exc:
        return _campaign_page(
            request, session, settings, campaign_id, notice=exc.detail, status_code=exc.status
        )
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.get("/campaigns/{campaign_id}/members")
def campaign_members(
    request: Request,
    campaign_id: CampaignId,
    session: SessionDep,
    scope: PageScope,
    _user: CampaignReader,
    cursor: str | None = None,
) -> Response:
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    page = service.campaign_members(
        session=session, campaign=campaign, scope=scope, cursor=cursor or None, limit=PAGE_SIZE
    )
    next_url = (
        f"/campaigns/{campaign_id}/members?cursor={page.next_cursor}" if page.next_cursor else None
    )
    context = {"campaign": campaign, "members": page.items, "next_url": next_url}
    return render(request, "marketing/members.html", context)


@router.get("/campaigns/{campaign_id}/results")
def campaign_results(
    request: Request, campaign_id: CampaignId, session: SessionDep, _user: CampaignReader
) -> Response:
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    context = {"campaign": campaign, "results": service.results(session=session, campaign=campaign)}
    return render(request, "marketing/results.html", context)


@router.get("/campaigns/{campaign_id}/results.svg")
def campaign_chart(
    request: Request, campaign_id: CampaignId, session: SessionDep, _user: CampaignReader
) -> Response:
    _ = gettext_for(request)
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    figures = service.results(session=session, campaign=campaign)
    words = _ if analytics_charts.can_write(request_locale(request)) else (lambda text: text)
    svg = charts.results_chart(figures, labels=charts.labels(words))
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})
