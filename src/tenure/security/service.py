"""Users, sign-in tokens and API keys: plain functions over a Session."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import FromClause, bindparam, func, select, update
from sqlalchemy.orm import Session

from tenure.audit import service as audit
from tenure.core.errors import Conflict, NotFound, Unauthenticated, field_error
from tenure.core.time import utcnow
from tenure.db import Prepared, ReadsIn
from tenure.security import scope as scopes
from tenure.security import throttle
from tenure.security.models import AccessToken, ApiKey, Team, User
from tenure.security.passwords import hash_password, needs_rehash, verify_password
from tenure.security.permissions import Role, Scope, scope_of
from tenure.security.schemas import TeamCreate, TeamUpdate, UserCreate, UserUpdate
from tenure.security.scope import RecordScope

TOKEN_PREFIX = "tnt_"
KEY_USE_PRECISION = timedelta(minutes=5)
API_KEY_PREFIX = "tnk_"


def _digest(secret: str) -> str:
    # Tokens are 256-bit random values, so a fast hash is enough (no brute force possible).
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Principal:
    """Who is calling, and through which credential.

    Most requests need only the role; ``user`` is loaded from ``session`` on first use."""

    user_id: int
    role: str
    session: Session = field(repr=False, compare=False)
    token_id: int | None = None
    api_key_id: int | None = None
    loaded_user: User | None = field(default=None, repr=False, compare=False)
    # The API key's last use is older than a few minutes: note this one (record_key_use).
    key_use_due: bool = False

    @property
    def user(self) -> User:
        if self.loaded_user is None:
            self.loaded_user = get_user(session=self.session, user_id=self.user_id)
        return self.loaded_user


def get_user(*, session: Session, user_id: int) -> User:
    """A user by id, or ``NotFound``."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"There is no user {user_id}.")
    return user


def get_user_by_email(*, session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def list_users(*, session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(select(User).order_by(User.name, User.id)))


def create_user(*, session: Session, data: UserCreate) -> User:
    """A new active user; the email must be free."""
    if get_user_by_email(session=session, email=data.email) is not None:
        raise Conflict(f"A user with email {data.email} already exists.")
    _check_team(session, data.team_id)
    user = User(
        email=data.email,
        name=data.name,
        role=data.role.value,
        password_hash=hash_password(data.password),
        is_active=True,
        team_id=data.team_id,
    )
    session.add(user)
    session.flush()
    return user


class LastAdmin(Conflict):
    """Refused: the change would leave nobody able to manage users."""

    code = "last-admin"
    title = "At least one administrator must remain"


def _check_an_admin_remains(*, session: Session, user: User, data: UserUpdate) -> None:
    demoted = data.role is not None and data.role != Role.ADMIN
    if (
        user.role != Role.ADMIN.value
        or not user.is_active
        or not (demoted or data.is_active is False)
    ):
        return
    # Every active admin is locked, so two admins removing each other at once cannot both win.
    admins = session.scalars(
        select(User.id).where(User.role == Role.ADMIN.value, User.is_active).with_for_update()
    ).all()
    if not any(admin_id != user.id for admin_id in admins):
        raise LastAdmin(
            f"{user.email} is the only active administrator; make another user an "
            "administrator first."
        )


def update_user(*, session: Session, user: User, data: UserUpdate) -> User:
    """Change name, role, password or active flag.

    A new password ends the user's sign-ins (their API keys stay); disabling revokes every
    credential; the last active administrator can be neither demoted nor disabled.
    """
    _check_an_admin_remains(session=session, user=user, data=data)
    if data.name is not None:
        user.name = data.name
    if data.role is not None:
        user.role = data.role.value
    if data.password is not None:
        user.password_hash = hash_password(data.password)
        end_sign_ins(session=session, user=user)
    if data.is_active is not None:
        user.is_active = data.is_active
        if not data.is_active:
            revoke_all_credentials(session=session, user=user)
    if "team_id" in data.model_fields_set:
        _check_team(session, data.team_id)
        user.team_id = data.team_id
    session.flush()
    return user


def set_team(*, session: Session, user: User, team_id: int | None) -> User:
    """Put the user in a team (None: in none)."""
    return update_user(session=session, user=user, data=UserUpdate(team_id=team_id))


# --- teams ----------------------------------------------------------------------------


def _check_team(session: Session, team_id: int | None) -> None:
    if team_id is not None and session.get(Team, team_id) is None:
        raise field_error("team_id", f"There is no team {team_id}.")


def get_team(*, session: Session, team_id: int) -> Team:
    """A team by id, or ``NotFound``."""
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"There is no team {team_id}.")
    return team


def get_team_by_name(*, session: Session, name: str) -> Team | None:
    """A team by name, ignoring case."""
    return session.scalar(select(Team).where(func.lower(Team.name) == name.strip().lower()))


