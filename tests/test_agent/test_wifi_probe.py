"""The Wi-Fi probe: link records, scans as records of their own, privacy, and machines
without Wi-Fi. The source is replaced by recorded readings (there is no Wi-Fi hardware)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentSettings
from agent.daemon import enabled_probes
from agent.probes import ProbeContext
from agent.probes.wifi import WifiProbe
from agent.probes.wifi.networks import summarise_scan
from agent.probes.wifi.reading import LinkReading, ScanEntry
from agent.probes.wifi.source import NoWirelessInterface, Unavailable
from agent.wire import validate_record

SCHOOL_AP = "64:d1:54:68:93:ae"
LINK = LinkReading(source="iw-link", interface="wlan0", ssid="School", bssid=SCHOOL_AP,
                   signal_dbm=-61.0, noise_dbm=-95.0, frequency_hertz=5_180_000_000, channel=36,
                   band="5GHz", rx_bitrate_bits_per_second=702e6, tx_bitrate_bits_per_second=866.7e6,
                   tx_retries=976, tx_failed=0, beacon_loss=2, connected_seconds=233.0, phy_mode="VHT")
SCAN = [
    ScanEntry("iw-scan", SCHOOL_AP, "School", signal_dbm=-61.0, frequency_hertz=5_180_000_000,
              channel=36, band="5GHz", station_count=12, channel_utilization_ratio=0.4, associated=True),
    ScanEntry("iw-scan", "70:f0:96:d2:e0:62", "School", signal_dbm=-75.0, channel=1, band="2.4GHz",
              station_count=3),
    ScanEntry("iw-scan", "cc:db:93:d1:06:c0", "Jan's iPhone", signal_dbm=-50.0, channel=6, band="2.4GHz"),
    ScanEntry("iw-scan", "cc:db:93:d1:06:c1", "Bakery", signal_dbm=-80.0, channel=6, band="2.4GHz"),
    ScanEntry("iw-scan", "cc:db:93:d1:06:c2", "", signal_dbm=-85.0, channel=11, band="2.4GHz"),
]


class FakeSource:
    name = "iw"
    interface = "wlan0"

    def __init__(self, link: LinkReading = LINK, scan: list[ScanEntry] | Exception = SCAN) -> None:
        self._link = link
        self._scan = scan
        self.scans: list[bool] = []

    def link(self) -> LinkReading:
        return self._link

    def scan(self, trigger: bool) -> list[ScanEntry]:
        self.scans.append(trigger)
        if isinstance(self._scan, Exception):
            raise self._scan
        return list(self._scan)


def make_probe(tmp_path: Path, source: Any, **settings: Any) -> WifiProbe:
    values: dict[str, Any] = {"state_dir": tmp_path, **settings}
    context = ProbeContext(AgentSettings(**values), None, tmp_path)

    def opener(config: Any) -> Any:
        if isinstance(source, Exception):
            raise source
        return source

    return WifiProbe(context, opener=opener)


def as_record(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"stream_id": "0" * 32, "seq": 1, "kind": kind, "ok": True, "payload": payload,
            "clock": {"wall_time_seconds": 1.0, "boot_id": "b", "since_boot_seconds": 1.0,
                      "clock_synchronized": True}}


def test_a_run_records_the_link_and_a_scan_of_its_own(tmp_path: Path) -> None:
    probe = make_probe(tmp_path, FakeSource(), room="Lokaal 1.04")
    measurement = probe.measure()
    assert measurement.ok, measurement.error
    link = measurement.payload or {}
    assert link["signal_dbm"] == -61.0 and link["noise_dbm"] == -95.0
    assert link["frequency_hertz"] == 5_180_000_000 and link["band"] == "5GHz"
    assert link["tx_retries_total"] == 976 and link["beacon_loss_total"] == 2
    assert link["bssid"] == SCHOOL_AP and link["ssid"] == "School" and link["own_network"] is True
    assert (link["room"], link["room_name"]) == ("lokaal-1-04", "Lokaal 1.04")
    assert link["scan_error"] is None
    [event] = measurement.events
    assert event.kind == "wifi_scan"
    scan = event.payload
    assert [p["bssid"] for p in scan["access_points"]] == [SCHOOL_AP, "70:f0:96:d2:e0:62"]
    assert scan["access_points"][0]["station_count"] == 12
    assert scan["other_networks"] == 3 and scan["room"] == "lokaal-1-04"
    # Both records pass the collector's own validation, privacy walk included.
    validate_record(as_record("wifi", link))
    validate_record(as_record("wifi_scan", scan))


def test_other_networks_are_counted_per_channel_and_never_named(tmp_path: Path) -> None:
    scan = summarise_scan(SCAN, frozenset({"School"}))
    text = json.dumps(scan.model_dump())
    for secret in ("iPhone", "Bakery", "cc:db:93"):
        assert secret not in text
    channels = {(c.band, c.channel): (c.networks, c.strongest_signal_dbm) for c in scan.channels}
    assert channels == {("2.4GHz", 6): (2, -50.0), ("2.4GHz", 11): (1, -85.0)}


def test_a_link_to_a_network_not_the_schools_keeps_no_name_or_address(tmp_path: Path) -> None:
    hotspot = LinkReading(source="iw-link", interface="wlan0", ssid="Jan's iPhone",
                          bssid="cc:db:93:d1:06:c0", signal_dbm=-40.0)
    probe = make_probe(tmp_path, FakeSource(hotspot, []),
                       probes={"wifi": {"ssids": ["School"]}})
    payload = probe.measure().payload or {}
    assert payload["ssid"] is None and payload["bssid"] is None
    assert payload["own_network"] is False
    assert payload["signal_dbm"] == -40.0  # the radio values are the agent's own link


def test_an_ssid_that_spells_a_mac_address_is_dropped_not_sent(tmp_path: Path) -> None:
    odd = LinkReading(source="iw-link", interface="wlan0", ssid="AP-aa:bb:cc:dd:ee:ff",
                      bssid=SCHOOL_AP, signal_dbm=-50.0)
    payload = make_probe(tmp_path, FakeSource(odd, [])).measure().payload or {}
    assert payload["ssid"] is None
    validate_record(as_record("wifi", payload))


def test_scans_come_every_scan_interval_not_every_run(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("agent.probes.wifi.time.monotonic", lambda: clock[0])
    source = FakeSource()
    probe = make_probe(tmp_path, source, probes={"wifi": {"interval": "60s", "scan_interval": "15m",
                                                          "trigger_scan": False}})
    kinds = []
    for _ in range(16):
        kinds.append([event.kind for event in probe.measure().events])
        clock[0] += 60
    assert kinds[0] == ["wifi_scan"] and kinds[15] == ["wifi_scan"]
    assert all(k == [] for k in kinds[1:14])
    assert source.scans == [False, False]  # trigger_scan = false: cached results only


def test_a_failed_scan_is_said_in_the_link_record_which_still_counts(tmp_path: Path) -> None:
    source = FakeSource(scan=Unavailable("iw dev wlan0 scan failed: Operation not permitted (-1)"))
    measurement = make_probe(tmp_path, source).measure()
    assert measurement.ok
    assert measurement.events == ()
    assert "Operation not permitted" in (measurement.payload or {})["scan_error"]


def test_not_connected_is_a_measurement_with_no_radio_values(tmp_path: Path) -> None:
    idle = LinkReading(source="iw-link", interface="wlan0", connected=False)
    measurement = make_probe(tmp_path, FakeSource(idle, [])).measure()
    assert measurement.ok
    payload = measurement.payload or {}
    assert payload["connected"] is False and payload["signal_dbm"] is None
    assert payload["own_network"] is None


def test_a_source_that_cannot_read_fails_the_run_with_its_reason(tmp_path: Path) -> None:
    probe = make_probe(tmp_path, Unavailable("iw is not installed"))
    measurement = probe.measure()
    assert not measurement.ok
    assert measurement.error == "iw is not installed"


def test_auto_leaves_the_probe_out_on_a_machine_without_wifi(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    def no_wifi(config: Any) -> Any:
        raise NoWirelessInterface("no wireless interface on this machine")

    monkeypatch.setattr("agent.probes.wifi.open_source", no_wifi)
    for variable in ("SCHOOLNET_PROBES__WIFI__ENABLED", "SCHOOLNET_PROBES__WIFI__TRIGGER_SCAN"):
        monkeypatch.delenv(variable, raising=False)
    auto = AgentSettings(state_dir=tmp_path)
    with caplog.at_level("INFO", "schoolnet.agent"):
        assert "wifi" not in enabled_probes(auto, None)
    assert "no wireless interface on this machine" in caplog.text
    # Asked for explicitly, it runs, and each run says why it cannot measure.
    forced = AgentSettings(state_dir=tmp_path, probes={"wifi": {"enabled": True}})
    probe, _ = enabled_probes(forced, None)["wifi"]
    measurement = probe.measure()
    assert not measurement.ok and measurement.error == "no wireless interface on this machine"


# ---- review of issue 5: failure paths, wire bounds, the machine's own address -------------

class BuggySource(FakeSource):
    """A source with a bug: it raises what is not Unavailable."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self._failing = failing

    def link(self) -> LinkReading:
        if self._failing == "link":
            raise KeyError("signal")
        return super().link()

    def scan(self, trigger: bool) -> list[ScanEntry]:
        if self._failing == "scan":
            raise IndexError("list index out of range")
        return super().scan(trigger)


