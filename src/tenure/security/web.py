"""Placeholder while the pages are written."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
