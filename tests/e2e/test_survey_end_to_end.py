"""Surveys end to end: a teacher's capture imported by the real agent command into a real
collector, and the coordinator's walk (answers on stdin, a fake sampler) delivered to it;
each room's grade then shows on /metrics."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.processes import AgentProcess, CollectorProcess
from support.wifi_samples import sample

from agent import cli
from agent.probes.wifi.reading import LinkReading, ScanEntry

# probes.wifi.ssids: the school's networks, as the captures name them (a survey must know them).
SCHOOL_NETWORKS = """
[probes.wifi]
ssids = ["HOME5", "SomeSSID", "xxxxxxx", "School"]
"""


def metric_samples(collector: CollectorProcess, name: str) -> dict[str, float]:
    """room -> value of one per-room family on the collector's /metrics page."""
    page = collector.metrics().text
    return {s.labels["room"]: s.value for family in text_string_to_metric_families(page)
            for s in family.samples if s.name == name}


def capture(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_imported_captures_become_room_grades_on_metrics(
    tmp_path: Path, collector: CollectorProcess, enrolled_agent: Callable[[str], AgentProcess],
) -> None:
    agent = enrolled_agent(SCHOOL_NETWORKS)
    # A Linux laptop at -44 dBm (video), a Windows laptop at 53 % = -73.5 dBm (poor).
    iw_link = capture(tmp_path, "iw.txt", sample("linux_iw_dev_link.txt", 0))
    netsh = capture(tmp_path, "netsh.txt", sample("windows_netsh_show_interfaces.txt", 0))
    done = agent.cli("survey", "import", str(iw_link), "--room", "Lokaal 1.04")
    assert "1 survey record delivered" in done.stdout
    assert "grade video" in done.stdout
    agent.cli("survey", "import", str(netsh), "--room", "Gym")
    assert agent.status()["outbox_records"] == 0

    grades = metric_samples(collector, "schoolnet_wifi_room_coverage_grade")
    assert grades == {"lokaal-1-04": 3, "gym": 1}
    signals = metric_samples(collector, "schoolnet_wifi_room_signal_dbm")
    assert signals == {"lokaal-1-04": -44, "gym": -73.5}
    names = collector.query("SELECT slug, name FROM rooms ORDER BY slug")
    assert names == [("gym", "Gym"), ("lokaal-1-04", "Lokaal 1.04")]


def test_import_json_prints_the_parsed_record_and_sends_nothing(
    tmp_path: Path, collector: CollectorProcess, enrolled_agent: Callable[[str], AgentProcess],
) -> None:
    agent = enrolled_agent(SCHOOL_NETWORKS)
    netsh = capture(tmp_path, "netsh.txt", sample("windows_netsh_show_interfaces.txt", 1))  # de-DE
    printed = json.loads(agent.cli("survey", "import", str(netsh), "--room", "B 204", "--json").stdout)
    assert printed["signal_dbm"] == -78.5 and printed["signal_percent"] == 43
    assert printed["signal_converted"] is True
    assert printed["channel"] == 116 and printed["frequency_hertz"] == 5_580_000_000
    assert printed["rx_bitrate_bits_per_second"] == 300e6
    assert printed["tx_bitrate_bits_per_second"] == 300e6
    assert printed["noise_dbm"] is None and printed["bssid"] is None  # redacted by the poster
    assert printed["room"] == "b-204" and printed["grade"] == "poor"
    assert agent.status()["outbox_records"] == 0
    assert collector.query("SELECT count(*) FROM records WHERE kind = 'survey'") == [(0,)]


def test_an_unknown_capture_is_refused_naming_the_formats_accepted(
    tmp_path: Path, collector: CollectorProcess, enrolled_agent: Callable[[str], AgentProcess],
) -> None:
    agent = enrolled_agent(SCHOOL_NETWORKS)
    odd = capture(tmp_path, "odd.txt", "Ethernet adapter Ethernet:\n   Media State : Media disconnected\n")
    result = agent.cli("survey", "import", str(odd), "--room", "Gym", check=False)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "not the output of a Wi-Fi tool" in line and "netsh wlan show interfaces" in line
    assert "iw dev IF link" in line and "system_profiler SPAirPortDataType" in line
    assert agent.status()["outbox_records"] == 0
    missing = agent.cli("survey", "import", str(tmp_path / "nope.txt"), "--room", "Gym", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


class WalkSource:
    """A laptop carried from room to room: each room's readings in turn."""

    name = "fake"
    interface = "wlan0"

    def __init__(self, signals: list[float]) -> None:
        self.signals = signals

    def link(self) -> LinkReading:
        return LinkReading(source="iw-link", interface="wlan0", ssid="School", bssid="04:f0:21:32:3f:d2",
                           signal_dbm=self.signals.pop(0), channel=36, band="5GHz")

    def scan(self, trigger: bool) -> list[ScanEntry]:
        return [ScanEntry("iw-scan", "04:f0:21:32:3f:d2", "School", signal_dbm=-60, channel=36,
                          band="5GHz", station_count=9)]


def test_the_walk_delivers_each_room_and_the_grades_show_on_metrics(
    collector: CollectorProcess, enrolled_agent: Callable[[str], AgentProcess],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    agent = enrolled_agent(SCHOOL_NETWORKS)
    source = WalkSource([-60, -62, -61, -70, -71, -69])

    def open_fake(config: Any) -> WalkSource:
        return source

    monkeypatch.setattr("agent.probes.wifi.source.open_source", open_fake)
    monkeypatch.setattr("sys.stdin", io.StringIO("Library\nRoom 12\n\n"))
    for variable, value in agent.env.items():
        if variable.startswith("SCHOOLNET_"):
            monkeypatch.setenv(variable, value)
    status = cli.main(["--config", str(agent.config_path), "survey", "--samples", "3", "--every", "0s"])
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "2 survey records delivered" in out.out
    assert "Library: -61 dBm" in out.err and "Room 12: -70 dBm" in out.err
    assert metric_samples(collector, "schoolnet_wifi_room_coverage_grade") == {"library": 3, "room-12": 2}
    [(payload,)] = collector.query("SELECT payload FROM records WHERE kind = 'survey' "
                                   "AND json_extract(payload, '$.room') = 'library'")
    stored = json.loads(payload)
    assert stored["method"] == "walk" and stored["samples"] == 3
    assert stored["access_points"][0]["station_count"] == 9


def test_the_schools_network_names_held_by_the_collector_reach_the_survey(
    tmp_path: Path, collector: CollectorProcess, enrolled_agent: Callable[[str], AgentProcess],
) -> None:
    agent = enrolled_agent("")  # no ssids of its own
    collector.cli("agent-settings", "set", "--school", "test-board/test-school",
                  'probes.wifi.ssids=["HOME5"]')
    iw_link = capture(tmp_path, "iw.txt", sample("linux_iw_dev_link.txt", 0))
    done = agent.cli("survey", "import", str(iw_link), "--room", "Lokaal 1.04")
    assert "grade video" in done.stdout
    [(payload,)] = collector.query("SELECT payload FROM records WHERE kind = 'survey'")
    assert json.loads(payload)["ssid"] == "HOME5"
