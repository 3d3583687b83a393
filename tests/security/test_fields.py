"""Field encryption and the keyring: sealed values open only as sealed, under a key the
keyring has, for the column they were sealed for; blind indexes of normalised values."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from tenure.config import Settings
from tenure.security import keyring
from tenure.security.fields import InvalidPhone, SealedValueError, Sealer, key_id_of
from tenure.security.keyring import Keyring, KeyringError, LiveKeyring, UnknownKey

EMAIL = "customer.email"


def _sealer(tmp_path: Path, ring: Keyring | None = None, *, reload_seconds: float = 60) -> Sealer:
    path = tmp_path / "keyring.json"
    keyring.write_file(path, ring or keyring.generate())
    settings = Settings(data_dir=tmp_path, keyring_file=path, keyring_reload_seconds=reload_seconds)
    return Sealer(LiveKeyring(settings), phone_region="US")


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    return _sealer(tmp_path)


# --- sealing --------------------------------------------------------------------------


def test_a_sealed_value_opens_to_what_was_sealed(sealer: Sealer) -> None:
    token = sealer.seal(EMAIL, "ada@example.com")

    assert sealer.open(EMAIL, token) == "ada@example.com"


def test_a_sealed_value_names_its_key_and_holds_no_clear_text(sealer: Sealer) -> None:
    token = sealer.seal(EMAIL, "ada@example.com")

    assert key_id_of(token) == sealer.primary
    assert "ada" not in token and "example" not in token


def test_sealing_twice_gives_different_values(sealer: Sealer) -> None:
    # A random nonce each time: equal values cannot be told apart in the database.
    assert sealer.seal(EMAIL, "ada@example.com") != sealer.seal(EMAIL, "ada@example.com")


def test_unicode_values_round_trip(sealer: Sealer) -> None:
    value = "Straße 7, 北京 🏠"

    assert sealer.open("customer.address", sealer.seal("customer.address", value)) == value


def test_a_tampered_value_is_refused(sealer: Sealer) -> None:
    token = sealer.seal(EMAIL, "ada@example.com")
    key_id, _, body = token.partition(":")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[20] ^= 0x01
    tampered = f"{key_id}:{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"

    with pytest.raises(SealedValueError, match="does not open"):
        sealer.open(EMAIL, tampered)


def test_a_value_cut_short_is_refused(sealer: Sealer) -> None:
    token = sealer.seal(EMAIL, "ada@example.com")

    with pytest.raises(SealedValueError):
        sealer.open(EMAIL, token[:20])


def test_a_value_moved_to_another_column_is_refused(sealer: Sealer) -> None:
    token = sealer.seal(EMAIL, "ada@example.com")

    with pytest.raises(SealedValueError, match="from another column"):
        sealer.open("customer.phone", token)


def test_clear_text_is_not_a_sealed_value(sealer: Sealer) -> None:
    with pytest.raises(SealedValueError, match="not a sealed value"):
        sealer.open(EMAIL, "ada@example.com")


def test_a_value_under_a_key_the_keyring_lacks_is_an_unknown_key_error(
    sealer: Sealer, tmp_path: Path
) -> None:
    other = _sealer(tmp_path / "other")
    token = other.seal(EMAIL, "ada@example.com")

    with pytest.raises(UnknownKey, match=f"under key {key_id_of(token)}"):
        sealer.open(EMAIL, token)


def test_a_value_under_an_old_key_opens_and_reseals_under_the_primary(tmp_path: Path) -> None:
    first = keyring.generate()
    old = _sealer(tmp_path / "old", first)
    token = old.seal(EMAIL, "ada@example.com")
    rotated = _sealer(tmp_path / "new", first.rotated())

    again = rotated.reseal(EMAIL, token)

    assert key_id_of(token) == first.primary
    assert key_id_of(again) == rotated.primary != first.primary
    assert rotated.open(EMAIL, token) == rotated.open(EMAIL, again) == "ada@example.com"
    assert rotated.reseal(EMAIL, again) is again


# --- blind indexes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    ["+1 415-555-0123", "(415) 555-0123", "415.555.0123", "+14155550123", "1 415 555 0123"],
)
def test_a_phone_number_in_any_format_has_the_same_index(sealer: Sealer, phone: str) -> None:
    assert sealer.phone_index(phone) == sealer.phone_index("+1 (415) 555 0123")


def test_a_foreign_number_with_its_country_code_is_read_as_such(sealer: Sealer) -> None:
    assert sealer.phone_index("+49 30 1234567") == sealer.phone_index("+49 (30) 123-4567")
    assert sealer.phone_index("+49 30 1234567") != sealer.phone_index("030 1234567")


def test_the_default_region_reads_numbers_without_a_country_code(tmp_path: Path) -> None:
    german = Sealer(_sealer(tmp_path).keyring, phone_region="DE")

    assert german.phone_index("030 1234567") == german.phone_index("+49 30 1234567")


@pytest.mark.parametrize("phone", ["12", "ring ring", "+999 1234567"])
def test_a_phone_that_is_not_a_number_has_no_index(sealer: Sealer, phone: str) -> None:
    with pytest.raises(InvalidPhone):
        sealer.phone_index(phone)


def test_emails_are_indexed_lower_cased(sealer: Sealer) -> None:
    assert sealer.email_index(" Ada@Example.COM ") == sealer.email_index("ada@example.com")
    assert sealer.email_index("ada@example.com") != sealer.email_index("ada@example.org")


def test_an_index_depends_on_the_index_key_and_on_the_kind(tmp_path: Path) -> None:
    one, two = _sealer(tmp_path / "one"), _sealer(tmp_path / "two")

    assert one.email_index("ada@example.com") != two.email_index("ada@example.com")
    assert one.index("email", "+14155550123") != one.index("phone", "+14155550123")


def test_the_index_key_survives_a_rotation(tmp_path: Path) -> None:
    first = keyring.generate()
    before = _sealer(tmp_path / "before", first)
    after = _sealer(tmp_path / "after", first.rotated())

    assert before.email_index("ada@example.com") == after.email_index("ada@example.com")


# --- the keyring ----------------------------------------------------------------------


def test_a_keyring_round_trips_through_its_json() -> None:
    ring = keyring.generate().rotated()

    assert keyring.parse(ring.to_json()) == ring


ZEROS = base64.b64encode(bytes(32)).decode()


def _document(*, primary: str, keys: dict[str, str]) -> str:
    return json.dumps(
        {
            "format": "tenure.keyring/1",
            "primary": primary,
            "index_key": ZEROS,
            "keys": {key_id: {"key": key} for key_id, key in keys.items()},
        }
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not valid JSON"),
        ("{}", "not a Tenure keyring"),
        ('{"format": "tenure.keyring/1", "keys": {}}', 'no "keys"'),
        (_document(primary="a", keys={"a": "c2hvcnQ="}), "must be 32 bytes"),
        (
            _document(primary="b", keys={"a": ZEROS}),
            "the primary key 'b' is not among the keys",
        ),
    ],
)
def test_a_malformed_keyring_is_refused_saying_why(text: str, reason: str) -> None:
    with pytest.raises(KeyringError, match=reason):
        keyring.parse(text)


def test_the_key_file_is_written_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keyring.json"

    keyring.write_file(path, keyring.generate())

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["keyring.json"]  # no temporary left


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    keyring.write_file(path, keyring.generate())
    path.chmod(0o640)

    with pytest.raises(KeyringError, match="can be read or written by others"):
        keyring.read_file(path)


def test_a_missing_key_file_is_refused_saying_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="does not exist \\(run 'tenure init'\\)"):
        keyring.read_file(tmp_path / "keyring.json")


def test_the_keyring_can_come_from_the_environment(tmp_path: Path) -> None:
    ring = keyring.generate()

    settings = Settings(data_dir=tmp_path, keyring=ring.to_json().decode())

    assert keyring.load(settings) == ring
    assert keyring.ensure_file(settings) is None
    assert not (tmp_path / "keyring.json").exists()


def test_a_running_process_reads_a_key_made_after_it_started(tmp_path: Path) -> None:
    first = keyring.generate()
    running = _sealer(tmp_path, first, reload_seconds=60)
    running.seal(EMAIL, "warm-up")  # the process has read the keyring
    rotated = first.rotated()
    keyring.write_file(tmp_path / "keyring.json", rotated)
    writer = Sealer(LiveKeyring(running.keyring.settings))

    token = writer.seal(EMAIL, "written@example.com")

    # The running process has not looked at the file again (a minute between looks), yet
    # a value under a key it does not know makes it read the file at once.
    assert key_id_of(token) == rotated.primary
    assert running.open(EMAIL, token) == "written@example.com"
    assert running.primary == rotated.primary


def test_a_running_process_seals_under_a_new_primary_once_it_looks_again(
    tmp_path: Path,
) -> None:
    first = keyring.generate()
    running = _sealer(tmp_path, first, reload_seconds=0)
    assert key_id_of(running.seal(EMAIL, "before")) == first.primary
    rotated = first.rotated()
    path = tmp_path / "keyring.json"
    keyring.write_file(path, rotated)
    stamp = path.stat().st_mtime_ns + 1_000_000
    os.utime(path, ns=(stamp, stamp))  # a new mtime even on a coarse clock

    assert key_id_of(running.seal(EMAIL, "after")) == rotated.primary


def test_a_key_file_gone_while_serving_leaves_the_keys_already_read(tmp_path: Path) -> None:
    running = _sealer(tmp_path, reload_seconds=0)
    token = running.seal(EMAIL, "kept@example.com")

    (tmp_path / "keyring.json").unlink()

    # Requests go on with the keys in memory; the readiness probe says what is wrong.
    assert running.open(EMAIL, running.seal(EMAIL, "new@example.com")) == "new@example.com"
    assert running.open(EMAIL, token) == "kept@example.com"
    assert running.keyring.check() is not None
