"""Optimistic concurrency: versions exposed as ETags, checked against If-Match."""

from __future__ import annotations

from typing import Protocol, TypeVar

from fastapi import Response
from pydantic import BaseModel

from tenure.core.errors import PreconditionFailed

ReadModel = TypeVar("ReadModel", bound=BaseModel)


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


def etag(version: int) -> str:
    return f'"{version}"'


def tagged(model: type[ReadModel], record: Versioned, response: Response) -> ReadModel:
    """``record`` read as ``model``, its version in ``ETag`` so that the next change can
    send it back in ``If-Match``."""
    response.headers["ETag"] = etag(record.version)
    return model.model_validate(record, from_attributes=True)


def check_if_match(if_match: str | None, version: int) -> None:
    """Raise ``PreconditionFailed`` unless ``If-Match`` is absent, ``*`` or names ``version``."""
    if if_match is None:
        return
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        return
    wanted = {t.removeprefix("W/").strip('"') for t in tags}
    if str(version) not in wanted:
        raise PreconditionFailed(
            f"The record is at version {version}; your copy ({if_match}) is out of date. "
            "Fetch it again and reapply your change."
        )
