"""The outbox: durable, seqs never reused, bounded by bytes with counted eviction."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from agent.clock import now
from agent.outbox import Outbox, contiguous_ranges
from agent.wire import BatchResult, RecordResult, RecordState


def answer(outbox: Outbox, seqs: list[int], through: int = 0,
           status: RecordState = "accepted") -> BatchResult:
    return BatchResult(results=[RecordResult(stream_id=outbox.stream_id, seq=s, status=status)
                                for s in seqs],
                       accounted_through={outbox.stream_id: through})


def add(outbox: Outbox, count: int) -> list[int]:
    return [outbox.add("system", now(), False, f"failure {i}", None).seq for i in range(count)]


def test_seqs_are_never_reused_across_deletes_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path, 10_000_000)
    assert add(outbox, 3) == [1, 2, 3]
    outbox.acknowledge(answer(outbox, [1, 2, 3]))
    stream = outbox.stream_id
    outbox.close()
    reopened = Outbox(path, 10_000_000)
    assert reopened.stream_id == stream
    assert add(reopened, 2) == [4, 5]


def test_durable_settings(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", 1000)
    assert outbox.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert outbox.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_oldest_records_are_evicted_counted_and_reported(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", 2_000)
    seqs = add(outbox, 20)
    status = outbox.status()
    assert status.bytes <= 2_000
    assert status.evicted_total == 20 - status.records > 0
    assert outbox.seqs() == seqs[-status.records:], "the newest survive"
    ranges = outbox.next_batch(100).given_up
    assert ranges[0][1].first == 1
    assert sum(r.last - r.first + 1 for _, r in ranges) == status.evicted_total
    assert all(r.reason == "evicted" for _, r in ranges)


def test_acknowledge_deletes_only_what_was_accounted_for(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", 10_000_000)
    add(outbox, 10)
    outbox.acknowledge(answer(outbox, [7], through=3))
    assert outbox.seqs() == [4, 5, 6, 8, 9, 10]
    assert outbox.status().last_upload_at is not None


def test_dead_letters_are_moved_aside_and_reported(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", 10_000_000)
    add(outbox, 5)
    outbox.dead_letter([2, 3], "collector refused the batch (422): bad")
    assert outbox.seqs() == [1, 4, 5]
    assert outbox.status().dead_lettered_total == 2
    [(_, reported)] = outbox.next_batch(10).given_up
    assert (reported.first, reported.last, reported.reason) == (2, 3, "dead_lettered")
    assert outbox.db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 2


def test_two_processes_writing_at_once_get_distinct_seqs(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outboxes = [Outbox(path, 100_000_000) for _ in range(4)]
    results: list[list[int]] = []
    threads = [threading.Thread(target=lambda o=o: results.append(add(o, 50))) for o in outboxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = sorted(seq for seqs in results for seq in seqs)
    assert every == list(range(1, 201))


def test_a_record_is_durable_once_add_returns(tmp_path: Path) -> None:
    """A child adds records and is SIGKILLed right after: every returned seq is there."""
    path = tmp_path / "outbox.sqlite"
    child = subprocess.Popen([sys.executable, "-c", f"""
import sys
from agent.clock import now
from agent.outbox import Outbox
outbox = Outbox(__import__('pathlib').Path({str(path)!r}), 100_000_000)
for i in range(100000):
    seq = outbox.add("system", now(), False, "x", None).seq
    print(seq, flush=True)
"""], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    returned = [int(child.stdout.readline()) for _ in range(40)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with sqlite3.connect(path) as db:
        kept = {row[0] for row in db.execute("SELECT seq FROM records")}
    assert set(returned) <= kept


def test_contiguous_ranges() -> None:
    assert contiguous_ranges([5, 1, 2, 3, 7, 8]) == [(1, 3), (5, 5), (7, 8)]
    assert contiguous_ranges([]) == []


def test_duplicate_and_rejected_are_accounted_for_and_other_streams_ignored(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", 10_000_000)
    add(outbox, 5)
    outbox.acknowledge(answer(outbox, [1], status="duplicate"))
    outbox.acknowledge(answer(outbox, [2], status="rejected"))
    other = BatchResult(results=[RecordResult(stream_id="f" * 32, seq=3, status="accepted")],
                        accounted_through={"f" * 32: 5})
    assert outbox.acknowledge(other) == 0
    assert outbox.seqs() == [3, 4, 5]
    before = outbox.status().bytes
    outbox.acknowledge(answer(outbox, [], through=4))
    assert outbox.seqs() == [5] and outbox.status().bytes < before


def test_continuing_evictions_are_one_range(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", 3_000)
    add(outbox, 200)
    ranges = outbox.next_batch(10).given_up
    assert len(ranges) == 1
    [(_, evicted)] = ranges
    assert (evicted.first, evicted.last) == (1, outbox.status().evicted_total)


def test_a_range_that_grew_while_in_flight_keeps_its_new_tail(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", 3_000)
    add(outbox, 50)
    sent = outbox.next_batch(10)
    [(_, first_report)] = sent.given_up
    add(outbox, 5)  # more evictions extend the same range before the answer comes
    outbox.acknowledge(answer(outbox, [seq for seq, _ in sent.records]), sent.given_up)
    [(_, rest)] = outbox.next_batch(10).given_up
    assert rest.first == first_report.last + 1
    assert rest.last == outbox.status().evicted_total


def test_threads_sharing_one_outbox_do_not_collide(tmp_path: Path) -> None:
    """The daemon's probe threads add while its upload thread acknowledges, on one
    connection: no 'transaction within a transaction', no lost seq."""
    outbox = Outbox(tmp_path / "outbox.sqlite", 100_000_000)
    errors: list[BaseException] = []

    def adder() -> None:
        try:
            add(outbox, 200)
        except BaseException as exc:
            errors.append(exc)

    def acknowledger() -> None:
        try:
            for _ in range(200):
                batch = outbox.next_batch(5)
                outbox.acknowledge(answer(outbox, [seq for seq, _ in batch.records]))
                outbox.status()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=adder) for _ in range(3)] + [threading.Thread(target=acknowledger)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    remaining = outbox.seqs()
    assert outbox.status().bytes == sum(
        row[0] for row in outbox.db.execute("SELECT size FROM records")) >= 0
    assert len(remaining) == len(set(remaining)) and (not remaining or max(remaining) <= 600)
    assert add(outbox, 1) == [601]
