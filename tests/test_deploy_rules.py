"""The Prometheus rules and the Alertmanager config in deploy/, checked with the real tools:
promtool (check and unit-test the rules, check the example config), amtool (check the
config, test each route) and a real Alertmanager on loopback for the inhibit rules
(amtool cannot test inhibition)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.tools import free_port, require_tool

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
ALERTS_DOC = ROOT / "docs" / "alerts.md"


NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
ALERT = re.compile(r"^\s*- alert: (\w+)\s*$", re.MULTILINE)
RECORD = re.compile(r"^\s*- record: (\S+)\s*$", re.MULTILINE)


def rules_text() -> str:
    return "\n".join(path.read_text() for path in RULE_FILES)


def alert_names() -> set[str]:
    return set(ALERT.findall(rules_text()))


def rule_blocks() -> list[str]:
    """Each alerting rule's text, from its `- alert:` line to the next rule or group."""
    return [block for path in RULE_FILES
            for block in re.findall(r"^\s*- alert: .*?(?=^\s*- (?:alert|record|name):|\Z)",
                                    path.read_text(), re.MULTILINE | re.DOTALL)]


def test_promtool_checks_the_rules() -> None:
    promtool = require_tool("promtool")
    result = subprocess.run([promtool, "check", "rules", *map(str, RULE_FILES)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    result = subprocess.run([promtool, "test", "rules", *(p.name for p in TEST_FILES)],
                            cwd=PROMETHEUS / "tests", capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES)


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    tests = "\n".join(path.read_text() for path in TEST_FILES)
    cases = re.findall(r"alertname: (\w+)\n\s*exp_alerts:( \[\])?", tests)
    firing = {name for name, empty in cases if not empty}
    silent = {name for name, empty in cases if empty}
    assert alert_names() == {
        "SchoolnetBandwidthBelowContract", "SchoolnetVerdictFailed", "SchoolnetOutage",
        "SchoolnetLanOutage", "SchoolnetHighPacketLoss", "SchoolnetSchoolHoursAvailabilityLow",
        "SchoolnetAgentSilent", "SchoolnetSchoolSilent", "SchoolnetOutboxGrowing",
        "SchoolnetWifiRoomDegraded", "SchoolnetCollectorDown"}
    assert alert_names() - firing == set()
    assert alert_names() - silent == set()


def test_every_alert_has_severity_and_plain_annotations() -> None:
    anchors = {heading.strip().lower() for heading in
               re.findall(r"^#+ (Schoolnet\w+)\s*$", ALERTS_DOC.read_text(), re.MULTILINE)}
    for block in rule_blocks():
        name = ALERT.search(block).group(1)  # type: ignore[union-attr]
        if "*outage_annotations" in block or "*lan_annotations" in block:
            continue  # the second severity of an alert shares the first one's annotations
        assert re.search(r"severity: (critical|warning|info)\n", block), name
        for key in ("summary", "description", "runbook_url"):
            assert re.search(rf"^\s+{key}: ", block, re.MULTILINE), (name, key)
        anchor = re.search(r'runbook_url: "docs/alerts\.md#(\w+)"', block)
        assert anchor and anchor.group(1) == name.lower() and anchor.group(1) in anchors, name
        # A school's alert links to that school's incidents (its evidence packs) on the
        # collector; the collector's own alert has no school to link to.
        link = re.search(r'incident_url: "(.*)"', block)
        if name == "SchoolnetCollectorDown":
            assert link is None
        else:
            assert link and link.group(1) == ("{{ $externalLabels.collector_url }}/incidents/"
                                              "{{ $labels.board }}/{{ $labels.school }}"), name
        # Every rule keeps board and school (aggregations name them) so routing works.
        for by in re.findall(r"by \(([^)]*)\)", block):
            assert {"board", "school"} <= {label.strip() for label in by.split(",")}, (name, by)


def documented_metrics() -> set[str]:
    return set(re.findall(r"schoolnet_[a-z0-9_]+", (ROOT / "docs" / "metrics.md").read_text()))


def test_rules_use_only_metrics_the_collector_exposes() -> None:
    text = rules_text()
    recorded = set(RECORD.findall(text))
    names = {name for name in NAME.findall(text) if "schoolnet_" in name}
    raw = {name for name in names if ":" not in name and name.startswith("schoolnet_")}
    assert raw - documented_metrics() == set()
    # Recorded names used in expressions are defined here, and follow level:metric:operation.
    assert {name for name in names if ":" in name} - recorded == set()
    for name in recorded:
        level, metric, operation = name.split(":")
        assert level in {"school", "agent"} and metric.startswith("schoolnet_") and operation, name


def test_collector_down_watches_the_example_configs_job() -> None:
    """SchoolnetCollectorDown selects `up` by job name: a rule naming another job than the
    example scrape config's would match nothing and never fire."""
    jobs = re.findall(r"^\s*- job_name: (\S+)\s*$",
                      (PROMETHEUS / "prometheus.example.yml").read_text(), re.MULTILINE)
    [block] = [b for b in rule_blocks() if "alert: SchoolnetCollectorDown" in b]
    assert jobs == ["schoolnet-collector"]
    assert re.search(r'^\s+expr: up\{job="schoolnet-collector"\} == 0\s*$', block, re.MULTILINE)
    assert re.search(r"^\s+for: 5m\s*$", block, re.MULTILINE)
    assert "job name" in ALERTS_DOC.read_text().split("## SchoolnetCollectorDown")[1].split("\n## ")[0]


def test_example_prometheus_config_is_valid(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    token = tmp_path / "collector.token"
    token.write_text("example-token\n")
    config = (PROMETHEUS / "prometheus.example.yml").read_text()
    assert "/etc/prometheus/schoolnet-collector.token" in config
    config = config.replace("/etc/prometheus/schoolnet-collector.token", str(token))
    config = config.replace("rules/*.yml", str(PROMETHEUS / "rules" / "*.yml"))
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout + result.stderr


def test_amtool_checks_the_config() -> None:
    amtool = require_tool("amtool")
    result = subprocess.run([amtool, "check-config", str(ALERTMANAGER)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 inhibit rules" in result.stdout


@pytest.mark.parametrize(("labels", "receivers"), [
    # A board's critical alert pages its ICT contact; warnings and info go to its digest.
    ("alertname=SchoolnetLanOutage board=bestuur-noord school=de-klimop severity=critical",
     "bestuur-noord-ict"),
    ("alertname=SchoolnetHighPacketLoss board=bestuur-noord school=de-klimop severity=warning",
     "bestuur-noord-digest"),
    ("alertname=SchoolnetWifiRoomDegraded board=bestuur-zuid school=de-wilg severity=info",
     "bestuur-zuid-digest"),
    ("alertname=SchoolnetLanOutage board=bestuur-zuid school=de-wilg severity=critical",
     "bestuur-zuid-ict"),
    # Provider-side alerts also go, grouped per provider, to the provider desk.
    ("alertname=SchoolnetOutage board=bestuur-noord school=de-klimop severity=critical provider=kpn",
     "provider-desk,bestuur-noord-ict"),
    ("alertname=SchoolnetBandwidthBelowContract board=bestuur-zuid school=de-wilg severity=warning "
     "provider=ziggo", "provider-desk,bestuur-zuid-digest"),
    # A school whose agents are all silent: the board's ICT contact and the provider desk.
    ("alertname=SchoolnetSchoolSilent board=bestuur-zuid school=de-wilg severity=critical provider=kpn",
     "provider-desk,bestuur-zuid-ict"),
    # An outage of unknown side (kind="internet") is the board's alone: the rules give it
    # no provider, and the provider route refuses it should a changed rule add one.
    ("alertname=SchoolnetOutage board=bestuur-noord school=de-klimop severity=critical kind=internet",
     "bestuur-noord-ict"),
    ("alertname=SchoolnetOutage board=bestuur-noord school=de-klimop severity=critical kind=internet "
     "provider=kpn", "bestuur-noord-ict"),
    ("alertname=SchoolnetOutage board=bestuur-noord school=de-klimop severity=critical kind=isp "
     "provider=kpn", "provider-desk,bestuur-noord-ict"),
    # An alert without a provider (none registered, or two) is the board's alone.
    ("alertname=SchoolnetOutage board=bestuur-zuid school=de-wilg severity=warning",
     "bestuur-zuid-digest"),
    # A board without a route of its own: the operator.
    ("alertname=SchoolnetOutage board=bestuur-west school=x severity=critical", "operator-page"),
    ("alertname=SchoolnetAgentSilent board=bestuur-west school=x severity=warning",
     "operator-digest"),
    ("alertname=SchoolnetVerdictFailed board=bestuur-west school=x severity=info provider=kpn",
     "provider-desk,operator-digest"),
    # The collector not scraped: no board, the operator is paged.
    ("alertname=SchoolnetCollectorDown severity=critical job=schoolnet-collector "
     "instance=collector.example.org:443", "operator-page"),
])
def test_amtool_routes(labels: str, receivers: str) -> None:
    amtool = require_tool("amtool")
    result = subprocess.run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}",
                             f"--verify.receivers={receivers}", *labels.split()],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_provider_route_groups_by_provider_and_alertname() -> None:
    """amtool shows receivers, not grouping: read the route's group_by from the file."""
    text = ALERTMANAGER.read_text()
    route = re.search(r"- matchers: \['provider=~\"\.\+\"', 'kind!=\"internet\"'\]\n((?:\s{6}\S.*\n)+)",
                      text)
    assert route, "no provider route"
    assert "group_by: [alertname, provider]" in route.group(1)
    assert "continue: true" in route.group(1)
    assert re.search(r"^route:\n(?:.*\n)*?\s+group_by: \[board, alertname\]", text, re.MULTILINE)


# Inhibition, with a real Alertmanager (amtool cannot test it).

@pytest.fixture()
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = require_tool("prometheus-alertmanager")
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={ALERTMANAGER}", f"--storage.path={tmp_path}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    log_text = (tmp_path / "alertmanager.log").read_text()
                    raise AssertionError(f"alertmanager did not start: {log_text}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def post_alerts(url: str, *labelsets: dict[str, str]) -> None:
    body = json.dumps([{"labels": labels, "annotations": {"summary": "test"}}
                       for labels in labelsets]).encode()
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def inhibited(url: str) -> dict[str, list[str]]:
    """alertname/agent -> the fingerprints inhibiting it, once every alert is processed."""
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as answer:
            alerts = json.load(answer)
        states = {a["labels"]["alertname"] + "/" + a["labels"].get("school", "") + "/"
                  + a["labels"].get("agent", ""): a["status"] for a in alerts}
        if all(s["state"] != "unprocessed" for s in states.values()) or time.monotonic() > deadline:
            return {key: s["inhibitedBy"] for key, s in states.items()}
        time.sleep(0.1)


def test_silent_agent_inhibits_its_own_alerts_only(alertmanager: str) -> None:
    school = {"board": "bestuur-noord", "school": "de-klimop"}
    # The inhibiting alert first, processed before the others arrive: Alertmanager marks
    # an alert as it processes it, and one processed before its source would stay shown.
    post_alerts(alertmanager,
                {"alertname": "SchoolnetAgentSilent", "severity": "warning", **school, "agent": "pi"})
    inhibited(alertmanager)
    post_alerts(alertmanager,
                {"alertname": "SchoolnetOutboxGrowing", "severity": "warning", **school, "agent": "pi"},
                {"alertname": "SchoolnetOutboxGrowing", "severity": "warning", **school, "agent": "nuc"},
                {"alertname": "SchoolnetWifiRoomDegraded", "severity": "info", **school, "room": "a"})
    state = inhibited(alertmanager)
    assert state["SchoolnetOutboxGrowing/de-klimop/pi"] != []
    assert state["SchoolnetAgentSilent/de-klimop/pi"] == []
    assert state["SchoolnetOutboxGrowing/de-klimop/nuc"] == []
    assert state["SchoolnetWifiRoomDegraded/de-klimop/"] == []


def test_outage_inhibits_the_schools_bandwidth_and_loss_alerts(alertmanager: str) -> None:
    klimop = {"board": "bestuur-noord", "school": "de-klimop"}
    anker = {"board": "bestuur-noord", "school": "het-anker"}
    post_alerts(alertmanager,
                {"alertname": "SchoolnetOutage", "severity": "critical", **klimop, "agent": "pi",
                 "kind": "isp", "provider": "kpn"})
    inhibited(alertmanager)  # processed before the alerts it inhibits arrive (see above)
    post_alerts(alertmanager,
                {"alertname": "SchoolnetBandwidthBelowContract", "severity": "warning", **klimop,
                 "agent": "nuc", "provider": "kpn"},
                {"alertname": "SchoolnetHighPacketLoss", "severity": "warning", **klimop, "agent": "pi"},
                {"alertname": "SchoolnetHighPacketLoss", "severity": "warning", **anker, "agent": "pi"})
    state = inhibited(alertmanager)
    assert state["SchoolnetBandwidthBelowContract/de-klimop/nuc"] != []
    assert state["SchoolnetHighPacketLoss/de-klimop/pi"] != []
    assert state["SchoolnetHighPacketLoss/het-anker/pi"] == []
    assert state["SchoolnetOutage/de-klimop/pi"] == []


def test_a_silent_school_is_one_alert_and_holds_back_its_line_alerts(alertmanager: str) -> None:
    klimop = {"board": "bestuur-noord", "school": "de-klimop"}
    anker = {"board": "bestuur-noord", "school": "het-anker"}
    post_alerts(alertmanager,
                {"alertname": "SchoolnetSchoolSilent", "severity": "critical", **klimop, "provider": "kpn"})
    inhibited(alertmanager)  # processed before the alerts it inhibits arrive (see above)
    post_alerts(alertmanager,
                {"alertname": "SchoolnetAgentSilent", "severity": "warning", **klimop, "agent": "pi"},
                {"alertname": "SchoolnetHighPacketLoss", "severity": "warning", **klimop, "agent": "nuc"},
                {"alertname": "SchoolnetAgentSilent", "severity": "warning", **anker, "agent": "pi"})
    state = inhibited(alertmanager)
    assert state["SchoolnetAgentSilent/de-klimop/pi"] != []
    assert state["SchoolnetHighPacketLoss/de-klimop/nuc"] != []
    assert state["SchoolnetAgentSilent/het-anker/pi"] == []
    assert state["SchoolnetSchoolSilent/de-klimop/"] == []


def test_collector_down_inhibits_nothing(alertmanager: str) -> None:
    """While the collector is not scraped, the school alerts still firing (an agent already
    silent before) stay shown: SchoolnetCollectorDown holds nothing back, and nothing
    holds it back."""
    klimop = {"board": "bestuur-noord", "school": "de-klimop"}
    post_alerts(alertmanager,
                {"alertname": "SchoolnetCollectorDown", "severity": "critical",
                 "job": "schoolnet-collector", "instance": "collector.example.org:443"},
                {"alertname": "SchoolnetSchoolSilent", "severity": "critical", **klimop, "provider": "kpn"})
    inhibited(alertmanager)  # processed before the alerts it might inhibit arrive (see above)
    post_alerts(alertmanager,
                {"alertname": "SchoolnetAgentSilent", "severity": "warning",
                 "board": "bestuur-zuid", "school": "de-wilg", "agent": "nuc"},
                {"alertname": "SchoolnetOutage", "severity": "critical", **klimop, "agent": "pi",
                 "kind": "isp", "provider": "kpn"})
    state = inhibited(alertmanager)
    assert state["SchoolnetCollectorDown//"] == []
    assert state["SchoolnetAgentSilent/de-wilg/nuc"] == []
    assert state["SchoolnetOutage/de-klimop/pi"] == []


def test_both_prometheus_configs_give_alerts_the_collector_address() -> None:
    # Without the external label an alert's incident_url is a bare path.
    for path in (ROOT / "deploy" / "compose" / "prometheus.yml",
                 ROOT / "deploy" / "prometheus" / "prometheus.example.yml"):
        labels = yaml.safe_load(path.read_text())["global"]["external_labels"]
        assert labels["collector_url"].startswith("https://"), path
