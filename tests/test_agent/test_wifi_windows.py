"""Choosing the Wi-Fi source on Windows: the WLAN API first, netsh as the fallback, and
netsh's failures (no interface, the 24H2 location refusal) said so the coordinator can act.

The WLAN API is the fake DLL of tests/support/fake_wlanapi.py; netsh is a fake runner answering with
the real captures in tests/fixtures/wifi/.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

import pytest
from support.fake_wlanapi import GUID_A, FakeWlanDll
from support.wifi_samples import sample

from agent.config import WifiProbeConfig
from agent.probes.wifi import windows
from agent.probes.wifi.netsh import LocationPermissionDenied
from agent.probes.wifi.source import NoWirelessInterface, Unavailable
from agent.probes.wifi.wlanapi import WlanApiSource

ENGLISH = sample("windows_netsh_show_interfaces.txt", 0)
GERMAN = sample("windows_netsh_show_interfaces.txt", 1)
NETWORKS = sample("windows_netsh_show_networks_bssid.txt", 0)
REFUSAL = ("There is 1 interface on the system:\nNetwork shell commands need location permission to "
           "access WLAN information.\nms-settings:privacy-location\n")


class FakeNetsh:
    """netsh as a runner: each command's reply, or the Unavailable run_tool would raise."""

    def __init__(self, interfaces: str = ENGLISH, networks: str = NETWORKS) -> None:
        self.replies: dict[tuple[str, ...], str | Unavailable] = {
            windows.NETSH_INTERFACES: interfaces, windows.NETSH_NETWORKS: networks}
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(tuple(argv))
        reply = self.replies[tuple(argv)]
        if isinstance(reply, Unavailable):
            raise reply
        return reply


def no_dll() -> object:
    raise Unavailable("the Windows WLAN API (wlanapi.dll) exists only on Windows")


def must_not_load() -> object:
    raise AssertionError("the WLAN API is not to be tried")


def config(**values: str) -> WifiProbeConfig:
    return WifiProbeConfig(**values)


def test_auto_uses_the_wlan_api_when_it_answers() -> None:
    dll, netsh = FakeWlanDll(), FakeNetsh()
    chosen = windows.open_windows_source(config(), load_dll=lambda: dll, runner=netsh,
                                         alias_of=lambda guid: "Wi-Fi")
    assert isinstance(chosen, WlanApiSource)
    assert (chosen.name, chosen.interface) == ("wlanapi", "Wi-Fi")
    assert chosen.link().signal_dbm == -58.0
    assert netsh.calls == []


def test_auto_falls_back_to_netsh_when_the_api_cannot_be_had() -> None:
    netsh = FakeNetsh()
    chosen = windows.open_windows_source(config(), load_dll=no_dll, runner=netsh)
    assert (chosen.name, chosen.interface) == ("netsh", "Wi-Fi")
    reading = chosen.link()
    assert (reading.source, reading.signal_dbm, reading.signal_converted) == ("netsh-interfaces", -73.5, True)
    entries = chosen.scan(trigger=True)
    assert [entry.bssid for entry in entries] == ["00:aa:f2:77:a5:53"]
    assert isinstance(chosen, windows.NetshSource)
    assert chosen.last_scan_triggered is False  # netsh cannot ask for a fresh scan
    assert netsh.calls == [windows.NETSH_INTERFACES] * 2 + [windows.NETSH_NETWORKS]


def test_each_named_source_is_used_alone() -> None:
    netsh = FakeNetsh()
    assert windows.open_windows_source(config(source="netsh"), load_dll=must_not_load,
                                       runner=netsh).name == "netsh"
    with pytest.raises(Unavailable, match="only on Windows"):
        windows.open_windows_source(config(source="wlanapi"), load_dll=no_dll, runner=netsh)
    assert netsh.calls == [windows.NETSH_INTERFACES]
    with pytest.raises(Unavailable, match=r"'nl80211' does not exist on Windows; use one of auto, "):
        windows.open_windows_source(config(source="nl80211"), load_dll=must_not_load, runner=netsh)


def test_no_wireless_interface_from_the_api_is_final() -> None:
    dll, netsh = FakeWlanDll(), FakeNetsh()
    dll.interfaces = []
    with pytest.raises(NoWirelessInterface):
        windows.open_windows_source(config(), load_dll=lambda: dll, runner=netsh)
    assert netsh.calls == []  # netsh asks the same service


def test_netsh_saying_there_is_no_wireless_interface() -> None:
    netsh = FakeNetsh(interfaces="\nThere is no wireless interface on the system.\n")
    with pytest.raises(NoWirelessInterface, match="no wireless interface"):
        windows.open_windows_source(config(), load_dll=no_dll, runner=netsh)


