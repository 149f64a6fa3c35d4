"""What judging schools costs the collector, beside the floor of reading the same rows.

Run:  .venv-test/bin/python tests/bench/bench_verdicts.py [--quick] [--json FILE]

A store on SQLite with S schools (100 and 300; --quick: 20), each with one line under a
contract, the default calendar, and 30 days of bandwidth results at 4 tests a school day
and 1 a weekend day (a school's default cadence), is judged the way the collector does:

- ``/metrics``: ``VerdictFamilies.compute`` judges every school by all four rule sets over
  30 days (summaries, rule sets, capacity, availability), the work a scrape does at most
  every SCHOOLNET_VERDICT_REFRESH;
- ``verdicts --json`` for one school (``school_verdicts``), what an ICT coordinator waits for;
- the anchor, measured in the same run: the same rows read with the stdlib's sqlite3 and
  the median per school taken with ``statistics.median`` — the floor any verdict needs
  (read the window, sort it), so the ratio says what the judging itself adds.

Ingest pays for verdicts too: each bandwidth record becomes an attributed result row in the
same transaction. That is measured as the time of ``ingest_batch`` per record, for batches
of 50 bandwidth records, beside the anchor: the same batches with the result rows left out
(``record_results`` switched off), and batches of 50 system records for scale.

It prints a table and writes JSON (default bench-results/verdicts.json); it asserts nothing.
Targets printed beside the figures: /metrics' verdicts for 300 schools within 10 s (judged in
the background every SCHOOLNET_VERDICT_REFRESH, 5 minutes, while scrapes get the previous
ones), one school's verdicts within 0.2 s, and a bandwidth record costing at ingest no more
than twice the same record without its result row.
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
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.records import batch, new_stream, record  # noqa: E402

import collector.ingest  # noqa: E402
from agent.wire import Batch  # noqa: E402
from collector.db.engine import open_engine, writer  # noqa: E402
from collector.db.migrate import upgrade  # noqa: E402
from collector.db.schema import bandwidth_results, connections, contracts  # noqa: E402
from collector.ingest import ingest_batch  # noqa: E402
from collector.registry import (  # noqa: E402
    add_board,
    add_school,
    authenticate_agent,
    create_enrolment_code,
    enroll,
)
from collector.school_verdicts import school_verdicts  # noqa: E402
from collector.verdict_metrics import VerdictFamilies  # noqa: E402

ZONE = ZoneInfo("Europe/Amsterdam")
MBIT = 125_000.0
METRICS_TARGET_SECONDS = 10.0
ONE_SCHOOL_TARGET_SECONDS = 0.2
INGEST_RATIO_TARGET = 2.0


def build_store(path: Path, schools: int, now: float) -> Any:
    engine = open_engine(f"sqlite:///{path}")
    upgrade(engine)
    add_board(engine, "Bench board", "bench")
    rows = []
    today = dt.datetime.fromtimestamp(now, ZONE).date()
    for index in range(schools):
        add_school(engine, "bench", f"School {index}", f"school-{index}")
    with writer(engine) as conn, conn.begin():
        school_pks = [row[0] for row in conn.exec_driver_sql("SELECT id FROM schools ORDER BY id")]
        for pk in school_pks:
            line = conn.execute(connections.insert().values(
                school_id=pk, slug="glas", provider="KPN", provider_id="kpn", technology="fibre",
                role="main", networks=[], created_at=now)).inserted_primary_key[0]
            conn.execute(contracts.insert().values(
                connection_id=line, starts_on="2020-01-01", download_advertised=100 * MBIT,
                upload_advertised=100 * MBIT, download_minimum=50 * MBIT, upload_minimum=50 * MBIT,
                download_normal=80 * MBIT, upload_normal=80 * MBIT, download_maximum=100 * MBIT,
                upload_maximum=100 * MBIT, updated_at=now))
            for back in range(30):
                day = today - dt.timedelta(days=back + 1)
                hours = (9, 11, 13, 14) if day.weekday() < 5 else (12,)
                for n, hour in enumerate(hours):
                    t = dt.datetime.combine(day, dt.time(hour, 10), ZONE).timestamp()
                    speed = (70 + (pk * 7 + back * 3 + n * 11) % 35) * MBIT
                    rows.append({"school_id": pk, "source": "agent", "connection_id": line,
                                 "attribution": "only-connection", "measured_at": t,
                                 "download_bytes_per_second": speed, "upload_bytes_per_second": speed / 2,
                                 "valid": True, "invalid_reasons": [], "backend": "ndt7",
                                 "server": "ndt.example", "concurrent_devices": 100 + n})
        conn.execute(bandwidth_results.insert(), rows)
    return engine, len(rows)


def anchor_seconds(path: Path, since: float, until: float) -> float:
    started = time.perf_counter()
    connection = sqlite3.connect(path)
    by_school: dict[int, list[float]] = {}
    for school, speed in connection.execute(
            "SELECT school_id, download_bytes_per_second FROM bandwidth_results "
            "WHERE measured_at >= ? AND measured_at < ? AND valid ORDER BY school_id, measured_at",
            (since, until)):
        by_school.setdefault(school, []).append(speed)
    for speeds in by_school.values():
        statistics.median(speeds)
    connection.close()
    return time.perf_counter() - started


def best_of(runs: int, work: Any) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def judge(schools: int, runs: int) -> dict[str, Any]:
    now = time.time()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        engine, results = build_store(path, schools, now)
        families = VerdictFamilies(engine, window=30 * 86400, default_timezone="Europe/Amsterdam", ttl=0)
        metrics = best_of(runs, lambda: families.compute(now))
        one = best_of(runs * 3, lambda: school_verdicts(
            engine, "bench/school-0", window=30 * 86400, now=now, all_rule_sets=True))
        anchor = best_of(runs, lambda: anchor_seconds(path, now - 30 * 86400, now))
        engine.dispose()
    return {"schools": schools, "results": results, "metrics_seconds": metrics,
            "one_school_seconds": one, "anchor_seconds": anchor,
            "metrics_over_anchor": metrics / anchor if anchor else None}


def ingest_cost(batches: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        engine = open_engine(f"sqlite:///{Path(folder) / 'ingest.db'}")
        upgrade(engine)
        add_board(engine, "Bench board", "bench")
        add_school(engine, "bench", "School", "school")
        connection_row = {"school_id": 1, "slug": "glas", "provider": "KPN", "provider_id": "kpn",
                          "technology": "fibre", "role": "main", "networks": ["192.0.2.0/24"],
                          "created_at": time.time()}
        with writer(engine) as conn, conn.begin():
            conn.execute(connections.insert().values(**connection_row))
        code = create_enrolment_code(engine, "bench/school", 1, 3600)
        agent = authenticate_agent(engine, enroll(engine, code, "pi", "bench").credential)
        timings: dict[str, float] = {}
        hook = collector.ingest.record_results
        for name, kind, with_results in (("system", "system", True),
                                         ("bandwidth_without_results", "bandwidth", False),
                                         ("bandwidth", "bandwidth", True)):
            collector.ingest.record_results = hook if with_results else _no_results  # type: ignore[assignment]
            stream = new_stream()
            seq = 0
            started = time.perf_counter()
            for _ in range(batches):
                records = []
                for _ in range(50):
                    seq += 1
                    records.append(record(seq, stream, kind))
                ingest_batch(engine, agent, Batch.model_validate(batch(*records)))
            timings[name] = (time.perf_counter() - started) / (batches * 50)
        collector.ingest.record_results = hook
        engine.dispose()
    return {"records": batches * 50, **{f"{name}_seconds_per_record": value
                                        for name, value in timings.items()},
            "bandwidth_over_anchor": timings["bandwidth"] / timings["bandwidth_without_results"]}


def _no_results(*args: Any, **kwargs: Any) -> None:
    """The anchor's ingest: everything but the result rows."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 schools")
    parser.add_argument("--json", type=Path, default=ROOT / "bench-results" / "verdicts.json")
    args = parser.parse_args()
    sizes = (20,) if args.quick else (100, 300)
    runs = 1 if args.quick else 3
    judged = [judge(size, runs) for size in sizes]
    ingest = ingest_cost(4 if args.quick else 40)

    print(f"{'schools':>8} {'results':>8} {'/metrics verdicts':>18} {'one school':>11} "
          f"{'anchor (sqlite3+median)':>24} {'ratio':>7}")
    for row in judged:
        print(f"{row['schools']:>8} {row['results']:>8} {row['metrics_seconds']:>16.3f} s "
              f"{row['one_school_seconds']:>9.3f} s {row['anchor_seconds']:>22.4f} s "
              f"{row['metrics_over_anchor']:>6.0f}x")
    print(f"targets: /metrics verdicts for 300 schools <= {METRICS_TARGET_SECONDS:g} s, one school "
          f"<= {ONE_SCHOOL_TARGET_SECONDS:g} s")
    print(f"\ningest, {ingest['records']} records each, in batches of 50 (ms per record):")
    print(f"  system records                          {ingest['system_seconds_per_record'] * 1e3:.3f}")
    print(f"  bandwidth records without result rows   "
          f"{ingest['bandwidth_without_results_seconds_per_record'] * 1e3:.3f} (anchor)")
    print(f"  bandwidth records with result rows      {ingest['bandwidth_seconds_per_record'] * 1e3:.3f} "
          f"({ingest['bandwidth_over_anchor']:.2f}x the anchor; target <= {INGEST_RATIO_TARGET:g}x)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"judging": judged, "ingest": ingest,
                                     "targets": {"metrics_seconds_300": METRICS_TARGET_SECONDS,
                                                 "one_school_seconds": ONE_SCHOOL_TARGET_SECONDS,
                                                 "ingest_ratio": INGEST_RATIO_TARGET}}, indent=2))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
