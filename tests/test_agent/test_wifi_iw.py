"""The `iw` readers against real captures (tests/fixtures/wifi, copied from
shared/fixtures/wifi) and against samples written from iw's own print formats."""

from __future__ import annotations

import pytest
from support.wifi_samples import sample

from agent.probes.wifi import iw
from agent.probes.wifi.reading import NotParsable

# ---- iw dev IF link ---------------------------------------------------------------------

def test_link_of_a_full_mac80211_driver() -> None:
    text = sample("linux_iw_dev_link.txt")
    assert iw.is_iw_link(text)
    reading = iw.parse_iw_link(text)
    assert reading.source == "iw-link"
    assert reading.connected
    assert reading.interface == "wlp0s20f3"
    assert reading.ssid == "HOME5"
    assert reading.bssid == "64:d1:54:68:93:ae"
    assert reading.signal_dbm == -44.0
    assert reading.frequency_hertz == 5_280_000_000
    assert (reading.channel, reading.band) == (56, "5GHz")
    assert reading.rx_bitrate_bits_per_second == pytest.approx(702.0e6)
    assert reading.tx_bitrate_bits_per_second == pytest.approx(866.7e6)
    assert reading.phy_mode == "VHT"
    assert reading.channel_width_hertz == 80_000_000
    assert reading.noise_dbm is None and reading.tx_retries is None  # link does not say


def test_link_with_fewer_fields_and_a_redacted_bssid() -> None:
    # Sample 2a: no rx bitrate, no width flag on the rate, "xx:xx" where the BSSID was, and
    # the poster's "~ » iw dev wlan0 link" prompt line before it.
    reading = iw.parse_iw_link(sample("linux_iw_dev_link.txt", "2a"))
    assert reading.interface == "wlan0"
    assert reading.bssid is None
    assert reading.rx_bitrate_bits_per_second is None
    assert reading.tx_bitrate_bits_per_second == pytest.approx(173.3e6)
    assert reading.phy_mode == "VHT"
    assert reading.channel_width_hertz is None  # a 20 MHz frame says nothing of the channel
    assert reading.frequency_hertz == 5_300_000_000
    assert reading.signal_dbm == -60.0


def test_not_connected() -> None:
    assert iw.is_iw_link("Not connected.\n")
    reading = iw.parse_iw_link("$ iw dev wlan0 link\nNot connected.\n")
    assert not reading.connected
    assert reading.signal_dbm is None and reading.ssid is None


def test_authenticated_but_not_associated_is_recognised_as_not_connected() -> None:
    # link.c prints this while the association is still being made (or was refused).
    text = "$ iw dev wlan0 link\nAuthenticated with 64:d1:54:68:93:ae (on wlan0)\n"
    assert iw.is_iw_link(text)
    assert not iw.parse_iw_link(text).connected


def test_link_pasted_with_spaces_crlf_bom_and_trailing_blanks_reads_the_same() -> None:
    text = sample("linux_iw_dev_link.txt")
    pasted = "\ufeff" + "\r\n".join(line.replace("\t", "    ") + "  " for line in text.splitlines())
    assert iw.parse_iw_link(pasted) == iw.parse_iw_link(text)


def test_a_multi_link_association_reports_the_first_links_bssid() -> None:
    # iw's link.c for an MLO association: the MLD address, then "\tLink N BSSID ...".
    text = ("Connected to 02:11:22:33:44:55 (on wlan0)\n\tSSID: school\n\tLink 0 BSSID 64:d1:54:68:93:ae\n"
            "\t\tfreq: 6115\n\tsignal: -51 dBm\n")
    reading = iw.parse_iw_link(text)
    assert reading.bssid == "64:d1:54:68:93:ae"
    assert (reading.frequency_hertz, reading.channel, reading.band) == (6_115_000_000, 33, "6GHz")


def test_link_rejects_other_text() -> None:
    with pytest.raises(NotParsable, match="iw dev IF link"):
        iw.parse_iw_link("wlan0     IEEE 802.11  ESSID:\"school\"\n")
    assert not iw.is_iw_link(sample("linux_iw_scan_raspberrypi.txt"))


