"""Review of the Prometheus rules against what the collector really exposes.

Two kinds of check:
- every selector in deploy/prometheus/rules/ (label names, label values, the labels an
  aggregation keeps) against the label sets documented in docs/metrics.md, so a rule
  cannot silently match nothing (a `role="internet"` spelled `role="wan"`, a `by (room)`
  on a metric without `room`);
- promtool scenarios for the ways the collector's page behaves that the rules must
  survive: an agent dropped from /metrics after 24 h of silence, the latest bandwidth
  test's gauge staying on the page from before school into the school day, and two
  scrapes of one collector (two jobs or replicas: the same series twice, apart from
  `instance`), which must not turn a join into a many-to-many error.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from support.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules"
RULE_FILES = sorted(RULES.glob("*.yml"))
METRICS_DOC = ROOT / "docs" / "metrics.md"

IDENTITY = ("board", "school", "agent")
# Labels Prometheus itself adds to every scraped series.
TARGET_LABELS = {"job", "instance"}


def documented_label_sets() -> dict[str, dict[str, set[str] | None]]:
    """metric name -> label -> its documented values (None: any value), from the tables of
    docs/metrics.md (first cell the names, third the labels)."""
    found: dict[str, dict[str, set[str] | None]] = {}
    for line in METRICS_DOC.read_text().splitlines():
        if not line.startswith("| `schoolnet_"):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        names = re.findall(r"`(schoolnet_[a-z0-9_]+)`", cells[0])
        labels: dict[str, set[str] | None] = {}
        if cells[2].startswith("identity"):
            labels.update(dict.fromkeys(IDENTITY))
        for match in re.finditer(r"`([a-z_]+)`((?:\s*=\s*`[^`]*`)(?:\s*\\\|\s*`[^`]*`)*)?", cells[2]):
            values = re.findall(r"`([^`]*)`", match.group(2)) if match.group(2) else None
            labels[match.group(1)] = set(values) if values else None
        for name in names:
            found[name] = labels
            if cells[1] == "summary":
                found[name + "_count"] = {k: v for k, v in labels.items() if k != "quantile"}
                found[name + "_sum"] = found[name + "_count"]
    return found


def expressions() -> list[str]:
    """Every rule's `expr`, one string each (block scalars joined)."""
    exprs: list[str] = []
    for path in RULE_FILES:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            match = re.match(r"^(\s*)expr:\s*(.*)$", line)
            if not match:
                continue
            if match.group(2).strip() not in ("|", ">", "|-", ">-"):
                exprs.append(match.group(2))
                continue
            indent = len(match.group(1))
            body = []
            for following in lines[i + 1:]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                body.append(following)
            exprs.append("\n".join(body))
    return exprs


