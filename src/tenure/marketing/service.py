"""Segments and campaigns: saved filters, launching campaigns to a segment's members,
recording responses and working out results."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.orm import Session

from tenure.analytics import service as analytics_service
from tenure.analytics.errors import NoRun
from tenure.audit import recorder
from tenure.core.errors import IllegalTransition, NotFound, field_error
from tenure.core.money import quantize
from tenure.core.pagination import Slice, Sort, SortField, capped_count, keyset_page
from tenure.core.time import as_utc, utcnow
from tenure.core.timeline import N_, Message, TimelineEntry
from tenure.customers.models import Customer
from tenure.marketing import email, segments, tracking
from tenure.marketing.errors import BadLink, EmptySegment, MailUnavailable, NotSendable
from tenure.marketing.models import Campaign, CampaignMember, CampaignResponse, Segment
from tenure.marketing.schemas import (
    TRANSITIONS,
    CampaignCreate,
    CampaignResults,
    CampaignStatus,
    CampaignUpdate,
    GroupResults,
    MemberCustomer,
    MemberRead,
    ResponseIn,
    SegmentCreate,
    SegmentPreview,
    SegmentUpdate,
    Uplift,
)
from tenure.orders.models import Order
from tenure.orders.schemas import PURCHASED
from tenure.security.scope import RecordScope

SEGMENT_SORTS = (
    SortField("id", Segment.id, int),
    SortField("name", Segment.name, str),
    SortField("updated_at", Segment.updated_at, datetime),
)
CAMPAIGN_SORTS = (
    SortField("id", Campaign.id, int),
    SortField("name", Campaign.name, str),
    SortField("created_at", Campaign.created_at, datetime),
)
MEMBER_SORTS = (SortField("id", Customer.id, int),)
DEFAULT_SORT = "-id"
PREVIEW_SIZE = 20
RESPONSE_KINDS = ("sent", "delivered", "bounced", "opened", "clicked", "unsubscribed")


# --- segments -------------------------------------------------------------------------


def get_segment(*, session: Session, segment_id: int, include_trashed: bool = False) -> Segment:
    """A segment by id; ``NotFound`` when missing or in the trash."""
    segment = session.get(Segment, segment_id)
    if segment is None or (segment.deleted_at is not None and not include_trashed):
        raise NotFound(f"There is no segment {segment_id}.")
    return segment


def _latest_run(session: Session) -> int | None:
    try:
        return analytics_service.get_run(session=session).id
    except NoRun:
        return None


def members_query(
    *, session: Session, definition: dict[str, Any], scope: RecordScope
) -> Select[Any]:
    """The ids of the customers in ``scope`` a filter selects (checked first)."""
    return segments.members_query(
        definition,
        scope=scope,
        run_id=lambda: _latest_run(session),
        dialect=session.get_bind().dialect.name,
    )


def list_segments(
    *, session: Session, trashed: bool, sort: Sort, cursor: str | None, limit: int
) -> Slice[Segment]:
    """A page of the segments (or of the trash)."""
    stmt = select(Segment).where(
        Segment.deleted_at.is_not(None) if trashed else Segment.deleted_at.is_(None)
    )
    return keyset_page(session, stmt, sort=sort, id_column=Segment.id, cursor=cursor, limit=limit)


def create_segment(*, session: Session, data: SegmentCreate, scope: RecordScope) -> Segment:
    """A new segment; its filter is checked (and compiled) before anything is saved."""
    members_query(session=session, definition=data.definition, scope=scope)
    segment = Segment(name=data.name, description=data.description, definition=data.definition)
    session.add(segment)
    session.flush()
    recorder.add(
        session,
        action="segment.created",
        entity_type="segment",
        entity_id=str(segment.id),
        changes={"name": {"old": None, "new": segment.name}},
    )
    return segment


def update_segment(
    *, session: Session, segment: Segment, data: SegmentUpdate, scope: RecordScope
) -> Segment:
    """Change a segment's name, description or filter."""
    changes = data.model_dump(exclude_unset=True)
    for required in ("name", "definition"):
        if required in changes and changes[required] is None:
            raise field_error(required, f"{required} cannot be null.")
    if data.definition is not None:
        members_query(session=session, definition=data.definition, scope=scope)
    diff = {
        key: {"old": getattr(segment, key), "new": value}
        for key, value in changes.items()
        if getattr(segment, key) != value
    }
    for key, value in changes.items():
        setattr(segment, key, value)
    segment.updated_at = utcnow()
    session.flush()
    recorder.add(
        session,
        action="segment.updated",
        entity_type="segment",
        entity_id=str(segment.id),
        changes=diff,
    )
    return segment


