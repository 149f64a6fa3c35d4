"""The user store on a real SQLite store: hashing, lockout, disabling, password changes and
the sessions they end, roles and the board rule."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from collector.accounts.sessions import create_session, viewer_for_session
from collector.accounts.sharing import UnknownBoard, board_sharing, set_board_shared
from collector.accounts.users import (
    LOCK_AFTER,
    LOCK_FOR,
    Refused,
    User,
    UserError,
    add_user,
    authenticate,
    confirm_password,
    disable_user,
    enable_user,
    get_user,
    list_users,
    set_password,
    set_role,
)
from collector.db.engine import open_engine
from collector.db.migrate import upgrade
from collector.db.schema import users
from collector.registry import add_board

PASSWORD = "correct horse battery"
T0 = 1_780_000_000.0
HOUR = 3600.0


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    add_board(engine, "Stichting Voorbeeld")
    add_board(engine, "Other Board")
    yield engine
    engine.dispose()


def stored_hash(engine: Any, username: str) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(select(users.c.password_hash).where(users.c.username == username)))


def test_password_is_stored_as_an_argon2id_hash_never_in_plain(engine: Any) -> None:
    user = add_user(engine, "Anne@School.nl", "board-admin", "stichting-voorbeeld", "Anne de Vries",
                    "anne@school.nl", PASSWORD)
    assert user.username == "anne@school.nl" and user.role == "board_admin"
    assert user.board == "stichting-voorbeeld" and user.display_name == "Anne de Vries"
    stored = stored_hash(engine, "anne@school.nl")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    # Two accounts with the same password get different hashes (a salt each).
    add_user(engine, "bob", "analyst", None, None, None, PASSWORD)
    assert stored_hash(engine, "bob") != stored
    assert "password_hash" not in user.as_document() and get_user(engine, "bob").display_name == "bob"


@pytest.mark.parametrize("args, message", [
    (("Has Space", "admin", None, PASSWORD), "must be 1-100 lowercase"),
    (("x" * 101, "admin", None, PASSWORD), "must be 1-100 lowercase"),
    (("", "admin", None, PASSWORD), "must be 1-100 lowercase"),
    (("carol", "superuser", None, PASSWORD), "unknown role"),
    (("carol", "board-viewer", None, PASSWORD), "belongs to a board"),
    (("carol", "admin", "stichting-voorbeeld", PASSWORD), "belongs to no board"),
    (("carol", "board-viewer", "nope", PASSWORD), "no board with id 'nope'"),
    (("carol", "admin", None, "short"), "at least 12 characters"),
    (("carol", "admin", None, "xxcarolxx-long-enough"), "must not contain the username"),
    (("carol", "admin", None, "aaaaaaaaaaaaaaaa"), "different characters"),
])
def test_bad_accounts_are_refused_with_one_line_and_nothing_stored(
        engine: Any, args: tuple[str, str, str | None, str], message: str) -> None:
    username, role, board, password = args
    with pytest.raises(UserError, match=message) as caught:
        add_user(engine, username, role, board, None, None, password)
    assert "\n" not in str(caught.value)
    assert list_users(engine) == []


def test_bad_email_and_duplicate_username(engine: Any) -> None:
    with pytest.raises(UserError, match="not an e-mail address"):
        add_user(engine, "carol", "admin", None, None, "carol at school", PASSWORD)
    add_user(engine, "carol", "admin", None, None, None, PASSWORD)
    with pytest.raises(UserError, match="exists already"):
        add_user(engine, "CAROL", "analyst", None, None, None, "another long password")
    assert [u.role for u in list_users(engine)] == ["admin"]


def test_authenticate_succeeds_resets_failures_and_records_the_sign_in(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    assert authenticate(engine, "anne", "wrong password!", T0) == Refused("wrong_password")
    assert get_user(engine, "anne").failed_logins == 1
    user = authenticate(engine, " Anne ", PASSWORD, T0 + 1)
    assert isinstance(user, User) and user.failed_logins == 0 and user.last_login_at == T0 + 1


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    results = [authenticate(engine, "anne", f"wrong {i} password", T0 + i) for i in range(LOCK_AFTER)]
    assert results == [Refused("wrong_password")] * (LOCK_AFTER - 1) + [Refused("locked")]
    locked_at = T0 + LOCK_AFTER - 1
    assert get_user(engine, "anne").locked_until == locked_at + LOCK_FOR == locked_at + 900
    # Locked: even the right password is refused, and it does not count as a failure.
    assert authenticate(engine, "anne", PASSWORD, locked_at + LOCK_FOR - 1) == Refused("locked")
    assert get_user(engine, "anne").failed_logins == LOCK_AFTER
    # Fifteen minutes on, the right password works and clears the count and the lock.
    user = authenticate(engine, "anne", PASSWORD, locked_at + LOCK_FOR)
    assert isinstance(user, User) and user.failed_logins == 0 and user.locked_until is None


def test_after_a_lock_runs_out_the_count_starts_again(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    for i in range(LOCK_AFTER):
        authenticate(engine, "anne", "wrong password!", T0 + i)
    later = T0 + LOCK_FOR + 100
    assert authenticate(engine, "anne", "wrong password!", later) == Refused("wrong_password")
    assert get_user(engine, "anne").failed_logins == 1 and get_user(engine, "anne").locked_until is None
    # Four wrong, then right: no lock (5 in a row are needed).
    for i in range(LOCK_AFTER - 2):
        authenticate(engine, "anne", "wrong password!", later + 1 + i)
    assert isinstance(authenticate(engine, "anne", PASSWORD, later + 10), User)


def test_unknown_user_is_refused_and_costs_the_same_argon2_work(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)

    def seconds(username: str) -> float:
        start = time.perf_counter()
        for _ in range(3):
            authenticate(engine, username, "wrong password!", T0)
        return (time.perf_counter() - start) / 3

    assert authenticate(engine, "nobody", PASSWORD, T0) == Refused("unknown")
    assert authenticate(engine, "Not A Name!", PASSWORD, T0) == Refused("unknown")
    unknown, known = seconds("nobody"), seconds("anne")
    # Both pay an argon2 verification (tens of milliseconds); without it the unknown name
    # would answer in well under a millisecond.
    assert unknown > 0.3 * known and unknown > 0.005, (unknown, known)


def test_disabled_account_cannot_sign_in_and_its_sessions_end(engine: Any) -> None:
    user = add_user(engine, "anne", "board-admin", "stichting-voorbeeld", None, None, PASSWORD)
    secret = create_session(engine, user.id, 12 * HOUR, T0)
    assert viewer_for_session(engine, secret, 2 * HOUR, T0 + 1) is not None
    assert disable_user(engine, "anne", T0 + 2) == 1
    assert viewer_for_session(engine, secret, 2 * HOUR, T0 + 3) is None
    assert authenticate(engine, "anne", PASSWORD, T0 + 4) == Refused("disabled")
    enable_user(engine, "anne", T0 + 5)
    # Enabled again: a new sign-in works, the old session stays ended.
    assert isinstance(authenticate(engine, "anne", PASSWORD, T0 + 6), User)
    assert viewer_for_session(engine, secret, 2 * HOUR, T0 + 7) is None


def test_a_new_password_ends_every_session_and_the_old_password(engine: Any) -> None:
    user = add_user(engine, "anne", "board-admin", "stichting-voorbeeld", None, None, PASSWORD)
    first = create_session(engine, user.id, 12 * HOUR, T0)
    second = create_session(engine, user.id, 12 * HOUR, T0)
    assert set_password(engine, "anne", "a new long passphrase", T0 + 1) == 2
    assert viewer_for_session(engine, first, 2 * HOUR, T0 + 2) is None
    assert viewer_for_session(engine, second, 2 * HOUR, T0 + 2) is None
    assert authenticate(engine, "anne", PASSWORD, T0 + 3) == Refused("wrong_password")
    assert isinstance(authenticate(engine, "anne", "a new long passphrase", T0 + 4), User)
    with pytest.raises(UserError, match="at least 12"):
        set_password(engine, "anne", "short", T0 + 5)
    with pytest.raises(UserError, match="no account 'nobody'"):
        set_password(engine, "nobody", "a new long passphrase", T0 + 5)


def test_session_ends_after_idle_time_and_at_absolute_expiry(engine: Any) -> None:
    user = add_user(engine, "anne", "board-admin", "stichting-voorbeeld", "Anne", None, PASSWORD)
    idle, lifetime = 2 * HOUR, 12 * HOUR
    secret = create_session(engine, user.id, lifetime, T0)
    viewer = viewer_for_session(engine, secret, idle, T0 + idle - 1)
    assert viewer is not None and viewer.role == "board_admin" and viewer.board == "stichting-voorbeeld"
    # Used within every idle window, it still ends at its absolute expiry.
    t = T0 + idle - 1
    while t + idle - 1 < T0 + lifetime:
        t += idle - 1
        assert viewer_for_session(engine, secret, idle, t) is not None, t
    assert viewer_for_session(engine, secret, idle, T0 + lifetime) is None
    # Unused for the idle time: ended.
    other = create_session(engine, user.id, lifetime, T0)
    assert viewer_for_session(engine, other, idle, T0 + idle) is None


def test_role_change_applies_to_open_sessions(engine: Any) -> None:
    user = add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    secret = create_session(engine, user.id, 12 * HOUR, T0)
    set_role(engine, "anne", "analyst", None, T0 + 1)
    viewer = viewer_for_session(engine, secret, 2 * HOUR, T0 + 2)
    assert viewer is not None and viewer.role == "analyst" and viewer.board_id is None
    with pytest.raises(UserError, match="belongs to a board"):
        set_role(engine, "anne", "board-admin", None)
    assert get_user(engine, "anne").role == "analyst"


def test_confirm_password_counts_towards_the_lockout_but_is_no_sign_in(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    assert isinstance(confirm_password(engine, "anne", PASSWORD, T0), User)
    assert get_user(engine, "anne").last_login_at is None
    for i in range(LOCK_AFTER):
        confirm_password(engine, "anne", "wrong password!", T0 + i)
    assert authenticate(engine, "anne", PASSWORD, T0 + 10) == Refused("locked")


def test_board_sharing_is_set_cleared_and_keeps_its_first_date(engine: Any) -> None:
    assert not board_sharing(engine, "other-board").shared
    assert set_board_shared(engine, "other-board", True, T0).shared_at == T0
    assert set_board_shared(engine, "other-board", True, T0 + 5).shared_at == T0
    assert set_board_shared(engine, "other-board", False, T0 + 6).shared_at is None
    assert board_sharing(engine, "stichting-voorbeeld").shared_at is None
    with pytest.raises(UnknownBoard, match="no board with id 'nope'"):
        set_board_shared(engine, "nope", True)
