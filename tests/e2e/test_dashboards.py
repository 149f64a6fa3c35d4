"""Every query of every Grafana dashboard, run against a real Prometheus that scraped a real
collector with the recording rules of deploy/prometheus/rules loaded.

Grafana cannot be installed here, so the dashboards are proven through what they ask: a
scenario of one board with two schools (contracts imported with `schoolnet-collector import
contracts`, one enrolled agent per school measuring its connectivity for real, and bandwidth,
device census, Wi-Fi, survey and outage records delivered through /api/v1/ingest with each
agent's own credential), then every panel's and every variable's query, with the template
variables set to the scenario's values, must return data from Prometheus's HTTP API. A panel
that by design shows only problems is marked `allow_empty` in the generator, with its reason,
and must then at least be a valid query."""

from __future__ import annotations

import datetime
import gzip
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.processes import (
    LOOPBACK_CONNECTIVITY,
    AgentProcess,
    CollectorProcess,
    PrometheusProcess,
    wait_until,
)
from support.records import at, new_stream, record

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
DASHBOARDS = ROOT / "grafana" / "dashboards"
if str(ROOT) not in sys.path:  # the generator lives beside the packages, not in them
    sys.path.insert(0, str(ROOT))

from grafana.build import allow_empty, generated  # noqa: E402

pytestmark = pytest.mark.e2e

BOARD = "test-board"
SCHOOLS = ("test-school", "second-school")
MBIT = 125_000  # bytes per second in one Mbit/s


def contracts_csv() -> str:
    """Two schools of one board on lines of two providers and technologies, both in session
    around now every day (hours in UTC, clipped to the day), so the school-hours figures have
    data whenever the test runs. The first states all four speeds, the second only the
    advertised ones (as a 4G contract often does)."""
    now = datetime.datetime.now(datetime.UTC)
    minutes = now.hour * 60 + now.minute
    start, end = max(0, minutes - 180), min(23 * 60 + 59, minutes + 180)
    hours = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    return (
        "board,school,timezone,school_hours,school_days,connection,provider,technology,role,"
        "contract_start,download_advertised_mbps,upload_advertised_mbps,download_minimum_mbps,"
        "download_normal_mbps,download_maximum_mbps,upload_minimum_mbps,upload_normal_mbps\n"
        f"{BOARD},{SCHOOLS[0]},UTC,{hours},mon-sun,glas,KPN Zakelijk,fibre,main,2020-01-01,"
        "1000,1000,500,900,1000,500,900\n"
        f"{BOARD},{SCHOOLS[1]},UTC,{hours},mon-sun,mobiel,Vodafone,4g,main,2020-01-01,"
        "100,20,,,,,\n"
    )