def trash_segment(*, session: Session, segment: Segment) -> Segment:
    """Move a segment to the trash."""
    segment.deleted_at = utcnow()
    session.flush()
    recorder.add(
        session, action="segment.deleted", entity_type="segment", entity_id=str(segment.id)
    )
    return segment


def restore_segment(*, session: Session, segment_id: int) -> Segment:
    """Bring a segment back from the trash."""
    segment = get_segment(session=session, segment_id=segment_id, include_trashed=True)
    if segment.deleted_at is not None:
        segment.deleted_at = None
        session.flush()
        recorder.add(
            session, action="segment.restored", entity_type="segment", entity_id=str(segment.id)
        )
    return segment


def preview(
    *, session: Session, definition: dict[str, Any], scope: RecordScope, count_cap: int
) -> SegmentPreview:
    """How many customers in ``scope`` a filter selects (capped) and the first of them."""
    ids = members_query(session=session, definition=definition, scope=scope)
    count, capped = capped_count(session, ids, count_cap)
    first = session.scalars(
        select(Customer)
        .where(Customer.id.in_(ids.order_by(None)))
        .order_by(Customer.id)
        .limit(PREVIEW_SIZE)
    )
    return SegmentPreview(
        count=count,
        count_capped=capped,
        members=[MemberCustomer.model_validate(c) for c in first],
    )


def segment_members(
    *,
    session: Session,
    segment: Segment,
    scope: RecordScope,
    sort: Sort,
    cursor: str | None,
    limit: int,
    count_cap: int | None = None,
) -> Slice[Customer]:
    """A page of the customers in ``scope`` a segment selects now."""
    ids = members_query(session=session, definition=segment.definition, scope=scope)
    stmt = select(Customer).where(Customer.id.in_(ids))
    return keyset_page(
        session,
        stmt,
        sort=sort,
        id_column=Customer.id,
        cursor=cursor,
        limit=limit,
        count_cap=count_cap,
    )


# --- campaigns ------------------------------------------------------------------------


