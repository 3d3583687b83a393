"""Products: what orders are made of."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.money import Money
from tenure.core.records import Record, Trashable
from tenure.db import Base


class Product(Record, Trashable, Base):
    __tablename__ = "product"
    __table_args__ = (Index("ix_product_name_id", "name", "id"),)

    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    unit_price: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
