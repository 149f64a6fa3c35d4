"""The Windows WLAN API binding, driven by a fake wlanapi.dll (tests/support/fake_wlanapi.py)
that hands out memory packed from the Windows SDK headers independently of the module's
ctypes declarations: layouts, the RSSI-over-quality rule, BSS Load from the IE blob, the
24H2 Location refusal, Win32 errors, and that all memory is freed and handles closed.
"""

from __future__ import annotations

import ctypes
import struct
import uuid
from typing import Any

import pytest
from support.fake_wlanapi import (
    AP,
    CONNECTED,
    DISCONNECTED,
    GUID_A,
    GUID_B,
    PHY_HT,
    FakeWlanDll,
    bss_list,
    connection_attributes,
    elements,
    interface_info,
)

from agent.probes.wifi import wlanapi
from agent.probes.wifi.netsh import LocationPermissionDenied
from agent.probes.wifi.source import NoWirelessInterface, Unavailable


@pytest.fixture
def dll() -> FakeWlanDll:
    return FakeWlanDll()


def source(dll: FakeWlanDll, sleeps: list[float] | None = None) -> wlanapi.WlanApiSource:
    return wlanapi.WlanApiSource(wlanapi.WlanApi(dll), GUID_A, "Wi-Fi",
                                 sleep=(sleeps.append if sleeps is not None else lambda _: None))


def assert_clean(dll: FakeWlanDll) -> None:
    assert dll.live == {}, "every WLAN API allocation is freed with WlanFreeMemory"
    assert dll.handles_open == 0, "every handle is closed"


def test_declared_structs_have_the_sdk_sizes_and_offsets() -> None:
    sizes = {wlanapi.GUID: 16, wlanapi.WLAN_INTERFACE_INFO: 532, wlanapi.DOT11_SSID: 36,
             wlanapi.WLAN_ASSOCIATION_ATTRIBUTES: 68, wlanapi.WLAN_CONNECTION_ATTRIBUTES: 604,
             wlanapi.WLAN_BSS_ENTRY: 360}
    assert {struct_type: ctypes.sizeof(struct_type) for struct_type in sizes} == sizes
    entry = wlanapi.WLAN_BSS_ENTRY
    offsets = (entry.lRssi.offset, entry.ullTimestamp.offset, entry.ulChCenterFrequency.offset,
               entry.ulIeOffset.offset)
    assert offsets == (56, 72, 92, 352)


def test_link_prefers_the_rssi_in_dbm_over_signal_quality(dll: FakeWlanDll) -> None:
    reading = source(dll).link()
    assert reading.source == "wlanapi" and reading.interface == "Wi-Fi" and reading.connected
    assert reading.ssid == "Schoolnet-Leerlingen"
    assert reading.bssid == "3c:37:86:15:a0:01"
    assert (reading.signal_dbm, reading.signal_percent, reading.signal_converted) == (-58.0, None, False)
    # The frequency comes from the connected BSSID's BSS entry (kHz), the channel from its query.
    assert (reading.frequency_hertz, reading.band, reading.channel) == (5_180_000_000, "5GHz", 36)
    assert reading.rx_bitrate_bits_per_second == 866.7e6  # ulRxRate is kbit/s
    assert reading.tx_bitrate_bits_per_second == 576.5e6
    assert reading.phy_mode == "802.11ax"
    assert_clean(dll)


def test_link_converts_signal_quality_only_when_the_rssi_is_missing(dll: FakeWlanDll) -> None:
    dll.errors[("WlanQueryInterface", wlanapi.WLAN_INTF_OPCODE_RSSI)] = wlanapi.ERROR_NOT_SUPPORTED
    reading = source(dll).link()
    assert (reading.signal_dbm, reading.signal_percent, reading.signal_converted) == (-60.0, 80.0, True)
    assert_clean(dll)


def test_link_of_a_disconnected_interface_has_no_radio_values(dll: FakeWlanDll) -> None:
    dll.interfaces = [interface_info(GUID_A, "Intel(R) Wi-Fi 6 AX201 160MHz", DISCONNECTED)]
    reading = source(dll).link()
    assert reading.connected is False and reading.interface == "Wi-Fi"
    assert reading.signal_dbm is None and reading.ssid is None
    assert not any(call.startswith("WlanQueryInterface") for call in dll.calls)
    # The state can change between the two calls: the API then says ERROR_INVALID_STATE.
    dll.interfaces = [interface_info(GUID_A, "Intel(R) Wi-Fi 6 AX201 160MHz", CONNECTED)]
    del dll.connection[GUID_A]
    assert source(dll).link().connected is False
    assert_clean(dll)


