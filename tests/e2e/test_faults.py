"""Faults with real processes: kill -9, a hung collector, duplicated and reordered batches."""

from __future__ import annotations

import gzip
import json
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from support.processes import AgentProcess, CollectorProcess, wait_until

SYSTEM_ONLY = """
[probes.bandwidth]
enabled = false

[probes.users]
enabled = false
"""


def stored_seqs(collector: CollectorProcess, agent: str) -> list[int]:
    rows = collector.query(
        "SELECT r.seq FROM records r JOIN agents a ON a.id = r.agent_id WHERE a.slug = ?"
        " ORDER BY r.seq", agent,
    )
    return [row[0] for row in rows]


def test_agent_killed_between_measuring_and_uploading_loses_nothing(
    collector: CollectorProcess, enrolled_agent: Callable[[str], AgentProcess]
) -> None:
    agent = enrolled_agent(SYSTEM_ONLY)
    assert collector.process is not None
    # A collector that accepts connections but never answers: the agent measures, keeps
    # the record, and hangs in the upload, where we kill it.
    collector.process.send_signal(signal.SIGSTOP)
    try:
        agent.start("once")
        wait_until(agent.outbox_seqs, 30, "the measurement in the outbox")
        time.sleep(0.5)  # well inside the upload now
        agent.kill9()
    finally:
        collector.process.send_signal(signal.SIGCONT)
    assert agent.outbox_seqs() == {1}

    agent.cli("once")
    assert stored_seqs(collector, "agent-0") == [1, 2], "both measurements, each once"
    assert agent.outbox_seqs() == set()


def _record(stream_id: str, seq: int) -> dict[str, Any]:
    return {
        "stream_id": stream_id, "seq": seq, "kind": "system", "ok": False,
        "error": "synthetic failure record",
        "clock": {"wall_time_seconds": time.time(), "boot_id": "b", "since_boot_seconds": 1.0,
                  "clock_synchronized": True},
    }


def _post(collector: CollectorProcess, credential: str, seqs: list[int], stream_id: str
          ) -> dict[str, Any]:
    batch = {"sent_at_seconds": time.time(),
             "health": {"version": "test", "outbox_records": 0, "outbox_bytes": 0},
             "records": [_record(stream_id, seq) for seq in seqs]}
    answer = httpx.post(
        f"{collector.url}/api/v1/ingest", content=gzip.compress(json.dumps(batch).encode()),
        headers={"Authorization": f"Bearer {credential}", "Content-Encoding": "gzip",
                 "Content-Type": "application/json"}, timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_duplicated_and_reordered_batches_are_stored_once(
    collector: CollectorProcess, enrolled_agent: Callable[[str], AgentProcess]
) -> None:
    agent = enrolled_agent(SYSTEM_ONLY)
    credential = json.loads((agent.state_dir / "credential.json").read_text())["credential"]
    stream = uuid.uuid4().hex

    later = _post(collector, credential, [3, 4], stream)
    assert [r["status"] for r in later["results"]] == ["accepted", "accepted"]
    assert later["accounted_through"][stream] == 0, "1 and 2 are still missing"

    earlier = _post(collector, credential, [1, 2], stream)
    assert [r["status"] for r in earlier["results"]] == ["accepted", "accepted"]
    assert earlier["accounted_through"][stream] == 4

    again = _post(collector, credential, [4, 2, 3, 1, 1], stream)
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 5
    assert stored_seqs(collector, "agent-0") == [1, 2, 3, 4]


FAST_UPLOADS = """
[probes.bandwidth]
enabled = false
[probes.system]
interval = "1h"
[upload]
interval = "1s"
batch_records = 50
max_backoff = "2s"
"""


def test_collector_killed_while_agent_uploads_loses_and_duplicates_nothing(
    collector: CollectorProcess, enrolled_agent: Callable[[str], AgentProcess]
) -> None:
    from agent.clock import now
    from agent.outbox import Outbox

    agent = enrolled_agent(FAST_UPLOADS)
    outbox = Outbox(agent.state_dir / "outbox.sqlite", max_bytes=500_000_000)
    generated = {outbox.add("system", now(), False, f"synthetic record {i}", None).seq
                 for i in range(6000)}
    outbox.close()

    agent.start("run")
    wait_until(lambda: len(stored_seqs(collector, "agent-0")) >= 500, 60,
               "the first batches stored")
    collector.kill9()
    # What the agent deleted from its outbox, the collector had acknowledged.
    acknowledged = generated - agent.outbox_seqs()
    assert acknowledged, "some batches were acknowledged before the kill"
    stored_at_kill = set(stored_seqs(collector, "agent-0"))
    assert acknowledged <= stored_at_kill, "an acknowledged record is missing after kill -9"
    assert len(generated - stored_at_kill) > 0, "the kill came before the agent finished"

    collector.start()
    wait_until(lambda: not agent.outbox_seqs() & generated, 120,
               "the outbox drained after the restart", step=0.5)
    wait_until(lambda: generated <= set(stored_seqs(collector, "agent-0")), 60,
               "every record stored")
    rows = stored_seqs(collector, "agent-0")
    assert len(rows) == len(set(rows)), "a record was stored twice"
    assert generated <= set(rows)
    status = agent.status()
    assert status["evicted_total"] == 0 and status["dead_lettered_total"] == 0


def test_the_agent_reports_over_ipv6(tmp_path) -> None:  # type: ignore[no-untyped-def]
    collector = CollectorProcess(tmp_path, host="::1")
    collector.start()
    try:
        agent = AgentProcess(tmp_path, SYSTEM_ONLY)
        agent.cli("enroll", "--collector", collector.url, "--code", collector.enroll_code())
        agent.cli("once")
        assert collector.query("SELECT kind FROM records") == [("system",)]
    finally:
        collector.stop()
