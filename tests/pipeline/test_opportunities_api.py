"""Opportunities over HTTP: records, scope, the board's moves, the forecast, orders made
from won opportunities, and refusals that leave nothing behind."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from tenure.audit.models import AuditEntry
from tenure.orders.models import Order
from tenure.pipeline.models import Opportunity, StageChange
from tests.pipeline.conftest import MakeApi

URL = "/api/v1/opportunities"


def _count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model)) or 0


def _actions(engine: Engine, entity_id: int) -> list[str]:
    with engine.connect() as conn:
        stmt = (
            select(AuditEntry.action)
            .where(AuditEntry.entity_type == "opportunity", AuditEntry.entity_id == str(entity_id))
            .order_by(AuditEntry.seq)
        )
        return list(conn.scalars(stmt))


# --- records --------------------------------------------------------------------------


def test_a_new_opportunity_starts_in_the_first_open_stage_owned_by_its_creator(
    client: TestClient, api: MakeApi, stages: dict[str, int]
) -> None:
    rep = api("sales")
    customer = rep.customer()

    body = rep.opportunity(
        customer, title="Fleet renewal", amount="12500.50", expected_close_on="2027-03-15"
    )

    assert body["stage_id"] == stages["Qualification"]
    assert body["status"] == "open"
    assert body["owner_id"] == rep.user_id
    assert body["amount"] == "12500.50"
    assert body["currency"] == "EUR"
    assert body["expected_close_on"] == "2027-03-15"
    assert body["version"] == 1
    r = client.get(f"{URL}/{body['id']}", headers=rep.headers)
    assert r.headers["etag"] == '"1"'
    assert r.json() == body


def test_the_list_filters_by_stage_owner_customer_and_status_and_pages_by_cursor(
    api: MakeApi, stages: dict[str, int]
) -> None:
    admin = api("admin")
    rep = api("sales")
    first, second = admin.customer("First"), admin.customer("Second")
    a = admin.opportunity(first, title="A")
    b = admin.opportunity(second, title="B", stage_id=stages["Proposal"])
    c = admin.opportunity(first, title="C", stage_id=stages["Won"], owner_id=rep.user_id)

    def titles(**params: Any) -> list[str]:
        return [o["title"] for o in admin.get(URL, **params)["items"]]

    assert titles() == ["C", "B", "A"]
    assert titles(stage_id=stages["Proposal"]) == ["B"]
    assert titles(owner_id=rep.user_id) == ["C"]
    assert titles(customer_id=first) == ["C", "A"]
    assert titles(status="open") == ["B", "A"]
    assert titles(status="won") == ["C"]
    page = admin.get(URL, limit=2)
    assert [o["id"] for o in page["items"]] == [c["id"], b["id"]]
    rest = admin.get(URL, limit=2, cursor=page["next_cursor"])
    assert [o["id"] for o in rest["items"]] == [a["id"]]
    assert rest["next_cursor"] is None


def test_a_sales_rep_sees_only_their_own_opportunities(
    client: TestClient, api: MakeApi, stages: dict[str, int]
) -> None:
    admin = api("admin")
    rep = api("sales")
    theirs = admin.opportunity(admin.customer(), title="Someone else's")
    mine = rep.opportunity(rep.customer(), title="Mine")

    assert [o["title"] for o in rep.get(URL)["items"]] == ["Mine"]
    assert client.get(f"{URL}/{theirs['id']}", headers=rep.headers).status_code == 404
    assert client.get(f"{URL}/{mine['id']}", headers=rep.headers).status_code == 200


def test_an_update_with_a_stale_etag_is_refused_and_changes_nothing(
    client: TestClient, api: MakeApi, stages: dict[str, int]
) -> None:
    rep = api("sales")
    opp = rep.opportunity(rep.customer())
    first = client.patch(
        f"{URL}/{opp['id']}", json={"title": "New"}, headers={**rep.headers, "If-Match": '"1"'}
    )
    assert first.status_code == 200
    assert first.headers["etag"] == '"2"'

    r = client.patch(
        f"{URL}/{opp['id']}", json={"title": "Lost"}, headers={**rep.headers, "If-Match": '"1"'}
    )

    assert r.status_code == 412
    assert rep.get(f"{URL}/{opp['id']}")["title"] == "New"


def test_a_retried_create_with_the_same_idempotency_key_creates_one(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int]
) -> None:
    rep = api("sales")
    customer = rep.customer()
    body = {"customer_id": customer, "title": "Once", "amount": "10.00"}
    headers = {**rep.headers, "Idempotency-Key": "opp-once-1"}

    first = client.post(URL, json=body, headers=headers)
    again = client.post(URL, json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert _count(engine, Opportunity) == 1


def test_a_deleted_opportunity_goes_to_the_trash_and_comes_back(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int]
) -> None:
    rep = api("sales")
    opp = rep.opportunity(rep.customer())

    assert client.delete(f"{URL}/{opp['id']}", headers=rep.headers).status_code == 204
    assert rep.get(URL)["items"] == []
    assert [o["id"] for o in rep.get(URL, trashed="true")["items"]] == [opp["id"]]
    assert client.get(f"{URL}/{opp['id']}", headers=rep.headers).status_code == 404
    r = client.post(f"{URL}/{opp['id']}/restore", headers=rep.headers)
    assert r.status_code == 200
    assert r.json()["deleted_at"] is None
    assert _actions(engine, opp["id"]) == [
        "opportunity.created",
        "opportunity.trashed",
        "opportunity.restored",
    ]


# --- the board ------------------------------------------------------------------------


def test_moving_records_the_stage_change_and_winning_closes_it(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int]
) -> None:
    rep = api("sales")
    opp = rep.opportunity(rep.customer())

    moved = client.post(
        f"{URL}/{opp['id']}/move", json={"stage_id": stages["Proposal"]}, headers=rep.headers
    )
    won = client.post(
        f"{URL}/{opp['id']}/move", json={"stage_id": stages["Won"]}, headers=rep.headers
    )

    assert moved.status_code == won.status_code == 200
    assert won.json()["status"] == "won"
    assert won.json()["closed_at"] is not None
    history = rep.get(f"{URL}/{opp['id']}/history")
    assert [(h["from_stage_id"], h["to_stage_id"]) for h in history] == [
        (None, stages["Qualification"]),
        (stages["Qualification"], stages["Proposal"]),
        (stages["Proposal"], stages["Won"]),
    ]
    assert {h["actor_id"] for h in history} == {rep.user_id}
    assert _actions(engine, opp["id"]) == [
        "opportunity.created",
        "opportunity.moved",
        "opportunity.won",
    ]


def test_a_card_dropped_between_two_others_lands_between_them(
    api: MakeApi, client: TestClient, stages: dict[str, int]
) -> None:
    rep = api("sales")
    customer = rep.customer()
    ids = [rep.opportunity(customer, title=t)["id"] for t in ("one", "two", "three")]

    for position in (1, 0):  # "three" between one and two, then on top
        r = client.post(
            f"{URL}/{ids[2]}/move",
            json={"stage_id": stages["Qualification"], "position": position},
            headers=rep.headers,
        )
        assert r.status_code == 200
        column = sorted(
            rep.get(URL, stage_id=stages["Qualification"])["items"],
            key=lambda o: (o["position"], o["id"]),
        )
        expected = ["one", "three", "two"] if position == 1 else ["three", "one", "two"]
        assert [o["title"] for o in column] == expected


def test_the_forecast_weighs_open_opportunities_by_their_stage_per_month(
    api: MakeApi, stages: dict[str, int]
) -> None:
    rep = api("sales")
    customer = rep.customer()
    rep.opportunity(customer, amount="1000.00", expected_close_on="2027-01-10")  # 10 %
    rep.opportunity(
        customer, amount="200.00", expected_close_on="2027-01-31", stage_id=stages["Proposal"]
    )  # 50 %
    rep.opportunity(
        customer, amount="400.00", expected_close_on="2027-02-01", stage_id=stages["Negotiation"]
    )  # 75 %
    rep.opportunity(
        customer, amount="999.00", expected_close_on="2027-01-05", stage_id=stages["Won"]
    )  # closed: not a forecast
    rep.opportunity(customer, amount="50.00", currency="USD")  # no date

    result = rep.get(f"{URL}/forecast")

    assert result["months"] == [
        {
            "month": "2027-01",
            "currency": "EUR",
            "opportunities": 2,
            "amount": "1200.00",
            "weighted": "200.00",
        },
        {
            "month": "2027-02",
            "currency": "EUR",
            "opportunities": 1,
            "amount": "400.00",
            "weighted": "300.00",
        },
    ]
    assert result["undated"] == [
        {"month": "", "currency": "USD", "opportunities": 1, "amount": "50.00", "weighted": "5.00"}
    ]


# --- orders from won opportunities ----------------------------------------------------


def test_a_won_opportunity_becomes_one_order_linked_to_it(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int], product: int
) -> None:
    rep = api("sales")
    customer = rep.customer()
    opp = rep.opportunity(customer, stage_id=stages["Won"])
    lines = {"lines": [{"product_id": product, "quantity": 2}]}

    r = client.post(f"{URL}/{opp['id']}/order", json=lines, headers=rep.headers)

    assert r.status_code == 201, r.text
    order = r.json()
    assert order["customer_id"] == customer
    assert order["total"] == "1600.00"
    assert order["status"] == "placed"
    assert rep.get(f"{URL}/{opp['id']}")["order_id"] == order["id"]
    again = client.post(f"{URL}/{opp['id']}/order", json=lines, headers=rep.headers)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:tenure:problem:opportunity-already-ordered"
    assert _count(engine, Order) == 1
    assert _actions(engine, opp["id"])[-1] == "opportunity.ordered"


# --- bad input: a clear answer, nothing changed ---------------------------------------


def test_an_order_from_an_open_opportunity_is_refused(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int], product: int
) -> None:
    rep = api("sales")
    opp = rep.opportunity(rep.customer(), stage_id=stages["Negotiation"])

    r = client.post(
        f"{URL}/{opp['id']}/order",
        json={"lines": [{"product_id": product, "quantity": 1}]},
        headers=rep.headers,
    )

    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:tenure:problem:opportunity-not-won"
    assert "move it to a won stage" in r.json()["detail"]
    assert _count(engine, Order) == 0
    assert rep.get(f"{URL}/{opp['id']}")["order_id"] is None


def test_an_unknown_customer_is_refused(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int]
) -> None:
    rep = api("sales")

    r = client.post(
        URL, json={"customer_id": 987654, "title": "X", "amount": "1.00"}, headers=rep.headers
    )

    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"loc": ["body", "customer_id"], "msg": "There is no customer 987654."}
    ]
    assert _count(engine, Opportunity) == 0


def test_a_customer_out_of_scope_is_refused_as_unknown(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int]
) -> None:
    admin, rep = api("admin"), api("sales")
    theirs = admin.customer()

    r = client.post(
        URL, json={"customer_id": theirs, "title": "X", "amount": "1.00"}, headers=rep.headers
    )

    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "customer_id"]
    assert _count(engine, Opportunity) == 0


def test_an_owner_out_of_scope_is_refused(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int]
) -> None:
    rep, other = api("sales"), api("sales")
    customer = rep.customer()

    r = client.post(
        URL,
        json={"customer_id": customer, "title": "X", "amount": "1.00", "owner_id": other.user_id},
        headers=rep.headers,
    )

    assert r.status_code == 403
    assert r.json()["type"] == "urn:tenure:problem:owner-not-assignable"
    assert r.json()["errors"] == [
        {"loc": ["body", "owner_id"], "msg": "You can assign opportunities only to yourself."}
    ]
    assert _count(engine, Opportunity) == 0


def test_an_unknown_stage_is_refused_on_create_and_on_move(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int]
) -> None:
    rep = api("sales")
    customer = rep.customer()

    r = client.post(
        URL,
        json={"customer_id": customer, "title": "X", "amount": "1.00", "stage_id": 4242},
        headers=rep.headers,
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [{"loc": ["body", "stage_id"], "msg": "There is no stage 4242."}]
    assert _count(engine, Opportunity) == 0

    opp = rep.opportunity(customer)
    moved = client.post(f"{URL}/{opp['id']}/move", json={"stage_id": 4242}, headers=rep.headers)
    assert moved.status_code == 422
    after = rep.get(f"{URL}/{opp['id']}")
    assert (after["stage_id"], after["version"]) == (stages["Qualification"], 1)
    assert _count(engine, StageChange) == 1


def test_a_negative_amount_is_refused(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int]
) -> None:
    rep = api("sales")
    customer = rep.customer()

    r = client.post(
        URL, json={"customer_id": customer, "title": "X", "amount": "-5.00"}, headers=rep.headers
    )

    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "amount"]
    assert _count(engine, Opportunity) == 0


# --- stages ---------------------------------------------------------------------------


def test_managers_edit_stages_and_sales_reps_may_not(
    client: TestClient, api: MakeApi, engine: Engine, stages: dict[str, int]
) -> None:
    manager, rep = api("manager"), api("sales")
    url = "/api/v1/pipeline-stages"

    made = client.post(url, json={"name": "Demo", "probability": 40}, headers=manager.headers)
    refused = client.post(url, json={"name": "Other", "probability": 40}, headers=rep.headers)

    assert made.status_code == 201
    assert made.json()["position"] == 7
    assert refused.status_code == 403
    names = [s["name"] for s in rep.get(url)]
    assert names == [
        "Qualification",
        "Needs analysis",
        "Proposal",
        "Negotiation",
        "Won",
        "Lost",
        "Demo",
    ]
    with engine.connect() as conn:
        recorded = conn.execute(
            select(AuditEntry.action, AuditEntry.actor_id).where(
                AuditEntry.entity_type == "pipeline_stage",
                AuditEntry.entity_id == str(made.json()["id"]),
            )
        ).all()
    assert recorded == [("pipeline_stage.created", manager.user_id)]


def test_a_stage_that_holds_opportunities_cannot_be_deleted(
    client: TestClient, api: MakeApi, stages: dict[str, int]
) -> None:
    admin = api("admin")
    admin.opportunity(admin.customer(), stage_id=stages["Proposal"])

    r = client.delete(f"/api/v1/pipeline-stages/{stages['Proposal']}", headers=admin.headers)
    free = client.delete(
        f"/api/v1/pipeline-stages/{stages['Needs analysis']}", headers=admin.headers
    )

    assert r.status_code == 409
    assert r.json()["type"] == "urn:tenure:problem:stage-in-use"
    assert free.status_code == 204
    assert len(admin.get("/api/v1/pipeline-stages")) == 5


def test_an_expected_close_date_is_a_date(api: MakeApi, stages: dict[str, int]) -> None:
    rep = api("sales")
    opp = rep.opportunity(rep.customer(), expected_close_on=date(2027, 5, 1).isoformat())
    assert opp["expected_close_on"] == "2027-05-01"
