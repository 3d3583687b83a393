"""Customer lists as CSV: the rows an export streams, for the API and the web page alike.

Written a page at a time from a session of its own (the request's session has ended by the
time a streamed answer is sent), so an export of any size holds one page in memory.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tenure.audit import service as audit_service
from tenure.core.time import as_utc
from tenure.customers import service
from tenure.customers.models import Customer
from tenure.security.scope import RecordScope

COLUMNS = (
    "id",
    "kind",
    "name",
    "company_name",
    "email",
    "phone",
    "birth_date",
    "tax_id",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "lifecycle_stage",
    "owner_id",
    "tags",
    "source",
    "created_at",
    "updated_at",
)
_ADDRESS = {
    "address_line1": "line1",
    "address_line2": "line2",
    "city": "city",
    "region": "region",
    "postal_code": "postal_code",
    "country": "country",
}
# A cell a spreadsheet would run as a formula. "+" and "-" start phone numbers and
# negative numbers too, which are left alone.
_FORMULA = re.compile(r"^[=@\t\r]|^[+-](?![0-9 ()./-]*$)")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if _FORMULA.match(text) else text


def row(customer: Customer, clear: dict[str, Any]) -> list[str]:
    """One customer as a CSV row, in the order of ``COLUMNS``; ``clear`` holds the
    personal fields in clear (an export is recorded, see ``record``)."""
    address = clear["address"] or {}
    values: dict[str, Any] = {
        "id": customer.id,
        "kind": customer.kind,
        "name": customer.name,
        "company_name": customer.company_name,
        "email": clear["email"],
        "phone": clear["phone"],
        "birth_date": clear["birth_date"].isoformat() if clear["birth_date"] else None,
        "tax_id": clear["tax_id"],
        "lifecycle_stage": customer.lifecycle_stage,
        "owner_id": customer.owner_id,
        "tags": ";".join(customer.tags),
        "source": customer.source,
        "created_at": as_utc(customer.created_at).isoformat(),
        "updated_at": as_utc(customer.updated_at).isoformat(),
    }
    values.update({column: address.get(key) for column, key in _ADDRESS.items()})
    return [_cell(values[column]) for column in COLUMNS]


def _line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


def record(*, session: Session, filters: service.CustomerFilter, scope: RecordScope) -> int:
    """Count what an export will send and write it to the audit log (what was asked for,
    by whom, how many rows; never the values) before anything is sent."""
    rows = service.count(session=session, filters=filters, scope=scope)
    asked = {k: v for k, v in asdict(filters).items() if v not in (None, False)}
    audit_service.bulk_exported(
        session=session, entity_type="customer", filters=asked, rows=rows, format="csv"
    )
    return rows


def lines(
    *, sessions: sessionmaker[Session], filters: service.CustomerFilter, scope: RecordScope
) -> Iterator[str]:
    """The CSV text of the customers in ``scope`` matching ``filters``: a header, then a
    line per customer."""
    yield _line(list(COLUMNS))
    with sessions() as session, session.begin():
        for customer in service.iter_customers(session=session, filters=filters, scope=scope):
            clear = service.revealed_fields(session=session, customer=customer)
            yield _line(row(customer, clear))
