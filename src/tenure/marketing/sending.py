"""Sending a campaign's queued email through the configured mail server.

Each member is sent to and recorded in a transaction of its own (queued, then sent or
failed with the error), so an interrupted run resumes where it stopped and never sends
twice to a member recorded as sent. Sending is throttled to ``TENURE_SMTP_RATE``
messages per second. Addresses are opened (decrypted) only to send, and never logged.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tenure.audit import recorder
from tenure.config import Settings
from tenure.core.time import utcnow
from tenure.customers import personal
from tenure.customers.models import Customer
from tenure.db import unit_of_work
from tenure.marketing import email, tracking
from tenure.marketing.models import Campaign, CampaignMember, CampaignResponse
from tenure.marketing.schemas import SendReport
from tenure.security import fields

log = logging.getLogger("tenure.marketing")
Progress = Callable[[int, int], None]  # (done, total)


def configured(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def _connect(settings: Settings) -> smtplib.SMTP:
    assert settings.smtp_host
    client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30)
    client.ehlo()
    if settings.smtp_starttls:
        client.starttls()
        client.ehlo()
    if settings.smtp_username:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        client.login(settings.smtp_username, password)
    return client


def _queued(session: Session, campaign_id: int) -> list[int]:
    return list(
        session.scalars(
            select(CampaignMember.id)
            .where(
                CampaignMember.campaign_id == campaign_id, CampaignMember.send_status == "queued"
            )
            .order_by(CampaignMember.id)
        )
    )


def _message(
    session: Session,
    settings: Settings,
    campaign: Campaign,
    member: CampaignMember,
    customer: Customer,
    address: str,
) -> EmailMessage:
    sealer = fields.of(session)
    base = settings.public_url

    def link(url: str) -> str:
        return tracking.url_for(base, sealer, tracking.Link(tracking.CLICK, member.id, url))

    unsubscribe_url = tracking.url_for(base, sealer, tracking.Link(tracking.UNSUBSCRIBE, member.id))
    company = customer.name if customer.kind == "company" else (customer.company_name or "")
    rendered = email.render(
        {name: getattr(campaign, name) for name in email.TEMPLATE_FIELDS},
        email.Recipient(
            name=customer.name, company=company, unsubscribe_url=unsubscribe_url, link=link
        ),
        campaign_name=campaign.name,
        pixel_url=tracking.url_for(base, sealer, tracking.Link(tracking.OPEN, member.id)),
    )
    # Long link headers stay on one line, not encoded words a mail program cannot follow.
    message = EmailMessage(policy=SMTP_POLICY.clone(max_line_length=998))
    message["From"] = settings.smtp_from
    message["To"] = address
    message["Subject"] = rendered.subject
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def _finish(
    session: Session, member: CampaignMember, status: str, error: str | None = None
) -> None:
    member.send_status = status
    member.send_error = error
    if status == "sent":
        member.sent_at = utcnow()
    if status == "sent":
        session.add(
            CampaignResponse(
                campaign_id=member.campaign_id,
                member_id=member.id,
                customer_id=member.customer_id,
                kind="sent",
                at=utcnow(),
            )
        )


def _send_one(
    sessions: sessionmaker[Session],
    settings: Settings,
    client: smtplib.SMTP,
    member_id: int,
    report: SendReport,
) -> None:
    with unit_of_work(sessions) as session:
        member = session.get(CampaignMember, member_id)
        if member is None or member.send_status != "queued":
            return
        campaign = session.get(Campaign, member.campaign_id)
        customer = session.get(Customer, member.customer_id)
        assert campaign is not None and customer is not None
        if customer.marketing_opt_out or customer.deleted_at is not None:
            member.send_status, member.send_error = "skipped", "opted out"
            report.skipped += 1
            return
        address = personal.opened(fields.of(session), customer, ("email",))["email"]
        if not address:
            member.send_status, member.send_error = "skipped", "no email address"
            report.skipped += 1
            return
        message = _message(session, settings, campaign, member, customer, address)
        try:
            client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (0, b""))
            detail = f"refused by the mail server: {code} {text.decode(errors='replace')}"
            member.send_status, member.send_error = "failed", detail
            session.add(
                CampaignResponse(
                    campaign_id=member.campaign_id,
                    member_id=member.id,
                    customer_id=member.customer_id,
                    kind="bounced",
                    at=utcnow(),
                    detail=detail,
                )
            )
            report.failed += 1
            return
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            member.send_status = "failed"
            said = exc.smtp_error
            reason = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
            member.send_error = f"{exc.smtp_code} {reason}"
            report.failed += 1
            return
        _finish(session, member, "sent")
        report.sent += 1


def deliver(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    campaign_id: int,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """Send every queued member of a campaign their message, throttled; each one is
    recorded as sent or failed as it goes. A lost connection stops the run, leaving the
    rest queued for the next one."""
    with unit_of_work(sessions, write=False) as session:
        pending = _queued(session, campaign_id)
    report = SendReport(queued=len(pending))
    if progress:
        progress(0, len(pending))
    if not pending:
        return report
    interval = 1.0 / settings.smtp_rate
    try:
        client = _connect(settings)
    except (OSError, smtplib.SMTPException) as exc:
        report.error = f"could not reach the mail server: {type(exc).__name__}"
        log.warning("campaign %s: %s", campaign_id, report.error)
        return report
    started = time.monotonic()
    try:
        for done, member_id in enumerate(pending):
            wait = started + done * interval - time.monotonic()
            if wait > 0:
                sleep(wait)
            try:
                _send_one(sessions, settings, client, member_id, report)
            except (OSError, smtplib.SMTPServerDisconnected) as exc:
                report.error = f"the mail server connection was lost: {type(exc).__name__}"
                log.warning("campaign %s: %s", campaign_id, report.error)
                break
            if progress:
                progress(done + 1, len(pending))
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.quit()
    with unit_of_work(sessions) as session:
        recorder.add(
            session,
            action="campaign.sent",
            entity_type="campaign",
            entity_id=str(campaign_id),
            details=report.model_dump(exclude={"error"}),
        )
    return report
