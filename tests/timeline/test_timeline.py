"""The customer timeline: every domain's entries in one stream, newest first, by kind,
page by page, as each role may see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tenure.core.timeline import TimelineEntry
from tenure.timeline import service
from tests.pipeline.conftest import Api, MakeApi


def _timeline(api: Api, customer: int, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.get(f"/api/v1/customers/{customer}/timeline", **params)
    return result


def test_the_timeline_merges_every_domain_newest_first(
    client: TestClient, api: MakeApi, stages: dict[str, int], product: int
) -> None:
    rep = api("sales")
    customer = rep.customer()
    opp = rep.opportunity(customer, title="Fleet")
    client.post(
        f"/api/v1/opportunities/{opp['id']}/move",
        json={"stage_id": stages["Won"]},
        headers=rep.headers,
    )
    client.post(
        f"/api/v1/opportunities/{opp['id']}/order",
        json={"lines": [{"product_id": product, "quantity": 1}]},
        headers=rep.headers,
    )
    client.post(
        "/api/v1/interactions",
        json={
            "customer_id": customer,
            "kind": "call",
            "subject": "Kick-off",
            "duration_minutes": 30,
        },
        headers=rep.headers,
    )
    client.post(
        "/api/v1/tasks", json={"title": "Invoice", "customer_id": customer}, headers=rep.headers
    )
    ticket = client.post(
        "/api/v1/tickets",
        json={
            "customer_id": customer,
            "type": "complaint",
            "subject": "Late delivery",
            "description": "Two weeks late.",
        },
        headers=api("support").headers,
    )
    assert ticket.status_code == 201, ticket.text

    result = _timeline(rep, customer)

    titles = [(e["kind"], e["title"]) for e in result["items"]]
    assert titles == [
        ("ticket", "Ticket opened: Late delivery"),
        ("task", "Task: Invoice"),
        ("interaction", "Call: Kick-off"),
        ("order", titles[3][1]),
        ("opportunity", "Opportunity won: Fleet"),
        ("opportunity", "Opportunity opened: Fleet"),
        ("change", "Customer created"),
    ]
    assert titles[3][1].startswith("Order #")
    assert result["items"][0]["url"] == f"/service-desk/tickets/{ticket.json()['id']}"
    assert result["items"][4]["url"] == f"/opportunities/{opp['id']}"
    assert result["items"][2]["detail"] == "30 min"
    ats = [e["at"] for e in result["items"]]
    assert ats == sorted(ats, reverse=True)
    kinds = ["order", "opportunity", "interaction", "task", "ticket", "campaign", "change"]
    assert result["kinds"] == kinds


def test_the_timeline_filters_by_kind_and_refuses_an_unknown_one(
    client: TestClient, api: MakeApi, stages: dict[str, int]
) -> None:
    rep = api("sales")
    customer = rep.customer()
    rep.opportunity(customer, title="Deal")

    only = _timeline(rep, customer, kind="opportunity")
    r = client.get(
        f"/api/v1/customers/{customer}/timeline", params={"kind": "gossip"}, headers=rep.headers
    )

    assert [e["title"] for e in only["items"]] == ["Opportunity opened: Deal"]
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["query", "kind"]


def test_load_more_walks_back_without_losing_or_repeating_an_entry(
    client: TestClient, api: MakeApi
) -> None:
    rep = api("sales")
    customer = rep.customer()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(7):
        client.post(
            "/api/v1/interactions",
            json={
                "customer_id": customer,
                "kind": "note",
                "subject": f"note {n}",
                # two notes share each moment: a page must not end between them
                "occurred_at": (start + timedelta(days=n // 2)).isoformat(),
            },
            headers=rep.headers,
        )

    seen: list[str] = []
    before = None
    for _ in range(10):
        params: dict[str, Any] = {"kind": "interaction", "limit": 3}
        if before:
            params["before"] = before
        page = _timeline(rep, customer, **params)
        seen += [e["title"] for e in page["items"]]
        before = page["next_before"]
        if before is None:
            break

    assert sorted(seen) == sorted(f"Note: note {n}" for n in range(7))
    assert len(seen) == 7


def test_the_timeline_of_a_customer_out_of_scope_is_not_found(
    client: TestClient, api: MakeApi
) -> None:
    admin, rep = api("admin"), api("sales")
    theirs = admin.customer()

    r = client.get(f"/api/v1/customers/{theirs}/timeline", headers=rep.headers)

    assert r.status_code == 404


def test_a_role_without_tasks_read_sees_no_tasks_and_cannot_ask_for_them(
    client: TestClient, api: MakeApi
) -> None:
    admin, analyst = api("admin"), api("analyst")
    customer = admin.customer()
    client.post(
        "/api/v1/tasks", json={"title": "Secret", "customer_id": customer}, headers=admin.headers
    )

    result = _timeline(analyst, customer)
    r = client.get(
        f"/api/v1/customers/{customer}/timeline", params={"kind": "task"}, headers=analyst.headers
    )

    assert "task" not in result["kinds"]
    assert all(e["kind"] != "task" for e in result["items"])
    assert r.status_code == 422


def test_a_registered_source_joins_the_stream_and_the_kind_filter(
    session: Session, api: MakeApi
) -> None:
    admin = api("admin")
    customer = admin.customer()
    at = datetime(2030, 1, 1, tzinfo=UTC)

    def tickets(*, session: Session, customer_id: int, limit: int) -> list[TimelineEntry]:
        return [TimelineEntry(at=at, kind="ticket", title=f"Ticket for {customer_id}")][:limit]

    service.register("ticket", tickets, "customers:read")
    try:
        result = service.page(session=session, customer_id=customer, role="admin")
        older = service.page(
            session=session, customer_id=customer, role="admin", before=at + timedelta(days=1)
        )
        assert "ticket" in service.kinds(role="admin")
    finally:
        service.SOURCES.pop()

    assert result.entries[0] == TimelineEntry(at=at, kind="ticket", title=f"Ticket for {customer}")
    assert older.entries[0].kind == "ticket"
