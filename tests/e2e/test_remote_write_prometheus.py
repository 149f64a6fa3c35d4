"""remote_write into a real Prometheus (Debian's, with its remote-write receiver and an
out-of-order window, as docs/remote-write.md says): records ingested through the real API
hours after they were measured arrive at their own times, behind the snapshot's newer
samples, with the page's names and labels."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.processes import PrometheusProcess, wait_until
from support.records import deliver, new_stream, page_samples, record
from test_collector.conftest import Site, make_site

from collector.remote_write import queue

pytestmark = pytest.mark.e2e

HOUR = 3600.0


class PrometheusReceiver(PrometheusProcess):
    """Prometheus scraping nothing, taking remote_write at /api/v1/write, with a day's
    out-of-order window."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, target="127.0.0.1:9")
        self.config_path.write_text("global:\n  scrape_interval: 1m\n"
                                    "storage:\n  tsdb:\n    out_of_order_time_window: 1d\n")
        self.extra_args = ["--web.enable-remote-write-receiver"]

    def samples(self, name: str, window: str) -> list[dict[str, Any]]:
        """The raw samples of ``name`` over the last ``window`` (a range vector)."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": f"{name}[{window}]"},
                           timeout=10)
        answer.raise_for_status()
        return list(answer.json()["data"]["result"])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusReceiver]:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    server = PrometheusReceiver(folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def site(tmp_path: Path, prometheus: PrometheusReceiver) -> Iterator[Site]:
    with make_site(tmp_path, remote_write_url=f"{prometheus.url}/api/v1/write",
                   remote_write_interval="1h", remote_write_instance="schoolnet-test") as result:
        result.client.app.state.remote_writer.poll_seconds = 0.1  # type: ignore[attr-defined]
        yield result


def system(seq: int, stream: str, when: float, cpu: float) -> dict[str, Any]:
    rec = record(seq, stream)
    rec["payload"]["cpu_usage_ratio"] = cpu
    rec["clock"]["wall_time_seconds"] = when
    return rec


def test_records_arrive_in_prometheus_at_their_measurement_times(
        site: Site, prometheus: PrometheusReceiver) -> None:
    now = time.time()
    stream = new_stream()
    # Delivered now, measured two hours ago, a minute apart: behind the snapshot (sent at
    # start, at the collector's time), so only an out-of-order window takes them.
    minutes = [round(now - 2 * HOUR + 60 * k + 0.25, 3) for k in range(4)]
    deliver(site, *(system(1 + k, stream, when, 0.2 + 0.1 * k) for k, when in enumerate(minutes)))
    wait_until(lambda: queue.depth(site.engine)[0] == 0, 20, "the queue to drain")
    page = page_samples(site.metrics().text)
    assert page[("schoolnet_remote_write_dropped_samples_total", (("part", "records"),))] == 0, \
        "Prometheus refused the records (its log: out of bounds, or out of order)"

    [series] = wait_until(lambda: prometheus.samples("schoolnet_system_cpu_usage_ratio", "3h"),
                          10, "the samples in Prometheus")
    assert series["metric"] == {"__name__": "schoolnet_system_cpu_usage_ratio",
                                "board": "test-board", "school": "test-school", "agent": "pi",
                                "job": "schoolnet-collector", "instance": "schoolnet-test"}
    assert [(round(float(t), 3), float(v)) for t, v in series["values"]] == [
        (when, pytest.approx(0.2 + 0.1 * k)) for k, when in enumerate(minutes)]
    # The state snapshot, at the collector's time, lands after those older samples.
    site.client.app.state.remote_writer.send_snapshot(time.time())  # type: ignore[attr-defined]
    [info] = wait_until(lambda: prometheus.samples("schoolnet_agent_info", "10m"), 10,
                        "the snapshot in Prometheus")
    assert info["metric"]["agent"] == "pi" and float(info["values"][-1][0]) >= now
    [series] = prometheus.samples("schoolnet_system_cpu_usage_ratio", "3h")
    assert len(series["values"]) == len(minutes) + 1
    assert float(series["values"][-1][0]) >= now and float(series["values"][-1][1]) == pytest.approx(0.5)