def list_teams(*, session: Session) -> list[tuple[Team, int]]:
    """Every team by name, with how many users are in it."""
    members = (
        select(User.team_id, func.count(User.id).label("n"))
        .where(User.team_id.is_not(None))
        .group_by(User.team_id)
        .subquery()
    )
    rows = session.execute(
        select(Team, func.coalesce(members.c.n, 0))
        .outerjoin(members, members.c.team_id == Team.id)
        .order_by(Team.name, Team.id)
    )
    return [(team, count) for team, count in rows]


def team_members(*, session: Session, team_id: int) -> list[User]:
    """The users in a team, by name."""
    return list(
        session.scalars(select(User).where(User.team_id == team_id).order_by(User.name, User.id))
    )


def member_count(*, session: Session, team_id: int) -> int:
    return session.scalar(select(func.count(User.id)).where(User.team_id == team_id)) or 0


class TeamNameTaken(Conflict):
    code = "team-name-taken"
    title = "A team of that name exists"


class TeamNotEmpty(Conflict):
    code = "team-not-empty"
    title = "The team still has members"


def _check_name_free(session: Session, name: str, team_id: int | None = None) -> None:
    found = get_team_by_name(session=session, name=name)
    if found is not None and found.id != team_id:
        raise TeamNameTaken(f"There is already a team named {found.name}.")


def create_team(*, session: Session, data: TeamCreate) -> Team:
    """A new team; names are unique, ignoring case."""
    _check_name_free(session, data.name)
    team = Team(name=data.name)
    session.add(team)
    session.flush()
    return team


def rename_team(*, session: Session, team: Team, data: TeamUpdate) -> Team:
    """Give a team another name."""
    _check_name_free(session, data.name, team.id)
    team.name = data.name
    session.flush()
    return team


def delete_team(*, session: Session, team: Team) -> None:
    """Remove a team that nobody is in any more."""
    count = member_count(session=session, team_id=team.id)
    if count:
        raise TeamNotEmpty(
            f"{count} user(s) are still in the team {team.name}; move them to another team first."
        )
    session.delete(team)
    session.flush()


def scope_for(*, session: Session, user_id: int, role: str) -> RecordScope:
    """The customers ``user_id`` reaches with ``role``: their own, their team's (a manager
    without a team: their own) or every one."""
    known = scope_without_team(user_id=user_id, role=role)
    if known is not None:
        return known
    team_id = session.scalar(select(User.team_id).where(User.id == user_id))
    if team_id is None:
        return scopes.team(user_id, set())
    members = session.scalars(select(User.id).where(User.team_id == team_id))
    return scopes.team(user_id, set(members))


def scope_without_team(*, user_id: int, role: str) -> RecordScope | None:
    """The scope of a role that reaches their own customers or every one; None for a
    team's, which only the database knows."""
    kind = scope_of(role)
    if kind is Scope.ALL:
        return RecordScope(Scope.ALL, None, user_id)
    if kind is Scope.OWN:
        return scopes.own(user_id)
    return None


def set_role(*, session: Session, user: User, role: Role) -> User:
    return update_user(session=session, user=user, data=UserUpdate(role=role))


def disable_user(*, session: Session, user: User) -> User:
    return update_user(session=session, user=user, data=UserUpdate(is_active=False))


def enable_user(*, session: Session, user: User) -> User:
    """Let a disabled user sign in again; their old tokens and keys stay revoked."""
    return update_user(session=session, user=user, data=UserUpdate(is_active=True))


def reset_password(*, session: Session, user: User, password: str) -> User:
    """Set a new password chosen by an administrator; the user's sign-ins end."""
    return update_user(session=session, user=user, data=UserUpdate(password=password))


def end_sign_ins(*, session: Session, user: User) -> None:
    """Revoke every sign-in token (browser sessions included) of ``user``."""
    now = utcnow()
    for token in session.scalars(
        select(AccessToken).where(AccessToken.user_id == user.id, AccessToken.revoked_at.is_(None))
    ):
        token.revoked_at = now


def revoke_all_credentials(*, session: Session, user: User) -> None:
    now = utcnow()
    end_sign_ins(session=session, user=user)
    for key in session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    ):
        key.revoked_at = now


