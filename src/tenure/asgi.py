"""The ASGI entry point for ``uvicorn tenure.asgi:app`` (settings from the environment)."""

from tenure.app import create_app

app = create_app()
