"""The whole spine with real processes: agent measures, collector stores, Prometheus scrapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from support.processes import AgentProcess, CollectorProcess, PrometheusProcess, wait_until

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

    prometheus = PrometheusProcess(tmp_path, f"127.0.0.1:{collector.port}")
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