def post(
    collector: CollectorProcess,
    agent: AgentProcess,
    records: list[dict[str, Any]],
    given_up: list[dict[str, Any]] | None = None,
) -> None:
    """One gzip batch to /api/v1/ingest with the agent's own credential; all accepted."""
    credential = json.loads((agent.state_dir / "credential.json").read_text())["credential"]
    body = {
        "sent_at_seconds": time.time(),
        "health": {"version": "0.1.0", "outbox_records": 3, "outbox_bytes": 2048, "given_up": given_up or []},
        "records": records,
    }
    answer = httpx.post(
        f"{collector.url}/api/v1/ingest",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"Authorization": f"Bearer {credential}", "Content-Encoding": "gzip"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert {r["status"] for r in answer.json()["results"]} == {"accepted"}, answer.text


def bandwidth(
    seq: int, stream: str, when: float, contract_mbps: tuple[float, float], share: float, devices: int
) -> dict[str, Any]:
    """A valid test of both directions at ``share`` of the advertised speed."""
    return at(
        record(
            seq,
            stream,
            "bandwidth",
            payload={
                "backend": "http",
                "server": "https://speed.example.org",
                "streams": 4,
                "download_bytes_per_second": share * contract_mbps[0] * MBIT,
                "upload_bytes_per_second": share * contract_mbps[1] * MBIT,
                "download_bytes": 300_000_000,
                "upload_bytes": 200_000_000,
                "idle_latency_seconds": 0.011,
                "download_loaded_latency_seconds": 0.045,
                "upload_loaded_latency_seconds": 0.060,
                "contract_download_bytes_per_second": contract_mbps[0] * MBIT,
                "contract_upload_bytes_per_second": contract_mbps[1] * MBIT,
                "invalid_reasons": [],
                "leased": True,
                "concurrent_devices": devices,
            },
        ),
        when,
    )


def census(seq: int, stream: str, when: float, devices: int) -> dict[str, Any]:
    return at(
        record(
            seq,
            stream,
            "users",
            payload={
                "window_seconds": 300.0,
                "concurrent_devices": devices,
                "daily_devices": devices * 3,
                "hour_peak_devices": devices + 10,
                "sources": [
                    {
                        "source": "arp",
                        "devices": devices,
                        "daily_devices": devices * 3,
                        "duration_seconds": 2.5,
                        "rounds": 3,
                        "requests": 700,
                        "error": None,
                    }
                ],
            },
        ),
        when,
    )


def wifi(seq: int, stream: str, when: float, room: str, signal: float) -> dict[str, Any]:
    return at(
        record(
            seq,
            stream,
            "wifi",
            payload={
                "source": "nl80211",
                "connected": True,
                "interface": "wlan0",
                "ssid": "SchoolNet",
                "bssid": "64:d1:54:68:93:ae",
                "signal_dbm": signal,
                "signal_percent": None,
                "signal_converted": False,
                "noise_dbm": None,
                "frequency_hertz": 5180000000,
                "channel": 36,
                "band": "5GHz",
                "channel_width_hertz": 80000000,
                "rx_bitrate_bits_per_second": 433300000.0,
                "tx_bitrate_bits_per_second": 390000000.0,
                "phy_mode": "802.11ac",
                "room": room,
                "room_name": room.title(),
                "own_network": True,
                "tx_retries_total": 1234,
                "tx_failed_total": 5,
                "beacon_loss_total": 2,
                "connected_seconds": 3600.0,
                "scan_error": None,
            },
        ),
        when,
    )


def survey(seq: int, stream: str, when: float, room: str, signal: float) -> dict[str, Any]:
    return at(
        record(
            seq,
            stream,
            "survey",
            payload={
                "source": "netsh",
                "connected": True,
                "ssid": "SchoolNet",
                "bssid": "64:d1:54:68:93:ae",
                "signal_dbm": signal,
                "signal_percent": None,
                "signal_converted": False,
                "noise_dbm": None,
                "frequency_hertz": 5180000000,
                "channel": 36,
                "band": "5GHz",
                "channel_width_hertz": None,
                "rx_bitrate_bits_per_second": 175500000.0,
                "tx_bitrate_bits_per_second": 175500000.0,
                "phy_mode": "802.11ac",
                "room": room,
                "room_name": room.title(),
                "method": "import",
                "samples": 1,
                "scanned": False,
                "signal_min_dbm": signal,
                "signal_max_dbm": signal,
                "access_points": [],
                "channels": [],
                "other_networks": None,
            },
        ),
        when,
    )


def outage(seq: int, stream: str, start: float, seconds: float) -> dict[str, Any]:
    return at(
        record(
            seq,
            stream,
            "outage",
            payload={
                "outage_kind": "isp",
                "start_seconds": start,
                "end_seconds": start + seconds,
                "duration_seconds": seconds,
                "interrupted": False,
                "detail": "no reply from 127.0.0.1, ::1",
            },
        ),
        start + seconds,
    )


def scenario(collector: CollectorProcess, agents: list[AgentProcess]) -> None:
    """The first school: 12 valid tests at 40 % of its contract over 4 days, each more than an
    hour from the next (enough for the ACM rule set to judge: 10 tests on 3 days, one an hour),
    an outage that ended, a census, the agent in room b-204 and a survey of the gym. The
    second: 3 tests at 90 % today (not enough data), a census and the agent in room lokaal-1.
    The first agent also reports records it evicted."""
    now = time.time()
    stream = new_stream()
    tests = [
        bandwidth(i + 1, stream, now - 86400 * (i // 3) - 300 - 3700 * (i % 3), (1000, 1000), 0.4, 120 + i)
        for i in range(12)
    ]
    post(
        collector,
        agents[0],
        [
            *tests,
            outage(13, stream, now - 900, 45),
            census(14, stream, now - 120, 131),
            wifi(15, stream, now - 60, "b-204", -58.0),
            survey(16, stream, now - 300, "gym", -75.0),
        ],
        given_up=[{"stream_id": stream, "first": 100, "last": 140, "reason": "evicted"}],
    )
    stream = new_stream()
    post(
        collector,
        agents[1],
        [
            *(bandwidth(i + 1, stream, now - 600 * (i + 1), (100, 20), 0.9, 40) for i in range(3)),
            census(4, stream, now - 120, 38),
            wifi(5, stream, now - 60, "lokaal-1", -70.0),
        ],
    )


# What Grafana puts in place of its variables; the scenario's values, and for the built-in
# intervals what Grafana would choose for a few minutes of a 1-second scrape.
VARIABLES = {"board": BOARD, "school": SCHOOLS[0], "agent": "agent-0", "room": "(b-204|gym)"}
BUILTINS = {"__rate_interval": "30s", "__interval": "5s", "__range": "2m"}
LABEL_VALUES = re.compile(r"^label_values\((?P<match>.+),\s*(?P<label>\w+)\)$")


def substitute(expr: str) -> str:
    for name, value in {**BUILTINS, **VARIABLES}.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in expr, f"a variable the test does not know in {expr}"
    return expr


def fast_rules(workdir: Path) -> list[Path]:
    """The rule files with their groups evaluated every second instead of every minute."""
    copies = []
    for path in sorted(RULES.glob("*.yml")):
        copy = workdir / path.name
        copy.write_text(path.read_text().replace("interval: 1m", "interval: 1s"))
        copies.append(copy)
    return copies


def panel_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard uid, panel title, refId, expr) of every panel of every generated dashboard."""
    return [
        (board["uid"], panel["title"], target["refId"], target["expr"])
        for board in map(json.loads, generated().values())
        for panel in board["panels"]
        for target in panel["targets"]
    ]


def variable_queries() -> list[tuple[str, str, str]]:
    return [
        (board["uid"], variable["name"], variable["query"]["query"])
        for board in map(json.loads, generated().values())
        for variable in board["templating"]["list"]
        if variable["type"] == "query"
    ]


def test_every_dashboard_query_returns_data(tmp_path: Path, collector: CollectorProcess) -> None:
    csv = tmp_path / "contracts.csv"
    csv.write_text(contracts_csv())
    collector.cli("import", "contracts", str(csv))
    agents = []
    try:
        for number, school in enumerate(SCHOOLS):
            workdir = tmp_path / f"agent{number}"
            workdir.mkdir()
            agent = AgentProcess(workdir, LOOPBACK_CONNECTIVITY)
            agents.append(agent)
            agent.cli(
                "enroll",
                "--collector",
                collector.url,
                "--code",
                collector.enroll_code(BOARD, school),
                "--name",
                f"agent-{number}",
            )
            agent.cli("once")  # connectivity for real, on loopback
        scenario(collector, agents)
    finally:
        for agent in agents:
            agent.stop()

    rule_files = fast_rules(tmp_path)
    prometheus = PrometheusProcess(
        tmp_path, f"127.0.0.1:{collector.port}", token_file=collector.metrics_token_file()
    )
    prometheus.config_path.write_text(
        prometheus.config_path.read_text() + "rule_files:\n" + "".join(f"  - {p}\n" for p in rule_files)
    )
    prometheus.start()
    try:
        # The recording rules of the last group have run on scraped data, and a few more
        # scrapes make rate() and increase() have two samples to compare.
        wait_until(
            lambda: prometheus.query("agent:schoolnet_agent_last_report_age_seconds:max"),
            30,
            "the recording rules on scraped data",
        )
        time.sleep(4)
        end = time.time()
        empty, failed = [], []
        exempt = allow_empty()
        for uid, title, ref, expr in panel_queries():
            answer = httpx.get(
                f"{prometheus.url}/api/v1/query_range",
                timeout=10,
                params={"query": substitute(expr), "start": end - 120, "end": end, "step": 5},
            ).json()
            if answer.get("status") != "success":
                failed.append((uid, title, ref, answer.get("error")))
            elif not answer["data"]["result"] and (uid, title) not in exempt:
                empty.append((uid, title, ref, substitute(expr)))
        assert failed == [], "queries Prometheus refused"
        assert empty == [], "panels without data from the scenario"

        for uid, name, query in variable_queries():
            match = LABEL_VALUES.match(substitute(query))
            assert match, f"{uid} variable {name}: not a label_values(...) query: {query}"
            answer = httpx.get(
                f"{prometheus.url}/api/v1/label/{match['label']}/values",
                timeout=10,
                params={"match[]": match["match"], "start": end - 120, "end": end},
            ).json()
            assert answer["status"] == "success", (uid, name, answer)
            wanted = VARIABLES[name].strip("()").split("|")
            assert set(wanted) <= set(answer["data"]), (uid, name, answer["data"])
        # The overview lists both schools of the board, the second too.
        [table] = [
            t for t in panel_queries() if t[0] == "schoolnet-overview" and t[1] == "Schools" and t[2] == "A"
        ]
        rows = prometheus.query(substitute(table[3]).replace(f'school=~"{SCHOOLS[0]}"', 'school=~".+"'))
        assert {row["metric"]["school"] for row in rows} == set(SCHOOLS)
    finally:
        prometheus.stop()
