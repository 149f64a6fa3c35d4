"""Storing a batch: a status per record, exactly one row per (agent, stream, seq).

Everything a batch changes happens in one transaction, committed before the answer: a
2xx to the agent means the accepted records are durable. One bad record is rejected on
its own; the records beside it are stored.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import BindParameter

from agent.wire import (
    EVENT_KINDS,
    INT64_MAX,
    SKIPPED_PREFIX,
    BandwidthPayload,
    Batch,
    BatchResult,
    Record,
    RecordError,
    RecordResult,
    validate_record,
)
from collector.connectivity import update_connectivity
from collector.db.engine import writer
from collector.db.schema import (
    agents,
    bandwidth_totals,
    given_up_ranges,
    latest,
    records,
    rejected_records,
    streams,
)
from collector.registry import AgentIdentity
from collector.remote_write.queue import enqueue, queue_enabled
from collector.results import record_results
from collector.rooms import update_rooms

# How many seqs above the watermark one query looks at; the loop asks again only while
# the run of accounted seqs fills the whole window.
WATERMARK_WINDOW = 1000


@dataclass
class IngestOutcome:
    result: BatchResult
    statuses: Counter[str] = field(default_factory=Counter)
    rejected_by_code: Counter[str] = field(default_factory=Counter)


@dataclass
class Prepared:
    """A batch validated record by record, ready to store (the CPU half of ingest)."""

    agent: AgentIdentity
    batch: Batch
    results: list[RecordResult | None]
    valid: list[tuple[int, Record]]
    rejected: list[tuple[str | None, int | None, RecordError]]


def prepare(agent: AgentIdentity, batch: Batch, may_hold_mac: bool = True,
            may_hold_nul: bool = True) -> Prepared:
    """Validate each record on its own. ``may_hold_mac=False``: the caller searched the
    whole body and found nothing MAC-shaped, so records need no privacy walk each;
    ``may_hold_nul=False`` likewise for the JSON escape of a NUL character."""
    prepared = Prepared(agent, batch, [None] * len(batch.records), [], [])
    for index, raw in enumerate(batch.records):
        try:
            if may_hold_nul and contains_nul(raw):
                # PostgreSQL refuses NUL in text: stored, such a record would fail its
                # whole batch on every retry.
                raise RecordError("invalid_field", "a text value contains a NUL character")
            prepared.valid.append((index, validate_record(raw, may_hold_mac)))
        except RecordError as exc:
            stream_id, seq = _identity_of(raw)
            prepared.results[index] = RecordResult(stream_id=stream_id, seq=seq,
                                                   status="rejected", reason=str(exc))
            prepared.rejected.append((stream_id, seq, exc))
    return prepared


def store(conn: Connection, prepared: Prepared, now: float) -> IngestOutcome:
    """Write one prepared batch inside the caller's transaction (the I/O half)."""
    agent, batch, results, valid = prepared.agent, prepared.batch, prepared.results, prepared.valid
    # A seq at or below its stream's watermark was accounted for before: a duplicate even
    # when retention has since removed its row (the unique index alone would store it again).
    marks = _watermarks(conn, agent.id, {record.stream_id for _, record in valid})
    stored = _insert_records(conn, agent.id, [record for _, record in valid
                                              if record.seq > marks.get(record.stream_id, 0)], now)
    accepted: list[Record] = []
    accepted_ids: list[int] = []
    for index, record in valid:
        key = (record.stream_id, record.seq)
        is_new = key in stored
        if is_new:
            accepted_ids.append(stored.pop(key))  # a second copy in the same batch is a duplicate
            accepted.append(record)
        results[index] = RecordResult(stream_id=record.stream_id, seq=record.seq,
                                      status="accepted" if is_new else "duplicate")
    rejected_rows = [{"agent_id": agent.id, "stream_id": stream_id, "seq": seq,
                      "code": exc.code, "reason": str(exc), "received_at": now}
                     for stream_id, seq, exc in prepared.rejected]
    if rejected_rows:
        conn.execute(_insert(conn, rejected_records).on_conflict_do_nothing(), rejected_rows)
    given_up = [{"agent_id": agent.id, "stream_id": r.stream_id, "first_seq": r.first,
                 "last_seq": r.last, "reason": r.reason, "reported_at": now}
                for r in batch.health.given_up]
    if given_up:
        conn.execute(_insert(conn, given_up_ranges).on_conflict_do_nothing(), given_up)
    if queue_enabled(conn):
        # Queued for remote_write in the same transaction: stored means it will be sent.
        enqueue(conn, accepted_ids)
    _update_latest(conn, agent.id, accepted)
    _update_bandwidth_totals(conn, agent.id, accepted)
    update_connectivity(conn, agent.id, accepted)
    update_rooms(conn, agent.id, agent.school_id, accepted, now)
    record_results(conn, agent.id, agent.school_id, accepted)
    _update_health(conn, agent.id, batch, now)
    # What this batch itself accounts for, per stream (stored now or before, rejected,
    # given up), as (first, last) ranges: usually all the watermark needs.
    known: dict[str, list[tuple[int, int]]] = {}
    for _, record in valid:
        known.setdefault(record.stream_id, []).append((record.seq, record.seq))
    for stream_id, seq, _ in prepared.rejected:
        if stream_id and seq:
            known.setdefault(stream_id, []).append((seq, seq))
    for seq_range in batch.health.given_up:
        known.setdefault(seq_range.stream_id, []).append((seq_range.first, seq_range.last))
    accounted = {stream: _advance_watermark(conn, agent.id, stream, known[stream])
                 for stream in sorted(known)}

    outcome = IngestOutcome(BatchResult(results=[r for r in results if r is not None],
                                        accounted_through=accounted))
    outcome.statuses.update(r.status for r in outcome.result.results)
    outcome.rejected_by_code.update(exc.code for _, _, exc in prepared.rejected)
    return outcome


