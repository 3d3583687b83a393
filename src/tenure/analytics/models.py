"""Stored analytics runs: what was computed, with what, and the results per customer."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.money import Money
from tenure.core.time import UTCDateTime
from tenure.db import Base, JSONDoc


class AnalyticsRun(Base):
    """One run: its parameters, the fitted models and metrics, and summary tables."""

    __tablename__ = "analytics_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    seconds: Mapped[float] = mapped_column(Float)
    as_of: Mapped[date] = mapped_column(Date)
    period: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    customers: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    results: Mapped[dict[str, Any]] = mapped_column(JSONDoc)


class AnalyticsCustomer(Base):
    """A customer's figures, scores, segment, cluster and predictions in one run."""

    __tablename__ = "analytics_customer"
    __table_args__ = (
        Index("ix_analytics_customer_run_id_clv", "run_id", "clv"),
        Index("ix_analytics_customer_run_id_churn_risk", "run_id", "churn_risk"),
        Index("ix_analytics_customer_customer_id", "customer_id"),
    )

    run_id: Mapped[int] = mapped_column(
        ForeignKey("analytics_run.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    purchase_days: Mapped[int] = mapped_column(Integer)
    first_purchase: Mapped[date] = mapped_column(Date)
    last_purchase: Mapped[date] = mapped_column(Date)
    revenue: Mapped[Decimal] = mapped_column(Money())
    recency_days: Mapped[int] = mapped_column(Integer)
    r_score: Mapped[int] = mapped_column(Integer)
    f_score: Mapped[int] = mapped_column(Integer)
    m_score: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(24))
    cluster: Mapped[int | None] = mapped_column(Integer)
    p_alive: Mapped[float | None] = mapped_column(Float)
    expected_purchases: Mapped[float | None] = mapped_column(Float)
    expected_spend: Mapped[Decimal | None] = mapped_column(Money())
    clv: Mapped[Decimal | None] = mapped_column(Money())
    purchase_probability: Mapped[float | None] = mapped_column(Float)
    churn_risk: Mapped[float | None] = mapped_column(Float)


class AnalyticsRule(Base):
    """An association rule of a run, ranked by lift."""

    __tablename__ = "analytics_rule"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("analytics_run.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    antecedents: Mapped[list[int]] = mapped_column(JSONDoc)
    consequents: Mapped[list[int]] = mapped_column(JSONDoc)
    support: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    lift: Mapped[float] = mapped_column(Float)
    leverage: Mapped[float] = mapped_column(Float)
    conviction: Mapped[float | None] = mapped_column(Float)


class AnalyticsProduct(Base):
    """How many baskets of a run held a product."""

    __tablename__ = "analytics_product"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("analytics_run.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    baskets: Mapped[int] = mapped_column(Integer)


class AnalyticsPair(Base):
    """How many baskets of a run held both products (each pair stored both ways)."""

    __tablename__ = "analytics_pair"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("analytics_run.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    other_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    baskets: Mapped[int] = mapped_column(Integer)


class AnalyticsModel(Base):
    """A trained churn model, versioned per kind, with its test metrics."""

    __tablename__ = "analytics_model"
    __table_args__ = (UniqueConstraint("kind", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("analytics_run.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    model: Mapped[bytes] = mapped_column(LargeBinary)
