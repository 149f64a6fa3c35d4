"""Wi-Fi of each agent on /metrics: the latest link and the latest scan, through the real
ingest path, with absent values absent and no network named but the school's own."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
from prometheus_client import generate_latest
from support.records import at, deliver, metric_values, new_stream, page_samples, record
from support.tools import require_tool

from agent.wire import WifiAccessPoint, WifiChannel, WifiPayload, WifiScanPayload

pytestmark = pytest.mark.both_stores

AGENT = {"board": "test-board", "school": "test-school", "agent": "pi"}
IN_ROOM = {**AGENT, "room": "lokaal-12"}
# A school's own access point: a locally administered address (no vendor's), as a test value.
OWN_BSSID = "02:11:22:33:44:55"


def link(**changes: Any) -> dict[str, Any]:
    """A Raspberry Pi's link as nl80211 reports it: every value a driver can give."""
    values: dict[str, Any] = {
        "source": "nl80211", "connected": True, "interface": "wlan0", "ssid": "SchoolNet",
        "bssid": OWN_BSSID, "signal_dbm": -58.0, "noise_dbm": -92.0,
        "frequency_hertz": 5_180_000_000, "channel": 36, "band": "5GHz",
        "channel_width_hertz": 80_000_000, "rx_bitrate_bits_per_second": 433_300_000.0,
        "tx_bitrate_bits_per_second": 390_000_000.0, "phy_mode": "802.11ac",
        "room": "lokaal-12", "room_name": "Lokaal 12", "own_network": True,
        "tx_retries_total": 1234, "tx_failed_total": 5, "beacon_loss_total": 2,
        "connected_seconds": 3600.0}
    values.update(changes)
    return WifiPayload(**values).model_dump(mode="json")


def scan(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "interface": "wlan0", "source": "nl80211", "triggered": True, "room": "lokaal-12",
        "room_name": "Lokaal 12",
        "access_points": [
            WifiAccessPoint(bssid=OWN_BSSID, ssid="SchoolNet", signal_dbm=-58.0,
                            frequency_hertz=5_180_000_000, channel=36, band="5GHz",
                            station_count=17, channel_utilization_ratio=0.31, associated=True),
            WifiAccessPoint(bssid="02:11:22:33:44:66", ssid="SchoolNet", signal_dbm=-71.0,
                            frequency_hertz=2_437_000_000, channel=6, band="2.4GHz"),
        ],
        "channels": [WifiChannel(band="2.4GHz", channel=6, networks=4, strongest_signal_dbm=-60.0),
                     WifiChannel(band="5GHz", channel=36, networks=1)],
        "other_networks": 5}
    values.update(changes)
    return WifiScanPayload(**values).model_dump(mode="json")