def ingest_batch(engine: Engine, agent: AgentIdentity, batch: Batch, may_hold_mac: bool = True
                 ) -> IngestOutcome:
    """Validate and store one batch in its own transaction."""
    prepared = prepare(agent, batch, may_hold_mac)
    with writer(engine) as conn, conn.begin():
        return store(conn, prepared, time.time())


class GroupCommitter:
    """One writer thread that stores the batches waiting at that moment in one
    transaction: one fsync and one lock hand-over for many batches.

    Each batch runs in its own savepoint, so a batch that fails costs only itself. A
    batch's future resolves only after the commit: the 2xx still means durable.
    """

    def __init__(self, engine: Engine, max_group: int = 64) -> None:
        self.engine = engine
        self.max_group = max_group
        self.queue: queue.SimpleQueue[tuple[Prepared, Future[IngestOutcome]] | None] = (
            queue.SimpleQueue())
        self.thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self.thread.start()

    def submit(self, prepared: Prepared) -> Future[IngestOutcome]:
        future: Future[IngestOutcome] = Future()
        self.queue.put((prepared, future))
        return future

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self.max_group:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)  # stop after this group
                    break
                group.append(item)
            self._commit(group)

    def _commit(self, group: list[tuple[Prepared, Future[IngestOutcome]]]) -> None:
        done: list[tuple[Future[IngestOutcome], IngestOutcome]] = []
        try:
            with writer(self.engine) as conn, conn.begin():
                now = time.time()
                for prepared, future in group:
                    try:
                        with conn.begin_nested():
                            done.append((future, store(conn, prepared, now)))
                    except SQLAlchemyError as exc:
                        future.set_exception(exc)
        except Exception as exc:
            for future, _ in done:
                future.set_exception(exc)
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, outcome in done:
            future.set_result(outcome)


