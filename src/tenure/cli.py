"""The ``tenure`` command line for operators."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tenure import __version__
from tenure.analytics.cli import app as analytics_app
from tenure.audit import recorder as audit_recorder
from tenure.audit.cli import app as audit_app
from tenure.audit.cli import cli_context
from tenure.config import get_settings
from tenure.core.errors import TenureError
from tenure.db import make_engine, make_sessionmaker, unit_of_work
from tenure.marketing.cli import app as campaigns_app
from tenure.observability import serving
from tenure.observability.cli import app as logs_app
from tenure.ops import commands as ops_commands
from tenure.ops import migrate, progress
from tenure.ops.keys_cli import app as encryption_keys_app
from tenure.security import fields
from tenure.security import service as security_service
from tenure.security.keyring import KeyringError
from tenure.security.models import Team
from tenure.security.permissions import Role
from tenure.security.schemas import TeamCreate, UserCreate

app = typer.Typer(help="Tenure CRM: set up, serve and operate.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
teams_app = typer.Typer(help="Manage teams (a manager sees their team's customers).")
app.add_typer(users_app, name="users")
app.add_typer(teams_app, name="teams")
app.add_typer(keys_app, name="api-keys")
ops_commands.register(app)
app.add_typer(logs_app, name="logs")
app.add_typer(audit_app, name="audit")
app.add_typer(analytics_app, name="analytics")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(encryption_keys_app, name="keys")
console = Console()
err = Console(stderr=True)


def _engine() -> Engine:
    return make_engine(get_settings())


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def _invalid(exc: ValidationError) -> str:
    """What was refused and why, one field a line (never the refused value itself)."""
    return "\n".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
    )


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"tenure {__version__}")


@app.command()
def init() -> None:
    """Create or migrate the database and make the first admin (once)."""
    from tenure.ops.setup import initialise

    settings = get_settings()
    try:
        result = initialise(make_engine(settings), settings)
    except ValidationError as exc:  # TENURE_ADMIN_EMAIL or TENURE_ADMIN_PASSWORD refused
        raise _fail("cannot create the first admin:\n" + _invalid(exc)) from None
    except KeyringError as exc:
        raise _fail(f"The keyring cannot be used: {exc}") from None
    if result.keyring_file:
        console.print(
            f"Encryption keys made in {result.keyring_file} (readable by you only). Back it "
            "up now, apart from the database backups: without it the customers' personal "
            "data cannot be read.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"Database ready at revision [bold]{result.revision}[/bold].")
    if result.admin_email:
        console.print(f"First admin: [bold]{result.admin_email}[/bold]")
        if result.generated_password:
            console.print(f"Password (shown once): [bold]{result.generated_password}[/bold]")
            console.print(f"Also saved, readable by you only, in {result.password_file}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve the web UI and API."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    settings = get_settings()
    current, head = migrate.revisions(make_engine(settings))
    if current != head:
        raise _fail(f"The database schema is at {current}, not {head}. Run 'tenure upgrade'.")
    try:
        fields.sealer_for(settings).keyring.current()
    except KeyringError as exc:
        raise _fail(
            f"The keyring cannot be used: {exc}. Customers' personal data cannot be read "
            "without it: restore the key file from its backup, or set TENURE_KEYRING_FILE."
        ) from None
    host, workers = host or settings.host, workers or settings.workers
    with serving.prepared(settings, host=host, workers=workers) as observed:
        config = uvicorn.Config(
            "tenure.asgi:app",
            host=host,
            port=port or settings.port,
            workers=workers,
            log_level=settings.log_level,
            proxy_headers=True,
            server_header=False,
            # On SIGTERM, requests in flight get this long to finish.
            timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
            # A worker starting on a busy machine may take longer than uvicorn's 5 s.
            timeout_worker_healthcheck=30,
            **observed,
        )
        if workers > 1:
            serving.run_workers(config)
        else:
            server = uvicorn.Server(config)
            server.run()
            if not server.started:
                raise typer.Exit(STARTUP_FAILURE)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, help="How many customers.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same data.")] = 7,
    if_empty: Annotated[bool, typer.Option(help="Only when there are no customers yet.")] = False,
) -> None:
    """Load realistic demo data: customers, products and two years of orders."""
    from tenure.ops import demo as demo_data

    settings = get_settings()
    engine = make_engine(settings)
    try:
        sealer = fields.sealer_for(settings)
        sealer.keyring.current()
    except KeyringError as exc:
        raise _fail(f"The keyring cannot be used: {exc}") from None
    if if_empty and demo_data.has_customers(engine):
        console.print("Customers exist already; demo data not loaded.")
        return
    with progress.counted(console) as report:
        stats = demo_data.load(
            engine, customers=customers, seed=seed, sealer=sealer, progress=report
        )
    console.print(
        f"Loaded {stats.customers:,} customers, {stats.products:,} products, "
        f"{stats.orders:,} orders with {stats.order_lines:,} lines, {stats.tickets:,} tickets "
        f"in {stats.seconds:.1f} s."
    )


def _team_named(session: Session, name: str) -> Team:
    team = security_service.get_team_by_name(session=session, name=name)
    if team is None:
        raise _fail(f"There is no team {name}; create it with 'tenure teams create'.")
    return team


@users_app.command("create")
def users_create(
    email: str,
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[Role, typer.Option(help="Role.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    team: Annotated[str | None, typer.Option(help="The team the user is in (by name).")] = None,
) -> None:
    """Create a user."""
    engine = _engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            team_id = _team_named(session, team).id if team else None
            data = UserCreate(email=email, name=name, password=password, role=role, team_id=team_id)
            user = security_service.create_user(session=session, data=data)
    except ValidationError as exc:
        raise _fail(_invalid(exc)) from None
    except (TenureError, ValueError) as exc:
        raise _fail(str(exc)) from None
    in_team = f", team {team}" if team else ""
    console.print(f"Created user {user.id} {user.email} ({user.role}{in_team}).")


@users_app.command("list")
def users_list() -> None:
    """List users."""
    engine = _engine()
    with unit_of_work(make_sessionmaker(engine), write=False) as session:
        table = Table("id", "email", "name", "role", "team", "active", "last login")
        for u in security_service.list_users(session=session):
            last = u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "-"
            team = u.team.name if u.team else "-"
            active = "yes" if u.is_active else "no"
            table.add_row(str(u.id), u.email, u.name, u.role, team, active, last)
    console.print(table)


@users_app.command("set-role")
def users_set_role(email: str, role: Role) -> None:
    """Change a user's role."""
    engine = _engine()
    with unit_of_work(make_sessionmaker(engine)) as session:
        user = security_service.get_user_by_email(session=session, email=email)
        if user is None:
            raise _fail(f"There is no user {email}.")
        security_service.set_role(session=session, user=user, role=role)
    console.print(f"{email} is now {role.value}.")