SELECTOR = re.compile(r"(?<![:\w])(schoolnet_[a-z0-9_]+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
# An aggregation straight over a raw metric, possibly through one range function:
# `max by (board, school) (schoolnet_x{...})`, `max by (...) (last_over_time(schoolnet_x[7d]))`.
AGGREGATION = re.compile(r"by \(([^)]*)\)\s*\(\s*(?:\w+\(\s*)?(schoolnet_[a-z0-9_]+)")


def test_the_documented_label_sets_are_parsed() -> None:
    """The parser reads what the checks below rely on (a broken parser would pass them)."""
    sets = documented_label_sets()
    assert sets["schoolnet_connectivity_outage_active"]["kind"] == {"isp", "lan", "dns", "internet"}
    assert sets["schoolnet_packet_loss_ratio"]["role"] is None  # values given elsewhere in the doc
    assert sets["schoolnet_latency_seconds"]["role"] == {"gateway", "internet"}
    assert sets["schoolnet_connection_info"]["role"] == {"main", "backup"}
    assert sets["schoolnet_bandwidth_median_ratio"]["hours"] == {"school", "all"}
    assert set(sets["schoolnet_school_in_session"]) == {"board", "school"}
    assert set(sets["schoolnet_wifi_room_coverage_grade"]) == {"board", "school", "room"}
    assert "agent" in sets["schoolnet_agent_last_report_timestamp_seconds"]


def documented_values(sets: dict[str, dict[str, set[str] | None]], metric: str,
                      label: str) -> set[str] | None:
    """A label's values where the doc gives them for this metric, or for the same label
    of a sibling family (`role` of the loss gauge is listed once, on the latency summary)."""
    values = sets[metric].get(label)
    if values is not None:
        return values
    siblings = [s[label] for s in sets.values() if s.get(label) is not None]
    if label == "role" and metric.startswith(("schoolnet_packet_loss", "schoolnet_jitter")):
        return sets["schoolnet_latency_seconds"]["role"]
    return siblings[0] if len(siblings) == 1 else None


def test_every_selector_names_documented_labels_and_values() -> None:
    sets = documented_label_sets()
    problems = []
    for expr in expressions():
        for metric, matchers in SELECTOR.findall(expr):
            if metric not in sets:
                problems.append(f"{metric}: not in docs/metrics.md")
                continue
            for label, op, value in MATCHER.findall(matchers or ""):
                if label not in sets[metric] and label not in TARGET_LABELS:
                    problems.append(f"{metric}{{{label}}}: the collector has no such label")
                    continue
                allowed = documented_values(sets, metric, label)
                if allowed is None or op.startswith("!"):
                    continue
                wanted = value.split("|") if op == "=~" else [value]
                if op == "=~" and not re.fullmatch(r"[\w|-]+", value):
                    continue  # a real pattern, not a list of values
                problems += [f"{metric}{{{label}={v!r}}}: never exposed (only {sorted(allowed)})"
                             for v in wanted if v not in allowed]
        for by, metric in AGGREGATION.findall(expr):
            kept = {label.strip() for label in by.split(",") if label.strip()}
            missing = kept - set(sets.get(metric, {})) - TARGET_LABELS
            if metric in sets and missing:
                problems.append(f"by ({by}) over {metric}: it has no {sorted(missing)}")
    assert problems == [], "\n".join(problems)


# promtool scenarios. Each is a promtool test file written next to absolute rule paths.

def run_promtool(tmp_path: Path, tests: str) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    files = "".join(f"  - {path}\n" for path in RULE_FILES)
    path = tmp_path / "review.test.yml"
    path.write_text(f"rule_files:\n{files}evaluation_interval: 1m\n\ntests:\n{tests}")
    return subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True,
                          check=False)


SILENT_AFTER_EXPIRY = """
  - interval: 10m
    input_series:
      # Silent since time 0; the collector drops it from the page at 24 h.
      - series: 'schoolnet_agent_last_report_timestamp_seconds{board="b",school="s",agent="pi"}'
        values: '0x144'
    alert_rule_test:
      - eval_time: 26h
        alertname: SchoolnetAgentSilent
        exp_alerts:
          - exp_labels: {severity: warning, board: b, school: s, agent: pi}
            exp_annotations:
              summary: "Agent pi at s is silent"
              description: "Agent pi at school s (board b) last reported 1d 2h 0m 0s ago.
                Its other alerts are held back until it reports again."
              runbook_url: "docs/alerts.md#schoolnetagentsilent"
              incident_url: "/incidents/b/s"
"""

REVOKED_WHILE_REPORTING = """
  - interval: 1m
    input_series:
      # Reported every minute, then revoked at minute 60: it leaves the page fresh.
      - series: 'schoolnet_agent_last_report_timestamp_seconds{board="b",school="s",agent="nuc"}'
        values: '0+60x60'
    alert_rule_test:
      - eval_time: 3h
        alertname: SchoolnetAgentSilent
        exp_alerts: []
"""