def contains_nul(value: Any) -> bool:
    """Whether any string (or key) inside ``value`` holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


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


@functools.cache
def _statements(dialect_name: str) -> tuple[Any, Any]:
    """The two hot statements, built once per dialect: building them per batch cost more
    than running them (SQLAlchemy derives a cache key from the whole expression)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    insert_records = (
        dialect.insert(records)
        .on_conflict_do_nothing(index_elements=["agent_id", "stream_id", "seq"])
        .returning(records.c.stream_id, records.c.seq, records.c.id)
    )
    upsert = dialect.insert(latest)
    new = upsert.excluded
    newer_payload = new.measured_at.is_not(None) & (
        latest.c.measured_at.is_(None) | (new.measured_at >= latest.c.measured_at))
    newer_run = new.last_run_at >= latest.c.last_run_at
    upsert_latest = upsert.on_conflict_do_update(
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
    return insert_records, upsert_latest


def _insert_records(conn: Connection, agent_id: int, batch: list[Record], now: float
                    ) -> dict[tuple[str, int], int]:
    """Insert what is new; return the (stream, seq) pairs that were actually inserted,
    with their row ids."""
    if not batch:
        return {}
    rows = [{
        "agent_id": agent_id, "stream_id": r.stream_id, "seq": r.seq, "kind": r.kind,
        "ok": r.ok, "error": r.error, "measured_at": r.clock.wall_time_seconds,
        "boot_id": r.clock.boot_id, "since_boot_seconds": r.clock.since_boot_seconds,
        "clock_synchronized": r.clock.clock_synchronized, "received_at": now,
        "payload": r.payload,
    } for r in batch]
    # One statement executed for many rows: SQLAlchemy batches them into multi-row
    # INSERT … RETURNING ("insertmanyvalues") without compiling anew per batch.
    statement = _statements(conn.dialect.name)[0]
    return {(row.stream_id, row.seq): row.id for row in conn.execute(statement, rows)}


def _update_latest(conn: Connection, agent_id: int, accepted: list[Record]) -> None:
    """Upsert, per kind, the newest successful payload and the newest run, and add counts.

    A failed run does not erase the last good value (the failure counters and the last
    run's outcome say what happened), and records delivered late after an outage count
    without replacing anything newer.

    Events (an outage) are no probe's runs: they get no row here (no latest value, no
    run counts); `records` keeps them and ``update_connectivity`` counts them.
    """
    by_kind: dict[str, list[Record]] = {}
    for record in accepted:
        if record.kind not in EVENT_KINDS:
            by_kind.setdefault(record.kind, []).append(record)
    statement = _statements(conn.dialect.name)[1]
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


BANDWIDTH_TOTALS = ("download_bytes_total", "upload_bytes_total", "tests_valid_total",
                    "tests_invalid_total", "tests_failed_total", "tests_skipped_total")


def _update_bandwidth_totals(conn: Connection, agent_id: int, accepted: list[Record]) -> None:
    """Add this batch's bandwidth tests to the agent's totals: the bytes each moved (a
    failed test that says what it moved counts too) and how many were valid, invalid
    (measured, but not to be judged) or failed. Accepted records only, so a duplicate
    delivered again never counts twice."""
    tests = [record for record in accepted if record.kind == "bandwidth"]
    if not tests:
        return
    added = dict.fromkeys(BANDWIDTH_TOTALS, 0)
    for record in tests:
        if record.payload:
            # Validated already; parsed again for typed values (the stored payload keeps
            # what the agent sent, and pydantic accepts "123" for an int).
            payload = BandwidthPayload.model_validate(record.payload)
            added["download_bytes_total"] += payload.download_bytes
            added["upload_bytes_total"] += payload.upload_bytes
            invalid = bool(payload.invalid_reasons)
        else:
            invalid = False
        skipped = not record.ok and (record.error or "").startswith(SKIPPED_PREFIX)
        result = ("skipped" if skipped else "failed" if not record.ok
                  else "invalid" if invalid else "valid")
        added[f"tests_{result}_total"] += 1
    conn.execute(_bandwidth_totals_statement(conn.dialect.name), {
        "agent_id": agent_id, **{name: min(value, INT64_MAX) for name, value in added.items()}})


@functools.cache
def _bandwidth_totals_statement(dialect_name: str) -> Any:
    """Built once per dialect, like the others."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    upsert = dialect.insert(bandwidth_totals)
    # Saturating sums: a bogus byte count near the 64-bit limit must not overflow the
    # column (PostgreSQL would fail the batch on every retry), so a total stops at the top.
    return upsert.on_conflict_do_update(
        index_elements=["agent_id"],
        set_={name: case((bandwidth_totals.c[name] > INT64_MAX - upsert.excluded[name], INT64_MAX),
                         else_=bandwidth_totals.c[name] + upsert.excluded[name])
              for name in BANDWIDTH_TOTALS},
    )


def _update_health(conn: Connection, agent_id: int, batch: Batch, now: float) -> None:
    health = batch.health
    conn.execute(_health_statement(), {
        "a_id": agent_id, "last_report_at": now, "version": health.version,
        "outbox_records": health.outbox_records, "outbox_bytes": health.outbox_bytes,
        "oldest_record_age_seconds": health.oldest_record_age_seconds})


@functools.cache
def _health_statement() -> Any:
    """Built once, like the others (building it per batch cost 5 % of ingest CPU)."""
    columns = ("last_report_at", "version", "outbox_records", "outbox_bytes",
               "oldest_record_age_seconds")
    return (update(agents).where(agents.c.id == bindparam("a_id"))
            .values({name: bindparam(name) for name in columns}))


def _watermarks(conn: Connection, agent_id: int, stream_ids: set[str]) -> dict[str, int]:
    """The watermark of each of the batch's streams (usually one) that has one, locked
    till the batch commits (PostgreSQL; SQLite's writer already holds the store). Else a
    retry on another replica could read a watermark that is about to move, and the
    retention job delete, in between, a row the other copy stored below the new mark: this
    copy would find neither the mark nor the row and store the record a second time."""
    if not stream_ids:
        return {}
    rows = conn.execute(select(streams.c.stream_id, streams.c.accounted_through).where(
        streams.c.agent_id == agent_id, streams.c.stream_id.in_(sorted(stream_ids)))
        .with_for_update())
    return {row.stream_id: row.accounted_through for row in rows}


def _advance_watermark(conn: Connection, agent_id: int, stream_id: str,
                       known: list[tuple[int, int]]) -> int:
    """Move the stream's watermark over every seq now accounted for, and return it."""
    current_query, above_query, update_stream = _watermark_statements()
    key = {"a_id": agent_id, "s_id": stream_id}
    current = conn.scalar(current_query, key)
    mark = _extend(current or 0, known)
    # Earlier batches may have stored what continues the run (records delivered out of
    # order): look above the new mark, one window at a time. A gap that stays open (a
    # lost batch) must not make every later batch read all the rows stored above it.
    window_full = True
    while window_full and mark < INT64_MAX:
        until = min(mark + WATERMARK_WINDOW, INT64_MAX)
        found = conn.execute(above_query, {**key, "mark": mark, "until": until}).all()
        mark = _extend(mark, found)
        window_full = mark >= until
    # Two replicas may store batches of one stream at once (an agent's retry reaching
    # another replica while the first still works). Each mark counts only rows that are
    # really stored, so the watermark may lag but never overstate; it only moves forward,
    # and the first batch of a new stream on two replicas must not fail on the key.
    if current is None:
        created = conn.execute(_insert(conn, streams).on_conflict_do_nothing(),
                               {"agent_id": agent_id, "stream_id": stream_id,
                                "accounted_through": mark}).rowcount
        if not created:
            conn.execute(update_stream, {**key, "new_mark": mark})
    elif mark != current:
        conn.execute(update_stream, {**key, "new_mark": mark})
    return mark


def _extend(mark: int, ranges: Sequence[tuple[int, int]]) -> int:
    """The highest seq reachable from ``mark`` through contiguous or overlapping ranges."""
    for first, last in sorted(ranges):
        if first > mark + 1:
            break
        mark = max(mark, last)
    return mark


@functools.cache
def _watermark_statements() -> tuple[Any, Any, Any]:
    """Built once: building them per batch cost more than running them."""
    agent_id: BindParameter[int] = bindparam("a_id")
    stream_id: BindParameter[str] = bindparam("s_id")
    mark: BindParameter[int] = bindparam("mark")
    until: BindParameter[int] = bindparam("until")
    current = select(streams.c.accounted_through).where(
        streams.c.agent_id == agent_id, streams.c.stream_id == stream_id)
    # Each part reads only seqs in (mark, until]: a range scan of its unique index.
    stored = select(records.c.seq.label("first"), records.c.seq.label("last")).where(
        records.c.agent_id == agent_id, records.c.stream_id == stream_id,
        records.c.seq > mark, records.c.seq <= until)
    rejected = select(rejected_records.c.seq, rejected_records.c.seq).where(
        rejected_records.c.agent_id == agent_id, rejected_records.c.stream_id == stream_id,
        rejected_records.c.seq > mark, rejected_records.c.seq <= until)
    given_up = select(given_up_ranges.c.first_seq, given_up_ranges.c.last_seq).where(
        given_up_ranges.c.agent_id == agent_id, given_up_ranges.c.stream_id == stream_id,
        given_up_ranges.c.last_seq > mark, given_up_ranges.c.first_seq <= until)
    update_stream = (update(streams)
                     .where(streams.c.agent_id == agent_id, streams.c.stream_id == stream_id,
                            streams.c.accounted_through < bindparam("new_mark"))
                     .values(accounted_through=bindparam("new_mark")))
    return current, union_all(stored, rejected, given_up), update_stream
