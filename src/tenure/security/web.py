"""Admin and profile pages: users (create, role, team, disable, enable, password reset),
teams and API keys.

Thin handlers over ``security.service`` (the code the REST API calls): they parse the form,
call the service and render. Secrets (passwords, new API keys) are only ever in a form body
or in the one no-store page that shows a new key: never in a URL, a redirect or a log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from tenure.core.errors import Conflict, InvalidInput
from tenure.core.routing import SessionRouter
from tenure.deps import SessionDep
from tenure.security import service
from tenure.security.models import ApiKey, Team, User
from tenure.security.passwords import COMMON_PASSWORD, MIN_LENGTH
from tenure.security.permissions import (
    API_KEYS_MANAGE,
    USERS_READ,
    USERS_WRITE,
    Role,
    has_permission,
)
from tenure.security.schemas import ApiKeyCreate, TeamCreate, TeamUpdate, UserCreate, UserUpdate
from tenure.web.forms import FieldErrors, FormDep, form_dict, parse, path_id
from tenure.web.session import Csrf, WebUser, clear_session_cookie, page_require
from tenure.web.templating import gettext_for, render

UsersReader = Annotated[User, page_require(USERS_READ)]
UsersWriter = Annotated[User, page_require(USERS_WRITE)]
KeyHolder = Annotated[User, page_require(API_KEYS_MANAGE)]
Gettext = Callable[[str], str]

router = SessionRouter(include_in_schema=False)
# Shown again after a refused create; never the password.
USER_FIELDS = ("email", "name", "role", "team_id")
# Responses that show a secret are kept by no cache (and by no idempotent replay).
NO_STORE = {"Cache-Control": "no-store"}


def load_user(user_id: Annotated[int, Depends(path_id("user"))], session: SessionDep) -> User:
    """The user named in the path, or a 404 page."""
    return service.get_user(session=session, user_id=user_id)


UserDep = Annotated[User, Depends(load_user)]


KeyId = Annotated[int, Depends(path_id("key", "API key"))]


def role_labels(gettext: Gettext) -> dict[str, str]:
    """Each role's name in the reader's language (the same words the sidebar shows)."""
    return {
        Role.ADMIN.value: gettext("admin"),
        Role.MANAGER.value: gettext("manager"),
        Role.SALES.value: gettext("sales"),
        Role.SUPPORT.value: gettext("support"),
        Role.MARKETING.value: gettext("marketing"),
        Role.ANALYST.value: gettext("analyst"),
        Role.AUDITOR.value: gettext("auditor"),
    }


def _friendly(gettext: Gettext, errors: FieldErrors) -> FieldErrors:
    """Validation messages people can act on, in their language, per field."""
    messages = {
        "email": gettext("Enter an email address like name@example.com."),
        "name": gettext("Enter a name of up to 200 characters."),
        "password": gettext("Enter a password of at least %(min)s characters.")
        % {"min": MIN_LENGTH},
        "role": gettext("Choose one of the roles."),
    }
    if errors.get("password") == COMMON_PASSWORD:
        messages["password"] = gettext(
            "This password is one of the most common passwords, the first ones attackers try. "
            "Choose another."
        )
    return {field: messages.get(field, msg) for field, msg in errors.items()}


def _notices(gettext: Gettext) -> dict[str, str]:
    """What the page says after an action redirected back to it (``?saved=``)."""
    return {
        "created": gettext("The user was created and can sign in now."),
        "role": gettext("The role was changed. It applies from the user's next click."),
        "disabled": gettext(
            "The user was disabled: they cannot sign in, and their sessions and API keys "
            "were revoked."
        ),
        "enabled": gettext(
            "The user was enabled and can sign in again. Revoked API keys stay revoked."
        ),
        "password": gettext(
            "The password was changed. The user was signed out everywhere; their API keys "
            "still work."
        ),
        "revoked": gettext("The API key was revoked. It no longer works."),
        "team": gettext("The team was changed. It applies from the user's next click."),
    }


def _notice(request: Request, saved: str | None) -> str | None:
    return _notices(gettext_for(request)).get(saved or "")


def _last_admin_message(gettext: Gettext) -> str:
    return gettext(
        "This is the only active administrator. Make another user an administrator first."
    )


# ---------------------------------------------------------------- users list and create


@router.get("/admin/users")
def user_list(request: Request, session: SessionDep, _user: UsersReader) -> Response:
    return render(
        request,
        "admin/users.html",
        {
            "users": service.list_users(session=session),
            "roles": role_labels(gettext_for(request)),
        },
    )


def _team_options(session: Session) -> list[tuple[int, str]]:
    return [(team.id, team.name) for team, _members in service.list_teams(session=session)]


def _new_user_page(
    request: Request,
    session: Session,
    *,
    values: dict[str, Any],
    errors: FieldErrors,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/user_form.html",
        {
            "values": values,
            "errors": errors,
            "roles": role_labels(gettext_for(request)),
            "teams": _team_options(session),
            "min_length": MIN_LENGTH,
        },
        status_code=status_code,
    )


@router.get("/admin/users/new")
def new_user(request: Request, session: SessionDep, _user: UsersWriter) -> Response:
    return _new_user_page(request, session, values={"role": Role.SALES.value}, errors={})


@router.post("/admin/users/new", dependencies=[Csrf])
def create_user(
    request: Request, session: SessionDep, _user: UsersWriter, form: FormDep
) -> Response:
    data = {k: v for k, v in form_dict(form).items() if k in (*USER_FIELDS, "password")}
    values = {k: v for k, v in data.items() if k in USER_FIELDS}
    gettext = gettext_for(request)
    parsed, errors = parse(UserCreate, data)
    if parsed is None:
        errors = _friendly(gettext, errors)
    else:
        try:
            with session.begin_nested():
                user = service.create_user(session=session, data=parsed)
        except Conflict:
            errors = {"email": gettext("Another user already has this email address.")}
        except InvalidInput:
            errors = {"team_id": gettext("Choose one of the teams.")}
        else:
            return RedirectResponse(f"/admin/users/{user.id}?saved=created", status_code=303)
    return _new_user_page(request, session, values=values, errors=errors, status_code=422)


# ---------------------------------------------------------------- one user


def _user_page(
    request: Request,
    session: Session,
    *,
    target: User,
    errors: FieldErrors | None = None,
    notice: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/user.html",
        {
            "target": target,
            "keys": service.list_api_keys(session=session, user=target),
            "roles": role_labels(gettext_for(request)),
            "teams": _team_options(session),
            "errors": errors or {},
            "notice": notice,
            "problem": problem,
            "min_length": MIN_LENGTH,
        },
        status_code=status_code,
    )


@router.get("/admin/users/{user_id:int}")
def user_page(
    request: Request,
    session: SessionDep,
    _user: UsersReader,
    target: UserDep,
    saved: str | None = None,
) -> Response:
    return _user_page(request, session, target=target, notice=_notice(request, saved))


def _after_change(actor: User, target: User, saved: str) -> Response:
    """Back to the user's page; to the profile when the actor just took away their own access."""
    if actor.id == target.id and not has_permission(target.role, USERS_READ):
        return RedirectResponse("/profile", status_code=303)
    return RedirectResponse(f"/admin/users/{target.id}?saved={saved}", status_code=303)


