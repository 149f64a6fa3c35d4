"""Sign-in throttling: refused sign-ins counted per username and client address, the way
OWASP's authentication cheat sheet recommends instead of an account lockout anyone can
trigger.

- ``PER_CLIENT_LIMIT`` refusals from one client for one username in a row refuse that client
  for that username for ``BLOCK_FOR`` seconds, even with the right password; other clients
  can still sign in. A count ages out ``WINDOW`` seconds after its last refusal.
- A guess spread over many addresses: when one username has ``USERNAME_LIMIT`` live refusals
  over all clients (each client counting at most ``PER_CLIENT_LIMIT``, so that one client
  hammering away cannot reach it alone), the username is refused to every client for
  ``BLOCK_FOR`` seconds. Someone with ``USERNAME_LIMIT / PER_CLIENT_LIMIT`` (10) addresses
  can still keep a username out that way; docs/accounts.md says so.

The username is counted as typed (lowercased), whether or not an account has it: every
refusal (unknown name, wrong password, disabled, throttled) runs the same statements, so
neither the answer nor the time it takes tells whether a name exists. Names and addresses
are stored only as SHA-256 hashes. Stale rows are deleted as refusals come in, so the table
holds at most the last ``WINDOW`` seconds' worth.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
from typing import Any

from sqlalchemy import Connection, Float, and_, bindparam, case, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from collector.db.schema import login_failures

PER_CLIENT_LIMIT = 5
USERNAME_LIMIT = 50
WINDOW = 15 * 60.0
BLOCK_FOR = 15 * 60.0


def client_key(address: str) -> str:
    """The client a refusal counts against: an IPv4 address as it is (an IPv4-mapped IPv6
    address as its IPv4), an IPv6 address by its /64, which one host or household gets whole
    (counting single IPv6 addresses would let one machine be a thousand clients)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def username_hash(username: str) -> str:
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


def pair_key(username: str, client: str) -> str:
    # JSON, not "name\0client": a typed name may hold any character, and two different
    # pairs must never share a row.
    return hashlib.sha256(json.dumps([username, client]).encode()).hexdigest()


def username_key(username: str) -> str:
    """The row that refuses ``username`` to every client (no client address is null)."""
    return hashlib.sha256(json.dumps([username, None]).encode()).hexdigest()


def is_blocked(conn: Connection, username: str, client: str, now: float) -> bool:
    """Whether this client, or every client, is refused for ``username`` just now."""
    found = conn.scalar(
        select(login_failures.c.key_hash).where(
            login_failures.c.key_hash.in_((pair_key(username, client), username_key(username))),
            login_failures.c.blocked_until > now).limit(1))
    return found is not None


def record_failure(conn: Connection, username: str, client: str, now: float) -> bool:
    """Counts one refused sign-in (in the caller's write transaction); returns whether the
    username is now refused to every client because of it."""
    pair, everyone, name_hash = pair_key(username, client), username_key(username), username_hash(username)
    upsert_pair, live_total, block_everyone, prune = _statements(conn.dialect.name)
    conn.execute(upsert_pair, {"key_hash": pair, "username_hash": name_hash, "now": now})
    total = conn.scalar(live_total, {"username_hash": name_hash, "since": now - WINDOW}) or 0
    spread_guess = total >= USERNAME_LIMIT
    if spread_guess:
        conn.execute(block_everyone, {"key_hash": everyone, "username_hash": name_hash, "now": now})
    conn.execute(prune, {"stale": now - WINDOW, "now": now})
    return spread_guess


def clear_pair(conn: Connection, username: str, client: str) -> None:
    """A successful sign-in: this client's count for this username starts again."""
    conn.execute(delete(login_failures).where(login_failures.c.key_hash == pair_key(username, client)))


def clear_username(conn: Connection, username: str) -> int:
    """``user enable`` and ``user passwd``: every count and block of the username goes."""
    result = conn.execute(delete(login_failures)
                          .where(login_failures.c.username_hash == username_hash(username)))
    return int(result.rowcount or 0)


def blocked_for_everyone_until(conn: Connection, usernames: list[str], now: float) -> dict[str, float]:
    """For ``user list``: which of these usernames every client is refused, and until when."""
    keys = {username_key(name): name for name in usernames}
    if not keys:
        return {}
    rows = conn.execute(select(login_failures.c.key_hash, login_failures.c.blocked_until).where(
        login_failures.c.key_hash.in_(list(keys)), login_failures.c.blocked_until > now))
    return {keys[row.key_hash]: float(row.blocked_until) for row in rows}


@functools.cache
def _statements(dialect_name: str) -> tuple[Any, Any, Any, Any]:
    """Built once per dialect (an upsert is dialect-specific, as in collector/leases.py)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    now = bindparam("now", type_=Float)
    current = login_failures.c
    # One statement, so two refusals at the same moment both count (the row is locked
    # meanwhile). A row whose last refusal is WINDOW old starts again at 1; a block that is
    # on stays as it was (refusals while blocked do not lengthen it); once it has run out,
    # the next refusal while the count is still live blocks again.
    aged = and_(current.last_at <= now - WINDOW,
                or_(current.blocked_until.is_(None), current.blocked_until <= now))
    first_block = now + BLOCK_FOR if PER_CLIENT_LIMIT <= 1 else None
    insert = dialect.insert(login_failures).values(
        key_hash=bindparam("key_hash"), username_hash=bindparam("username_hash"), failures=1,
        first_at=now, last_at=now, blocked_until=first_block)
    upsert_pair = insert.on_conflict_do_update(index_elements=["key_hash"], set_={
        "failures": case((aged, 1), else_=current.failures + 1),
        "first_at": case((aged, now), else_=current.first_at),
        "last_at": now,
        "blocked_until": case(
            (aged, first_block),
            (current.blocked_until > now, current.blocked_until),
            (current.failures + 1 >= PER_CLIENT_LIMIT, now + BLOCK_FOR),
            else_=None),
    })
    capped = case((current.failures > PER_CLIENT_LIMIT, PER_CLIENT_LIMIT), else_=current.failures)
    live_total = select(func.sum(capped)).where(current.username_hash == bindparam("username_hash"),
                                                current.last_at > bindparam("since"))
    # The everyone-row counts no failures of its own (failures = 0), so it adds nothing above.
    everyone = dialect.insert(login_failures).values(
        key_hash=bindparam("key_hash"), username_hash=bindparam("username_hash"), failures=0,
        first_at=now, last_at=now, blocked_until=now + BLOCK_FOR)
    block_everyone = everyone.on_conflict_do_update(
        index_elements=["key_hash"],
        set_={"first_at": now, "last_at": now, "blocked_until": now + BLOCK_FOR},
        where=or_(current.blocked_until.is_(None), current.blocked_until <= now))
    prune = delete(login_failures).where(
        current.last_at <= bindparam("stale"),
        or_(current.blocked_until.is_(None), current.blocked_until <= bindparam("now")))
    return upsert_pair, live_total, block_everyone, prune
