"""Passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommendation).

Unlike the collector's random tokens (collector/tokens.py, a fast SHA-256 is right for 32
random bytes), a person's password can be guessed, so its hash is deliberately slow and
salted. ``needs_rehash`` lets a sign-in upgrade a hash made with older parameters.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # a megabyte "password" is a denial of service, not a secret

_hasher = PasswordHasher()
# Verified when the username is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("schoolnet: no such account")


class WeakPassword(ValueError):
    """A new password that is refused; the message says why in one line."""


def check_new_password(password: str, username: str = "") -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise WeakPassword("a password must not contain the username")
    if len(set(password)) < 5:
        raise WeakPassword("a password needs more than a few different characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; False (after the same work) for no hash at all."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
