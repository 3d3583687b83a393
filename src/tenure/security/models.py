"""Users, their sign-in tokens and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenure.core.records import Record
from tenure.core.time import UTCDateTime, utcnow
from tenure.db import Base


class Team(Record, Base):
    """A group of users. A manager sees the customers owned by the members of their team."""

    __tablename__ = "team"

    name: Mapped[str] = mapped_column(String(100), unique=True)


class User(Record, Base):
    __tablename__ = "user_account"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    locale: Mapped[str | None] = mapped_column(String(10), default=None)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), index=True, default=None)

    team: Mapped[Team | None] = relationship(lazy="selectin")


class AccessToken(Base):
    """A bearer token from sign-in. Only its SHA-256 is stored."""

    __tablename__ = "access_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ApiKey(Base):
    """A long-lived key for integrations. Shown once; only its SHA-256 is stored."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class LoginThrottle(Base):
    """Failed sign-ins counted per account (``scope`` "account", the email) and per client
    address ("address"), and until when further attempts are refused. Kept in the database
    so that every worker and host sees the same counts."""

    __tablename__ = "login_throttle"
    __table_args__ = (UniqueConstraint("scope", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(320))
    failures: Mapped[int] = mapped_column()
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
