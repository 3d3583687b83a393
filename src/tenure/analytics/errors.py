"""Errors an analytics run or query can end in, each with a stable code."""

from __future__ import annotations

from tenure.core.errors import InvalidInput, NotFound


class TooLittleHistory(InvalidInput):
    code = "too-little-history"
    title = "Too little purchase history"


class CutoffInFuture(InvalidInput):
    code = "cutoff-in-future"
    title = "The cutoff date is in the future"


class ProductNeverSold(NotFound):
    code = "product-never-sold"
    title = "The product was never sold"


class NoRun(NotFound):
    code = "no-analytics-run"
    title = "No analytics run"
