"""Customers (people and companies), their tags and their search terms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenure.core.records import Record, Trashable
from tenure.core.time import UTCDateTime
from tenure.db import Base, JSONDoc

# Prefix ranges over search terms must compare by code point on every database.
TermString = String(120).with_variant(String(120, collation="C"), "postgresql")


class Customer(Record, Trashable, Base):
    __tablename__ = "customer"
    __table_args__ = (
        Index("ix_customer_name_sort_id", "name_sort", "id"),
        Index("ix_customer_lifecycle_stage_id", "lifecycle_stage", "id"),
        Index("ix_customer_owner_id_id", "owner_id", "id"),
        # The trash is small: listed newest first, and counted, from this index alone.
        Index(
            "ix_customer_trashed_updated_at_id",
            "updated_at",
            "id",
            sqlite_where=text("deleted_at IS NOT NULL"),
            postgresql_where=text("deleted_at IS NOT NULL"),
        ),
    )

    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    name_sort: Mapped[str] = mapped_column(String(200))
    # Sensitive personal fields: stored only sealed (tenure.security.fields), opened by
    # tenure.customers.personal; email and phone also by blind index for exact lookup.
    email_cipher: Mapped[str | None] = mapped_column(Text)
    email_index: Mapped[str | None] = mapped_column(String(32), index=True)
    phone_cipher: Mapped[str | None] = mapped_column(Text)
    phone_index: Mapped[str | None] = mapped_column(String(32), index=True)
    address_cipher: Mapped[str | None] = mapped_column(Text)
    birth_date_cipher: Mapped[str | None] = mapped_column(Text)
    tax_id_cipher: Mapped[str | None] = mapped_column(Text)
    company_name: Mapped[str | None] = mapped_column(String(200))
    lifecycle_stage: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    source: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    # Set when the customer asks to receive no marketing email (or unsubscribes).
    marketing_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set by a privacy erasure: the personal data is gone for good, the record stays.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    tag_rows: Mapped[list[CustomerTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CustomerTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class CustomerTag(Base):
    __tablename__ = "customer_tag"
    __table_args__ = (Index("ix_customer_tag_tag_customer_id", "tag", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)


class CustomerSearchTerm(Base):
    """One row per searchable word (and whole value) of a customer: prefix search by index."""

    __tablename__ = "customer_search_term"
    __table_args__ = (Index("ix_customer_search_term_customer_id", "customer_id"),)

    term: Mapped[str] = mapped_column(TermString, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
