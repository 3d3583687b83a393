"""The ``tenure`` command line, run for real in a subprocess against a database of its own.

The CLI gets a temporary data directory (``TENURE_DATA_DIR``) and, on a PostgreSQL run,
a fresh database on the test server (``TENURE_DATABASE_URL``). Data is arranged and
checked in-process through the services and the API on the same database. Each
subprocess costs about a second, so each test runs only the commands it is about.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from tenure import __version__
from tenure.app import create_app
from tenure.config import Settings
from tenure.db import make_sessionmaker, unit_of_work
from tenure.ops import migrate
from tenure.ops.setup import PASSWORD_FILE
from tenure.security import keyring
from tenure.security import service as security_service
from tenure.security.models import ApiKey, User
from tenure.security.permissions import Role
from tenure.security.schemas import UserCreate

PASSWORD = "a-long-enough-password"


@dataclass
class Cli:
    settings: Settings
    engine: Engine

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """``tenure <args>`` with this test's database; ``stdin`` answers any prompt."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
        env["TENURE_DATA_DIR"] = str(self.settings.data_dir)
        if self.settings.database_url:
            env["TENURE_DATABASE_URL"] = self.settings.database_url
        if self.settings.keyring_file:
            env["TENURE_KEYRING_FILE"] = str(self.settings.keyring_file)
        env["COLUMNS"] = "200"  # Rich wraps tables and long lines at the terminal width
        env["NO_COLOR"] = "1"
        return subprocess.run(
            [sys.executable, "-m", "tenure", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            # No controlling terminal: password prompts read stdin instead of /dev/tty.
            start_new_session=True,
        )

    def ok(self, *args: str, stdin: str = "") -> str:
        """Run a command that must succeed; its standard output."""
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        return result.stdout

    def make_user(self, email: str, role: Role = Role.SALES) -> None:
        with unit_of_work(make_sessionmaker(self.engine)) as s:
            security_service.create_user(
                session=s,
                data=UserCreate(email=email, name="Ann Lee", password=PASSWORD, role=role),
            )

    def user(self, email: str) -> User:
        with make_sessionmaker(self.engine)() as s:
            user = s.scalar(select(User).where(User.email == email))
            assert user is not None
            return user

    def client(self) -> TestClient:
        return TestClient(create_app(self.settings, engine=self.engine))


@pytest.fixture
def cli(fresh_settings: Settings, fresh_engine: Engine) -> Iterator[Cli]:
    yield Cli(settings=fresh_settings, engine=fresh_engine)


@pytest.fixture
def migrated_cli(cli: Cli) -> Cli:
    migrate.upgrade(cli.engine)
    return cli


def _sign_in(client: TestClient, email: str, password: str) -> int:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return r.status_code


def test_version_prints_the_version(cli: Cli) -> None:
    assert cli.ok("version") == f"tenure {__version__}\n"


def test_init_prints_the_admin_and_generated_password_once(cli: Cli) -> None:
    first = cli.ok("init")

    password = (cli.settings.data_dir / PASSWORD_FILE).read_text().strip()
    head = migrate.head()
    assert first.splitlines() == [
        f"Database ready at revision {head}.",
        "First admin: admin@example.com",
        f"Password (shown once): {password}",
        f"Also saved, readable by you only, in {cli.settings.data_dir / PASSWORD_FILE}",
    ]
    with cli.client() as client:
        assert _sign_in(client, "admin@example.com", password) == 200

    second = cli.ok("init")

    assert second.splitlines() == [f"Database ready at revision {head}."]
    assert cli.user("admin@example.com").role == "admin"


def test_init_makes_a_private_key_file_once_and_says_to_back_it_up(cli: Cli) -> None:
    cli.settings = cli.settings.model_copy(update={"keyring_file": None})
    path = cli.settings.data_dir / "keyring.json"

    first = cli.ok("init")

    assert first.splitlines()[0] == (
        f"Encryption keys made in {path} (readable by you only). Back it up now, apart "
        "from the database backups: without it the customers' personal data cannot be read."
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    made = keyring.read_file(path)
    assert list(made.keys) == [made.primary]

    second = cli.ok("init")

    assert "Encryption keys made" not in second
    assert keyring.read_file(path) == made


def test_serve_refuses_to_start_without_a_usable_keyring(cli: Cli) -> None:
    migrate.upgrade(cli.engine)
    missing = cli.settings.data_dir / "no-such-keyring.json"
    cli.settings = cli.settings.model_copy(update={"keyring_file": missing})

    result = cli.run("serve", "--port", "1")

    assert result.returncode == 1
    assert "The keyring cannot be used: the key file" in result.stderr
    assert "does not exist" in result.stderr


def test_upgrade_migrates_an_empty_database_and_is_a_no_op_at_head(cli: Cli) -> None:
    head = migrate.head()

    assert cli.ok("upgrade") == f"Schema: empty -> {head}\n"
    assert migrate.current(cli.engine) == head

    assert cli.ok("upgrade") == f"Schema: already at the latest revision, {head}.\n"
    assert migrate.current(cli.engine) == head


def test_users_create_asks_for_the_password_and_users_list_shows_the_user(
    migrated_cli: Cli,
) -> None:
    out = migrated_cli.ok(
        "users",
        "create",
        "ann@example.com",
        "--name",
        "Ann Lee",
        "--role",
        "sales",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )

    user = migrated_cli.user("ann@example.com")
    # The prompts (the answers are not echoed), then the result.
    assert out == (
        f"Password:Repeat for confirmation:Created user {user.id} ann@example.com (sales).\n"
    )
    assert (user.name, user.role, user.is_active) == ("Ann Lee", "sales", True)
    with migrated_cli.client() as client:
        assert _sign_in(client, "ann@example.com", PASSWORD) == 200

    listing = migrated_cli.ok("users", "list")

    rows = [line.split("│")[1:-1] for line in listing.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row][:6] for row in rows] == [
        [str(user.id), "ann@example.com", "Ann Lee", "sales", "-", "yes"]
    ]


def test_users_set_role_changes_the_role(migrated_cli: Cli) -> None:
    migrated_cli.make_user("ann@example.com", Role.SALES)

    out = migrated_cli.ok("users", "set-role", "ann@example.com", "manager")

    assert out == "ann@example.com is now manager.\n"
    assert migrated_cli.user("ann@example.com").role == "manager"


def test_teams_create_and_users_set_team_put_a_user_in_a_team_and_out(migrated_cli: Cli) -> None:
    migrated_cli.make_user("ann@example.com")

    assert migrated_cli.ok("teams", "create", "North").startswith("Created team ")
    assert migrated_cli.ok("users", "set-team", "ann@example.com", "north") == (
        "ann@example.com is now in team north.\n"
    )
    assert migrated_cli.user("ann@example.com").team_id is not None
    listing = migrated_cli.ok("teams", "list")
    rows = [line.split("│")[1:-1] for line in listing.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row][1:] for row in rows] == [["North", "1"]]

    migrated_cli.ok("users", "set-team", "ann@example.com")
    assert migrated_cli.user("ann@example.com").team_id is None


