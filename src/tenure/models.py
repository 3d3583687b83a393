"""Imports every table so the metadata (and Alembic) sees the whole schema."""

from tenure.analytics.models import (
    AnalyticsCustomer,
    AnalyticsModel,
    AnalyticsPair,
    AnalyticsProduct,
    AnalyticsRule,
    AnalyticsRun,
)
from tenure.audit.models import AuditEntry
from tenure.catalog.models import Product
from tenure.core.idempotency import IdempotencyRecord
from tenure.customers.models import Customer, CustomerSearchTerm, CustomerTag
from tenure.db import Base
from tenure.interactions.models import Interaction, Task
from tenure.marketing.models import Campaign, CampaignMember, CampaignResponse, Segment
from tenure.observability.models import MetricsSample
from tenure.orders.models import Order, OrderLine, RevenueDay
from tenure.pipeline.models import Opportunity, PipelineStage, StageChange
from tenure.security.models import AccessToken, ApiKey, LoginThrottle, Team, User
from tenure.service_desk.models import SlaPolicy, Ticket, TicketEvent, TicketMessage

metadata = Base.metadata

__all__ = [
    "AccessToken",
    "AnalyticsCustomer",
    "AnalyticsModel",
    "AnalyticsPair",
    "AnalyticsProduct",
    "AnalyticsRule",
    "AnalyticsRun",
    "ApiKey",
    "AuditEntry",
    "Campaign",
    "CampaignMember",
    "CampaignResponse",
    "Customer",
    "CustomerSearchTerm",
    "CustomerTag",
    "IdempotencyRecord",
    "Interaction",
    "LoginThrottle",
    "MetricsSample",
    "Opportunity",
    "Order",
    "OrderLine",
    "PipelineStage",
    "Product",
    "RevenueDay",
    "Segment",
    "SlaPolicy",
    "StageChange",
    "Task",
    "Team",
    "Ticket",
    "TicketEvent",
    "TicketMessage",
    "User",
    "metadata",
]
