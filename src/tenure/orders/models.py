"""Orders and their lines."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenure.core.money import Money
from tenure.core.records import Record, Trashable
from tenure.core.time import UTCDateTime
from tenure.db import Base


class Order(Record, Trashable, Base):
    __tablename__ = "sales_order"
    __table_args__ = (
        Index("ix_sales_order_customer_id_ordered_at", "customer_id", "ordered_at"),
        Index("ix_sales_order_status_id", "status", "id"),
        Index("ix_sales_order_ordered_at_id", "ordered_at", "id"),
        # Open orders are counted on every dashboard: from this index alone.
        Index(
            "ix_sales_order_status_active",
            "status",
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    status: Mapped[str] = mapped_column(String(12))
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Money())
    notes: Mapped[str | None] = mapped_column(Text)

    lines: Mapped[list[OrderLine]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="OrderLine.id"
    )


class OrderLine(Base):
    __tablename__ = "order_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("sales_order.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money())
    line_total: Mapped[Decimal] = mapped_column(Money())


class RevenueDay(Base):
    """Purchases (orders placed, paid or shipped, not in the trash) per day and currency.

    Kept by the orders service in the same transaction as every change to an order, so a
    month's revenue is a sum over its days rather than over all of its orders."""

    __tablename__ = "order_revenue_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal] = mapped_column(Money())
