"""Password hashing: argon2id via argon2-cffi (docs/decisions.md)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_PASSWORD_BYTES = 1024     # DS-03: no argon2 on a megabyte of input
_hasher = PasswordHasher()
# Verifying against this keeps an unknown email as slow as a wrong password (WP-07).
_DUMMY_HASH = _hasher.hash("till-dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return False
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
