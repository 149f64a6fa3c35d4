"""The nmcli reader: the fixture's three tabular shapes, terse mode, and the link."""

from __future__ import annotations

import unicodedata

import pytest
from support.wifi_samples import sample

from agent.probes.wifi.nmcli import (
    TERSE_FIELDS,
    NmcliEntries,
    is_nmcli_wifi_list,
    nmcli_link,
    parse_nmcli_wifi_list,
)
from agent.probes.wifi.reading import NotParsable

NMCLI = "linux_nmcli_dev_wifi.txt"




def test_sample_a_with_header_and_bssid() -> None:
    text = sample(NMCLI, "A")
    assert is_nmcli_wifi_list(text)
    entries = parse_nmcli_wifi_list(text)
    assert len(entries) == 8
    assert [entry.ssid for entry in entries[:3]] == ["Personal Wifi Zone", "LAG", "Invitados"]
    assert entries[5].ssid == "Fibertel WiFi950 2.4GHz"  # spaces and a band in the name
    first = entries[0]
    assert first.source == "nmcli"
    assert first.bssid == "a2:39:ee:a2:fb:12"
    assert (first.signal_percent, first.signal_dbm, first.signal_converted) == (100.0, -20.0, True)
    assert (first.channel, first.frequency_hertz, first.band) == (1, 2_412_000_000, "2.4GHz")
    telecentro = entries[7]
    assert (telecentro.signal_percent, telecentro.signal_dbm) == (80.0, -40.0)
    (current,) = [entry for entry in entries if entry.associated]
    assert (current.bssid, current.ssid, current.channel, current.band) == (
        "a0:39:ee:a2:fa:1f", "LAG", 112, "5GHz")
    assert current.frequency_hertz == 5_560_000_000


def test_the_link_is_the_in_use_entry_and_no_bitrate_is_made_of_rate() -> None:
    link = nmcli_link(parse_nmcli_wifi_list(sample(NMCLI, "A")))
    assert link.source == "nmcli"
    assert link.connected
    assert (link.ssid, link.bssid, link.channel, link.frequency_hertz) == (
        "LAG", "a0:39:ee:a2:fa:1f", 112, 5_560_000_000)
    assert (link.signal_dbm, link.signal_percent, link.signal_converted) == (-20.0, 100.0, True)
    # RATE (405 Mbit/s) is the access point's maximum, not the link's bitrate.
    assert link.rx_bitrate_bits_per_second is None and link.tx_bitrate_bits_per_second is None


def test_sample_b1_without_its_header() -> None:
    text = sample(NMCLI, "B1")
    assert is_nmcli_wifi_list(text)
    entries = parse_nmcli_wifi_list(text)
    assert [(entry.bssid, entry.ssid, entry.signal_percent) for entry in entries] == [
        ("76:ac:b9:27:8a:44", "Doge", 89.0), ("74:ac:b9:27:8a:44", "RTK", 89.0),
        ("8e:49:62:e1:0d:c5", "", 69.0), ("ae:ae:19:b1:55:56", "", 65.0)]  # "--" = hidden
    assert [entry.associated for entry in entries] == [True, False, False, False]
    assert all(entry.channel == 10 and entry.frequency_hertz == 2_457_000_000 for entry in entries)
    assert nmcli_link(entries).ssid == "Doge"


def test_sample_b2_of_an_older_networkmanager_without_bssid() -> None:
    entries = parse_nmcli_wifi_list(sample(NMCLI, "B2"))
    assert [(entry.ssid, entry.signal_percent, entry.signal_dbm) for entry in entries] == [
        ("Doge", 65.0, -55.0), ("", 65.0, -55.0), ("RTK", 62.0, -58.0), ("", 45.0, -75.0)]
    assert all(entry.bssid is None for entry in entries)
    link = nmcli_link(entries)  # it has IN-USE, and no row is marked: not connected
    assert not link.connected and link.ssid is None


