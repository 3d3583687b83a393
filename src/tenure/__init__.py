"""Tenure: a self-hosted CRM."""

__version__ = "0.1.0"
