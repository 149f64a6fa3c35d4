"""Benchmark of the spine: collector ingest, /metrics render, agent footprint.

Run:  .venv-test/bin/python tests/bench/bench_spine.py [--quick] [--json FILE]

Everything runs on this machine against 127.0.0.1: a real collector process on a fresh
SQLite file, simulated agents speaking the real wire format, and the real agent. Each
figure stands beside an anchor measured in the same run (what the disk, the HTTP stack
or a bare Python allows), so a reader can tell the product's cost from the machine's.
Prints a table and writes JSON; asserts nothing (targets are shown, not enforced).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support.processes import AgentProcess, CollectorProcess, wait_until
from support.records import record

BIN = Path(sys.executable).parent


# --- records in the real wire format ---------------------------------------------------


def system_record(stream_id: str, seq: int) -> dict[str, Any]:
    return record(seq, stream_id, "system")


def bandwidth_record(stream_id: str, seq: int) -> dict[str, Any]:
    return record(seq, stream_id, "bandwidth")


def batch_body(records: list[dict[str, Any]]) -> bytes:
    batch = {"sent_at_seconds": time.time(),
             "health": {"version": "bench", "outbox_records": 0, "outbox_bytes": 0},
             "records": records}
    return gzip.compress(json.dumps(batch).encode(), compresslevel=6)


HEADERS = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


# --- enrolment of many simulated agents -----------------------------------------------


async def enroll_many(collector: CollectorProcess, count: int, concurrency: int = 16
                      ) -> list[str]:
    code = collector.cli("enroll-code", "--school", "bench-board/bench-school",
                         "--uses", str(count), "--valid-for", "1d").stdout.strip()
    credentials: list[str] = []
    queue = list(range(count))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            index = queue.pop()
            answer = await client.post("/api/v1/enroll", json={
                "code": code, "name": f"sim-{index}", "version": "bench"})
            answer.raise_for_status()
            credentials.append(answer.json()["credential"])

    async with httpx.AsyncClient(base_url=collector.url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return credentials


@contextmanager
def running_collector(run_dir: Path) -> Iterator[CollectorProcess]:
    """A fresh collector with the bench board and school, stopped afterwards."""
    run_dir.mkdir()
    collector = CollectorProcess(run_dir)
    set_up_school(collector)
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


def set_up_school(collector: CollectorProcess) -> None:
    collector.cli("board", "add", "Bench board", "--id", "bench-board")
    collector.cli("school", "add", "--board", "bench-board", "Bench school", "--id",
                  "bench-school")


# --- ingest ----------------------------------------------------------------------------


async def ingest_load(collector: CollectorProcess, credentials: list[str],
                      batches_per_agent: int, records_per_batch: int,
                      paced_records_per_second: float | None = None) -> dict[str, Any]:
    """Every simulated agent sends its batches one after another, all agents at once:
    back to back (the collector's ceiling), or paced to an offered load (its latency
    when it is not saturated)."""
    bodies = {
        credential: [
            batch_body([system_record(stream, b * records_per_batch + i + 1)
                        for i in range(records_per_batch)])
            for b in range(batches_per_agent)
        ]
        for credential in credentials
        for stream in [uuid.uuid4().hex]
    }
    latencies: list[float] = []
    accepted = 0
    errors: dict[str, int] = {}

    interval = (len(credentials) * records_per_batch / paced_records_per_second
                if paced_records_per_second else 0.0)

    async def agent(client: httpx.AsyncClient, credential: str) -> None:
        nonlocal accepted
        await asyncio.sleep(random.uniform(0, interval))
        for body in bodies[credential]:
            next_send = time.perf_counter() + interval
            for _attempt in range(5):  # like an agent: a failed send is sent again
                started = time.perf_counter()
                try:
                    answer = await client.post("/api/v1/ingest", content=body, headers={
                        **HEADERS, "Authorization": f"Bearer {credential}"})
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)
                if answer.status_code == 200:
                    accepted += sum(r["status"] == "accepted" for r in answer.json()["results"])
                    break
                errors[str(answer.status_code)] = errors.get(str(answer.status_code), 0) + 1
            await asyncio.sleep(max(0.0, next_send - time.perf_counter()))

    limits = httpx.Limits(max_connections=len(credentials) + 4)
    async with httpx.AsyncClient(base_url=collector.url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(agent(client, c) for c in credentials))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "agents": len(credentials),
        "offered_records_per_second": paced_records_per_second,
        "records_per_batch": records_per_batch,
        "batches": len(latencies),
        "records_accepted": accepted,
        "seconds": elapsed,
        "records_per_second": accepted / elapsed,
        "latency_p50_seconds": statistics.median(latencies),
        "latency_p99_seconds": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": errors,
    }


def sqlite_anchor(directory: Path, batches: int, records_per_batch: int) -> dict[str, Any]:
    """What this disk allows: 100-row transactions committed with synchronous=FULL."""
    db = sqlite3.connect(directory / "anchor.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE r (agent INT, stream TEXT, seq INT, payload TEXT, "
               "UNIQUE(agent, stream, seq))")
    payload = json.dumps(system_record("0" * 32, 1)["payload"])
    started = time.perf_counter()
    for b in range(batches):
        db.execute("BEGIN")
        db.executemany("INSERT INTO r VALUES (1, 's', ?, ?)",
                       [(b * records_per_batch + i, payload) for i in range(records_per_batch)])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return {"records_per_second": batches * records_per_batch / elapsed,
            "commits_per_second": batches / elapsed}


# --- /metrics ---------------------------------------------------------------------------


async def populate_agents(collector: CollectorProcess, credentials: list[str],
                          concurrency: int = 16) -> None:
    """One system and one bandwidth record per agent, through the real ingest API."""
    queue = list(credentials)

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            credential = queue.pop()
            stream = uuid.uuid4().hex
            body = batch_body([system_record(stream, 1), bandwidth_record(stream, 2)])
            answer = await client.post("/api/v1/ingest", content=body, headers={
                **HEADERS, "Authorization": f"Bearer {credential}"})
            answer.raise_for_status()

    async with httpx.AsyncClient(base_url=collector.url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))


def time_metrics(collector: CollectorProcess, repeats: int = 5) -> dict[str, Any]:
    timings = []
    size = 0
    # As Prometheus scrapes: with a metrics token (made before the clock starts).
    token = collector.metrics_token_file().read_text().strip()
    for _ in range(repeats):
        started = time.perf_counter()
        answer = httpx.get(f"{collector.url}/metrics", timeout=120,
                           headers={"Authorization": f"Bearer {token}"})
        timings.append(time.perf_counter() - started)
        answer.raise_for_status()
        size = len(answer.content)
    healthz = []
    for _ in range(repeats):
        started = time.perf_counter()
        httpx.get(f"{collector.url}/healthz", timeout=10)
        healthz.append(time.perf_counter() - started)
    return {"median_seconds": statistics.median(timings), "max_seconds": max(timings),
            "bytes": size, "anchor_healthz_seconds": statistics.median(healthz)}


# --- the agent's footprint --------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def median_run_seconds(command: list[str], env: dict[str, str], repeats: int = 5) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def python_rss(code: str) -> int:
    """RSS of a fresh Python after ``code`` (from /proc: ru_maxrss would carry the
    forking parent's peak across exec)."""
    probe = "\nprint(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])"
    result = subprocess.run([sys.executable, "-c", code + probe], capture_output=True,
                            text=True, check=True)
    return int(result.stdout.split()[-1]) * 1024


def agent_footprint(collector: CollectorProcess, workdir: Path, idle_seconds: float
                    ) -> dict[str, Any]:
    agent = AgentProcess(workdir, "[probes.bandwidth]\nenabled = false\n[upload]\ninterval = \"5s\"\n")
    code = collector.cli("enroll-code", "--school", "bench-board/bench-school").stdout.strip()
    agent.cli("enroll", "--collector", collector.url, "--code", code, "--name", "footprint")
    process = agent.start("run")
    try:
        wait_until(lambda: agent.status().get("last_upload_at") or process.poll() is not None,
                   60, "the agent's first upload")
        time.sleep(idle_seconds)
        rss = rss_bytes(process.pid)
    finally:
        agent.stop()
    help_seconds = median_run_seconds([str(BIN / "schoolnet-agent"), "--help"], agent.env)
    status_seconds = median_run_seconds([str(BIN / "schoolnet-agent"), "status"], agent.env)
    bare_seconds = median_run_seconds([sys.executable, "-c", "pass"], agent.env)
    return {
        "idle_rss_bytes": rss,
        "idle_seconds": idle_seconds,
        "anchor_python_rss_bytes": python_rss("pass"),
        "anchor_deps_rss_bytes": python_rss("import psutil, httpx, pydantic, pydantic_settings"),
        "help_seconds": help_seconds,
        "status_seconds": status_seconds,
        "anchor_python_start_seconds": bare_seconds,
    }


# --- the run ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", type=Path, default=Path("bench-results/spine.json"))
    parser.add_argument("--only", choices=["ingest", "metrics", "agent"],
                        help="run one part (the table shows what ran)")
    args = parser.parse_args()
    quick = args.quick
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}

    with tempfile.TemporaryDirectory(prefix="schoolnet-bench-") as tmp:
        work = Path(tmp)
        ingest_results = []
        for agents in ([4, 16] if quick else [10, 50, 100]) if args.only in (None, "ingest") else []:
            with running_collector(work / f"ingest-{agents}") as collector:
                credentials = asyncio.run(enroll_many(collector, agents))
                batches = 5 if quick else max(10, 3000 // agents)
                peak = asyncio.run(ingest_load(collector, credentials, batches, 100))
                # Half the measured ceiling, paced: the latency an agent sees in normal use.
                paced = asyncio.run(ingest_load(collector, credentials, max(3, batches // 3), 100,
                                                peak["records_per_second"] / 2))
                stored = collector.query("SELECT count(*) FROM records")[0][0]
                for figures in (peak, paced):
                    figures["records_stored"] = stored
                    figures["durable_acks"] = stored == peak["records_accepted"] + paced["records_accepted"]
                    ingest_results.append(figures)
        results["ingest"] = ingest_results
        if ingest_results:
            results["ingest_anchor_sqlite"] = sqlite_anchor(work, 200, 100)

        metrics_results = []
        for agents in ([200, 1000] if quick else [1000, 10000]) if args.only in (None, "metrics") else []:
            with running_collector(work / f"metrics-{agents}") as collector:
                credentials = asyncio.run(enroll_many(collector, agents))
                asyncio.run(populate_agents(collector, credentials))
                metrics_results.append({"agents": agents, **time_metrics(collector)})
        results["metrics"] = metrics_results

        if args.only in (None, "agent"):
            with running_collector(work / "footprint") as collector:
                results["agent"] = agent_footprint(collector, work / "footprint",
                                                   5 if quick else 30)

    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.json}")
    return 0


def print_table(results: dict[str, Any]) -> None:
    mb = 1024 * 1024
    if results.get("ingest"):
        anchor = results["ingest_anchor_sqlite"]
        print("\nCollector ingest (batches of 100, gzip, real HTTP, SQLite synchronous=FULL)")
        print(f"{'agents':>7} {'load':>7} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'durable':>8}  target")
        for row in results["ingest"]:
            load = "peak" if not row["offered_records_per_second"] else "half"
            print(f"{row['agents']:>7} {load:>7} {row['records_per_second']:>10.0f} "
                  f"{row['latency_p50_seconds'] * 1000:>8.1f} {row['latency_p99_seconds'] * 1000:>8.1f} "
                  f"{'yes' if row['durable_acks'] else 'NO':>8}  >=10000/s, p99<100ms"
                  + (f"  errors {row['errors']}" if row["errors"] else ""))
        print(f"{'anchor':>7} {'':>7} {anchor['records_per_second']:>10.0f}  raw SQLite inserts, "
              f"{anchor['commits_per_second']:.0f} commits/s on this disk")
    if results.get("metrics"):
        print("\n/metrics render (HTTP GET, median of 5)")
        print(f"{'agents':>7} {'seconds':>8} {'max':>8} {'KiB':>8} {'healthz ms':>11}  target")
        for row in results["metrics"]:
            print(f"{row['agents']:>7} {row['median_seconds']:>8.3f} {row['max_seconds']:>8.3f} "
                  f"{row['bytes'] / 1024:>8.0f} {row['anchor_healthz_seconds'] * 1000:>11.1f}"
                  "  <1 s at 10000")
    agent = results.get("agent")
    if agent:
        print("\nAgent footprint")
        print(f"  idle RSS after {agent['idle_seconds']:.0f} s of `run`: "
              f"{agent['idle_rss_bytes'] / mb:.1f} MiB (target <= 50 MB; anchors: bare python "
              f"{agent['anchor_python_rss_bytes'] / mb:.1f} MiB, python + psutil/httpx/pydantic/"
              f"pydantic-settings {agent['anchor_deps_rss_bytes'] / mb:.1f} MiB)")
        print(f"  start-up: `--help` {agent['help_seconds'] * 1000:.0f} ms, `status` "
              f"{agent['status_seconds'] * 1000:.0f} ms (anchor: bare python "
              f"{agent['anchor_python_start_seconds'] * 1000:.0f} ms)")


if __name__ == "__main__":
    sys.exit(main())
