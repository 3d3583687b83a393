"""Analytics over HTTP: response shapes. Money is a decimal string in the run's currency."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    seconds: float
    as_of: date
    period: str
    currency: str
    customers: int


class RunRead(RunSummary):
    """A run with its parameters and everything it found (fitted parameters and
    log-likelihoods, metrics, statistics, segments, clusters, skipped parts)."""

    parameters: dict[str, Any]
    results: dict[str, Any]


class RunList(BaseModel):
    items: list[RunSummary]


class CustomerResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    customer_id: int
    orders: int
    purchase_days: int
    first_purchase: date
    last_purchase: date
    revenue: Decimal
    recency_days: int
    r_score: int
    f_score: int
    m_score: int
    segment: str
    cluster: int | None
    p_alive: float | None
    expected_purchases: float | None
    expected_spend: Decimal | None
    clv: Decimal | None
    purchase_probability: float | None
    churn_risk: float | None
    satisfaction: dict[str, Any] | None = Field(
        default=None,
        description="The customer's CSAT ratings now: count, mean, median, standard deviation.",
    )


class CustomerPage(BaseModel):
    run_id: int
    currency: str
    items: list[CustomerResult]
    next_cursor: str | None


class Statistics(BaseModel):
    run_id: int
    currency: str
    overall: dict[str, Any]
    by_segment: dict[str, Any]
    by_cluster: dict[str, Any]
    currencies: dict[str, Any]
    satisfaction: dict[str, Any] = Field(
        default_factory=dict,
        description="CSAT ratings (1-5) given up to the run's date: n, mean, median, sample "
        "variance and standard deviation, overall, per segment and per cluster.",
    )


class Segments(BaseModel):
    run_id: int
    currency: str
    rules: list[dict[str, Any]]
    grid: list[dict[str, Any]]
    segments: list[dict[str, Any]]


class Clusters(BaseModel):
    run_id: int
    k: int
    silhouette: dict[str, float]
    clusters: list[dict[str, Any]]


class Lifetime(BaseModel):
    run_id: int
    period: str
    bgnbd: dict[str, Any]
    gamma_gamma: dict[str, Any] | None
    clv: dict[str, Any] | None
    top: list[CustomerResult]


class Churn(BaseModel):
    run_id: int
    churn: dict[str, Any]
    at_risk: list[CustomerResult]


class RuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    rank: int
    antecedents: list[int]
    consequents: list[int]
    support: float
    confidence: float
    lift: float
    leverage: float
    conviction: float | None


class RulePage(BaseModel):
    run_id: int
    items: list[RuleRead]
    next_cursor: str | None


class ProductScore(BaseModel):
    product_id: int
    name: str | None
    score: float


class Recommendations(BaseModel):
    run_id: int
    customer_id: int
    items: list[ProductScore]


class TogetherItem(BaseModel):
    product_id: int
    name: str | None
    baskets: int
    support: float
    confidence: float
    lift: float


class Together(BaseModel):
    run_id: int
    product_id: int
    items: list[TogetherItem]


class ModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    kind: str
    version: int
    created_at: datetime
    metrics: dict[str, Any]


class ModelList(BaseModel):
    items: list[ModelRead]