def _signed_out() -> Response:
    """The actor ended their own sessions: off to sign in again."""
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.post("/admin/users/{user_id:int}/role", dependencies=[Csrf])
def change_role(
    request: Request, session: SessionDep, actor: UsersWriter, target: UserDep, form: FormDep
) -> Response:
    gettext = gettext_for(request)
    parsed, errors = parse(UserUpdate, {"role": form_dict(form).get("role")})
    if parsed is None or parsed.role is None:
        errors = _friendly(gettext, errors or {"role": ""})
        return _user_page(request, session, target=target, errors=errors, status_code=422)
    try:
        with session.begin_nested():
            service.update_user(session=session, user=target, data=parsed)
    except service.LastAdmin:
        return _user_page(
            request, session, target=target, problem=_last_admin_message(gettext), status_code=409
        )
    return _after_change(actor, target, "role")


@router.post("/admin/users/{user_id:int}/team", dependencies=[Csrf])
def change_team(
    request: Request, session: SessionDep, actor: UsersWriter, target: UserDep, form: FormDep
) -> Response:
    parsed, errors = parse(UserUpdate, {"team_id": form_dict(form).get("team_id")})
    if parsed is not None:
        try:
            with session.begin_nested():
                service.update_user(session=session, user=target, data=parsed)
        except InvalidInput:
            parsed = None
    if parsed is None:
        _ = gettext_for(request)
        errors = {"team_id": _("Choose one of the teams.")}
        return _user_page(request, session, target=target, errors=errors, status_code=422)
    return _after_change(actor, target, "team")


