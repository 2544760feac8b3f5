"""Credentials shared by job seekers and agency staff: addresses, password rules, argon2id
hashing (argon2-cffi) and the signed links that set a password."""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from events_app.errors import InvalidInput

MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_LENGTH = 10


def clean_email(raw: str) -> str:
    """A sign-up address, validated (email-validator) and stored trimmed and lower-case."""
    address = raw.strip()
    if not address:
        raise InvalidInput("email", "Indiquez votre adresse e-mail.")
    if len(address) > 254:
        raise InvalidInput("email", "L’adresse e-mail dépasse 254 caractères.")
    try:
        normalized = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput(
            "email", "Adresse e-mail invalide (exemple\u00a0: prenom.nom@exemple.fr)."
        ) from exc
    return normalized.strip().lower()


def lookup_email(raw: str) -> str:
    """The form under which an address typed at sign-in was stored (no error if malformed)."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.strip().lower()
    except EmailNotValidError:
        return raw.strip().lower()


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            "password",
            f"Choisissez un mot de passe d’au moins {MIN_PASSWORD_LENGTH} caractères.",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput("password", f"Le mot de passe dépasse {MAX_PASSWORD_LENGTH} caractères.")


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


# --- Links that set a password (reset, invitation) ------------------------------------------
# The token is signed and timestamped (itsdangerous) over the account id and the stamp of the
# current password hash: it expires after max_age, and it works once, since setting the
# password changes the stamp.


def password_link_token(
    secret_key: str, salt: str, account_id: int, password_hash: str | None
) -> str:
    serializer = URLSafeTimedSerializer(secret_key, salt=salt)
    return serializer.dumps({"id": account_id, "h": password_stamp(password_hash)})


class LinkExpired(Exception):
    """A well-signed link older than its maximum age."""


def read_password_link_token(
    secret_key: str, salt: str, token: str, *, max_age: int
) -> tuple[int, str] | None:
    """(account id, stamp) from a token; None when forged or malformed.

    Raises LinkExpired for a genuine but outdated token. The caller checks the stamp against
    the account's current password hash (stamp_matches).
    """
    if not token or len(token) > 500:
        return None
    try:
        data = URLSafeTimedSerializer(secret_key, salt=salt).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkExpired from exc
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    account_id, stamp = data.get("id"), data.get("h")
    if (
        not isinstance(account_id, int)
        or isinstance(account_id, bool)
        or not isinstance(stamp, str)
    ):
        return None
    return account_id, stamp
