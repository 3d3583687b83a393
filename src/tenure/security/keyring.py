"""The keyring: the keys that encrypt customers' sensitive fields, kept outside the database.

A keyring holds AES-256 keys by id, one of them primary (new values are encrypted under
it; the others stay for reading what they encrypted), and a separate key for the blind
index (keyed hashes for exact lookup), which does not rotate with them.

It lives in a JSON file readable by its owner only (``TENURE_KEYRING_FILE``, default
``<data dir>/keyring.json``, made by ``tenure init``), or in the environment variable
``TENURE_KEYRING`` holding the same JSON (read-only: rotation needs the file).

A running server sees a rotation without a restart: it looks at the file's modification
time at most every ``TENURE_KEYRING_RELOAD_SECONDS`` and reads it again when it changed,
and it reads it at once when it meets a value under a key id it does not know.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tenure.config import Settings

log = logging.getLogger("tenure")

FORMAT = "tenure.keyring/1"
KEY_BYTES = 32  # AES-256
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
FILE_NAME = "keyring.json"


class KeyringError(Exception):
    """The keyring cannot be used: missing, unreadable, too open, or malformed."""


class UnknownKey(KeyringError):
    """A value is encrypted under a key id the keyring does not have."""


@dataclass(frozen=True)
class Keyring:
    """Encryption keys by id, the primary's id, and the blind-index key."""

    keys: Mapping[str, bytes]
    primary: str
    index_key: bytes
    created: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.primary not in self.keys:
            raise KeyringError(f"the primary key {self.primary!r} is not among the keys")
        for key_id, key in self.keys.items():
            if not KEY_ID.fullmatch(key_id):
                raise KeyringError(f"key id {key_id!r} must be 1 to 32 letters, digits, - or _")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {key_id!r} must be {KEY_BYTES} bytes")
        if len(self.index_key) != KEY_BYTES:
            raise KeyringError(f"the index key must be {KEY_BYTES} bytes")

    def rotated(self) -> Keyring:
        """This keyring with a new primary key; the old keys stay for reading."""
        key_id = _new_id(self.keys)
        return Keyring(
            keys={**self.keys, key_id: secrets.token_bytes(KEY_BYTES)},
            primary=key_id,
            index_key=self.index_key,
            created={**self.created, key_id: _now()},
        )

    def without(self, key_id: str) -> Keyring:
        """This keyring without ``key_id`` (never the primary)."""
        if key_id == self.primary:
            raise KeyringError(f"{key_id} is the primary key; rotate first, then retire it")
        if key_id not in self.keys:
            raise KeyringError(f"there is no key {key_id} in the keyring")
        return Keyring(
            keys={k: v for k, v in self.keys.items() if k != key_id},
            primary=self.primary,
            index_key=self.index_key,
            created={k: v for k, v in self.created.items() if k != key_id},
        )

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT,
            "primary": self.primary,
            "keys": {
                key_id: {"key": _b64(key), "created_at": self.created.get(key_id)}
                for key_id, key in self.keys.items()
            },
            "index_key": _b64(self.index_key),
        }
        return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def generate() -> Keyring:
    """A new keyring: one encryption key (primary) and a blind-index key."""
    key_id = _new_id({})
    return Keyring(
        keys={key_id: secrets.token_bytes(KEY_BYTES)},
        primary=key_id,
        index_key=secrets.token_bytes(KEY_BYTES),
        created={key_id: _now()},
    )


