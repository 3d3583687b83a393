"""Message templates: rendered per member in a sandbox, checked before anything is sent.

Templates are Jinja2 in a sandbox (no access to Python internals); a variable that is not
in the context is an error, never an empty string. The context, per member:

- ``name``: the customer's name; ``first_name``: its first word; ``company``: the
  company (a person's company_name, or a company's own name), or "";
- ``campaign``: the campaign's name;
- ``unsubscribe_url``: the member's own unsubscribe link;
- ``link(url)``: ``url`` as a tracked link (a click is recorded, then the browser goes on
  to ``url``).

The HTML body gets an invisible 1x1 image that records an open; a campaign without an
HTML template sends its text as simple HTML too.
"""

from __future__ import annotations

import html
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from tenure.marketing.errors import InvalidTemplate

_TEXT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
TEMPLATE_FIELDS = ("subject_template", "body_template", "html_template")


@dataclass(frozen=True)
class Recipient:
    """What a message is personalised with."""

    name: str
    company: str
    unsubscribe_url: str
    link: Callable[[str], str]


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def context(recipient: Recipient, campaign_name: str) -> dict[str, Any]:
    return {
        "name": recipient.name,
        "first_name": (recipient.name.split() or [""])[0],
        "company": recipient.company,
        "campaign": campaign_name,
        "unsubscribe_url": recipient.unsubscribe_url,
        "link": recipient.link,
    }


SAMPLE = Recipient(
    name="Ada Lovelace",
    company="Analytical Engines Ltd",
    unsubscribe_url="https://tenure.example/email/unsubscribe/sample",
    link=lambda url: url,
)


def _line(exc: BaseException) -> int | None:
    """The template line an error happened on."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    tb: types.TracebackType | None = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_one(field: str, source: str, values: dict[str, Any]) -> str:
    env = _HTML if field == "html_template" else _TEXT
    try:
        return env.from_string(source).render(values)
    except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        line = _line(exc)
        where = f"line {line}: " if line else ""
        msg = f"{where}{getattr(exc, 'message', None) or exc}"
        raise InvalidTemplate(
            f"{field} does not render: {msg}", errors=[{"loc": ["body", field], "msg": msg}]
        ) from None


def check(templates: dict[str, str | None], *, channel: str, campaign_name: str) -> None:
    """``InvalidTemplate`` naming the template and line that fails to render for a sample
    member (a syntax error, or a variable that is not in the context). An email campaign
    needs a subject and a text body."""
    if channel == "email":
        for required in ("subject_template", "body_template"):
            if not (templates.get(required) or "").strip():
                msg = "an email campaign needs a subject and a text body"
                raise InvalidTemplate(
                    f"{required}: {msg}", errors=[{"loc": ["body", required], "msg": msg}]
                )
    values = context(SAMPLE, campaign_name)
    for field in TEMPLATE_FIELDS:
        source = templates.get(field)
        if source:
            _render_one(field, source, values)


def render(
    templates: dict[str, str | None], recipient: Recipient, *, campaign_name: str, pixel_url: str
) -> Rendered:
    """The subject, text and HTML of one member's message."""
    values = context(recipient, campaign_name)
    subject = " ".join(
        _render_one("subject_template", templates["subject_template"] or "", values).split()
    )
    text = _render_one("body_template", templates["body_template"] or "", values)
    if templates.get("html_template"):
        body = _render_one("html_template", templates["html_template"] or "", values)
    else:
        paragraphs = [p for p in text.split("\n\n") if p.strip()]
        body = "".join(
            "<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>\n" for p in paragraphs
        )
    unsubscribe = html.escape(recipient.unsubscribe_url)
    pixel = html.escape(pixel_url)
    document = (
        "<!DOCTYPE html>\n<html><body>\n"
        f"{body}\n"
        f'<p style="font-size:small"><a href="{unsubscribe}">Unsubscribe</a></p>\n'
        f'<img src="{pixel}" width="1" height="1" alt="">\n'
        "</body></html>\n"
    )
    if recipient.unsubscribe_url not in text:
        text = f"{text.rstrip()}\n\n--\nUnsubscribe: {recipient.unsubscribe_url}\n"
    return Rendered(subject=subject, text=text, html=document)
