"""What the comparison report's latency and loss cost the collector: the line quality of
every school over a period, first from raw windows (cold), then from the stored day
documents (warm), beside the floor of decoding every window raw.

Run:  .venv-test/bin/python tests/bench/bench_report.py [--quick] [--days N] [--json FILE]

A store on SQLite with 30 schools, each with one line and one wired agent that sent a
window a minute (the agent's default probe set: gateway, 5 targets, 2 provider hops, 5
resolvers, 2 web services; some 4.6 KB of JSON each, as bench_incidents builds them) for
N whole past local days (default 3; --quick 1) and today up to now. The first school's
windows go through the real ingest path (``ingest_batch``, batches of 500); the other 29
schools get copies of those stored rows (same payloads, same arrival times, their own
agent), which is what ingest would have written and takes seconds instead of minutes.
Only connectivity windows are stored: they are what the figures are made of.

1. cold: ``school_link_quality`` over the N past days for every school, on a store
   without day documents: every window is read and decoded, each day's documents are
   computed and stored (every kind, as retention would);
2. warm: the same call again (best of 3): the stored documents are read, plus the one
   grouped count per school that finds days whose windows changed since (timed alone too:
   it is the part that grows with the windows of the period);
3. warm with today: the period runs to today, whose windows are decoded every time (it is
   not over, so never stored);
4. the anchor, in the same run: every window of the N past days read with the stdlib's
   sqlite3 and its payload ``json.loads``'ed, school by school: the floor of any figure
   computed from the raw rows, i.e. what the stored documents save.

Then the whole report: ``build_report`` for an analyst over 30 schools x 91 days with 6
bandwidth tests every school day (11,700 tests, 3 providers; no windows, so this is the
statistics' own cost), cold (its day documents written) and warm (best of 3), beside the
anchor of reading the same results with sqlite3 and taking each line's median ratio with
``statistics.median``: the floor of any per-line figure.

Timings are wall seconds with the database file in the OS page cache. Also printed: the
bytes of day documents stored per school-day (all kinds, and the connectivity document
alone). It prints a table and writes JSON (default bench-results/report.json); it asserts
nothing. No network traffic: everything is in-process or a local file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bench_incidents import SLOW_PROVIDER, Agent, enrolled_school  # noqa: E402
from support.records import new_stream  # noqa: E402

from collector.calendar import load_calendars  # noqa: E402
from collector.comparison.connectivity import (  # noqa: E402
    late_days,
    school_link_quality,
    stored_days,
)
from collector.db.engine import open_engine, writer  # noqa: E402
from collector.db.migrate import upgrade  # noqa: E402
from collector.registry import add_board  # noqa: E402

TIMEZONE = "Europe/Amsterdam"
ZONE = ZoneInfo(TIMEZONE)
SCHOOLS = 30
WARM_RUNS = 3


def build(path: Path, schools: int, first: dt.date, now: float) -> dict[str, Any]:
    """The store: the first school's windows through ingest, copies for the others."""
    started = time.perf_counter()
    engine = open_engine(f"sqlite:///{path}")
    upgrade(engine)
    add_board(engine, "Bench board", "bench")
    agents: list[Agent] = [enrolled_school(engine, index, SLOW_PROVIDER) for index in range(schools)]
    start = dt.datetime.combine(first, dt.time(0), ZONE).timestamp()
    minutes = int((now - start) // 60)
    for index in range(minutes):
        agents[0].window(start + 60 * index, index)
    ingested = agents[0].upload(engine)
    ingest_seconds = time.perf_counter() - started
    with writer(engine) as conn, conn.begin():
        source = agents[0].identity.id
        for agent in agents[1:]:
            conn.exec_driver_sql(
                "INSERT INTO records (agent_id, stream_id, seq, kind, ok, error, measured_at, boot_id, "
                "since_boot_seconds, clock_synchronized, received_at, payload) "
                "SELECT ?, ?, seq, kind, ok, error, measured_at, boot_id, since_boot_seconds, "
                "clock_synchronized, received_at, payload FROM records WHERE agent_id = ?",
                (agent.identity.id, new_stream(), source))
    engine.dispose()
    db = sqlite3.connect(path)
    windows, payload_bytes, last_received = db.execute(
        "SELECT count(*), sum(length(payload)), max(received_at) FROM records "
        "WHERE kind = 'connectivity'").fetchone()
    db.close()
    return {"windows": windows, "ingested_through_ingest_batch": ingested,
            "mean_payload_bytes": payload_bytes / windows, "database_bytes": path.stat().st_size,
            "last_received_at": last_received, "ingest_seconds": ingest_seconds,
            "build_seconds": time.perf_counter() - started}


def anchor(path: Path, start: float, end: float) -> dict[str, Any]:
    """Every window of [start, end) read with sqlite3 and decoded, school by school."""
    started, cpu = time.perf_counter(), time.process_time()
    db = sqlite3.connect(path)
    decoded = 0
    for (school,) in db.execute("SELECT id FROM schools ORDER BY id").fetchall():
        for (payload,) in db.execute(
                "SELECT r.payload FROM records r JOIN agents a ON a.id = r.agent_id "
                "WHERE a.school_id = ? AND r.kind = 'connectivity' AND r.measured_at >= ? "
                "AND r.measured_at < ?", (school, start, end)):
            json.loads(payload)
            decoded += 1
    db.close()
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "windows_decoded": decoded}


