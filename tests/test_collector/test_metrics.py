"""/metrics: built from the store at each scrape, with identity labels, lint-clean."""

from __future__ import annotations

import gzip
import json
import subprocess

import pytest
from prometheus_client import CollectorRegistry
from support.records import batch, new_stream, record
from support.tools import require_tool

from collector.metrics import StoreCollector

pytestmark = pytest.mark.both_stores


def deliver(site, *records, given_up=None):  # type: ignore[no-untyped-def]
    body = gzip.compress(json.dumps(batch(*records, given_up=given_up)).encode())
    answer = site.client.post("/api/v1/ingest", content=body,
                              headers={**site.auth, "Content-Encoding": "gzip"})
    assert answer.status_code == 200


def registry_for(site, expiry: float = 3600, clock=None) -> CollectorRegistry:  # type: ignore[no-untyped-def]
    registry = CollectorRegistry()
    if clock is None:
        registry.register(StoreCollector(site.engine, expiry))
    else:
        registry.register(StoreCollector(site.engine, expiry, clock))
    return registry


IDENTITY = {"board": "test-board", "school": "test-school", "agent": "pi"}


def test_latest_values_with_identity_labels(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    old = record(1, stream, "bandwidth")
    old["clock"]["wall_time_seconds"] -= 3600
    new = record(2, stream, "bandwidth")
    new["payload"]["download_bytes_per_second"] = 12_345_678.0
    failed = record(3, stream, "bandwidth", ok=False, error="server unreachable", payload={})
    failed["clock"]["wall_time_seconds"] -= 7200  # delivered late, older than the rest
    deliver(site, new, old, failed, record(4, stream))
    registry = registry_for(site)
    value = registry.get_sample_value
    assert value("schoolnet_bandwidth_download_bytes_per_second", IDENTITY) == 12_345_678.0
    assert value("schoolnet_probe_runs_total", {**IDENTITY, "probe": "bandwidth"}) == 3
    assert value("schoolnet_probe_failures_total", {**IDENTITY, "probe": "bandwidth"}) == 1
    assert value("schoolnet_system_temperature_celsius", IDENTITY) == 51.5
    assert value("schoolnet_system_uplink_speed_bytes_per_second", IDENTITY) == 125_000_000
    assert value("schoolnet_agent_outbox_records", IDENTITY) == 7
    assert value("schoolnet_agent_info", {**IDENTITY, "version": "0.1.0"}) == 1
    assert value("schoolnet_bandwidth_test_info", {
        **IDENTITY, "backend": "http", "server": "https://collector.example", "valid": "true"}) == 1
    assert value("schoolnet_agent_last_report_timestamp_seconds", IDENTITY) > 0


def test_silent_agents_drop_out_after_the_expiry(site) -> None:  # type: ignore[no-untyped-def]
    import time

    deliver(site, record(1, new_stream()))
    assert registry_for(site).get_sample_value("schoolnet_agent_info", {**IDENTITY, "version": "0.1.0"}) == 1
    later = registry_for(site, expiry=3600, clock=lambda: time.time() + 3601)
    assert later.get_sample_value("schoolnet_agent_info", {**IDENTITY, "version": "0.1.0"}) is None
    assert later.get_sample_value("schoolnet_system_cpu_usage_ratio", IDENTITY) is None


def test_promtool_finds_nothing_to_lint(site) -> None:  # type: ignore[no-untyped-def]
    promtool = require_tool("promtool")
    stream = new_stream()
    deliver(site, record(1, stream), record(2, stream, "bandwidth"),
            record(3, stream, "bandwidth", ok=False, error="stalled", payload={}))
    deliver(site, record(4, stream))  # a second report: counters and gauges move
    text = site.metrics().text
    assert "schoolnet_bandwidth_download_bytes_per_second{" in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_a_failed_run_keeps_the_last_good_value_and_says_it_failed(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    deliver(site, record(1, stream, "bandwidth"))
    deliver(site, record(2, stream, "bandwidth", ok=False, error="server stalled", payload={}))
    value = registry_for(site).get_sample_value
    probe = {**IDENTITY, "probe": "bandwidth"}
    assert value("schoolnet_bandwidth_download_bytes_per_second", IDENTITY) == 11_000_000.0
    assert value("schoolnet_probe_success", probe) == 0
    assert value("schoolnet_probe_last_run_timestamp_seconds", probe) > value(
        "schoolnet_probe_last_success_timestamp_seconds", probe)


def test_the_fast_page_says_exactly_what_prometheus_client_says(site) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    stream = new_stream()
    deliver(site, record(1, stream), record(2, stream, "bandwidth"),
            record(3, stream, "bandwidth", ok=False, error="stalled", payload={}),
            given_up=[{"stream_id": stream, "first": 10, "last": 12, "reason": "evicted"}])
    metrics = site.client.app.state.metrics

    def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    fast = samples(metrics.render().decode())
    reference = samples(generate_latest(metrics.registry).decode())
    assert fast == reference
    assert len(fast) > 25
    assert fast[("schoolnet_agent_given_up_records_total",
                 (("agent", "pi"), ("board", "test-board"), ("reason", "evicted"),
                  ("school", "test-school")))] == 3


def test_a_summary_is_the_same_from_both_writers_and_lint_clean() -> None:
    import pytest
    from prometheus_client import generate_latest
    from prometheus_client.core import Metric
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.registry import Collector

    from collector.exposition import Family, render

    # Fewer labels than the shared identity prefix, and the full identity with more.
    short = Family("schoolnet_test_short_seconds", "A test summary, seconds", "summary",
                   ("board", "quantile"))
    short.add(("b", "0.5"), 0.25)
    short.add_sum_count(("b",), 1.5, 6)
    full = Family("schoolnet_test_full_seconds", "A test summary, seconds", "summary",
                  ("board", "school", "agent", "server", "quantile"))
    for server in ("a", "b"):
        full.add(("b", "s", "pi", server, "0.5"), 0.004)
        full.add(("b", "s", "pi", server, "1"), 0.012)
        full.add_sum_count(("b", "s", "pi", server), 0.025, 5)
    families = [short, full]
    text = render(families)
    assert text.splitlines()[2:5] == ['schoolnet_test_short_seconds{board="b",quantile="0.5"} 0.25',
                                      'schoolnet_test_short_seconds_sum{board="b"} 1.5',
                                      'schoolnet_test_short_seconds_count{board="b"} 6']

    class Fixed(Collector):
        def collect(self) -> list[Metric]:
            return [family.to_metric() for family in families]

    registry = CollectorRegistry()
    registry.register(Fixed())

    def parsed(page: str) -> list[tuple[str, str, list[tuple[str, tuple[tuple[str, str], ...], float]]]]:
        return [(f.name, f.type, sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                                        for s in f.samples))
                for f in text_string_to_metric_families(page)]

    assert parsed(text) == parsed(generate_latest(registry).decode())
    assert [kind for _, kind, _ in parsed(text)] == ["summary", "summary"]
    assert registry.get_sample_value("schoolnet_test_full_seconds_count",
                                     {"board": "b", "school": "s", "agent": "pi", "server": "b"}) == 5

    promtool = require_tool("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout

    with pytest.raises(ValueError, match="quantile"):
        Family("schoolnet_test_seconds", "no quantile", "summary", ("board",))
    with pytest.raises(ValueError, match="only a summary"):
        Family("schoolnet_test", "a gauge", "gauge", ("board",)).add_sum_count(("b",), 1, 1)
