"""``tenure keys``: the keys that encrypt customers' sensitive fields."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from tenure.audit import service as audit_service
from tenure.config import get_settings
from tenure.customers import personal
from tenure.db import make_engine, make_sessionmaker, unit_of_work
from tenure.ops import keys, progress
from tenure.security import keyring
from tenure.security.keyring import KeyringError

app = typer.Typer(
    help="Encryption keys of customers' sensitive fields: status, rotate, retire.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _record(engine: Engine, action: str, key_id: str, details: dict[str, Any]) -> None:
    """The key change in the audit log, once it is done."""
    with unit_of_work(make_sessionmaker(engine)) as session:
        audit_service.key_changed(session=session, action=action, key_id=key_id, details=details)


def _fail(message: str) -> typer.Exit:
    err.print(Text("error: ", style="red").append(message, style=""))
    return typer.Exit(code=1)


@app.command()
def status() -> None:
    """How many values are encrypted under each key, per field."""
    settings = get_settings()
    try:
        current = keyring.load(settings)
    except KeyringError as exc:
        raise _fail(f"The keyring cannot be used: {exc}") from None
    engine = make_engine(settings)
    try:
        use = keys.key_use(engine)
    finally:
        engine.dispose()
    table = Table("key", "created", *personal.FIELDS, "total", title="Encrypted values per key")
    for key_id in sorted(set(current.keys) | use.key_ids):
        per_field = use.counts.get(key_id, {})
        if key_id not in current.keys:
            label = Text(f"{key_id} (missing from the keyring!)", style="bold red")
        elif key_id == current.primary:
            label = Text(f"{key_id} (primary)", style="bold")
        else:
            label = Text(key_id)
        table.add_row(
            label,
            current.created.get(key_id, "-"),
            *(f"{per_field.get(name, 0):,}" for name in personal.FIELDS),
            f"{use.total(key_id):,}",
        )
    console.print(table)
    source = "TENURE_KEYRING" if settings.keyring else str(keyring.path_of(settings))
    console.print(f"Keyring: {source}", markup=False, highlight=False)
    pending = use.not_under(current.primary)
    if pending:
        console.print(
            f"{pending:,} values are not under the primary key: run 'tenure keys rotate' to "
            "finish moving them."
        )
    missing = set(use.key_ids) - set(current.keys)
    if missing:
        raise _fail(
            f"Values are encrypted under keys the keyring lacks ({', '.join(sorted(missing))}): "
            "they cannot be read. Put those keys back from your key backup."
        )


@app.command()
def rotate(
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Only finish an interrupted rotation; never make a new key."),
    ] = False,
) -> None:
    """Make a new primary key and re-encrypt every value under it, in batches, while the
    server keeps running. Run again after an interruption: it resumes where it stopped."""
    settings = get_settings()
    engine = make_engine(settings)
    try:
        with progress.counted(console, "values") as report:
            result = keys.rotate(settings, engine, resume_only=resume, progress=report)
        _record(
            engine,
            "keys.rotated",
            result.primary,
            {"new_key": result.made_key, "values": result.resealed, "left": result.left},
        )
    except (keys.KeysError, KeyringError) as exc:
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    if result.made_key:
        console.print(f"New primary key {result.primary}.")
    else:
        console.print(f"Resumed: the primary key is still {result.primary}; no key was made.")
    console.print(f"Re-encrypted {result.resealed:,} values.")
    if result.left:
        console.print(
            f"{result.left:,} values were written under an older key meanwhile: run "
            "'tenure keys rotate' again to move them."
        )
    else:
        console.print(
            "Every value is under the primary key. Back up the key file now; older keys "
            "can be removed with 'tenure keys retire KEY'."
        )


@app.command()
def retire(key_id: Annotated[str, typer.Argument(help="The key to remove.")]) -> None:
    """Remove a key that no value is encrypted under any more."""
    settings = get_settings()
    engine = make_engine(settings)
    try:
        keys.retire(settings, engine, key_id)
        _record(engine, "keys.retired", key_id, {})
    except keys.KeysError as exc:
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    console.print(f"Key {key_id} removed from the keyring.")