def get_campaign(*, session: Session, campaign_id: int, include_trashed: bool = False) -> Campaign:
    """A campaign by id; ``NotFound`` when missing or in the trash."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or (campaign.deleted_at is not None and not include_trashed):
        raise NotFound(f"There is no campaign {campaign_id}.")
    return campaign


def list_campaigns(
    *,
    session: Session,
    status: str | None,
    trashed: bool,
    sort: Sort,
    cursor: str | None,
    limit: int,
) -> Slice[Campaign]:
    """A page of the campaigns (or of the trash), optionally of one status."""
    stmt = select(Campaign).where(
        Campaign.deleted_at.is_not(None) if trashed else Campaign.deleted_at.is_(None)
    )
    if status:
        stmt = stmt.where(Campaign.status == status)
    return keyset_page(session, stmt, sort=sort, id_column=Campaign.id, cursor=cursor, limit=limit)


def _templates(campaign: Campaign) -> dict[str, str | None]:
    return {name: getattr(campaign, name) for name in email.TEMPLATE_FIELDS}


def _check_dates(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and as_utc(ends_at) < as_utc(starts_at):
        raise field_error("ends_at", "ends_at must not be before starts_at.")


def _check_segment(session: Session, segment_id: int) -> None:
    segment = session.get(Segment, segment_id)
    if segment is None or segment.deleted_at is not None:
        raise field_error("segment_id", f"There is no segment {segment_id}.")


def _check_budget(budget: Decimal, currency: str) -> None:
    if quantize(budget, currency) != budget:
        raise field_error("budget", f"too many decimals for {currency}")


def create_campaign(*, session: Session, data: CampaignCreate) -> Campaign:
    """A new draft campaign; its templates must render for a sample member."""
    _check_segment(session, data.segment_id)
    _check_dates(data.starts_at, data.ends_at)
    _check_budget(data.budget, data.currency)
    values = data.model_dump()
    email.check(
        {k: values[k] for k in email.TEMPLATE_FIELDS},
        channel=data.channel.value,
        campaign_name=data.name,
    )
    campaign = Campaign(
        **{**values, "channel": data.channel.value},
        status=CampaignStatus.DRAFT.value,
    )
    session.add(campaign)
    session.flush()
    recorder.add(
        session,
        action="campaign.created",
        entity_type="campaign",
        entity_id=str(campaign.id),
        changes={"name": {"old": None, "new": campaign.name}},
    )
    return campaign


# Fields that can change only before a launch: they decide who the members are.
DRAFT_ONLY = frozenset({"channel", "segment_id", "holdout_percent", "starts_at", "currency"})


def update_campaign(*, session: Session, campaign: Campaign, data: CampaignUpdate) -> Campaign:
    """Change a campaign's fields, or its status by the allowed transitions (a draft
    becomes scheduled or running by a launch; any of draft, scheduled and running may be
    cancelled)."""
    changes = data.model_dump(exclude_unset=True)
    for required in ("name", "status", "channel", "budget", "currency", "segment_id"):
        if required in changes and changes[required] is None:
            raise field_error(required, f"{required} cannot be null.")
    for required in ("holdout_percent", "attribution_days"):
        if required in changes and changes[required] is None:
            raise field_error(required, f"{required} cannot be null.")
    current = CampaignStatus(campaign.status)
    new_status = changes.pop("status", None)
    if new_status is not None and new_status != current and new_status not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final)"
        hint = " Launch it to start it." if current is CampaignStatus.DRAFT else ""
        raise IllegalTransition(
            f"A campaign that is {current} cannot become {new_status}; allowed: {allowed}.{hint}"
        )
    if current is not CampaignStatus.DRAFT:
        locked = sorted(
            k for k in DRAFT_ONLY & changes.keys() if changes[k] != getattr(campaign, k)
        )
        if locked:
            raise field_error(locked[0], f"{locked[0]} can be changed only while a draft.")
    if "segment_id" in changes:
        _check_segment(session, changes["segment_id"])
    _check_dates(
        changes.get("starts_at", campaign.starts_at), changes.get("ends_at", campaign.ends_at)
    )
    _check_budget(
        changes.get("budget", campaign.budget), changes.get("currency", campaign.currency)
    )
    templates = {
        **_templates(campaign),
        **{k: v for k, v in changes.items() if k in email.TEMPLATE_FIELDS},
    }
    email.check(
        templates,
        channel=str(changes.get("channel", campaign.channel)),
        campaign_name=changes.get("name", campaign.name),
    )
    diff: dict[str, Any] = {}
    for key, value in changes.items():
        value = value.value if hasattr(value, "value") else value
        if getattr(campaign, key) != value:
            diff[key] = {"old": getattr(campaign, key), "new": value}
        setattr(campaign, key, value)
    if new_status is not None and new_status != current:
        campaign.status = new_status.value
        diff["status"] = {"old": current.value, "new": new_status.value}
    campaign.updated_at = utcnow()
    session.flush()
    action = "campaign.cancelled" if new_status is CampaignStatus.CANCELLED else "campaign.updated"
    recorder.add(
        session, action=action, entity_type="campaign", entity_id=str(campaign.id), changes=diff
    )
    return campaign


def trash_campaign(*, session: Session, campaign: Campaign) -> Campaign:
    """Move a campaign to the trash (a running one must be completed or cancelled first)."""
    if campaign.status in (CampaignStatus.RUNNING, CampaignStatus.SCHEDULED):
        raise IllegalTransition(
            f"A campaign that is {campaign.status} cannot be deleted; cancel or complete it."
        )
    campaign.deleted_at = utcnow()
    session.flush()
    recorder.add(
        session, action="campaign.deleted", entity_type="campaign", entity_id=str(campaign.id)
    )
    return campaign


def restore_campaign(*, session: Session, campaign_id: int) -> Campaign:
    """Bring a campaign back from the trash."""
    campaign = get_campaign(session=session, campaign_id=campaign_id, include_trashed=True)
    if campaign.deleted_at is not None:
        campaign.deleted_at = None
        session.flush()
        recorder.add(
            session, action="campaign.restored", entity_type="campaign", entity_id=str(campaign.id)
        )
    return campaign


def control_group(customer_ids: list[int], *, seed: int, holdout_percent: int) -> set[int]:
    """The members drawn into the control group: reproducible from the seed and the
    members (whatever order they come in)."""
    ordered = sorted(customer_ids)
    size = len(ordered) * holdout_percent // 100
    return set(random.Random(seed).sample(ordered, size))


def launch(
    *, session: Session, campaign: Campaign, scope: RecordScope, now: datetime | None = None
) -> Campaign:
    """Take the segment's members (in ``scope``) into the campaign, draw the control
    group, and start it: running, or scheduled when it starts later."""
    now = now or utcnow()
    if campaign.status != CampaignStatus.DRAFT:
        raise IllegalTransition(
            f"Only a draft campaign can be launched; this one is {campaign.status}."
        )
    email.check(_templates(campaign), channel=campaign.channel, campaign_name=campaign.name)
    segment = get_segment(session=session, segment_id=campaign.segment_id, include_trashed=True)
    ids = list(
        session.scalars(members_query(session=session, definition=segment.definition, scope=scope))
    )
    if not ids:
        raise EmptySegment(
            f"Segment {segment.name!r} has no members right now: nothing to launch to."
        )
    seed = secrets.randbelow(2**31 - 1)
    control = control_group(ids, seed=seed, holdout_percent=campaign.holdout_percent)
    session.add_all(
        CampaignMember(campaign_id=campaign.id, customer_id=i, control=i in control)
        for i in sorted(ids)
    )
    campaign.seed = seed
    campaign.launched_at = now
    later = campaign.starts_at is not None and as_utc(campaign.starts_at) > now
    campaign.status = (CampaignStatus.SCHEDULED if later else CampaignStatus.RUNNING).value
    campaign.updated_at = now
    session.flush()
    recorder.add(
        session,
        action="campaign.launched",
        entity_type="campaign",
        entity_id=str(campaign.id),
        details={"members": len(ids), "control": len(control), "status": campaign.status},
    )
    return campaign


def queue_send(*, session: Session, campaign: Campaign, smtp_configured: bool) -> int:
    """Mark the treatment members not yet sent to (or whose sending failed) as queued;
    returns how many are queued. Refused unless the campaign is a running email campaign and a mail
    server is configured."""
    if campaign.channel != "email":
        raise NotSendable(f"Only email campaigns are sent; this one is {campaign.channel}.")
    now = utcnow()
    if (
        campaign.status == CampaignStatus.SCHEDULED
        and campaign.starts_at is not None
        and as_utc(campaign.starts_at) <= now
    ):
        campaign.status = CampaignStatus.RUNNING.value  # its start has come
        campaign.updated_at = now
    if campaign.status != CampaignStatus.RUNNING:
        raise NotSendable(
            f"Only a running campaign is sent; this one is {campaign.status}"
            + (" (launch it first)." if campaign.status == CampaignStatus.DRAFT else ".")
        )
    if not smtp_configured:
        raise MailUnavailable("No mail server is configured: set TENURE_SMTP_HOST.")
    session.execute(
        update(CampaignMember)
        .where(
            CampaignMember.campaign_id == campaign.id,
            CampaignMember.control.is_(False),
            (CampaignMember.send_status.is_(None)) | (CampaignMember.send_status == "failed"),
        )
        .values(send_status="queued", send_error=None)
    )
    # Those queued before too: a run that stopped left them for this one.
    queued = session.scalar(
        select(func.count()).where(
            CampaignMember.campaign_id == campaign.id, CampaignMember.send_status == "queued"
        )
    )
    return int(queued or 0)


def campaign_members(
    *,
    session: Session,
    campaign: Campaign,
    scope: RecordScope,
    cursor: str | None,
    limit: int,
) -> Slice[MemberRead]:
    """A page of a campaign's members (those in ``scope``), by customer id."""
    stmt = (
        select(CampaignMember, Customer.name)
        .join(Customer, Customer.id == CampaignMember.customer_id)
        .where(CampaignMember.campaign_id == campaign.id)
    )
    if scope.owners is not None:
        stmt = stmt.where(Customer.owner_id.in_(sorted(scope.owners)))
    after = int(cursor) if cursor and cursor.isdigit() else 0
    rows = session.execute(
        stmt.where(CampaignMember.id > after).order_by(CampaignMember.id).limit(limit + 1)
    ).all()
    items = [
        MemberRead(
            id=m.id,
            customer_id=m.customer_id,
            customer_name=name,
            control=m.control,
            send_status=m.send_status,
            send_error=m.send_error,
            sent_at=m.sent_at,
        )
        for m, name in rows[:limit]
    ]
    return Slice(items, str(items[-1].id) if len(rows) > limit else None)


