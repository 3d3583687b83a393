"""Segments and campaigns over HTTP: /api/v1/segments and /api/v1/campaigns."""

from __future__ import annotations

from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request, Response, status

from tenure.core.concurrency import check_if_match, tagged
from tenure.core.pagination import Page, parse_sort, to_page
from tenure.core.routing import APIRouter
from tenure.core.schemas import Id
from tenure.deps import IfMatch, ListParamsDep, ScopeDep, SessionDep, SettingsDep, require
from tenure.marketing import sending, service
from tenure.marketing.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignResults,
    CampaignStatus,
    CampaignUpdate,
    MemberCustomer,
    MemberRead,
    ResponseIn,
    ResponseRead,
    SegmentCreate,
    SegmentPreview,
    SegmentPreviewIn,
    SegmentRead,
    SegmentUpdate,
    SendReport,
)
from tenure.security.permissions import (
    CAMPAIGNS_READ,
    CAMPAIGNS_SEND,
    CAMPAIGNS_WRITE,
    SEGMENTS_READ,
    SEGMENTS_WRITE,
)
from tenure.security.service import Principal

SegmentReader = Annotated[Principal, Depends(require(SEGMENTS_READ))]
SegmentWriter = Annotated[Principal, Depends(require(SEGMENTS_WRITE))]
CampaignReader = Annotated[Principal, Depends(require(CAMPAIGNS_READ))]
CampaignWriter = Annotated[Principal, Depends(require(CAMPAIGNS_WRITE))]
CampaignSender = Annotated[Principal, Depends(require(CAMPAIGNS_SEND))]

segments_router = APIRouter(prefix="/api/v1/segments", tags=["segments"])
campaigns_router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])


# --- segments -------------------------------------------------------------------------


@segments_router.get("", response_model=Page[SegmentRead])
def list_segments(
    session: SessionDep, params: ListParamsDep, _actor: SegmentReader, trashed: bool = False
) -> Page[SegmentRead]:
    """The saved segments (or the trash)."""
    result = service.list_segments(
        session=session,
        trashed=trashed,
        sort=parse_sort(params.sort, service.SEGMENT_SORTS, service.DEFAULT_SORT),
        cursor=params.cursor,
        limit=params.limit,
    )
    return to_page(result, SegmentRead.model_validate)


@segments_router.post("", response_model=SegmentRead, status_code=status.HTTP_201_CREATED)
def create_segment(
    body: SegmentCreate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    _actor: SegmentWriter,
) -> SegmentRead:
    """Save a segment; a filter naming an unknown field, a wrong operator or a bad value
    is refused (422 naming it) and nothing is saved."""
    segment = service.create_segment(session=session, data=body, scope=scope)
    response.headers["Location"] = f"/api/v1/segments/{segment.id}"
    return tagged(SegmentRead, segment, response)


@segments_router.post("/preview", response_model=SegmentPreview)
def preview_segment(
    body: SegmentPreviewIn,
    session: SessionDep,
    settings: SettingsDep,
    scope: ScopeDep,
    _actor: SegmentReader,
) -> SegmentPreview:
    """How many customers you reach a filter selects now (capped like ``count=true``)
    and the first 20 of them; nothing is saved."""
    return service.preview(
        session=session, definition=body.definition, scope=scope, count_cap=settings.count_cap
    )


@segments_router.get("/{segment_id}", response_model=SegmentRead)
def get_segment(
    segment_id: Id, response: Response, session: SessionDep, _actor: SegmentReader
) -> SegmentRead:
    """One segment."""
    return tagged(
        SegmentRead, service.get_segment(session=session, segment_id=segment_id), response
    )


@segments_router.get("/{segment_id}/members", response_model=Page[MemberCustomer])
def segment_members(
    segment_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    params: ListParamsDep,
    scope: ScopeDep,
    _actor: SegmentReader,
) -> Page[MemberCustomer]:
    """The customers you reach that the segment selects now, by id."""
    segment = service.get_segment(session=session, segment_id=segment_id)
    result = service.segment_members(
        session=session,
        segment=segment,
        scope=scope,
        sort=parse_sort(params.sort, service.MEMBER_SORTS, "id"),
        cursor=params.cursor,
        limit=params.limit,
        count_cap=settings.count_cap if params.count else None,
    )
    return to_page(result, MemberCustomer.model_validate)


@segments_router.patch("/{segment_id}", response_model=SegmentRead)
def update_segment(
    segment_id: Id,
    body: SegmentUpdate,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    _actor: SegmentWriter,
    if_match: IfMatch = None,
) -> SegmentRead:
    """Change a segment's name, description or filter."""
    segment = service.get_segment(session=session, segment_id=segment_id)
    check_if_match(if_match, segment.version)
    segment = service.update_segment(session=session, segment=segment, data=body, scope=scope)
    return tagged(SegmentRead, segment, response)


@segments_router.delete("/{segment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_segment(
    segment_id: Id, session: SessionDep, _actor: SegmentWriter, if_match: IfMatch = None
) -> Response:
    """Move a segment to the trash."""
    segment = service.get_segment(session=session, segment_id=segment_id)
    check_if_match(if_match, segment.version)
    service.trash_segment(session=session, segment=segment)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@segments_router.post("/{segment_id}/restore", response_model=SegmentRead)
def restore_segment(
    segment_id: Id, response: Response, session: SessionDep, _actor: SegmentWriter
) -> SegmentRead:
    """Bring a segment back from the trash."""
    return tagged(
        SegmentRead, service.restore_segment(session=session, segment_id=segment_id), response
    )


