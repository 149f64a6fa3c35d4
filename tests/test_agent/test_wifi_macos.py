"""macOS: `system_profiler SPAirPortDataType` (text and -json), `wdutil info`, and the
choice between them.

Real captures come from tests/fixtures/wifi/ (macos_*.txt, each naming its source).
Samples written here are CONSTRUCTED, each says from what: the redacted SSID, a 6 GHz link
and a full sectioned `wdutil info`, which no public capture shows whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from support.wifi_samples import sample

from agent.config import WifiProbeConfig
from agent.probes.wifi import macos
from agent.probes.wifi.reading import NotParsable
from agent.probes.wifi.source import NoWirelessInterface, Unavailable, WifiSource

TEXT = sample("macos_system_profiler_airport.txt")
JSON_CONNECTED = sample("macos_system_profiler_json.txt", 0)
JSON_OFF = sample("macos_system_profiler_json.txt", 1)
WDUTIL = sample("macos_wdutil_info.txt")
OWN_MACS = ("a0:78:17:a3:ed:23", "56:5e:fb:2c:37:7d", "2e:50:d5:80:a5:7c", "ee:24:6a:0f:37:d2",
            "3c:22:fb:01:02:03")

# Constructed: `sudo wdutil info` with its sections, in the field order wdutil prints
# (as public tools that parse it quote it: fastfetch's comment of `wdutil info`); values
# made up, the BLUETOOTH section reduced to lines that would confuse a section-blind reader.
WDUTIL_SECTIONS = """\
user@mac ~ % sudo wdutil info

\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014
NETWORK
\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014
    Primary IPv4         : en0 (Wi-Fi / 8FE3682E-51CE-450A-9A7D-B2A02AA407F2)
                         : 192.168.1.20

\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014
WIFI
\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014
    MAC Address          : 3c:22:fb:01:02:03 (hw=3c:22:fb:01:02:03)
    Interface Name       : en0
    Power                : On [On]
    Op Mode              : STA
    SSID                 : Schoolnet-Personeel
    BSSID                : 3C:37:86:15:A0:01
    RSSI                 : -58 dBm
    CCA                  : 29 %
    Noise                : -96 dBm
    Tx Rate              : 173.0 Mbps
    Security             : WPA2 Enterprise
    PHY Mode             : 11ac
    MCS Index            : 8
    Guard Interval       : 400
    NSS                  : 2
    Channel              : 5g100/80
    Country Code         : NL

\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014
BLUETOOTH
\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014\u2014
    Power                : Off
    Address              : 3c:22:fb:0a:0b:0c
