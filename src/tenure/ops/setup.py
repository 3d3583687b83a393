"""First-time set-up: migrate the database and create the first admin."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from tenure.config import Settings
from tenure.customers import privacy
from tenure.db import make_sessionmaker, unit_of_work
from tenure.ops import migrate
from tenure.security import fields, keyring
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.passwords import generate_password
from tenure.security.permissions import Role
from tenure.security.schemas import UserCreate

PASSWORD_FILE = "initial-admin-password"


@dataclass(frozen=True)
class InitResult:
    revision: str | None
    admin_email: str | None
    generated_password: str | None
    password_file: Path | None
    keyring_file: Path | None = None  # made now: back it up, apart from the database


def initialise(engine: Engine, settings: Settings) -> InitResult:
    """Make the key file if there is none, bring the schema to the latest revision, and
    create the first admin if there are no users."""
    made = keyring.ensure_file(settings)
    sealer = fields.sealer_for(settings)
    sealer.keyring.current()  # a keyring that cannot be used stops here, before migrating
    migrate.upgrade(engine, sealer=sealer)
    privacy.settle(engine)  # SQLite: nothing a migration encrypted stays in the WAL
    sessions = make_sessionmaker(engine, sealer=sealer)
    with unit_of_work(sessions) as session:
        if session.scalar(select(func.count(User.id))):
            return InitResult(migrate.current(engine), None, None, None, made)
        given = settings.admin_password.get_secret_value() if settings.admin_password else None
        password = given or generate_password()
        security_service.create_user(
            session=session,
            data=UserCreate(
                email=settings.admin_email, name="Administrator", password=password, role=Role.ADMIN
            ),
        )
    password_file = None
    if given is None:
        password_file = _save_password(settings.data_dir, password)
    return InitResult(
        migrate.current(engine),
        settings.admin_email,
        None if given else password,
        password_file,
        made,
    )


def _save_password(data_dir: Path, password: str) -> Path:
    """Keep a generated password readable by the owner only, until they change it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / PASSWORD_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    return path
