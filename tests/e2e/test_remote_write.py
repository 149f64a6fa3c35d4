"""remote_write into a real VictoriaMetrics: records ingested through the real API arrive
with the page's names and labels at their original measurement times (to the millisecond);
an outage of VictoriaMetrics is buffered in the store and recovered without loss or
duplicates; and against the remote-written data the alert rules of deploy/prometheus/rules
fire in vmalert and every Grafana dashboard query is accepted by VictoriaMetrics."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.records import deliver, new_stream, page_samples, record
from support.victoria import VictoriaMetrics, VmAlert
from test_collector.conftest import Site, make_site

from agent.wire import ConnectivityPayload, EchoStats
from collector.remote_write import queue

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
if str(ROOT) not in sys.path:  # the dashboard generator lives beside the packages
    sys.path.insert(0, str(ROOT))

from grafana.build import generated  # noqa: E402

pytestmark = pytest.mark.e2e

HOUR = 3600.0
IDENTITY = {"board": "test-board", "school": "test-school", "agent": "pi",
            "job": "schoolnet-collector", "instance": "schoolnet-test"}


@pytest.fixture
def vm() -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics().start()
    yield server
    server.close()


@pytest.fixture
def site(tmp_path: Path, vm: VictoriaMetrics) -> Iterator[Site]:
    """A collector (the real app, in-process) sending to ``vm``; the snapshot once an hour,
    so the samples in VictoriaMetrics are the records' own (plus one snapshot at start)."""
    with make_site(tmp_path, remote_write_url=vm.write_url, remote_write_interval="1h",
                   remote_write_instance="schoolnet-test") as result:
        result.client.app.state.remote_writer.poll_seconds = 0.1  # type: ignore[attr-defined]
        yield result


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def page_value(site: Site, name: str, **labels: str) -> float | None:
    return page_samples(site.metrics().text).get((name, tuple(sorted(labels.items()))))


def at(rec: dict[str, Any], seconds: float) -> dict[str, Any]:
    rec["clock"]["wall_time_seconds"] = seconds
    return rec


def system(seq: int, stream: str, when: float, cpu: float) -> dict[str, Any]:
    rec = record(seq, stream)
    rec["payload"]["cpu_usage_ratio"] = cpu
    return at(rec, when)


def bandwidth(seq: int, stream: str, when: float, download: float) -> dict[str, Any]:
    return at(record(seq, stream, "bandwidth", payload={
        "backend": "http", "server": "https://speed.example", "streams": 4,
        "download_bytes_per_second": download, "upload_bytes_per_second": 2_000_000.0,
        "download_bytes": 10**8, "upload_bytes": 10**7,
        "contract_download_bytes_per_second": 12_500_000.0}), when)


def exported(vm: VictoriaMetrics, name: str, before: float) -> dict[str, Any]:
    """The one series ``name`` of the test's agent, samples before ``before`` (the records'
    own; the snapshot's are at the collector's later time)."""
    [found] = vm.export(f'{name}{{school="test-school"}}', before - 10 * HOUR, time.time() + 60)
    pairs = [(t, v) for t, v in zip(found["timestamps"], found["values"], strict=True)
             if t < before * 1000]
    return {"labels": found["metric"], "samples": pairs}


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def test_history_arrives_at_its_times_and_an_outage_loses_nothing(
        site: Site, vm: VictoriaMetrics) -> None:
    start = time.time()
    stream = new_stream()
    test_at = round(start - 3 * HOUR, 3)  # a bandwidth test three hours ago
    minutes = [round(start - 2 * HOUR + 60 * k + 0.25, 3) for k in range(5)]
    deliver(site, bandwidth(1, stream, test_at, 9_000_000.0),
            *(system(2 + k, stream, when, 0.1 * (k + 1)) for k, when in enumerate(minutes)))
    wait_for(lambda: queue.depth(site.engine)[0] == 0, 20, "the queue to drain")

    cpu = exported(vm, "schoolnet_system_cpu_usage_ratio", start)
    assert cpu["labels"] == {"__name__": "schoolnet_system_cpu_usage_ratio", **IDENTITY}
    assert cpu["samples"] == [(ms(when), pytest.approx(0.1 * (k + 1)))
                              for k, when in enumerate(minutes)]
    down = exported(vm, "schoolnet_bandwidth_download_bytes_per_second", start)
    assert down["labels"]["agent"] == "pi" and down["samples"] == [(ms(test_at), 9_000_000.0)]
    ratio = exported(vm, "schoolnet_bandwidth_download_ratio", start)
    assert ratio["samples"] == [(ms(test_at), pytest.approx(0.72))]

    # VictoriaMetrics goes down: what is stored meanwhile waits in the store.
    vm.stop()
    later = [round(start - HOUR + 60 * k, 3) for k in range(3)]
    deliver(site, *(system(7 + k, stream, when, 0.5 + 0.1 * k) for k, when in enumerate(later)),
            bandwidth(10, stream, later[-1] + 30, 4_000_000.0))
    wait_for(lambda: (page_value(site, "schoolnet_remote_write_failures_total",
                                 reason="connection") or 0) >= 1, 20, "a failed send")
    assert page_value(site, "schoolnet_remote_write_queue_records") == 4
    assert (page_value(site, "schoolnet_remote_write_queue_oldest_age_seconds") or 0) > 0

    vm.start()  # the same data directory and port
    wait_for(lambda: queue.depth(site.engine)[0] == 0, 30, "the queue to drain after the outage")
    assert page_value(site, "schoolnet_remote_write_queue_records") == 0
    everything = minutes + later
    cpu = exported(vm, "schoolnet_system_cpu_usage_ratio", start)
    assert [t for t, _ in cpu["samples"]] == [ms(when) for when in everything]  # none lost, none twice
    down = exported(vm, "schoolnet_bandwidth_download_bytes_per_second", start)
    assert down["samples"] == [(ms(test_at), 9_000_000.0), (ms(later[-1] + 30), 4_000_000.0)]
    assert page_value(site, "schoolnet_remote_write_dropped_samples_total", part="records") == 0
    # Nothing per school on the collector's own page.
    assert 'school="' not in site.metrics().text


