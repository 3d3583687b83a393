"""The one error operations raise: its message says what went wrong and what to do."""

from __future__ import annotations


class OpsError(Exception):
    """An operation (backup, restore, upgrade) failed or refused; the message says why."""
