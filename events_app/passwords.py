"""Password hashing (argon2id via argon2-cffi), shared by job seekers and agency staff."""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_PASSWORD_LENGTH = 1024


def _hasher() -> PasswordHasher:
    # Default parameters of argon2-cffi (RFC 9106 low-memory profile, argon2id).
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the account is unknown, so that the answer takes as long."""
    return _hasher().hash("not the password of anyone")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """Check a password against a stored hash (None: no such account).

    Always does one argon2 verification, so that unknown accounts cannot be told apart by
    timing. Returns (matches, a new hash when the stored one uses outdated parameters).
    """
    hasher = _hasher()
    too_long = len(password) > MAX_PASSWORD_LENGTH
    try:
        hasher.verify(
            stored if stored and not too_long else _dummy_hash(), password[:MAX_PASSWORD_LENGTH]
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if stored is None or too_long:
        return False, None
    return True, hasher.hash(password) if hasher.check_needs_rehash(stored) else None


def password_stamp(password_hash: str | None) -> str:
    """16 hex digits derived from a password hash; they change with the password."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def stamp_matches(password_hash: str | None, stamp: object) -> bool:
    return isinstance(stamp, str) and hmac.compare_digest(password_stamp(password_hash), stamp)
