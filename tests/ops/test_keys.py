"""``tenure keys``: how many values each key seals, rotation to a new key (interrupted and
resumed), and retiring a key no value uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.audit.models import AuditEntry
from tenure.config import Settings
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate
from tenure.db import make_sessionmaker, unit_of_work
from tenure.ops import keys
from tenure.security import fields, keyring
from tenure.security import service as security_service
from tenure.security.permissions import Role
from tenure.security.schemas import UserCreate
from tenure.security.scope import EVERYTHING
from tests.ops.conftest import RunCli

PEOPLE: list[dict[str, Any]] = [
    {"name": "Ann", "email": "ann@example.com", "phone": "+1 415 555 0101"},
    {"name": "Ben", "email": "ben@example.com", "tax_id": "X-1"},
    {"name": "Cy", "address": {"city": "Oslo", "country": "NO"}, "birth_date": "1990-01-02"},
    {"name": "Di", "email": "di@example.com", "phone": "+44 20 7946 0002"},
    {"name": "Ed"},
]


@pytest.fixture
def own(fresh_settings: Settings, tmp_path: Path) -> Settings:
    """This test's database and key file of its own (a rotation changes the file)."""
    path = tmp_path / "own-keyring.json"
    keyring.write_file(path, keyring.generate())
    return fresh_settings.model_copy(update={"keyring_file": path, "keyring_reload_seconds": 0})