# --- responses ------------------------------------------------------------------------


def _respond(
    session: Session,
    member: CampaignMember,
    kind: str,
    *,
    at: datetime | None = None,
    detail: str | None = None,
) -> CampaignResponse:
    response = CampaignResponse(
        campaign_id=member.campaign_id,
        member_id=member.id,
        customer_id=member.customer_id,
        kind=kind,
        at=at or utcnow(),
        detail=detail,
    )
    session.add(response)
    session.flush()
    return response


def record_response(*, session: Session, campaign: Campaign, data: ResponseIn) -> CampaignResponse:
    """A delivery or bounce notice for the member that is ``data.customer_id``."""
    member = session.scalars(
        select(CampaignMember).where(
            CampaignMember.campaign_id == campaign.id,
            CampaignMember.customer_id == data.customer_id,
        )
    ).first()
    if member is None:
        raise field_error(
            "customer_id", f"Customer {data.customer_id} is not a member of this campaign."
        )
    if member.control:
        raise field_error(
            "customer_id", f"Customer {data.customer_id} is in the control group: sent nothing."
        )
    return _respond(session, member, data.kind.value, at=data.at, detail=data.detail)


def _member(session: Session, link: tracking.Link) -> CampaignMember:
    member = session.get(CampaignMember, link.member_id)
    if member is None:
        raise BadLink("This link is not valid.")
    return member


