"""The outbox: every result is kept here, durably, until the collector acknowledges it.

SQLite in WAL mode with ``synchronous=FULL``: once ``add`` returns, the record survives a
power cut. Bounded by bytes: when full, the oldest records are evicted, counted, and the
evicted seq ranges are reported to the collector with the next batch. The daemon and a
``once`` run may use it at the same time; every write takes the lock at BEGIN.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.wire import BatchResult, ClockStamp, Record, SeqRange

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, created_at REAL NOT NULL,
    body TEXT NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS given_up (
    id INTEGER PRIMARY KEY, first INTEGER NOT NULL, last INTEGER NOT NULL,
    reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY, body TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL);
"""

COUNTERS = ("next_seq", "bytes", "evicted_total", "dead_lettered_total")


@dataclass(frozen=True)
class Pending:
    """What the next batch carries: records and given-up ranges not yet acknowledged."""

    records: list[tuple[int, dict[str, Any]]]
    given_up: list[tuple[int, SeqRange]]


@dataclass(frozen=True)
class OutboxStatus:
    stream_id: str
    records: int
    bytes: int
    oldest_record_age_seconds: float | None
    evicted_total: int
    dead_lettered_total: int
    last_upload_at: float | None
    last_error: str | None
    last_error_at: float | None
    credential_rejected: str | None


