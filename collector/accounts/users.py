"""The user store: local accounts of the people who sign in to the collector's pages.

Every change that takes access away ends the account's sessions at once: a new password
(someone else may know the old one), disabling the account. A role change needs no such
step, since a session reads its account's role and board at every request.

Refused sign-ins are throttled per username and client address (collector/accounts/
throttle.py), not by locking the account, which anyone who knows a username could do.
Whatever the refusal (unknown name, wrong password, throttled, disabled), the same argon2
work and the same statements run, so the time taken does not tell which it was, and the
pages say the same for each.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row, select, update

from collector.accounts.passwords import (
    WeakPassword,
    check_new_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from collector.accounts.roles import check_role
from collector.accounts.sessions import revoke_user_sessions
from collector.accounts.throttle import (
    blocked_for_everyone_until,
    clear_pair,
    clear_username,
    is_blocked,
    record_failure,
)
from collector.db.engine import writer
from collector.db.schema import boards, users

USERNAME = re.compile(r"[a-z0-9._@-]{1,100}")
MAX_NAME = 200
MAX_EMAIL = 320

Refusal = Literal["unknown", "wrong_password", "throttled", "disabled"]


class UserError(ValueError):
    """Bad input for an account operation; the message is one line for the user."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    email: str | None
    role: str
    board_id: int | None
    board: str | None
    created_at: float
    disabled_at: float | None
    last_login_at: float | None
    # When the username stops being refused to every client (a guess spread over many
    # addresses, see throttle.py); one client's throttle is no state of the account.
    locked_until: float | None = None

    def locked(self, now: float) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def as_document(self) -> dict[str, Any]:
        """What ``user list --json`` prints: never the password hash."""
        return {"username": self.username, "display_name": self.display_name, "email": self.email,
                "role": self.role, "board": self.board, "created_at": self.created_at,
                "disabled_at": self.disabled_at, "last_login_at": self.last_login_at,
                "locked_until": self.locked_until}


@dataclass(frozen=True)
class Refused:
    """A sign-in that failed, and why (for the log and tests; people are told one thing)."""

    reason: Refusal


def normal_username(username: str) -> str:
    return username.strip().lower()


def check_username(username: str) -> str:
    name = normal_username(username)
    if not USERNAME.fullmatch(name):
        raise UserError(f"username {username!r} must be 1-100 lowercase letters, digits and . _ - @")
    return name


def add_user(engine: Engine, username: str, role: str, board: str | None, display_name: str | None,
             email: str | None, password: str, now: float | None = None) -> User:
    now = time.time() if now is None else now
    name = check_username(username)
    checked_role = _role(role, board)
    display = _display_name(display_name, name)
    mail = _email(email)
    _password(password, name)
    password_hash = hash_password(password)  # slow: before the write lock is taken
    with writer(engine) as conn, conn.begin():
        board_id = _board_id(conn, board)
        if conn.scalar(select(users.c.id).where(users.c.username == name)) is not None:
            raise UserError(f"an account {name!r} exists already")
        conn.execute(users.insert().values(
            username=name, display_name=display, email=mail, role=checked_role, board_id=board_id,
            password_hash=password_hash, created_at=now, updated_at=now))
    return get_user(engine, name)


def list_users(engine: Engine, now: float | None = None) -> list[User]:
    now = time.time() if now is None else now
    with engine.connect() as conn:
        rows = conn.execute(_select().order_by(users.c.username)).all()
        blocked = blocked_for_everyone_until(conn, [row.username for row in rows], now)
    return [_user(row, blocked.get(row.username)) for row in rows]


def get_user(engine: Engine, username: str, now: float | None = None) -> User:
    with engine.connect() as conn:
        return _existing(conn, username, now)


def set_password(engine: Engine, username: str, password: str, now: float | None = None) -> int:
    """Sets a new password, ends every session of the account and lifts every throttle of
    its username; returns how many sessions ended."""
    now = time.time() if now is None else now
    user = get_user(engine, username)
    _password(password, user.username)
    password_hash = hash_password(password)
    with writer(engine) as conn, conn.begin():
        conn.execute(update(users).where(users.c.id == user.id).values(
            password_hash=password_hash, updated_at=now))
        clear_username(conn, user.username)
        return revoke_user_sessions(conn, user.id, now)


def disable_user(engine: Engine, username: str, now: float | None = None) -> int:
    """Disables the account and ends its sessions; returns how many ended."""
    now = time.time() if now is None else now
    with writer(engine) as conn, conn.begin():
        user = _existing(conn, username)
        if user.disabled_at is None:
            conn.execute(update(users).where(users.c.id == user.id)
                         .values(disabled_at=now, updated_at=now))
        return revoke_user_sessions(conn, user.id, now)