def _new_id(taken: Mapping[str, Any]) -> str:
    while True:
        key_id = "k" + secrets.token_hex(4)
        if key_id not in taken:
            return key_id


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _key(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise KeyringError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{what} is not valid base64") from None


def parse(text: str | bytes) -> Keyring:
    """A keyring from its JSON; ``KeyringError`` saying what is wrong (never a key)."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise KeyringError("it is not valid JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyringError(f'it is not a Tenure keyring (expected "format": "{FORMAT}")')
    keys = document.get("keys")
    if not isinstance(keys, dict) or not keys:
        raise KeyringError('it has no "keys"')
    parsed: dict[str, bytes] = {}
    created: dict[str, str] = {}
    for key_id, entry in keys.items():
        if not isinstance(entry, dict):
            raise KeyringError(f"key {key_id!r} must be an object with a base64 'key'")
        parsed[key_id] = _key(entry.get("key"), f"key {key_id!r}")
        if isinstance(entry.get("created_at"), str):
            created[key_id] = entry["created_at"]
    primary = document.get("primary")
    if not isinstance(primary, str):
        raise KeyringError('it names no "primary" key')
    index_key = _key(document.get("index_key"), "the index key")
    return Keyring(keys=parsed, primary=primary, index_key=index_key, created=created)


# --- the key file ---------------------------------------------------------------------


def path_of(settings: Settings) -> Path:
    """Where the key file is: ``TENURE_KEYRING_FILE``, or ``<data dir>/keyring.json``."""
    return settings.keyring_file or settings.data_dir / FILE_NAME


def read_file(path: Path) -> Keyring:
    """The keyring in ``path``; refused when others may read or write the file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyringError(f"the key file {path} does not exist (run 'tenure init')") from None
    except OSError as exc:
        raise KeyringError(f"the key file {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyringError(f"{path} is not a file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise KeyringError(
            f"the key file {path} can be read or written by others (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise KeyringError(f"the key file {path} cannot be read: {exc.strerror}") from None
    try:
        return parse(text)
    except KeyringError as exc:
        raise KeyringError(f"the key file {path} is not usable: {exc}") from None


def write_file(path: Path, keyring: Keyring) -> None:
    """Write the key file atomically (a reader sees the old file or the new, never half),
    readable by its owner only, and durably (synced before and after the rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(keyring.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def ensure_file(settings: Settings) -> Path | None:
    """Create the key file if there is none (and no ``TENURE_KEYRING``); returns its path
    when it was made now."""
    if settings.keyring is not None:
        return None
    path = path_of(settings)
    if path.exists():
        return None
    write_file(path, generate())
    return path


def load(settings: Settings) -> Keyring:
    """The keyring the settings name: ``TENURE_KEYRING``, else the key file."""
    if settings.keyring is not None:
        try:
            return parse(settings.keyring.get_secret_value())
        except KeyringError as exc:
            raise KeyringError(f"TENURE_KEYRING is not usable: {exc}") from None
    return read_file(path_of(settings))


# --- the keyring of a running process -------------------------------------------------


class LiveKeyring:
    """The keyring as a running process uses it: read when first needed, read again when
    the key file changes (checked at most every ``check_seconds``) or when a value names
    a key id it does not have."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.from_environment = settings.keyring is not None
        self.path = None if self.from_environment else path_of(settings)
        self.check_seconds = settings.keyring_reload_seconds
        self._lock = threading.Lock()
        self._keyring: Keyring | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0

    def current(self) -> Keyring:
        """The keyring, read again first if the file changed (looked at now and then)."""
        keyring = self._keyring
        if keyring is not None and (
            self.path is None or time.monotonic() - self._checked < self.check_seconds
        ):
            return keyring
        return self._refresh(force=keyring is None)

    def reload(self) -> Keyring:
        """Read the keyring again now (a value named a key this process does not know)."""
        return self._refresh(force=True)

    def _refresh(self, *, force: bool) -> Keyring:
        with self._lock:
            self._checked = time.monotonic()
            stamp = self._file_stamp()
            if self._keyring is not None and not force and stamp == self._stamp:
                return self._keyring
            try:
                keyring = load(self.settings)
            except KeyringError as exc:
                if self._keyring is None or force:
                    raise
                # The file went missing or bad while serving: keep the keys already read
                # (requests go on); /readyz and tenure doctor report the problem.
                log.warning("keyring not read again, the keys read before stay: %s", exc)
                return self._keyring
            self._keyring, self._stamp = keyring, stamp
            return keyring

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self.path is None:
            return None
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def check(self) -> str | None:
        """Why the keyring cannot be used now (None when it can): read afresh, for the
        readiness probe and ``tenure doctor``."""
        try:
            keyring = load(self.settings)
        except KeyringError as exc:
            return str(exc)
        with self._lock:
            self._keyring, self._stamp = keyring, self._file_stamp()
            self._checked = time.monotonic()
        return None


_live: dict[tuple[Any, ...], LiveKeyring] = {}
_live_lock = threading.Lock()


def live(settings: Settings) -> LiveKeyring:
    """The process's ``LiveKeyring`` for these settings (one per key file or variable)."""
    secret = settings.keyring.get_secret_value() if settings.keyring is not None else None
    source = (
        ("env", secret)
        if secret is not None
        else ("file", str(path_of(settings).resolve()), settings.keyring_reload_seconds)
    )
    with _live_lock:
        found = _live.get(source)
        if found is None:
            found = _live[source] = LiveKeyring(settings)
        return found
