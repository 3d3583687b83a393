"""Encryption keys in use: ``tenure keys status``, ``rotate`` and ``retire``.

Rotation without downtime:

1. A new key is added to the key file as the primary (written atomically; the old keys
   stay, so everything sealed under them still opens). Running servers notice the file
   changed within ``TENURE_KEYRING_RELOAD_SECONDS`` and seal new writes under the new
   key; a value under a key they do not know yet makes them read the file at once.
2. Every value not under the primary is sealed again under it, in batches, each batch
   its own short transaction. A value is replaced only if it is still the one read
   (a concurrent change wins and is left alone). Records keep their version: nothing
   a person sees has changed.
3. Once servers have had the time to notice the new key, a last pass seals again what
   was written under the old key meanwhile.

Interrupted (Ctrl-C, a crash), it is resumed by running ``tenure keys rotate`` again: as
long as values are not under the primary key, rotate finishes that work and makes no new
key (``--resume`` does only that, never making a key).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    String,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)

from tenure.config import Settings
from tenure.customers import personal
from tenure.customers.models import Customer
from tenure.db import WRITE_OPTION
from tenure.security import fields, keyring
from tenure.security.fields import SEPARATOR, Sealer
from tenure.security.keyring import Keyring, KeyringError

# (field name, column): every sealed column there is.
SEALED = tuple((name, Customer.__table__.c[column]) for name, column in personal.CIPHER.items())
BATCH = 500
# After the key file changed, how much longer than a server's look at it to wait.
SETTLE_MARGIN_SECONDS = 1.0

Progress = Callable[[str, int, int], None]


class KeysError(Exception):
    """A key operation cannot be done; the message says why and what to do."""


def _key_id(column: ColumnElement[Any], dialect: str) -> ColumnElement[str]:
    """The key id at the start of a sealed value, in SQL."""
    if dialect == "postgresql":
        return func.split_part(column, SEPARATOR, 1)
    return func.substr(column, 1, func.instr(column, SEPARATOR) - 1)


@dataclass(frozen=True)
class KeyUse:
    """How many values each key seals, per field."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # key id -> field -> n

    def total(self, key_id: str) -> int:
        return sum(self.counts.get(key_id, {}).values())

    @property
    def key_ids(self) -> set[str]:
        return {k for k, per_field in self.counts.items() if any(per_field.values())}

    def not_under(self, key_id: str) -> int:
        return sum(self.total(k) for k in self.counts if k != key_id)


def key_use(engine: Engine) -> KeyUse:
    """Values per key id and field, counted in the database."""
    counts: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for name, column in SEALED:
            key = _key_id(column, conn.dialect.name).label("key_id")
            rows = conn.execute(
                select(key, func.count()).where(column.is_not(None)).group_by(key)
            ).all()
            for key_id, n in rows:
                counts.setdefault(str(key_id), {})[name] = int(n)
    return KeyUse(counts)


def _not_under(primary: str) -> ColumnElement[bool]:
    prefix = f"{primary}{SEPARATOR}%"
    return or_(*(and_(column.is_not(None), ~column.like(prefix)) for _n, column in SEALED))


@dataclass
class Rotation:
    """What a rotation did."""

    primary: str
    made_key: bool
    resealed: int = 0
    left: int = 0


def _file_keyring(settings: Settings) -> Keyring:
    if settings.keyring is not None:
        raise KeysError(
            "The keyring comes from TENURE_KEYRING, which Tenure cannot change: rotation "
            "needs the key file. Move the keyring into a file (TENURE_KEYRING_FILE), or "
            "rotate in a copy of it and put the new JSON in the variable."
        )
    try:
        return keyring.read_file(keyring.path_of(settings))
    except KeyringError as exc:
        raise KeysError(str(exc)) from None


