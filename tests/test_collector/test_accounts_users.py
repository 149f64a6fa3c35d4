"""The user store on a real SQLite store: hashing, sign-in throttling per username and client,
disabling, password changes and the sessions they end, roles and the board rule."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from collector.accounts.passwords import hash_password, needs_rehash, verify_password
from collector.accounts.sessions import create_session, viewer_for_session
from collector.accounts.sharing import UnknownBoard, board_sharing, set_board_shared
from collector.accounts.throttle import BLOCK_FOR, PER_CLIENT_LIMIT, USERNAME_LIMIT, WINDOW, client_key
from collector.accounts.users import (
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
from collector.db.schema import login_failures, users
from collector.registry import add_board

pytestmark = pytest.mark.both_stores

PASSWORD = "correct horse battery"
T0 = 1_780_000_000.0
HOUR = 3600.0
HOME = "192.0.2.10"  # documentation addresses (RFC 5737): the account's owner ...
ATTACKER = "198.51.100.66"  # ... and someone guessing


@pytest.fixture
def engine(db_url: str) -> Iterator[Any]:
    engine = open_engine(db_url)
    upgrade(engine)
    add_board(engine, "Stichting Voorbeeld")
    add_board(engine, "Other Board")
    yield engine
    engine.dispose()


def stored_hash(engine: Any, username: str) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(select(users.c.password_hash).where(users.c.username == username)))


def test_a_client_is_an_ipv4_address_or_an_ipv6_slash_64() -> None:
    # One machine gets a whole /64: counting single IPv6 addresses would make it thousands
    # of clients, each with its own 5 tries (and alone enough for the all-clients limit).
    assert client_key("2001:db8:1:2::9") == client_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::9") != client_key("2001:db8:1:2::9")
    assert client_key("::ffff:192.0.2.9") == client_key("192.0.2.9") == "192.0.2.9"
    assert client_key("testclient") == "testclient"


def test_one_ipv6_network_cannot_refuse_a_name_to_everyone(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    for i in range(USERNAME_LIMIT):
        authenticate(engine, "anne", "wrong password!", client_key(f"2001:db8::{i:x}"), T0 + i)
    # The network is blocked; the owner elsewhere is not.
    same_network = client_key("2001:db8::ffff")
    assert authenticate(engine, "anne", PASSWORD, same_network, T0 + 60) == Refused("throttled")
    assert authenticate(engine, "anne", PASSWORD, "192.0.2.7", T0 + 60) != Refused("throttled")


@pytest.mark.production_hashing
def test_the_collector_hashes_with_rfc_9106_parameters() -> None:
    # The other tests hash at the smallest cost (tests/conftest.py); this is what the
    # collector itself uses: argon2id, 64 MiB, 3 passes, 4 lanes (RFC 9106, second choice).
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(stored, "correct horse battery staple")
    assert not needs_rehash(stored)


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


def failure_rows(engine: Any) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(login_failures).order_by(login_failures.c.first_at)).all()


def test_success_records_the_sign_in_and_clears_only_its_own_clients_count(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    assert authenticate(engine, "anne", "wrong password!", HOME, T0) == Refused("wrong_password")
    assert authenticate(engine, "anne", "wrong password!", ATTACKER, T0) == Refused("wrong_password")
    assert [row.failures for row in failure_rows(engine)] == [1, 1]
    user = authenticate(engine, " Anne ", PASSWORD, HOME, T0 + 1)
    assert isinstance(user, User) and user.last_login_at == T0 + 1
    # HOME's row is gone; the attacker's count stays.
    assert [(row.failures, row.last_at) for row in failure_rows(engine)] == [(1, T0)]


def test_five_failures_refuse_that_client_for_fifteen_minutes_and_no_other(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    results = [authenticate(engine, "anne", f"wrong {i} password", ATTACKER, T0 + i)
               for i in range(PER_CLIENT_LIMIT + 1)]
    assert results == [Refused("wrong_password")] * PER_CLIENT_LIMIT + [Refused("throttled")]
    blocked_at = T0 + PER_CLIENT_LIMIT - 1
    [row] = failure_rows(engine)
    assert row.blocked_until == blocked_at + BLOCK_FOR == blocked_at + 900
    # That client is refused even the right password; the owner, elsewhere, signs in.
    still_blocked = blocked_at + BLOCK_FOR - 1
    assert authenticate(engine, "anne", PASSWORD, ATTACKER, still_blocked) == Refused("throttled")
    assert isinstance(authenticate(engine, "anne", PASSWORD, HOME, blocked_at + 10), User)
    assert not get_user(engine, "anne", blocked_at + 10).locked(blocked_at + 10)
    # Fifteen minutes on, the right password works from that client too and clears its row.
    assert isinstance(authenticate(engine, "anne", PASSWORD, ATTACKER, blocked_at + BLOCK_FOR), User)
    assert failure_rows(engine) == []


def test_counts_age_out_fifteen_minutes_after_the_last_failure(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    # Four failures, each 14 minutes after the one before: still one count of four.
    for i in range(PER_CLIENT_LIMIT - 1):
        authenticate(engine, "anne", "wrong password!", HOME, T0 + i * 14 * 60)
    last = T0 + (PER_CLIENT_LIMIT - 2) * 14 * 60
    assert [row.failures for row in failure_rows(engine)] == [PER_CLIENT_LIMIT - 1]
    # The fifth, WINDOW after the fourth, starts again at 1 (no block); so does a year later.
    assert authenticate(engine, "anne", "wrong password!", HOME, last + WINDOW) == Refused("wrong_password")
    [row] = failure_rows(engine)
    assert (row.failures, row.first_at, row.blocked_until) == (1, last + WINDOW, None)
    # Four more close together make five: blocked; a year later that is long forgotten.
    for i in range(PER_CLIENT_LIMIT - 1):
        authenticate(engine, "anne", "wrong password!", HOME, last + WINDOW + 1 + i)
    assert authenticate(engine, "anne", PASSWORD, HOME, last + WINDOW + 60) == Refused("throttled")
    year = last + 365 * 24 * HOUR
    assert authenticate(engine, "anne", "wrong password!", HOME, year) == Refused("wrong_password")
    assert [row.failures for row in failure_rows(engine)] == [1]
    assert isinstance(authenticate(engine, "anne", PASSWORD, HOME, year + 1), User)


def test_a_blocked_client_that_keeps_guessing_stays_blocked_but_no_longer(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    for i in range(PER_CLIENT_LIMIT):
        authenticate(engine, "anne", "wrong password!", ATTACKER, T0 + i)
    blocked_at = T0 + PER_CLIENT_LIMIT - 1
    # Guesses while blocked do not lengthen the block ...
    guesses = range(1, 14 * 4 + 1)  # every 15 seconds for 14 minutes: more than USERNAME_LIMIT
    for n in guesses:
        authenticate(engine, "anne", "wrong password!", ATTACKER, blocked_at + n * 15)
    [row] = failure_rows(engine)
    assert row.blocked_until == blocked_at + BLOCK_FOR and row.failures == PER_CLIENT_LIMIT + len(guesses)
    assert row.failures > USERNAME_LIMIT
    # ... and the first guess after it, with the count still live, blocks again.
    assert authenticate(engine, "anne", "wrong password!", ATTACKER, blocked_at + BLOCK_FOR) \
        == Refused("wrong_password")
    assert failure_rows(engine)[0].blocked_until == blocked_at + 2 * BLOCK_FOR
    # One client alone never refuses the name to everyone: it counts at most PER_CLIENT_LIMIT.
    assert isinstance(authenticate(engine, "anne", PASSWORD, HOME, blocked_at + BLOCK_FOR + 1), User)


def test_a_guess_spread_over_many_addresses_refuses_the_username_to_everyone(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    clients = [f"203.0.113.{n}" for n in range(USERNAME_LIMIT // PER_CLIENT_LIMIT)]
    t = T0
    for client in clients:
        for _ in range(PER_CLIENT_LIMIT - 1):
            t += 1
            authenticate(engine, "anne", "wrong password!", client, t)
    # 10 clients x 4 failures: below the limit, the owner still signs in (and clears nothing else).
    assert isinstance(authenticate(engine, "anne", PASSWORD, HOME, t + 1), User)
    for client in clients:
        t += 1
        authenticate(engine, "anne", "wrong password!", client, t)
    # The 50th failure over all clients: nobody signs in as anne for 15 minutes.
    assert authenticate(engine, "anne", PASSWORD, HOME, t + 1) == Refused("throttled")
    assert get_user(engine, "anne", t + 1).locked_until == t + BLOCK_FOR
    assert [user.locked_until for user in list_users(engine, t + 1)] == [t + BLOCK_FOR]
    assert authenticate(engine, "anne", PASSWORD, "192.0.2.99", t + BLOCK_FOR - 1) == Refused("throttled")
    assert isinstance(authenticate(engine, "anne", PASSWORD, "192.0.2.99", t + BLOCK_FOR), User)
    # Other usernames are not affected meanwhile.
    add_user(engine, "bob", "analyst", None, None, None, PASSWORD)
    assert isinstance(authenticate(engine, "bob", PASSWORD, HOME, t + 2), User)


def test_the_global_limit_counts_unknown_names_too(engine: Any) -> None:
    for n in range(USERNAME_LIMIT // PER_CLIENT_LIMIT):
        for i in range(PER_CLIENT_LIMIT):
            authenticate(engine, "Ghost", "wrong password!", f"203.0.113.{n}", T0 + n + i / 10)
    # The account made afterwards inherits the block on its name, as it should: the guessing
    # of that name was counted whether or not it existed.
    add_user(engine, "ghost", "analyst", None, None, None, PASSWORD)
    assert authenticate(engine, "ghost", PASSWORD, HOME, T0 + 20) == Refused("throttled")


def statements_of(engine: Any, call: Any) -> list[str]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_unknown_and_known_names_run_the_same_statements_and_both_write(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    add_user(engine, "dora", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    disable_user(engine, "dora")
    runs = {name: statements_of(engine, lambda name=name: authenticate(
        engine, name, "wrong password!", ATTACKER, T0)) for name in ("anne", "nobody", "Not A Name!", "dora")}
    assert runs["anne"] == runs["nobody"] == runs["Not A Name!"] == runs["dora"], runs
    assert any(s.startswith("INSERT INTO login_failures") for s in runs["anne"]), runs["anne"]
    assert not any("UPDATE users" in s for s in runs["anne"])
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(login_failures)) == 4
    # No name or address in the clear.
    for row in failure_rows(engine):
        assert all(ATTACKER not in str(value) and "anne" not in str(value) for value in row)


def test_enable_and_new_password_lift_every_throttle_of_the_username(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    add_user(engine, "bob", "analyst", None, None, None, PASSWORD)
    for i in range(PER_CLIENT_LIMIT):
        authenticate(engine, "anne", "wrong password!", ATTACKER, T0 + i)
        authenticate(engine, "anne", "wrong password!", HOME, T0 + i)
        authenticate(engine, "bob", "wrong password!", ATTACKER, T0 + i)
    enable_user(engine, "anne", T0 + 10)
    assert isinstance(authenticate(engine, "anne", PASSWORD, ATTACKER, T0 + 11), User)
    assert authenticate(engine, "bob", PASSWORD, ATTACKER, T0 + 11) == Refused("throttled")
    set_password(engine, "bob", "a new long passphrase", T0 + 12)
    assert isinstance(authenticate(engine, "bob", "a new long passphrase", ATTACKER, T0 + 13), User)
    assert failure_rows(engine) == []


@pytest.mark.production_hashing
def test_unknown_user_is_refused_and_costs_the_same_argon2_work(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)

    def seconds(username: str) -> float:
        start = time.perf_counter()
        for _ in range(3):
            authenticate(engine, username, "wrong password!", HOME, T0)
        return (time.perf_counter() - start) / 3

    assert authenticate(engine, "nobody", PASSWORD, HOME, T0) == Refused("unknown")
    assert authenticate(engine, "Not A Name!", PASSWORD, HOME, T0) == Refused("unknown")
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
    assert authenticate(engine, "anne", PASSWORD, HOME, T0 + 4) == Refused("disabled")
    enable_user(engine, "anne", T0 + 5)
    # Enabled again: a new sign-in works, the old session stays ended.
    assert isinstance(authenticate(engine, "anne", PASSWORD, HOME, T0 + 6), User)
    assert viewer_for_session(engine, secret, 2 * HOUR, T0 + 7) is None


def test_a_new_password_ends_every_session_and_the_old_password(engine: Any) -> None:
    user = add_user(engine, "anne", "board-admin", "stichting-voorbeeld", None, None, PASSWORD)
    first = create_session(engine, user.id, 12 * HOUR, T0)
    second = create_session(engine, user.id, 12 * HOUR, T0)
    assert set_password(engine, "anne", "a new long passphrase", T0 + 1) == 2
    assert viewer_for_session(engine, first, 2 * HOUR, T0 + 2) is None
    assert viewer_for_session(engine, second, 2 * HOUR, T0 + 2) is None
    assert authenticate(engine, "anne", PASSWORD, HOME, T0 + 3) == Refused("wrong_password")
    assert isinstance(authenticate(engine, "anne", "a new long passphrase", HOME, T0 + 4), User)
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


def test_confirm_password_counts_towards_the_throttle_but_is_no_sign_in(engine: Any) -> None:
    add_user(engine, "anne", "board-viewer", "stichting-voorbeeld", None, None, PASSWORD)
    assert isinstance(confirm_password(engine, "anne", PASSWORD, HOME, T0), User)
    assert get_user(engine, "anne").last_login_at is None
    for i in range(PER_CLIENT_LIMIT):
        confirm_password(engine, "anne", "wrong password!", HOME, T0 + i)
    assert confirm_password(engine, "anne", PASSWORD, HOME, T0 + 10) == Refused("throttled")
    assert authenticate(engine, "anne", PASSWORD, HOME, T0 + 10) == Refused("throttled")


def test_board_sharing_is_set_cleared_and_keeps_its_first_date(engine: Any) -> None:
    assert not board_sharing(engine, "other-board").shared
    assert set_board_shared(engine, "other-board", True, T0).shared_at == T0
    assert set_board_shared(engine, "other-board", True, T0 + 5).shared_at == T0
    assert set_board_shared(engine, "other-board", False, T0 + 6).shared_at is None
    assert board_sharing(engine, "stichting-voorbeeld").shared_at is None
    with pytest.raises(UnknownBoard, match="no board with id 'nope'"):
        set_board_shared(engine, "nope", True)
