"""The whole spine with real processes: agent measures, collector stores, Prometheus scrapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from support.processes import (
    LOOPBACK_CONNECTIVITY,
    AgentProcess,
    CollectorProcess,
    PrometheusProcess,
    wait_until,
)

QUICK_TESTS = """
[probes.bandwidth]
backend = "http"
duration = "1s"
max_bytes = "50MB"
"""


def test_measured_download_rate_reaches_prometheus_with_identity_labels(
    tmp_path: Path,
    collector: CollectorProcess,
    enrolled_agent: Callable[[str], AgentProcess],
) -> None:
    agent = enrolled_agent(QUICK_TESTS)
    agent.cli("once")
    assert agent.status()["outbox_records"] == 0, "once must deliver everything it measured"

    stored = collector.query(
        "SELECT payload FROM records WHERE kind = 'bandwidth' AND ok"
    )
    assert len(stored) == 1
    measured = json.loads(stored[0][0])["download_bytes_per_second"]
    assert measured > 0

    prometheus = PrometheusProcess(tmp_path, f"127.0.0.1:{collector.port}",
                                   token_file=collector.metrics_token_file())
    prometheus.start()
    try:
        series = wait_until(
            lambda: prometheus.query("schoolnet_bandwidth_download_bytes_per_second"),
            20, "the download rate in Prometheus",
        )
        assert len(series) == 1
        labels = series[0]["metric"]
        assert labels["board"] == "test-board"
        assert labels["school"] == "test-school"
        assert labels["agent"] == "agent-0"
        assert float(series[0]["value"][1]) == measured
        info = prometheus.query('schoolnet_agent_info{agent="agent-0"}')
        assert info and info[0]["value"][1] == "1"
        assert prometheus.query("schoolnet_agent_last_report_timestamp_seconds")
        assert prometheus.query('up{job="schoolnet"} == 1'), "the scrape itself must succeed"
    finally:
        prometheus.stop()


def test_a_connectivity_window_reaches_prometheus_as_summaries_and_availability(
    tmp_path: Path,
    collector: CollectorProcess,
    enrolled_agent: Callable[[str], AgentProcess],
) -> None:
    agent = enrolled_agent(LOOPBACK_CONNECTIVITY)
    agent.cli("once")
    [(payload,)] = collector.query("SELECT payload FROM records WHERE kind = 'connectivity' AND ok")
    window = json.loads(payload)
    median = next(t for t in window["targets"] if t["target"] == "127.0.0.1")["latency_p50_seconds"]

    prometheus = PrometheusProcess(tmp_path, f"127.0.0.1:{collector.port}",
                                   token_file=collector.metrics_token_file())
    prometheus.start()
    try:
        series = wait_until(
            lambda: prometheus.query('schoolnet_latency_seconds{target="127.0.0.1",quantile="0.5"}'),
            20, "the median round trip in Prometheus",
        )
        assert float(series[0]["value"][1]) == median
        assert series[0]["metric"]["role"] == "internet" and series[0]["metric"]["agent"] == "agent-0"
        # The sample size beside the figure, as a summary's _count.
        [count] = prometheus.query('schoolnet_latency_seconds_count{target="::1"}')
        v6 = next(t for t in window["targets"] if t["target"] == "::1")
        assert int(count["value"][1]) == v6["received"]
        assert prometheus.query("schoolnet_connectivity_up == 1")
        assert prometheus.query('schoolnet_packet_loss_ratio{target="127.0.0.1"} == 0')
        [available] = prometheus.query('schoolnet_connectivity_availability_ratio{window="1d",outages="all"}')
        assert available["metric"]["school"] == "test-school" and "agent" not in available["metric"]
        assert float(available["value"][1]) == 1.0
    finally:
        prometheus.stop()
