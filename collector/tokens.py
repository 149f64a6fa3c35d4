"""Secrets the collector hands out: agent credentials, enrolment codes, admin tokens.

Only a SHA-256 of each is stored. They are 32 random bytes, so a fast hash is right:
there is nothing to brute-force, and the lookup by hash stays a single index probe.
"""

from __future__ import annotations

import hashlib
import secrets


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_enrolment_code() -> str:
    # Typed by hand on a Pi's console: no look-alike characters, grouped for reading.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.strip().encode()).hexdigest()
