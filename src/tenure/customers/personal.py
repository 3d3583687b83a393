"""A customer's sensitive personal fields: sealed at rest, masked when shown, revealed
on purpose.

Email, phone, postal address, birth date and tax id are stored only sealed
(``tenure.security.fields``), each bound to its column; email and phone also get a blind
index for exact lookup. Lists and pages show them masked (``j•••@example.com``,
``•••• 4567``, the address's city and country, birth date and tax id not at all), which
opens only the email, phone and address of the rows shown. Clear values are for a
reveal (audited by the caller), the edit form and a privacy export.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

import orjson

from tenure.security.fields import Sealer

# The fields a masked view opens to mask them.
MASKED = ("email", "phone", "address")
# Shown by a masked view without opening anything: whether there is a value, no more.
HIDDEN = ("birth_date", "tax_id")
FIELDS = MASKED + HIDDEN
CIPHER = {name: f"{name}_cipher" for name in FIELDS}
INDEX = {"email": "email_index", "phone": "phone_index"}
# Every column that holds a sealed value or an index: never shown as it is.
COLUMNS = frozenset(CIPHER.values()) | frozenset(INDEX.values())
DOT = "•"


def column_of(name: str) -> str:
    """The associated data a field's values are sealed with: its table and column."""
    return f"customer.{name}"


COLUMN = {name: column_of(name) for name in FIELDS}


def _encode(name: str, value: Any) -> str:
    if name == "address":
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    if name == "birth_date":
        return value.isoformat() if isinstance(value, date) else str(value)
    return str(value)


def _decode(name: str, text: str) -> Any:
    if name == "address":
        return orjson.loads(text)
    if name == "birth_date":
        return date.fromisoformat(text)
    return text


def sealed(sealer: Sealer, values: Mapping[str, Any]) -> dict[str, str | None]:
    """The columns to store for the sensitive ``values`` given (by field name): each
    sealed, with its blind index where it has one; None clears. ``InvalidPhone`` when
    the phone is not a number."""
    columns: dict[str, str | None] = {}
    for name, value in values.items():
        empty = value is None or value == "" or value == {}
        if name in INDEX:
            if empty:
                columns[INDEX[name]] = None
            elif name == "phone":
                columns[INDEX[name]] = sealer.phone_index(str(value))
            else:
                columns[INDEX[name]] = sealer.email_index(str(value))
        columns[CIPHER[name]] = (
            None if empty else sealer.seal(column_of(name), _encode(name, value))
        )
    return columns


def _reader(row: Any) -> Callable[[str], Any]:
    """How to read a column of ``row``, a mapping or an ORM object (chosen once per row:
    masking runs for every row of every list)."""
    if isinstance(row, Mapping):
        return row.__getitem__
    return functools.partial(getattr, row)


def _tokens(row: Any, names: Iterable[str] = FIELDS) -> dict[str, str | None]:
    """The sealed values of ``names`` in ``row``, by field name."""
    get = _reader(row)
    return {name: get(CIPHER[name]) for name in names}


def _open(sealer: Sealer, tokens: Mapping[str, str | None]) -> dict[str, Any]:
    return {
        name: None if token is None else _decode(name, sealer.open(COLUMN[name], token))
        for name, token in tokens.items()
    }


def present(row: Any) -> list[str]:
    """The sensitive fields that hold a value (nothing opened)."""
    return [name for name, token in _tokens(row).items() if token is not None]


def opened(sealer: Sealer, row: Any, names: Iterable[str] = FIELDS) -> dict[str, Any]:
    """The clear values of ``names`` (None where empty)."""
    return _open(sealer, _tokens(row, names))


_NOT_DIGIT = re.compile(r"\D")


def mask_email(email: str) -> str:
    local, at, domain = email.rpartition("@")
    if not at:
        return DOT * 3
    return f"{local[:1]}{DOT * 3}@{domain}"


def mask_phone(phone: str) -> str:
    return f"{DOT * 4} {_NOT_DIGIT.sub('', phone)[-4:]}"


def mask_address(address: Mapping[str, Any]) -> dict[str, Any] | None:
    kept = {k: address[k] for k in ("city", "country") if address.get(k)}
    return kept or None


def masked(sealer: Sealer, row: Any) -> dict[str, Any]:
    """The sensitive fields as shown by default: email, phone and address masked (only
    they are opened), birth date and tax id left out; ``withheld`` names every field
    that has a value not shown in full."""
    tokens = _tokens(row)
    clear = _open(sealer, {name: tokens[name] for name in MASKED})
    return {
        "email": mask_email(clear["email"]) if clear["email"] else None,
        "phone": mask_phone(clear["phone"]) if clear["phone"] else None,
        "address": mask_address(clear["address"]) if clear["address"] else None,
        "birth_date": None,
        "tax_id": None,
        "revealed": False,
        "withheld": [name for name, token in tokens.items() if token is not None],
    }


def revealed(sealer: Sealer, row: Any) -> dict[str, Any]:
    """The sensitive fields in clear."""
    return {**opened(sealer, row), "revealed": True, "withheld": []}
