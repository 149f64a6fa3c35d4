"""netsh's text: `netsh wlan show interfaces` and `netsh wlan show networks mode=bssid`
in the languages Windows prints them in, and the 24H2 location refusal.

Real captures come from tests/fixtures/wifi/ (windows_netsh_*.txt, each naming its
source). Samples written here are CONSTRUCTED, each says from what: a layout no public
capture shows (Bss Load in English, 6 GHz, a disconnected interface, Dutch labels).
"""

from __future__ import annotations

import re
from typing import TypeVar

import pytest
from support.wifi_samples import sample, samples

from agent.probes.wifi import netsh
from agent.probes.wifi.reading import NotParsable

INTERFACES = "windows_netsh_show_interfaces.txt"
LOCALISED = "windows_netsh_show_interfaces_localised.txt"
NETWORKS = "windows_netsh_show_networks_bssid.txt"
T = TypeVar("T")

# Constructed: Windows 11 English `show networks mode=bssid` with Bss Load, Band and a 6 GHz
# access point, in the layout of the fixture header's description and of public Windows 11
# captures (the Bss Load block indented under its BSSID; its labels end in a bare colon).
NETWORKS_WITH_BSS_LOAD = """\
Interface name : Wi-Fi
There are 3 networks currently visible.

SSID 1 : Schoolnet-Leerlingen
    Network type            : Infrastructure
    Authentication          : WPA2-Enterprise
    Encryption              : CCMP
    BSSID 1                 : 3C:37:86:15:A0:01
         Signal             : 88%
         Radio type         : 802.11ax
         Band               : 5 GHz
         Channel            : 36
         Bss Load:
             Connected Stations:        23
             Channel Utilization:       60 (23 %)
             Medium Available Capacity: 31250 (1000000 us/s)
         Basic rates (Mbps) : 6 12 24
         Other rates (Mbps) : 9 18 36 48 54
    BSSID 2                 : 3c:37:86:15:a0:02
         Signal             : 40%
         Radio type         : 802.11ax
         Band               : 6 GHz
         Channel            : 37
         Bss Load:
             Connected Stations:        0
             Channel Utilization:       0 (0 %)
             Medium Available Capacity: 31250 (1000000 us/s)

SSID 2 :
    Network type            : Infrastructure
    Authentication          : WPA2-Personal
    Encryption              : CCMP
    BSSID 1                 : 12:34:56:78:9a:bc
         Signal             : 99%
         Radio type         : 802.11n
         Band               : 2.4 GHz
         Channel            : 11
"""

# Constructed: a disconnected interface in the layout of fixture sample A (netsh prints no
# SSID, signal or rates then; the "Radio status" lines are as Windows prints them).
DISCONNECTED = """\
There is 1 interface on the system:

    Name                   : Wi-Fi
    Description            : Intel(R) Wi-Fi 6 AX201 160MHz
    GUID                   : f899e530-fd03-44a9-8307-4d4fc4827eab
    Physical address       : f0:77:c3:e4:ac:50
    Interface type         : Primary
    State                  : disconnected
    Radio status           : Hardware On
                             Software On

    Hosted network status  : Not available
"""

# Constructed from the UNVERIFIED Dutch labels of the fixture README (no capture exists).
DUTCH = """\
Er is 1 interface op het systeem:

    Naam                   : Wi-Fi
    Beschrijving           : Intel(R) Wi-Fi 6 AX201 160MHz
    GUID                   : f899e530-fd03-44a9-8307-4d4fc4827eab
    Fysiek adres           : f0:77:c3:e4:ac:50
    Status                 : verbonden
    SSID                   : Schoolnet-Personeel
    BSSID                  : 3c:37:86:15:a0:01
    Netwerktype            : Infrastructuur
    Radiotype              : 802.11ac
    Verificatie            : WPA2-Enterprise
    Codering               : CCMP
    Kanaal                 : 100
    Ontvangstsnelheid (Mbps)  : 433.3
    Verzendsnelheid (Mbps) : 390
    Signaal                : 70%
    Profiel                : Schoolnet-Personeel
"""

# English wording of netsh's refusal on Windows 11 24H2 (no Location permission), as netsh
# prints it after its header line; quoted in public issue threads about 24H2.
LOCATION_REFUSAL = """\
There is 1 interface on the system:
Network shell commands need location permission to access WLAN information. Turn on Location \
services on the Location page in Privacy & security settings.

Here is the URI for the Location page in the Settings app:
ms-settings:privacy-location
To open the Location page in the Settings app, hold down the Ctrl key and select the link, or run \
the following command:
start ms-settings:privacy-location

Function WlanQueryInterface returns error 5:
The requested operation requires elevation (Run as administrator).
"""


