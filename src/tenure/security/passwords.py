"""Password hashing with Argon2id (argon2-cffi's defaults follow RFC 9106), and the
password policy: at least ``MIN_LENGTH`` characters, and not a common password.

``common-passwords.txt`` is the list Django ships for its CommonPasswordValidator
(django/contrib/auth/common-passwords.txt.gz in Django 5.2, BSD licence): the 19,640
most common passwords of public breach corpora, compiled by Royce Williams, lower-cased,
one per line. Passwords are compared without regard to case.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the email is unknown, so timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_LENGTH = 12
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt")
COMMON_PASSWORD = (
    "This password is one of the most common passwords, the first ones attackers try. "
    "Choose another."
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list, lower-cased; read once, on first use."""
    with COMMON_PASSWORDS_FILE.open(encoding="utf-8") as fh:
        return frozenset(line.rstrip("\n").lower() for line in fh if line.strip())


def is_common(password: str) -> bool:
    """Whether ``password`` is on the common-passwords list, whatever its case."""
    return password.lower() in common_passwords()