def test_without_the_bss_entry_a_wifi6_link_does_not_guess_its_band(dll: FakeWlanDll) -> None:
    dll.bss = bss_list()  # the connected BSSID is not (yet) in the list
    reading = source(dll).link()
    assert (reading.channel, reading.frequency_hertz, reading.band) == (36, None, None)
    dll.connection[GUID_A] = connection_attributes(b"Schoolnet", AP, PHY_HT, 80, 144_000, 144_000)
    reading = source(dll).link()  # 802.11n cannot be on 6 GHz: channel 36 is 5180 MHz
    assert (reading.channel, reading.frequency_hertz, reading.band) == (36, 5_180_000_000, "5GHz")


def test_access_denied_means_the_location_permission_is_off(dll: FakeWlanDll) -> None:
    dll.errors[("WlanQueryInterface", wlanapi.WLAN_INTF_OPCODE_CURRENT_CONNECTION)] = 5
    with pytest.raises(LocationPermissionDenied) as caught:
        source(dll).link()
    assert isinstance(caught.value, Unavailable)
    assert "Let desktop apps access your location" in str(caught.value)
    assert "WlanQueryInterface" in str(caught.value)
    assert_clean(dll)
    dll.errors = {"WlanGetNetworkBssList": 5}
    with pytest.raises(LocationPermissionDenied):
        source(dll).scan(trigger=False)
    assert_clean(dll)


def test_other_errors_name_the_call_and_the_win32_code(dll: FakeWlanDll) -> None:
    dll.errors["WlanOpenHandle"] = wlanapi.ERROR_SERVICE_NOT_ACTIVE
    with pytest.raises(wlanapi.WlanApiError) as caught:
        source(dll).link()
    assert str(caught.value) == ("WlanOpenHandle failed with Win32 error 1062 (the WLAN AutoConfig "
                                 "service (WlanSvc) is not running: start it in services.msc)")
    dll.errors = {("WlanQueryInterface", wlanapi.WLAN_INTF_OPCODE_CURRENT_CONNECTION): 1234}
    with pytest.raises(wlanapi.WlanApiError, match=r"^WlanQueryInterface failed with Win32 error 1234$"):
        source(dll).link()
    assert_clean(dll)


def test_triggered_scan_waits_for_the_driver_then_reads_bss_load(dll: FakeWlanDll) -> None:
    sleeps: list[float] = []
    wifi = source(dll, sleeps)
    entries = wifi.scan(trigger=True)
    assert dll.calls.index(f"WlanScan:{GUID_A}") < dll.calls.index("WlanGetNetworkBssList")
    assert sleeps == [4.0] and wifi.last_scan_triggered is True
    first, six_ghz, neighbour = entries
    assert (first.ssid, first.bssid, first.associated) == ("Schoolnet-Leerlingen", "3c:37:86:15:a0:01", True)
    assert (first.signal_dbm, first.signal_converted) == (-58.0, False)
    assert (first.frequency_hertz, first.channel, first.band) == (5_180_000_000, 36, "5GHz")
    assert (first.station_count, first.channel_utilization_ratio) == (23, 60 / 255)
    # lRssi 0 is no reading: the link quality is converted instead, and says so.
    assert (six_ghz.signal_dbm, six_ghz.signal_percent, six_ghz.signal_converted) == (-80.0, 40.0, True)
    assert (six_ghz.channel, six_ghz.band, six_ghz.associated) == (37, "6GHz", False)
    assert six_ghz.station_count is None  # no BSS Load element
    assert (neighbour.ssid, neighbour.bssid, neighbour.channel, neighbour.band) == (
        "", "12:34:56:78:9a:bc", 11, "2.4GHz")
    assert_clean(dll)


def test_a_refused_scan_reads_the_cached_list(dll: FakeWlanDll) -> None:
    dll.errors["WlanScan"] = wlanapi.ERROR_NDIS_DOT11_POWER_STATE_INVALID
    sleeps: list[float] = []
    wifi = source(dll, sleeps)
    assert len(wifi.scan(trigger=True)) == 3
    assert sleeps == [] and wifi.last_scan_triggered is False
    assert len(wifi.scan(trigger=False)) == 3
    assert sum(call.startswith("WlanScan") for call in dll.calls) == 1
    assert_clean(dll)


