"""Request and response shapes for customers."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tenure.core.schemas import Id
from tenure.interactions.schemas import InteractionRead, TaskRead
from tenure.orders.schemas import OrderRead
from tenure.pipeline.schemas import OpportunityRead
from tenure.security.schemas import Email, Strict
from tenure.service_desk.schemas import TicketDetail


class Kind(StrEnum):
    PERSON = "person"
    COMPANY = "company"


class LifecycleStage(StrEnum):
    LEAD = "lead"
    PROSPECT = "prospect"
    CUSTOMER = "customer"
    CHURNED = "churned"


EXPORT_FORMAT = "tenure.customer-export/1"
_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,30}$")


def _phone(value: str) -> str:
    value = value.strip()
    if not _PHONE.fullmatch(value) or sum(c.isdigit() for c in value) < 5:
        raise ValueError("must be a phone number of digits, spaces, + ( ) - . /")
    return value


def _birth_date(value: date) -> date:
    if value > date.today() or value.year < 1800:
        raise ValueError("must be a date between 1800-01-01 and today")
    return value


def _tax_id(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be empty; send null to clear it")
    return value


def _tags(values: list[str]) -> list[str]:
    cleaned = sorted({v.strip() for v in values if v.strip()})
    for tag in cleaned:
        if len(tag) > 50:
            raise ValueError(f"tag {tag[:20]!r}... is longer than 50 characters")
    return cleaned


def _custom(value: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:  # an integer beyond 64 bits, say
        raise ValueError(f"custom attributes cannot be stored: {exc}") from None
    if len(encoded) > 16_384:
        raise ValueError("custom attributes must be at most 16 KB of JSON")
    return value


Phone = Annotated[str, AfterValidator(_phone)]
BirthDate = Annotated[date, AfterValidator(_birth_date)]
TaxId = Annotated[str, Field(max_length=50), AfterValidator(_tax_id)]
Tags = Annotated[list[str], Field(max_length=50), AfterValidator(_tags)]
Custom = Annotated[dict[str, Any], AfterValidator(_custom)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
ShortText = Annotated[str, Field(max_length=200)]


class Address(Strict):
    line1: ShortText | None = None
    line2: ShortText | None = None
    city: Annotated[str, Field(max_length=100)] | None = None
    region: Annotated[str, Field(max_length=100)] | None = None
    postal_code: Annotated[str, Field(max_length=20)] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = Field(
        default=None, description="ISO 3166-1 alpha-2 code, e.g. DE"
    )


class CustomerCreate(Strict):
    kind: Kind = Kind.PERSON
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None
    birth_date: BirthDate | None = None
    tax_id: TaxId | None = None
    company_name: ShortText | None = None
    tags: Tags = Field(default_factory=list)
    lifecycle_stage: LifecycleStage = LifecycleStage.LEAD
    owner_id: Id | None = Field(default=None, description="Defaults to the creating user.")
    source: Annotated[str, Field(max_length=100)] | None = None
    notes: Annotated[str, Field(max_length=10_000)] | None = None
    custom: Custom = Field(default_factory=dict)

    @model_validator(mode="after")
    def _company_name_for_people(self) -> CustomerCreate:
        if self.kind is Kind.COMPANY and self.company_name:
            raise ValueError("company_name is for people; a company's name goes in name")
        return self


class CustomerUpdate(Strict):
    """Only the fields sent are changed; send null to clear an optional field."""

    kind: Kind | None = None
    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None
    birth_date: BirthDate | None = None
    tax_id: TaxId | None = None
    company_name: ShortText | None = None
    tags: Tags | None = None
    lifecycle_stage: LifecycleStage | None = None
    owner_id: Id | None = None
    source: Annotated[str, Field(max_length=100)] | None = None
    notes: Annotated[str, Field(max_length=10_000)] | None = None
    custom: Custom | None = None


class CustomerRead(BaseModel):
    """A customer. Sensitive fields are masked unless revealed: email as
    ``j•••@example.com``, phone as ``•••• 4567``, the address as its city and country,
    birth date and tax id as null; ``withheld`` names those that hold more than shown."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: Kind
    name: str
    email: str | None
    phone: str | None
    address: Address | None
    birth_date: date | None = None
    tax_id: str | None = None
    revealed: bool = Field(
        default=False, description="Whether the sensitive fields are shown in clear."
    )
    withheld: list[str] = Field(
        default_factory=list,
        description="Sensitive fields that hold a value shown masked or not at all; "
        "GET /customers/{id}?reveal=true shows them (customers:reveal).",
    )
    company_name: str | None
    tags: list[str]
    lifecycle_stage: LifecycleStage
    owner_id: int | None
    source: str | None
    notes: str | None
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    erased_at: datetime | None = Field(
        default=None, description="When a privacy erasure removed their personal data."
    )
    version: int


class CustomerSummary(BaseModel):
    """Totals over orders that count as purchases (placed, paid or shipped)."""

    order_count: int
    total_spent: dict[str, Decimal] = Field(description="Per currency, e.g. {'EUR': '120.50'}")
    average_order_value: dict[str, Decimal]
    first_order_at: datetime | None
    last_order_at: datetime | None


class CustomerDetail(CustomerRead):
    summary: CustomerSummary


class ExportedEntry(BaseModel):
    """An audit log entry about the customer or one of their orders."""

    model_config = ConfigDict(from_attributes=True)

    occurred_at: datetime
    action: str = Field(examples=["customer.updated"])
    entity_type: str | None
    entity_id: str | None
    changes: dict[str, Any] = Field(
        description='What changed; personal data appears only as "[masked]".'
    )
    details: dict[str, Any]


class CustomerExport(BaseModel):
    """Everything Tenure holds about one customer (a privacy export)."""

    format: str = Field(default=EXPORT_FORMAT, examples=[EXPORT_FORMAT])
    exported_at: datetime
    customer: CustomerRead
    summary: CustomerSummary
    orders: list[OrderRead] = Field(description="Every order, the trash included, oldest first.")
    tickets: list[TicketDetail] = Field(
        description="Every service desk ticket with its replies, notes and history."
    )
    interactions: list[InteractionRead] = Field(description="Notes, calls, meetings, emails.")
    tasks: list[TaskRead] = Field(description="Tasks about the customer.")
    opportunities: list[OpportunityRead] = Field(description="Deals with the customer.")
    history: list[ExportedEntry] = Field(
        description="The audit log's entries about the customer and their orders, oldest "
        "first: what happened and when (who on the staff did it is left out)."
    )
