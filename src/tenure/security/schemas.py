"""Request and response shapes for sign-in, users and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from tenure.core.schemas import Id
from tenure.security.passwords import COMMON_PASSWORD, MIN_LENGTH, is_common
from tenure.security.permissions import Role


def _email(value: str) -> str:
    value = value.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or " " in value or domain.startswith("."):
        raise ValueError("must be an email address like name@example.com")
    return value


def _not_common(value: str) -> str:
    if is_common(value):
        raise PydanticCustomError("common_password", COMMON_PASSWORD)
    return value


Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
# Every way a password is set (API, web admin, CLI, init) goes through this type.
Password = Annotated[
    str, Field(min_length=MIN_LENGTH, max_length=1024), AfterValidator(_not_common)
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginRequest(Strict):
    email: Annotated[str, Field(max_length=320)]
    password: Annotated[str, Field(max_length=1024)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UserCreate(Strict):
    email: Email
    name: Annotated[str, Field(min_length=1, max_length=200)]
    password: Password
    role: Role
    team_id: Id | None = Field(default=None, description="The user's team, if any.")


class UserUpdate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    role: Role | None = None
    is_active: bool | None = None
    password: Password | None = None
    team_id: Id | None = Field(
        default=None, description="Send null to take the user out of their team."
    )


TeamName = Annotated[str, Field(min_length=1, max_length=100)]


class TeamCreate(Strict):
    name: TeamName


class TeamUpdate(Strict):
    name: TeamName


class TeamRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class TeamRead(TeamRef):
    members: int = Field(description="How many users are in the team.")
    created_at: datetime
    updated_at: datetime
    version: int


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: Role
    team: TeamRef | None = None
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class ApiKeyCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The key itself. It is shown only this once.")