def test_information_elements_outside_the_list_are_not_read(dll: FakeWlanDll) -> None:
    dll.bss = bss_list({"ssid": b"Schoolnet", "bssid": AP, "rssi": -60, "khz": 2_437_000,
                        "ies": elements(b"Schoolnet", stations=9, utilisation=10),
                        "ie_size": 4096})  # claims far more than the list holds
    entry, = source(dll).scan(trigger=False)
    assert (entry.station_count, entry.channel_utilization_ratio) == (None, None)
    assert (entry.signal_dbm, entry.channel) == (-60.0, 6)
    assert_clean(dll)


def test_a_list_shorter_than_its_count_is_refused(dll: FakeWlanDll) -> None:
    dll.bss = struct.pack("<II", 8 + 100, 2) + bytes(100)
    with pytest.raises(Unavailable, match="WlanGetNetworkBssList returned"):
        source(dll).scan(trigger=False)
    assert_clean(dll)


def test_open_picks_the_connected_interface_and_finds_one_by_name_guid_or_adapter(dll: FakeWlanDll) -> None:
    dll.interfaces = [interface_info(GUID_B, "Realtek USB", DISCONNECTED),
                      interface_info(GUID_A, "Intel(R) Wi-Fi 6 AX201 160MHz", CONNECTED)]
    aliases = {GUID_A: "Wi-Fi", GUID_B: "Wi-Fi 2"}
    api = wlanapi.WlanApi(dll)
    chosen = wlanapi.open_wlanapi_source(api, "", alias_of=aliases.get)
    assert (chosen.guid, chosen.interface, chosen.name) == (GUID_A, "Wi-Fi", "wlanapi")
    for wanted in ("wi-fi 2", "{0A1B2C3D-0000-4000-8000-00000000BEEF}", "Realtek USB"):
        assert wlanapi.open_wlanapi_source(api, wanted, alias_of=aliases.get).guid == GUID_B
    with pytest.raises(Unavailable, match=r"no Wi-Fi interface named 'WLAN'; this machine has: Wi-Fi 2 \("):
        wlanapi.open_wlanapi_source(api, "WLAN", alias_of=aliases.get)
    # Without a Windows name the adapter's description names the interface.
    assert wlanapi.open_wlanapi_source(api, "", alias_of=lambda guid: None).interface == (
        "Intel(R) Wi-Fi 6 AX201 160MHz")
    assert_clean(dll)


def test_no_interface_at_all_is_no_wireless_interface(dll: FakeWlanDll) -> None:
    dll.interfaces = []
    with pytest.raises(NoWirelessInterface, match="no Wi-Fi interface"):
        wlanapi.open_wlanapi_source(wlanapi.WlanApi(dll), "", alias_of=lambda guid: None)
    assert_clean(dll)


def test_a_vanished_interface_is_said_plainly(dll: FakeWlanDll) -> None:
    dll.interfaces = [interface_info(GUID_B, "Realtek USB", CONNECTED)]
    with pytest.raises(Unavailable, match=f"Wi-Fi interface Wi-Fi \\({GUID_A}\\) is gone"):
        source(dll).link()
    assert_clean(dll)


@pytest.mark.skipif(hasattr(ctypes, "WinDLL"), reason="Windows loads the real DLL; CI (Linux) runs this")
def test_the_module_loads_here_and_says_the_dll_is_windows_only() -> None:
    with pytest.raises(Unavailable, match="only on Windows"):
        wlanapi.load_wlanapi()
    assert wlanapi.interface_alias_from_iphlpapi(GUID_A) is None


def test_alias_lookup_through_iphlpapi() -> None:
    class FakeIphlpapi:
        def ConvertInterfaceGuidToLuid(self, guid: Any, luid: Any) -> int:
            assert str(uuid.UUID(bytes_le=bytes(guid.contents))) == GUID_A
            luid.contents.value = 0x0047000001000000
            return 0

        def ConvertInterfaceLuidToAlias(self, luid: Any, alias: Any, length: int) -> int:
            assert luid.contents.value == 0x0047000001000000 and length == 257
            alias.value = "Wi-Fi"
            return 0

    assert wlanapi.alias_via(FakeIphlpapi(), GUID_A) == "Wi-Fi"


def test_guid_text_round_trips_through_the_windows_layout() -> None:
    raw = wlanapi.guid_struct("{F899E530-FD03-44A9-8307-4D4FC4827EAB}")
    assert (raw.Data1, raw.Data2, raw.Data3) == (0xF899E530, 0xFD03, 0x44A9)
    assert bytes(raw.Data4) == bytes.fromhex("83074d4fc4827eab")
    assert wlanapi.guid_text(raw) == GUID_A
