"""Sign-in throttling: growing delays after repeated failures, per account and per address.

Failures are counted in the ``login_throttle`` table, one row per account (the email as
typed, lower-cased, whether or not such a user exists, so that throttling does not tell
which emails have accounts) and one per client address (IPv6 addresses by their /64, which
one machine usually holds whole). From the ``limit``-th failure within the window on, each
failure blocks further attempts for a delay that doubles, up to a ceiling; attempts while
blocked are refused without checking the password and do not count. A successful sign-in
clears the account's count but not the address's, so that signing in to one's own account
does not let an address go on guessing others' passwords.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tenure.config import Settings
from tenure.core.errors import TenureError
from tenure.core.time import utcnow
from tenure.security.models import LoginThrottle

ACCOUNT = "account"
ADDRESS = "address"
FIRST_DELAY_SECONDS = 1


@dataclass(frozen=True)
class Policy:
    """How many failures are free, and how long the delays after them grow."""

    account_failures: int = 5
    address_failures: int = 20
    max_delay_seconds: int = 900
    window_seconds: int = 3600

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            account_failures=settings.login_account_failures,
            address_failures=settings.login_address_failures,
            max_delay_seconds=settings.login_max_delay_seconds,
            window_seconds=settings.login_failure_window_seconds,
        )

    def limit(self, scope: str) -> int:
        return self.account_failures if scope == ACCOUNT else self.address_failures

    def delay(self, scope: str, failures: int) -> int:
        """Seconds to wait after the ``failures``-th failure in a row (0: none)."""
        over = failures - self.limit(scope)
        if over < 0:
            return 0
        # Past about 30 doublings any ceiling is reached; no need to compute 2**huge.
        return min(self.max_delay_seconds, FIRST_DELAY_SECONDS << min(over, 30))


DEFAULT_POLICY = Policy()


class TooManyAttempts(TenureError):
    """Sign-in refused for now, whatever the password; retry after ``retry_after`` seconds."""

    status = 429
    code = "too-many-attempts"
    title = "Too many sign-in attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-ins for this account or from this address. "
            f"Wait {retry_after} seconds, then try again."
        )
        self.retry_after = retry_after
        # no-store: a refusal for now is no result to keep (nor to replay for an Idempotency-Key).
        self.headers = {"Retry-After": str(retry_after), "Cache-Control": "no-store"}


def account_key(email: str) -> str:
    return email.strip().lower()[:320]


def address_key(address: str) -> str:
    """The address as counted: IPv6 by its /64 network, anything else as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:320]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _subjects(email: str, address: str | None) -> list[tuple[str, str]]:
    subjects = [(ACCOUNT, account_key(email))]
    if address:
        subjects.append((ADDRESS, address_key(address)))
    return subjects


def wait_seconds(
    *, session: Session, email: str, address: str | None, now: datetime | None = None
) -> int:
    """How long sign-in to ``email`` from ``address`` is refused for (0: not refused)."""
    now = now or utcnow()
    wanted = [
        (LoginThrottle.scope == scope) & (LoginThrottle.subject == subject)
        for scope, subject in _subjects(email, address)
    ]
    until = session.scalar(
        select(LoginThrottle.blocked_until)
        .where(or_(*wanted), LoginThrottle.blocked_until > now)
        .order_by(LoginThrottle.blocked_until.desc())
        .limit(1)
    )
    return 0 if until is None else max(1, math.ceil((until - now).total_seconds()))


def record_failure(
    *,
    session: Session,
    email: str,
    address: str | None,
    policy: Policy = DEFAULT_POLICY,
    now: datetime | None = None,
) -> None:
    """Count a failed sign-in against the account and the address; block them once over."""
    now = now or utcnow()
    for scope, subject in _subjects(email, address):
        failures = _count(session, scope, subject, now, policy)
        delay = policy.delay(scope, failures)
        if delay:
            session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.scope == scope, LoginThrottle.subject == subject)
                .values(blocked_until=now + timedelta(seconds=delay))
            )


def _count(session: Session, scope: str, subject: str, now: datetime, policy: Policy) -> int:
    """Add one failure (starting over when the last one is older than the window), in one
    statement so that workers failing at the same moment each count; the new count."""
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stale = LoginThrottle.last_failure_at < now - timedelta(seconds=policy.window_seconds)
    stmt = insert(LoginThrottle).values(
        scope=scope, subject=subject, failures=1, last_failure_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginThrottle.scope, LoginThrottle.subject],
        set_={
            "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
            "last_failure_at": now,
        },
    ).returning(LoginThrottle.failures)
    return int(session.execute(stmt).scalar_one())


def record_success(
    *, session: Session, email: str, policy: Policy = DEFAULT_POLICY, now: datetime | None = None
) -> None:
    """Clear the account's failures, and forget counts that no longer matter to anyone."""
    now = now or utcnow()
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.scope == ACCOUNT, LoginThrottle.subject == account_key(email)
        )
    )
    purge(session=session, policy=policy, now=now)


def purge(*, session: Session, policy: Policy = DEFAULT_POLICY, now: datetime | None = None) -> int:
    """Delete counts whose last failure is older than the window and that block nothing."""
    now = now or utcnow()
    result = session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < now - timedelta(seconds=policy.window_seconds),
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until <= now),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
