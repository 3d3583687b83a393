"""Structured logs: one JSON object per line (or a readable text line), with the request
id of the request being served, and secrets kept out.

``tenure serve`` installs this through :func:`logging_config`; the access log line for each
request is written by :class:`tenure.observability.middleware.ObservabilityMiddleware`.
"""

from __future__ import annotations

import logging
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import orjson

LogFormat = Literal["json", "text"]
ACCESS_LOGGER = "tenure.access"
REDACTED = "[redacted]"


@dataclass(slots=True)
class RequestStats:
    """What one request has done so far; the database listeners add to it."""

    request_id: str | None
    db_seconds: float = 0.0
    db_queries: int = 0


# Set by the middleware in the request's own task; the thread pool that runs sync
# routes copies the context, so database listeners there add to the same object.
current_request: ContextVar[RequestStats | None] = ContextVar("tenure_request", default=None)

# Keys whose values never reach a log, whatever logged them (compared lower-cased, with
# "-" as "_"). Sensitive personal fields are here too: a log is not encrypted at rest.
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "key",
        "secret",
        "authorization",
        "cookie",
        "set_cookie",
        "csrf_token",
        "credential",
        "credentials",
        "email",
        "phone",
        "address",
        "birth_date",
        "tax_id",
    }
)
# Secrets that might still end up inside a message: bearer credentials and Tenure's
# token, API key and survey link formats.
_SECRET_TEXT = re.compile(r"(?i)\bbearer\s+\S+|\btn[tks]_[A-Za-z0-9_\-]+")

# Attributes every LogRecord has; anything else came from ``extra=`` and is a field.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}
)


def redact_text(text: str) -> str:
    """``text`` with bearer credentials, tokens and API keys replaced."""
    return _SECRET_TEXT.sub(REDACTED, text)


def _redact_value(key: str, value: Any) -> Any:
    if key.lower().replace("-", "_") in SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    return value


# The attribute the access log passes its fields in (``extra={ACCESS_FIELDS: {...}}``):
# one lookup instead of a scan of the record, for the line written on every request.
ACCESS_FIELDS = "tenure_access"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    attributes = record.__dict__
    access: dict[str, Any] | None = attributes.get(ACCESS_FIELDS)
    if access is not None:
        # Numbers, ids, method and route names are safe by construction; the path is not.
        fields = dict(access)
        if "path" in fields:
            fields["path"] = redact_text(fields["path"])
        return fields
    fields = {
        key: _redact_value(key, value)
        for key, value in attributes.items()
        if key not in _RECORD_ATTRS and not key.startswith("_")
    }
    if "request_id" not in fields:
        stats = current_request.get()
        if stats is not None and stats.request_id:
            fields["request_id"] = stats.request_id
    return fields


_second: tuple[int, str] = (0, "")


def _timestamp(created: float) -> str:
    """``2026-03-02T10:00:00.123Z``; the part up to the second is reused within a second."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """A line for people: time, level, logger, message, then ``key=value`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items() if v is not None)
        line = (
            f"{_timestamp(record.created)} {record.levelname:<7} {record.name}: "
            f"{redact_text(record.getMessage())}"
        )
        if fields:
            line += "  " + fields
        if record.exc_info:
            line += "\n" + redact_text(self.formatException(record.exc_info))
        return line


def logging_config(*, log_format: LogFormat, level: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for the server (uvicorn's ``log_config``):
    everything to stderr in ``log_format``; uvicorn's own access log off (ours replaces it)."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"tenure": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "tenure",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }
