"""The pipeline tests' fixtures: default stages, a product, cheap sign-ins, API helpers."""

from tests.pipeline.conftest import _cheap_password_hashing, api, product, stages

__all__ = ["_cheap_password_hashing", "api", "product", "stages"]