def enable_user(engine: Engine, username: str, now: float | None = None) -> None:
    """Enables the account and lifts every throttle of its username (its owner may have
    been kept out by someone else's guessing)."""
    now = time.time() if now is None else now
    with writer(engine) as conn, conn.begin():
        user = _existing(conn, username)
        conn.execute(update(users).where(users.c.id == user.id).values(disabled_at=None, updated_at=now))
        clear_username(conn, user.username)


def set_role(engine: Engine, username: str, role: str, board: str | None,
             now: float | None = None) -> User:
    now = time.time() if now is None else now
    checked_role = _role(role, board)
    with writer(engine) as conn, conn.begin():
        user = _existing(conn, username)
        board_id = _board_id(conn, board)
        conn.execute(update(users).where(users.c.id == user.id).values(
            role=checked_role, board_id=board_id, updated_at=now))
    return get_user(engine, username)


def authenticate(engine: Engine, username: str, password: str, client: str, now: float | None = None
                 ) -> User | Refused:
    """Signs in from address ``client``: the account when the password is right, it may sign
    in and neither this client nor every client is throttled for the name; else why not."""
    return _check_password(engine, username, password, client, time.time() if now is None else now,
                           sign_in=True)


def confirm_password(engine: Engine, username: str, password: str, client: str,
                     now: float | None = None) -> User | Refused:
    """Checks the current password of a signed-in person (the password page) under the same
    throttle as a sign-in, so a borrowed session cannot be used to guess the password."""
    return _check_password(engine, username, password, client, time.time() if now is None else now,
                           sign_in=False)


def _check_password(engine: Engine, username: str, password: str, client: str, now: float,
                    sign_in: bool) -> User | Refused:
    name = normal_username(username)
    with engine.connect() as conn:
        # Both reads run for every name, valid or not, known or not.
        row = conn.execute(select(users.c.id, users.c.password_hash, users.c.disabled_at)
                           .where(users.c.username == name)).first()
        throttled = is_blocked(conn, name, client, now)
    # The argon2 work is done before any answer, for every kind of refusal alike.
    matches = verify_password(row.password_hash if row is not None else None, password)
    refusal: Refusal | None = ("throttled" if throttled else "unknown" if row is None
                               else "disabled" if row.disabled_at is not None
                               else None if matches else "wrong_password")
    if refusal is not None or row is None:
        # One write for every refusal, of a name that exists or not (equal work, equal time).
        with writer(engine) as conn, conn.begin():
            record_failure(conn, name, client, now)
        return Refused(refusal or "unknown")
    changes: dict[str, Any] = {}
    if sign_in:
        changes["last_login_at"] = now
    if row.password_hash and needs_rehash(row.password_hash):
        changes["password_hash"] = hash_password(password)
        changes["updated_at"] = now
    with writer(engine) as conn, conn.begin():
        if changes:
            conn.execute(update(users).where(users.c.id == row.id).values(**changes))
        clear_pair(conn, name, client)
    return get_user(engine, name, now)


# --- checks and rows -------------------------------------------------------------------------


def _role(role: str, board: str | None) -> str:
    """board_admin and board_viewer name their board; an analyst may name a home board."""
    try:
        return check_role(role, board)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _display_name(display_name: str | None, username: str) -> str:
    name = (display_name or "").strip() or username
    if len(name) > MAX_NAME or not name.isprintable():
        raise UserError(f"the name must be printable and at most {MAX_NAME} characters")
    return name


def _email(email: str | None) -> str | None:
    mail = (email or "").strip()
    if not mail:
        return None
    local, at, domain = mail.rpartition("@")
    if (not at or not local or "." not in domain or len(mail) > MAX_EMAIL
            or any(c.isspace() or not c.isprintable() for c in mail)):
        raise UserError(f"{email!r} is not an e-mail address (name@example.org)")
    return mail


def _password(password: str, username: str) -> None:
    try:
        check_new_password(password, username)
    except WeakPassword as exc:
        raise UserError(str(exc)) from None


def _board_id(conn: Connection, board: str | None) -> int | None:
    if not board:
        return None
    board_id = conn.scalar(select(boards.c.id).where(boards.c.slug == board))
    if board_id is None:
        raise UserError(f"no board with id {board!r} (see: board list)")
    return int(board_id)


def _select() -> Any:
    return (select(users, boards.c.slug.label("board"))
            .outerjoin(boards, boards.c.id == users.c.board_id))


def _existing(conn: Connection, username: str, now: float | None = None) -> User:
    row = conn.execute(_select().where(users.c.username == normal_username(username))).first()
    if row is None:
        raise UserError(f"no account {username!r} (see: user list)")
    blocked = blocked_for_everyone_until(conn, [row.username], time.time() if now is None else now)
    return _user(row, blocked.get(row.username))


def _user(row: Row[Any], locked_until: float | None) -> User:
    return User(id=row.id, username=row.username, display_name=row.display_name, email=row.email,
                role=row.role, board_id=row.board_id, board=row.board, created_at=row.created_at,
                disabled_at=row.disabled_at, last_login_at=row.last_login_at, locked_until=locked_until)