def test_users_set_team_refuses_an_unknown_team(migrated_cli: Cli) -> None:
    migrated_cli.make_user("ann@example.com")

    result = migrated_cli.run("users", "set-team", "ann@example.com", "Nowhere")

    assert result.returncode == 1
    assert "There is no team Nowhere" in result.stderr
    assert migrated_cli.user("ann@example.com").team_id is None


def test_users_disable_stops_the_user_signing_in(migrated_cli: Cli) -> None:
    migrated_cli.make_user("ann@example.com")

    out = migrated_cli.ok("users", "disable", "ann@example.com")

    assert out == "ann@example.com is disabled; their tokens and API keys are revoked.\n"
    assert migrated_cli.user("ann@example.com").is_active is False
    with migrated_cli.client() as client:
        assert _sign_in(client, "ann@example.com", PASSWORD) == 401


def test_api_key_works_against_the_api_until_revoked(migrated_cli: Cli) -> None:
    migrated_cli.make_user("ann@example.com")

    out = migrated_cli.ok("api-keys", "create", "ann@example.com", "--name", "billing sync")

    with make_sessionmaker(migrated_cli.engine)() as s:
        record = s.scalars(select(ApiKey)).one()
    announcement, key = out.splitlines()
    assert announcement == (
        f"API key {record.id} (billing sync) for ann@example.com; shown only now:"
    )
    assert key.startswith(record.prefix)
    headers = {"Authorization": f"Bearer {key}"}
    with migrated_cli.client() as client:
        r = client.get("/api/v1/auth/me", headers=headers)
        assert r.status_code == 200
        assert r.json()["email"] == "ann@example.com"

        assert migrated_cli.ok("api-keys", "revoke", str(record.id)) == (
            f"API key {record.id} revoked.\n"
        )

        assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_set_role_for_an_unknown_email_fails_with_a_clear_message(migrated_cli: Cli) -> None:
    result = migrated_cli.run("users", "set-role", "nobody@example.com", "manager")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "error: There is no user nobody@example.com.\n"


def test_creating_a_user_twice_fails_with_a_clear_message(migrated_cli: Cli) -> None:
    migrated_cli.make_user("ann@example.com")

    result = migrated_cli.run(
        "users",
        "create",
        "ann@example.com",
        "--name",
        "Someone Else",
        "--role",
        "support",
        "--password",
        PASSWORD,
    )

    assert result.returncode == 1
    assert result.stderr == "error: A user with email ann@example.com already exists.\n"
    assert migrated_cli.user("ann@example.com").role == "sales"