def login(
    *,
    session: Session,
    email: str,
    password: str,
    ttl_seconds: int,
    client_address: str | None = None,
    policy: throttle.Policy = throttle.DEFAULT_POLICY,
) -> tuple[str, User]:
    """Check the password and issue a bearer token; the same error for every failure.

    After repeated failures for the account or from ``client_address``, attempts are
    refused for a growing while (``throttle.TooManyAttempts``), the password unchecked.
    A failure is counted in ``session``: the caller commits it even though it answers an
    error (the web page does, the API's route commits before raising)."""
    user = get_user_by_email(session=session, email=email)
    wait = throttle.wait_seconds(session=session, email=email, address=client_address)
    if wait:
        audit.login_throttled(session=session, email=email, user=user, wait_seconds=wait)
        raise throttle.TooManyAttempts(wait)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        throttle.record_failure(session=session, email=email, address=client_address, policy=policy)
        reason = "unknown account" if user is None else "wrong password" if not ok else "disabled"
        audit.login_failed(session=session, email=email, user=user, reason=reason)
        raise Unauthenticated("The email or password is wrong, or the account is disabled.")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    throttle.record_success(session=session, email=email, policy=policy)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        AccessToken(
            user_id=user.id,
            token_hash=_digest(token),
            expires_at=utcnow() + timedelta(seconds=ttl_seconds),
        )
    )
    session.flush()
    audit.login_succeeded(session=session, user=user)
    return token, user


def logout(*, session: Session, principal: Principal) -> None:
    """Revoke the token the caller signed in with."""
    if principal.token_id is not None:
        token = session.get(AccessToken, principal.token_id)
        if token is not None and token.revoked_at is None:
            token.revoked_at = utcnow()
            session.flush()
            audit.logged_out(session=session, user=principal.user)


_USER = User.__table__


def _live(credentials: FromClause, digest: str, also: str) -> Prepared:
    """A credential by its digest, unless revoked or its user is disabled: its id, its
    ``also`` column, and its user's id and role. Every request runs one of these: built
    once, a call only binds the digest, and no ORM object is made (the user is loaded
    only if asked for)."""
    return Prepared(
        select(credentials.c.id, credentials.c[also], _USER.c.id, _USER.c.role)
        .join(_USER, _USER.c.id == credentials.c.user_id)
        .where(
            credentials.c[digest] == bindparam("digest"),
            credentials.c.revoked_at.is_(None),
            _USER.c.is_active,
        )
    )


_TOKEN_LOOKUP = _live(AccessToken.__table__, "token_hash", also="expires_at")
_API_KEY_LOOKUP = _live(ApiKey.__table__, "key_hash", also="last_used_at")


class Holder(NamedTuple):
    """Who holds a credential, and which one it is."""

    user_id: int
    role: str
    token_id: int | None = None
    api_key_id: int | None = None
    # The API key's last use is older than a few minutes: note this one (record_key_use).
    key_use_due: bool = False


def holder(on: ReadsIn, credential: str) -> Holder | None:
    """The holder of ``credential``, a sign-in token or an API key, while it is live and
    its user active; None otherwise. Read on every request, so a revoked token, a revoked
    key or a disabled user is refused from the next request on."""
    now = utcnow()
    if credential.startswith(API_KEY_PREFIX):
        row = _API_KEY_LOOKUP.first(on, digest=_digest(credential))
        if row is None:
            return None
        key_id, last_used_at, user_id, role = row
        # Noted at most every few minutes, not on every call, and not here: a read stays a
        # read (the caller notes it afterwards).
        due = last_used_at is None or now - last_used_at > KEY_USE_PRECISION
        return Holder(user_id, role, api_key_id=key_id, key_use_due=due)
    row = _TOKEN_LOOKUP.first(on, digest=_digest(credential))
    if row is None or row[1] <= now:
        return None
    token_id, _expires_at, user_id, role = row
    return Holder(user_id, role, token_id=token_id)


def authenticate(*, session: Session, credential: str) -> Principal:
    """The principal behind a bearer token or API key (see ``holder``), or
    ``Unauthenticated``."""
    found = holder(session, credential)
    if found is None:
        if credential.startswith(API_KEY_PREFIX):
            raise Unauthenticated("The API key is unknown or revoked.")
        raise Unauthenticated("The token is unknown, expired or revoked. Sign in again.")
    return Principal(session=session, **found._asdict())


def record_key_use(*, session: Session, key_id: int) -> None:
    """Note that an API key was used just now."""
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))


def create_api_key(*, session: Session, user: User, name: str) -> tuple[ApiKey, str]:
    """A new API key for ``user``; the key itself is returned only here."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(user_id=user.id, name=name, prefix=key[:12], key_hash=_digest(key))
    session.add(record)
    session.flush()
    return record, key


def list_api_keys(*, session: Session, user: User) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id))
    )


def revoke_api_key(*, session: Session, user: User | None, key_id: int) -> ApiKey:
    """Revoke one key; ``user`` limits it to that user's keys (None: any key, for admins)."""
    key = session.get(ApiKey, key_id)
    if key is None or (user is not None and key.user_id != user.id):
        raise NotFound(f"There is no API key {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    return key


def set_locale(*, session: Session, user: User, locale: str | None) -> User:
    """Remember the user's language for the web UI (None: follow the browser)."""
    user.locale = locale
    session.flush()
    return user
