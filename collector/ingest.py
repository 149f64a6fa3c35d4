"""Storing a batch: a status per record, exactly one row per (agent, stream, seq).

Everything a batch changes happens in one transaction, committed before the answer: a
2xx to the agent means the accepted records are durable. One bad record is rejected on
its own; the records beside it are stored.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from agent.wire import (
    INT64_MAX,
    Batch,
    BatchResult,
    Record,
    RecordError,
    RecordResult,
    validate_record,
)
from collector.db.engine import writer
from collector.db.schema import agents, given_up_ranges, latest, records, rejected_records, streams
from collector.registry import AgentIdentity


@dataclass
class IngestOutcome:
    result: BatchResult
    statuses: Counter[str] = field(default_factory=Counter)
    rejected_by_code: Counter[str] = field(default_factory=Counter)


def ingest_batch(engine: Engine, agent: AgentIdentity, batch: Batch) -> IngestOutcome:
    now = time.time()
    results: list[RecordResult | None] = [None] * len(batch.records)
    valid: list[tuple[int, Record]] = []
    rejected_rows: list[dict[str, Any]] = []
    outcome = IngestOutcome(BatchResult(results=[], accounted_through={}))

    for index, raw in enumerate(batch.records):
        try:
            valid.append((index, validate_record(raw)))
        except RecordError as exc:
            stream_id, seq = _identity_of(raw)
            results[index] = RecordResult(stream_id=stream_id, seq=seq, status="rejected",
                                          reason=str(exc))
            outcome.rejected_by_code[exc.code] += 1
            rejected_rows.append({"agent_id": agent.id, "stream_id": stream_id, "seq": seq,
                                  "code": exc.code, "reason": str(exc), "received_at": now})

    with writer(engine) as conn, conn.begin():
        stored = _insert_records(conn, agent.id, [record for _, record in valid], now)
        accepted: list[Record] = []
        for index, record in valid:
            key = (record.stream_id, record.seq)
            is_new = key in stored
            if is_new:
                stored.discard(key)  # a second copy in the same batch is a duplicate
                accepted.append(record)
            results[index] = RecordResult(stream_id=record.stream_id, seq=record.seq,
                                          status="accepted" if is_new else "duplicate")
        if rejected_rows:
            conn.execute(_insert(conn, rejected_records).on_conflict_do_nothing(), rejected_rows)
        given_up = [{"agent_id": agent.id, "stream_id": r.stream_id, "first_seq": r.first,
                     "last_seq": r.last, "reason": r.reason, "reported_at": now}
                    for r in batch.health.given_up]
        if given_up:
            conn.execute(_insert(conn, given_up_ranges).on_conflict_do_nothing(), given_up)
        _update_latest(conn, agent.id, accepted)
        _update_health(conn, agent.id, batch, now)
        touched: set[str] = {r.stream_id for _, r in valid}
        touched |= {r.stream_id for r in batch.health.given_up}
        touched |= {r["stream_id"] for r in rejected_rows if r["stream_id"] and r["seq"]}
        accounted = {stream: _advance_watermark(conn, agent.id, stream) for stream in sorted(touched)}

    outcome.result = BatchResult(results=[r for r in results if r is not None],
                                 accounted_through=accounted)
    outcome.statuses.update(r.status for r in outcome.result.results)
    return outcome


def _identity_of(raw: Any) -> tuple[str | None, int | None]:
    """The stream and seq of a rejected record, when it carries usable ones."""
    if not isinstance(raw, dict):
        return None, None
    stream_id, seq = raw.get("stream_id"), raw.get("seq")
    stream_ok = isinstance(stream_id, str) and len(stream_id) == 32
    seq_ok = isinstance(seq, int) and not isinstance(seq, bool) and 1 <= seq <= INT64_MAX
    return (stream_id if stream_ok else None), (seq if stream_ok and seq_ok else None)


def _insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _insert_records(conn: Connection, agent_id: int, batch: list[Record], now: float
                    ) -> set[tuple[str, int]]:
    """Insert what is new; return the (stream, seq) pairs that were actually inserted."""
    if not batch:
        return set()
    rows = [{
        "agent_id": agent_id, "stream_id": r.stream_id, "seq": r.seq, "kind": r.kind,
        "ok": r.ok, "error": r.error, "measured_at": r.clock.wall_time_seconds,
        "boot_id": r.clock.boot_id, "since_boot_seconds": r.clock.since_boot_seconds,
        "clock_synchronized": r.clock.clock_synchronized, "received_at": now,
        "payload": r.payload,
    } for r in batch]
    statement = (
        _insert(conn, records)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["agent_id", "stream_id", "seq"])
        .returning(records.c.stream_id, records.c.seq)
    )
    return {(row.stream_id, row.seq) for row in conn.execute(statement)}


def _update_latest(conn: Connection, agent_id: int, accepted: list[Record]) -> None:
    """Upsert, per kind, the newest successful payload and the newest run, and add counts.

    A failed run does not erase the last good value (the failure counters and the last
    run's outcome say what happened), and records delivered late after an outage count
    without replacing anything newer.
    """
    by_kind: dict[str, list[Record]] = {}
    for record in accepted:
        by_kind.setdefault(record.kind, []).append(record)
    statement = _insert(conn, latest)
    new = statement.excluded
    newer_payload = new.measured_at.is_not(None) & (
        latest.c.measured_at.is_(None) | (new.measured_at >= latest.c.measured_at))
    newer_run = new.last_run_at >= latest.c.last_run_at
    statement = statement.on_conflict_do_update(
        index_elements=["agent_id", "kind"],
        set_={
            "measured_at": case((newer_payload, new.measured_at), else_=latest.c.measured_at),
            "payload": case((newer_payload, new.payload), else_=latest.c.payload),
            "last_run_at": case((newer_run, new.last_run_at), else_=latest.c.last_run_at),
            "last_run_ok": case((newer_run, new.last_run_ok), else_=latest.c.last_run_ok),
            "last_error": case((newer_run, new.last_error), else_=latest.c.last_error),
            "runs_total": latest.c.runs_total + new.runs_total,
            "failures_total": latest.c.failures_total + new.failures_total,
        },
    )
    for kind, kind_records in by_kind.items():
        newest = max(kind_records, key=lambda r: r.clock.wall_time_seconds)
        good = [r for r in kind_records if r.ok]
        newest_good = max(good, key=lambda r: r.clock.wall_time_seconds) if good else None
        conn.execute(statement, {
            "agent_id": agent_id, "kind": kind,
            "measured_at": newest_good.clock.wall_time_seconds if newest_good else None,
            "payload": newest_good.payload if newest_good else None,
            "last_run_at": newest.clock.wall_time_seconds, "last_run_ok": newest.ok,
            "last_error": newest.error,
            "runs_total": len(kind_records),
            "failures_total": len(kind_records) - len(good),
        })


def _update_health(conn: Connection, agent_id: int, batch: Batch, now: float) -> None:
    health = batch.health
    conn.execute(update(agents).where(agents.c.id == agent_id).values(
        last_report_at=now, version=health.version, outbox_records=health.outbox_records,
        outbox_bytes=health.outbox_bytes,
        oldest_record_age_seconds=health.oldest_record_age_seconds))


def _advance_watermark(conn: Connection, agent_id: int, stream_id: str) -> int:
    """Move the stream's watermark over every seq now accounted for, and return it."""
    current = conn.scalar(select(streams.c.accounted_through).where(
        streams.c.agent_id == agent_id, streams.c.stream_id == stream_id))
    known = current is not None
    mark = current or 0
    # Only seqs above the watermark matter; normally that is just this batch.
    seen = set(conn.scalars(select(records.c.seq).where(
        records.c.agent_id == agent_id, records.c.stream_id == stream_id, records.c.seq > mark)))
    seen.update(conn.scalars(select(rejected_records.c.seq).where(
        rejected_records.c.agent_id == agent_id, rejected_records.c.stream_id == stream_id,
        rejected_records.c.seq > mark)))
    ranges = conn.execute(select(given_up_ranges.c.first_seq, given_up_ranges.c.last_seq).where(
        given_up_ranges.c.agent_id == agent_id, given_up_ranges.c.stream_id == stream_id,
        given_up_ranges.c.last_seq > mark)).all()
    range_end: dict[int, int] = {}
    for first, last in ranges:
        range_end[first] = max(last, range_end.get(first, 0))
    start = mark
    while True:
        following = mark + 1
        if following in seen:
            mark = following
            continue
        covering = [end for first, end in range_end.items() if first <= following <= end]
        if covering:
            mark = max(covering)
            continue
        break
    if not known:
        conn.execute(streams.insert().values(agent_id=agent_id, stream_id=stream_id,
                                             accounted_through=mark))
    elif mark != start:
        conn.execute(update(streams).where(streams.c.agent_id == agent_id,
                                           streams.c.stream_id == stream_id)
                     .values(accounted_through=mark))
    return mark
