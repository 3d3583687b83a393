"""Route shortcuts in front of the router (tenure.core.routing.Shortcuts): a shortcut
answers the requests its route would get, before any routing; it never takes a request
that an earlier route would get; what it leaves goes to the router once."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient

from tenure.app import TenureApp
from tenure.core.routing import APIRouter, shortcut


class Refused(Exception):
    pass


def _app(calls: Counter[str], *, answer: bool = True) -> TenureApp:
    def fast(request: Request) -> JSONResponse | None:
        calls["shortcut"] += 1
        thing_id = request.path_params["thing_id"]
        if thing_id == "refused":
            raise Refused
        if not answer:
            return None
        route = request.scope["route"].path
        return JSONResponse({"by": "shortcut", "thing": thing_id, "route": route})

    router = APIRouter()

    @router.get("/things/special")
    def special() -> dict[str, str]:
        calls["special"] += 1
        return {"by": "special"}

    @router.post("/things/{thing_id}")
    def change(thing_id: str) -> dict[str, str]:
        return {"by": "change"}

    @router.get("/things/{thing_id}")
    @shortcut(fast)
    def read(thing_id: str) -> dict[str, str]:
        calls["route"] += 1
        return {"by": "route", "thing": thing_id}

    app = TenureApp()
    app.include_router(router)

    @app.exception_handler(Refused)
    def refused(request: Request, exc: Refused) -> PlainTextResponse:
        return PlainTextResponse("refused", status_code=403)

    return app


def test_a_shortcut_answers_what_its_route_would_get_in_its_place() -> None:
    calls: Counter[str] = Counter()
    with TestClient(_app(calls)) as client:
        r = client.get("/things/7")

    assert r.json() == {"by": "shortcut", "thing": "7", "route": "/things/{thing_id}"}
    assert calls == Counter(shortcut=1)


def test_what_a_shortcut_leaves_goes_to_the_route_and_the_shortcut_is_asked_once() -> None:
    calls: Counter[str] = Counter()
    with TestClient(_app(calls, answer=False)) as client:
        r = client.get("/things/7")

    assert r.json() == {"by": "route", "thing": "7"}
    assert calls == Counter(shortcut=1, route=1)


def test_an_earlier_route_keeps_the_requests_it_matches() -> None:
    calls: Counter[str] = Counter()
    with TestClient(_app(calls)) as client:
        r = client.get("/things/special")

    assert r.json() == {"by": "special"}
    assert calls == Counter(special=1)


@pytest.mark.parametrize("method", ["post", "put"])
def test_other_methods_are_routed_as_before(method: str) -> None:
    calls: Counter[str] = Counter()
    with TestClient(_app(calls)) as client:
        r = client.request(method, "/things/7")

    assert r.status_code == (200 if method == "post" else 405)
    assert calls == Counter()


def test_an_error_in_a_shortcut_reaches_the_apps_exception_handlers() -> None:
    calls: Counter[str] = Counter()
    with TestClient(_app(calls)) as client:
        r = client.get("/things/refused")

    assert (r.status_code, r.text) == (403, "refused")