@users_app.command("set-team")
def users_set_team(
    email: str,
    team: Annotated[str | None, typer.Argument(help="The team's name; leave out for none.")] = None,
) -> None:
    """Put a user in a team, or (without a team) in none."""
    engine = _engine()
    with unit_of_work(make_sessionmaker(engine)) as session:
        user = security_service.get_user_by_email(session=session, email=email)
        if user is None:
            raise _fail(f"There is no user {email}.")
        team_id = _team_named(session, team).id if team else None
        security_service.set_team(session=session, user=user, team_id=team_id)
    console.print(f"{email} is now in team {team}." if team else f"{email} is in no team now.")


@teams_app.command("list")
def teams_list() -> None:
    """List teams and how many users are in each."""
    engine = _engine()
    with unit_of_work(make_sessionmaker(engine), write=False) as session:
        table = Table("id", "name", "members")
        for team, members in security_service.list_teams(session=session):
            table.add_row(str(team.id), team.name, str(members))
    console.print(table)


@teams_app.command("create")
def teams_create(name: str) -> None:
    """Create a team."""
    engine = _engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            team = security_service.create_team(session=session, data=TeamCreate(name=name))
    except ValidationError as exc:
        raise _fail(_invalid(exc)) from None
    except TenureError as exc:
        raise _fail(exc.detail) from None
    console.print(f"Created team {team.id} {team.name}.")


@users_app.command("disable")
def users_disable(email: str) -> None:
    """Disable a user and revoke their tokens and API keys."""
    engine = _engine()
    with unit_of_work(make_sessionmaker(engine)) as session:
        user = security_service.get_user_by_email(session=session, email=email)
        if user is None:
            raise _fail(f"There is no user {email}.")
        security_service.disable_user(session=session, user=user)
    console.print(f"{email} is disabled; their tokens and API keys are revoked.")


@keys_app.command("create")
def keys_create(
    email: Annotated[str, typer.Argument(help="The user the key acts as.")],
    name: Annotated[str, typer.Option(help="What the key is for.")],
) -> None:
    """Create an API key for a user; the key is printed once."""
    engine = _engine()
    with unit_of_work(make_sessionmaker(engine)) as session:
        user = security_service.get_user_by_email(session=session, email=email)
        if user is None:
            raise _fail(f"There is no user {email}.")
        record, key = security_service.create_api_key(session=session, user=user, name=name)
    console.print(f"API key {record.id} ({record.name}) for {email}; shown only now:")
    console.print(key, markup=False, highlight=False)


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke an API key by id."""
    engine = _engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            security_service.revoke_api_key(session=session, user=None, key_id=key_id)
    except TenureError as exc:
        raise _fail(exc.detail) from None
    console.print(f"API key {key_id} revoked.")


def main() -> None:
    audit_recorder.set_default_context(cli_context())
    app()