def only(readings: list[T]) -> T:
    assert len(readings) == 1, readings
    return readings[0]


def test_windows_11_english_interface_reads_every_field_in_base_units() -> None:
    reading = only(netsh.parse_netsh_interfaces(sample(INTERFACES, 0)))
    assert reading.source == "netsh-interfaces"
    assert reading.interface == "Wi-Fi"
    assert reading.connected is True
    assert reading.ssid == "SomeSSID"
    assert reading.bssid is None  # the poster's "xx:xx:..." is no BSSID
    assert reading.signal_percent == 53
    assert reading.signal_dbm == -73.5  # 0 % = -100 dBm, 100 % = -50 dBm
    assert reading.signal_converted is True
    assert (reading.channel, reading.band, reading.frequency_hertz) == (36, "5GHz", 5_180_000_000)
    assert reading.rx_bitrate_bits_per_second == 72e6
    assert reading.tx_bitrate_bits_per_second == 144e6
    assert reading.phy_mode == "802.11ax"
    assert reading.noise_dbm is None  # netsh never says


def test_german_interface_reads_its_own_labels() -> None:
    reading = only(netsh.parse_netsh_interfaces(sample(INTERFACES, 1)))
    assert reading.interface == "WLAN"
    assert reading.connected is True  # "Verbunden"
    assert reading.signal_dbm == -78.5 and reading.signal_percent == 43
    assert (reading.channel, reading.band, reading.frequency_hertz) == (116, "5GHz", 5_580_000_000)
    assert reading.rx_bitrate_bits_per_second == 300e6  # "Empfangsrate (MBit/s)"
    assert reading.tx_bitrate_bits_per_second == 300e6
    assert reading.phy_mode == "802.11ac"  # "Funktyp"


@pytest.mark.parametrize(("index", "expected"), [
    # (channel, band, MHz, percent, rx, tx, radio type)
    (0, (4, "2.4GHz", 2427, 85, 130e6, 130e6, "802.11n")),  # it: no Band line, Win10
    (1, (144, "5GHz", 5720, 65, 310e6, 310e6, "802.11ax")),  # fr: "Mbits/s"
    (2, (64, "5GHz", 5320, 95, 866.7e6, 866.7e6, "802.11ac")),  # es
    (3, (44, "5GHz", 5220, 42, 103e6, 103e6, "802.11ax")),  # older en build: no Band
], ids=["italian", "french", "spanish", "english-older-build"])
def test_localised_captures_read_the_same_fields(index: int, expected: tuple) -> None:
    reading = only(netsh.parse_netsh_interfaces(sample(LOCALISED, index)))
    assert reading.frequency_hertz is not None
    got = (reading.channel, reading.band, reading.frequency_hertz // 1_000_000, reading.signal_percent,
           reading.rx_bitrate_bits_per_second, reading.tx_bitrate_bits_per_second, reading.phy_mode)
    assert got == expected
    assert reading.connected is True and reading.signal_converted is True
    assert reading.interface == "Wi-Fi"


def test_french_bssid_label_and_both_bssid_spellings_are_read() -> None:
    french = only(netsh.parse_netsh_interfaces(sample(LOCALISED, 1)))
    assert french.bssid == "12:34:56:78:90:ab"  # "Point d'accès d'identificateur SSID (…)"
    older = only(netsh.parse_netsh_interfaces(sample(LOCALISED, 3)))
    assert older.bssid == "ba:34:56:78:90:ac"  # "BSSID" before it became "AP BSSID"


def test_the_laptops_own_mac_is_never_read_into_any_field() -> None:
    # Sample D prints "Physical address : ba:34:56:78:90:ab" beside the AP's ...:ac.
    for text in (sample(LOCALISED, 3), DUTCH, DISCONNECTED):
        for reading in netsh.parse_netsh_interfaces(text):
            values = [str(value) for value in vars(reading).values()]
            assert not any(mac in value for value in values
                           for mac in ("ba:34:56:78:90:ab", "f0:77:c3:e4:ac:50")), reading


def test_dutch_labels_unverified_but_read() -> None:
    reading = only(netsh.parse_netsh_interfaces(DUTCH))
    assert reading.connected is True  # "verbonden"
    assert reading.ssid == "Schoolnet-Personeel"
    assert reading.bssid == "3c:37:86:15:a0:01"
    assert reading.signal_dbm == -65.0
    assert (reading.channel, reading.band) == (100, "5GHz")
    assert reading.rx_bitrate_bits_per_second == pytest.approx(433.3e6)
    assert reading.phy_mode == "802.11ac"


