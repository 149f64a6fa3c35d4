"""The school's turn for a bandwidth test: at most one agent of a school tests at a time.

Two agents of one school testing at once would each measure half the line and both
report a breach. So before a test an agent asks for the school's lease; the collector
grants it when no other agent of that school holds one that is still running.

One row per school in ``bandwidth_leases``, taken with one statement: an upsert that
replaces the row only when the holder's lease has ended or the asker is the holder. The
database decides, so this holds across worker processes and across replicas on
PostgreSQL (where the school's row is locked first only so that the clock is read when the
request is decided, as SQLite's write lock makes it).
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from agent.wire import LeaseAnswer
from collector.db.engine import writer
from collector.db.schema import bandwidth_leases, schools
from collector.registry import AgentIdentity

# Added to the seconds asked for. The agent starts its test only once the answer has
# reached it and ends it by its own clock, and with replicas the next request may be
# decided by a collector whose clock runs a little ahead: without a margin the next
# agent could start while the holder's last streams are still closing.
GRACE_SECONDS = 5.0

# 18 random bytes: 24 URL-safe characters, not guessable. The id only lets its holder end
# its own turn early; it is no credential (the agent's credential is checked as well).
LEASE_ID_BYTES = 18


def request_lease(engine: Engine, agent: AgentIdentity, seconds: float,
                  clock: Callable[[], float] = time.time) -> LeaseAnswer:
    """Grant ``agent`` its school's turn for ``seconds`` (plus the grace), or say when
    the current holder's turn ends. Asking again while holding it renews it, with a new
    lease id (the old one no longer ends anything)."""
    lease_id = secrets.token_urlsafe(LEASE_ID_BYTES)
    grant, holder = _statements(engine.dialect.name)
    with writer(engine) as conn, conn.begin():
        # Read inside the transaction (on SQLite the write lock is ours by now, and
        # waiting for it may take a while): the lease, or the wait we tell, starts when
        # it is decided. PostgreSQL takes no lock at BEGIN: the school's row is taken
        # first, or an asker that waited on another's upsert would decide by a clock read
        # before the wait (a lease that ends early, a wait told too long).
        if conn.dialect.name == "postgresql":
            conn.execute(select(schools.c.id).where(schools.c.id == agent.school_id)
                         .with_for_update())
        now = clock()
        granted = conn.execute(grant, {
            "school_id": agent.school_id, "agent_id": agent.id, "lease_id": lease_id,
            "granted_at": now, "expires_at": now + seconds + GRACE_SECONDS,
        }).first()
        if granted is not None:
            return LeaseAnswer(granted=True, lease_id=granted.lease_id,
                               expires_at_seconds=granted.expires_at)
        # Refused: the row is another agent's running lease. Read in the same
        # transaction, which holds that row (SQLite: the write lock; PostgreSQL: the
        # row lock the upsert took), so it cannot have changed in between.
        expires_at = conn.scalar(holder, {"school_id": agent.school_id})
    retry_after = max(0.0, (expires_at if expires_at is not None else now) - now)
    return LeaseAnswer(granted=False, retry_after_seconds=retry_after)


def release_lease(engine: Engine, agent: AgentIdentity, lease_id: str) -> bool:
    """End ``agent``'s lease ``lease_id`` early. Another agent's lease, an unknown or an
    already replaced one is left alone; returns whether a lease was ended."""
    with writer(engine) as conn, conn.begin():
        result = conn.execute(_release_statement(), {"lease_id": lease_id, "agent_id": agent.id})
    return bool(result.rowcount)


@functools.cache
def _statements(dialect_name: str) -> tuple[Any, Any]:
    """Built once per dialect, like ingest's statements."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    upsert = dialect.insert(bandwidth_leases)
    new = upsert.excluded
    current = bandwidth_leases.c
    grant = upsert.on_conflict_do_update(
        index_elements=["school_id"],
        set_={"agent_id": new.agent_id, "lease_id": new.lease_id,
              "granted_at": new.granted_at, "expires_at": new.expires_at},
        # The new request's time is the clock: a lease that ends exactly now has ended.
        where=(current.expires_at <= new.granted_at) | (current.agent_id == new.agent_id),
    ).returning(current.lease_id, current.expires_at)
    holder = select(current.expires_at).where(current.school_id == bindparam("school_id"))
    return grant, holder


@functools.cache
def _release_statement() -> Any:
    return delete(bandwidth_leases).where(
        bandwidth_leases.c.lease_id == bindparam("lease_id"),
        bandwidth_leases.c.agent_id == bindparam("agent_id"))