def test_the_latest_link_in_full(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    older = at(record(1, stream, "wifi", payload=link(signal_dbm=-80.0, tx_retries_total=10)), now - 120)
    newest = at(record(2, stream, "wifi", payload=link()), now - 60)
    assert deliver(site, newest, older) == ["accepted", "accepted"]  # in any order
    value = metric_values(site)
    assert value("schoolnet_wifi_connected", IN_ROOM) == 1
    assert value("schoolnet_wifi_signal_dbm", IN_ROOM) == -58.0
    assert value("schoolnet_wifi_noise_dbm", IN_ROOM) == -92.0
    assert value("schoolnet_wifi_frequency_hertz", IN_ROOM) == 5_180_000_000
    # The tools' bits per second in the base unit of the page.
    assert value("schoolnet_wifi_receive_bitrate_bytes_per_second", IN_ROOM) == 433_300_000.0 / 8
    assert value("schoolnet_wifi_transmit_bitrate_bytes_per_second", IN_ROOM) == 390_000_000.0 / 8
    assert value("schoolnet_wifi_transmit_retries_total", IN_ROOM) == 1234
    assert value("schoolnet_wifi_transmit_failed_total", IN_ROOM) == 5
    assert value("schoolnet_wifi_beacon_loss_total", IN_ROOM) == 2
    assert value("schoolnet_wifi_info", {
        **IN_ROOM, "interface": "wlan0", "ssid": "SchoolNet", "bssid": OWN_BSSID, "band": "5GHz",
        "channel": "36", "phy_mode": "802.11ac", "source": "nl80211", "signal_converted": "false"}) == 1
    # The core name dashboards rely on, with the room: and only the agent's own series.
    assert value("schoolnet_wifi_signal_dbm", {**AGENT, "room": ""}) is None
    assert value("schoolnet_probe_runs_total", {**AGENT, "probe": "wifi"}) == 2


def test_values_a_tool_does_not_give_are_absent_not_zero(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    # Windows netsh: a percentage converted to dBm, no noise, no counters, no room set.
    converted = link(source="netsh", signal_dbm=-61.0, signal_percent=78.0, signal_converted=True,
                     noise_dbm=None, tx_retries_total=None, tx_failed_total=None,
                     beacon_loss_total=None, room=None, room_name=None, phy_mode=None)
    deliver(site, at(record(1, stream, "wifi", payload=converted), now - 60))
    value = metric_values(site)
    no_room = {**AGENT, "room": ""}
    assert value("schoolnet_wifi_signal_dbm", no_room) == -61.0
    for name in ("schoolnet_wifi_noise_dbm", "schoolnet_wifi_transmit_retries_total",
                 "schoolnet_wifi_transmit_failed_total", "schoolnet_wifi_beacon_loss_total"):
        assert value(name, no_room) is None, name
    assert value("schoolnet_wifi_info", {
        **no_room, "interface": "wlan0", "ssid": "SchoolNet", "bssid": OWN_BSSID, "band": "5GHz",
        "channel": "36", "phy_mode": "", "source": "netsh", "signal_converted": "true"}) == 1

    # Not associated: connected 0 and no radio values at all (not a signal of 0 dBm).
    deliver(site, at(record(2, stream, "wifi", payload=WifiPayload(
        source="iw", connected=False, interface="wlan0", room="lokaal-12").model_dump(mode="json")), now))
    value = metric_values(site)
    assert value("schoolnet_wifi_connected", IN_ROOM) == 0
    for name in ("schoolnet_wifi_signal_dbm", "schoolnet_wifi_frequency_hertz",
                 "schoolnet_wifi_receive_bitrate_bytes_per_second"):
        assert value(name, IN_ROOM) is None, name
    assert value("schoolnet_wifi_signal_dbm", no_room) is None  # the older run is replaced
    assert value("schoolnet_wifi_info", {
        **IN_ROOM, "interface": "wlan0", "ssid": "", "bssid": "", "band": "", "channel": "",
        "phy_mode": "", "source": "iw", "signal_converted": "false"}) == 1


def test_values_sent_as_text_are_read_as_they_were_validated(site) -> None:  # type: ignore[no-untyped-def]
    """Validation is lax ("true" passes for a flag, "36" or 36.0 for a channel) and the store
    keeps what the agent sent: the page reads those values as validated, so one access
    point keeps one label set whatever JSON its agent wrote."""
    stream = new_stream()
    now = time.time()
    texts = link(signal_dbm=-61.0)
    texts.update(connected="true", signal_converted="true", signal_dbm="-61", channel="36")
    scanned = scan()
    scanned["access_points"][0]["channel"] = 36.0
    scanned["channels"][0]["channel"] = "06"
    assert deliver(site, at(record(1, stream, "wifi", payload=texts), now - 60),
                   at(record(2, stream, "wifi_scan", payload=scanned), now - 60)) == ["accepted"] * 2
    value = metric_values(site)
    assert value("schoolnet_wifi_connected", IN_ROOM) == 1
    assert value("schoolnet_wifi_signal_dbm", IN_ROOM) == -61.0
    assert value("schoolnet_wifi_info", {
        **IN_ROOM, "interface": "wlan0", "ssid": "SchoolNet", "bssid": OWN_BSSID, "band": "5GHz",
        "channel": "36", "phy_mode": "802.11ac", "source": "nl80211", "signal_converted": "true"}) == 1
    own = {**IN_ROOM, "bssid": OWN_BSSID, "ssid": "SchoolNet", "band": "5GHz", "channel": "36"}
    assert value("schoolnet_wifi_access_point_signal_dbm", own) == -58.0
    assert value("schoolnet_wifi_channel_networks", {**IN_ROOM, "band": "2.4GHz", "channel": "6"}) == 4


def test_twin_access_points_show_the_first_listed_only(site) -> None:  # type: ignore[no-untyped-def]
    """Two access points a scan cannot tell apart are one series set, all from the first
    listed: not the signal of one beside the station count of the other."""
    stream = new_stream()
    twins = [WifiAccessPoint(ssid="SchoolNet", signal_dbm=-60.0, channel=11, band="2.4GHz"),
             WifiAccessPoint(ssid="SchoolNet", signal_dbm=-75.0, channel=11, band="2.4GHz",
                             station_count=30, channel_utilization_ratio=0.9)]
    deliver(site, record(1, stream, "wifi_scan", payload=scan(access_points=twins)))
    value = metric_values(site)
    twin = {**IN_ROOM, "bssid": "", "ssid": "SchoolNet", "band": "2.4GHz", "channel": "11"}
    assert value("schoolnet_wifi_access_point_signal_dbm", twin) == -60.0
    assert value("schoolnet_wifi_access_point_stations", twin) is None
    assert value("schoolnet_wifi_access_point_channel_utilization_ratio", twin) is None


def test_a_failed_run_keeps_the_last_good_link(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    deliver(site, at(record(1, stream, "wifi", payload=link()), now - 120),
            at(record(2, stream, "wifi", ok=False, error="iw: command failed: No such device (-19)",
                      payload={}), now - 60))
    value = metric_values(site)
    assert value("schoolnet_wifi_signal_dbm", IN_ROOM) == -58.0
    assert value("schoolnet_probe_success", {**AGENT, "probe": "wifi"}) == 0
    assert value("schoolnet_probe_failures_total", {**AGENT, "probe": "wifi"}) == 1


def test_the_latest_scan_per_access_point_and_channel(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    deliver(site, at(record(1, stream, "wifi_scan", payload=scan(other_networks=9)), now - 2000),
            at(record(2, stream, "wifi_scan", payload=scan()), now - 100))
    value = metric_values(site)
    own = {**IN_ROOM, "bssid": OWN_BSSID, "ssid": "SchoolNet", "band": "5GHz", "channel": "36"}
    second = {**IN_ROOM, "bssid": "02:11:22:33:44:66", "ssid": "SchoolNet", "band": "2.4GHz",
              "channel": "6"}
    assert value("schoolnet_wifi_access_point_signal_dbm", own) == -58.0
    assert value("schoolnet_wifi_access_point_stations", own) == 17
    assert value("schoolnet_wifi_access_point_channel_utilization_ratio", own) == 0.31
    assert value("schoolnet_wifi_access_point_signal_dbm", second) == -71.0
    # No BSS Load element in its beacons: no count, rather than "no users".
    assert value("schoolnet_wifi_access_point_stations", second) is None
    assert value("schoolnet_wifi_access_point_channel_utilization_ratio", second) is None
    assert value("schoolnet_wifi_channel_networks", {**IN_ROOM, "band": "2.4GHz", "channel": "6"}) == 4
    assert value("schoolnet_wifi_channel_networks", {**IN_ROOM, "band": "5GHz", "channel": "36"}) == 1
    assert value("schoolnet_wifi_other_networks", IN_ROOM) == 5
    assert value("schoolnet_wifi_scan_timestamp_seconds", IN_ROOM) == now - 100
    # A scan is no link: nothing of the link's families comes from it.
    assert value("schoolnet_wifi_connected", IN_ROOM) is None


def test_scans_name_no_other_network_and_a_mac_elsewhere_is_refused(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    leaky = scan()
    leaky["access_points"][1]["ssid"] = "iPhone van 02:aa:bb:cc:dd:ee"  # a hotspot's name
    assert deliver(site, at(record(1, stream, "wifi_scan", payload=leaky), now - 60),
                   at(record(2, stream, "wifi_scan", payload=scan(access_points=[])), now - 30)) == [
        "rejected", "accepted"]
    text = site.metrics().text
    assert "02:aa:bb" not in text and "iPhone" not in text
    # The school's own BSSIDs are on the page only where a scan saw them: this one saw none.
    assert OWN_BSSID not in text
    assert metric_values(site)("schoolnet_wifi_channel_networks", {**IN_ROOM, "band": "2.4GHz",
                                                            "channel": "6"}) == 4


def test_an_agent_that_left_takes_its_wifi_series_along(site) -> None:  # type: ignore[no-untyped-def]
    deliver(site, record(1, new_stream(), "wifi", payload=link()))
    assert metric_values(site)("schoolnet_wifi_signal_dbm", IN_ROOM) == -58.0
    with site.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE agents SET last_report_at = last_report_at - 7200")
    assert metric_values(site, expiry=3600)("schoolnet_wifi_signal_dbm", IN_ROOM) is None


def test_the_page_with_wifi_is_lint_clean_and_the_same_from_both_writers(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    # Two access points the scan cannot tell apart (macOS redacts BSSIDs): one series.
    twins = [WifiAccessPoint(ssid="SchoolNet", signal_dbm=-60.0, channel=11, band="2.4GHz"),
             WifiAccessPoint(ssid="SchoolNet", signal_dbm=-75.0, channel=11, band="2.4GHz")]
    deliver(site, at(record(1, stream, "wifi", payload=link()), now - 60),
            at(record(2, stream, "wifi_scan", payload=scan(access_points=twins)), now - 60),
            at(record(3, stream, "survey", payload={
                "source": "netsh", "connected": True, "signal_dbm": -70.0, "room": "aula",
                "room_name": "Aula", "method": "import", "samples": 1}), now - 30))
    metrics = site.client.app.state.metrics

    fast = page_samples(metrics.render().decode())
    assert fast == page_samples(generate_latest(metrics.registry).decode())
    twin = {**IN_ROOM, "bssid": "", "ssid": "SchoolNet", "band": "2.4GHz", "channel": "11"}
    assert fast[("schoolnet_wifi_access_point_signal_dbm", tuple(sorted(twin.items())))] == -60.0
    text = site.metrics().text
    for name, kind in (("schoolnet_wifi_signal_dbm", "gauge"),
                       ("schoolnet_wifi_transmit_retries_total", "counter"),
                       ("schoolnet_wifi_room_coverage_grade", "gauge"),
                       ("schoolnet_wifi_room_observations_total", "counter")):
        assert f"# TYPE {name} {kind}" in text
    promtool = require_tool("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""
