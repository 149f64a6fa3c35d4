"""Browser sessions: a random secret in an HttpOnly cookie, its SHA-256 in ``user_sessions``.

The cookie is ``Secure`` (and then ``__Host-`` prefixed, so no subdomain can plant one)
unless the collector's public URL is plain http on a host other than loopback, where a
browser would never send a secure cookie back; ``serve`` warns about that setup. It is
``SameSite=Lax``: a link from a mail opens the page signed in, a cross-site form post does
not carry it (and every unsafe request also needs the CSRF token, collector/accounts/csrf.py).

A session ends at its absolute expiry, after the idle time without a request, on sign-out,
and when its account is disabled or its password changes (every session of the account is
revoked then).
"""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, select, update

from collector.accounts.roles import Viewer
from collector.db.engine import writer
from collector.db.schema import boards, user_sessions, users
from collector.tokens import hash_secret, new_secret

# last_seen_at is written at most this often: a page with ten requests is one write.
TOUCH_EVERY = 60.0


def cookie_is_secure(public_url: str) -> bool:
    parts = urlsplit(public_url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True  # browsers treat loopback as a secure context
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_name(secure: bool) -> str:
    return "__Host-schoolnet_session" if secure else "schoolnet_session"


def create_session(engine: Engine, user_id: int, lifetime: float, now: float | None = None) -> str:
    """A new session for the user; returns the secret for the cookie (stored only hashed)."""
    now = time.time() if now is None else now
    secret = new_secret("sns")
    with writer(engine) as conn, conn.begin():
        conn.execute(user_sessions.insert().values(
            token_hash=hash_secret(secret), user_id=user_id, created_at=now, last_seen_at=now,
            expires_at=now + lifetime))
    return secret


def viewer_for_session(engine: Engine, secret: str, idle: float, now: float | None = None
                       ) -> Viewer | None:
    """The viewer a session cookie stands for; None when it is unknown, ended, idle too
    long, or its account is disabled."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        row = conn.execute(
            select(user_sessions.c.id.label("session_id"), user_sessions.c.last_seen_at,
                   user_sessions.c.expires_at, user_sessions.c.revoked_at,
                   users.c.id.label("user_id"), users.c.username, users.c.display_name,
                   users.c.role, users.c.board_id, users.c.disabled_at,
                   boards.c.slug.label("board"))
            .join(users, users.c.id == user_sessions.c.user_id)
            .outerjoin(boards, boards.c.id == users.c.board_id)
            .where(user_sessions.c.token_hash == hash_secret(secret))).first()
    if (row is None or row.revoked_at is not None or row.disabled_at is not None
            or now >= row.expires_at or now - row.last_seen_at >= idle):
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        with writer(engine) as conn, conn.begin():
            # Only forwards: replicas answering two requests at once must not set it back.
            conn.execute(update(user_sessions).where(user_sessions.c.id == row.session_id,
                                                     user_sessions.c.last_seen_at < now)
                         .values(last_seen_at=now))
    return Viewer(role=row.role, name=row.display_name, username=row.username,
                  user_id=row.user_id, session_id=row.session_id, board_id=row.board_id,
                  board=row.board)


def end_session(engine: Engine, secret: str, now: float | None = None) -> None:
    with writer(engine) as conn, conn.begin():
        conn.execute(update(user_sessions)
                     .where(user_sessions.c.token_hash == hash_secret(secret),
                            user_sessions.c.revoked_at.is_(None))
                     .values(revoked_at=time.time() if now is None else now))


def revoke_user_sessions(conn: Connection, user_id: int, now: float) -> int:
    """Ends every open session of the account (in the caller's transaction)."""
    result = conn.execute(update(user_sessions)
                          .where(user_sessions.c.user_id == user_id,
                                 user_sessions.c.revoked_at.is_(None))
                          .values(revoked_at=now))
    return result.rowcount or 0
