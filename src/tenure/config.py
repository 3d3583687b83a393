"""Settings from the environment: every setting is a ``TENURE_*`` variable."""

from __future__ import annotations

from datetime import datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """One settings object, read from ``TENURE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TENURE_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where the SQLite file lives.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to SQLite at <data_dir>/tenure.db. "
        "For PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    admin_email: str = Field(default="admin@example.com", description="First admin's email.")
    admin_password: SecretStr | None = Field(
        default=None, description="First admin's password; generated and printed once if unset."
    )
    token_ttl_seconds: int = Field(default=8 * 3600, ge=60, description="Bearer token lifetime.")
    login_account_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins to one account before delays begin."
    )
    login_address_failures: int = Field(
        default=20, ge=1, description="Failed sign-ins from one client address before delays begin."
    )
    login_max_delay_seconds: int = Field(
        default=900, ge=1, description="Longest wait the growing sign-in delay reaches."
    )
    login_failure_window_seconds: int = Field(
        default=3600, ge=60, description="Failures older than this no longer count."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins whose scripts may call the API (comma-separated); none by default.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    count_cap: int = Field(default=10_000, ge=1, description="Largest exact ?count=true total.")
    sqlite_mmap_mb: int = Field(
        default=16_384,
        ge=0,
        description="How much of the SQLite database file the busiest reads (a customer by "
        "id) map into memory instead of copying it in (0: none).",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1)
    log_level: str = "info"
    log_format: Literal["json", "text"] = Field(
        default="json", description="Server log lines: JSON objects, or text for people."
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, /metrics needs 'Authorization: Bearer <token>'."
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve /metrics on this loopback port instead."
    )
    shutdown_timeout_seconds: int = Field(
        default=30, ge=1, description="On SIGTERM, how long requests in flight may take to finish."
    )
    operations_sample_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="How often request counts are stored for the operations page; 0: never.",
    )
    operations_keep_days: int = Field(
        default=7, ge=1, description="How long the operations page's samples are kept."
    )
    backup_max_age_hours: float = Field(
        default=24, gt=0, description="tenure doctor warns when the last backup is older."
    )
    min_free_disk_mb: int = Field(
        default=1024, ge=0, description="tenure doctor warns when the data directory has less free."
    )
    keyring_file: Path | None = Field(
        default=None,
        description="The key file that encrypts customers' sensitive fields (0600); "
        "default <data_dir>/keyring.json, made by tenure init.",
    )
    keyring: SecretStr | None = Field(
        default=None,
        description="The keyring's JSON itself, instead of the key file (cannot be rotated).",
    )
    keyring_reload_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How often a running server looks whether the key file changed.",
    )
    default_phone_region: str = Field(
        default="US",
        description="Where a phone number written without a +country code is read as from "
        "(ISO 3166-1 alpha-2).",
    )
    smtp_host: str | None = Field(
        default=None, description="Mail server marketing email is sent through; unset: none."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="The mail server's port.")
    smtp_username: str | None = Field(default=None, description="User to sign in to it as.")
    smtp_password: SecretStr | None = Field(
        default=None, description="Password to sign in with (never logged)."
    )
    smtp_starttls: bool = Field(default=True, description="Encrypt with STARTTLS before sending.")
    smtp_from: str = Field(
        default="marketing@example.com", description="Sender address of marketing email."
    )
    smtp_rate: float = Field(
        default=10.0, gt=0, le=10_000, description="Most marketing emails sent per second."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where Tenure is reached from outside: base of links in emails.",
    )
    pg_bindir: Path | None = Field(
        default=None, description="Directory of pg_dump, pg_restore and psql; found if unset."
    )
    analytics_schedule: str | None = Field(
        default=None,
        description="Time of day (HH:MM, UTC) at which tenure serve computes the customer "
        "analytics every day; unset: only when you run tenure analytics run.",
    )
    analytics_period: Literal["day", "week", "month"] = Field(
        default="week", description="Time unit of the lifetime models in scheduled runs."
    )
    business_hours: str = Field(
        default="mon-fri 09:00-17:00",
        description="The service desk's working week, for service levels counted in business "
        "hours: days and opening times, e.g. 'mon-fri 09:00-17:00' or 'mon,wed 08:00-12:00'.",
    )
    business_timezone: str = Field(
        default="UTC", description="The time zone of the business hours, e.g. Europe/Berlin."
    )
    satisfaction_link_days: int = Field(
        default=14, ge=1, le=365, description="How long a satisfaction survey link stays valid."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator("analytics_schedule")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return datetime.strptime(value.strip(), "%H:%M").strftime("%H:%M")
        except ValueError:
            raise ValueError(f"{value!r} is not a time of day like 02:30 (UTC)") from None

    @property
    def analytics_time(self) -> time | None:
        """When scheduled analytics runs happen each day (UTC), if they do."""
        if self.analytics_schedule is None:
            return None
        return datetime.strptime(self.analytics_schedule, "%H:%M").time()

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        import phonenumbers

        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region phone numbers are known for (e.g. US, DE)")
        return region

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from tenure.service_desk.sla import parse_hours

        parse_hours("mon 09:00-17:00", value.strip())
        return value.strip()

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        from tenure.service_desk.sla import parse_hours

        parse_hours(value)
        return value.strip()

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tenure.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
