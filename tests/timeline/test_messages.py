"""What the timeline says: every sentence a source gives has a Chinese translation, the
API says it in English and the page in the reader's language."""

# Chinese text uses full-width colons on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import re

from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tenure.core.timeline import Message, TimelineEntry
from tenure.interactions.service import INTERACTION_TITLES
from tenure.marketing.service import RESPONSE_TITLES
from tenure.timeline import service
from tenure.web.i18n import LOCALE_DIR
from tests.conftest import MakeUser, web_sign_in
from tests.pipeline.conftest import Api, MakeApi


def _story(client: TestClient, rep: Api, support: Api, stages: dict[str, int], product: int) -> int:
    """A customer with an opportunity won and ordered, a call, a task and a ticket."""
    customer = rep.customer()
    opp = rep.opportunity(customer, title="Fleet")
    for url, body in (
        (f"/api/v1/opportunities/{opp['id']}/move", {"stage_id": stages["Won"]}),
        (
            f"/api/v1/opportunities/{opp['id']}/order",
            {"lines": [{"product_id": product, "quantity": 1}]},
        ),
        (
            "/api/v1/interactions",
            {
                "customer_id": customer,
                "kind": "call",
                "subject": "Kick-off",
                "body": "Went well.",
                "duration_minutes": 30,
            },
        ),
        (
            "/api/v1/tasks",
            {"title": "Invoice", "customer_id": customer, "due_at": "2030-01-31T09:00:00Z"},
        ),
    ):
        r = client.post(url, json=body, headers=rep.headers)
        assert r.status_code in (200, 201), r.text
    ticket = {
        "customer_id": customer,
        "type": "complaint",
        "subject": "Late delivery",
        "description": "Two weeks late.",
    }
    r = client.post("/api/v1/tickets", json=ticket, headers=support.headers)
    assert r.status_code == 201, r.text
    return customer


def _messages(entries: list[TimelineEntry]) -> set[str]:
    return {
        text.msgid for e in entries for text in (e.title, e.detail) if isinstance(text, Message)
    }


def test_every_sentence_of_every_source_has_a_chinese_translation(
    client: TestClient, session: Session, api: MakeApi, stages: dict[str, int], product: int
) -> None:
    customer = _story(client, api("sales"), api("support"), stages, product)
    entries = service.page(session=session, customer_id=customer, role="admin", limit=100).entries
    said = _messages(entries) | {
        *service.CHANGE_TITLES.values(),
        *INTERACTION_TITLES.values(),
        *RESPONSE_TITLES.values(),
    }
    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")

    untranslated = sorted(
        m for m in said if not (m in catalog and catalog[m].string and not catalog[m].fuzzy)
    )

    assert {e.kind for e in entries} == {
        "order",
        "opportunity",
        "interaction",
        "task",
        "ticket",
        "change",
    }
    assert untranslated == []


def test_the_api_speaks_english_and_the_page_the_readers_language(
    client: TestClient, api: MakeApi, make_user: MakeUser, stages: dict[str, int], product: int
) -> None:
    rep = api("sales")
    customer = _story(client, rep, api("support"), stages, product)

    items = rep.get(f"/api/v1/customers/{customer}/timeline")["items"]
    web_sign_in(client, make_user("admin"))
    page = client.get(f"/customers/{customer}/timeline", headers={"Accept-Language": "zh-CN"})

    said = {(e["title"], e["detail"]) for e in items}
    assert ("Call: Kick-off", "30 min · Went well.") in said
    assert ("Task: Invoice", "due 2030-01-31") in said
    assert ("Opportunity won: Fleet", "1000.00 EUR") in said
    assert ("Opportunity opened: Fleet", "Qualification · 1000.00 EUR") in said
    assert any(
        re.fullmatch(r"Order #\d+", t) and re.fullmatch(r"800\.00 EUR · [a-z]+", d) for t, d in said
    )
    assert page.status_code == 200, page.text
    assert "电话：Kick-off" in page.text
    assert "30 分钟 · Went well." in page.text
    assert "任务：Invoice" in page.text
    assert "截止 2030-01-31" in page.text
    assert "商机赢单：Fleet" in page.text
    assert "€1,000.00" in page.text
    assert "，金额 €800.00" in page.text
    assert "工单已创建：Late delivery" in page.text
    assert "客户已创建" in page.text