def track_open(*, session: Session, token: str) -> None:
    """Record that a member opened the message (the pixel's link)."""
    link = tracking.verify(session, token, tracking.OPEN)
    _respond(session, _member(session, link), "opened")


def track_click(*, session: Session, token: str) -> str:
    """Record a click on a tracked link; returns where it goes."""
    link = tracking.verify(session, token, tracking.CLICK)
    assert link.url is not None
    _respond(session, _member(session, link), "clicked", detail=link.url)
    return link.url


@dataclass(frozen=True)
class Unsubscribing:
    campaign_name: str
    already: bool


def check_unsubscribe(*, session: Session, token: str) -> Unsubscribing:
    """What an unsubscribe link is for (nothing changes)."""
    member = _member(session, tracking.verify(session, token, tracking.UNSUBSCRIBE))
    campaign = session.get(Campaign, member.campaign_id)
    customer = session.get(Customer, member.customer_id)
    return Unsubscribing(
        campaign_name=campaign.name if campaign else "",
        already=bool(customer and customer.marketing_opt_out),
    )


def unsubscribe(*, session: Session, token: str) -> None:
    """The member's customer opts out of marketing email (recorded once per member)."""
    member = _member(session, tracking.verify(session, token, tracking.UNSUBSCRIBE))
    customer = session.get(Customer, member.customer_id)
    if customer is None:
        raise BadLink("This link is not valid.")
    if not customer.marketing_opt_out:
        customer.marketing_opt_out = True
        customer.updated_at = utcnow()
        recorder.add(
            session,
            action="customer.unsubscribed",
            entity_type="customer",
            entity_id=str(customer.id),
            details={"campaign_id": member.campaign_id},
        )
    done = session.scalar(
        select(func.count()).where(
            CampaignResponse.member_id == member.id, CampaignResponse.kind == "unsubscribed"
        )
    )
    if not done:
        _respond(session, member, "unsubscribed")
    session.flush()


# --- results --------------------------------------------------------------------------


