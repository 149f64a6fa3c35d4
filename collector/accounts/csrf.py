"""CSRF protection for signed-in browsers: the HMAC-based token pattern (OWASP).

The token is an HMAC of the session's secret, so it needs no storage, is different for
every session, and only a page that could read the HttpOnly cookie's value could make it;
the collector renders it into each form (hidden field ``csrf``) and accepts it from scripts
as the ``X-CSRF-Token`` header. Bearer-token requests (admin tokens, agents) carry no
ambient credential and need none.

Before there is a session (the sign-in form), a random pre-session cookie and the same
value in the form (double submit) keep another site from signing a browser in to an
account of its choosing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

FIELD = "csrf"
HEADER = "x-csrf-token"
LOGIN_COOKIE_SECURE = "__Host-schoolnet_login"
LOGIN_COOKIE = "schoolnet_login"


def csrf_token(session_secret: str) -> str:
    return hmac.new(session_secret.encode(), b"schoolnet csrf v1", hashlib.sha256).hexdigest()


def csrf_ok(session_secret: str, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(csrf_token(session_secret), submitted or "")


def new_login_nonce() -> str:
    return secrets.token_urlsafe(32)


def login_nonce_ok(cookie_value: str | None, submitted: str | None) -> bool:
    return bool(cookie_value) and bool(submitted) and hmac.compare_digest(cookie_value or "",
                                                                          submitted or "")