def all_schools(path: Path, first: dt.date, last: dt.date, now: float) -> tuple[float, float, list[Any]]:
    """``school_link_quality`` for every school (calendars loaded first, as a report does):
    wall and CPU seconds, and the figures."""
    engine = open_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            calendars = load_calendars(conn, TIMEZONE)
        started, cpu = time.perf_counter(), time.process_time()
        found = [school_link_quality(engine, pk, calendar, first, last, now)
                 for pk, calendar in sorted(calendars.items())]
        return time.perf_counter() - started, time.process_time() - cpu, found
    finally:
        engine.dispose()


def late_query(path: Path, first: dt.date, last: dt.date) -> float:
    """Wall seconds of the part of a warm call that grows with the period's windows: the
    count of windows per stored day (it reads no payload, not even a row)."""
    engine = open_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            calendars = load_calendars(conn, TIMEZONE)
            started = time.perf_counter()
            for pk, calendar in sorted(calendars.items()):
                late_days(conn, pk, calendar, stored_days(conn, pk, first, last))
            return time.perf_counter() - started
    finally:
        engine.dispose()


def stored_bytes(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(path)
    school_days = db.execute(
        "SELECT count(DISTINCT school_id || ' ' || day) FROM daily_aggregates").fetchone()[0]
    total = db.execute("SELECT coalesce(sum(length(data)), 0), count(*) FROM daily_aggregates").fetchone()
    connectivity = db.execute("SELECT coalesce(sum(length(data)), 0), count(*) FROM daily_aggregates "
                              "WHERE kind = 'connectivity'").fetchone()
    db.close()
    return {"school_days": school_days, "rows": total[1], "bytes": total[0],
            "bytes_per_school_day": total[0] / school_days if school_days else None,
            "connectivity_bytes_per_school_day": connectivity[0] / school_days if school_days else None}


def report_section(folder: Path) -> dict[str, Any]:
    """build_report over 30 schools x 91 days of tests, beside reading them with sqlite3."""
    from support.comparison import ComparisonStore, school_hour_times

    from collector.comparison.compute import build_report
    from collector.comparison.model import Filters

    store = ComparisonStore.create(folder)
    first = dt.date(2026, 1, 5)
    for i in range(SCHOOLS):
        store.line(f"board-{i % 3}", f"school-{i}", provider=f"Provider {i % 3}",
                   technology=("fibre", "cable", "vdsl")[i % 3], down_mbps=100, cost=100.0 + i, pupils=200)
        store.tests(f"board-{i % 3}", f"school-{i}", [50 + (j % 50) for j in range(390)],
                    times=school_hour_times(390, first))
    filters = Filters(start=first, end=dt.date(2026, 4, 5))
    viewer = store.viewer("analyst")
    now = dt.datetime(2026, 4, 6, 12, tzinfo=ZONE).timestamp()

    def timed() -> tuple[float, float, int]:
        wall, cpu = time.perf_counter(), time.process_time()
        report = build_report(store.engine, viewer, filters, now=now, default_timezone=TIMEZONE)
        return time.perf_counter() - wall, time.process_time() - cpu, report.overall.tests

    cold = timed()
    warm = min((timed() for _ in range(WARM_RUNS)), key=lambda run: run[0])
    wall, cpu = time.perf_counter(), time.process_time()
    with sqlite3.connect(folder / "comparison.db") as raw:
        ratios: dict[int, list[float]] = {}
        query = "SELECT connection_id, download_bytes_per_second FROM bandwidth_results"
        for line, speed in raw.execute(query):
            ratios.setdefault(line, []).append(speed / 12.5e6)
        medians = [statistics.median(values) for values in ratios.values()]
    floor = (time.perf_counter() - wall, time.process_time() - cpu, len(medians))
    return {"tests": cold[2], "cold_seconds": cold[0], "cold_cpu_seconds": cold[1],
            "warm_seconds": warm[0], "warm_cpu_seconds": warm[1],
            "anchor_seconds": floor[0], "anchor_cpu_seconds": floor[1], "anchor_lines": floor[2]}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 past day")
    parser.add_argument("--days", type=int, help="past days of windows per school (default 3)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench-results" / "report.json")
    args = parser.parse_args()
    days = args.days or (1 if args.quick else 3)
    if days < 1:
        parser.error("--days must be at least 1")
    zone = ZONE
    now = time.time()
    today = dt.datetime.fromtimestamp(now, zone).date()
    first, yesterday = today - dt.timedelta(days=days), today - dt.timedelta(days=1)
    start = dt.datetime.combine(first, dt.time(0), zone).timestamp()
    end = dt.datetime.combine(today, dt.time(0), zone).timestamp()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.db"
        built = build(path, SCHOOLS, first, now)
        floor = anchor(path, start, end)
        cold, cold_cpu, cold_found = all_schools(path, first, yesterday, now)
        warm, warm_cpu, warm_found = min((all_schools(path, first, yesterday, now) for _ in range(WARM_RUNS)),
                                         key=lambda run: run[0])
        with_today, with_today_cpu, _ = min((all_schools(path, first, today, now) for _ in range(WARM_RUNS)),
                                            key=lambda run: run[0])
        late = min(late_query(path, first, yesterday) for _ in range(WARM_RUNS))
        stored = stored_bytes(path)
    with tempfile.TemporaryDirectory() as folder:
        whole = report_section(Path(folder))
    same = cold_found == warm_found
    example = cold_found[0]
    result = {
        "schools": SCHOOLS, "past_days": days, "first_day": first.isoformat(), "today": today.isoformat(),
        "store": built, "anchor_decode_seconds": floor["seconds"], "anchor_cpu_seconds": floor["cpu_seconds"],
        "anchor_windows": floor["windows_decoded"],
        "cold_seconds": cold, "cold_cpu_seconds": cold_cpu,
        "warm_seconds": warm, "warm_cpu_seconds": warm_cpu,
        "warm_with_today_seconds": with_today, "warm_with_today_cpu_seconds": with_today_cpu,
        "late_query_seconds": late,
        "speed_up_warm_over_cold": cold / warm, "speed_up_warm_over_anchor": floor["seconds"] / warm,
        "cold_equals_warm": same, "stored": stored, "report": whole,
        "example_school": {"windows": example.windows, "sent": example.sent, "received": example.received,
                           "days": example.days, "loss_ratio": example.loss_ratio,
                           "latency_seconds": example.latency_seconds},
        "bench_seconds": time.perf_counter() - began,
    }
    print(f"line quality of {SCHOOLS} schools over {days} past days ({first}..{yesterday}); "
          f"{built['windows']:,} windows of {built['mean_payload_bytes'] / 1e3:.1f} kB "
          f"({built['ingested_through_ingest_batch']:,} through ingest_batch, the rest copied)")
    print(f"{'':34} {'wall s':>8} {'cpu s':>8} {'ms/school':>10}")
    for name, seconds, cpu in [("anchor: decode every window", floor["seconds"], floor["cpu_seconds"]),
                               ("cold (compute + store days)", cold, cold_cpu),
                               ("warm (stored days)", warm, warm_cpu),
                               ("warm, period to today", with_today, with_today_cpu)]:
        print(f"{name:34} {seconds:>8.3f} {cpu:>8.3f} {1000 * seconds / SCHOOLS:>10.2f}")
    print(f"{'  of warm: the changed-days count':34} {late:>8.3f} {'':>8} {1000 * late / SCHOOLS:>10.2f}")
    print(f"speed-up: warm {cold / warm:.0f}x faster than cold, {floor['seconds'] / warm:.0f}x faster "
          f"than decoding the windows; cold and warm figures {'agree' if same else 'DIFFER'}")
    print(f"stored: {stored['bytes_per_school_day']:.0f} bytes per school-day of day documents "
          f"({stored['connectivity_bytes_per_school_day']:.0f} of them the connectivity document), "
          f"{stored['rows']} rows")
    print(f"\nthe whole report for an analyst: {SCHOOLS} schools x 91 days, {whole['tests']:,} tests")
    print(f"{'':34} {'wall s':>8} {'cpu s':>8}")
    for name, seconds, cpu in [("anchor: sqlite3 + median per line", whole["anchor_seconds"],
                                whole["anchor_cpu_seconds"]),
                               ("build_report, cold", whole["cold_seconds"], whole["cold_cpu_seconds"]),
                               ("build_report, warm", whole["warm_seconds"], whole["warm_cpu_seconds"])]:
        print(f"{name:34} {seconds:>8.3f} {cpu:>8.3f}")
    print(f"bench ran {result['bench_seconds']:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