def attribution_window(campaign: Campaign) -> tuple[datetime | None, datetime | None]:
    """Orders count as conversions from the launch until ``attribution_days`` after the
    campaign ends (or after the launch, while it has no end)."""
    if campaign.launched_at is None:
        return None, None
    start = as_utc(campaign.launched_at)
    end = as_utc(campaign.ends_at) if campaign.ends_at is not None else start
    return start, end + timedelta(days=campaign.attribution_days)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def results(*, session: Session, campaign: Campaign) -> CampaignResults:
    """Responses per kind, conversions and revenue for treatment and control, cost per
    conversion, ROI and uplift. Conversions are worked out from orders now, in SQL."""
    currency = campaign.currency
    members = dict(
        session.execute(
            select(CampaignMember.control, func.count())
            .where(CampaignMember.campaign_id == campaign.id)
            .group_by(CampaignMember.control)
        ).all()
    )
    counts: dict[tuple[bool, str], int] = {
        (bool(control), kind): int(n)
        for control, kind, n in session.execute(
            select(
                CampaignMember.control,
                CampaignResponse.kind,
                func.count(func.distinct(CampaignResponse.member_id)),
            )
            .join(CampaignMember, CampaignMember.id == CampaignResponse.member_id)
            .where(CampaignResponse.campaign_id == campaign.id)
            .group_by(CampaignMember.control, CampaignResponse.kind)
        )
    }
    start, end = attribution_window(campaign)
    converted: dict[bool, tuple[int, Decimal]] = {}
    if start is not None and end is not None:
        rows = session.execute(
            select(
                CampaignMember.control,
                func.count(func.distinct(Order.customer_id)),
                func.sum(Order.total),
            )
            .join(Order, Order.customer_id == CampaignMember.customer_id)
            .where(
                CampaignMember.campaign_id == campaign.id,
                Order.status.in_([s.value for s in PURCHASED]),
                Order.deleted_at.is_(None),
                Order.currency == currency,
                and_(Order.ordered_at >= start, Order.ordered_at <= end),
            )
            .group_by(CampaignMember.control)
        ).all()
        converted = {bool(c): (int(n), total or Decimal(0)) for c, n, total in rows}

    def group(control: bool) -> GroupResults:
        size = int(members.get(control, 0))
        kinds = {kind: counts.get((control, kind), 0) for kind in RESPONSE_KINDS}
        conversions, revenue = converted.get(control, (0, Decimal(0)))
        return GroupResults(
            members=size,
            counts=kinds,
            rates={kind: _rate(n, size) for kind, n in kinds.items()},
            conversions=conversions,
            conversion_rate=_rate(conversions, size),
            revenue=str(quantize(revenue, currency)),
        )

    treatment, control = group(False), group(True)
    revenue = converted.get(False, (0, Decimal(0)))[1]
    budget = campaign.budget
    conversions = treatment.conversions
    return CampaignResults(
        campaign_id=campaign.id,
        currency=currency,
        budget=str(quantize(budget, currency)),
        window_start=start,
        window_end=end,
        treatment=treatment,
        control=control,
        revenue=str(quantize(revenue, currency)),
        cost_per_conversion=str(quantize(budget / conversions, currency)) if conversions else None,
        roi=str(((revenue - budget) / budget).quantize(Decimal("0.0001"))) if budget else None,
        uplift=Uplift(
            treatment_rate=treatment.conversion_rate,
            control_rate=control.conversion_rate,
            difference=round(treatment.conversion_rate - control.conversion_rate, 4),
            treatment_conversions=treatment.conversions,
            treatment_members=treatment.members,
            control_conversions=control.conversions,
            control_members=control.members,
        ),
    )


# --- timeline -------------------------------------------------------------------------


# What each response says on the customer's timeline.
RESPONSE_TITLES = {
    "sent": N_("%(campaign)s: sent"),
    "delivered": N_("%(campaign)s: delivered"),
    "bounced": N_("%(campaign)s: bounced"),
    "opened": N_("%(campaign)s: opened"),
    "clicked": N_("%(campaign)s: clicked"),
    "unsubscribed": N_("%(campaign)s: unsubscribed"),
    "converted": N_("%(campaign)s: converted"),
}


def timeline_entries(
    *, session: Session, customer_id: int, limit: int, before: datetime | None = None
) -> list[TimelineEntry]:
    """A customer's campaign responses, newest first (before ``before`` when given)."""
    stmt = (
        select(CampaignResponse, Campaign.name)
        .join(Campaign, Campaign.id == CampaignResponse.campaign_id)
        .where(CampaignResponse.customer_id == customer_id)
    )
    if before is not None:
        stmt = stmt.where(CampaignResponse.at < before)
    rows = session.execute(
        stmt.order_by(CampaignResponse.at.desc(), CampaignResponse.id.desc()).limit(limit)
    ).all()
    return [
        TimelineEntry(
            at=as_utc(response.at),
            kind="campaign",
            title=(
                Message(RESPONSE_TITLES[response.kind], {"campaign": name})
                if response.kind in RESPONSE_TITLES
                else f"{name}: {response.kind}"
            ),
            detail=response.detail,
            url=f"/campaigns/{response.campaign_id}",
        )
        for response, name in rows
    ]
