"""Connectivity on /metrics: the latest window in full, outage totals kept at ingest, and
availability per school, all through the real ingest path."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
from alembic import command
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import event, text
from support.records import batch, deliver, new_stream, page_samples, record
from support.store import alembic_config, tables_and_indexes
from support.tools import require_tool

from agent.wire import ConnectivityPayload, DnsStats, EchoStats, HopStats, HttpStats, OutagePayload
from collector.availability import read_school_outages
from collector.db.engine import open_engine
from collector.db.migrate import upgrade
from collector.metrics import StoreCollector
from collector.registry import add_board, add_school, create_enrolment_code, enroll

pytestmark = pytest.mark.both_stores

IDENTITY = {"board": "test-board", "school": "test-school", "agent": "pi"}
SCHOOL = {"board": "test-board", "school": "test-school"}
KINDS = ("isp", "lan", "dns", "internet")
SUMMARIES = ("schoolnet_latency_seconds", "schoolnet_dns_lookup_seconds",
             "schoolnet_http_time_to_first_byte_seconds")
HOUR = 3600.0
DAY = 86400.0


def echo(target: str, role: str = "internet", **changes: Any) -> EchoStats:
    values: dict[str, Any] = {
        "target": target, "address": target, "role": role, "method": "icmp", "sent": 120,
        "received": 118, "loss_ratio": 2 / 120, "latency_min_seconds": 0.008,
        "latency_mean_seconds": 0.011, "latency_p50_seconds": 0.010, "latency_p90_seconds": 0.015,
        "latency_p99_seconds": 0.030, "latency_max_seconds": 0.041, "jitter_seconds": 0.002}
    values.update(changes)
    return EchoStats(**values)


def window(**changes: Any) -> ConnectivityPayload:
    """A full window: gateway, two targets, two hops, a resolver and a service."""
    values: dict[str, Any] = {
        "window_seconds": 60.0, "method": "icmp", "up": True, "down_seconds": 0.0,
        "gateway": echo("10.203.0.1", "gateway", latency_min_seconds=0.0004, latency_mean_seconds=0.0011,
                        latency_p50_seconds=0.001, latency_p90_seconds=0.0015,
                        latency_p99_seconds=0.003, latency_max_seconds=0.004),
        "targets": [echo("127.0.0.1"), echo("::1", received=0, loss_ratio=1.0,
                                             latency_min_seconds=None, latency_mean_seconds=None,
                                             latency_p50_seconds=None, latency_p90_seconds=None,
                                             latency_p99_seconds=None, latency_max_seconds=None,
                                             jitter_seconds=None, error="no reply")],
        "hops": [HopStats(ttl=1, address="10.203.0.1", segment="lan", sent=12, received=12,
                          loss_ratio=0.0, latency_p50_seconds=0.001, latency_max_seconds=0.002),
                 HopStats(ttl=2, address=None, segment="access", sent=12, received=0,
                          loss_ratio=1.0)],
        "dns": [DnsStats(server="127.0.0.1:5353", queries=6, answered=5, failure_ratio=1 / 6,
                         latency_p50_seconds=0.004, latency_p90_seconds=0.009,
                         latency_max_seconds=0.012, latency_mean_seconds=0.005)],
        "http": [HttpStats(url="http://127.0.0.1:8080/", requests=2, succeeded=2, failure_ratio=0.0,
                           status=204, connect_p50_seconds=0.0005, ttfb_p50_seconds=0.020,
                           ttfb_p90_seconds=0.025, ttfb_max_seconds=0.031, ttfb_mean_seconds=0.022)],
        "segment": "none", "segment_reason": "",
    }
    values.update(changes)
    return ConnectivityPayload(**values)


def connectivity(seq: int, stream: str, start: float, payload: ConnectivityPayload | None = None,
                 ) -> dict[str, Any]:
    rec = record(seq, stream, "connectivity", payload=(payload or window()).model_dump(mode="json"))
    rec["clock"]["wall_time_seconds"] = start  # a window's clock is its start
    return rec


def outage(seq: int, stream: str, kind: str, start: float, end: float) -> dict[str, Any]:
    payload = OutagePayload(outage_kind=kind, start_seconds=start, end_seconds=end,  # type: ignore[arg-type]
                            duration_seconds=end - start, detail="no internet target answered")
    rec = record(seq, stream, "outage", payload=payload.model_dump(mode="json"))
    rec["clock"]["wall_time_seconds"] = end  # an outage is sent when it ended
    return rec



def values(site, now: float | None = None) -> Any:  # type: ignore[no-untyped-def]
    registry = CollectorRegistry()
    clock = (lambda: now) if now is not None else time.time
    registry.register(StoreCollector(site.engine, 3600, clock))
    return registry.get_sample_value


def test_the_latest_window_in_full(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    older = connectivity(1, stream, now - 180, window(segment="beyond"))
    latest = connectivity(2, stream, now - 60)
    assert deliver(site, latest, older) == ["accepted", "accepted"]  # in any order
    value = values(site)
    assert value("schoolnet_connectivity_up", IDENTITY) == 1
    assert value("schoolnet_connectivity_window_down_seconds", IDENTITY) == 0
    assert value("schoolnet_connectivity_info", {**IDENTITY, "method": "icmp", "segment": "none"}) == 1
    assert value("schoolnet_connectivity_info", {**IDENTITY, "method": "icmp", "segment": "beyond"}) is None
    for kind in KINDS:
        assert value("schoolnet_connectivity_outage_active", {**IDENTITY, "kind": kind}) is None
    gateway = {**IDENTITY, "target": "10.203.0.1", "role": "gateway"}
    internet = {**IDENTITY, "target": "127.0.0.1", "role": "internet"}
    for quantile, expected in (("0", 0.008), ("0.5", 0.010), ("0.9", 0.015), ("0.99", 0.030),
                               ("1", 0.041)):
        assert value("schoolnet_latency_seconds", {**internet, "quantile": quantile}) == expected
    assert value("schoolnet_latency_seconds", {**gateway, "quantile": "0.5"}) == 0.001
    # The window's own sum and count: replies received, and mean x replies.
    assert value("schoolnet_latency_seconds_count", internet) == 118
    assert value("schoolnet_latency_seconds_sum", internet) == 0.011 * 118
    assert value("schoolnet_latency_seconds_count", gateway) == 118
    assert value("schoolnet_latency_seconds_sum", gateway) == 0.0011 * 118
    assert value("schoolnet_packet_loss_ratio", internet) == 2 / 120
    assert value("schoolnet_packet_loss_probes", internet) == 120
    assert value("schoolnet_jitter_seconds", internet) == 0.002
    # A target that never answered: all lost, and no made-up round trip.
    silent = {**IDENTITY, "target": "::1", "role": "internet"}
    assert value("schoolnet_packet_loss_ratio", silent) == 1.0
    assert value("schoolnet_packet_loss_probes", silent) == 120
    assert value("schoolnet_latency_seconds", {**silent, "quantile": "0.5"}) is None
    assert value("schoolnet_latency_seconds_count", silent) == 0  # no reply: an empty sum
    assert value("schoolnet_latency_seconds_sum", silent) == 0
    assert value("schoolnet_jitter_seconds", silent) is None
    first_hop = {**IDENTITY, "ttl": "1", "address": "10.203.0.1", "segment": "lan"}
    assert value("schoolnet_hop_latency_seconds", first_hop) == 0.001
    assert value("schoolnet_hop_loss_ratio", first_hop) == 0.0
    no_answer = {**IDENTITY, "ttl": "2", "address": "", "segment": "access"}
    assert value("schoolnet_hop_loss_ratio", no_answer) == 1.0
    assert value("schoolnet_hop_latency_seconds", no_answer) is None
    resolver = {**IDENTITY, "server": "127.0.0.1:5353"}
    for quantile, expected in (("0.5", 0.004), ("0.9", 0.009), ("1", 0.012)):
        assert value("schoolnet_dns_lookup_seconds", {**resolver, "quantile": quantile}) == expected
    assert value("schoolnet_dns_failure_ratio", resolver) == 1 / 6
    assert value("schoolnet_dns_lookup_seconds_count", resolver) == 5
    assert value("schoolnet_dns_lookup_seconds_sum", resolver) == 0.005 * 5
    service = {**IDENTITY, "url": "http://127.0.0.1:8080/"}
    for quantile, expected in (("0.5", 0.020), ("0.9", 0.025), ("1", 0.031)):
        assert value("schoolnet_http_time_to_first_byte_seconds",
                     {**service, "quantile": quantile}) == expected
    assert value("schoolnet_http_connect_seconds", service) == 0.0005
    assert value("schoolnet_http_time_to_first_byte_seconds_count", service) == 2
    assert value("schoolnet_http_time_to_first_byte_seconds_sum", service) == 0.022 * 2
    assert value("schoolnet_http_failure_ratio", service) == 0.0
    assert value("schoolnet_http_status_code", service) == 204
    # Sending connectivity data puts every outage kind on the page, at zero.
    for kind in KINDS:
        assert value("schoolnet_connectivity_outages_total", {**IDENTITY, "kind": kind}) == 0
        assert value("schoolnet_connectivity_outage_seconds_total", {**IDENTITY, "kind": kind}) == 0
    assert value("schoolnet_probe_runs_total", {**IDENTITY, "probe": "connectivity"}) == 2


def test_an_outage_under_way_and_a_target_named_twice(site) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    down = window(up=False, down_seconds=40.0, outage_kind="isp", outage_start_seconds=now - 100,
                  segment="access", method="tcp",
                  targets=[echo("127.0.0.1", latency_p50_seconds=0.5, latency_p99_seconds=None),
                           echo("127.0.0.1", latency_p50_seconds=0.9, received=60,
                                latency_mean_seconds=0.7)])
    deliver(site, connectivity(1, new_stream(), now - 60, down))
    value = values(site)
    assert value("schoolnet_connectivity_up", IDENTITY) == 0
    assert value("schoolnet_connectivity_outage_active", {**IDENTITY, "kind": "isp"}) == 1
    assert value("schoolnet_connectivity_outage_active", {**IDENTITY, "kind": "lan"}) is None
    assert value("schoolnet_connectivity_window_down_seconds", IDENTITY) == 40
    assert value("schoolnet_connectivity_info", {**IDENTITY, "method": "tcp", "segment": "access"}) == 1
    # The first of the two counts, all of it (the second fills no gap of the first); the
    # page holds each series once (promtool checks below).
    internet = {**IDENTITY, "target": "127.0.0.1", "role": "internet"}
    assert value("schoolnet_latency_seconds", {**internet, "quantile": "0.5"}) == 0.5
    assert value("schoolnet_latency_seconds", {**internet, "quantile": "0.99"}) is None
    assert value("schoolnet_latency_seconds_count", internet) == 118
    assert value("schoolnet_latency_seconds_sum", internet) == 0.011 * 118
    # It has not ended yet: not in the totals, but in the school's availability.
    assert value("schoolnet_connectivity_outages_total", {**IDENTITY, "kind": "isp"}) == 0
    assert value("schoolnet_connectivity_availability_ratio",
                 {**SCHOOL, "window": "1d", "outages": "isp"}) < 1


def test_outage_totals_count_every_stored_outage_once(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    first = [outage(1, stream, "isp", now - 900, now - 600),
             outage(2, stream, "isp", now - 500, now - 440),
             outage(3, stream, "lan", now - 400, now - 390),
             connectivity(4, stream, now - 60)]
    assert deliver(site, *first) == ["accepted"] * 4
    # The same batch again (the agent never heard the answer), and a record twice in one.
    assert deliver(site, *first) == ["duplicate"] * 4
    again = outage(5, stream, "dns", now - 300, now - 290)
    assert deliver(site, again, again) == ["accepted", "duplicate"]
    # Delivered late after a long outage, with its original (old) clock: it counts.
    assert deliver(site, outage(6, stream, "isp", now - 3 * DAY, now - 3 * DAY + 7200)) == ["accepted"]
    value = values(site)
    expected = {"isp": (3, 300 + 60 + 7200), "lan": (1, 10), "dns": (1, 10), "internet": (0, 0)}
    for kind, (count, seconds) in expected.items():
        labels = {**IDENTITY, "kind": kind}
        assert value("schoolnet_connectivity_outages_total", labels) == count, kind
        assert value("schoolnet_connectivity_outage_seconds_total", labels) == seconds, kind
    assert site.sql("SELECT count(*) FROM connectivity_outage_totals") == [(3,)]


def test_a_bogus_duration_saturates_instead_of_overflowing(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    bogus = [outage(seq, stream, "isp", now - 100, now - 50) for seq in (1, 2, 3)]
    for rec in bogus:
        rec["payload"]["duration_seconds"] = 1e308  # finite, but two of them are not
    assert deliver(site, bogus[0], bogus[1]) == ["accepted"] * 2
    assert deliver(site, bogus[2]) == ["accepted"]
    value = values(site)
    assert value("schoolnet_connectivity_outage_seconds_total", {**IDENTITY, "kind": "isp"}) == 1e18
    assert value("schoolnet_connectivity_outages_total", {**IDENTITY, "kind": "isp"}) == 3


def test_outages_are_events_not_probes(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    deliver(site, connectivity(1, stream, now - 60), outage(2, stream, "lan", now - 200, now - 100))
    value = values(site)
    for name in ("schoolnet_probe_runs_total", "schoolnet_probe_failures_total",
                 "schoolnet_probe_success", "schoolnet_probe_last_run_timestamp_seconds",
                 "schoolnet_probe_last_success_timestamp_seconds"):
        assert value(name, {**IDENTITY, "probe": "outage"}) is None, name
        assert value(name, {**IDENTITY, "probe": "connectivity"}) is not None, name
    assert 'probe="outage"' not in site.metrics().text
    # A batch of events alone: still no latest row for them, and the agent's probes keep theirs.
    deliver(site, outage(3, stream, "isp", now - 50, now - 40))
    assert site.sql("SELECT kind, runs_total FROM latest ORDER BY kind") == [("connectivity", 1)]
    # Stored like every record all the same, with its original time (the outage's end).
    assert site.sql("SELECT kind, measured_at FROM records WHERE kind = 'outage' ORDER BY seq") == [
        ("outage", now - 100), ("outage", now - 40)]
    assert values(site)("schoolnet_connectivity_outages_total", {**IDENTITY, "kind": "isp"}) == 1


def test_a_mac_shaped_value_rejects_a_window_or_an_outage(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    leaky = connectivity(1, stream, now - 60, window(targets=[echo("00:1a:2b:3c:4d:5e")]))
    leaky_outage = outage(2, stream, "lan", now - 200, now - 100)
    leaky_outage["payload"]["detail"] = "the laptop 00-1a-2b-3c-4d-5e lost its link"
    answer = site.client.post("/api/v1/ingest", json=batch(leaky, leaky_outage), headers=site.auth)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected"]
    assert "MAC-shaped" in results[0]["reason"] and "targets[0].target" in results[0]["reason"]
    assert "payload.detail" in results[1]["reason"]
    assert site.sql("SELECT count(*) FROM records") == [(0,)]
    value = values(site)
    assert value("schoolnet_connectivity_outages_total", {**IDENTITY, "kind": "lan"}) is None
    assert value("schoolnet_connectivity_up", IDENTITY) is None
    assert "00:1a" not in site.metrics().text


def test_availability_of_a_school_over_its_agents(site) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    second = site.enroll("pi-2")
    add_school(site.engine, "test-board", "Other School")
    other = site.enroll("pi-3", "test-board/other-school")  # reports, but no connectivity
    # Observed time starts no earlier than an agent's enrolment: these enrolled long ago.
    with site.engine.begin() as conn:
        conn.execute(text("UPDATE agents SET created_at = :at"), {"at": now - 60 * DAY})
    a, b = new_stream(), new_stream()
    # pi has observed for 2 days (a window delivered late after the others: it still moves
    # the first window back), pi-2 for 10 days.
    assert deliver(site, connectivity(2, a, now - 60),
                   outage(3, a, "isp", now - 3 * HOUR, now - 2 * HOUR)) == ["accepted"] * 2
    assert deliver(site, connectivity(1, a, now - 2 * DAY)) == ["accepted"]
    assert deliver(site, connectivity(1, b, now - 10 * DAY),
                   # Overlaps pi's: together the school was down 3 h .. 1 h ago (2 h).
                   outage(2, b, "lan", now - 2.5 * HOUR, now - 1 * HOUR),
                   # Ended 5 days ago, delivered only now: in 7d and 30d, not in 1d.
                   outage(3, b, "isp", now - 5 * DAY - HOUR, now - 5 * DAY),
                   # Ended 40 days ago: before every window (and before pi-2's first window).
                   outage(4, b, "isp", now - 40 * DAY - HOUR, now - 40 * DAY),
                   credential=second) == ["accepted"] * 4
    deliver(site, record(1, new_stream()), credential=other)
    value = values(site, now)

    def ratio(window_name: str, outages: str) -> float:
        found = value("schoolnet_connectivity_availability_ratio",
                      {**SCHOOL, "window": window_name, "outages": outages})
        assert found is not None, (window_name, outages)
        return float(found)

    assert abs(ratio("1d", "all") - (1 - 2 * HOUR / DAY)) < 1e-9
    assert abs(ratio("1d", "isp") - (1 - 1 * HOUR / DAY)) < 1e-9
    assert abs(ratio("7d", "all") - (1 - 3 * HOUR / (7 * DAY))) < 1e-9
    assert abs(ratio("7d", "isp") - (1 - 2 * HOUR / (7 * DAY))) < 1e-9
    assert abs(ratio("30d", "all") - (1 - 3 * HOUR / (10 * DAY))) < 1e-9  # observed: 10 days
    assert abs(ratio("30d", "isp") - (1 - 2 * HOUR / (10 * DAY))) < 1e-9
    # No agent label, and nothing for a school without connectivity data.
    assert value("schoolnet_connectivity_availability_ratio",
                 {**SCHOOL, "agent": "pi", "window": "1d", "outages": "all"}) is None
    assert value("schoolnet_connectivity_availability_ratio",
                 {"board": "test-board", "school": "other-school", "window": "1d",
                  "outages": "all"}) is None
    assert site.sql("SELECT agent_id, first_window_at FROM connectivity_first_windows "
                    "ORDER BY agent_id") == [(1, now - 2 * DAY), (2, now - 10 * DAY)]

    # An outage under way at pi's latest window's end (from 30 min ago) counts too, once:
    # pi-2 reports the same outage as ended 10 min ago.
    down = window(up=False, down_seconds=60.0, outage_kind="isp",
                  outage_start_seconds=now - 30 * 60)
    deliver(site, connectivity(4, a, now - 60, down))
    deliver(site, outage(5, b, "isp", now - 25 * 60, now - 10 * 60), credential=second)
    value = values(site, now)
    assert abs(ratio("1d", "isp") - (1 - 1.5 * HOUR / DAY)) < 1e-9


def test_the_outage_query_reads_only_recent_outages_through_its_index(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    deliver(site, *[connectivity(seq, stream, now - seq * 60) for seq in range(1, 50)],
            outage(50, stream, "isp", now - 100, now - 50))
    statements: list[tuple[str, Any]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    event.listen(site.engine, "before_cursor_execute", keep)
    try:
        with site.engine.connect() as conn:
            histories = read_school_outages(conn, now)
    finally:
        event.remove(site.engine, "before_cursor_execute", keep)
    assert len(histories[("test-board", "test-school")].outages) == 1
    [(sql, parameters)] = [(s, p) for s, p in statements if "'outage'" in s]
    if site.engine.dialect.name == "sqlite":
        plan = " ".join(str(row[-1]) for row in site.sql(f"EXPLAIN QUERY PLAN {sql}", *parameters))
    else:
        with site.engine.connect() as conn:
            # A few rows make a sequential scan cheapest; the question is whether the
            # index can serve the query at all (at scale: tests/bench, docs).
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}", parameters))
    assert "ix_records_outage_end" in plan, plan


def test_the_page_with_connectivity_is_lint_clean_and_the_same_from_both_writers(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    deliver(site, connectivity(1, stream, now - 120),
            connectivity(2, stream, now - 60, window(
                up=False, down_seconds=30.0, outage_kind="lan", outage_start_seconds=now - 30,
                targets=[echo("127.0.0.1"), echo("127.0.0.1")])),
            outage(3, stream, "isp", now - 900, now - 800),
            record(4, stream, "connectivity", ok=False, error="no echo method works", payload={}))
    site.enroll("pi-2")  # an agent without connectivity data: none of its series
    metrics = site.client.app.state.metrics
    # Availability moves with the clock (observed time grows): both writers see one instant.
    metrics.store.clock = lambda: now

    fast = page_samples(metrics.render().decode())
    assert fast == page_samples(generate_latest(metrics.registry).decode())
    assert fast[("schoolnet_connectivity_outages_total",
                 tuple(sorted({**IDENTITY, "kind": "isp"}.items())))] == 1
    assert not any(dict(labels).get("agent") == "pi-2" and name.startswith("schoolnet_connectivity")
                   for name, labels in fast)

    # Each summary's samples of one label set stay together: quantiles, _sum, _count.
    text = site.metrics().text
    internet = 'board="test-board",school="test-school",agent="pi",target="127.0.0.1",role="internet"'
    assert "\n".join([
        f'schoolnet_latency_seconds{{{internet},quantile="0.99"}} 0.03',
        f'schoolnet_latency_seconds{{{internet},quantile="1"}} 0.041',
        f"schoolnet_latency_seconds_sum{{{internet}}} {0.011 * 118!r}",
        f"schoolnet_latency_seconds_count{{{internet}}} 118"]) in text
    for name in SUMMARIES:
        assert f"# TYPE {name} summary" in text
        assert f"{name}_count{{" in text and f"{name}_sum{{" in text

    promtool = require_tool("promtool")
    assert "# TYPE schoolnet_connectivity_outage_seconds_total counter" in text
    assert "schoolnet_connectivity_availability_ratio{" in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def _store_at(url: str, revision: str) -> Any:
    engine = open_engine(url)
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), revision)
        connection.commit()
    return engine




def test_an_upgraded_store_starts_from_the_outages_it_holds_and_downgrades(empty_store_url: str) -> None:
    engine = _store_at(empty_store_url, "0002")  # the store as the previous release left it
    add_board(engine, "Test Board")
    add_school(engine, "test-board", "Test School")
    for name in ("pi", "pi-2"):
        enroll(engine, create_enrolment_code(engine, "test-school", 1, 60), name, "0.1.0")
    stream = new_stream()
    now = time.time()
    rows = [(1, outage(1, stream, "isp", now - 900, now - 600)),
            (1, outage(2, stream, "isp", now - 500, now - 440)),
            (1, outage(3, stream, "dns", now - 400, now - 390)),
            (1, connectivity(4, stream, now - 120)),
            (1, connectivity(5, stream, now - 3 * DAY)),
            (1, record(6, stream, "connectivity", ok=False, error="no echo method works", payload={})),
            (2, outage(1, stream, "lan", now - 50, now - 20)),
            (2, record(2, stream))]
    rows[6][1]["payload"]["duration_seconds"] = "30"  # as lax validation let it through
    with engine.begin() as connection:
        for agent_id, row in rows:
            connection.execute(text(
                "INSERT INTO records (agent_id, stream_id, seq, kind, ok, error, measured_at, "
                "boot_id, since_boot_seconds, received_at, payload) "
                "VALUES (:agent, :stream, :seq, :kind, :ok, :error, :at, 'b', 0, 0, :payload)"),
                {"agent": agent_id, "stream": row["stream_id"], "seq": row["seq"], "kind": row["kind"],
                 "ok": row["ok"], "error": row["error"],
                 "at": row["clock"]["wall_time_seconds"] - (3 * DAY + 1 if not row["ok"] else 0),
                 "payload": json.dumps(row["payload"])})
    upgrade(engine)
    with engine.connect() as connection:
        totals = connection.exec_driver_sql(
            "SELECT * FROM connectivity_outage_totals ORDER BY agent_id, outage_kind").all()
        firsts = connection.exec_driver_sql(
            "SELECT * FROM connectivity_first_windows ORDER BY agent_id").all()
    # agent, kind, outages, seconds; the failed window (older still) is no observation.
    assert totals == [(1, "dns", 1, 10.0), (1, "isp", 2, 360.0), (2, "lan", 1, 30.0)]
    assert firsts == [(1, now - 3 * DAY)]

    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), "0002")
        connection.commit()
        tables = tables_and_indexes(connection)
        kept = connection.exec_driver_sql("SELECT count(*) FROM records").scalar()
    assert not {"connectivity_outage_totals", "connectivity_first_windows",
                "ix_records_outage_end"} & tables
    assert {"bandwidth_totals", "ix_records_agent_kind_time"} <= tables
    assert kept == len(rows)
    upgrade(engine)  # and up again, from the same records
    with engine.connect() as connection:
        again = connection.exec_driver_sql(
            "SELECT * FROM connectivity_outage_totals ORDER BY agent_id, outage_kind").all()
    engine.dispose()
    assert again == totals