@router.post("/admin/users/{user_id:int}/disable", dependencies=[Csrf])
def disable_user(
    request: Request, session: SessionDep, actor: UsersWriter, target: UserDep
) -> Response:
    try:
        with session.begin_nested():
            service.disable_user(session=session, user=target)
    except service.LastAdmin:
        problem = _last_admin_message(gettext_for(request))
        return _user_page(request, session, target=target, problem=problem, status_code=409)
    if actor.id == target.id:
        return _signed_out()
    return _after_change(actor, target, "disabled")


@router.post("/admin/users/{user_id:int}/enable", dependencies=[Csrf])
def enable_user(session: SessionDep, actor: UsersWriter, target: UserDep) -> Response:
    service.enable_user(session=session, user=target)
    return _after_change(actor, target, "enabled")


@router.post("/admin/users/{user_id:int}/password", dependencies=[Csrf])
def reset_password(
    request: Request, session: SessionDep, actor: UsersWriter, target: UserDep, form: FormDep
) -> Response:
    gettext = gettext_for(request)
    password = form.get("password")
    confirm = form.get("password_confirm")
    parsed, errors = parse(UserUpdate, {"password": password if password else None})
    if parsed is None or parsed.password is None:
        errors = _friendly(gettext, errors or {"password": ""})
    elif password != confirm:
        errors = {"password_confirm": gettext("The two passwords differ. Type the same twice.")}
    else:
        service.reset_password(session=session, user=target, password=parsed.password)
        if actor.id == target.id:
            return _signed_out()
        return _after_change(actor, target, "password")
    return _user_page(request, session, target=target, errors=errors, status_code=422)


@router.post("/admin/users/{user_id:int}/api-keys/{key_id:int}/revoke", dependencies=[Csrf])
def revoke_users_key(
    session: SessionDep, actor: UsersWriter, target: UserDep, key_id: KeyId
) -> Response:
    service.revoke_api_key(session=session, user=target, key_id=key_id)
    return _after_change(actor, target, "revoked")


# ---------------------------------------------------------------- the signed-in user's profile