def connectivity(seq: int, stream: str, when: float, loss: float) -> dict[str, Any]:
    def echo(target: str, role: str, lost: float) -> EchoStats:
        return EchoStats(target=target, address=target, role=role, method="icmp", sent=100,
                         received=round(100 * (1 - lost)), loss_ratio=lost,
                         latency_min_seconds=0.01, latency_mean_seconds=0.012,
                         latency_p50_seconds=0.012, latency_p90_seconds=0.015,
                         latency_p99_seconds=0.02, latency_max_seconds=0.03, jitter_seconds=0.001)

    payload = ConnectivityPayload(window_seconds=60.0, method="icmp", up=True, down_seconds=0.0,
                                  gateway=echo("192.0.2.1", "gateway", 0.0),
                                  targets=[echo("198.51.100.1", "internet", loss),
                                           echo("203.0.113.1", "internet", loss + 0.01)])
    return at(record(seq, stream, "connectivity", payload=payload.model_dump(mode="json")), when)


def compressed_rules(workdir: Path) -> list[Path]:
    """The rule files as they are, with time compressed: groups every second instead of
    every minute, and every `for:` one second (the expressions are what is under test)."""
    copies = []
    for path in sorted(RULES.glob("*.yml")):
        text = path.read_text().replace("interval: 1m", "interval: 1s")
        copy = workdir / path.name
        copy.write_text(re.sub(r"^(\s+)for: \S+$", r"\1for: 1s", text, flags=re.MULTILINE))
        copies.append(copy)
    return copies


VARIABLES = {"board": "test-board", "school": "test-school", "agent": "pi", "room": ".*",
             "__rate_interval": "5m", "__interval": "1m", "__range": "1h"}


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in expr, f"a variable the test does not know in {expr}"
    return expr


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, where, expr) of every panel target and query variable."""
    found = []
    for board in map(json.loads, generated().values()):
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((board["uid"], panel["title"], target["expr"]))
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]["query"]
                match = re.match(r"^label_values\((?P<m>.+),\s*\w+\)$", query)
                found.append((board["uid"], "$" + variable["name"],
                              match.group("m") if match else query))
    return found


def test_the_rules_fire_and_the_dashboards_query_on_remote_written_data(
        tmp_path: Path, site: Site, vm: VictoriaMetrics) -> None:
    now = time.time()
    stream = new_stream()
    # Twenty minutes of windows, losing 5 % to every internet target (the last one 30 s
    # ago), a bandwidth test and system samples.
    windows = [connectivity(k + 1, stream, now - 30 - 60 * (19 - k), 0.05) for k in range(20)]
    deliver(site, *windows, bandwidth(21, stream, now - 600, 5_000_000.0),
            system(22, stream, now - 120, 0.3))
    wait_for(lambda: queue.depth(site.engine)[0] == 0, 20, "the queue to drain")
    # The state snapshot too (agents, counters, availability), as the lease holder sends it.
    writer = site.client.app.state.remote_writer  # type: ignore[attr-defined]
    writer.send_snapshot(time.time())
    vm.flush()

    vmalert = VmAlert(vm, compressed_rules(tmp_path)).start()
    try:
        def loss_alert() -> list[dict[str, Any]]:
            return [alert for alert in vmalert.alerts()
                    if alert["name"] == "SchoolnetHighPacketLoss" and alert["state"] == "firing"]

        [alert] = wait_for(loss_alert, 30, "SchoolnetHighPacketLoss to fire")
        assert {k: alert["labels"][k] for k in ("board", "school", "agent")} == {
            "board": "test-board", "school": "test-school", "agent": "pi"}
        assert float(alert["value"]) == pytest.approx(0.05)
        # No rule fails to evaluate on VictoriaMetrics (MetricsQL is not PromQL everywhere).
        errors = [(rule["name"], rule.get("lastError")) for group in vmalert.groups()
                  for rule in group["rules"] if rule.get("lastError")]
        assert errors == []
    finally:
        vmalert.stop()

    refused = []
    queries = dashboard_queries()
    assert len(queries) > 20
    for uid, where, expr in queries:
        answer = vm.query_range(substitute(expr), now - HOUR, now, "60s")
        if answer.get("status") != "success":
            refused.append((uid, where, expr, answer.get("error")))
    assert refused == []