# --- campaigns ------------------------------------------------------------------------


@campaigns_router.get("", response_model=Page[CampaignRead])
def list_campaigns(
    session: SessionDep,
    params: ListParamsDep,
    _actor: CampaignReader,
    status: CampaignStatus | None = None,
    trashed: bool = False,
) -> Page[CampaignRead]:
    """The campaigns (or the trash), optionally of one status."""
    result = service.list_campaigns(
        session=session,
        status=status.value if status else None,
        trashed=trashed,
        sort=parse_sort(params.sort, service.CAMPAIGN_SORTS, service.DEFAULT_SORT),
        cursor=params.cursor,
        limit=params.limit,
    )
    return to_page(result, CampaignRead.model_validate)


@campaigns_router.post("", response_model=CampaignRead, status_code=status.HTTP_201_CREATED)
def create_campaign(
    body: CampaignCreate, response: Response, session: SessionDep, _actor: CampaignWriter
) -> CampaignRead:
    """Create a draft campaign for a segment; its templates must render (422 naming the
    template and line otherwise)."""
    campaign = service.create_campaign(session=session, data=body)
    response.headers["Location"] = f"/api/v1/campaigns/{campaign.id}"
    return tagged(CampaignRead, campaign, response)


@campaigns_router.get("/{campaign_id}", response_model=CampaignRead)
def get_campaign(
    campaign_id: Id, response: Response, session: SessionDep, _actor: CampaignReader
) -> CampaignRead:
    """One campaign."""
    return tagged(
        CampaignRead, service.get_campaign(session=session, campaign_id=campaign_id), response
    )


@campaigns_router.patch("/{campaign_id}", response_model=CampaignRead)
def update_campaign(
    campaign_id: Id,
    body: CampaignUpdate,
    response: Response,
    session: SessionDep,
    _actor: CampaignWriter,
    if_match: IfMatch = None,
) -> CampaignRead:
    """Change a campaign, or its status by the allowed transitions (cancel, complete)."""
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    check_if_match(if_match, campaign.version)
    return tagged(
        CampaignRead,
        service.update_campaign(session=session, campaign=campaign, data=body),
        response,
    )


@campaigns_router.delete("/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_campaign(
    campaign_id: Id, session: SessionDep, _actor: CampaignWriter, if_match: IfMatch = None
) -> Response:
    """Move a campaign that is not scheduled or running to the trash."""
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    check_if_match(if_match, campaign.version)
    service.trash_campaign(session=session, campaign=campaign)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@campaigns_router.post("/{campaign_id}/restore", response_model=CampaignRead)
def restore_campaign(
    campaign_id: Id, response: Response, session: SessionDep, _actor: CampaignWriter
) -> CampaignRead:
    """Bring a campaign back from the trash."""
    return tagged(
        CampaignRead, service.restore_campaign(session=session, campaign_id=campaign_id), response
    )


@campaigns_router.post("/{campaign_id}/launch", response_model=CampaignRead)
def launch_campaign(
    campaign_id: Id,
    response: Response,
    session: SessionDep,
    scope: ScopeDep,
    _actor: CampaignWriter,
    if_match: IfMatch = None,
) -> CampaignRead:
    """Take the segment's members now, draw the control group (``holdout_percent``) and
    start the campaign (scheduled when ``starts_at`` is later)."""
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    check_if_match(if_match, campaign.version)
    return tagged(
        CampaignRead, service.launch(session=session, campaign=campaign, scope=scope), response
    )


@campaigns_router.post(
    "/{campaign_id}/send", response_model=SendReport, status_code=status.HTTP_202_ACCEPTED
)
def send_campaign(
    campaign_id: Id,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    _actor: CampaignSender,
) -> SendReport:
    """Queue the email of every treatment member not sent to yet (failed ones again);
    they go out once this answer is sent, throttled, each recorded as sent or failed.
    Members who opted out and the control group receive nothing."""
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    queued = service.queue_send(
        session=session, campaign=campaign, smtp_configured=sending.configured(settings)
    )
    background.add_task(
        sending.deliver,
        sessions=request.app.state.sessions,
        settings=settings,
        campaign_id=campaign.id,
    )
    return SendReport(queued=queued)


@campaigns_router.get("/{campaign_id}/members", response_model=Page[MemberRead])
def campaign_members(
    campaign_id: Id,
    session: SessionDep,
    params: ListParamsDep,
    scope: ScopeDep,
    _actor: CampaignReader,
) -> Page[MemberRead]:
    """The campaign's members you reach: control flag and sending state."""
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    result = service.campaign_members(
        session=session, campaign=campaign, scope=scope, cursor=params.cursor, limit=params.limit
    )
    return to_page(result, lambda item: item, Page[MemberRead])


@campaigns_router.post(
    "/{campaign_id}/responses", response_model=ResponseRead, status_code=status.HTTP_201_CREATED
)
def record_response(
    campaign_id: Id, body: ResponseIn, session: SessionDep, _actor: CampaignWriter
) -> ResponseRead:
    """Record a delivery or a bounce reported by a mail system for a member."""
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    return ResponseRead.model_validate(
        service.record_response(session=session, campaign=campaign, data=body)
    )


@campaigns_router.get("/{campaign_id}/results", response_model=CampaignResults)
def campaign_results(
    campaign_id: Id, session: SessionDep, _actor: CampaignReader
) -> CampaignResults:
    """Responses, conversions, revenue, cost per conversion, ROI and uplift over the
    control group; conversions are orders placed within the attribution window."""
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    return service.results(session=session, campaign=campaign)