class Outbox:
    def __init__(self, path: Path, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        # The daemon's probe threads and its upload thread share this connection: one
        # transaction at a time on it (other processes are kept apart by SQLite's lock).
        self.lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=30000")
        with self._write():
            for statement in SCHEMA.strip().split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('stream_id', ?)", (uuid.uuid4().hex,))
            for counter in COUNTERS:
                self.db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                                (counter, "1" if counter == "next_seq" else "0"))
        self.stream_id = self._meta("stream_id") or ""

    def close(self) -> None:
        self.db.close()

    # --- writing ---------------------------------------------------------------------

    def add(self, kind: str, clock: ClockStamp, ok: bool, error: str | None,
            payload: dict[str, Any] | None) -> Record:
        """Give the measurement the next seq and keep it durably; evict when full."""
        with self._write():
            seq = int(self._meta("next_seq") or 1)
            record = Record(stream_id=self.stream_id, seq=seq, kind=kind, clock=clock, ok=ok,
                            error=error, payload=payload or {})
            body = record.model_dump_json()
            self.db.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?)",
                            (seq, kind, self.clock(), body, len(body)))
            self._bump("next_seq", 1)
            total = self._bump("bytes", len(body))
            if total > self.max_bytes:
                self._evict_oldest(total - self.max_bytes, keep=seq)
        return record

    def _evict_oldest(self, excess: int, keep: int) -> None:
        evicted: list[int] = []
        freed = 0
        for seq, size in self.db.execute("SELECT seq, size FROM records WHERE seq != ? ORDER BY seq",
                                         (keep,)):
            if freed >= excess:
                break
            evicted.append(seq)
            freed += size
        self.db.executemany("DELETE FROM records WHERE seq = ?", ((s,) for s in evicted))
        self._bump("bytes", -freed)
        self._bump("evicted_total", len(evicted))
        self._record_ranges(evicted, "evicted")

    def acknowledge(self, result: BatchResult,
                    reported: Iterable[tuple[int, SeqRange]] = ()) -> int:
        """Apply the collector's answer to a batch; return how many records it removed.

        Only records the collector accounted for leave: those with a status (accepted,
        duplicate, rejected) and everything up to ``accounted_through`` for this stream.
        The given-up ranges that went out with the batch are cleared: they were reported.
        A range that grew since it was sent keeps its new tail, to go out next time.
        """
        seqs = {r.seq for r in result.results
                if r.stream_id == self.stream_id and r.seq is not None
                and r.status in ("accepted", "duplicate", "rejected")}
        through = result.accounted_through.get(self.stream_id)
        with self._write():
            if through:
                seqs.update(row[0] for row in self.db.execute(
                    "SELECT seq FROM records WHERE seq <= ?", (through,)))
            removed = self._delete(seqs)
            for row_id, sent in reported:
                self.db.execute("DELETE FROM given_up WHERE id = ? AND last <= ?", (row_id, sent.last))
                self.db.execute("UPDATE given_up SET first = ? WHERE id = ? AND first <= ?",
                                (sent.last + 1, row_id, sent.last))
            self._set_meta("last_upload_at", str(self.clock()))
            self._set_meta("last_error", "")
        return removed

    def dead_letter(self, seqs: Iterable[int], reason: str) -> None:
        """Move records the collector refused as malformed aside (they are not retried)."""
        moved = sorted(seqs)
        with self._write():
            self.db.executemany(
                "INSERT OR IGNORE INTO dead_letters SELECT seq, body, ?, ? FROM records WHERE seq = ?",
                ((reason, self.clock(), s) for s in moved))
            self._delete(set(moved))
            self._bump("dead_lettered_total", len(moved))
            self._record_ranges(moved, "dead_lettered")

    def note_error(self, message: str) -> None:
        with self._write():
            self._set_meta("last_error", message)
            self._set_meta("last_error_at", str(self.clock()))

    def set_credential_rejected(self, message: str | None) -> None:
        with self._write():
            self._set_meta("credential_rejected", message or "")

    # --- reading ------------------------------------------------------------------------

    def next_batch(self, limit: int) -> Pending:
        """The oldest ``limit`` records and every given-up range not yet reported."""
        with self._read():
            rows = self.db.execute("SELECT seq, body FROM records ORDER BY seq LIMIT ?",
                                   (limit,)).fetchall()
            ranges = self.db.execute(
                "SELECT id, first, last, reason FROM given_up ORDER BY id LIMIT 10000").fetchall()
        return Pending(
            records=[(seq, json.loads(body)) for seq, body in rows],
            given_up=[(row_id, SeqRange(stream_id=self.stream_id, first=first, last=last,
                                        reason=reason))
                      for row_id, first, last, reason in ranges],
        )

    def seqs(self) -> list[int]:
        with self._read():
            return [row[0] for row in self.db.execute("SELECT seq FROM records ORDER BY seq")]

    def status(self) -> OutboxStatus:
        with self._read():
            count, oldest = self.db.execute("SELECT count(*), min(created_at) FROM records").fetchone()
            meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        return OutboxStatus(
            stream_id=self.stream_id,
            records=count,
            bytes=int(meta.get("bytes") or 0),
            oldest_record_age_seconds=max(0.0, self.clock() - oldest) if oldest else None,
            evicted_total=int(meta.get("evicted_total") or 0),
            dead_lettered_total=int(meta.get("dead_lettered_total") or 0),
            last_upload_at=_float(meta.get("last_upload_at")),
            last_error=meta.get("last_error") or None,
            last_error_at=_float(meta.get("last_error_at")),
            credential_rejected=meta.get("credential_rejected") or None,
        )

    # --- helpers --------------------------------------------------------------------------

    def _write(self) -> _Transaction:
        return _Transaction(self.db, self.lock, "BEGIN IMMEDIATE")

    def _read(self) -> _Transaction:
        # One snapshot for several SELECTs: a writer in another process cannot slip
        # between them (an eviction would otherwise show a record and its range both).
        return _Transaction(self.db, self.lock, "BEGIN DEFERRED")

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                        (key, value, value))

    def _bump(self, key: str, by: int) -> int:
        row = self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = ? "
                              "RETURNING value", (by, key)).fetchone()
        return int(row[0])

    def _delete(self, seqs: set[int]) -> int:
        freed = removed = 0
        for seq in seqs:
            row = self.db.execute("DELETE FROM records WHERE seq = ? RETURNING size", (seq,)).fetchone()
            if row:
                freed += row[0]
                removed += 1
        if freed:
            self._bump("bytes", -freed)
        return removed

    def _record_ranges(self, seqs: list[int], reason: str) -> None:
        for first, last in contiguous_ranges(seqs):
            # Extend the newest range when this one continues it: a week of evicting one
            # record per minute is then one range, not ten thousand.
            extended = self.db.execute(
                "UPDATE given_up SET last = ? WHERE id = (SELECT max(id) FROM given_up) "
                "AND reason = ? AND last = ? RETURNING id", (last, reason, first - 1)).fetchone()
            if extended is None:
                self.db.execute("INSERT INTO given_up (first, last, reason) VALUES (?, ?, ?)",
                                (first, last, reason))


class _Transaction:
    """``BEGIN`` … ``COMMIT`` under the connection's thread lock. Writes use ``BEGIN
    IMMEDIATE``: the write lock is taken up front, so two processes never both read
    ``next_seq`` before either writes it."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock, begin: str) -> None:
        self.db = db
        self.lock = lock
        self.begin = begin

    def __enter__(self) -> None:
        self.lock.acquire()
        try:
            self.db.execute(self.begin)
        except BaseException:
            self.lock.release()
            raise

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        try:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.lock.release()


def contiguous_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def _float(text: str | None) -> float | None:
    return float(text) if text else None
