"""Two collector replicas on one PostgreSQL behind a round-robin balancer.

One replica is killed with SIGKILL under load (simulated agents and a real agent). Then:
every acknowledged record is stored exactly once, the agents carry on through the other
replica, and the state that must hold across replicas (the school's bandwidth lease, a
use-once enrolment code, a revoked credential) is decided by the database, not a process.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from support.balancer import Balancer
from support.postgres import PostgresServer
from support.processes import LOOPBACK_CONNECTIVITY, AgentProcess, CollectorProcess, wait_until
from support.records import batch, new_stream, record

from collector.db.engine import open_engine
from collector.registry import create_enrolment_code

pytestmark = pytest.mark.e2e

SIMULATED_AGENTS = 8
BATCHES_PER_AGENT = 40
RECORDS_PER_BATCH = 25
GZIP = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


@dataclass
class Replicas:
    db_url: str
    a: CollectorProcess
    b: CollectorProcess
    balancer: Balancer

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url) as db:
            return list(db.execute(sql.encode(), params or None).fetchall())


@pytest.fixture(scope="module")
def replicas(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Replicas]:
    """One pair for the module (the kill test comes last): starting them is most of the cost."""
    tmp_path = tmp_path_factory.mktemp("replicas")
    db_url = postgres.fresh_database()
    a = CollectorProcess(tmp_path / "a", db_url=db_url)
    b = CollectorProcess(tmp_path / "b", db_url=db_url)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a.cli("board", "add", "Test Board", "--id", "test-board")
    a.cli("school", "add", "--board", "test-board", "Test School", "--id", "test-school")
    started: list[CollectorProcess] = []
    try:
        for replica in (a, b):
            replica.start()
            started.append(replica)
        with Balancer([("127.0.0.1", a.port), ("127.0.0.1", b.port)]) as balancer:
            yield Replicas(db_url, a, b, balancer)
    finally:
        for replica in started:
            replica.stop()
        postgres.drop_database(db_url.rsplit("/", 1)[1])


def enroll(url: str, code: str, name: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/enroll", json={"code": code, "name": name, "version": "e2e"},
                      timeout=30)


def body_of(stream: str, seqs: range) -> bytes:
    return gzip.compress(json.dumps(batch(*(record(seq, stream) for seq in seqs))).encode())


def test_cross_replica_state_is_the_databases(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    # An enrolment code with one use, redeemed at the same moment through both replicas,
    # ten times over: each time one agent, and the other asker refused.
    engine = open_engine(replicas.db_url)
    for round_ in range(10):
        code = create_enrolment_code(engine, "test-board/test-school", 1, 3600)
        gate = threading.Barrier(2)
        answers: list[int] = []

        def redeem(url: str, code: str, gate: threading.Barrier, answers: list[int],
                   name: str) -> None:
            gate.wait()
            answers.append(enroll(url, code, name).status_code)

        threads = [threading.Thread(target=redeem, args=(url, code, gate, answers,
                                                         f"racer-{round_}-{side}"))
                   for side, url in (("a", a.url), ("b", b.url))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(answers) == [200, 403], answers
    engine.dispose()
    assert replicas.rows("SELECT count(*) FROM agents WHERE slug LIKE 'racer-%'") == [(10,)]

    # The school's bandwidth lease, taken through one replica, holds on the other.
    code = a.cli("enroll-code", "--school", "test-board/test-school", "--uses", "3").stdout.strip()
    first, second, revoked = (enroll(replicas.balancer.url, code, name).json()["credential"]
                              for name in ("first", "second", "revoked"))
    lease = httpx.post(f"{a.url}/api/v1/speed/lease", json={"seconds": 60},
                       headers={"Authorization": f"Bearer {first}"}, timeout=10)
    assert lease.status_code == 200 and lease.json()["granted"], lease.text
    refused = httpx.post(f"{b.url}/api/v1/speed/lease", json={"seconds": 60},
                         headers={"Authorization": f"Bearer {second}"}, timeout=10)
    assert refused.status_code == 200, refused.text
    assert refused.json()["granted"] is False and refused.json()["retry_after_seconds"] > 55

    # A credential accepted by both replicas, then revoked: refused by both at once.
    stream = new_stream()
    for seq, replica in enumerate((a, b), start=1):
        answer = httpx.post(f"{replica.url}/api/v1/ingest", content=body_of(stream, range(seq, seq + 1)),
                            headers={**GZIP, "Authorization": f"Bearer {revoked}"}, timeout=10)
        assert answer.status_code == 200, answer.text
    a.cli("agent", "revoke", "test-board/test-school/revoked")
    for replica in (b, a):
        answer = httpx.post(f"{replica.url}/api/v1/ingest", content=body_of(stream, range(3, 4)),
                            headers={**GZIP, "Authorization": f"Bearer {revoked}"}, timeout=10)
        assert answer.status_code == 401, (replica.url, answer.text)


@dataclass
class Load:
    """What the simulated agents sent and what they were told."""

    credentials: list[str]
    streams: list[str]
    acked: list[dict[int, float]] = field(default_factory=list)  # per agent: batch -> when
    failures: dict[str, int] = field(default_factory=dict)
    done: bool = False

    def acked_batches(self) -> int:
        return sum(len(agent) for agent in self.acked)


async def run_load(url: str, load: Load) -> None:
    """Each simulated agent sends its batches in order and sends a batch again until it is
    acknowledged (a 2xx whose every record is accepted or duplicate), as the real one does."""

    async def agent(client: httpx.AsyncClient, index: int) -> None:
        auth = {**GZIP, "Authorization": f"Bearer {load.credentials[index]}"}
        for number in range(BATCHES_PER_AGENT):
            first = number * RECORDS_PER_BATCH + 1
            body = body_of(load.streams[index], range(first, first + RECORDS_PER_BATCH))
            while True:
                try:
                    answer = await client.post("/api/v1/ingest", content=body, headers=auth)
                except httpx.HTTPError as exc:
                    name = type(exc).__name__
                    load.failures[name] = load.failures.get(name, 0) + 1
                    await asyncio.sleep(0.1)
                    continue
                if answer.status_code == 200:
                    statuses = {r["status"] for r in answer.json()["results"]}
                    assert statuses <= {"accepted", "duplicate"}, answer.text
                    load.acked[index][number] = time.monotonic()
                    break
                load.failures[str(answer.status_code)] = load.failures.get(str(answer.status_code), 0) + 1
                assert answer.status_code == 503, answer.text  # 503 only: retried
                await asyncio.sleep(min(1.0, float(answer.headers.get("Retry-After", "1"))))

    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        await asyncio.gather(*(agent(client, i) for i in range(len(load.credentials))))
    load.done = True


def test_kill_one_replica_under_load_loses_and_doubles_nothing(
        replicas: Replicas, tmp_path: Path) -> None:
    a, balancer = replicas.a, replicas.balancer
    code = a.cli("enroll-code", "--school", "test-board/test-school",
                 "--uses", str(SIMULATED_AGENTS + 1)).stdout.strip()
    credentials = []
    for index in range(SIMULATED_AGENTS):
        answer = enroll(balancer.url, code, f"sim-{index}")
        assert answer.status_code == 200, answer.text
        credentials.append(answer.json()["credential"])
    load = Load(credentials, [new_stream() for _ in credentials],
                [{} for _ in credentials])

    (tmp_path / "real").mkdir()
    real = AgentProcess(tmp_path / "real", LOOPBACK_CONNECTIVITY + '\n[upload]\ninterval = "1s"\n')
    real.cli("enroll", "--collector", balancer.url, "--code", code, "--name", "real")
    real.start("run")
    try:
        wait_until(lambda: real.status().get("last_upload_at"), 30, "the real agent's first upload")
        loader = threading.Thread(target=lambda: asyncio.run(run_load(balancer.url, load)))
        loader.start()
        total = SIMULATED_AGENTS * BATCHES_PER_AGENT
        wait_until(lambda: load.acked_batches() >= total // 3 or not loader.is_alive(), 60,
                   "a third of the batches acknowledged")
        assert not load.done, "the load finished before the kill: make it longer"
        served_by_a = balancer.connections[0]
        a.kill9()
        killed_at = time.monotonic()
        loader.join(90)
        assert load.done, f"the simulated agents did not finish: {load.failures}"
        # The real agent delivers through the survivor too, and its outbox drains: nothing
        # in it older than a few upload intervals (it measures all the while, so it is
        # rarely empty).
        def delivering_and_drained() -> bool:
            status = real.status()
            return ((status.get("last_upload_at") or 0) > time.time() - 1
                    and (status.get("oldest_record_age_seconds") or 0) < 10
                    and time.monotonic() > killed_at + 3)

        wait_until(delivering_and_drained, 30, "a real agent upload after the kill, outbox drained")
    finally:
        real.stop()
    assert served_by_a > 0, "the killed replica had served nobody"
    # The kill hit requests in flight (a connection cut mid-request is a transport error
    # here; a 503 is the collector's own answer): otherwise "exactly once" was not tested
    # where it matters, a batch committed or not when its answer was lost.
    cut = {name: n for name, n in load.failures.items() if not name.isdigit()}
    assert cut, f"no request was in flight on the killed replica: {load.failures}"

    # Every simulated agent carried on: batches acknowledged after the kill, all of them
    # in the end, each record stored once.
    for index, acked in enumerate(load.acked):
        assert len(acked) == BATCHES_PER_AGENT
        assert any(when > killed_at for when in acked.values()), f"sim-{index} stalled"
    rows = replicas.rows(
        "SELECT a.slug, r.stream_id, count(*), count(DISTINCT r.seq), min(r.seq), max(r.seq)"
        " FROM records r JOIN agents a ON a.id = r.agent_id GROUP BY a.slug, r.stream_id")
    by_agent = {slug: (stream, n, distinct, low, high) for slug, stream, n, distinct, low, high in rows}
    expected = BATCHES_PER_AGENT * RECORDS_PER_BATCH
    for index, stream in enumerate(load.streams):
        assert by_agent[f"sim-{index}"] == (stream, expected, expected, 1, expected)
    duplicates = replicas.rows(
        "SELECT count(*) FROM (SELECT 1 FROM records GROUP BY agent_id, stream_id, seq"
        " HAVING count(*) > 1) d")
    assert duplicates == [(0,)]

    # The real agent: what it stored and what its outbox still holds are one run of seqs
    # from 1 (a record stored by the killed replica whose answer was lost may be in both:
    # it is sent again and answered duplicate), and nothing stored twice.
    _, n, distinct, _, _ = by_agent["real"]
    assert n == distinct
    stored = {seq for (seq,) in replicas.rows(
        "SELECT r.seq FROM records r JOIN agents a ON a.id = r.agent_id WHERE a.slug = 'real'")}
    every = stored | real.outbox_seqs()
    assert every == set(range(1, max(every) + 1)), "a seq lost between agent and store"
    received_after_kill = replicas.rows(
        "SELECT count(*) FROM records r JOIN agents a ON a.id = r.agent_id"
        " WHERE a.slug = 'real' AND r.received_at > %s", time.time() - (time.monotonic() - killed_at))
    assert received_after_kill[0][0] > 0
    print(f"\nkill -9 under load: {served_by_a} connections had gone to the killed replica; "
          f"failures seen and retried: {load.failures}; balancer skips: {balancer.skipped}")