def test_a_bug_in_the_scan_costs_the_scan_not_the_link(tmp_path: Path) -> None:
    measurement = make_probe(tmp_path, BuggySource("scan")).measure()
    assert measurement.ok, measurement.error
    payload = measurement.payload or {}
    assert payload["signal_dbm"] == -61.0
    assert payload["scan_error"] == "IndexError: list index out of range"
    assert measurement.events == ()


def test_a_bug_in_the_link_is_a_failed_measurement(tmp_path: Path) -> None:
    measurement = make_probe(tmp_path, BuggySource("link")).measure()
    assert not measurement.ok and measurement.error == "KeyError: 'signal'"


def test_a_bug_when_opening_the_source_does_not_stop_the_agent_starting(tmp_path: Path) -> None:
    probe = make_probe(tmp_path, RuntimeError("unexpected reply"))
    assert probe.not_applicable() is None  # runs, and each run says what went wrong
    measurement = probe.measure()
    assert not measurement.ok and measurement.error == "RuntimeError: unexpected reply"


def test_a_long_or_multi_line_scan_error_is_bounded_not_the_loss_of_the_link(tmp_path: Path) -> None:
    source = FakeSource(scan=Unavailable("nmcli failed: " + "x" * 1500 + "\nsecond line"))
    measurement = make_probe(tmp_path, source).measure()
    assert measurement.ok, measurement.error
    scan_error = (measurement.payload or {})["scan_error"]
    assert len(scan_error) <= 1000 and "\n" not in scan_error
    validate_record(as_record("wifi", measurement.payload or {}))


