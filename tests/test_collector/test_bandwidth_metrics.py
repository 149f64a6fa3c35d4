"""Bandwidth on /metrics: the latest test in full, and test totals kept at ingest."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import text
from support.records import deliver, new_stream, page_samples, record
from support.tools import require_tool

from agent.wire import INT64_MAX
from collector.db.engine import open_engine
from collector.db.migrate import MIGRATIONS, upgrade
from collector.metrics import StoreCollector
from collector.registry import add_board, add_school, create_enrolment_code, enroll

pytestmark = pytest.mark.both_stores

IDENTITY = {"board": "test-board", "school": "test-school", "agent": "pi"}
DOWN = {**IDENTITY, "direction": "download"}
UP = {**IDENTITY, "direction": "upload"}


def full_payload(**changes: Any) -> dict[str, Any]:
    """A multi-stream test with everything the agent can say about it."""
    payload: dict[str, Any] = {
        "backend": "http", "server": "https://speed.example/", "streams": 4,
        "download_bytes_per_second": 45_000_000.0, "download_bytes": 600_000_000,
        "download_seconds": 12.5, "download_window_seconds": 8.0, "download_streams": 4,
        "download_loaded_latency_seconds": 0.048, "download_retransmits": 120,
        "upload_bytes_per_second": 9_000_000.0, "upload_bytes": 110_000_000,
        "upload_seconds": 11.0, "upload_window_seconds": 7.5, "upload_streams": 2,
        "upload_loaded_latency_seconds": 0.210, "upload_retransmits": 7,
        "idle_latency_seconds": 0.011, "interface": "eth0", "interface_wireless": False,
        "interface_speed_bytes_per_second": 125_000_000, "cpu_usage_ratio": 0.3,
        "agent_cpu_seconds": 2.5, "download_cross_traffic_bytes": 1_500_000,
        "upload_cross_traffic_bytes": 250_000,
        "contract_download_bytes_per_second": 50_000_000.0,
        "contract_upload_bytes_per_second": 6_250_000.0,
        "retest_server": "https://other.example/", "retest_download_bytes_per_second": 44_000_000.0,
        "retest_upload_bytes_per_second": 8_800_000.0,
        "invalid_reasons": [], "leased": True, "concurrent_devices": 140,
    }
    payload.update(changes)
    return payload


def bandwidth(seq: int, stream: str, ok: bool = True, **payload: Any) -> dict[str, Any]:
    if not ok:
        return record(seq, stream, "bandwidth", ok=False, error="the test server stopped answering",
                      payload=payload)
    return record(seq, stream, "bandwidth", payload=full_payload(**payload))



def values(site) -> Any:  # type: ignore[no-untyped-def]
    registry = CollectorRegistry()
    registry.register(StoreCollector(site.engine, 3600))
    return registry.get_sample_value


def test_the_latest_test_in_full(site) -> None:  # type: ignore[no-untyped-def]
    assert deliver(site, bandwidth(1, new_stream())) == ["accepted"]
    value = values(site)
    assert value("schoolnet_bandwidth_download_loaded_latency_seconds", IDENTITY) == 0.048
    assert value("schoolnet_bandwidth_upload_loaded_latency_seconds", IDENTITY) == 0.210
    assert value("schoolnet_bandwidth_streams", DOWN) == 4
    assert value("schoolnet_bandwidth_streams", UP) == 2
    assert value("schoolnet_bandwidth_retransmits", DOWN) == 120
    assert value("schoolnet_bandwidth_retransmits", UP) == 7
    assert value("schoolnet_bandwidth_cross_traffic_bytes", DOWN) == 1_500_000
    assert value("schoolnet_bandwidth_cross_traffic_bytes", UP) == 250_000
    assert value("schoolnet_agent_contract_download_bytes_per_second", IDENTITY) == 50_000_000
    assert value("schoolnet_agent_contract_upload_bytes_per_second", IDENTITY) == 6_250_000
    assert value("schoolnet_bandwidth_download_ratio", IDENTITY) == 0.9
    assert value("schoolnet_bandwidth_upload_ratio", IDENTITY) == 1.44  # above the contract
    assert value("schoolnet_bandwidth_valid", IDENTITY) == 1
    assert value("schoolnet_bandwidth_leased", IDENTITY) == 1
    assert value("schoolnet_bandwidth_retest_download_bytes_per_second", IDENTITY) == 44_000_000
    assert value("schoolnet_bandwidth_retest_upload_bytes_per_second", IDENTITY) == 8_800_000
    assert value("schoolnet_bandwidth_retest_info",
                 {**IDENTITY, "server": "https://other.example/", "ok": "true"}) == 1
    assert value("schoolnet_bandwidth_test_info", {
        **IDENTITY, "backend": "http", "server": "https://speed.example/", "valid": "true"}) == 1
    assert value("schoolnet_bandwidth_test_bytes_total", DOWN) == 600_000_000
    assert value("schoolnet_bandwidth_test_bytes_total", UP) == 110_000_000
    assert value("schoolnet_bandwidth_tests_total", {**IDENTITY, "result": "valid"}) == 1
    assert value("schoolnet_bandwidth_tests_total", {**IDENTITY, "result": "invalid"}) == 0


def test_what_a_test_did_not_say_is_absent_not_made_up(site) -> None:  # type: ignore[no-untyped-def]
    sparse = record(1, new_stream(), "bandwidth")  # a single-stream agent of before
    sparse["payload"]["leased"] = False  # it could not reach the collector for its turn
    sparse["payload"]["invalid_reasons"] = ["the agent tested over Wi-Fi"]
    deliver(site, sparse)
    value = values(site)
    for name in ("schoolnet_bandwidth_download_ratio", "schoolnet_agent_contract_download_bytes_per_second",
                 "schoolnet_bandwidth_download_loaded_latency_seconds",
                 "schoolnet_bandwidth_retest_download_bytes_per_second"):
        assert value(name, IDENTITY) is None, name
    for name in ("schoolnet_bandwidth_streams", "schoolnet_bandwidth_retransmits",
                 "schoolnet_bandwidth_cross_traffic_bytes"):
        assert value(name, DOWN) is None, name
    page = site.metrics().text
    assert "schoolnet_bandwidth_retest_info{" not in page
    assert value("schoolnet_bandwidth_valid", IDENTITY) == 0
    assert value("schoolnet_bandwidth_leased", IDENTITY) == 0
    assert value("schoolnet_bandwidth_download_bytes_per_second", IDENTITY) == 11_000_000
    assert value("schoolnet_bandwidth_tests_total", {**IDENTITY, "result": "invalid"}) == 1
    assert value("schoolnet_bandwidth_test_bytes_total", DOWN) == 0


def test_a_direction_that_failed_has_no_ratio_and_a_failed_retest_says_so(site) -> None:  # type: ignore[no-untyped-def]
    deliver(site, bandwidth(1, new_stream(), upload_bytes_per_second=None,
                            upload_error="the server refused the upload", upload_streams=None,
                            upload_retransmits=None, upload_loaded_latency_seconds=None,
                            retest_server=None, retest_download_bytes_per_second=None,
                            retest_upload_bytes_per_second=None,
                            retest_error="no second server answered"))
    value = values(site)
    assert value("schoolnet_bandwidth_download_ratio", IDENTITY) == 0.9
    assert value("schoolnet_bandwidth_upload_ratio", IDENTITY) is None
    assert value("schoolnet_bandwidth_streams", UP) is None
    assert value("schoolnet_bandwidth_retest_info", {**IDENTITY, "server": "", "ok": "false"}) == 1


def test_totals_count_every_stored_test_once(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    first = [
        bandwidth(1, stream),
        bandwidth(2, stream, invalid_reasons=["the agent's CPU was the limit"]),
        # Failed, but it says what it moved before it failed: that traffic counts.
        bandwidth(3, stream, ok=False, **full_payload(upload_bytes_per_second=None,
                                                      upload_error="stalled", upload_bytes=5_000)),
        bandwidth(4, stream, ok=False),  # failed without a payload
        record(5, stream),  # another kind: not a bandwidth test
        record(7, stream, "bandwidth", ok=False, payload={},
               error="skipped: the daily test-traffic budget of 5.0 GB is used (5.01 GB moved)"),
    ]
    assert deliver(site, *first) == ["accepted"] * 6
    # The same batch again (the agent never heard the answer), and a record twice in one.
    assert deliver(site, *first) == ["duplicate"] * 6
    assert deliver(site, bandwidth(6, stream), bandwidth(6, stream)) == ["accepted", "duplicate"]
    value = values(site)
    assert value("schoolnet_bandwidth_test_bytes_total", DOWN) == 4 * 600_000_000
    assert value("schoolnet_bandwidth_test_bytes_total", UP) == 3 * 110_000_000 + 5_000
    for result, count in (("valid", 2), ("invalid", 1), ("failed", 2), ("skipped", 1)):
        assert value("schoolnet_bandwidth_tests_total", {**IDENTITY, "result": result}) == count
    assert site.sql("SELECT count(*) FROM bandwidth_totals") == [(1,)]


def test_a_bogus_byte_count_saturates_instead_of_failing_the_batch(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    huge = INT64_MAX - 10
    assert deliver(site, bandwidth(1, stream, download_bytes=huge),
                   bandwidth(2, stream, download_bytes=huge)) == ["accepted", "accepted"]
    assert deliver(site, bandwidth(3, stream, download_bytes=huge)) == ["accepted"]
    value = values(site)
    assert value("schoolnet_bandwidth_test_bytes_total", DOWN) == INT64_MAX
    assert value("schoolnet_bandwidth_tests_total", {**IDENTITY, "result": "valid"}) == 3


def test_the_page_with_bandwidth_is_lint_clean_and_the_same_from_both_writers(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    deliver(site, bandwidth(1, stream), bandwidth(2, stream, ok=False), record(3, stream))
    site.enroll("pi-2")  # an agent that never tested: no totals, no bandwidth series
    metrics = site.client.app.state.metrics

    fast = page_samples(metrics.render().decode())
    assert fast == page_samples(generate_latest(metrics.registry).decode())
    assert fast[("schoolnet_bandwidth_tests_total", tuple(sorted(
        {**IDENTITY, "result": "failed"}.items())))] == 1

    promtool = require_tool("promtool")
    text = site.metrics().text
    assert "schoolnet_bandwidth_test_bytes_total{" in text
    assert "# TYPE schoolnet_bandwidth_tests_total counter" in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_an_upgraded_store_starts_its_totals_from_the_tests_it_holds(empty_store_url: str) -> None:
    engine = open_engine(empty_store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")  # the store as the previous release left it
        connection.commit()
    add_board(engine, "Test Board")
    add_school(engine, "test-board", "Test School")
    enroll(engine, create_enrolment_code(engine, "test-school", 1, 60), "pi", "0.1.0")
    stream = new_stream()
    rows = [bandwidth(1, stream, download_bytes=1000, upload_bytes=10),
            bandwidth(2, stream, download_bytes="2000", invalid_reasons=["wifi"]),
            bandwidth(3, stream, ok=False), record(4, stream),
            record(5, stream, "bandwidth", ok=False, payload={}, error="skipped: the school is busy")]
    with engine.begin() as connection:
        for row in rows:
            connection.execute(text(
                "INSERT INTO records (agent_id, stream_id, seq, kind, ok, error, measured_at, "
                "boot_id, since_boot_seconds, received_at, payload) "
                "VALUES (1, :stream, :seq, :kind, :ok, :error, 0, 'b', 0, 0, :payload)"),
                {"stream": row["stream_id"], "seq": row["seq"], "kind": row["kind"], "ok": row["ok"],
                 "error": row["error"], "payload": json.dumps(row["payload"])})
    upgrade(engine)
    with engine.connect() as connection:
        totals = connection.exec_driver_sql("SELECT * FROM bandwidth_totals").all()
    engine.dispose()
    # agent, download, upload, valid, invalid, failed, skipped
    assert totals == [(1, 3000, 10 + 110_000_000, 1, 1, 1, 1)]
