"""The remote_write buffer in the database: ``remote_write_queue`` (one row per stored
record not yet accepted by the receiver).

Ingest adds the rows in the transaction that stores the records, so a record is either
stored and queued or neither: nothing acknowledged to an agent can miss the receiver. A
sender claims a batch in a short transaction of its own, sends it with no transaction
open, and then deletes the rows (sent, or refused for good) or frees them again (to be
retried). A claim runs out by itself: the rows of a sender that died are taken by another
after ``claimed_until``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, update

from collector.db.engine import writer
from collector.db.schema import records, remote_write_queue

# The engine's execution option that makes ingest queue what it stores (set once at start
# when SCHOOLNET_REMOTE_WRITE_URL is set): ingest's `store()` sees only a connection, and
# the committer that calls it belongs to the engine.
QUEUE_OPTION = "schoolnet_remote_write_queue"

queue = remote_write_queue.c


def enable_queue(engine: Engine) -> None:
    """From now on, every record stored through ``engine`` is queued for remote_write."""
    engine.update_execution_options(**{QUEUE_OPTION: True})


def queue_enabled(conn: Connection) -> bool:
    return bool(conn.get_execution_options().get(QUEUE_OPTION))


def enqueue(conn: Connection, record_ids: Sequence[int]) -> None:
    """Queue newly stored records, in the caller's (the storing) transaction."""
    if record_ids:
        conn.execute(remote_write_queue.insert(), [{"record_id": record_id}
                                                   for record_id in record_ids])


def claim(engine: Engine, limit: int, now: float, hold_seconds: float) -> list[int]:
    """Claim up to ``limit`` free (or expired) rows, oldest records first, until
    ``now + hold_seconds``; returns their record ids. One statement in its own short
    transaction; on PostgreSQL concurrent senders skip each other's locked rows instead
    of waiting for them (SQLite has one writer at a time anyway)."""
    with writer(engine) as conn, conn.begin():
        rows = conn.execute(_claim_statement(engine.dialect.name),
                            {"now": now, "until": now + hold_seconds, "limit": limit})
        return sorted(row.record_id for row in rows)


def release(engine: Engine, record_ids: Sequence[int]) -> None:
    """Free claimed rows for the next try (a transient failure: nothing is lost)."""
    if record_ids:
        with writer(engine) as conn, conn.begin():
            conn.execute(update(remote_write_queue)
                         .where(queue.record_id.in_(list(record_ids))).values(claimed_until=None))


def remove(engine: Engine, record_ids: Sequence[int]) -> None:
    """Delete rows whose records were sent (or refused for good by the receiver)."""
    if record_ids:
        with writer(engine) as conn, conn.begin():
            conn.execute(delete(remote_write_queue).where(queue.record_id.in_(list(record_ids))))


def depth(engine: Engine) -> tuple[int, float | None]:
    """Queued records and when the oldest of them was received (collector clock), or None."""
    with engine.connect() as conn:
        count, oldest = conn.execute(
            select(func.count(), func.min(records.c.received_at))
            .select_from(remote_write_queue)
            .join(records, records.c.id == queue.record_id)).one()
    return int(count), oldest


@functools.cache
def _claim_statement(dialect_name: str) -> Any:
    """Built once per dialect, like ingest's statements."""
    free = (queue.claimed_until.is_(None)) | (queue.claimed_until <= bindparam("now"))
    pick = (select(queue.record_id).where(free).order_by(queue.record_id)
            .limit(bindparam("limit")))
    if dialect_name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    # Both dialects take the same UPDATE … RETURNING (SQLite since 3.35).
    return (update(remote_write_queue)
            .where(queue.record_id.in_(pick))
            .values(claimed_until=bindparam("until"))
            .returning(queue.record_id))