def test_an_agent_dropped_from_metrics_after_24h_stays_silent(tmp_path: Path) -> None:
    """Review finding: `time() - last_report > 30m` resolved when the collector dropped the
    agent (SCHOOLNET_AGENT_EXPIRY), so a dead Pi was "resolved" after a day."""
    result = run_promtool(tmp_path, SILENT_AFTER_EXPIRY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_agent_revoked_while_reporting_is_not_silent(tmp_path: Path) -> None:
    result = run_promtool(tmp_path, REVOKED_WHILE_REPORTING)
    assert result.returncode == 0, result.stdout + result.stderr


PRE_SCHOOL_TEST = """
  - interval: 1m
    input_series:
      # School from minute 90 (08:30); a bad test at minute 75 (08:15) and one at 150.
      - series: 'schoolnet_school_in_session{board="b",school="s"}'
        values: '0x89 1x200'
      - series: 'schoolnet_bandwidth_download_ratio{board="b",school="s",agent="pi"}'
        values: '_x74 0.4x75 0.5x140'
      - series: 'schoolnet_bandwidth_valid{board="b",school="s",agent="pi"}'
        values: '_x74 1x215'
      - series: 'schoolnet_bandwidth_test_timestamp_seconds{board="b",school="s",agent="pi"}'
        values: '_x74 4500x75 9000x140'
    alert_rule_test:
      - eval_time: 200m
        alertname: SchoolnetBandwidthBelowContract
        exp_alerts: []
"""


def test_a_test_made_before_school_is_not_a_school_hours_test(tmp_path: Path) -> None:
    """Review finding: the latest test's gauge stays on the page, so a 08:15 test was
    sampled from 08:30 on and counted, with one real school-hours test, as "two bad tests
    in school hours"."""
    result = run_promtool(tmp_path, PRE_SCHOOL_TEST)
    assert result.returncode == 0, result.stdout + result.stderr


TWO_SCRAPES = """
  - interval: 1m
    input_series:
{series}
    alert_rule_test:
      - eval_time: 20m
        alertname: SchoolnetOutage
        exp_alerts:
          - exp_labels: {{severity: critical, board: b, school: s, agent: pi, kind: isp, provider: kpn}}
            exp_annotations:
              summary: "Internet outage at s (isp)"
              description: "Agent pi at school s (board b) has had no internet for at least
                5 minutes (outage active: 1). The school's own router answered, so the fault is
                on the provider's side."
              runbook_url: "docs/alerts.md#schoolnetoutage"
              incident_url: "/incidents/b/s"
      - eval_time: 70m
        alertname: SchoolnetVerdictFailed
        exp_alerts:
          - exp_labels: {{severity: info, board: b, school: s, connection: glas, rule_set: acm,
                          provider: kpn}}
            exp_annotations:
              summary: "Connection glas of s fails the acm rule set"
              description: "Over the verdict window, connection glas of school s (board b) does
                not deliver its contract by the acm rule set (verdict value 0: 1 pass, 0 fail).
                `schoolnet-collector verdicts --school b/s --rule-set acm --json` shows which
                part failed."
              runbook_url: "docs/alerts.md#schoolnetverdictfailed"
              incident_url: "/incidents/b/s"
      - eval_time: 20m
        alertname: SchoolnetAgentSilent
        exp_alerts: []
"""


@pytest.mark.parametrize("instances", [["c1:443"], ["c1:443", "c2:443"]])
def test_two_scrapes_of_one_collector_make_no_many_to_many_join(tmp_path: Path,
                                                               instances: list[str]) -> None:
    lines = []
    for instance in instances:
        target = f'job="schoolnet-collector",instance="{instance}"'
        for series, values in [
            ('schoolnet_school_in_session{board="b",school="s"}', "1x90"),
            ('schoolnet_board_rule_set_info{board="b",rule_set="acm"}', "1x90"),
            ('schoolnet_connection_info{board="b",school="s",connection="glas",provider="kpn",'
             'technology="fibre",role="main"}', "1x90"),
            ('schoolnet_verdict_pass{board="b",school="s",connection="glas",rule_set="acm"}', "0x90"),
            ('schoolnet_connectivity_outage_active{board="b",school="s",agent="pi",kind="isp"}', "1x90"),
            ('schoolnet_agent_last_report_timestamp_seconds{board="b",school="s",agent="pi"}', "0+60x90"),
        ]:
            labelled = series.replace("{", "{" + target + ",", 1)
            lines.append(f"      - series: '{labelled}'\n        values: '{values}'")
    result = run_promtool(tmp_path, TWO_SCRAPES.format(series="\n".join(lines)))
    assert result.returncode == 0, result.stdout + result.stderr