# Rates as station.c's parse_bitrate prints them: "%d.%d MBit/s", then " MCS %d" (HT),
# " VHT-MCS %d", a width (" 40MHz", " 80MHz", " 80P80MHz", " 160MHz", " 320MHz"),
# " short GI", " VHT-NSS %d", " HE-MCS %d ...", " EHT-MCS %d ...".
@pytest.mark.parametrize(("text", "bps", "mode", "width_mhz"), [
    ("1200.9 MBit/s 80MHz HE-MCS 11 HE-NSS 2 HE-GI 0 HE-DCM 0", 1200.9e6, "HE", 80),
    ("2882.4 MBit/s 320MHz EHT-MCS 13 EHT-NSS 2 EHT-GI 0", 2882.4e6, "EHT", 320),
    ("300.0 MBit/s MCS 15 40MHz short GI", 300.0e6, "HT", 40),
    ("1560.0 MBit/s VHT-MCS 8 80P80MHz VHT-NSS 2", 1560.0e6, "VHT", 160),
    ("54.0 MBit/s", 54.0e6, None, None),
    ("(unknown)", None, None, None),
])
def test_rates(text: str, bps: float | None, mode: str | None, width_mhz: int | None) -> None:
    rate = iw.parse_rate(text)
    assert rate.bits_per_second == (pytest.approx(bps) if bps else None)
    assert rate.phy_mode == mode
    assert rate.width_hertz == (width_mhz * 1_000_000 if width_mhz else None)


# ---- iw dev IF station dump -------------------------------------------------------------

def test_station_dump_of_a_client() -> None:
    text = sample("linux_iw_station_dump.txt", "A")
    assert iw.is_iw_station_dump(text)
    reading = iw.parse_iw_station_dump(text)
    assert reading.source == "iw-station"
    assert reading.interface == "wlo1"
    assert reading.bssid == "04:f0:21:32:3f:d2"  # on a client, the station is the access point
    assert reading.signal_dbm == -60.0  # "-60 [-60, -60] dBm": the first number, not a chain
    assert reading.tx_bitrate_bits_per_second == pytest.approx(650.0e6)
    assert reading.rx_bitrate_bits_per_second == pytest.approx(650.0e6)
    assert (reading.tx_retries, reading.tx_failed, reading.beacon_loss) == (976, 0, 0)
    assert reading.connected_seconds == 233.0
    assert reading.phy_mode == "VHT"


def test_an_access_points_list_of_clients_is_refused_without_naming_them() -> None:
    text = sample("linux_iw_station_dump.txt", "B")
    with pytest.raises(NotParsable, match="access point's list of its clients") as raised:
        iw.parse_iw_station_dump(text)
    assert "8c:be:be" not in str(raised.value).lower()
    # One client of that access point alone: no beacon counters, so still an AP's list.
    first = text.split("root@OpenWrt:/# iw wlan0 station dump")[1]
    with pytest.raises(NotParsable, match="one station without the beacon counters"):
        iw.parse_iw_station_dump(first)


# brcmfmac (the Raspberry Pi's driver) fills no beacon counters on the client side; this
# follows station.c's print format for the fields that driver reports.
BRCMFMAC_CLIENT = (
    "Station 70:f0:96:d2:e0:62 (on wlan0)\n\tinactive time:\t1210 ms\n\trx bytes:\t1833410\n"
    "\ttx failed:\t7\n\tsignal:  \t-52 dBm\n\ttx bitrate:\t72.2 MBit/s MCS 7 short GI\n"
    "\trx bitrate:\t65.0 MBit/s MCS 7\n\tconnected time:\t1200 seconds\n"
    "Station 9a:00:00:00:00:01 (on wlan0)\n\tTDLS peer:\tyes\n\tsignal:  \t-40 dBm\n")


def test_station_dump_read_by_the_access_points_bssid() -> None:
    reading = iw.parse_iw_station_dump(BRCMFMAC_CLIENT, access_point="70:F0:96:D2:E0:62")
    assert reading.signal_dbm == -52.0
    assert reading.tx_failed == 7 and reading.tx_retries is None and reading.beacon_loss is None
    assert reading.connected_seconds == 1200.0
    assert reading.phy_mode == "HT"
    with pytest.raises(NotParsable, match="no entry for the access point"):
        iw.parse_iw_station_dump(BRCMFMAC_CLIENT, access_point="64:d1:54:68:93:ae")
    with pytest.raises(NotParsable, match="access point's list"):
        iw.parse_iw_station_dump(BRCMFMAC_CLIENT)  # without the BSSID it cannot tell


