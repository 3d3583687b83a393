"""Sign-in, users, teams and API keys over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Response, status

from tenure.core.concurrency import check_if_match, etag
from tenure.core.errors import Unauthenticated
from tenure.core.openapi import problems
from tenure.core.routing import APIRouter
from tenure.core.schemas import Id
from tenure.deps import PrincipalDep, SessionDep, SettingsDep, require
from tenure.security import service, throttle
from tenure.security.models import Team
from tenure.security.permissions import API_KEYS_MANAGE, USERS_READ, USERS_WRITE
from tenure.security.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    LoginRequest,
    TeamCreate,
    TeamRead,
    TeamUpdate,
    TokenResponse,
    UserCreate,
    UserRead,
    UserUpdate,
)
from tenure.security.service import Principal

UsersReader = Annotated[Principal, Depends(require(USERS_READ))]
UsersWriter = Annotated[Principal, Depends(require(USERS_WRITE))]
KeyHolder = Annotated[Principal, Depends(require(API_KEYS_MANAGE))]

router = APIRouter(prefix="/api/v1", tags=["auth and users"])


# Responses that carry a secret are marked no-store: no cache (nor idempotent replay) keeps them.
NO_STORE = "no-store"


@router.post("/auth/login", response_model=TokenResponse, responses=problems(401, 429))
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenResponse:
    """Exchange email and password for a bearer token.

    After repeated failures for an account or from an address, sign-in answers 429 with
    `Retry-After` (seconds) for a while that grows with each further failure."""
    response.headers["Cache-Control"] = NO_STORE
    try:
        token, _user = service.login(
            session=session,
            email=body.email,
            password=body.password,
            ttl_seconds=settings.token_ttl_seconds,
            client_address=request.client.host if request.client else None,
            policy=throttle.Policy.from_settings(settings),
        )
    except Unauthenticated:
        session.commit()  # the failure counts towards throttling, though the answer is 401
        raise
    return TokenResponse(access_token=token, expires_in=settings.token_ttl_seconds)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(session: SessionDep, principal: PrincipalDep) -> Response:
    """Revoke the token this request was made with."""
    service.logout(session=session, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/auth/me", response_model=UserRead)
def me(principal: PrincipalDep) -> UserRead:
    """The signed-in user."""
    return UserRead.model_validate(principal.user)


@router.get("/users", response_model=list[UserRead])
def list_users(session: SessionDep, _actor: UsersReader) -> list[UserRead]:
    """Every user."""
    return [UserRead.model_validate(u) for u in service.list_users(session=session)]


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: SessionDep, _actor: UsersWriter) -> UserRead:
    """Create a user with a role."""
    return UserRead.model_validate(service.create_user(session=session, data=body))


@router.get("/users/{user_id}", response_model=UserRead)
def get_user(user_id: Id, response: Response, session: SessionDep, _actor: UsersReader) -> UserRead:
    user = service.get_user(session=session, user_id=user_id)
    response.headers["ETag"] = etag(user.version)
    return UserRead.model_validate(user)


@router.patch("/users/{user_id}", response_model=UserRead)
def update_user(
    user_id: Id,
    body: UserUpdate,
    response: Response,
    session: SessionDep,
    _actor: UsersWriter,
    if_match: str | None = Header(default=None),
) -> UserRead:
    """Change a user's name, role, password or active flag (false disables them)."""
    user = service.get_user(session=session, user_id=user_id)
    check_if_match(if_match, user.version)
    user = service.update_user(session=session, user=user, data=body)
    response.headers["ETag"] = etag(user.version)
    return UserRead.model_validate(user)


@router.get("/api-keys", response_model=list[ApiKeyRead])
def list_api_keys(session: SessionDep, actor: KeyHolder) -> list[ApiKeyRead]:
    """Your API keys (never the keys themselves)."""
    keys = service.list_api_keys(session=session, user=actor.user)
    return [ApiKeyRead.model_validate(k) for k in keys]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def create_api_key(
    body: ApiKeyCreate, response: Response, session: SessionDep, actor: KeyHolder
) -> ApiKeyCreated:
    """Create an API key for yourself. The key is in this response only."""
    response.headers["Cache-Control"] = NO_STORE
    record, key = service.create_api_key(session=session, user=actor.user, name=body.name)
    return ApiKeyCreated(**ApiKeyRead.model_validate(record).model_dump(), key=key)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_api_key(key_id: Id, session: SessionDep, actor: KeyHolder) -> Response:
    """Revoke one of your API keys."""
    service.revoke_api_key(session=session, user=actor.user, key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- teams ----------------------------------------------------------------------------


def _team(team: Team, members: int) -> TeamRead:
    return TeamRead(
        id=team.id,
        name=team.name,
        members=members,
        created_at=team.created_at,
        updated_at=team.updated_at,
        version=team.version,
    )


@router.get("/teams", response_model=list[TeamRead])
def list_teams(session: SessionDep, _actor: UsersReader) -> list[TeamRead]:
    """Every team, by name, with how many users are in it. A manager sees the customers
    owned by the members of their team."""
    return [_team(team, members) for team, members in service.list_teams(session=session)]


@router.post("/teams", response_model=TeamRead, status_code=status.HTTP_201_CREATED)
def create_team(
    body: TeamCreate, response: Response, session: SessionDep, _actor: UsersWriter
) -> TeamRead:
    """Create a team; names are unique, ignoring case (409 ``team-name-taken``)."""
    team = service.create_team(session=session, data=body)
    response.headers["Location"] = f"/api/v1/teams/{team.id}"
    response.headers["ETag"] = etag(team.version)
    return _team(team, 0)


@router.get("/teams/{team_id}", response_model=TeamRead)
def get_team(team_id: Id, response: Response, session: SessionDep, _actor: UsersReader) -> TeamRead:
    team = service.get_team(session=session, team_id=team_id)
    response.headers["ETag"] = etag(team.version)
    return _team(team, service.member_count(session=session, team_id=team.id))


@router.patch("/teams/{team_id}", response_model=TeamRead)
def rename_team(
    team_id: Id,
    body: TeamUpdate,
    response: Response,
    session: SessionDep,
    _actor: UsersWriter,
    if_match: str | None = Header(default=None),
) -> TeamRead:
    """Rename a team."""
    team = service.get_team(session=session, team_id=team_id)
    check_if_match(if_match, team.version)
    team = service.rename_team(session=session, team=team, data=body)
    response.headers["ETag"] = etag(team.version)
    return _team(team, service.member_count(session=session, team_id=team.id))


@router.delete("/teams/{team_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_team(
    team_id: Id,
    session: SessionDep,
    _actor: UsersWriter,
    if_match: str | None = Header(default=None),
) -> Response:
    """Delete a team nobody is in (409 ``team-not-empty`` otherwise: move its members first)."""
    team = service.get_team(session=session, team_id=team_id)
    check_if_match(if_match, team.version)
    service.delete_team(session=session, team=team)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
