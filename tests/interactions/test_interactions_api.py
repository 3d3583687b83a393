"""Interactions and tasks over HTTP: logging, filters, scope, completion, the trash, and
refusals that leave nothing behind."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from tenure.audit.models import AuditEntry
from tenure.interactions.models import Interaction, Task
from tests.pipeline.conftest import MakeApi

URL = "/api/v1/interactions"
TASKS = "/api/v1/tasks"


def _count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model)) or 0


def _actions(engine: Engine, entity_type: str) -> list[str]:
    with engine.connect() as conn:
        stmt = (
            select(AuditEntry.action)
            .where(AuditEntry.entity_type == entity_type)
            .order_by(AuditEntry.seq)
        )
        return list(conn.scalars(stmt))


def test_a_logged_call_has_its_author_duration_and_links(
    client: TestClient, api: MakeApi, stages: dict[str, int]
) -> None:
    rep = api("sales")
    customer, other = rep.customer(), rep.customer("Other")
    opp = rep.opportunity(customer)
    tickets = [
        client.post(
            "/api/v1/tickets",
            json={
                "customer_id": c,
                "type": "consultation",
                "subject": "Pricing",
                "description": "?",
            },
            headers=api("support").headers,
        ).json()["id"]
        for c in (customer, other)
    ]
    call = {
        "customer_id": customer,
        "kind": "call",
        "subject": "Pricing questions",
        "ticket_id": tickets[1],
    }
    # A ticket of another customer, or none at all: refused, nothing logged.
    for ticket_id, said in ((tickets[1], "is not one of this customer's"), (999999, "no ticket")):
        r = client.post(URL, json={**call, "ticket_id": ticket_id}, headers=rep.headers)
        assert r.status_code == 422, r.text
        assert said in r.json()["detail"]
    assert client.get(URL, headers=rep.headers).json()["items"] == []

    r = client.post(
        URL,
        json={
            "customer_id": customer,
            "kind": "call",
            "subject": "Pricing questions",
            "body": "Wants a discount for 3 years.",
            "occurred_at": "2026-11-20T10:00:00Z",
            "duration_minutes": 25,
            "opportunity_id": opp["id"],
            "ticket_id": tickets[0],
        },
        headers=rep.headers,
    )

    assert r.status_code == 201, r.text
    body = r.json()
    assert body["author_id"] == rep.user_id
    assert body["duration_minutes"] == 25
    assert (body["opportunity_id"], body["ticket_id"]) == (opp["id"], tickets[0])
    assert body["occurred_at"] == "2026-11-20T10:00:00Z"
    assert r.headers["etag"] == '"1"'


def test_interactions_filter_by_customer_kind_and_opportunity(
    client: TestClient, api: MakeApi, stages: dict[str, int]
) -> None:
    rep = api("sales")
    first, second = rep.customer("First"), rep.customer("Second")
    opp = rep.opportunity(first)
    for customer, kind, subject, opportunity_id in (
        (first, "note", "n1", None),
        (first, "email", "e1", opp["id"]),
        (second, "meeting", "m1", None),
    ):
        body = {"customer_id": customer, "kind": kind, "subject": subject}
        if opportunity_id:
            body["opportunity_id"] = opportunity_id
        assert client.post(URL, json=body, headers=rep.headers).status_code == 201

    def subjects(**params: Any) -> set[str]:
        return {i["subject"] for i in rep.get(URL, **params)["items"]}

    assert subjects() == {"n1", "e1", "m1"}
    assert subjects(customer_id=first) == {"n1", "e1"}
    assert subjects(kind="meeting") == {"m1"}
    assert subjects(opportunity_id=opp["id"]) == {"e1"}


def test_interactions_follow_their_customers_scope(
    client: TestClient, api: MakeApi, stages: dict[str, int]
) -> None:
    admin, rep = api("admin"), api("sales")
    theirs = admin.customer()
    r = client.post(
        URL, json={"customer_id": theirs, "kind": "note", "subject": "x"}, headers=admin.headers
    )

    assert rep.get(URL)["items"] == []
    assert client.get(f"{URL}/{r.json()['id']}", headers=rep.headers).status_code == 404


def test_an_interaction_with_an_unknown_customer_is_refused(
    client: TestClient, api: MakeApi, engine: Engine
) -> None:
    rep = api("sales")

    r = client.post(
        URL, json={"customer_id": 98765, "kind": "note", "subject": "x"}, headers=rep.headers
    )

    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"loc": ["body", "customer_id"], "msg": "There is no customer 98765."}
    ]
    assert _count(engine, Interaction) == 0


def test_an_opportunity_of_another_customer_is_refused(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int]
) -> None:
    rep = api("sales")
    first, second = rep.customer("First"), rep.customer("Second")
    opp = rep.opportunity(second)

    r = client.post(
        URL,
        json={"customer_id": first, "kind": "note", "subject": "x", "opportunity_id": opp["id"]},
        headers=rep.headers,
    )

    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "opportunity_id"]
    assert _count(engine, Interaction) == 0


def test_a_note_has_no_duration(client: TestClient, api: MakeApi, engine: Engine) -> None:
    rep = api("sales")
    customer = rep.customer()

    r = client.post(
        URL,
        json={"customer_id": customer, "kind": "note", "subject": "x", "duration_minutes": 5},
        headers=rep.headers,
    )

    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"loc": ["body", "duration_minutes"], "msg": "Only calls and meetings have a duration."}
    ]
    assert _count(engine, Interaction) == 0


def test_an_interaction_is_updated_trashed_and_restored_and_each_change_audited(
    client: TestClient, api: MakeApi, engine: Engine
) -> None:
    rep = api("sales")
    made = client.post(
        URL,
        json={"customer_id": rep.customer(), "kind": "note", "subject": "first"},
        headers=rep.headers,
    ).json()
    url = f"{URL}/{made['id']}"

    changed = client.patch(
        url, json={"subject": "second"}, headers={**rep.headers, "If-Match": '"1"'}
    )
    stale = client.patch(url, json={"subject": "third"}, headers={**rep.headers, "If-Match": '"1"'})
    deleted = client.delete(url, headers=rep.headers)
    restored = client.post(f"{url}/restore", headers=rep.headers)

    assert changed.status_code == 200
    assert stale.status_code == 412
    assert deleted.status_code == 204
    assert restored.status_code == 200
    assert restored.json()["subject"] == "second"
    assert _actions(engine, "interaction") == [
        "interaction.created",
        "interaction.updated",
        "interaction.trashed",
        "interaction.restored",
    ]


# --- tasks ----------------------------------------------------------------------------


def test_a_task_is_created_for_oneself_and_completed(
    client: TestClient, api: MakeApi, engine: Engine
) -> None:
    rep = api("sales")
    customer = rep.customer()
    r = client.post(
        TASKS,
        json={"title": "Send proposal", "due_at": "2026-12-01T09:00:00Z", "customer_id": customer},
        headers=rep.headers,
    )
    assert r.status_code == 201, r.text
    task = r.json()
    assert (task["assignee_id"], task["status"], task["completed_at"]) == (
        rep.user_id,
        "open",
        None,
    )

    done = client.post(f"{TASKS}/{task['id']}/complete", headers=rep.headers)

    assert done.status_code == 200
    assert done.json()["status"] == "done"
    assert done.json()["completed_at"] is not None
    assert [t["id"] for t in rep.get(TASKS, status="done")["items"]] == [task["id"]]
    assert rep.get(TASKS, status="open")["items"] == []
    assert _actions(engine, "task") == ["task.created", "task.completed"]


def test_a_sales_rep_cannot_give_a_task_to_someone_else(
    client: TestClient, api: MakeApi, engine: Engine
) -> None:
    rep, other = api("sales"), api("sales")

    r = client.post(
        TASKS, json={"title": "Yours", "assignee_id": other.user_id}, headers=rep.headers
    )

    assert r.status_code == 403
    assert r.json()["type"] == "urn:tenure:problem:assignee-not-assignable"
    assert _count(engine, Task) == 0


def test_tasks_of_others_are_out_of_a_sales_reps_scope(client: TestClient, api: MakeApi) -> None:
    admin, rep = api("admin"), api("sales")
    theirs = client.post(TASKS, json={"title": "Admin's"}, headers=admin.headers).json()

    assert rep.get(TASKS)["items"] == []
    assert client.post(f"{TASKS}/{theirs['id']}/complete", headers=rep.headers).status_code == 404


def test_a_task_goes_to_the_trash_and_comes_back(client: TestClient, api: MakeApi) -> None:
    rep = api("sales")
    task = client.post(TASKS, json={"title": "Later"}, headers=rep.headers).json()

    assert client.delete(f"{TASKS}/{task['id']}", headers=rep.headers).status_code == 204
    assert rep.get(TASKS)["items"] == []
    assert client.post(f"{TASKS}/{task['id']}/restore", headers=rep.headers).status_code == 200
    assert [t["id"] for t in rep.get(TASKS)["items"]] == [task["id"]]


def test_marketing_reads_interactions_but_cannot_log_them(client: TestClient, api: MakeApi) -> None:
    admin, marketer = api("admin"), api("marketing")
    customer = admin.customer()

    r = client.post(
        URL,
        json={"customer_id": customer, "kind": "note", "subject": "x"},
        headers=marketer.headers,
    )

    assert r.status_code == 403
    assert client.get(URL, headers=marketer.headers).status_code == 200
    assert client.get(TASKS, headers=marketer.headers).status_code == 403


def test_erasing_a_customer_clears_what_was_written_about_them(
    client: TestClient, api: MakeApi, engine: Engine
) -> None:
    admin = api("admin")
    customer = admin.customer()
    made = client.post(
        URL,
        json={
            "customer_id": customer,
            "kind": "call",
            "subject": "Talked about her divorce",
            "body": "Private matters",
        },
        headers=admin.headers,
    ).json()

    r = client.post(f"/api/v1/customers/{customer}/erase", headers=admin.headers)

    assert r.status_code == 200
    after = admin.get(f"{URL}/{made['id']}")
    assert (after["kind"], after["subject"], after["body"]) == ("call", "(erased)", None)
    with engine.connect() as conn:
        logged = conn.execute(
            select(AuditEntry.changes).where(AuditEntry.entity_type == "interaction")
        ).all()
    assert "divorce" not in str(logged)
    assert "Private" not in str(logged)
