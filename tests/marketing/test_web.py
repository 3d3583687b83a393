"""Marketing pages: the segment builder's live count and preview, the campaign form and
its template preview, launching and sending from the campaign page, members and results."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.marketing.models import Campaign, Segment
from tests.conftest import MakeUser, web_sign_in
from tests.marketing.conftest import MakeCustomer, Sink


def _marketer(client: TestClient, make_user: MakeUser) -> str:
    return web_sign_in(client, make_user("marketing"))


def test_the_builder_shows_a_live_count_and_the_first_members(
    client: TestClient, make_user: MakeUser, make_customer: MakeCustomer
) -> None:
    csrf = _marketer(client, make_user)
    make_customer("Ada Lovelace", lifecycle_stage="customer")
    make_customer("Bob Lead", lifecycle_stage="lead")

    page = client.get("/segments/new")
    preview = client.post(
        "/segments/preview",
        data={
            "match": "all",
            "field": ["lifecycle_stage", ""],
            "op": ["in", "eq"],
            "value": ["customer, churned", ""],
        },
        headers={"X-CSRF-Token": csrf},
    )
    wrong = client.post(
        "/segments/preview",
        data={"field": "shoe_size", "op": "eq", "value": "42"},
        headers={"X-CSRF-Token": csrf},
    )

    assert page.status_code == 200 and 'hx-post="/segments/preview"' in page.text
    assert preview.status_code == 200
    assert "<strong>1</strong>" in preview.text and "Ada Lovelace" in preview.text
    assert "Bob Lead" not in preview.text
    assert "shoe_size" in wrong.text


def test_saving_a_segment_from_the_builder_and_refusing_a_bad_one(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    csrf = _marketer(client, make_user)

    bad = client.post(
        "/segments/new",
        data={
            "csrf_token": csrf,
            "name": "Bad",
            "field": "total_spent",
            "op": "gte",
            "value": "lots",
        },
    )
    good = client.post(
        "/segments/new",
        data={
            "csrf_token": csrf,
            "name": "Rich",
            "field": "total_spent",
            "op": "gte",
            "value": "100",
        },
        follow_redirects=False,
    )

    assert bad.status_code == 422 and "total_spent" in bad.text
    assert good.status_code == 303
    with sessions() as s:
        [segment] = s.scalars(select(Segment)).all()
    assert segment.definition == {"all": [{"field": "total_spent", "op": "gte", "value": "100"}]}
    assert good.headers["location"] == f"/segments/{segment.id}"


def test_a_campaign_is_created_launched_sent_and_its_results_shown(
    client: TestClient,
    make_user: MakeUser,
    make_customer: MakeCustomer,
    smtp: Sink,
    sessions: sessionmaker[Session],
) -> None:
    csrf = _marketer(client, make_user)
    make_customer("Ada Lovelace", email="ada@example.com", lifecycle_stage="customer")
    client.post(
        "/segments/new",
        data={"csrf_token": csrf, "name": "All", "field": "", "op": "eq", "value": ""},
    )
    with sessions() as s:
        segment_id = s.scalar(select(Segment.id))
    form = {
        "csrf_token": csrf,
        "name": "Winter",
        "segment_id": str(segment_id),
        "channel": "email",
        "budget": "25.00",
        "currency": "EUR",
        "holdout_percent": "0",
        "attribution_days": "30",
        "subject_template": "Winter for {{ first_name }}",
        "body_template": "Hello {{ name }}",
    }

    preview = client.post("/campaigns/preview", data=form, headers={"X-CSRF-Token": csrf})
    broken = client.post("/campaigns/new", data={**form, "body_template": "{{ nope }}"})
    created = client.post("/campaigns/new", data=form, follow_redirects=False)
    with sessions() as s:
        campaign_id = s.scalar(select(Campaign.id))
    launched = client.post(
        f"/campaigns/{campaign_id}/launch", data={"csrf_token": csrf}, follow_redirects=False
    )
    sent = client.post(
        f"/campaigns/{campaign_id}/send", data={"csrf_token": csrf}, follow_redirects=False
    )
    detail = client.get(f"/campaigns/{campaign_id}")
    members = client.get(f"/campaigns/{campaign_id}/members")
    results = client.get(f"/campaigns/{campaign_id}/results")
    chart = client.get(f"/campaigns/{campaign_id}/results.svg")

    assert "Winter for Ada" in preview.text
    assert broken.status_code == 422 and "nope" in broken.text
    assert created.status_code == 303 and launched.status_code == 303 and sent.status_code == 303
    assert [m.message["Subject"] for m in smtp.received] == ["Winter for Ada"]
    assert "running" in detail.text
    assert "Ada Lovelace" in members.text and "sent" in members.text
    assert 'id="row-sent"' in results.text
    assert chart.headers["content-type"] == "image/svg+xml" and b"<svg" in chart.content
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 1


def test_launching_an_empty_segment_from_the_page_says_why(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    csrf = _marketer(client, make_user)
    client.post(
        "/segments/new",
        data={
            "csrf_token": csrf,
            "name": "Nobody",
            "field": "kind",
            "op": "eq",
            "value": "company",
        },
    )
    with sessions() as s:
        segment_id = s.scalar(select(Segment.id))
    client.post(
        "/campaigns/new",
        data={
            "csrf_token": csrf,
            "name": "Empty",
            "segment_id": str(segment_id),
            "channel": "event",
        },
    )
    with sessions() as s:
        campaign_id = s.scalar(select(Campaign.id))

    r = client.post(f"/campaigns/{campaign_id}/launch", data={"csrf_token": csrf})

    assert r.status_code == 409 and "no members" in r.text
    with sessions() as s:
        assert s.get(Campaign, campaign_id).status == "draft"  # type: ignore[union-attr]


def test_support_sees_campaigns_but_no_segment_pages(
    client: TestClient, make_user: MakeUser
) -> None:
    web_sign_in(client, make_user("support"))

    assert client.get("/campaigns").status_code == 200
    assert client.get("/segments").status_code == 403


def test_a_segment_is_edited_in_the_builder_and_a_stale_form_is_refused(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    csrf = _marketer(client, make_user)
    client.post(
        "/segments/new",
        data={
            "csrf_token": csrf,
            "name": "Leads",
            "field": "lifecycle_stage",
            "op": "eq",
            "value": "lead",
        },
    )
    with sessions() as s:
        segment = s.scalars(select(Segment)).one()

    form = client.get(f"/segments/{segment.id}/edit")
    edited = client.post(
        f"/segments/{segment.id}/edit",
        data={
            "csrf_token": csrf,
            "version": "1",
            "name": "Prospects",
            "match": "any",
            "field": ["lifecycle_stage", "tags"],
            "op": ["in", "contains"],
            "value": ["prospect, lead", "hot"],
        },
        follow_redirects=False,
    )
    stale = client.post(
        f"/segments/{segment.id}/edit",
        data={
            "csrf_token": csrf,
            "version": "1",
            "name": "Late",
            "field": "",
            "op": "eq",
            "value": "",
        },
    )

    assert form.status_code == 200 and 'value="lead"' in form.text
    assert edited.status_code == 303
    assert stale.status_code == 409
    with sessions() as s:
        stored = s.get(Segment, segment.id)
        assert stored is not None
        assert stored.name == "Prospects"
        assert stored.definition == {
            "any": [
                {"field": "lifecycle_stage", "op": "in", "value": ["prospect", "lead"]},
                {"field": "tags", "op": "contains", "value": "hot"},
            ]
        }


def test_a_running_campaign_is_edited_but_its_members_stay_fixed(
    client: TestClient,
    make_user: MakeUser,
    make_customer: MakeCustomer,
    sessions: sessionmaker[Session],
) -> None:
    csrf = _marketer(client, make_user)
    make_customer("Ada Lovelace", lifecycle_stage="customer")
    client.post(
        "/segments/new",
        data={"csrf_token": csrf, "name": "All", "field": "", "op": "eq", "value": ""},
    )
    with sessions() as s:
        segment_id = s.scalar(select(Segment.id))
    client.post(
        "/campaigns/new",
        data={
            "csrf_token": csrf,
            "name": "Fair",
            "segment_id": str(segment_id),
            "channel": "event",
            "budget": "10.00",
        },
    )
    with sessions() as s:
        campaign = s.scalars(select(Campaign)).one()
    client.post(f"/campaigns/{campaign.id}/launch", data={"csrf_token": csrf})

    form = client.get(f"/campaigns/{campaign.id}/edit")
    edited = client.post(
        f"/campaigns/{campaign.id}/edit",
        data={
            "csrf_token": csrf,
            "version": "2",
            "name": "Autumn fair",
            "budget": "12.50",
            "attribution_days": "14",
        },
        follow_redirects=False,
    )
    stale = client.post(
        f"/campaigns/{campaign.id}/edit",
        data={
            "csrf_token": csrf,
            "version": "2",
            "name": "Late",
            "budget": "1.00",
            "attribution_days": "1",
        },
    )

    assert form.status_code == 200 and 'name="segment_id"' not in form.text
    assert edited.status_code == 303
    assert stale.status_code == 409
    with sessions() as s:
        stored = s.get(Campaign, campaign.id)
        assert stored is not None
        assert (stored.name, str(stored.budget), stored.attribution_days) == (
            "Autumn fair",
            "12.5000",
            14,
        )
        assert stored.segment_id == segment_id and stored.status == "running"