def test_the_location_refusal_becomes_the_instruction_whichever_way_netsh_says_it() -> None:
    for reply in (REFUSAL, Unavailable(f"netsh wlan show interfaces failed: {REFUSAL}")):
        netsh = FakeNetsh(interfaces=reply)  # type: ignore[arg-type]
        with pytest.raises(LocationPermissionDenied, match="Let desktop apps access your location"):
            windows.open_windows_source(config(), load_dll=no_dll, runner=netsh)
    # A working netsh that starts refusing later (the permission was switched off).
    netsh = FakeNetsh()
    chosen = windows.open_windows_source(config(source="netsh"), runner=netsh)
    netsh.replies[windows.NETSH_NETWORKS] = REFUSAL
    with pytest.raises(LocationPermissionDenied):
        chosen.scan(trigger=False)


def test_when_both_fail_both_reasons_are_given() -> None:
    netsh = FakeNetsh(interfaces=Unavailable(  # type: ignore[arg-type]
        "netsh wlan show interfaces failed: The Wireless AutoConfig Service (wlansvc) is not running."))
    with pytest.raises(Unavailable) as caught:
        windows.open_windows_source(config(), load_dll=no_dll, runner=netsh)
    assert str(caught.value) == ("WLAN API: the Windows WLAN API (wlanapi.dll) exists only on Windows; "
                                 "netsh: netsh wlan show interfaces failed: The Wireless AutoConfig "
                                 "Service (wlansvc) is not running.")


def test_netsh_output_it_cannot_read_is_quoted() -> None:
    netsh = FakeNetsh(interfaces="Il n'y a aucune interface sans fil sur le système.\n")
    with pytest.raises(Unavailable, match=r"said \"Il n'y a aucune interface sans fil sur le système.\""):
        windows.open_windows_source(config(source="netsh"), runner=netsh)


def two_interfaces() -> str:
    second = GERMAN.split("\n", 1)[1].replace(
        "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "0a1b2c3d-0000-4000-8000-00000000beef")
    return ENGLISH + second


def test_netsh_interface_by_name_or_guid_else_the_first_connected() -> None:
    text = two_interfaces()
    assert windows.open_windows_source(config(source="netsh"), runner=FakeNetsh(text)).interface == "Wi-Fi"
    by_guid = windows.open_windows_source(
        config(source="netsh", interface="{0A1B2C3D-0000-4000-8000-00000000BEEF}"), runner=FakeNetsh(text))
    assert by_guid.interface == "WLAN"
    assert by_guid.link().signal_percent == 43
    by_name = windows.open_windows_source(config(source="netsh", interface="wlan"), runner=FakeNetsh(text))
    assert by_name.link().channel == 116
    with pytest.raises(Unavailable, match=r"no Wi-Fi interface named 'Wi-Fi 3'; netsh lists: Wi-Fi \("):
        windows.open_windows_source(config(source="netsh", interface="Wi-Fi 3"), runner=FakeNetsh(text))


def test_netsh_link_follows_its_interface_when_the_order_changes() -> None:
    text = two_interfaces()
    netsh = FakeNetsh(text)
    chosen = windows.open_windows_source(config(source="netsh", interface="WLAN"), runner=netsh)
    netsh.replies[windows.NETSH_INTERFACES] = GERMAN.replace(
        "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "0a1b2c3d-0000-4000-8000-00000000beef") + ENGLISH
    assert chosen.link().interface == "WLAN"
    netsh.replies[windows.NETSH_INTERFACES] = ENGLISH
    with pytest.raises(Unavailable, match="no longer lists the Wi-Fi interface WLAN"):
        chosen.link()


def test_api_interface_by_guid_through_the_config() -> None:
    dll = FakeWlanDll()
    chosen = windows.open_windows_source(config(interface=GUID_A.upper()), load_dll=lambda: dll,
                                         runner=FakeNetsh(), alias_of=lambda guid: None)
    assert isinstance(chosen, WlanApiSource) and chosen.guid == GUID_A


def test_netsh_is_read_in_the_consoles_oem_code_page(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_run_tool(argv: Sequence[str], encoding: str | None = None, **_: object) -> str:
        seen.update(argv=tuple(argv), encoding=encoding)
        return ENGLISH

    monkeypatch.setattr(windows, "run_tool", fake_run_tool)
    real_lookup = codecs.lookup
    # Python has the "oem" codec only on Windows: here it is missing, there it is used.
    assert windows.console_encoding() is None
    monkeypatch.setattr(windows.codecs, "lookup",
                        lambda name: real_lookup("cp850") if name == "oem" else real_lookup(name))
    assert windows.console_encoding() == "oem"
    windows.run_netsh(windows.NETSH_INTERFACES)
    assert seen == {"argv": windows.NETSH_INTERFACES, "encoding": "oem"}
