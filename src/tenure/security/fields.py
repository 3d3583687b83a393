"""Field encryption: sensitive values sealed with AES-256-GCM, and blind indexes.

A sealed value is text: ``<key id>:<base64url of nonce + ciphertext + tag>``. The nonce
is 96 random bits; the associated data names the value's column (``customer.email``),
so a value copied into another column, or altered, does not open. The key id says which
key of the keyring opens it, so keys rotate without downtime.

A blind index is a keyed hash (HMAC-SHA256 under the keyring's index key, 128 bits kept)
of a normalised value: emails lower-cased, phone numbers in E.164. Equal values have
equal indexes, so an exact lookup needs no decryption; without the key the index tells
nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading

import phonenumbers
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from tenure.config import Settings
from tenure.security import keyring as keyrings
from tenure.security.keyring import Keyring, KeyringError, LiveKeyring, UnknownKey

NONCE_BYTES = 12
INDEX_BYTES = 16
SEPARATOR = ":"
SEALER = "tenure.sealer"  # where a session finds its Sealer (sessionmaker info)


class SealedValueError(Exception):
    """A sealed value does not open: altered, cut short, or moved from another column."""


class InvalidPhone(ValueError):
    """A phone number that cannot be read as one (for its region, when it has no +)."""


def key_id_of(token: str) -> str:
    """The id of the key a sealed value is under."""
    key_id, found, _rest = token.partition(SEPARATOR)
    if not found:
        raise SealedValueError("not a sealed value")
    return key_id


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_phone(phone: str, region: str) -> str:
    """The number in E.164 (+4930123456), read in ``region`` when it has no country code."""
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(phone) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(phone)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class Sealer:
    """Seals and opens field values and computes blind indexes under a live keyring."""

    def __init__(self, keyring: LiveKeyring, *, phone_region: str = "US") -> None:
        self.keyring = keyring
        self.phone_region = phone_region
        self._ciphers: dict[tuple[str, bytes], AESGCM] = {}
        self._lock = threading.Lock()

    def _cipher(self, key_id: str, key: bytes) -> AESGCM:
        cipher = self._ciphers.get((key_id, key))
        if cipher is None:
            with self._lock:
                cipher = self._ciphers.setdefault((key_id, key), AESGCM(key))
        return cipher

    @property
    def primary(self) -> str:
        return self.keyring.current().primary

    def seal(self, column: str, value: str) -> str:
        """``value`` encrypted under the primary key, bound to ``column``."""
        keyring = self.keyring.current()
        return self._seal(keyring, column, value)

    def _seal(self, keyring: Keyring, column: str, value: str) -> str:
        key_id = keyring.primary
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher(key_id, keyring.keys[key_id]).encrypt(
            nonce, value.encode("utf-8"), column.encode("ascii")
        )
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{key_id}{SEPARATOR}{body}"

    def open(self, column: str, token: str) -> str:
        """The clear value of ``token`` sealed for ``column``."""
        key_id, found, body = token.partition(SEPARATOR)
        if not found:
            raise SealedValueError(f"{column}: not a sealed value")
        keyring = self.keyring.current()
        key = keyring.keys.get(key_id)
        if key is None:
            # Written under a key made after this process read the keyring: read it again.
            key = self.keyring.reload().keys.get(key_id)
            if key is None:
                raise UnknownKey(
                    f"{column}: a value is encrypted under key {key_id}, which the keyring "
                    "does not have"
                )
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise SealedValueError(f"{column}: the sealed value is damaged") from None
        if len(raw) < NONCE_BYTES + 16:
            raise SealedValueError(f"{column}: the sealed value is cut short")
        try:
            clear = self._cipher(key_id, key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], column.encode("ascii")
            )
        except InvalidTag:
            raise SealedValueError(
                f"{column}: the sealed value does not open (altered, or from another column)"
            ) from None
        return clear.decode("utf-8")

    def open_or_none(self, column: str, token: str | None) -> str | None:
        return None if token is None else self.open(column, token)

    def reseal(self, column: str, token: str) -> str:
        """``token`` sealed again under the primary key (unchanged if it is under it)."""
        keyring = self.keyring.current()
        if key_id_of(token) == keyring.primary:
            return token
        return self._seal(keyring, column, self.open(column, token))

    def index(self, kind: str, normalized: str) -> str:
        """The blind index of an already normalised value of ``kind`` ("email", "phone")."""
        digest = hmac.new(
            self.keyring.current().index_key,
            kind.encode("ascii") + b"\x00" + normalized.encode("utf-8"),
            hashlib.sha256,
        ).digest()
        return base64.urlsafe_b64encode(digest[:INDEX_BYTES]).rstrip(b"=").decode("ascii")

    def email_index(self, email: str) -> str:
        return self.index("email", normalize_email(email))

    def phone_index(self, phone: str) -> str:
        """The blind index of a phone number; ``InvalidPhone`` when it is not one."""
        return self.index("phone", normalize_phone(phone, self.phone_region))


_sealers: dict[tuple[int, str], Sealer] = {}
_sealers_lock = threading.Lock()


def sealer_for(settings: Settings) -> Sealer:
    """The process's ``Sealer`` for these settings (its keyring read when first used)."""
    live = keyrings.live(settings)
    key = (id(live), settings.default_phone_region)
    with _sealers_lock:
        found = _sealers.get(key)
        if found is None:
            found = _sealers[key] = Sealer(live, phone_region=settings.default_phone_region)
        return found


def of(session: Session) -> Sealer:
    """The ``Sealer`` of the session's sessionmaker (``make_sessionmaker(sealer=...)``)."""
    sealer = session.info.get(SEALER)
    if not isinstance(sealer, Sealer):
        raise KeyringError("no keyring is configured for this database session")
    return sealer
