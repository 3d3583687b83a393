"""Signed links in marketing email: the open pixel, tracked clicks and unsubscribing.

A token is ``<payload>.<mac>``: the payload (base64url JSON of the link's kind, the
member and, for a click, the target URL) and a keyed hash of it under the keyring's
index key. A link cannot be made for another member or another URL without the key, so
the click route is no open redirect."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

import orjson
from sqlalchemy.orm import Session

from tenure.marketing.errors import BadLink
from tenure.security import fields

OPEN = "open"
CLICK = "click"
UNSUBSCRIBE = "unsubscribe"
_PURPOSE = "marketing-link"
# A 1x1 transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@dataclass(frozen=True)
class Link:
    kind: str
    member_id: int
    url: str | None = None


def _mac(sealer: fields.Sealer, payload: str) -> str:
    return sealer.index(_PURPOSE, payload)


def sign(sealer: fields.Sealer, link: Link) -> str:
    values: list[object] = [link.kind, link.member_id]
    if link.url is not None:
        values.append(link.url)
    payload = base64.urlsafe_b64encode(orjson.dumps(values)).rstrip(b"=").decode("ascii")
    return f"{payload}.{_mac(sealer, payload)}"


def verify(session: Session, token: str, kind: str) -> Link:
    """The link a token stands for; ``BadLink`` unless its signature holds and it is a
    link of ``kind``."""
    payload, dot, mac = token.partition(".")
    if not dot or len(token) > 4000:
        raise BadLink("This link is not valid.")
    if not hmac.compare_digest(_mac(fields.of(session), payload), mac):
        raise BadLink("This link is not valid.")
    try:
        values = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadLink("This link is not valid.") from None
    if (
        not isinstance(values, list)
        or len(values) not in (2, 3)
        or values[0] != kind
        or not isinstance(values[1], int)
    ):
        raise BadLink("This link is not valid.")
    url = values[2] if len(values) == 3 else None
    if kind == CLICK and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise BadLink("This link is not valid.")
    return Link(kind, values[1], url)


def url_for(public_url: str, sealer: fields.Sealer, link: Link) -> str:
    base = public_url.rstrip("/")
    token = sign(sealer, link)
    if link.kind == OPEN:
        return f"{base}/email/open/{token}.gif"
    return f"{base}/email/{link.kind}/{token}"
