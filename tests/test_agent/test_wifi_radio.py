"""Channels and frequencies, percentage mappings, BSSIDs and information elements."""

from __future__ import annotations

import pytest

from agent.probes.wifi.ies import parse_elements
from agent.probes.wifi.radio import (
    band_of,
    bits_per_second,
    channel_of,
    dbm_from_networkmanager_percent,
    dbm_from_windows_percent,
    frequency_of,
    normalise_bssid,
    parse_band,
)


@pytest.mark.parametrize(("mhz", "channel", "band"), [
    (2412, 1, "2.4GHz"), (2437, 6, "2.4GHz"), (2472, 13, "2.4GHz"), (2484, 14, "2.4GHz"),
    (5180, 36, "5GHz"), (5280, 56, "5GHz"), (5300, 60, "5GHz"), (5825, 165, "5GHz"),
    (4920, 184, "5GHz"), (5955, 1, "6GHz"), (5935, 2, "6GHz"), (6415, 93, "6GHz"),
    (58320, 1, "60GHz"),
])
def test_frequency_and_channel_are_each_others_inverse(mhz: int, channel: int, band: str) -> None:
    assert channel_of(mhz) == channel
    assert band_of(mhz) == band
    assert frequency_of(channel, band) == mhz


def test_six_gigahertz_channels_need_their_band_said() -> None:
    # Channel 1 is 2412 MHz unless the tool said 6 GHz (netsh "Band", wdutil "6g").
    assert frequency_of(1) == 2412
    assert frequency_of(1, "6GHz") == 5955
    assert frequency_of(36) == 5180
    assert frequency_of(200) is None
    assert frequency_of(15, "2.4GHz") is None


def test_frequencies_outside_the_bands_have_no_channel() -> None:
    assert channel_of(3000) is None
    assert band_of(900) is None
    assert channel_of(2413) is None  # off the 5 MHz grid


def test_windows_percentages_map_linearly_from_minus_100_to_minus_50() -> None:
    assert dbm_from_windows_percent(0) == -100
    assert dbm_from_windows_percent(100) == -50
    assert dbm_from_windows_percent(53) == -73.5
    assert dbm_from_windows_percent(120) == -50  # clamped, as the API's range is


def test_networkmanager_percentages_invert_its_own_mapping() -> None:
    # NetworkManager: -90 dBm -> 30 %, -20 dBm -> 100 % (nl80211_xbm_to_percent).
    assert dbm_from_networkmanager_percent(30) == -90
    assert dbm_from_networkmanager_percent(100) == -20
    assert dbm_from_networkmanager_percent(89) == -31
    assert dbm_from_networkmanager_percent(5) == -100  # not from nl80211: clamped


@pytest.mark.parametrize(("text", "expected"), [
    ("64:D1:54:68:93:AE", "64:d1:54:68:93:ae"), ("64-d1-54-68-93-ae", "64:d1:54:68:93:ae"),
    ("64d1.5468.93ae", "64:d1:54:68:93:ae"), (" 04:f0:21:32:3f:d2 ", "04:f0:21:32:3f:d2"),
    ("xx:xx:xx:xx:xx:xx", None), ("<redacted>", None), ("00:00:00:00:00:00", None),
    ("ff:ff:ff:ff:ff:ff", None), ("xx:xx", None), ("", None), (None, None),
])
def test_bssids_have_one_spelling_and_redactions_are_none(text: str | None, expected: str | None) -> None:
    assert normalise_bssid(text) == expected


def test_bands_as_tools_write_them() -> None:
    assert [parse_band(text) for text in ("2.4 GHz", "5 GHz", "6GHz", "5g36/20", "2g1/20", "Gold")] == [
        "2.4GHz", "5GHz", "6GHz", "5GHz", "2.4GHz", None]


def test_rates_in_bits_per_second() -> None:
    assert bits_per_second(866.7, "MBit/s") == pytest.approx(866.7e6)
    assert bits_per_second(72, "Mbps") == 72e6
    assert bits_per_second(300, "kbps") == 300e3
    with pytest.raises(ValueError, match="unknown rate unit"):
        bits_per_second(1, "furlongs")


def test_information_elements_give_ssid_channel_and_bss_load() -> None:
    # Element id, length, body (IEEE 802.11-2020 9.4.2): SSID, DS Parameter Set, BSS Load
    # (station count 4 little-endian, utilisation 158/255, admission capacity), HT Operation.
    blob = (bytes([0, 7]) + b"eduroam" + bytes([3, 1, 1]) + bytes([11, 5, 4, 0, 158, 0x8D, 0x5B])
            + bytes([61, 22, 1]) + bytes(21))
    elements = parse_elements(blob)
    assert elements.ssid == "eduroam"
    assert elements.channel == 1
    assert elements.station_count == 4
    assert elements.channel_utilization_ratio == pytest.approx(158 / 255)


def test_information_elements_survive_truncation_hidden_names_and_odd_bytes() -> None:
    assert parse_elements(bytes([0, 3]) + b"\x00\x00\x00").ssid == ""  # hidden: NULs
    assert parse_elements(bytes([0, 2]) + b"\xff\xfe").ssid == "\ufffd\ufffd"
    truncated = bytes([0, 4]) + b"ab" + bytes([11, 5, 9])
    assert parse_elements(truncated).station_count is None
    # 5 GHz: no DS Parameter Set; the HT Operation's primary channel says it.
    assert parse_elements(bytes([61, 22, 36]) + bytes(21)).channel == 36
    assert parse_elements(b"").ssid is None


def test_a_channel_number_only_6_gigahertz_uses_is_taken_as_6_gigahertz() -> None:
    # 5 GHz primaries below 149 are even; 6 GHz's are 1, 5, 9, ... : nmcli's default columns
    # (no FREQ) list a Wi-Fi 6E access point on channel 37 with nothing else to go by.
    assert frequency_of(37) == 6135 and band_of(6135) == "6GHz"
    assert frequency_of(101) == 6455
    assert frequency_of(233) == 7115
    assert frequency_of(149) == 5745  # both bands have it; 5 GHz is far more common
    assert frequency_of(36) == 5180
    assert frequency_of(185) is None  # 4.9 GHz (Japan) numbering: not said without a band
