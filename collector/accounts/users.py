"""The user store: local accounts of the people who sign in to the collector's pages.

Every change that takes access away ends the account's sessions at once: a new password
(someone else may know the old one), disabling the account. A role change needs no such
step, since a session reads its account's role and board at every request.

Sign-in failures are counted per account: ``LOCK_AFTER`` wrong passwords in a row lock it
for ``LOCK_FOR`` seconds, during which even the right password is refused; when the lock
has run out the count starts again. A success resets the count. Whatever the refusal
(unknown name, wrong password, locked, disabled), the same argon2 work is done, so the
time taken does not tell which it was, and the pages say the same for each.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row, case, select, update

from collector.accounts.passwords import (
    WeakPassword,
    check_new_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from collector.accounts.roles import check_role
from collector.accounts.sessions import revoke_user_sessions
from collector.db.engine import writer
from collector.db.schema import boards, users

USERNAME = re.compile(r"[a-z0-9._@-]{1,100}")
LOCK_AFTER = 5
LOCK_FOR = 15 * 60.0
MAX_NAME = 200
MAX_EMAIL = 320

Refusal = Literal["unknown", "wrong_password", "locked", "disabled"]


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
    failed_logins: int
    locked_until: float | None

    def locked(self, now: float) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def as_document(self) -> dict[str, Any]:
        """What ``user list --json`` prints: never the password hash."""
        return {"username": self.username, "display_name": self.display_name, "email": self.email,
                "role": self.role, "board": self.board, "created_at": self.created_at,
                "disabled_at": self.disabled_at, "last_login_at": self.last_login_at,
                "failed_logins": self.failed_logins, "locked_until": self.locked_until}


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
            password_hash=password_hash, created_at=now, updated_at=now, failed_logins=0))
    return get_user(engine, name)


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        return [_user(row) for row in conn.execute(_select().order_by(users.c.username))]


def get_user(engine: Engine, username: str) -> User:
    with engine.connect() as conn:
        return _existing(conn, username)


def set_password(engine: Engine, username: str, password: str, now: float | None = None) -> int:
    """Sets a new password and ends every session of the account; returns how many ended."""
    now = time.time() if now is None else now
    user = get_user(engine, username)
    _password(password, user.username)
    password_hash = hash_password(password)
    with writer(engine) as conn, conn.begin():
        conn.execute(update(users).where(users.c.id == user.id).values(
            password_hash=password_hash, updated_at=now, failed_logins=0, locked_until=None))
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
    now = time.time() if now is None else now
    with writer(engine) as conn, conn.begin():
        user = _existing(conn, username)
        conn.execute(update(users).where(users.c.id == user.id).values(
            disabled_at=None, updated_at=now, failed_logins=0, locked_until=None))


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


def authenticate(engine: Engine, username: str, password: str, now: float | None = None
                 ) -> User | Refused:
    """Signs in: the account when the password is right and it may sign in, else why not."""
    return _check_password(engine, username, password, time.time() if now is None else now,
                           sign_in=True)


def confirm_password(engine: Engine, username: str, password: str, now: float | None = None
                     ) -> User | Refused:
    """Checks the current password of a signed-in person (the password page) under the same
    lockout as a sign-in, so a borrowed session cannot be used to guess the password."""
    return _check_password(engine, username, password, time.time() if now is None else now,
                           sign_in=False)


def _check_password(engine: Engine, username: str, password: str, now: float, sign_in: bool
                    ) -> User | Refused:
    name = normal_username(username)
    with engine.connect() as conn:
        row = conn.execute(select(users.c.id, users.c.password_hash, users.c.disabled_at,
                                  users.c.locked_until)
                           .where(users.c.username == name)).first() if USERNAME.fullmatch(name) else None
    # The argon2 work is done before any answer, for every kind of refusal alike.
    matches = verify_password(row.password_hash if row is not None else None, password)
    if row is None:
        return Refused("unknown")
    if row.disabled_at is not None:
        return Refused("disabled")
    if row.locked_until is not None and now < row.locked_until:
        return Refused("locked")
    if not matches:
        return Refused(_count_failure(engine, row.id, now))
    changes: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
    if sign_in:
        changes["last_login_at"] = now
    if row.password_hash and needs_rehash(row.password_hash):
        changes["password_hash"] = hash_password(password)
        changes["updated_at"] = now
    with writer(engine) as conn, conn.begin():
        conn.execute(update(users).where(users.c.id == row.id).values(**changes))
    return get_user(engine, name)


def _count_failure(engine: Engine, user_id: int, now: float) -> Refusal:
    """One more wrong password (a lock that has run out starts the count again)."""
    lapsed = users.c.locked_until.is_not(None) & (users.c.locked_until <= now)
    with writer(engine) as conn, conn.begin():
        # One UPDATE, so two wrong passwords at once both count (the row is locked meanwhile).
        conn.execute(update(users).where(users.c.id == user_id).values(
            failed_logins=case((lapsed, 1), else_=users.c.failed_logins + 1),
            locked_until=case((lapsed, None), else_=users.c.locked_until)))
        count = conn.scalar(select(users.c.failed_logins).where(users.c.id == user_id)) or 0
        if count >= LOCK_AFTER:
            conn.execute(update(users).where(users.c.id == user_id)
                         .values(locked_until=now + LOCK_FOR))
            return "locked"
    return "wrong_password"


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


def _existing(conn: Connection, username: str) -> User:
    row = conn.execute(_select().where(users.c.username == normal_username(username))).first()
    if row is None:
        raise UserError(f"no account {username!r} (see: user list)")
    return _user(row)


def _user(row: Row[Any]) -> User:
    return User(id=row.id, username=row.username, display_name=row.display_name, email=row.email,
                role=row.role, board_id=row.board_id, board=row.board, created_at=row.created_at,
                disabled_at=row.disabled_at, last_login_at=row.last_login_at,
                failed_logins=row.failed_logins or 0, locked_until=row.locked_until)
