"""Campaigns over the API: launching with a reproducible control group, email sent
through a real SMTP server, tracking links, unsubscribing, responses and results."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.audit.models import AuditEntry
from tenure.catalog import service as catalog_service
from tenure.catalog.schemas import ProductCreate
from tenure.customers.models import Customer
from tenure.db import unit_of_work
from tenure.marketing import sending, service
from tenure.marketing.models import Campaign, CampaignMember, CampaignResponse
from tenure.orders import service as orders_service
from tenure.orders.schemas import OrderCreate, OrderLineIn, OrderStatus
from tenure.security.scope import EVERYTHING
from tests.conftest import Headers
from tests.marketing.conftest import MakeCustomer, Sink

SUBJECT = "Spring offers for {{ first_name }}"
BODY = "Hello {{ name }},\n\nOur sale: {{ link('https://shop.example/sale') }}\n"
CLICK = re.compile(r"https://crm\.example(/email/click/[A-Za-z0-9_.-]+)")
PIXEL = re.compile(r"https://crm\.example(/email/open/[A-Za-z0-9_.-]+\.gif)")
UNSUBSCRIBE = re.compile(r"https://crm\.example(/email/unsubscribe/[A-Za-z0-9_.-]+)")


def _segment(client: TestClient, headers: Headers, definition: dict[str, Any] | None = None) -> int:
    body = {
        "name": "Customers",
        "definition": definition
        or {"all": [{"field": "lifecycle_stage", "op": "eq", "value": "customer"}]},
    }
    r = client.post("/api/v1/segments", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _campaign(
    client: TestClient, headers: Headers, segment_id: int, **values: Any
) -> dict[str, Any]:
    body = {
        "name": "Spring sale",
        "segment_id": segment_id,
        "budget": "100.00",
        "subject_template": SUBJECT,
        "body_template": BODY,
        **values,
    }
    r = client.post("/api/v1/campaigns", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _launched(client: TestClient, headers: Headers, **values: Any) -> dict[str, Any]:
    campaign = _campaign(client, headers, _segment(client, headers), **values)
    r = client.post(f"/api/v1/campaigns/{campaign['id']}/launch", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_sending_delivers_rendered_email_with_an_unsubscribe_link(
    client: TestClient, marketer: Headers, make_customer: MakeCustomer, smtp: Sink
) -> None:
    make_customer("Ada Lovelace", email="ada@example.com", lifecycle_stage="customer")
    make_customer("Bob Lead", email="bob@example.com", lifecycle_stage="lead")
    campaign = _launched(client, marketer)

    r = client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)

    assert r.status_code == 202 and r.json()["queued"] == 1
    [mail] = smtp.received
    assert mail.recipients == ["ada@example.com"]
    assert mail.message["Subject"] == "Spring offers for Ada"
    assert "Hello Ada Lovelace," in mail.text
    assert CLICK.search(mail.text) and PIXEL.search(mail.html)
    unsubscribe = UNSUBSCRIBE.search(mail.message["List-Unsubscribe"])
    assert unsubscribe and unsubscribe.group(0) in mail.text
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    members = client.get(f"/api/v1/campaigns/{campaign['id']}/members", headers=marketer).json()
    assert [(m["customer_name"], m["send_status"]) for m in members["items"]] == [
        ("Ada Lovelace", "sent")
    ]


def test_a_second_send_sends_nothing_again(
    client: TestClient, marketer: Headers, make_customer: MakeCustomer, smtp: Sink
) -> None:
    make_customer("Ada Lovelace", email="ada@example.com", lifecycle_stage="customer")
    campaign = _launched(client, marketer)
    client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)

    again = client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)

    assert again.json()["queued"] == 0
    assert len(smtp.received) == 1


def test_an_interrupted_run_resumes_with_the_members_not_yet_sent(
    client: TestClient,
    marketer: Headers,
    make_customer: MakeCustomer,
    smtp: Sink,
    sessions: sessionmaker[Session],
    mail_settings: Any,
) -> None:
    for n in range(3):
        make_customer(f"Person {n}", email=f"p{n}@example.com", lifecycle_stage="customer")
    campaign = _launched(client, marketer)
    with unit_of_work(sessions) as s:
        first = service.get_campaign(session=s, campaign_id=campaign["id"])
        service.queue_send(session=s, campaign=first, smtp_configured=True)
    stopped = sending.deliver(
        sessions=sessions,
        settings=mail_settings.model_copy(update={"smtp_port": 1}),
        campaign_id=campaign["id"],
    )
    resumed = client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)

    assert stopped.sent == 0 and stopped.error is not None
    assert resumed.json()["queued"] == 3
    assert sorted(m.recipients[0] for m in smtp.received) == [
        "p0@example.com",
        "p1@example.com",
        "p2@example.com",
    ]


def test_opted_out_customers_and_the_control_group_receive_nothing(
    client: TestClient,
    marketer: Headers,
    make_customer: MakeCustomer,
    smtp: Sink,
    sessions: sessionmaker[Session],
) -> None:
    ids = [
        make_customer(f"Person {n}", email=f"p{n}@example.com", lifecycle_stage="customer")
        for n in range(10)
    ]
    with unit_of_work(sessions) as s:
        s.get(Customer, ids[0]).marketing_opt_out = True  # type: ignore[union-attr]
    campaign = _launched(client, marketer, holdout_percent=50)

    client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)

    with sessions() as s:
        members = s.scalars(
            select(CampaignMember).where(CampaignMember.campaign_id == campaign["id"])
        ).all()
        control = {m.customer_id for m in members if m.control}
    assert len(control) == 5
    assert control == service.control_group(ids, seed=campaign["seed"], holdout_percent=50)
    sent_to = {m.recipients[0] for m in smtp.received}
    expected = {f"p{ids.index(i)}@example.com" for i in ids if i not in control and i != ids[0]}
    assert sent_to == expected


def test_a_refused_recipient_is_recorded_as_bounced(
    client: TestClient, marketer: Headers, make_customer: MakeCustomer, smtp: Sink
) -> None:
    make_customer("Gone Person", email="gone@example.com", lifecycle_stage="customer")
    smtp.refuse.add("gone@example.com")
    campaign = _launched(client, marketer)

    client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)

    results = client.get(f"/api/v1/campaigns/{campaign['id']}/results", headers=marketer).json()
    members = client.get(f"/api/v1/campaigns/{campaign['id']}/members", headers=marketer).json()
    assert results["treatment"]["counts"]["bounced"] == 1
    assert members["items"][0]["send_status"] == "failed"
    assert "550" in members["items"][0]["send_error"]


def test_pixel_click_and_unsubscribe_are_recorded_and_the_opt_out_holds(
    client: TestClient,
    marketer: Headers,
    make_customer: MakeCustomer,
    smtp: Sink,
    sessions: sessionmaker[Session],
) -> None:
    customer_id = make_customer("Ada Lovelace", email="ada@example.com", lifecycle_stage="customer")
    campaign = _launched(client, marketer)
    client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)
    [mail] = smtp.received

    pixel = client.get(PIXEL.search(mail.html).group(1))  # type: ignore[union-attr]
    click = client.get(CLICK.search(mail.text).group(1), follow_redirects=False)  # type: ignore[union-attr]
    page = client.get(UNSUBSCRIBE.search(mail.text).group(1))  # type: ignore[union-attr]
    unsubscribed = client.post(UNSUBSCRIBE.search(mail.text).group(1))  # type: ignore[union-attr]

    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    assert click.status_code == 302 and click.headers["location"] == "https://shop.example/sale"
    assert page.status_code == 200 and "Unsubscribe" in page.text
    assert unsubscribed.status_code == 200
    results = client.get(f"/api/v1/campaigns/{campaign['id']}/results", headers=marketer).json()
    assert {
        k: results["treatment"]["counts"][k] for k in ("opened", "clicked", "unsubscribed")
    } == {
        "opened": 1,
        "clicked": 1,
        "unsubscribed": 1,
    }
    with sessions() as s:
        assert s.get(Customer, customer_id).marketing_opt_out is True  # type: ignore[union-attr]
        actions = set(s.scalars(select(AuditEntry.action)))
    assert {
        "campaign.created",
        "campaign.launched",
        "campaign.sent",
        "customer.unsubscribed",
    } <= actions
    later = _launched(client, marketer)
    client.post(f"/api/v1/campaigns/{later['id']}/send", headers=marketer)
    assert len(smtp.received) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/email/open/WyJvcGVuIiwxXQ.AAAAAAAAAAAAAAAAAAAAAA.gif",
        "/email/click/WyJjbGljayIsMSwiaHR0cHM6Ly9ldmlsLmV4YW1wbGUiXQ.AAAAAAAAAAAAAAAAAAAAAA",
        "/email/unsubscribe/WyJ1bnN1YnNjcmliZSIsMV0.AAAAAAAAAAAAAAAAAAAAAA",
        "/email/unsubscribe/garbage",
    ],
)
def test_a_link_with_a_bad_signature_is_404_and_records_nothing(
    client: TestClient,
    marketer: Headers,
    make_customer: MakeCustomer,
    smtp: Sink,
    sessions: sessionmaker[Session],
    path: str,
) -> None:
    customer_id = make_customer("Ada Lovelace", email="ada@example.com", lifecycle_stage="customer")
    campaign = _launched(client, marketer)
    client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)
    before = _count(sessions, CampaignResponse)

    r = client.request("POST" if "unsubscribe" in path else "GET", path, follow_redirects=False)

    assert r.status_code == 404
    assert _count(sessions, CampaignResponse) == before
    with sessions() as s:
        assert s.get(Customer, customer_id).marketing_opt_out is False  # type: ignore[union-attr]


def test_a_click_link_cannot_be_pointed_elsewhere(
    client: TestClient, marketer: Headers, make_customer: MakeCustomer, smtp: Sink
) -> None:
    make_customer("Ada Lovelace", email="ada@example.com", lifecycle_stage="customer")
    campaign = _launched(client, marketer)
    client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)
    path = CLICK.search(smtp.received[0].text).group(1)  # type: ignore[union-attr]
    _payload, mac = path.rsplit("/", 1)[1].split(".")
    forged = base64.urlsafe_b64encode(b'["click",1,"https://evil.example"]').rstrip(b"=").decode()

    r = client.get(f"/email/click/{forged}.{mac}", follow_redirects=False)

    assert r.status_code == 404


def test_a_template_that_does_not_render_is_refused_naming_the_line(
    client: TestClient, marketer: Headers, sessions: sessionmaker[Session]
) -> None:
    segment_id = _segment(client, marketer)
    body = {
        "name": "Broken",
        "segment_id": segment_id,
        "subject_template": "Hi",
        "body_template": "Hello\n{{ nickname }}\n",
    }
    syntax = {**body, "body_template": "Hello\n\n{% if %}"}

    unknown = client.post("/api/v1/campaigns", json=body, headers=marketer)
    broken = client.post("/api/v1/campaigns", json=syntax, headers=marketer)

    assert unknown.status_code == 422
    assert unknown.json()["type"] == "urn:tenure:problem:invalid-template"
    assert "line 2" in unknown.json()["detail"] and "nickname" in unknown.json()["detail"]
    assert unknown.json()["errors"][0]["loc"] == ["body", "body_template"]
    assert broken.status_code == 422 and "line 3" in broken.json()["detail"]
    assert _count(sessions, Campaign) == 0


def test_illegal_transitions_are_refused_and_change_nothing(
    client: TestClient, marketer: Headers, make_customer: MakeCustomer
) -> None:
    make_customer("Ada Lovelace", email="ada@example.com", lifecycle_stage="customer")
    draft = _campaign(client, marketer, _segment(client, marketer))

    running = client.patch(
        f"/api/v1/campaigns/{draft['id']}", json={"status": "running"}, headers=marketer
    )
    completed = client.patch(
        f"/api/v1/campaigns/{draft['id']}", json={"status": "completed"}, headers=marketer
    )
    cancelled = client.patch(
        f"/api/v1/campaigns/{draft['id']}", json={"status": "cancelled"}, headers=marketer
    )
    relaunch = client.post(f"/api/v1/campaigns/{draft['id']}/launch", headers=marketer)

    assert (
        running.status_code == 409
        and running.json()["type"] == "urn:tenure:problem:illegal-transition"
    )
    assert completed.status_code == 409
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert relaunch.status_code == 409
    assert (
        client.get(f"/api/v1/campaigns/{draft['id']}", headers=marketer).json()["version"]
        == cancelled.json()["version"]
    )


def test_launching_an_empty_segment_is_refused_and_changes_nothing(
    client: TestClient, marketer: Headers, sessions: sessionmaker[Session]
) -> None:
    campaign = _campaign(client, marketer, _segment(client, marketer))

    r = client.post(f"/api/v1/campaigns/{campaign['id']}/launch", headers=marketer)

    assert r.status_code == 409 and r.json()["type"] == "urn:tenure:problem:empty-segment"
    assert (
        client.get(f"/api/v1/campaigns/{campaign['id']}", headers=marketer).json()["status"]
        == "draft"
    )
    assert _count(sessions, CampaignMember) == 0


def test_a_launch_before_the_start_is_scheduled(
    client: TestClient, marketer: Headers, make_customer: MakeCustomer
) -> None:
    make_customer("Ada Lovelace", lifecycle_stage="customer")
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()

    campaign = _launched(client, marketer, starts_at=later)
    send = client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)

    assert campaign["status"] == "scheduled"
    assert send.status_code == 409 and send.json()["type"] == "urn:tenure:problem:not-sendable"


@pytest.mark.parametrize(
    ("field", "value"), [("budget", "-5.00"), ("holdout_percent", 51), ("holdout_percent", -1)]
)
def test_a_negative_budget_or_a_holdout_out_of_range_is_refused(
    client: TestClient, marketer: Headers, sessions: sessionmaker[Session], field: str, value: Any
) -> None:
    segment_id = _segment(client, marketer)
    body = {
        "name": "Bad",
        "segment_id": segment_id,
        "subject_template": "Hi",
        "body_template": "Hi",
        field: value,
    }

    r = client.post("/api/v1/campaigns", json=body, headers=marketer)

    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"][-1] == field
    assert _count(sessions, Campaign) == 0


def _order(
    sessions: sessionmaker[Session],
    customer_id: int,
    amount: str,
    status: OrderStatus,
    when: datetime,
) -> None:
    with unit_of_work(sessions) as s:
        product = catalog_service.create(
            session=s,
            data=ProductCreate(sku=f"R-{customer_id}-{amount}", name="Tea", unit_price=amount),
        )
        orders_service.create(
            session=s,
            data=OrderCreate(
                customer_id=customer_id,
                status=status,
                ordered_at=when,
                lines=[OrderLineIn(product_id=product.id, quantity=1)],
            ),
            scope=EVERYTHING,
        )


def test_results_count_conversions_revenue_roi_and_uplift_over_control(
    client: TestClient,
    marketer: Headers,
    make_customer: MakeCustomer,
    smtp: Sink,
    sessions: sessionmaker[Session],
) -> None:
    ids = [
        make_customer(f"Person {n}", email=f"p{n}@example.com", lifecycle_stage="customer")
        for n in range(4)
    ]
    campaign = _launched(client, marketer, holdout_percent=50, budget="50.00")
    with sessions() as s:
        control = [
            m.customer_id for m in s.scalars(select(CampaignMember).where(CampaignMember.control))
        ]
    treatment = [i for i in ids if i not in control]
    soon = datetime.now(UTC) + timedelta(hours=1)
    _order(sessions, treatment[0], "120.00", OrderStatus.PAID, soon)
    _order(sessions, treatment[1], "999.00", OrderStatus.DRAFT, soon)
    _order(sessions, control[0], "30.00", OrderStatus.PLACED, soon)
    _order(sessions, treatment[1], "77.00", OrderStatus.PAID, soon + timedelta(days=400))

    r = client.get(f"/api/v1/campaigns/{campaign['id']}/results", headers=marketer)

    assert r.status_code == 200
    results = r.json()
    assert (results["treatment"]["members"], results["control"]["members"]) == (2, 2)
    assert (results["treatment"]["conversions"], results["treatment"]["revenue"]) == (1, "120.00")
    assert (results["control"]["conversions"], results["control"]["revenue"]) == (1, "30.00")
    assert results["revenue"] == "120.00"
    assert results["cost_per_conversion"] == "50.00"
    assert results["roi"] == "1.4000"
    assert results["uplift"]["difference"] == 0.0
    assert results["uplift"]["treatment_members"] == 2


def test_bounces_and_deliveries_fed_by_an_integrator_are_counted(
    client: TestClient, marketer: Headers, make_customer: MakeCustomer
) -> None:
    customer_id = make_customer("Ada Lovelace", email="ada@example.com", lifecycle_stage="customer")
    stranger = make_customer("Not Member", lifecycle_stage="lead")
    campaign = _launched(client, marketer)

    ok = client.post(
        f"/api/v1/campaigns/{campaign['id']}/responses",
        json={"customer_id": customer_id, "kind": "delivered"},
        headers=marketer,
    )
    bad = client.post(
        f"/api/v1/campaigns/{campaign['id']}/responses",
        json={"customer_id": stranger, "kind": "bounced"},
        headers=marketer,
    )
    odd = client.post(
        f"/api/v1/campaigns/{campaign['id']}/responses",
        json={"customer_id": customer_id, "kind": "converted"},
        headers=marketer,
    )

    assert ok.status_code == 201
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "customer_id"]
    assert odd.status_code == 422
    results = client.get(f"/api/v1/campaigns/{campaign['id']}/results", headers=marketer).json()
    assert results["treatment"]["counts"]["delivered"] == 1


def test_sales_reads_campaigns_but_cannot_send(
    client: TestClient, marketer: Headers, login: Any, make_customer: MakeCustomer
) -> None:
    make_customer("Ada Lovelace", lifecycle_stage="customer")
    campaign = _launched(client, marketer)
    sales = login("sales")

    assert client.get(f"/api/v1/campaigns/{campaign['id']}", headers=sales).status_code == 200
    assert client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=sales).status_code == 403


def test_timeline_lists_a_customers_responses_newest_first(
    client: TestClient,
    marketer: Headers,
    make_customer: MakeCustomer,
    smtp: Sink,
    sessions: sessionmaker[Session],
) -> None:
    customer_id = make_customer("Ada Lovelace", email="ada@example.com", lifecycle_stage="customer")
    campaign = _launched(client, marketer)
    client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)
    client.get(PIXEL.search(smtp.received[0].html).group(1))  # type: ignore[union-attr]

    with sessions() as s:
        entries = service.timeline_entries(session=s, customer_id=customer_id, limit=10)

    assert [str(e.title) for e in entries] == ["Spring sale: opened", "Spring sale: sent"]
    assert all(e.kind == "campaign" for e in entries)


def test_a_retried_create_with_the_same_idempotency_key_makes_one_campaign(
    client: TestClient, marketer: Headers, sessions: sessionmaker[Session]
) -> None:
    segment_id = _segment(client, marketer)
    body = {"name": "Once", "segment_id": segment_id, "subject_template": "S", "body_template": "B"}
    headers = {**marketer, "Idempotency-Key": "create-once-1"}

    first = client.post("/api/v1/campaigns", json=body, headers=headers)
    again = client.post("/api/v1/campaigns", json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert _count(sessions, Campaign) == 1


def test_a_scheduled_campaign_whose_start_has_come_is_sent(
    client: TestClient,
    marketer: Headers,
    make_customer: MakeCustomer,
    smtp: Sink,
    sessions: sessionmaker[Session],
) -> None:
    make_customer("Ada Lovelace", email="ada@example.com", lifecycle_stage="customer")
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    campaign = _launched(client, marketer, starts_at=later)
    with unit_of_work(sessions) as s:
        stored = s.get(Campaign, campaign["id"])
        assert stored is not None
        stored.starts_at = datetime.now(UTC) - timedelta(minutes=1)

    r = client.post(f"/api/v1/campaigns/{campaign['id']}/send", headers=marketer)

    assert r.status_code == 202 and r.json()["queued"] == 1
    assert (
        client.get(f"/api/v1/campaigns/{campaign['id']}", headers=marketer).json()["status"]
        == "running"
    )
    assert len(smtp.received) == 1
