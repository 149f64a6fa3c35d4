"""The recording and alerting rules of deploy/prometheus/rules/ loaded into a real Prometheus
that scrapes a real collector: one school, one line imported with `schoolnet-collector
import contracts`, an enrolled agent's connectivity window and valid bandwidth tests
delivered with its credential. Every recording rule must evaluate to data (a rule whose
selectors match nothing the collector exposes would load fine in promtool and stay empty
for ever), and every rule must evaluate without error."""

from __future__ import annotations

import datetime
import functools
import gzip
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from support.processes import (
    LOOPBACK_CONNECTIVITY,
    AgentProcess,
    CollectorProcess,
    PrometheusProcess,
    wait_until,
)
from support.records import at, batch, new_stream, record

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"


def contracts_csv() -> str:
    """One school on one main line, in session every day around now (its hours in UTC:
    school hours end at 23:59 at the latest, so the three hours around now, clipped to the
    day), so the in-session rules have data whenever the test runs."""
    now = datetime.datetime.now(datetime.UTC)
    minutes = now.hour * 60 + now.minute
    start, end = max(0, minutes - 180), min(23 * 60 + 59, minutes + 180)
    hours = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    return ("board,school,timezone,school_hours,school_days,connection,provider,technology,role,"
            "contract_start,download_advertised_mbps,upload_advertised_mbps\n"
            f"test-board,test-school,UTC,{hours},mon-sun,glas,KPN Zakelijk,fibre,main,2020-01-01,"
            "1000,1000\n")


CONTRACT = 1000 * 125_000  # bytes per second: the CSV's 1000 Mbit/s


# The agent measures its connectivity for real. Its own speed test on loopback is not
# used: the machine running the tests is busy, so the agent (rightly) marks such a test
# invalid (CPU saturated); the valid tests are delivered below through the collector's
# real ingest route with the agent's own credential, as the agent would send them.
def deliver_bandwidth_tests(collector: CollectorProcess, agent: AgentProcess) -> None:
    """Three valid tests well below the contract, the newest a minute ago, posted to
    /api/v1/ingest as the agent's batch."""
    credential = json.loads((agent.state_dir / "credential.json").read_text())["credential"]
    stream, now = new_stream(), time.time()
    tests = [at(record(seq, stream, "bandwidth", payload={
        "backend": "http", "server": "https://speed.example.org", "streams": 4,
        "download_bytes_per_second": 0.4 * CONTRACT, "upload_bytes_per_second": 0.5 * CONTRACT,
        "idle_latency_seconds": 0.01, "contract_download_bytes_per_second": CONTRACT,
        "contract_upload_bytes_per_second": CONTRACT, "invalid_reasons": []}), now - 60 * (4 - seq))
        for seq in (1, 2, 3)]
    body = gzip.compress(json.dumps(batch(*tests)).encode())
    answer = httpx.post(f"{collector.url}/api/v1/ingest", content=body,
                        headers={"Authorization": f"Bearer {credential}", "Content-Encoding": "gzip"},
                        timeout=10)
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["accepted"] * 3


# Rules that need an event this scenario does not make (an outage under way).
NEEDS_AN_OUTAGE = {"school:schoolnet_connectivity_outage_active:max"}


def fast_rules(workdir: Path) -> list[Path]:
    """The rule files with their groups evaluated every second instead of every minute."""
    copies = []
    for path in sorted(RULES.glob("*.yml")):
        copy = workdir / path.name
        copy.write_text(path.read_text().replace("interval: 1m", "interval: 1s"))
        copies.append(copy)
    return copies


def test_every_recording_rule_has_data_from_a_real_collector(
    tmp_path: Path,
    collector: CollectorProcess,
    enrolled_agent: Callable[[str], AgentProcess],
) -> None:
    csv = tmp_path / "contracts.csv"
    csv.write_text(contracts_csv())
    collector.cli("import", "contracts", str(csv))
    agent = enrolled_agent(LOOPBACK_CONNECTIVITY)
    agent.cli("once")
    deliver_bandwidth_tests(collector, agent)

    rule_files = fast_rules(tmp_path)
    prometheus = PrometheusProcess(tmp_path, f"127.0.0.1:{collector.port}",
                                   token_file=collector.metrics_token_file())
    prometheus.config_path.write_text(
        prometheus.config_path.read_text()
        + "rule_files:\n" + "".join(f"  - {path}\n" for path in rule_files))
    prometheus.start()
    try:
        records = [name for path in rule_files
                   for name in re.findall(r"^\s*- record: (\S+)", path.read_text(), re.MULTILINE)]
        assert records
        for name in records:
            if name in NEEDS_AN_OUTAGE:
                continue
            series = wait_until(functools.partial(prometheus.query, name), 30, f"data for {name}")
            for s in series:
                assert s["metric"]["board"] == "test-board" and s["metric"]["school"] == "test-school"
        [provider] = prometheus.query("school:schoolnet_main_provider:info")
        assert provider["metric"].get("provider"), "the imported main line names its provider"
        # No group failed to evaluate (a many-to-many join fails at evaluation, not at load).
        groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert groups
        unhealthy = [(rule["name"], rule.get("lastError")) for group in groups
                     for rule in group["rules"] if rule["health"] != "ok"]
        assert unhealthy == []
    finally:
        prometheus.stop()
