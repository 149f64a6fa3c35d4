"""Benchmark of what the scale tier stores and sends per record: the sizing guide's inputs.

Run:  .venv-test/bin/python tests/bench/bench_remote_write.py [--quick] [--agents N] [--json FILE]
(as root: PostgreSQL runs as the postgres user).

A collector app on a durable PostgreSQL (``PostgresServer(durable=True)``) takes N agents'
day of records each (bench_scale's day: a connectivity window and a system sample a minute,
a users window every 5 minutes, 4 bandwidth tests) through the real ingest API, with the
remote_write queue on. Then, measured:

1. Storage in PostgreSQL per record, by kind (payload bytes) and in all (the `records`
   table with its indexes and TOAST, and the queue), from PostgreSQL's own sizes.
2. The remote_write drain: the collector's sender (collector/remote_write/sender.py) sends
   the whole queue to a real VictoriaMetrics, batch after batch; records/s, samples per
   record, CPU of the sender (this process) and of VictoriaMetrics per 1,000 records. The
   anchor, same run: VictoriaMetrics taking the very same request bodies again (its own
   cost of receiving them, without our reading, building and encoding).
3. VictoriaMetrics' disk per sample after a flush (its background merges compress further
   over hours: an upper bound).
4. The state snapshot: building every family of the page for N agents and encoding it,
   seconds per snapshot and per agent.

Prints a table and writes JSON (default bench-results/remote_write.json); asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_scale import BATCH_RECORDS, GZIP, bodies, day_of_records
from prometheus_client import CollectorRegistry
from support.postgres import PostgresServer
from support.victoria import VictoriaMetrics

from collector.remote_write import queue
from collector.remote_write.encode import compressed_write_request
from collector.remote_write.sender import RemoteWriteConfig, RemoteWriter
from collector.remote_write.series import SeriesBatch


def _site_maker() -> Any:
    """tests/test_collector/conftest.py's make_site (a module named like tests/conftest.py,
    so loaded from its path)."""
    path = Path(__file__).resolve().parent.parent / "test_collector" / "conftest.py"
    spec = importlib.util.spec_from_file_location("collector_test_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.make_site


make_site = _site_maker()


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def ingest(site: Any, agents: int, day: list[dict[str, Any]]) -> float:
    """Every agent's day through POST /api/v1/ingest; returns the seconds it took."""
    day_bodies = bodies(day, BATCH_RECORDS, -(-len(day) // BATCH_RECORDS))
    started = time.monotonic()
    for index in range(agents):
        credential = site.enroll(f"bench-{index}")
        for body in day_bodies:
            answer = site.client.post("/api/v1/ingest", content=body, headers={
                **GZIP, "Authorization": f"Bearer {credential}"})
            assert answer.status_code == 200, answer.text
    return time.monotonic() - started


def storage(postgres: PostgresServer, database: str) -> dict[str, Any]:
    def one(sql: str) -> Any:
        return postgres.execute(sql, database)[0][0]

    postgres.execute("VACUUM ANALYZE records", database)
    count = int(one("SELECT count(*) FROM records"))
    by_kind = {kind: {"records": int(n), "payload_bytes_per_record": round(float(size) / int(n), 1)}
               for kind, n, size in postgres.execute(
                   "SELECT kind, count(*), sum(pg_column_size(payload)) FROM records GROUP BY kind",
                   database)}
    table = int(one("SELECT pg_table_size('records')"))
    indexes = int(one("SELECT pg_indexes_size('records')"))
    return {"records": count, "by_kind": by_kind,
            "records_table_bytes_per_record": round(table / count, 1),
            "records_indexes_bytes_per_record": round(indexes / count, 1),
            "records_total_bytes_per_record": round((table + indexes) / count, 1),
            "queue_bytes_per_record": round(
                int(one("SELECT pg_total_relation_size('remote_write_queue')")) / count, 1)}


def drain(site: Any, vm: VictoriaMetrics, records: int) -> dict[str, Any]:
    """The sender, step by step, until the queue is empty."""
    registry = CollectorRegistry()
    bodies_sent: list[bytes] = []
    client = httpx.Client(timeout=60)
    post: Callable[..., httpx.Response] = client.post

    def keeping(url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        bodies_sent.append(content)
        return post(url, content=content, headers=headers)

    client.post = keeping  # type: ignore[method-assign]
    writer = RemoteWriter(site.engine, RemoteWriteConfig(url=vm.write_url, batch=BATCH_RECORDS),
                          site.client.app.state.metrics.store, registry, client=client)
    own, receiver = psutil.Process(), psutil.Process(vm.process.pid)  # type: ignore[union-attr]
    own_before, vm_before = cpu_seconds(own), cpu_seconds(receiver)
    started = time.monotonic()
    while True:
        settled = writer.send_records(time.time())
        if settled is None:
            break
        assert settled, "the receiver refused a batch: see its log"
    seconds = time.monotonic() - started
    own_used, vm_used = cpu_seconds(own) - own_before, cpu_seconds(receiver) - vm_before
    samples = registry.get_sample_value("schoolnet_remote_write_samples_total",
                                        {"part": "records"}) or 0.0
    assert queue.depth(site.engine)[0] == 0
    # Before the anchor writes every sample a second time.
    disk = vm_disk(vm, int(samples))

    # The anchor: the same bodies again, VictoriaMetrics' own cost of taking them.
    vm_before, started = cpu_seconds(receiver), time.monotonic()
    for body in bodies_sent:
        post(vm.write_url, content=body, headers={"Content-Encoding": "snappy",
                                                  "Content-Type": "application/x-protobuf"})
    anchor_seconds = time.monotonic() - started
    anchor_vm = cpu_seconds(receiver) - vm_before
    client.close()
    return {"vm_disk": disk, "records": records, "seconds": round(seconds, 2),
            "records_per_second": round(records / seconds),
            "samples": int(samples), "samples_per_record": round(samples / records, 2),
            "requests": len(bodies_sent),
            "request_bytes_per_record": round(sum(map(len, bodies_sent)) / records, 1),
            "sender_cpu_ms_per_1000_records": round(own_used / records * 1e6, 1),
            "victoriametrics_cpu_ms_per_1000_records": round(vm_used / records * 1e6, 1),
            "anchor_resend_seconds": round(anchor_seconds, 2),
            "anchor_resend_records_per_second": round(records / anchor_seconds),
            "anchor_victoriametrics_cpu_ms_per_1000_records": round(anchor_vm / records * 1e6, 1)}


def vm_disk(vm: VictoriaMetrics, samples: int) -> dict[str, Any]:
    httpx.get(f"{vm.url}/internal/force_flush", timeout=60)
    time.sleep(2)
    size = sum(path.stat().st_size for path in vm.data_dir.rglob("*") if path.is_file())
    return {"data_dir_bytes": size, "bytes_per_sample_upper_bound": round(size / samples, 2)}


def snapshot(site: Any, agents: int) -> dict[str, Any]:
    store = site.client.app.state.metrics.store
    best = None
    for _ in range(3):
        started = time.perf_counter()
        batch = SeriesBatch("bench")
        batch.add(store.families(), time.time())
        body = compressed_write_request(batch.timeseries())
        took = time.perf_counter() - started
        best = took if best is None else min(best, took)
    assert best is not None
    return {"agents": agents, "series": batch.count, "seconds": round(best, 3),
            "ms_per_agent": round(best / agents * 1000, 2), "request_bytes": len(body)}


def print_table(results: dict[str, Any]) -> None:
    stored, sent, disk, snap = (results["storage"], results["drain"], results["vm_disk"],
                                results["snapshot"])
    print(f"\nremote_write and storage per record: {results['agents']} agents x "
          f"{results['day_records_per_agent']} records (a day each), durable PostgreSQL, "
          f"{os.cpu_count()} cores")
    print(f"{'figure':58} {'value':>12}")
    rows = [
        ("ingest through the API, records/s (setup, for scale)", results["ingest_records_per_second"]),
        ("PostgreSQL: records table bytes/record", stored["records_table_bytes_per_record"]),
        ("PostgreSQL: records indexes bytes/record", stored["records_indexes_bytes_per_record"]),
        ("PostgreSQL: remote_write queue bytes/record (while queued)", stored["queue_bytes_per_record"]),
        *[(f"  payload bytes/record, {kind}", figures["payload_bytes_per_record"])
          for kind, figures in sorted(stored["by_kind"].items())],
        ("remote_write drain: records/s", sent["records_per_second"]),
        ("  samples per record", sent["samples_per_record"]),
        ("  request bytes per record (snappy)", sent["request_bytes_per_record"]),
        ("  sender CPU ms per 1,000 records", sent["sender_cpu_ms_per_1000_records"]),
        ("  VictoriaMetrics CPU ms per 1,000 records", sent["victoriametrics_cpu_ms_per_1000_records"]),
        ("  anchor: same bodies re-sent, records/s", sent["anchor_resend_records_per_second"]),
        ("  anchor: VictoriaMetrics CPU ms per 1,000 records",
         sent["anchor_victoriametrics_cpu_ms_per_1000_records"]),
        ("VictoriaMetrics disk bytes/sample after flush (upper bound)", disk["bytes_per_sample_upper_bound"]),
        (f"snapshot of {snap['agents']} agents: seconds", snap["seconds"]),
        ("  ms per agent", snap["ms_per_agent"]),
    ]
    for name, value in rows:
        print(f"{name:58} {value:>12}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 agents, for a smoke run")
    parser.add_argument("--agents", type=int, help="agents with a day of records each (default 16)")
    parser.add_argument("--json", type=Path, default=Path("bench-results/remote_write.json"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_remote_write: error: run as root (PostgreSQL runs as the postgres user)",
              file=sys.stderr)
        return 2
    agents = args.agents or (2 if args.quick else 16)
    day = day_of_records()
    results: dict[str, Any] = {"agents": agents, "day_records_per_agent": len(day)}
    postgres = PostgresServer(durable=True).start()
    vm = VictoriaMetrics()
    try:
        url = postgres.fresh_database()
        with tempfile.TemporaryDirectory(prefix="schoolnet-bench-rw-") as tmp, \
                make_site(Path(tmp), url) as site:
            queue.enable_queue(site.engine)
            took = ingest(site, agents, day)
            records = agents * len(day)
            results["ingest_records_per_second"] = round(records / took)
            results["storage"] = storage(postgres, url.rsplit("/", 1)[1])
            vm.start()
            results["drain"] = drain(site, vm, records)
            results["vm_disk"] = results["drain"].pop("vm_disk")
            results["snapshot"] = snapshot(site, agents)
    finally:
        vm.close()
        postgres.stop()
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
