"""PostgreSQL's client tools (pg_dump, pg_restore, psql): where they are, how to connect."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import make_url

from tenure.config import Settings
from tenure.ops.errors import OpsError


class ToolNotFound(OpsError):
    """A PostgreSQL client tool is not installed where Tenure looks."""


def _pg_config_bindir() -> Path | None:
    if not shutil.which("pg_config"):
        return None
    result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
    return Path(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip() else None


def _debian_bindirs() -> list[Path]:
    """Debian's /usr/lib/postgresql/<major>/bin, newest first (a newer pg_dump reads older
    servers, not the other way round)."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    return sorted(found, key=lambda p: int(p.parent.name), reverse=True)


def find(tool: str, settings: Settings) -> str:
    """The path of ``tool``: TENURE_PG_BINDIR, then pg_config's, then Debian's newest, then PATH."""
    if settings.pg_bindir is not None:
        candidate = settings.pg_bindir / tool
        if os.access(candidate, os.X_OK):
            return str(candidate)
        raise ToolNotFound(f"{tool} is not in TENURE_PG_BINDIR ({settings.pg_bindir}).")
    for bindir in [_pg_config_bindir(), *_debian_bindirs()]:
        if bindir is not None and os.access(bindir / tool, os.X_OK):
            return str(bindir / tool)
    on_path = shutil.which(tool)
    if on_path:
        return on_path
    raise ToolNotFound(
        f"{tool} was not found. Install PostgreSQL's client tools (Debian: apt install "
        f"postgresql-client) or point TENURE_PG_BINDIR at the directory holding {tool}."
    )


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def connection(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for a SQLAlchemy URL, and the environment to run a tool in.

    The password travels in the environment (PGPASSWORD), never on a command line.
    """
    parsed = make_url(url)
    params: dict[str, str] = {}
    if parsed.host:
        params["host"] = parsed.host
    if parsed.port:
        params["port"] = str(parsed.port)
    if parsed.username:
        params["user"] = parsed.username
    if parsed.database:
        params["dbname"] = parsed.database
    for key, value in parsed.query.items():
        params[key] = value if isinstance(value, str) else ",".join(value)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return " ".join(f"{k}={_quote(v)}" for k, v in params.items()), env