def test_disconnected_interface_has_no_radio_values() -> None:
    reading = only(netsh.parse_netsh_interfaces(DISCONNECTED))
    assert reading.connected is False
    assert reading.interface == "Wi-Fi"
    assert (reading.ssid, reading.bssid, reading.signal_dbm, reading.signal_percent,
            reading.channel, reading.frequency_hertz, reading.rx_bitrate_bits_per_second) == (None,) * 7
    assert reading.signal_converted is False


def test_a_6ghz_channel_needs_the_band_line() -> None:
    text = sample(INTERFACES, 0).replace("5 GHz", "6 GHz").replace(": 36", ": 37")
    reading = only(netsh.parse_netsh_interfaces(text))
    assert (reading.channel, reading.band, reading.frequency_hertz) == (37, "6GHz", 6_135_000_000)
    german = sample(INTERFACES, 1).replace("5 GHz", "6 GHz").replace(": 116", ": 37")  # "Bereich"
    reading = only(netsh.parse_netsh_interfaces(german))
    assert (reading.channel, reading.band, reading.frequency_hertz) == (37, "6GHz", 6_135_000_000)


def test_two_interfaces_give_two_readings_with_their_guids() -> None:
    second = sample(INTERFACES, 0).split("\n", 1)[1].replace(
        "f899e530-fd03-44a9-8307-4d4fc4827eab", "{0A1B2C3D-0000-4000-8000-00000000BEEF}").replace(
        "Name                   : Wi-Fi", "Name                   : Wi-Fi 2")
    text = "There are 2 interfaces on the system:\n" + sample(INTERFACES, 0).split("\n", 1)[1] + second
    readings = netsh.parse_netsh_interfaces(text)
    assert [reading.interface for reading in readings] == ["Wi-Fi", "Wi-Fi 2"]
    assert netsh.netsh_interface_guids(text) == ["f899e530-fd03-44a9-8307-4d4fc4827eab",
                                                 "0a1b2c3d-0000-4000-8000-00000000beef"]


def test_pasted_text_with_prompt_bom_crlf_tabs_and_trailing_blanks_reads_the_same() -> None:
    clean = sample(INTERFACES, 0)
    pasted = ("\ufeffPS C:\\Users\\juf> netsh wlan show interfaces\r\n"
              + "\r\n".join(line.replace("    ", "\t", 1) + "  " for line in clean.splitlines()) + "\r\n\r\n")
    assert netsh.parse_netsh_interfaces(pasted) == netsh.parse_netsh_interfaces(clean)
    assert netsh.is_netsh_interfaces(pasted)


def test_text_in_an_unknown_language_is_not_parsable_with_a_one_line_reason() -> None:
    polish = "\n".join(["    Nazwa                  : Wi-Fi", "    Opis                   : Intel",
                        "    Stan                   : połączono"])
    with pytest.raises(NotParsable) as caught:
        netsh.parse_netsh_interfaces(polish)
    message = str(caught.value)
    assert "\n" not in message
    assert "en, de, nl, it, fr, es" in message and "'nazwa'" in message
    with pytest.raises(NotParsable):
        netsh.parse_netsh_interfaces("hello\nworld\n")


def test_recognisers_tell_the_formats_apart() -> None:
    interfaces, networks = sample(INTERFACES, 0), sample(NETWORKS, 0)
    assert netsh.is_netsh_interfaces(interfaces) and not netsh.is_netsh_networks(interfaces)
    assert netsh.is_netsh_networks(networks) and not netsh.is_netsh_interfaces(networks)
    assert netsh.is_netsh_networks(NETWORKS_WITH_BSS_LOAD)
    wdutil = sample("macos_wdutil_info.txt")
    assert not netsh.is_netsh_interfaces(wdutil) and not netsh.is_netsh_networks(wdutil)
    for text in samples(LOCALISED):
        assert netsh.is_netsh_interfaces(text)


def test_networks_fixture_reads_each_bssid() -> None:
    entry = only(netsh.parse_netsh_networks(sample(NETWORKS, 0)))
    assert entry.source == "netsh-networks"
    assert (entry.ssid, entry.bssid) == ("AP-Test1", "00:aa:f2:77:a5:53")
    assert (entry.signal_percent, entry.signal_dbm, entry.signal_converted) == (46, -77.0, True)
    # No Band line in that build: channel 6 can only be 2.4 GHz.
    assert (entry.channel, entry.band, entry.frequency_hertz) == (6, "2.4GHz", 2_437_000_000)
    assert entry.station_count is None and entry.channel_utilization_ratio is None