@pytest.fixture
def sessions(own: Settings, migrated: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(migrated, sealer=fields.sealer_for(own))


@pytest.fixture
def people(sessions: sessionmaker[Session]) -> list[int]:
    with unit_of_work(sessions) as s:
        actor = security_service.create_user(
            session=s,
            data=UserCreate(
                email="keys@example.com", name="K", password="a-long-pass-phrase", role=Role.ADMIN
            ),
        )
        return [
            customers_service.create(
                session=s, data=CustomerCreate(**p), actor=actor, scope=EVERYTHING
            ).id
            for p in PEOPLE
        ]


def _clear(sessions: sessionmaker[Session]) -> dict[int, dict[str, Any]]:
    with sessions() as s:
        return {
            c.id: customers_service.revealed_fields(session=s, customer=c)
            for c in s.scalars(select(Customer))
        }


def _versions(sessions: sessionmaker[Session]) -> dict[int, int]:
    with sessions() as s:
        return {c.id: c.version for c in s.scalars(select(Customer))}


class Waits:
    """Stands in for ``time.sleep`` in rotate's wait for servers: records, never sleeps."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def test_status_counts_the_values_under_each_key_per_field(
    own: Settings, migrated: Engine, people: list[int]
) -> None:
    primary = keyring.load(own).primary

    use = keys.key_use(migrated)

    assert use.counts == {
        primary: {"email": 3, "phone": 2, "address": 1, "birth_date": 1, "tax_id": 1}
    }
    assert (use.total(primary), use.not_under(primary)) == (8, 0)


def test_rotate_makes_a_new_primary_and_reseals_every_value_under_it(
    own: Settings, migrated: Engine, sessions: sessionmaker[Session], people: list[int]
) -> None:
    before, versions, old = _clear(sessions), _versions(sessions), keyring.load(own)
    waits = Waits()

    result = keys.rotate(own, migrated, settle=waits)

    new = keyring.load(own)
    assert (result.made_key, result.primary, result.resealed, result.left) == (
        True,
        new.primary,
        8,
        0,
    )
    assert new.primary != old.primary
    assert set(new.keys) == {old.primary, new.primary}  # the old key stays for reading
    assert new.index_key == old.index_key
    assert keys.key_use(migrated).counts == {
        new.primary: {"email": 3, "phone": 2, "address": 1, "birth_date": 1, "tax_id": 1}
    }
    assert _clear(sessions) == before
    assert _versions(sessions) == versions  # nothing a person sees has changed
    assert len(waits.seconds) <= 1 and all(0 < s <= 1.0 for s in waits.seconds)


def test_an_interrupted_rotation_resumes_without_making_another_key(
    own: Settings, migrated: Engine, sessions: sessionmaker[Session], people: list[int]
) -> None:
    before = _clear(sessions)
    seen: list[int] = []

    def stop_after_the_first_batch(_stage: str, done: int, _total: int) -> None:
        seen.append(done)
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        keys.rotate(own, migrated, batch=2, progress=stop_after_the_first_batch, settle=Waits())

    made = keyring.load(own).primary
    halfway = keys.key_use(migrated)
    assert 0 < halfway.total(made) < 8 and halfway.not_under(made) > 0

    resumed = keys.rotate(own, migrated, batch=2, settle=Waits())

    assert (resumed.made_key, resumed.primary, resumed.left) == (False, made, 0)
    assert resumed.resealed == halfway.not_under(made)
    assert len(keyring.load(own).keys) == 2
    assert keys.key_use(migrated).not_under(made) == 0
    assert _clear(sessions) == before


def test_resume_with_nothing_to_finish_makes_no_key(
    own: Settings, migrated: Engine, people: list[int]
) -> None:
    primary = keyring.load(own).primary

    result = keys.rotate(own, migrated, resume_only=True, settle=Waits())

    assert (result.made_key, result.primary, result.resealed) == (False, primary, 0)
    assert list(keyring.load(own).keys) == [primary]


def test_a_keyring_from_the_environment_cannot_be_rotated(own: Settings, migrated: Engine) -> None:
    from_env = own.model_copy(update={"keyring": keyring.generate().to_json().decode()})

    with pytest.raises(keys.KeysError, match="rotation needs the key file"):
        keys.rotate(from_env, migrated, settle=Waits())


def test_retire_removes_a_key_once_no_value_uses_it(
    own: Settings, migrated: Engine, sessions: sessionmaker[Session], people: list[int]
) -> None:
    old = keyring.load(own).primary
    keyring.write_file(keyring.path_of(own), keyring.load(own).rotated())
    new = keyring.load(own).primary

    with pytest.raises(keys.KeysError, match="8 values are still encrypted under"):
        keys.retire(own, migrated, old)
    with pytest.raises(keys.KeysError, match="is the primary key"):
        keys.retire(own, migrated, new)

    keys.rotate(own, migrated, resume_only=True, settle=Waits())
    keys.retire(own, migrated, old)

    assert list(keyring.load(own).keys) == [new]
    assert _clear(sessions)[people[0]]["email"] == "ann@example.com"


def test_keys_commands_show_status_rotate_and_retire(
    run_cli: RunCli, own: Settings, migrated: Engine, people: list[int]
) -> None:
    env = {"TENURE_KEYRING_FILE": str(own.keyring_file), "TENURE_KEYRING_RELOAD_SECONDS": "0"}
    old = keyring.load(own).primary

    status = run_cli("keys", "status", **env)
    rotated = run_cli("keys", "rotate", **env)
    again = run_cli("keys", "status", **env)
    retired = run_cli("keys", "retire", old, **env)

    assert status.returncode == 0, status.stderr
    assert f"{old} (primary)" in status.stdout
    assert "│ 3     │ 2     │ 1       │ 1          │ 1      │ 8     │" in status.stdout
    assert rotated.returncode == 0, rotated.stderr
    new = keyring.load(own).primary
    assert f"New primary key {new}." in rotated.stdout
    assert "Re-encrypted 8 values." in rotated.stdout
    assert f"{new} (primary)" in again.stdout
    assert retired.returncode == 0, retired.stderr
    assert retired.stdout == f"Key {old} removed from the keyring.\n"
    with migrated.connect() as conn:
        entries = conn.execute(
            select(AuditEntry.action, AuditEntry.entity_id, AuditEntry.details)
            .where(AuditEntry.entity_type == "key")
            .order_by(AuditEntry.seq)
        ).all()
    assert [tuple(e) for e in entries] == [
        ("keys.rotated", new, {"new_key": True, "values": 8, "left": 0}),
        ("keys.retired", old, {}),
    ]


def test_status_names_keys_in_use_that_the_keyring_lacks(
    run_cli: RunCli, own: Settings, migrated: Engine, people: list[int], tmp_path: Path
) -> None:
    other = tmp_path / "other.json"
    keyring.write_file(other, keyring.generate())

    result = run_cli("keys", "status", TENURE_KEYRING_FILE=str(other))

    assert result.returncode == 1
    assert "missing from the keyring!" in result.stdout
    assert "they cannot be read" in result.stderr
