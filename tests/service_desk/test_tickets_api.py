"""Tickets over HTTP: priority and service levels, the status flow, replies, assignment,
the queue, satisfaction, and bad input that changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from tenure.audit.models import AuditEntry
from tenure.service_desk.models import Ticket, TicketEvent, TicketMessage
from tests.service_desk.conftest import (
    URL,
    Headers,
    Login,
    make_customer,
    make_order,
    make_ticket,
    me,
)


def _count(engine: Engine, model: type[Any]) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model)) or 0


def _actions(engine: Engine, ticket_id: int) -> list[str]:
    with engine.connect() as conn:
        stmt = (
            select(AuditEntry.action)
            .where(AuditEntry.entity_type == "ticket", AuditEntry.entity_id == str(ticket_id))
            .order_by(AuditEntry.seq)
        )
        return list(conn.scalars(stmt))


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- creating -------------------------------------------------------------------------


def test_a_new_ticket_gets_its_computed_priority_reasons_and_due_times(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    customer = make_customer(client, support)

    t = make_ticket(client, support, customer_id=customer, urgency=4, impact=4, complexity=2)

    assert t["status"] == "new"
    assert t["priority"] == t["computed_priority"] == "P1"
    assert t["priority_reasons"][:3] == [
        "urgency 4: critical",
        "impact 4: the whole business",
        "complexity 2: moderate",
    ]
    opened = _at(t["created_at"])
    assert _at(t["first_response_due_at"]) - opened == timedelta(hours=1)
    assert _at(t["resolution_due_at"]) - opened == timedelta(hours=8)
    assert t["first_response_breached"] is False
    assert [e["kind"] for e in t["events"]] == ["created"]
    assert _actions(engine, t["id"]) == ["ticket.created"]


def test_a_ticket_may_name_an_order_of_its_customer(
    client: TestClient, support: Headers, admin: Headers
) -> None:
    customer = make_customer(client, support)
    order = make_order(client, admin, customer)

    t = make_ticket(client, support, customer_id=customer, order_id=order)

    assert t["order_id"] == order


def test_an_unknown_customer_is_refused_and_nothing_is_created(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    r = client.post(
        URL,
        json={"customer_id": 999_999, "type": "feedback", "subject": "s", "description": "d"},
        headers=support,
    )

    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"] == [
        {"loc": ["body", "customer_id"], "msg": "There is no customer 999999."}
    ]
    assert _count(engine, Ticket) == 0


def test_a_customer_out_of_scope_is_refused_as_unknown(
    client: TestClient, login: Login, admin: Headers, engine: Engine
) -> None:
    manager = login("manager")  # a team scope, and no team: only their own customers
    elsewhere = make_customer(client, admin, "Someone Else's")

    r = client.post(
        URL,
        json={"customer_id": elsewhere, "type": "feedback", "subject": "s", "description": "d"},
        headers=manager,
    )

    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "customer_id"]
    assert _count(engine, Ticket) == 0


def test_an_order_of_another_customer_is_refused(
    client: TestClient, support: Headers, admin: Headers, engine: Engine
) -> None:
    customer = make_customer(client, support, "Ada")
    other = make_customer(client, support, "Grace")
    order = make_order(client, admin, other)

    r = client.post(
        URL,
        json={
            "customer_id": customer,
            "order_id": order,
            "type": "complaint",
            "subject": "s",
            "description": "d",
        },
        headers=support,
    )

    assert r.status_code == 422
    assert r.json()["errors"] == [
        {
            "loc": ["body", "order_id"],
            "msg": f"Order {order} is not an order of customer {customer}.",
        }
    ]
    assert _count(engine, Ticket) == 0


def test_an_unknown_order_is_refused(client: TestClient, support: Headers, engine: Engine) -> None:
    customer = make_customer(client, support)

    r = client.post(
        URL,
        json={
            "customer_id": customer,
            "order_id": 424242,
            "type": "complaint",
            "subject": "s",
            "description": "d",
        },
        headers=support,
    )

    assert r.status_code == 422
    assert r.json()["errors"][0]["msg"] == "There is no order 424242."
    assert _count(engine, Ticket) == 0


def test_an_urgency_out_of_range_is_refused(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    customer = make_customer(client, support)

    r = client.post(
        URL,
        json={
            "customer_id": customer,
            "type": "feedback",
            "subject": "s",
            "description": "d",
            "urgency": 5,
        },
        headers=support,
    )

    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "urgency"]
    assert _count(engine, Ticket) == 0


def test_an_urgency_out_of_range_in_an_update_changes_nothing(
    client: TestClient, support: Headers
) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))

    r = client.patch(f"{URL}/{t['id']}", json={"urgency": 0}, headers=support)

    assert r.status_code == 422
    assert client.get(f"{URL}/{t['id']}", headers=support).json()["urgency"] == 2


# --- status ---------------------------------------------------------------------------


def test_the_status_follows_the_flow_and_a_resolved_ticket_can_be_reopened(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))
    path = f"{URL}/{t['id']}"

    for status in ("open", "pending", "resolved"):
        r = client.patch(path, json={"status": status}, headers=support)
        assert r.status_code == 200, r.text
    assert r.json()["resolved_at"] is not None
    r = client.patch(path, json={"status": "open", "reason": "still leaks"}, headers=support)

    assert r.status_code == 200
    assert r.json()["status"] == "open"
    assert r.json()["resolved_at"] is None
    statuses = [(e["from_value"], e["to_value"]) for e in r.json()["events"][1:]]
    assert statuses == [
        ("new", "open"),
        ("open", "pending"),
        ("pending", "resolved"),
        ("resolved", "open"),
    ]
    assert r.json()["events"][-1]["reason"] == "still leaks"
    assert _actions(engine, t["id"]).count("ticket.status_changed") == 4


def test_an_illegal_transition_is_refused_and_changes_nothing(
    client: TestClient, support: Headers
) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))

    r = client.patch(f"{URL}/{t['id']}", json={"status": "closed"}, headers=support)

    assert r.status_code == 409
    body = r.json()
    assert body["type"] == "urn:tenure:problem:illegal-transition"
    assert body["detail"] == (
        "A ticket that is new cannot become closed; allowed: open, pending, resolved."
    )
    after = client.get(f"{URL}/{t['id']}", headers=support).json()
    assert after["status"] == "new"
    assert after["version"] == t["version"]


def test_a_stale_if_match_is_refused(client: TestClient, support: Headers) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))
    client.patch(f"{URL}/{t['id']}", json={"subject": "First"}, headers=support)

    r = client.patch(
        f"{URL}/{t['id']}",
        json={"subject": "Second"},
        headers={**support, "If-Match": f'"{t["version"]}"'},
    )

    assert r.status_code == 412
    assert client.get(f"{URL}/{t['id']}", headers=support).json()["subject"] == "First"


# --- replies --------------------------------------------------------------------------


def test_the_first_public_reply_answers_the_ticket_and_a_note_does_not(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))
    path = f"{URL}/{t['id']}"

    note = client.post(
        f"{path}/messages", json={"body": "Check the seal", "internal": True}, headers=support
    )
    after_note = client.get(path, headers=support).json()
    reply = client.post(f"{path}/messages", json={"body": "We send a new one."}, headers=support)
    after = client.get(path, headers=support).json()

    assert note.status_code == reply.status_code == 201
    assert after_note["first_responded_at"] is None
    assert after_note["status"] == "new"
    assert after["first_responded_at"] == reply.json()["created_at"]
    assert after["status"] == "open"
    assert [(m["internal"], m["body"]) for m in after["messages"]] == [
        (True, "Check the seal"),
        (False, "We send a new one."),
    ]
    assert _actions(engine, t["id"]).count("ticket.replied") == 2


def test_an_empty_reply_is_refused(client: TestClient, support: Headers, engine: Engine) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))

    r = client.post(f"{URL}/{t['id']}/messages", json={"body": "   "}, headers=support)

    assert r.status_code == 422
    assert _count(engine, TicketMessage) == 0


# --- priority -------------------------------------------------------------------------


def test_an_override_with_a_reason_moves_the_due_times_and_is_kept_in_the_history(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))
    assert t["priority"] == "P3"

    r = client.post(
        f"{URL}/{t['id']}/priority",
        json={"priority": "P1", "reason": "Key account, press is asking"},
        headers=support,
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["priority"], body["computed_priority"]) == ("P1", "P3")
    assert body["priority_reasons"][-1] == "overridden to P1: Key account, press is asking"
    assert _at(body["first_response_due_at"]) - _at(body["created_at"]) == timedelta(hours=1)
    event = body["events"][-1]
    assert (event["kind"], event["from_value"], event["to_value"], event["reason"]) == (
        "priority_override",
        "P3",
        "P1",
        "Key account, press is asking",
    )
    assert event["actor_id"] == me(client, support)["id"]
    assert "ticket.priority_overridden" in _actions(engine, t["id"])


def test_an_override_without_a_reason_is_refused(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))

    missing = client.post(f"{URL}/{t['id']}/priority", json={"priority": "P1"}, headers=support)
    blank = client.post(
        f"{URL}/{t['id']}/priority", json={"priority": "P1", "reason": "  "}, headers=support
    )

    assert missing.status_code == 422
    assert blank.status_code == 422
    assert blank.json()["type"] == "urn:tenure:problem:override-reason-required"
    assert client.get(f"{URL}/{t['id']}", headers=support).json()["priority"] == "P3"
    assert _count(engine, TicketEvent) == 1  # created only


def test_changing_the_ratings_recomputes_the_priority_and_due_times(
    client: TestClient, support: Headers
) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))

    r = client.patch(f"{URL}/{t['id']}", json={"urgency": 4, "impact": 4}, headers=support)

    body = r.json()
    assert body["priority"] == "P1"
    assert _at(body["resolution_due_at"]) - _at(body["created_at"]) == timedelta(hours=8)


# --- service level policies -----------------------------------------------------------


def test_an_admin_changes_a_policy_and_new_tickets_follow_it(
    client: TestClient, admin: Headers, support: Headers, engine: Engine
) -> None:
    r = client.patch(
        "/api/v1/sla-policies/P3",
        json={"first_response_minutes": 30, "resolution_minutes": 600},
        headers=admin,
    )
    t = make_ticket(client, support, customer_id=make_customer(client, support))

    assert r.status_code == 200, r.text
    assert r.json()["first_response_minutes"] == 30
    assert _at(t["first_response_due_at"]) - _at(t["created_at"]) == timedelta(minutes=30)
    listed = client.get("/api/v1/sla-policies", headers=support).json()
    assert [(p["priority"], p["resolution_minutes"]) for p in listed] == [
        ("P1", 480),
        ("P2", 1440),
        ("P3", 600),
        ("P4", 7200),
    ]
    with engine.connect() as conn:
        assert (
            conn.scalar(select(func.count()).where(AuditEntry.action == "sla_policy.updated")) == 1
        )


def test_only_service_admins_change_policies(client: TestClient, support: Headers) -> None:
    r = client.patch("/api/v1/sla-policies/P1", json={"resolution_minutes": 1}, headers=support)

    assert r.status_code == 403
    assert (
        client.get("/api/v1/sla-policies", headers=support).json()[0]["resolution_minutes"] == 480
    )


def test_a_bad_policy_value_is_refused(client: TestClient, admin: Headers) -> None:
    r = client.patch("/api/v1/sla-policies/P1", json={"resolution_minutes": 0}, headers=admin)
    unknown = client.patch("/api/v1/sla-policies/P9", json={"resolution_minutes": 5}, headers=admin)

    assert r.status_code == 422
    assert unknown.status_code == 422
    assert client.get("/api/v1/sla-policies", headers=admin).json()[0]["resolution_minutes"] == 480


# --- the queue ------------------------------------------------------------------------


def test_the_queue_is_ordered_by_priority_then_due_time(
    client: TestClient, support: Headers
) -> None:
    customer = make_customer(client, support)
    now = datetime.now().astimezone()
    late_p3 = make_ticket(client, support, customer_id=customer, subject="late P3")
    early_p3 = make_ticket(
        client,
        support,
        customer_id=customer,
        subject="early P3",
        opened_at=(now - timedelta(hours=2)).isoformat(),
    )
    p1 = make_ticket(client, support, customer_id=customer, subject="P1", urgency=4, impact=4)
    p4 = make_ticket(client, support, customer_id=customer, subject="P4", urgency=1, impact=1)

    r = client.get(URL, headers=support)

    assert [t["subject"] for t in r.json()["items"]] == ["P1", "early P3", "late P3", "P4"]
    assert {late_p3["id"], early_p3["id"], p1["id"], p4["id"]} == {
        t["id"] for t in r.json()["items"]
    }


def test_the_queue_filters(client: TestClient, support: Headers, login: Login) -> None:
    customer = make_customer(client, support, "Ada")
    other = make_customer(client, support, "Grace")
    mine = make_ticket(client, support, customer_id=customer, subject="mine")
    client.post(
        f"{URL}/{mine['id']}/assign",
        json={"assignee_id": me(client, support)["id"]},
        headers=support,
    )
    make_ticket(client, support, customer_id=other, subject="feedback", type="feedback")
    late = make_ticket(
        client,
        support,
        customer_id=customer,
        subject="late",
        opened_at=(datetime.now().astimezone() - timedelta(days=10)).isoformat(),
    )
    done = make_ticket(client, support, customer_id=other, subject="done")
    client.patch(f"{URL}/{done['id']}", json={"status": "resolved"}, headers=support)

    def subjects(**params: Any) -> list[str]:
        r = client.get(URL, params=params, headers=support)
        assert r.status_code == 200, r.text
        return sorted(t["subject"] for t in r.json()["items"])

    assert subjects(mine="true") == ["mine"]
    assert subjects(unassigned="true") == ["done", "feedback", "late"]
    assert subjects(breached="true") == ["late"]
    assert subjects(type="feedback") == ["feedback"]
    assert subjects(status="resolved") == ["done"]
    assert subjects(status="active") == ["feedback", "late", "mine"]
    assert subjects(customer_id=customer) == ["late", "mine"]
    assert client.get(f"{URL}/{late['id']}", headers=support).json()["resolution_breached"]


def test_sales_see_only_the_tickets_of_their_customers(
    client: TestClient, support: Headers, login: Login, admin: Headers
) -> None:
    sales = login("sales")
    theirs = make_customer(client, sales, "Their Customer")
    other = make_customer(client, admin, "Not Theirs")
    make_ticket(client, support, customer_id=theirs, subject="theirs")
    hidden = make_ticket(client, support, customer_id=other, subject="hidden")

    listed = client.get(URL, headers=sales).json()["items"]
    direct = client.get(f"{URL}/{hidden['id']}", headers=sales)
    write = client.post(f"{URL}/{hidden['id']}/messages", json={"body": "x"}, headers=sales)

    assert [t["subject"] for t in listed] == ["theirs"]
    assert direct.status_code == 404
    assert write.status_code == 403


# --- assignment -----------------------------------------------------------------------


def test_bulk_assign_assigns_every_ticket(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    customer = make_customer(client, support)
    ids = [make_ticket(client, support, customer_id=customer)["id"] for _ in range(3)]
    agent = me(client, support)["id"]

    r = client.post(
        f"{URL}/bulk-assign", json={"ticket_ids": ids, "assignee_id": agent}, headers=support
    )

    assert r.status_code == 200, r.text
    assert [t["assignee_id"] for t in r.json()] == [agent] * 3
    assert all("ticket.assigned" in _actions(engine, i) for i in ids)


def test_bulk_assign_with_an_unknown_ticket_assigns_none(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    ticket = make_ticket(client, support, customer_id=make_customer(client, support))
    agent = me(client, support)["id"]

    r = client.post(
        f"{URL}/bulk-assign",
        json={"ticket_ids": [ticket["id"], 777777], "assignee_id": agent},
        headers=support,
    )

    assert r.status_code == 422
    assert r.json()["detail"] == "There is no ticket 777777; nothing was assigned."
    assert client.get(f"{URL}/{ticket['id']}", headers=support).json()["assignee_id"] is None


def test_a_ticket_cannot_go_to_someone_who_cannot_work_on_tickets(
    client: TestClient, support: Headers, login: Login, make_user: Any
) -> None:
    ticket = make_ticket(client, support, customer_id=make_customer(client, support))
    analyst = make_user("analyst")

    r = client.post(
        f"{URL}/{ticket['id']}/assign", json={"assignee_id": analyst.id}, headers=support
    )

    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "assignee_id"]


def test_sales_cannot_assign(client: TestClient, login: Login, support: Headers) -> None:
    sales = login("sales")
    customer = make_customer(client, sales)
    ticket = make_ticket(client, support, customer_id=customer)

    r = client.post(f"{URL}/{ticket['id']}/assign", json={"assignee_id": None}, headers=sales)

    assert r.status_code == 403


# --- satisfaction ---------------------------------------------------------------------


def _resolved(client: TestClient, headers: Headers) -> dict[str, Any]:
    t = make_ticket(client, headers, customer_id=make_customer(client, headers))
    r = client.patch(f"{URL}/{t['id']}", json={"status": "resolved"}, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_satisfaction_is_recorded_once_on_a_resolved_ticket(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    t = _resolved(client, support)

    first = client.post(
        f"{URL}/{t['id']}/satisfaction", json={"rating": 4, "comment": "Quick"}, headers=support
    )
    again = client.post(f"{URL}/{t['id']}/satisfaction", json={"rating": 1}, headers=support)

    assert first.status_code == 200, first.text
    assert (first.json()["satisfaction_rating"], first.json()["satisfaction_comment"]) == (
        4,
        "Quick",
    )
    assert again.status_code == 409
    assert client.get(f"{URL}/{t['id']}", headers=support).json()["satisfaction_rating"] == 4
    assert "ticket.satisfaction_recorded" in _actions(engine, t["id"])


def test_satisfaction_out_of_range_is_refused(client: TestClient, support: Headers) -> None:
    t = _resolved(client, support)

    for rating in (0, 6):
        r = client.post(f"{URL}/{t['id']}/satisfaction", json={"rating": rating}, headers=support)
        assert r.status_code == 422
    assert client.get(f"{URL}/{t['id']}", headers=support).json()["satisfaction_rating"] is None


def test_satisfaction_before_resolution_is_refused(client: TestClient, support: Headers) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))

    r = client.post(f"{URL}/{t['id']}/satisfaction", json={"rating": 5}, headers=support)
    link = client.post(f"{URL}/{t['id']}/survey-link", headers=support)

    assert r.status_code == 409
    assert r.json()["type"] == "urn:tenure:problem:satisfaction-not-open"
    assert link.status_code == 409


# --- trash ----------------------------------------------------------------------------


def test_a_trashed_ticket_leaves_the_queue_and_can_be_restored(
    client: TestClient, support: Headers
) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))

    gone = client.delete(f"{URL}/{t['id']}", headers=support)
    listed = client.get(URL, headers=support).json()["items"]
    trash = client.get(URL, params={"trashed": "true"}, headers=support).json()["items"]
    back = client.post(f"{URL}/{t['id']}/restore", headers=support)

    assert gone.status_code == 204
    assert listed == []
    assert [x["id"] for x in trash] == [t["id"]]
    assert back.status_code == 200
    assert client.get(f"{URL}/{t['id']}", headers=support).status_code == 200


# --- retries, history and figures -----------------------------------------------------


def test_a_retried_create_with_the_same_idempotency_key_makes_one_ticket(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    customer = make_customer(client, support)
    body = {"customer_id": customer, "type": "feedback", "subject": "s", "description": "d"}
    headers = {**support, "Idempotency-Key": "ticket-retry-1"}

    first = client.post(URL, json=body, headers=headers)
    again = client.post(URL, json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert _count(engine, Ticket) == 1


def test_a_ticket_cannot_be_opened_in_the_future(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    customer = make_customer(client, support)
    later = (datetime.now().astimezone() + timedelta(days=1)).isoformat()

    r = client.post(
        URL,
        json={
            "customer_id": customer,
            "type": "feedback",
            "subject": "s",
            "description": "d",
            "opened_at": later,
        },
        headers=support,
    )

    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "opened_at"]
    assert _count(engine, Ticket) == 0


def test_every_change_is_in_the_audit_log_and_the_history(
    client: TestClient, support: Headers, engine: Engine
) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))
    path = f"{URL}/{t['id']}"
    agent = me(client, support)["id"]

    client.patch(path, json={"subject": "The kettle leaks badly"}, headers=support)
    client.post(f"{path}/assign", json={"assignee_id": agent}, headers=support)
    client.post(f"{path}/priority", json={"priority": "P2", "reason": "Repeat"}, headers=support)
    client.post(f"{path}/messages", json={"body": "Sorry to hear that."}, headers=support)
    client.patch(path, json={"status": "resolved"}, headers=support)
    client.post(f"{path}/satisfaction", json={"rating": 3}, headers=support)
    history = client.get(path, headers=support).json()["events"]

    assert _actions(engine, t["id"]) == [
        "ticket.created",
        "ticket.updated",
        "ticket.assigned",
        "ticket.priority_overridden",
        "ticket.replied",
        "ticket.status_changed",
        "ticket.status_changed",
        "ticket.satisfaction_recorded",
    ]
    assert [(e["kind"], e["to_value"]) for e in history] == [
        ("created", "new"),
        ("assigned", str(agent)),
        ("priority_override", "P2"),
        ("status", "open"),
        ("status", "resolved"),
    ]
    assert {e["actor_id"] for e in history} == {agent}


def test_the_figures_over_http(client: TestClient, support: Headers, login: Login) -> None:
    t = make_ticket(client, support, customer_id=make_customer(client, support))
    client.post(f"{URL}/{t['id']}/messages", json={"body": "On it."}, headers=support)
    client.patch(f"{URL}/{t['id']}", json={"status": "resolved"}, headers=support)
    client.post(f"{URL}/{t['id']}/satisfaction", json={"rating": 5}, headers=support)

    r = client.get("/api/v1/service-desk/figures", params={"period": "month"}, headers=support)
    sales = client.get("/api/v1/service-desk/figures", headers=login("sales"))
    backwards = client.get(
        "/api/v1/service-desk/figures",
        params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        headers=support,
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tickets"] == 1
    assert body["csat"] == {"count": 1, "mean": 5.0, "median": 5.0, "std": 0.0}
    assert body["sla_compliance"] == 1.0
    assert body["complaints_by_category"] == {"no order": 1}
    assert body["first_response_minutes"]["count"] == 1
    assert [g["tickets"] for g in body["per_period"]] == [1]
    assert sales.json()["tickets"] == 0  # not one of their customers
    assert backwards.status_code == 422


def test_an_erasure_removes_what_the_customers_tickets_say(
    client: TestClient, support: Headers, admin: Headers, engine: Engine
) -> None:
    customer = make_customer(client, support)
    t = make_ticket(client, support, customer_id=customer, subject="Ada's broken kettle")
    client.post(f"{URL}/{t['id']}/messages", json={"body": "Call Ada on 555-0100"}, headers=support)
    client.patch(f"{URL}/{t['id']}", json={"description": "Lives at 12 Main St"}, headers=support)

    r = client.post(f"/api/v1/customers/{customer}/erase", headers=admin)

    assert r.status_code == 200, r.text
    after = client.get(f"{URL}/{t['id']}", headers=support).json()
    assert (after["subject"], after["description"]) == ("[erased]", "[erased]")
    assert [m["body"] for m in after["messages"]] == ["[erased]"]
    assert after["type"] == "complaint"
    with engine.connect() as conn:
        logged = " ".join(str(v) for v in conn.execute(select(AuditEntry.changes)).scalars())
    assert "12 Main St" not in logged
    assert "ticket.erased" in _actions(engine, t["id"])
