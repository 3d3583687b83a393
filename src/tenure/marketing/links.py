"""The links inside marketing email, open to anyone who holds one: the open pixel,
tracked clicks and unsubscribing. Each verifies its signed token first; a token that
does not verify is 404 and records nothing."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from tenure.core.routing import SessionRouter
from tenure.db import become_writer
from tenure.deps import SessionDep
from tenure.marketing import service, tracking
from tenure.web.templating import render

router = SessionRouter(include_in_schema=False)
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _writing(session: Session, token: str, kind: str) -> None:
    """A GET that records: once the link verifies, its transaction becomes a writer's
    (on SQLite it takes its turn for the write lock, as writers do)."""
    tracking.verify(session, token, kind)
    become_writer(session)


@router.get("/email/open/{token}.gif")
def email_opened(token: str, session: SessionDep) -> Response:
    """Record an open; answers a 1x1 transparent GIF."""
    _writing(session, token, tracking.OPEN)
    service.track_open(session=session, token=token)
    return Response(tracking.PIXEL, media_type="image/gif", headers=_NO_STORE)


@router.get("/email/click/{token}")
def email_clicked(token: str, session: SessionDep) -> Response:
    """Record a click and go on to the link's target (signed into the token)."""
    _writing(session, token, tracking.CLICK)
    url = service.track_click(session=session, token=token)
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)


@router.get("/email/unsubscribe/{token}")
def unsubscribe_page(token: str, request: Request, session: SessionDep) -> Response:
    """Ask to confirm (a link alone changes nothing: mail scanners follow links)."""
    found = service.check_unsubscribe(session=session, token=token)
    return render(
        request,
        "marketing/unsubscribe.html",
        {"token": token, "campaign_name": found.campaign_name, "done": found.already},
        headers=_NO_STORE,
    )


@router.post("/email/unsubscribe/{token}")
def unsubscribe(token: str, request: Request, session: SessionDep) -> Response:
    """Opt out of marketing email: from the page, or one click from a mail program
    (RFC 8058, ``List-Unsubscribe-Post``)."""
    service.unsubscribe(session=session, token=token)
    found = service.check_unsubscribe(session=session, token=token)
    return render(
        request,
        "marketing/unsubscribe.html",
        {"token": token, "campaign_name": found.campaign_name, "done": True},
        headers=_NO_STORE,
    )