def test_addresses_in_a_recorded_reason_are_hidden(tmp_path: Path) -> None:
    # The collector refuses a whole record with a MAC-shaped value outside a BSSID field.
    quoted = Unavailable("nmcli failed: Error: no access point with BSSID cc:db:93:d1:06:c0 on wlan0")
    scanned = make_probe(tmp_path, FakeSource(scan=quoted)).measure()
    assert "cc:db:93" not in (scanned.payload or {})["scan_error"]
    validate_record(as_record("wifi", scanned.payload or {}))
    failed = make_probe(tmp_path, quoted).measure()
    assert not failed.ok and "cc:db:93" not in (failed.error or "")
    assert "no access point with BSSID" in (failed.error or "")


def test_a_usb_adapters_name_does_not_carry_its_mac_into_records(tmp_path: Path) -> None:
    # systemd names a USB Wi-Fi adapter after its MAC address: wlx + 12 hex digits.
    class Dongle(FakeSource):
        interface = "wlx00c0ca9a1b2c"

    link = dataclasses.replace(LINK, interface="wlx00c0ca9a1b2c")
    measurement = make_probe(tmp_path, Dongle(link)).measure()
    [event] = measurement.events
    for payload in (measurement.payload or {}, event.payload):
        assert payload["interface"] == "wlx<mac>"
        assert "00c0ca9a1b2c" not in json.dumps(payload)
    down = make_probe(tmp_path, Unavailable("wlx00c0ca9a1b2c is down (bring it up: ip link set "
                                            "wlx00c0ca9a1b2c up)")).measure()
    assert down.error == "wlx<mac> is down (bring it up: ip link set wlx<mac> up)"


@pytest.mark.parametrize("odd", [
    {"signal_dbm": 31.0}, {"noise_dbm": -200.0}, {"channel": 300}, {"signal_percent": 150.0},
    {"phy_mode": "802.11" + "x" * 40}, {"tx_retries": -1},
    {"rx_bitrate_bits_per_second": float("inf")},
])
def test_a_value_the_wire_refuses_is_dropped_not_the_whole_reading(tmp_path: Path,
                                                                   odd: dict[str, Any]) -> None:
    link = dataclasses.replace(LINK, **odd)
    measurement = make_probe(tmp_path, FakeSource(link, [])).measure()
    assert measurement.ok, measurement.error
    payload = measurement.payload or {}
    wire_name = {"tx_retries": "tx_retries_total"}
    for name in odd:
        assert payload[wire_name.get(name, name)] is None
    assert payload["frequency_hertz"] == 5_180_000_000  # the rest of the reading stands
    validate_record(as_record("wifi", payload))


def test_a_long_interface_name_is_shortened_to_fit(tmp_path: Path) -> None:
    # The WLAN API's adapter description stands in where Windows gives no alias.
    adapter = "Killer(R) Wi-Fi 6E AX1675i 160MHz Wireless Network Adapter (211NGW)"
    link = dataclasses.replace(LINK, interface=adapter)
    payload = make_probe(tmp_path, FakeSource(link, [])).measure().payload or {}
    assert payload["interface"] == adapter[:64]


def test_scan_entries_the_wire_refuses_lose_the_value_not_the_scan(tmp_path: Path) -> None:
    scan = [ScanEntry("nl80211", SCHOOL_AP, "School", signal_dbm=40.0, channel=36, station_count=70000),
            ScanEntry("nl80211", "cc:db:93:d1:06:c1", "Bakery", signal_dbm=-80.0, channel=300),
            *SCAN[1:]]
    measurement = make_probe(tmp_path, FakeSource(scan=scan)).measure()
    [event] = measurement.events
    points = event.payload["access_points"]
    assert points[0]["bssid"] == "70:f0:96:d2:e0:62"  # the one with a signal sorts first
    school = next(p for p in points if p["bssid"] == SCHOOL_AP)
    assert school["signal_dbm"] is None and school["station_count"] is None and school["channel"] == 36
    assert event.payload["other_networks"] == 4
    validate_record(as_record("wifi_scan", event.payload))
