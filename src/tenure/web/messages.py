"""English texts from services and validation, shown on pages in the reader's language.

Services speak English (the API's language) and know nothing of locales. Pages pass what
a service or a schema said through ``localize``: a known sentence is looked up in the
catalog; a sentence with values in it (an id, a limit) is matched against its pattern,
translated, and filled in again. Anything unknown is shown as it came.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

Gettext = Callable[[str], str]


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


# Words the templates translate from a stored value: ``{{ _(order.status) }}``.
VOCABULARY = (
    # order statuses
    N_("draft"),
    N_("placed"),
    N_("paid"),
    N_("shipped"),
    N_("cancelled"),
    N_("refunded"),
    # roles
    N_("admin"),
    N_("manager"),
    N_("sales"),
    N_("support"),
    N_("marketing"),
    N_("analyst"),
    N_("auditor"),
    # customer kinds and lifecycle stages
    N_("person"),
    N_("company"),
    N_("lead"),
    N_("prospect"),
    N_("customer"),
    N_("churned"),
)

# Error titles and fixed sentences that services, schemas and the web layer raise.
SENTENCES = (
    N_("Bad request"),
    N_("Invalid input"),
    N_("Not found"),
    N_("Conflict"),
    N_("Illegal status transition"),
    N_("The record changed since you read it"),
    N_("Authentication required"),
    N_("Permission denied"),
    N_("Invalid cursor"),
    N_("Please sign in"),
    N_("This form has expired"),
    N_("Internal server error"),
    N_("The form was not sent from this site or has expired. Reload and retry."),
    N_("Type at least one letter or digit to search."),
    N_("The cursor is not one this server issued. Start again without it."),
    N_("The cursor is not one this server issued. Start again."),
    N_("The cursor does not match this list's sort order. Start again without it."),
    N_("The cursor does not match this list's sort order. Start again."),
    N_("The cursor does not belong to this search. Start again without it."),
    N_("must be an email address like name@example.com"),
    N_("must be a phone number of digits, spaces, + ( ) - . /"),
    N_("company_name is for people; a company's name goes in name"),
    N_("must be a date between 1800-01-01 and today"),
    N_("must not be empty; send null to clear it"),
    N_(
        "This is not a phone number Tenure can read. Write it with its country code, "
        "e.g. +49 30 1234567."
    ),
    N_("A customer must have a name."),
    N_("Someone else saved this record at the same moment. Fetch it again."),
    N_("The change conflicts with existing data (a duplicate or a missing reference)."),
    N_("You cannot assign customers to that owner"),
    N_("You can assign customers only to yourself."),
    N_("You can assign customers only to members of your team."),
)

INTERNAL_ERROR = N_(
    "Something went wrong on our side; it has been logged. "
    "Quote request id %(id)s when reporting it."
)
# Sentences with values in them. ``role`` and ``status`` values are translated too.
PATTERNS = (
    INTERNAL_ERROR,
    N_("There is no customer %(id)s."),
    N_("There is no product %(id)s."),
    N_("There is no order %(id)s."),
    N_("There is no user %(id)s."),
    N_("There is no API key %(id)s."),
    N_("There is no team %(id)s."),
    N_("Your role (%(role)s) cannot open this page."),
    N_("Your role (%(role)s) cannot see personal data in clear."),
    N_("%(field)s cannot be null."),
    N_("tag %(tag)s... is longer than 50 characters"),
    N_("%(param)s: must be one of %(choices)s"),
    N_("%(param)s: must be a user id"),
    N_("%(param)s: must be between 1 and %(max)s"),
)
_TRANSLATED_VALUES = frozenset({"role", "status"})
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@lru_cache
def _compiled() -> tuple[tuple[re.Pattern[str], str], ...]:
    compiled = []
    for msgid in PATTERNS:
        parts = _PLACEHOLDER.split(msgid)  # text, name, text, name, ..., text
        regex = "".join(
            f"(?P<{part}>.+?)" if i % 2 else re.escape(part) for i, part in enumerate(parts)
        )
        compiled.append((re.compile(regex, re.DOTALL), msgid))
    return tuple(compiled)


def localize(text: str, gettext: Gettext) -> str:
    """``text`` in the reader's language, when the catalog knows it."""
    for regex, msgid in _compiled():
        found = regex.fullmatch(text)
        if found:
            values = {
                name: gettext(value) if name in _TRANSLATED_VALUES else value
                for name, value in found.groupdict().items()
            }
            return gettext(msgid) % values
    return gettext(text)


def validation_message(error: Mapping[str, Any], gettext: Gettext) -> str:
    """A message for one Pydantic validation error that a person can act on."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    _ = gettext
    if kind in ("missing", "string_too_short"):
        return _("Fill in this field.")
    if kind == "string_too_long":
        return _("Keep this to %(max)s characters.") % {"max": ctx.get("max_length", "")}
    if kind == "too_long":
        return _("Give at most %(max)s values.") % {"max": ctx.get("max_length", "")}
    if kind == "string_pattern_mismatch":
        return _("This value is not in the expected format.")
    if kind in ("enum", "literal_error"):
        return _("Choose one of the offered options.")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return _("Enter a whole number.")
    if kind in ("decimal_parsing", "decimal_type", "float_parsing"):
        return _("Enter a number.")
    if kind.startswith("date_"):
        return _("Enter a date, e.g. 1985-04-23.")
    return localize(str(error.get("msg", "")).removeprefix("Value error, "), gettext)
