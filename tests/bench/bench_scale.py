"""Benchmark of the scale tier: collector replicas on one durable PostgreSQL.

Run:  .venv-test/bin/python tests/bench/bench_scale.py [--quick] [--storm-seconds S] [--json FILE]
(as root: PostgreSQL runs as the postgres user).

1. Ingest throughput with 1 and with 2 `serve` replicas on one PostgreSQL with fsync on
   (``PostgresServer(durable=True)``): simulated agents (coroutines sharing one httpx pool,
   spread over the replicas) post a real agent's day of records (bench_incidents' Agent:
   connectivity windows, users windows, bandwidth tests, plus system samples) in batches
   of 500 (an agent with a backlog) and of 10 (an agent in steady state sends a few records
   a minute), back to back for a fixed time. Records/s, and CPU seconds per record read
   from /proc (psutil) of the collector processes and, separately, of the PostgreSQL
   server and its backends: sizing needs both. The anchor, same run, same server: the
   same rows written with psycopg ``COPY`` into a table of the same shape and unique key,
   500 rows per durable commit.
2. Reconnect storm: 8,000 simulated agents (--quick: 400), each with a day of backlog,
   start within 5 s against 2 replicas and drain it as agent/uploader.py does: batches of
   500, a 503/429 or a failure waits the agent's own full-jitter ``Backoff`` (cap 600 s,
   at least Retry-After), a success resets it. Runs --storm-seconds (default 240), then
   stops: the drain rate, the answers (2xx / 429 / 503 / other statuses / connection
   errors / client timeouts of 30 s, the agent's default), and p50/p99 latency of accepted
   and of refused requests are MEASURED; the time to drain the whole backlog is
   EXTRAPOLATED from the measured rate.

This machine has 2 cores, shared by PostgreSQL, the replicas and the load generator: two
replicas cannot double throughput here; what must hold is that CPU per record does not grow
with replicas. Prints a table and writes JSON (default bench-results/scale.json); asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_incidents import Agent as DayAgent
from support.postgres import PostgresServer
from support.processes import CollectorProcess

from agent.config import UploadConfig
from agent.uploader import Backoff
from agent.wire import SystemPayload

BATCH_RECORDS = UploadConfig().batch_records  # the agent's own batch size (500)
MAX_BACKOFF = UploadConfig().max_backoff
CLIENT_TIMEOUT = 30.0  # the agent's default collector timeout
GZIP = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
STREAM = "5ca1e" + "0" * 27  # one stream id for every simulated agent: rows are keyed by agent


# --- a real agent's day of records ----------------------------------------------------------


def day_of_records() -> list[dict[str, Any]]:
    """Yesterday as an agent with the default probes records it: a connectivity window and a
    system sample a minute, a users window every 5 minutes, 4 bandwidth tests."""
    start = dt.datetime.combine(dt.date.today() - dt.timedelta(days=1), dt.time(),
                                tzinfo=dt.UTC).timestamp()
    agent = DayAgent(identity=None, jitter=3)
    agent.stream = STREAM
    for minute in range(1440):
        agent.window(start + minute * 60, minute)
        agent.add("system", start + minute * 60 + 1, SystemPayload(
            cpu_usage_ratio=0.08, cpu_count=4, memory_total_bytes=4_000_000_000,
            memory_available_bytes=2_600_000_000, agent_resident_memory_bytes=38_000_000,
            temperature_celsius=48.0, uplink_speed_bytes_per_second=125_000_000))
        if minute % 5 == 0:
            agent.users(start + minute * 60 + 2, 8 * 60 <= minute < 16 * 60)
    for hour in (9, 11, 13, 15):
        agent.bandwidth(start + hour * 3600 + 600, 0.95, 200)
    agent.pending.sort(key=lambda r: r["clock"]["wall_time_seconds"])
    for seq, rec in enumerate(agent.pending, start=1):
        rec["seq"] = seq
    return agent.pending


def bodies(day: list[dict[str, Any]], batch_records: int, count: int,
           total: int | None = None) -> list[bytes]:
    """``count`` consecutive batches (seqs 1, 2, …), the day's records repeated as needed,
    at most ``total`` records in all (the last batch is then short, as an agent's is): the
    same bodies serve every simulated agent (rows are per agent)."""
    out = []
    for number in range(count):
        first = number * batch_records
        size = batch_records if total is None else min(batch_records, total - first)
        chunk = [{**day[(first + i) % len(day)], "seq": first + i + 1} for i in range(size)]
        out.append(gzip.compress(json.dumps({
            "sent_at_seconds": time.time(), "records": chunk,
            "health": {"version": "bench", "outbox_records": 0, "outbox_bytes": 0,
                       "given_up": []}}).encode(), compresslevel=6))
    return out


# --- processes and their CPU -------------------------------------------------------------------


def cpu_seconds(roots: list[int]) -> float:
    """user+system CPU seconds so far of ``roots`` and all their descendants, the ended ones
    included: a reaped child's CPU is in its parent's children_user/children_system. That
    matters for PostgreSQL: the pool closes its overflow connections, and the backends of
    those had done part of the work (counting only live processes lost it). Read before and
    after: the difference is what the run cost (this process, the load generator, is not
    among the roots)."""
    total = 0.0
    seen: set[int] = set()
    for root in roots:
        try:
            parent = psutil.Process(root)
            family = [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in family:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue  # ended just now: its parent's children_* has it from the next read
            total += times.user + times.system + times.children_user + times.children_system
    return total


@contextmanager
def replicas(postgres: PostgresServer, work: Path, count: int, **env: str
             ) -> Iterator[tuple[str, list[CollectorProcess]]]:
    """``count`` replicas on a fresh database of ``postgres`` with the bench school."""
    db_url = postgres.fresh_database()
    started: list[CollectorProcess] = []
    try:
        for index in range(count):
            folder = work / f"replica-{index}-{time.monotonic_ns()}"
            folder.mkdir()
            replica = CollectorProcess(folder, db_url=db_url)
            replica.env.update(env)
            replica.serve_args = ["--log-level", "warning"]
            if index == 0:
                replica.cli("board", "add", "Bench board", "--id", "bench-board")
                replica.cli("school", "add", "--board", "bench-board", "Bench school", "--id",
                            "bench-school")
            replica.start()
            started.append(replica)
        yield db_url, started
    finally:
        for replica in started:
            replica.stop()
        postgres.drop_database(db_url.rsplit("/", 1)[1])


async def enroll_many(replica: CollectorProcess, count: int, concurrency: int = 32) -> list[str]:
    code = replica.cli("enroll-code", "--school", "bench-board/bench-school", "--uses", str(count),
                       "--valid-for", "1d").stdout.strip()
    credentials: list[str] = []
    todo = list(range(count))

    async def worker(client: httpx.AsyncClient) -> None:
        while todo:
            index = todo.pop()
            answer = await client.post("/api/v1/enroll", json={
                "code": code, "name": f"sim-{index}", "version": "bench"})
            answer.raise_for_status()
            credentials.append(answer.json()["credential"])

    async with httpx.AsyncClient(base_url=replica.url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return credentials


def percentile(values: list[float], share: float) -> float | None:
    """Nearest rank: the smallest value with at least ``share`` of all at or below it (p99 of
    100 values is the 99th, not the largest)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(share * len(ordered) - 1e-9)  # 1-based; the epsilon absorbs 0.99*100
    return ordered[min(len(ordered), max(1, rank)) - 1]


# --- 1. throughput -------------------------------------------------------------------------


async def push(urls: list[str], credentials: list[str], batch_bodies: list[bytes],
               batch_records: int, seconds: float) -> dict[str, Any]:
    """Every agent posts its next batch as soon as the last is answered, until ``seconds``."""
    accepted = 0
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds

    async def agent(client: httpx.AsyncClient, index: int) -> None:
        nonlocal accepted
        url = urls[index % len(urls)]
        auth = {**GZIP, "Authorization": f"Bearer {credentials[index]}"}
        number = 0
        while time.perf_counter() < deadline and number < len(batch_bodies):
            started = time.perf_counter()
            try:
                answer = await client.post(url + "/api/v1/ingest", content=batch_bodies[number],
                                           headers=auth)
            except httpx.HTTPError as exc:
                answers[type(exc).__name__] += 1
                continue
            answers[str(answer.status_code)] += 1
            if answer.status_code == 200:
                latencies.append(time.perf_counter() - started)
                accepted += sum(r["status"] == "accepted" for r in answer.json()["results"])
                number += 1
            else:
                await asyncio.sleep(0.05)

    limits = httpx.Limits(max_connections=len(credentials) + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(agent(client, i) for i in range(len(credentials))))
        elapsed = time.perf_counter() - started
    return {"records_accepted": accepted, "seconds": elapsed,
            "records_per_second": accepted / elapsed, "answers": dict(answers),
            "latency_p50_seconds": percentile(latencies, 0.5),
            "latency_p99_seconds": percentile(latencies, 0.99),
            "ran_out_of_bodies": accepted >= len(credentials) * len(batch_bodies) * batch_records}


def throughput(postgres: PostgresServer, work: Path, day: list[dict[str, Any]], count: int,
               agents: int, batch_records: int, seconds: float) -> dict[str, Any]:
    # Enough distinct batches that no agent runs out within the time (a generous guess of
    # 6,000 records/s for the whole run).
    per_agent = max(4, int(6000 * seconds / agents / batch_records) + 2)
    batch_bodies = bodies(day, batch_records, per_agent)
    with replicas(postgres, work, count) as (_db, running):
        credentials = asyncio.run(enroll_many(running[0], agents))
        collector_roots = [r.process.pid for r in running if r.process]
        pg_roots = [postgres.process.pid] if postgres.process else []
        collector_before, pg_before = cpu_seconds(collector_roots), cpu_seconds(pg_roots)
        wall = time.perf_counter()
        figures = asyncio.run(push([r.url for r in running], credentials, batch_bodies,
                                   batch_records, seconds))
        wall = time.perf_counter() - wall
        collector_cpu = cpu_seconds(collector_roots) - collector_before
        pg_cpu = cpu_seconds(pg_roots) - pg_before
    records = max(1, figures["records_accepted"])
    return {"replicas": count, "agents": agents, "batch_records": batch_records, **figures,
            "collector_cpu_seconds": collector_cpu, "postgres_cpu_seconds": pg_cpu,
            "collector_cpu_ms_per_1000_records": collector_cpu / records * 1e6,
            "postgres_cpu_ms_per_1000_records": pg_cpu / records * 1e6,
            "cores_busy": (collector_cpu + pg_cpu) / wall}


def copy_anchor(postgres: PostgresServer, day: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    """The same rows written by psycopg COPY into a table of the records' shape and unique
    key, 500 rows per durable commit, on the same server."""
    import psycopg

    db_url = postgres.fresh_database(migrated=False)
    name = db_url.rsplit("/", 1)[1]
    try:
        with psycopg.connect(db_url) as db:
            db.execute("CREATE TABLE r (id bigserial PRIMARY KEY, agent_id int NOT NULL, "
                       "stream_id varchar(32) NOT NULL, seq bigint NOT NULL, kind varchar(64) NOT NULL, "
                       "ok boolean NOT NULL, error text, measured_at double precision NOT NULL, "
                       "boot_id varchar(64) NOT NULL, since_boot_seconds double precision NOT NULL, "
                       "clock_synchronized boolean, received_at double precision NOT NULL, "
                       "payload json NOT NULL, UNIQUE (agent_id, stream_id, seq))")
            db.execute("CREATE INDEX ON r (agent_id, kind, measured_at)")
            db.commit()
            backend = db.execute("SELECT pg_backend_pid()").fetchone()
            assert backend is not None
            payloads = [json.dumps(rec["payload"]) for rec in day]
            pg_roots = [postgres.process.pid] if postgres.process else []
            pg_before = cpu_seconds(pg_roots)
            started = time.perf_counter()
            now = time.time()
            for first in range(0, rows, BATCH_RECORDS):
                with db.cursor().copy(
                        "COPY r (agent_id, stream_id, seq, kind, ok, error, measured_at, boot_id, "
                        "since_boot_seconds, clock_synchronized, received_at, payload) FROM STDIN"
                ) as copy:
                    for seq in range(first + 1, min(rows, first + BATCH_RECORDS) + 1):
                        rec = day[(seq - 1) % len(day)]
                        copy.write_row((1, STREAM, seq, rec["kind"], rec["ok"], rec["error"],
                                        rec["clock"]["wall_time_seconds"], rec["clock"]["boot_id"],
                                        rec["clock"]["since_boot_seconds"], True, now,
                                        payloads[(seq - 1) % len(day)]))
                db.commit()
            elapsed = time.perf_counter() - started
            pg_cpu = cpu_seconds(pg_roots) - pg_before
    finally:
        postgres.drop_database(name)
    return {"rows": rows, "records_per_second": rows / elapsed,
            "postgres_cpu_ms_per_1000_records": pg_cpu / rows * 1e6}


# --- 2. the reconnect storm ----------------------------------------------------------------


async def storm(urls: list[str], credentials: list[str], day_bodies: list[bytes],
                day_records: int, seconds: float, start_within: float) -> dict[str, Any]:
    accepted_records = 0
    answers: Counter[str] = Counter()
    accepted_latency: list[float] = []
    refused_latency: list[float] = []
    agents_done = 0
    begun = time.perf_counter()
    deadline = begun + seconds
    rate_marks: list[tuple[float, int]] = []

    async def agent(client: httpx.AsyncClient, index: int) -> None:
        nonlocal accepted_records, agents_done
        import random

        await asyncio.sleep(random.uniform(0, start_within))
        url = urls[index % len(urls)] + "/api/v1/ingest"
        auth = {**GZIP, "Authorization": f"Bearer {credentials[index]}"}
        backoff = Backoff(cap=MAX_BACKOFF)
        for body in day_bodies:
            while True:
                if time.perf_counter() >= deadline:
                    return
                retry_after: float | None = None
                # At most a pool's worth of requests reach httpx at once: with 8,000 waiting
                # inside it, its pool spent a core on bookkeeping (the first full run).
                async with gate:
                    # Queued here past the end (a pool's worth at a time): stop, or the run
                    # overruns its time by the queue's worth of requests.
                    if time.perf_counter() >= deadline:
                        return
                    started = time.perf_counter()
                    try:
                        answer = await client.post(url, content=body, headers=auth)
                    except httpx.TimeoutException:
                        answers["client timeout"] += 1
                        answer = None
                    except httpx.HTTPError as exc:
                        answers[f"connection error ({type(exc).__name__})"] += 1
                        answer = None
                if answer is not None:
                    took = time.perf_counter() - started
                    answers[str(answer.status_code)] += 1
                    if answer.status_code == 200:
                        accepted_latency.append(took)
                        accepted_records += sum(
                            r["status"] == "accepted" for r in answer.json()["results"])
                        backoff.reset()
                        break
                    if answer.status_code in (429, 503):
                        refused_latency.append(took)
                        value = answer.headers.get("retry-after", "")
                        retry_after = float(value) if value.isdigit() else None
                delay = backoff.next_delay(retry_after)
                await asyncio.sleep(min(delay, max(0.0, deadline - time.perf_counter())))
        agents_done += 1

    async def sample_rate() -> None:
        while time.perf_counter() < deadline:
            rate_marks.append((time.perf_counter() - begun, accepted_records))
            await asyncio.sleep(5)

    # One pool for all: a simulated agent is a coroutine, not a connection pool. Its size
    # is above what both replicas admit at once, so the collector, not the pool, sheds.
    limits = httpx.Limits(max_connections=1200, max_keepalive_connections=1200)
    gate = asyncio.Semaphore(1200)
    timeout = httpx.Timeout(CLIENT_TIMEOUT, pool=CLIENT_TIMEOUT)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        sampler = asyncio.create_task(sample_rate())
        await asyncio.gather(*(agent(client, i) for i in range(len(credentials))))
        sampler.cancel()
    elapsed = time.perf_counter() - begun
    total = sum(answers.values())
    backlog = len(credentials) * day_records
    # The steady rate: after the first minute (the ramp) up to the end of the storm, from
    # the samples (not the tail after it, where requests still in flight finish and no new
    # ones start: that would understate the rate).
    late = [mark for mark in rate_marks if mark[0] >= min(60.0, seconds / 2)]
    steady = ((late[-1][1] - late[0][1]) / (late[-1][0] - late[0][0])
              if len(late) >= 2 and late[-1][0] > late[0][0] else accepted_records / elapsed)
    return {
        "agents": len(credentials), "day_records_per_agent": day_records,
        "backlog_records": backlog, "storm_seconds": seconds, "seconds": elapsed,
        "start_within_seconds": start_within,
        "accepted_so_far_every_5_s": rate_marks,  # [seconds since the start, records]
        "records_accepted": accepted_records, "agents_drained": agents_done,
        "drain_records_per_second": accepted_records / elapsed,
        "steady_records_per_second": steady,
        "extrapolated_drain_hours": backlog / max(steady, 1e-9) / 3600,
        "answers": dict(answers),
        "answer_shares": {key: value / total for key, value in answers.items()} if total else {},
        # Of the requests answered: the client timeouts (above) are not in these.
        "accepted_latency_p50_seconds": percentile(accepted_latency, 0.5),
        "accepted_latency_p99_seconds": percentile(accepted_latency, 0.99),
        "refused_latency_p50_seconds": percentile(refused_latency, 0.5),
        "refused_latency_p99_seconds": percentile(refused_latency, 0.99),
        "five_hundreds_other_than_503": sum(v for k, v in answers.items()
                                            if k.isdigit() and int(k) >= 500 and k != "503"),
    }


def run_storm(postgres: PostgresServer, work: Path, day: list[dict[str, Any]], agents: int,
              seconds: float) -> dict[str, Any]:
    day_bodies = bodies(day, BATCH_RECORDS, -(-len(day) // BATCH_RECORDS), total=len(day))
    with replicas(postgres, work, 2) as (_db, running):
        credentials = asyncio.run(enroll_many(running[0], agents))
        roots = [r.process.pid for r in running if r.process]
        pg_roots = [postgres.process.pid] if postgres.process else []
        collector_before, pg_before = cpu_seconds(roots), cpu_seconds(pg_roots)
        own_before = psutil.Process().cpu_times()
        figures = asyncio.run(storm([r.url for r in running], credentials, day_bodies, len(day),
                                    seconds, start_within=5.0))
        own = psutil.Process().cpu_times()
        figures["collector_cpu_seconds"] = cpu_seconds(roots) - collector_before
        figures["postgres_cpu_seconds"] = cpu_seconds(pg_roots) - pg_before
        figures["load_generator_cpu_seconds"] = (own.user + own.system
                                                 - own_before.user - own_before.system)
        figures["replicas"] = len(running)
        figures["refused_by_collector"] = sum(
            float(line.split()[-1]) for r in running for line in r.metrics().text.splitlines()
            if line.startswith("schoolnet_collector_ingest_refused_total"))
    return figures


# --- the run --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--storm-seconds", type=float, help="how long the storm runs (default 240)")
    parser.add_argument("--storm-agents", type=int, help="simulated agents in the storm (8000)")
    parser.add_argument("--only", choices=["throughput", "storm"])
    parser.add_argument("--json", type=Path, default=Path("bench-results/scale.json"))
    args = parser.parse_args()
    quick = args.quick
    if os.geteuid() != 0:
        print("bench_scale: error: run as root (PostgreSQL runs as the postgres user)",
              file=sys.stderr)
        return 2
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    day = day_of_records()
    results["day_records_per_agent"] = len(day)
    results["day_kinds"] = dict(Counter(rec["kind"] for rec in day))
    seconds = 8.0 if quick else 20.0
    postgres = PostgresServer(durable=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="schoolnet-bench-scale-") as tmp:
            work = Path(tmp)
            if args.only in (None, "throughput"):
                rows = []
                for batch_records, agents in ((BATCH_RECORDS, 16), (10, 64)):
                    for count in (1, 2):
                        rows.append(throughput(postgres, work, day, count, agents, batch_records,
                                               seconds))
                        print(f"  throughput: {count} replica(s), batches of {batch_records}: "
                              f"{rows[-1]['records_per_second']:.0f} records/s", flush=True)
                results["throughput"] = rows
                results["copy_anchor"] = copy_anchor(postgres, day, 20_000 if quick else 100_000)
            if args.only in (None, "storm"):
                results["storm"] = run_storm(
                    postgres, work, day, args.storm_agents or (400 if quick else 8000),
                    args.storm_seconds or (30.0 if quick else 240.0))
    finally:
        postgres.stop()
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.json}")
    return 0


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def print_table(results: dict[str, Any]) -> None:
    print(f"\nA simulated agent's day: {results['day_records_per_agent']} records "
          f"({', '.join(f'{k} {v}' for k, v in results['day_kinds'].items())})")
    if results.get("throughput"):
        print("\nIngest on durable PostgreSQL (fsync on), real HTTP, gzip; all MEASURED")
        print(f"{'replicas':>8} {'batch':>6} {'agents':>6} {'records/s':>10} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'collector CPU':>14} {'PostgreSQL CPU':>15} {'cores':>6}")
        print(f"{'':>8} {'':>6} {'':>6} {'':>10} {'':>7} {'':>7} {'ms/1000 rec':>14} "
              f"{'ms/1000 rec':>15} {'busy':>6}")
        for row in results["throughput"]:
            print(f"{row['replicas']:>8} {row['batch_records']:>6} {row['agents']:>6} "
                  f"{row['records_per_second']:>10.0f} {ms(row['latency_p50_seconds']):>7} "
                  f"{ms(row['latency_p99_seconds']):>7} "
                  f"{row['collector_cpu_ms_per_1000_records']:>14.0f} "
                  f"{row['postgres_cpu_ms_per_1000_records']:>15.0f} {row['cores_busy']:>6.2f}"
                  + (f"  answers {row['answers']}" if set(row["answers"]) != {"200"} else ""))
        anchor = results["copy_anchor"]
        print(f"{'anchor':>8} {500:>6} {1:>6} {anchor['records_per_second']:>10.0f} {'':>7} {'':>7} "
              f"{'':>14} {anchor['postgres_cpu_ms_per_1000_records']:>15.0f}  psycopg COPY, "
              "same rows, same server, a durable commit per 500")
        print("  target: CPU per record does not grow with replicas (2 cores here: throughput "
              "cannot double)")
    storm = results.get("storm")
    if storm:
        print(f"\nReconnect storm: {storm['agents']} agents x a day of backlog "
              f"({storm['backlog_records']:,} records), {storm['replicas']} replicas, "
              f"all starting within {storm['start_within_seconds']:.0f} s")
        print(f"  MEASURED over {storm['storm_seconds']:.0f} s of storm (+ "
              f"{storm['seconds'] - storm['storm_seconds']:.0f} s for the requests in flight at "
              f"its end): {storm['records_accepted']:,} records "
              f"accepted ({storm['drain_records_per_second']:.0f}/s overall, "
              f"{storm['steady_records_per_second']:.0f}/s after the ramp); "
              f"{storm['agents_drained']} agents fully drained")
        shares = ", ".join(f"{key} {value:.1%}" for key, value in
                           sorted(storm["answer_shares"].items(), key=lambda kv: -kv[1]))
        print(f"  answers ({sum(storm['answers'].values()):,} requests): {shares}")
        print(f"  latency accepted p50 {ms(storm['accepted_latency_p50_seconds'])} ms, "
              f"p99 {ms(storm['accepted_latency_p99_seconds'])} ms; refused p50 "
              f"{ms(storm['refused_latency_p50_seconds'])} ms, p99 "
              f"{ms(storm['refused_latency_p99_seconds'])} ms (answered requests only: the "
              "client timeouts are not in these)")
        print(f"  5xx other than 503: {storm['five_hundreds_other_than_503']}  (target: 0)")
        print(f"  CPU: collectors {storm['collector_cpu_seconds']:.0f} s, PostgreSQL "
              f"{storm['postgres_cpu_seconds']:.0f} s, load generator (same 2 cores) "
              f"{storm['load_generator_cpu_seconds']:.0f} s")
        print(f"  EXTRAPOLATED: the whole backlog drains in {storm['extrapolated_drain_hours']:.1f} h "
              "at the measured steady rate (target < 2 h)")


if __name__ == "__main__":
    sys.exit(main())
