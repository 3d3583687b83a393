"""The pipeline, interactions, tasks and timeline pages: what a person sees and does."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.core.time import utcnow
from tenure.customers import service as customers_service
from tenure.customers.schemas import CustomerCreate
from tenure.db import unit_of_work
from tenure.interactions import service as interactions_service
from tenure.interactions.models import Interaction
from tenure.interactions.schemas import InteractionCreate, TaskCreate
from tenure.orders.models import Order
from tenure.pipeline import service as pipeline_service
from tenure.pipeline.schemas import OpportunityCreate
from tenure.security.models import User
from tenure.security.scope import EVERYTHING
from tests.conftest import MakeUser, web_sign_in


def _customer(sessions: sessionmaker[Session], owner: User, name: str = "Grace Hopper") -> int:
    with unit_of_work(sessions) as s:
        data = CustomerCreate(name=name)
        return customers_service.create(session=s, data=data, actor=owner, scope=EVERYTHING).id


def _opportunity(
    sessions: sessionmaker[Session], owner: User, customer: int, **fields: object
) -> int:
    with unit_of_work(sessions) as s:
        data = OpportunityCreate.model_validate(
            {"customer_id": customer, "title": "Fleet", "amount": "1000.00", **fields}
        )
        return pipeline_service.create(session=s, data=data, actor_id=owner.id, scope=EVERYTHING).id


def _count(engine: Engine, model: object) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model)) or 0  # type: ignore[arg-type]


def test_the_board_shows_a_column_per_stage_with_its_cards_and_totals(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], stages: dict[str, int]
) -> None:
    rep = make_user("sales")
    customer = _customer(sessions, rep)
    opp = _opportunity(
        sessions, rep, customer, stage_id=stages["Proposal"], expected_close_on="2027-01-15"
    )
    web_sign_in(client, rep)

    r = client.get("/pipeline")

    assert r.status_code == 200
    columns = re.findall(r'data-stage="(\d+)" data-testid="stage-([^"]+)"', r.text)
    assert [name for _id, name in columns] == [
        "Qualification",
        "Needs analysis",
        "Proposal",
        "Negotiation",
        "Won",
        "Lost",
    ]
    assert f'data-opportunity="{opp}"' in r.text
    assert 'draggable="true"' in r.text
    assert "/static/pipeline.js" in r.text
    assert "€1,000.00" in r.text
    assert "€500.00" in r.text  # the forecast: 50 % of it


def test_dropping_a_card_moves_it_and_answers_with_the_new_totals(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], stages: dict[str, int]
) -> None:
    rep = make_user("sales")
    opp = _opportunity(sessions, rep, _customer(sessions, rep))
    token = web_sign_in(client, rep)

    r = client.post(
        "/pipeline/move",
        data={"opportunity_id": str(opp), "stage_id": str(stages["Won"]), "position": "0"},
        headers={"X-CSRF-Token": token},
    )

    assert r.status_code == 200
    assert r.text.lstrip().startswith('<div id="board"')
    won = r.text.split(f'data-stage="{stages["Won"]}"')[1].split("</section>")[0]
    assert f'data-opportunity="{opp}"' in won
    assert "1 opportunity" in won
    with unit_of_work(sessions, write=False) as s:
        assert pipeline_service.get(session=s, opportunity_id=opp, scope=EVERYTHING).status == "won"


def test_a_won_opportunity_page_turns_it_into_an_order(
    client: TestClient,
    make_user: MakeUser,
    sessions: sessionmaker[Session],
    engine: Engine,
    stages: dict[str, int],
    product: int,
) -> None:
    rep = make_user("sales")
    opp = _opportunity(sessions, rep, _customer(sessions, rep), stage_id=stages["Won"])
    token = web_sign_in(client, rep)
    page = client.get(f"/opportunities/{opp}")
    assert 'data-testid="order-form"' in page.text

    r = client.post(
        f"/opportunities/{opp}/order",
        data={"csrf_token": token, "product_id": [str(product), ""], "quantity": ["2", "1"]},
        follow_redirects=False,
    )

    assert r.status_code == 303
    order_id = int(r.headers["location"].rsplit("/", 1)[1])
    after = client.get(f"/opportunities/{opp}")
    assert f'href="/orders/{order_id}" data-testid="opportunity-order"' in after.text
    assert 'data-testid="order-form"' not in after.text
    assert _count(engine, Order) == 1


def test_an_open_opportunity_offers_no_order_and_refuses_one(
    client: TestClient,
    make_user: MakeUser,
    sessions: sessionmaker[Session],
    engine: Engine,
    stages: dict[str, int],
    product: int,
) -> None:
    rep = make_user("sales")
    opp = _opportunity(sessions, rep, _customer(sessions, rep))
    token = web_sign_in(client, rep)

    page = client.get(f"/opportunities/{opp}")
    r = client.post(
        f"/opportunities/{opp}/order",
        data={"csrf_token": token, "product_id": str(product), "quantity": "1"},
    )

    assert 'data-testid="order-form"' not in page.text
    assert r.status_code == 409
    assert "move it to a won stage" in r.text
    assert _count(engine, Order) == 0


def test_the_new_opportunity_form_names_a_customer_out_of_reach_as_unknown(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], stages: dict[str, int]
) -> None:
    admin, rep = make_user("admin"), make_user("sales")
    theirs = _customer(sessions, admin)
    token = web_sign_in(client, rep)

    r = client.post(
        "/opportunities/new",
        data={"csrf_token": token, "customer_id": str(theirs), "title": "X", "amount": "1.00"},
    )

    assert r.status_code == 422
    assert f"There is no customer {theirs}." in r.text


def test_logging_an_interaction_on_the_customer_page_puts_it_on_the_timeline(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], engine: Engine
) -> None:
    rep = make_user("sales")
    customer = _customer(sessions, rep)
    token = web_sign_in(client, rep)
    page = client.get(f"/customers/{customer}")
    assert 'data-testid="log-interaction"' in page.text
    assert f'href="/opportunities/new?customer_id={customer}"' in page.text

    r = client.post(
        f"/customers/{customer}/interactions",
        data={
            "csrf_token": token,
            "kind": "call",
            "subject": "Intro call",
            "duration_minutes": "15",
        },
        follow_redirects=False,
    )

    assert r.status_code == 303
    timeline = client.get(f"/customers/{customer}")
    assert "Call: Intro call" in timeline.text
    assert _count(engine, Interaction) == 1


def test_a_bad_interaction_is_shown_again_with_its_error_and_not_saved(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], engine: Engine
) -> None:
    rep = make_user("sales")
    customer = _customer(sessions, rep)
    token = web_sign_in(client, rep)

    r = client.post(
        f"/customers/{customer}/interactions",
        data={"csrf_token": token, "kind": "note", "subject": "x", "duration_minutes": "5"},
    )

    assert r.status_code == 422
    assert "Only calls and meetings have a duration." in r.text
    assert _count(engine, Interaction) == 0


def test_the_timeline_fragment_filters_by_kind_and_loads_more(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], stages: dict[str, int]
) -> None:
    rep = make_user("sales")
    customer = _customer(sessions, rep)
    _opportunity(sessions, rep, customer, title="Deal")
    token = web_sign_in(client, rep)
    for n in range(25):
        client.post(
            f"/customers/{customer}/interactions",
            data={"csrf_token": token, "kind": "note", "subject": f"note {n:02}"},
        )

    only = client.get(f"/customers/{customer}/timeline", params={"kind": "opportunity"})
    everything = client.get(f"/customers/{customer}/timeline")

    assert re.findall(r'<li data-kind="([a-z]+)">', only.text) == ["opportunity"]
    assert 'data-kind-filter="task"' in only.text
    assert 'data-kind-filter="opportunity" aria-current="true"' in only.text
    more = re.search(r'hx-get="(/customers/\d+/timeline\?before=[^"]+)"', everything.text)
    assert more is not None
    assert len(re.findall(r'<li data-kind="[a-z]+">', everything.text)) == 20
    rest = client.get(more.group(1).replace("&amp;", "&"))
    assert rest.status_code == 200
    kinds = re.findall(r'<li data-kind="([a-z]+)">', rest.text)
    assert kinds == ["interaction"] * 5 + ["opportunity", "change"]


def test_my_tasks_marks_the_overdue_ones_and_the_navigation_counts_them(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    rep = make_user("sales")
    with unit_of_work(sessions) as s:
        late = interactions_service.create_task(
            session=s,
            data=TaskCreate(title="Late one", due_at=utcnow() - timedelta(days=1)),
            actor_id=rep.id,
            scope=EVERYTHING,
        ).id
        soon = interactions_service.create_task(
            session=s,
            data=TaskCreate(title="Soon", due_at=utcnow() + timedelta(days=1)),
            actor_id=rep.id,
            scope=EVERYTHING,
        ).id
    token = web_sign_in(client, rep)

    page = client.get("/tasks")
    count = client.get("/tasks/count")
    done = client.post(
        f"/tasks/{late}/complete", data={"csrf_token": token}, follow_redirects=False
    )
    after = client.get("/tasks/count")

    assert f'class="task-overdue" data-overdue="true" data-testid="task-{late}"' in page.text
    assert f'data-testid="task-{soon}"' in page.text
    assert f'data-overdue="true" data-testid="task-{soon}"' not in page.text
    assert 'class="badge overdue" data-testid="task-count"' in count.text
    assert ">2</span>" in count.text
    assert done.status_code == 303
    assert 'class="badge" data-testid="task-count"' in after.text
    assert ">1</span>" in after.text
    assert 'hx-get="/tasks/count"' in page.text


def test_an_opportunity_is_edited_with_its_version_and_a_stale_form_is_refused(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], stages: dict[str, int]
) -> None:
    rep = make_user("sales")
    opp = _opportunity(sessions, rep, _customer(sessions, rep))
    token = web_sign_in(client, rep)
    form = client.get(f"/opportunities/{opp}/edit")
    assert 'name="version" value="1"' in form.text
    fields = {
        "csrf_token": token,
        "title": "Fleet, phase 2",
        "amount": "2500",
        "currency": "EUR",
        "owner_id": str(rep.id),
        "expected_close_on": "2027-02-01",
        "version": "1",
    }

    saved = client.post(f"/opportunities/{opp}/edit", data=fields, follow_redirects=False)
    stale = client.post(f"/opportunities/{opp}/edit", data={**fields, "title": "Overwritten"})

    assert saved.status_code == 303
    assert stale.status_code == 409
    assert "Someone changed this opportunity a moment ago." in stale.text
    with unit_of_work(sessions, write=False) as s:
        stored = pipeline_service.get(session=s, opportunity_id=opp, scope=EVERYTHING)
        assert (stored.title, str(stored.amount), stored.version) == (
            "Fleet, phase 2",
            "2500.0000",
            2,
        )


def test_a_deleted_opportunity_leaves_the_board(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], stages: dict[str, int]
) -> None:
    rep = make_user("sales")
    opp = _opportunity(sessions, rep, _customer(sessions, rep))
    token = web_sign_in(client, rep)

    r = client.post(
        f"/opportunities/{opp}/delete", data={"csrf_token": token}, follow_redirects=False
    )

    assert r.status_code == 303
    assert f'data-opportunity="{opp}"' not in client.get("/pipeline").text
    assert client.get(f"/opportunities/{opp}").status_code == 404


def test_the_opportunity_page_lists_the_interactions_about_it(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], stages: dict[str, int]
) -> None:
    rep = make_user("sales")
    customer = _customer(sessions, rep)
    opp = _opportunity(sessions, rep, customer)
    other = _opportunity(sessions, rep, customer, title="Other")
    with unit_of_work(sessions) as s:
        for subject, about in (("About this", opp), ("About the other", other)):
            interactions_service.log(
                session=s,
                data=InteractionCreate(
                    customer_id=customer, kind="meeting", subject=subject, opportunity_id=about
                ),
                author_id=rep.id,
                scope=EVERYTHING,
            )
    web_sign_in(client, rep)

    page = client.get(f"/opportunities/{opp}")

    listed = page.text.split('data-testid="opportunity-interactions"')[1].split("</ul>")[0]
    assert "About this" in listed
    assert "About the other" not in listed


def test_timeline_amounts_are_written_the_readers_way(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], stages: dict[str, int]
) -> None:
    rep = make_user("sales")
    customer = _customer(sessions, rep)
    _opportunity(sessions, rep, customer, amount="12500.50")
    web_sign_in(client, rep)

    r = client.get(f"/customers/{customer}/timeline", params={"kind": "opportunity"})

    assert "Opportunity opened: Fleet" in r.text
    assert "Qualification · €12,500.50" in r.text


# --- stages ---------------------------------------------------------------------------


def _stage_rows(sessions: sessionmaker[Session]) -> list[tuple[str, int, str]]:
    with sessions() as s:
        return [
            (st.name, st.probability, st.kind) for st in pipeline_service.list_stages(session=s)
        ]


def test_an_admin_adds_changes_and_deletes_a_stage_on_the_stages_page(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], stages: dict[str, int]
) -> None:
    token = web_sign_in(client, make_user("admin"))
    assert 'href="/pipeline/stages"' in client.get("/pipeline").text

    r = client.post(
        "/pipeline/stages/new",
        data={"csrf_token": token, "name": "Trial", "probability": "40", "kind": "open"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert _stage_rows(sessions)[-1] == ("Trial", 40, "open")
    trial = next(sid for sid in _stage_ids(sessions) if sid not in stages.values())

    r = client.post(
        f"/pipeline/stages/{trial}",
        data={"csrf_token": token, "name": "Pilot", "probability": "60", "kind": "open",
              "position": "3"},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303, r.text
    assert ("Pilot", 60, "open") in _stage_rows(sessions)
    page = client.get("/pipeline/stages").text
    assert f'data-testid="stage-{trial}"' in page
    assert 'value="Pilot"' in page

    r = client.post(
        f"/pipeline/stages/{trial}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    assert "Pilot" not in [name for name, _, _ in _stage_rows(sessions)]


def _stage_ids(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as s:
        return [st.id for st in pipeline_service.list_stages(session=s)]


def test_a_stage_holding_opportunities_is_kept_and_bad_values_are_refused(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], stages: dict[str, int]
) -> None:
    admin = make_user("admin")
    _opportunity(sessions, admin, _customer(sessions, admin), stage_id=stages["Proposal"])
    token = web_sign_in(client, admin)
    before = _stage_rows(sessions)

    r = client.post(
        f"/pipeline/stages/{stages['Proposal']}/delete",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 409
    assert "holds opportunities" in r.text
    r = client.post(
        f"/pipeline/stages/{stages['Proposal']}",
        data={"csrf_token": token, "name": "Proposal", "probability": "50", "kind": "won"},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert "only while it holds no opportunities" in r.text
    r = client.post(
        "/pipeline/stages/new",
        data={"csrf_token": token, "name": "Maybe", "probability": "150", "kind": "open"},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert 'value="Maybe"' in r.text  # what was typed is kept
    r = client.post(
        "/pipeline/stages/new",
        data={"csrf_token": token, "name": "proposal", "probability": "5", "kind": "open"},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert "There is already a stage named" in r.text
    assert _stage_rows(sessions) == before


def test_only_roles_with_pipeline_admin_see_the_stages_page(
    client: TestClient, make_user: MakeUser, stages: dict[str, int]
) -> None:
    web_sign_in(client, make_user("sales"))

    assert client.get("/pipeline/stages").status_code == 403
    assert 'href="/pipeline/stages"' not in client.get("/pipeline").text