"""

# Constructed from the documented -json keys (see the fixture header): a Mac without the
# Location permission on a 6 GHz network, its status key left out as some builds do.
JSON_REDACTED_6GHZ = json.dumps({"SPAirPortDataType": [{"spairport_airport_interfaces": [
    {"_name": "en0",
     "spairport_current_network_information": {
         "_name": "<redacted>", "spairport_network_channel": "37 (6GHz, 160MHz)",
         "spairport_network_phymode": "802.11ax", "spairport_network_rate": 1152,
         "spairport_signal_noise": "-52 dBm / -90 dBm"},
     "spairport_airport_other_local_wireless_networks": [
         {"_name": "<redacted>", "spairport_network_channel": "6 (2GHz, 20MHz)"}],
     "spairport_wireless_mac_address": "3c:22:fb:01:02:03"},
    {"_name": "awdl0", "spairport_current_network_information": {
        "spairport_network_type": "spairport_network_type_station"}}]}]}, indent=2)


def everything(result: object) -> str:
    return repr(result)


def test_text_link_of_the_connected_interface() -> None:
    links, _scans = macos.parse_system_profiler(TEXT)
    assert len(links) == 1  # awdl0 is AirDrop's interface, not a link
    link = links[0]
    assert (link.source, link.interface, link.connected) == ("system-profiler", "en0", True)
    assert link.ssid == "G-HOME"
    assert (link.signal_dbm, link.noise_dbm, link.signal_converted) == (-53.0, -90.0, False)
    assert (link.channel, link.band, link.frequency_hertz) == (64, "5GHz", 5_320_000_000)
    assert link.channel_width_hertz == 80_000_000
    assert link.tx_bitrate_bits_per_second == 206e6  # "Transmit Rate: 206" is Mbps
    assert link.rx_bitrate_bits_per_second is None  # system_profiler does not say
    assert link.phy_mode == "802.11ax"
    assert link.bssid is None


def test_text_scan_lists_every_network_per_band_without_bssids() -> None:
    _links, scans = macos.parse_system_profiler(TEXT)
    assert len(scans) == 21  # the network the Mac is on, then the 20 others
    assert scans[0].associated and scans[0].ssid == "G-HOME" and scans[0].signal_dbm == -53.0
    assert not any(entry.associated for entry in scans[1:])
    assert all(entry.bssid is None for entry in scans)
    names = [entry.ssid for entry in scans]
    assert names.count("Fios-h5FyK") == 3 and "Router?  I hardly know her!" in names
    router = [entry for entry in scans if entry.ssid == "Router?  I hardly know her!"]
    assert [(entry.channel, entry.band, entry.signal_dbm) for entry in router] == [
        (11, "2.4GHz", -49.0), (120, "5GHz", -74.0)]
    wide = next(entry for entry in scans if entry.ssid == "Verizon_L7ZQ6V")
    assert (wide.channel, wide.frequency_hertz) == (1, 2_412_000_000)  # "1 (2GHz, 40MHz)"


def test_the_macs_own_addresses_are_never_read() -> None:
    for result in (macos.parse_system_profiler(TEXT), macos.parse_system_profiler_json(JSON_CONNECTED),
                   macos.parse_system_profiler_json(JSON_REDACTED_6GHZ),
                   macos.parse_wdutil_info(WDUTIL_SECTIONS)):
        assert not any(mac in everything(result) for mac in OWN_MACS), result


def test_redacted_ssids_are_none() -> None:
    text = TEXT.replace("            G-HOME:\n              PHY Mode: 802.11ax",
                        "            <redacted>:\n              PHY Mode: 802.11ax")
    text = text.replace("606YarnFactory:", "<redacted>:")
    links, scans = macos.parse_system_profiler(text)
    assert links[0].ssid is None and links[0].signal_dbm == -53.0
    assert scans[0].ssid is None and scans[1].ssid is None


def test_pasted_text_with_prompt_bom_and_crlf_reads_the_same() -> None:
    prompt = "\ufeffjuf@MacBook ~ % system_profiler SPAirPortDataType\r\n"
    pasted = prompt + TEXT.replace("\n", "\r\n") + "   \r\n"
    assert macos.parse_system_profiler(pasted) == macos.parse_system_profiler(TEXT)
    assert macos.is_system_profiler(pasted)


def test_text_that_is_not_system_profiler_says_to_use_json() -> None:
    with pytest.raises(NotParsable, match="system_profiler -json SPAirPortDataType"):
        macos.parse_system_profiler("WLAN:\n  Schnittstellen:\n    en0:\n      Status: Verbunden\n")


def test_json_link_and_scan() -> None:
    links, scans = macos.parse_system_profiler_json(JSON_CONNECTED)
    assert len(links) == 1
    link = links[0]
    assert (link.interface, link.connected, link.ssid) == ("en0", True, "SSID-7")
    assert (link.signal_dbm, link.noise_dbm) == (-58.0, -97.0)
    assert (link.channel, link.band, link.frequency_hertz, link.channel_width_hertz) == (
        6, "2.4GHz", 2_437_000_000, 20_000_000)
    assert (link.tx_bitrate_bits_per_second, link.phy_mode) == (144e6, "802.11n")
    assert [entry.ssid for entry in scans] == ["SSID-7", "SSID-1", "SSID-2", "SSID-3", "SSID-4", "SSID-5",
                                               "SSID-6"]
    assert [entry.signal_dbm for entry in scans] == [-58.0, None, None, None, None, -55.0, None]
    assert (scans[2].channel, scans[2].band, scans[2].frequency_hertz) == (44, "5GHz", 5_220_000_000)


def test_json_with_wifi_switched_off() -> None:
    links, scans = macos.parse_system_profiler_json(JSON_OFF)
    assert [(link.interface, link.connected, link.signal_dbm) for link in links] == [("en0", False, None)]
    assert scans == []


def test_json_redacted_6ghz_link_without_status() -> None:
    links, scans = macos.parse_system_profiler_json(JSON_REDACTED_6GHZ)
    link, = links
    assert (link.connected, link.ssid, link.signal_dbm) == (True, None, -52.0)
    assert (link.channel, link.band, link.frequency_hertz) == (37, "6GHz", 6_135_000_000)
    assert link.channel_width_hertz == 160_000_000 and link.tx_bitrate_bits_per_second == 1152e6
    assert [(entry.ssid, entry.associated) for entry in scans] == [(None, True), (None, False)]


def test_json_after_a_prompt_and_bad_json() -> None:
    assert macos.parse_system_profiler_json("$ system_profiler -json SPAirPortDataType\n" + JSON_CONNECTED)[0]
    assert macos.is_system_profiler_json(JSON_CONNECTED) and not macos.is_system_profiler(JSON_CONNECTED)
    with pytest.raises(NotParsable, match="bad JSON"):
        macos.parse_system_profiler_json('{"SPAirPortDataType": [')
    with pytest.raises(NotParsable, match="no SPAirPortDataType list"):
        macos.parse_system_profiler_json('{"SPUSBDataType": []}')


def test_a_mac_without_wifi_has_no_links() -> None:
    empty = '{"SPAirPortDataType": [{"spairport_software_information": {}}]}'
    assert macos.parse_system_profiler_json(empty) == ([], [])


def test_wdutil_excerpt() -> None:
    link = macos.parse_wdutil_info(WDUTIL)
    assert (link.source, link.connected) == ("wdutil", True)
    assert (link.ssid, link.bssid) == (None, None)  # "<redacted>"
    assert (link.signal_dbm, link.noise_dbm) == (-61.0, -101.0)
    assert link.tx_bitrate_bits_per_second == 86e6
    assert link.phy_mode == "11ac"
    # "5g36/20": band, channel, width.
    assert (link.band, link.channel, link.frequency_hertz, link.channel_width_hertz) == (
        "5GHz", 36, 5_180_000_000, 20_000_000)


def test_wdutil_reads_its_wifi_section_only() -> None:
    link = macos.parse_wdutil_info(WDUTIL_SECTIONS)
    assert (link.interface, link.connected, link.ssid, link.bssid) == (
        "en0", True, "Schoolnet-Personeel", "3c:37:86:15:a0:01")
    assert (link.channel, link.band, link.channel_width_hertz) == (100, "5GHz", 80_000_000)
    # Where the WIFI section has no Power line, BLUETOOTH's "Power : Off" is not Wi-Fi's.
    no_power = WDUTIL_SECTIONS.replace("    Power                : On [On]\n", "")
    assert macos.parse_wdutil_info(no_power).connected is True
    assert macos.is_wdutil_info(WDUTIL_SECTIONS) and macos.is_wdutil_info(WDUTIL)
    assert not macos.is_wdutil_info(TEXT) and not macos.is_system_profiler(WDUTIL)


def test_wdutil_not_associated_or_powered_off() -> None:
    idle = WDUTIL.replace("-61 dBm", "0 dBm").replace("-101 dBm", "0 dBm").replace("5g36/20", "None")
    assert macos.parse_wdutil_info(idle).connected is False
    off = WDUTIL_SECTIONS.replace("Power                : On [On]", "Power                : Off [Off]")
    link = macos.parse_wdutil_info(off)
    assert (link.connected, link.signal_dbm, link.interface) == (False, None, "en0")
    six = macos.parse_wdutil_info(WDUTIL.replace("5g36/20", "6g37/160"))
    assert (six.band, six.frequency_hertz, six.channel_width_hertz) == ("6GHz", 6_135_000_000, 160_000_000)
    with pytest.raises(NotParsable):
        macos.parse_wdutil_info("usage: wdutil [info|diagnose|log]\n")


class FakeMac:
    def __init__(self, profiler: str = JSON_CONNECTED, wdutil: str | Unavailable = WDUTIL_SECTIONS) -> None:
        self.replies: dict[tuple[str, ...], str | Unavailable] = {
            macos.SYSTEM_PROFILER_JSON: profiler, macos.WDUTIL_INFO: wdutil}
        self.calls: list[tuple[str, ...]] = []
        self.now = 1000.0

    def run(self, argv: Sequence[str]) -> str:
        self.calls.append(tuple(argv))
        reply = self.replies[tuple(argv)]
        if isinstance(reply, Unavailable):
            raise reply
        return reply

    def open(self, uid: int, **values: str) -> WifiSource:
        return macos.open_macos_source(WifiProbeConfig(**values), runner=self.run,
                                       euid=lambda: uid, clock=lambda: self.now)


def test_without_root_system_profiler_serves_link_and_scan_from_one_run() -> None:
    mac = FakeMac()
    chosen = mac.open(501)
    assert (chosen.name, chosen.interface) == ("system_profiler", "en0")
    mac.calls.clear()
    assert chosen.link().ssid == "SSID-7"
    assert len(chosen.scan(trigger=True)) == 7
    assert mac.calls == [macos.SYSTEM_PROFILER_JSON]  # a 2-5 s run is not repeated within a probe run
    mac.now += macos.SYSTEM_PROFILER_REUSE_SECONDS
    chosen.link()
    assert mac.calls == [macos.SYSTEM_PROFILER_JSON] * 2
    assert getattr(chosen, "last_scan_triggered", None) is False


def test_as_root_wdutil_reads_the_link_and_system_profiler_the_scan() -> None:
    mac = FakeMac()
    chosen = mac.open(0)
    assert chosen.name == "wdutil"
    link = chosen.link()
    assert (link.source, link.bssid, link.noise_dbm) == ("wdutil", "3c:37:86:15:a0:01", -96.0)
    assert len(chosen.scan(trigger=False)) == 7


def test_wdutil_excerpt_without_an_interface_line_takes_the_chosen_interface() -> None:
    chosen = FakeMac(wdutil=WDUTIL).open(0)
    assert chosen.link().interface == "en0"


def test_as_root_a_failing_wdutil_falls_back_unless_it_was_asked_for() -> None:
    broken = Unavailable("wdutil is not installed")
    assert FakeMac(wdutil=broken).open(0).name == "system_profiler"
    with pytest.raises(Unavailable, match="wdutil is not installed"):
        FakeMac(wdutil=broken).open(0, source="wdutil")
    with pytest.raises(Unavailable, match="wdutil needs root"):
        FakeMac().open(501, source="wdutil")
    assert FakeMac().open(0, source="system_profiler").name == "system_profiler"


def test_interface_choice_and_absence() -> None:
    with pytest.raises(NoWirelessInterface, match="no Wi-Fi interface"):
        FakeMac(profiler='{"SPAirPortDataType": [{}]}').open(501)
    with pytest.raises(Unavailable, match="no Wi-Fi interface named 'en1'; this Mac has: en0"):
        FakeMac().open(501, interface="en1")
    assert FakeMac(profiler=JSON_OFF).open(501).link().connected is False
    with pytest.raises(Unavailable, match="'iw' does not exist on macOS"):
        FakeMac().open(501, source="iw")


def test_system_profiler_failing_later_is_unavailable_with_its_reason() -> None:
    mac = FakeMac()
    chosen = mac.open(501)
    mac.now += 60
    mac.replies[macos.SYSTEM_PROFILER_JSON] = "not json at all"
    with pytest.raises(Unavailable, match="system_profiler: not `system_profiler -json"):
        chosen.link()