def test_bss_load_gives_station_count_and_channel_utilisation() -> None:
    entries = netsh.parse_netsh_networks(NETWORKS_WITH_BSS_LOAD)
    assert [(entry.ssid, entry.bssid) for entry in entries] == [
        ("Schoolnet-Leerlingen", "3c:37:86:15:a0:01"), ("Schoolnet-Leerlingen", "3c:37:86:15:a0:02"),
        ("", "12:34:56:78:9a:bc")]  # SSID 2 is hidden: the empty name
    first, six_ghz, hidden = entries
    assert (first.station_count, first.channel_utilization_ratio) == (23, 60 / 255)
    assert (first.signal_dbm, first.frequency_hertz, first.band) == (-56.0, 5_180_000_000, "5GHz")
    assert (six_ghz.station_count, six_ghz.channel_utilization_ratio) == (0, 0.0)  # 0 is said, not None
    assert (six_ghz.channel, six_ghz.band, six_ghz.frequency_hertz) == (37, "6GHz", 6_135_000_000)
    assert (hidden.station_count, hidden.channel_utilization_ratio) == (None, None)
    assert (hidden.channel, hidden.band) == (11, "2.4GHz")


def test_italian_bss_load_labels() -> None:
    # Constructed from the Italian Windows 11 lines posted in wifi-heatmapper issue #44
    # ("Caric BSS:", "Stazioni connesse: 0", "Utilizzo canale: 1 (0%)"), SSID block added.
    text = """\
Nome interfaccia : Wi-Fi
SSID 1 : SSID-4
    Tipo di rete            : Infrastruttura
    BSSID 1                 : 94:83:c4:a7:29:c5
         Segnale             : 22%
         Tipo di radio         : 802.11ax
         Banda               : 5 GHz
         Canale            : 149
         Caric BSS:
             Stazioni connesse: 4
             Utilizzo canale: 1 (0%)
             Capacità media disponibile: 0 (0 US/s)
         QoS MSCS supportato: 0
         Velocità di base (Mbps) : 6 12 24
"""
    entry = only(netsh.parse_netsh_networks(text))
    assert (entry.ssid, entry.bssid, entry.signal_dbm) == ("SSID-4", "94:83:c4:a7:29:c5", -89.0)
    assert (entry.channel, entry.band, entry.frequency_hertz) == (149, "5GHz", 5_745_000_000)
    assert (entry.station_count, entry.channel_utilization_ratio) == (4, 1 / 255)


def test_networks_of_one_interface_when_netsh_lists_several() -> None:
    second = NETWORKS_WITH_BSS_LOAD.replace("Interface name : Wi-Fi", "Interface name : Wi-Fi 2")
    text = NETWORKS_WITH_BSS_LOAD + "\n" + re.sub("3c:37:86:15:a0", "aa:aa:aa:aa:aa", second, flags=re.I)
    assert len(netsh.parse_netsh_networks(text)) == 6
    mine = netsh.parse_netsh_networks(text, interface="wi-fi 2")
    assert [entry.bssid for entry in mine][:2] == ["aa:aa:aa:aa:aa:01", "aa:aa:aa:aa:aa:02"]
    assert len(mine) == 3


def test_no_networks_in_range_is_an_empty_scan_not_an_error() -> None:
    empty = "Interface name : Wi-Fi\nThere are 0 networks currently visible.\n"
    assert netsh.parse_netsh_networks(empty) == []
    with pytest.raises(NotParsable):
        netsh.parse_netsh_networks("The Wireless AutoConfig Service (wlansvc) is not running.\n")
    with pytest.raises(NotParsable, match="not `netsh wlan show networks"):
        netsh.parse_netsh_networks(sample(INTERFACES, 0))  # the other command's output


def test_location_refusal_says_what_to_switch_on() -> None:
    message = netsh.location_permission_error(LOCATION_REFUSAL)
    assert message is not None and "\n" not in message
    assert "Privacy & security > Location" in message
    assert "Let desktop apps access your location" in message
    # Other languages: the Settings URI netsh prints is an identifier, never translated.
    assert netsh.location_permission_error("Netzwerkshell …\nms-settings:privacy-location\n") == message
    assert netsh.location_permission_error(sample(INTERFACES, 0)) is None


def test_parsers_pass_the_location_refusal_on_instead_of_a_format_error() -> None:
    assert netsh.is_netsh_interfaces(LOCATION_REFUSAL)
    for parse in (netsh.parse_netsh_interfaces, netsh.parse_netsh_networks):
        with pytest.raises(NotParsable, match="Let desktop apps access your location"):
            parse(LOCATION_REFUSAL)