def test_station_dump_rejects_other_text() -> None:
    with pytest.raises(NotParsable, match="Station <MAC>"):
        iw.parse_iw_station_dump(sample("linux_iw_dev_link.txt"))


# ---- iw dev IF scan ---------------------------------------------------------------------

def test_scan_of_a_raspberry_pi() -> None:
    text = sample("linux_iw_scan_raspberrypi.txt")
    assert iw.is_iw_scan(text)
    first, second = iw.parse_iw_scan(text)
    assert first.source == "iw-scan"
    assert first.bssid == "70:f0:96:d2:e0:62"
    assert first.ssid == "WIFI_IUTB_IOT"
    assert first.signal_dbm == -64.0
    assert (first.frequency_hertz, first.channel, first.band) == (2_412_000_000, 1, "2.4GHz")
    assert first.station_count == 0
    assert first.channel_utilization_ratio == pytest.approx(168 / 255)
    assert not first.associated
    assert (second.bssid, second.ssid, second.signal_dbm) == ("cc:db:93:d1:06:c0", "eduroam", -83.0)
    assert second.station_count == 4
    assert second.channel_utilization_ratio == pytest.approx(158 / 255)


def test_scan_entries_written_from_scan_c() -> None:
    # scan.c: "BSS %s(on %s)" + " -- associated"; "\tsignal: %d.%.2d dBm" of mBm/100 and
    # mBm%100 (so -6450 mBm prints "-64.-50"); "\tsignal: %d/100" for SIGNAL_UNSPEC;
    # SSIDs through print_ssid_escaped (non-ASCII bytes as \xHH).
    text = ("BSS 64:d1:54:68:93:ae(on wlan0) -- associated\n\tfreq: 5180\n\tsignal: -64.-50 dBm\n"
            "\tSSID: caf\\xc3\\xa9\\x20\n"
            "BSS 64:d1:54:68:93:af(on wlan0)\n\tfreq: 5180.0\n\tsignal: 70/100\n\tSSID: \n"
            "BSS 64:d1:54:68:93:b0(on wlan0)\n\tfreq: 2437\n")
    associated, unspecified, bare = iw.parse_iw_scan(text)
    assert associated.associated
    assert associated.signal_dbm == -64.5
    assert associated.ssid == "café "
    assert (associated.channel, associated.band) == (36, "5GHz")  # from freq: no DS Parameter set
    assert (unspecified.signal_percent, unspecified.signal_dbm) == (70.0, None)  # no dBm mapping
    assert not unspecified.signal_converted
    assert unspecified.ssid == ""  # hidden
    assert bare.ssid is None and bare.signal_dbm is None and bare.channel == 6
    assert bare.station_count is None and bare.channel_utilization_ratio is None


def test_scan_rejects_other_text() -> None:
    with pytest.raises(NotParsable, match="BSS <BSSID>"):
        iw.parse_iw_scan("Not connected.\n")


# ---- iw dev IF survey dump --------------------------------------------------------------

# survey.c print_survey_handler: "Survey data from %s\n", "\tfrequency:\t\t\t%u MHz%s\n"
# with " [in use]", "\tnoise:\t\t\t\t%d dBm\n" ((int8_t) of the u8), then the times.
SURVEY = ("Survey data from wlan0\n\tfrequency:\t\t\t2412 MHz\n\tnoise:\t\t\t\t-91 dBm\n"
          "Survey data from wlan0\n\tfrequency:\t\t\t5180 MHz [in use]\n\tnoise:\t\t\t\t-95 dBm\n"
          "\tchannel active time:\t\t1150 ms\n\tchannel busy time:\t\t221 ms\n"
          "Survey data from wlan0\n\tfrequency:\t\t\t5200 MHz\n")


def test_survey_noise_is_the_in_use_channels() -> None:
    assert iw.parse_iw_survey_noise(SURVEY) == -95.0
    assert iw.parse_iw_survey_noise(SURVEY.replace(" [in use]", "")) is None
    without_noise = SURVEY.replace("\tnoise:\t\t\t\t-95 dBm\n", "")
    assert iw.parse_iw_survey_noise(without_noise) is None  # the driver reports none
    assert iw.parse_iw_survey_noise("") is None  # a driver without survey prints nothing


def test_survey_rejects_other_text() -> None:
    with pytest.raises(NotParsable, match="Survey data from"):
        iw.parse_iw_survey_noise(sample("linux_iw_dev_link.txt"))