def test_without_an_in_use_column_the_link_cannot_be_told() -> None:
    text = ("SSID                BSSID              CHAN  SIGNAL\n"
            "Personal Wifi Zone  A2:39:EE:A2:FB:12  1     100\n")
    entries = parse_nmcli_wifi_list(text)
    assert isinstance(entries, NmcliEntries) and not entries.shows_in_use
    assert entries[0].ssid == "Personal Wifi Zone" and not entries[0].associated
    with pytest.raises(NotParsable, match="no IN-USE column"):
        nmcli_link(entries)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A table padded as nmcli pads it: each column to its widest cell plus two, counted in
    screen cells (a CJK character takes two)."""
    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
    widths = [max(width(row[i]) for row in [header, *rows]) + 2 for i in range(len(header))]
    return "".join("".join(cell + " " * (w - width(cell)) for cell, w in zip(row, widths, strict=True)) + "\n"
                   for row in [header, *rows])


def test_columns_are_found_in_screen_cells() -> None:
    header = ["IN-USE", "BSSID", "SSID", "MODE", "CHAN", "RATE", "SIGNAL", "BARS", "SECURITY"]
    text = _table(header, [
        ["*", "64:D1:54:68:93:AE", "学校 Wi-Fi", "Infra", "36", "270 Mbit/s", "74", "▂▄▆_", "WPA2"],
        ["", "64:D1:54:68:93:AF", "Lokaal 12", "Infra", "6", "130 Mbit/s", "41", "▂▄__", "WPA1 WPA2"]])
    school, room = parse_nmcli_wifi_list(text)
    assert (school.ssid, school.channel, school.signal_percent, school.associated) == (
        "学校 Wi-Fi", 36, 74.0, True)
    assert (room.ssid, room.channel, room.signal_percent, room.bssid) == (
        "Lokaal 12", 6, 41.0, "64:d1:54:68:93:af")


def test_terse_mode_with_escapes() -> None:
    # nmcli(1): in terse mode ":" separates fields and "\" escapes ":" and "\" in values.
    assert TERSE_FIELDS == ("IN-USE", "BSSID", "SSID", "CHAN", "FREQ", "RATE", "SIGNAL", "SECURITY")
    text = ("*:64\\:D1\\:54\\:68\\:93\\:AE:Lokaal\\:12 \\\\ boven:36:5180 MHz:270 Mbit/s:74:WPA2\n"
            " :64\\:D1\\:54\\:68\\:93\\:AF::1:2412 MHz:130 Mbit/s:41:\n"
            " :64\\:D1\\:54\\:68\\:93\\:B0:Gym:5:5975 MHz:574 Mbit/s:88:WPA3\n")
    assert is_nmcli_wifi_list(text)
    room, hidden, gym = parse_nmcli_wifi_list(text)
    assert (room.ssid, room.bssid, room.associated) == ("Lokaal:12 \\ boven", "64:d1:54:68:93:ae", True)
    assert (room.frequency_hertz, room.channel, room.band) == (5_180_000_000, 36, "5GHz")
    assert hidden.ssid == "" and not hidden.associated
    # FREQ says 6 GHz where channel 5 alone would be taken for 2.4 GHz.
    assert (gym.channel, gym.frequency_hertz, gym.band) == (5, 5_975_000_000, "6GHz")
    assert nmcli_link(parse_nmcli_wifi_list(text)).ssid == "Lokaal:12 \\ boven"


def test_terse_mode_without_escaping() -> None:
    # `-e no`: the BSSID's colons come out bare.
    (entry,) = parse_nmcli_wifi_list("*:64:D1:54:68:93:AE:Lokaal 12:36:5180 MHz:270 Mbit/s:74:WPA2\n")
    assert (entry.bssid, entry.ssid, entry.channel) == ("64:d1:54:68:93:ae", "Lokaal 12", 36)


def test_a_trailing_prompt_is_ignored_but_a_misfit_row_is_not() -> None:
    text = sample(NMCLI, "B2") + "[juf@klas12 ~]$ \n"
    assert len(parse_nmcli_wifi_list(text)) == 4
    broken = sample(NMCLI, "B2").replace("Infra  10    270", "Infra  ab    270", 1)
    with pytest.raises(NotParsable, match="CHAN is 'ab'"):
        parse_nmcli_wifi_list(broken)


def test_other_text_is_not_nmcli() -> None:
    iw_link = sample("linux_iw_dev_link.txt")
    assert not is_nmcli_wifi_list(iw_link)
    with pytest.raises(NotParsable, match="LC_ALL=C"):
        parse_nmcli_wifi_list("Geen wifi-netwerken gevonden\n")


def test_a_6_gigahertz_channel_without_freq_is_not_taken_for_5_gigahertz() -> None:
    header = ["IN-USE", "BSSID", "SSID", "MODE", "CHAN", "RATE", "SIGNAL", "BARS", "SECURITY"]
    text = _table(header, [["*", "64:D1:54:68:93:AE", "School", "Infra", "37", "1201 Mbit/s", "74", "▂▄▆_",
                            "WPA3"]])
    [entry] = parse_nmcli_wifi_list(text)
    assert (entry.channel, entry.band, entry.frequency_hertz) == (37, "6GHz", 6_135_000_000)