def _profile_page(
    request: Request,
    session: Session,
    *,
    user: User,
    new_key: tuple[ApiKey, str] | None = None,
    errors: FieldErrors | None = None,
    key_name: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    can_keys = has_permission(user.role, API_KEYS_MANAGE)
    return render(
        request,
        "profile/profile.html",
        {
            "keys": service.list_api_keys(session=session, user=user) if can_keys else [],
            "roles": role_labels(gettext_for(request)),
            "new_key": new_key,
            "errors": errors or {},
            "key_name": key_name,
            "notice": notice,
        },
        status_code=status_code,
        headers=headers,
    )


@router.get("/profile")
def profile(
    request: Request, session: SessionDep, user: WebUser, saved: str | None = None
) -> Response:
    return _profile_page(request, session, user=user, notice=_notice(request, saved))


@router.post("/profile/api-keys", dependencies=[Csrf])
def create_api_key(
    request: Request, session: SessionDep, user: KeyHolder, form: FormDep
) -> Response:
    name = form_dict(form).get("name")
    parsed, errors = parse(ApiKeyCreate, {"name": name})
    if parsed is None:
        gettext = gettext_for(request)
        errors = {"name": gettext("Name the key after what uses it, in up to 100 characters.")}
        return _profile_page(
            request, session, user=user, errors=errors, key_name=name, status_code=422
        )
    created = service.create_api_key(session=session, user=user, name=parsed.name)
    # Shown in this response only (a redirect would have to carry the key somewhere).
    return _profile_page(
        request, session, user=user, new_key=created, status_code=201, headers=NO_STORE
    )


@router.post("/profile/api-keys/{key_id:int}/revoke", dependencies=[Csrf])
def revoke_own_key(session: SessionDep, user: KeyHolder, key_id: KeyId) -> Response:
    service.revoke_api_key(session=session, user=user, key_id=key_id)
    return RedirectResponse("/profile?saved=revoked", status_code=303)


# ---------------------------------------------------------------- teams


def load_team(team_id: Annotated[int, Depends(path_id("team"))], session: SessionDep) -> Team:
    """The team named in the path, or a 404 page."""
    return service.get_team(session=session, team_id=team_id)


TeamDep = Annotated[Team, Depends(load_team)]


def _team_notices(gettext: Gettext) -> dict[str, str]:
    return {
        "created": gettext("The team was created. Put users in it on their pages."),
        "renamed": gettext("The team was renamed."),
        "deleted": gettext("The team was deleted."),
    }


def _teams_page(
    request: Request,
    session: Session,
    *,
    errors: FieldErrors | None = None,
    values: dict[str, Any] | None = None,
    problem: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/teams.html",
        {
            "teams": service.list_teams(session=session),
            "errors": errors or {},
            "values": values or {},
            "problem": problem,
            "notice": notice,
        },
        status_code=status_code,
    )


def _team_name_errors(gettext: Gettext, exc: Exception | None = None) -> FieldErrors:
    if isinstance(exc, service.TeamNameTaken):
        return {"name": gettext("Another team already has this name.")}
    return {"name": gettext("Enter a name of up to 100 characters.")}


@router.get("/admin/teams")
def team_list(
    request: Request, session: SessionDep, _user: UsersReader, saved: str | None = None
) -> Response:
    notice = _team_notices(gettext_for(request)).get(saved or "")
    return _teams_page(request, session, notice=notice)


@router.post("/admin/teams/new", dependencies=[Csrf])
def create_team(
    request: Request, session: SessionDep, _user: UsersWriter, form: FormDep
) -> Response:
    name = form_dict(form).get("name")
    gettext = gettext_for(request)
    parsed, errors = parse(TeamCreate, {"name": name})
    if parsed is not None:
        try:
            with session.begin_nested():
                service.create_team(session=session, data=parsed)
        except service.TeamNameTaken as exc:
            errors = _team_name_errors(gettext, exc)
        else:
            return RedirectResponse("/admin/teams?saved=created", status_code=303)
    else:
        errors = _team_name_errors(gettext)
    return _teams_page(request, session, errors=errors, values={"name": name}, status_code=422)


@router.post("/admin/teams/{team_id:int}/rename", dependencies=[Csrf])
def rename_team(
    request: Request, session: SessionDep, _user: UsersWriter, team: TeamDep, form: FormDep
) -> Response:
    gettext = gettext_for(request)
    parsed, _errors = parse(TeamUpdate, {"name": form_dict(form).get("name")})
    if parsed is not None:
        try:
            with session.begin_nested():
                service.rename_team(session=session, team=team, data=parsed)
        except service.TeamNameTaken as exc:
            problem = _team_name_errors(gettext, exc)["name"]
        else:
            return RedirectResponse("/admin/teams?saved=renamed", status_code=303)
    else:
        problem = _team_name_errors(gettext)["name"]
    return _teams_page(request, session, problem=problem, status_code=422)


@router.post("/admin/teams/{team_id:int}/delete", dependencies=[Csrf])
def delete_team(
    request: Request, session: SessionDep, _user: UsersWriter, team: TeamDep
) -> Response:
    try:
        with session.begin_nested():
            service.delete_team(session=session, team=team)
    except service.TeamNotEmpty:
        _ = gettext_for(request)
        problem = _("Users are still in the team %(name)s. Move them to another team first.") % {
            "name": team.name
        }
        return _teams_page(request, session, problem=problem, status_code=409)
    return RedirectResponse("/admin/teams?saved=deleted", status_code=303)