def rotate(
    settings: Settings,
    engine: Engine,
    *,
    resume_only: bool = False,
    progress: Progress | None = None,
    batch: int = BATCH,
    settle: Callable[[float], None] = time.sleep,
) -> Rotation:
    """Make a new primary key (unless work of an earlier rotation is unfinished) and seal
    every value again under it."""
    current = _file_keyring(settings)
    path = keyring.path_of(settings)
    sealer = fields.sealer_for(settings)
    pending = _count(engine, current.primary)
    if pending or resume_only:
        result = Rotation(current.primary, made_key=False)
    else:
        current = current.rotated()
        keyring.write_file(path, current)
        result = Rotation(current.primary, made_key=True)
        pending = _count(engine, current.primary)
    if sealer.keyring.reload().primary != current.primary:
        raise KeysError(f"The key file {path} changed while rotating; run the command again.")
    report = progress or _no_progress
    result.resealed = _reseal_all(engine, sealer, current.primary, pending, batch, report)
    # Servers seal under the old key until they have looked at the file again.
    wait = path.stat().st_mtime + settings.keyring_reload_seconds + SETTLE_MARGIN_SECONDS
    if (remaining := wait - time.time()) > 0:
        settle(remaining)
    late = _count(engine, current.primary)
    if late:
        result.resealed += _reseal_all(engine, sealer, current.primary, late, batch, report)
    result.left = _count(engine, current.primary)
    return result


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


def _count(engine: Engine, primary: str) -> int:
    """How many sealed values are not under ``primary``."""
    use = key_use(engine)
    return use.not_under(primary)


def _reseal_all(
    engine: Engine, sealer: Sealer, primary: str, total: int, batch: int, report: Progress
) -> int:
    """Seal again under ``primary`` every value under another key, ``batch`` rows at a
    time, each batch in its own transaction; returns how many values were replaced."""
    table: Any = Customer.__table__
    columns = [column for _n, column in SEALED]
    done = 0
    last = 0
    report("re-encrypting", 0, total)
    writer = engine.execution_options(**{WRITE_OPTION: True})
    while True:
        with writer.begin() as conn:
            rows = conn.execute(
                select(table.c.id, *columns)
                .where(table.c.id > last, _not_under(primary))
                .order_by(table.c.id)
                .limit(batch)
            ).all()
            if not rows:
                break
            for position, (name, column) in enumerate(SEALED, start=1):
                changes = [
                    {"row_id": row[0], "old": row[position], "new": sealer.reseal(
                        personal.column_of(name), row[position])}
                    for row in rows
                    if row[position] is not None
                    and not row[position].startswith(f"{primary}{SEPARATOR}")
                ]  # fmt: skip
                if not changes:
                    continue
                conn.execute(
                    update(table)
                    .where(
                        table.c.id == bindparam("row_id"),
                        column == bindparam("old", type_=String()),
                    )
                    .values({column.key: bindparam("new", type_=String())}),
                    changes,
                )
                done += len(changes)
            last = rows[-1][0]
        report("re-encrypting", min(done, max(total, done)), max(total, done))
    return done


def retire(settings: Settings, engine: Engine, key_id: str) -> Keyring:
    """Remove ``key_id`` from the key file: refused while any value is sealed under it."""
    current = _file_keyring(settings)
    if key_id not in current.keys:
        raise KeysError(f"There is no key {key_id} in the keyring.")
    if key_id == current.primary:
        raise KeysError(f"{key_id} is the primary key: run 'tenure keys rotate' first.")
    used = key_use(engine).total(key_id)
    if used:
        raise KeysError(
            f"{used:,} values are still encrypted under {key_id}: run 'tenure keys rotate' "
            "to finish moving them to the primary key, then retire it."
        )
    smaller = current.without(key_id)
    keyring.write_file(keyring.path_of(settings), smaller)
    return smaller


def missing_keys(engine: Engine, current: Keyring) -> dict[str, int]:
    """Key ids used in the database that the keyring lacks, with how many values each."""
    use = key_use(engine)
    return {k: use.total(k) for k in sorted(use.key_ids - set(current.keys))}
