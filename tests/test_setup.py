"""First-run set-up: the schema is migrated and the first admin is made exactly once."""

from __future__ import annotations

import stat
from collections.abc import Callable

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.app import create_app
from tenure.config import Settings
from tenure.ops import migrate
from tenure.ops.setup import PASSWORD_FILE, initialise
from tenure.security.models import User

ADMIN_EMAIL = "owner@example.com"
ADMIN_PASSWORD = "a-long-chosen-password"


def _users(sessions: sessionmaker[Session]) -> list[tuple[str, str, bool]]:
    with sessions() as s:
        return [(u.email, u.role, u.is_active) for u in s.scalars(select(User).order_by(User.id))]


def _sign_in(settings: Settings, engine: Engine, email: str, password: str) -> int:
    with TestClient(create_app(settings, engine=engine)) as client:
        r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return r.status_code


def test_it_migrates_a_new_database_to_the_latest_revision(
    fresh_settings: Settings, fresh_engine: Engine
) -> None:
    result = initialise(fresh_engine, fresh_settings)

    assert result.revision == migrate.head()
    assert migrate.current(fresh_engine) == migrate.head()


def test_it_creates_the_admin_with_the_configured_password(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    settings = settings.model_copy(
        update={"admin_email": ADMIN_EMAIL, "admin_password": SecretStr(ADMIN_PASSWORD)}
    )

    result = initialise(engine, settings)

    assert result.admin_email == ADMIN_EMAIL
    assert result.generated_password is None
    assert result.password_file is None
    assert not (settings.data_dir / PASSWORD_FILE).exists()
    assert _users(sessions) == [(ADMIN_EMAIL, "admin", True)]
    assert _sign_in(settings, engine, ADMIN_EMAIL, ADMIN_PASSWORD) == 200


def test_it_generates_a_password_saved_for_the_owner_only(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    settings = settings.model_copy(update={"admin_email": ADMIN_EMAIL, "admin_password": None})

    result = initialise(engine, settings)

    password = result.generated_password
    assert password is not None
    assert len(password) >= 16
    path = settings.data_dir / PASSWORD_FILE
    assert result.password_file == path
    assert path.read_text() == password + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _users(sessions) == [(ADMIN_EMAIL, "admin", True)]
    assert _sign_in(settings, engine, ADMIN_EMAIL, password) == 200


def test_running_it_again_makes_no_second_admin(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    settings = settings.model_copy(update={"admin_email": ADMIN_EMAIL, "admin_password": None})
    first = initialise(engine, settings)
    assert first.generated_password is not None

    second = initialise(engine, settings)

    assert second.revision == migrate.head()
    assert second.admin_email is None
    assert second.generated_password is None
    assert second.password_file is None
    assert _users(sessions) == [(ADMIN_EMAIL, "admin", True)]
    # The first password is still the one on file and still signs in.
    assert (settings.data_dir / PASSWORD_FILE).read_text() == first.generated_password + "\n"
    assert _sign_in(settings, engine, ADMIN_EMAIL, first.generated_password) == 200


def test_it_makes_no_admin_when_users_exist(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    make_user: Callable[..., User],
) -> None:
    existing = make_user("sales", email="first@example.com")

    result = initialise(engine, settings.model_copy(update={"admin_email": ADMIN_EMAIL}))

    assert result.admin_email is None
    assert _users(sessions) == [(existing.email, "sales", True)]
    assert not (settings.data_dir / PASSWORD_FILE).exists()
