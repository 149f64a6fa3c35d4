"""A fake wlanapi.dll for the Windows WLAN API tests: it hands out memory laid out as the
real DLL does, and checks that every allocation is freed and every handle closed.

The replies are packed with ``struct`` from the Windows SDK headers, byte for byte and
independently of agent/probes/wifi/wlanapi.py's ctypes declarations (so a wrong declaration
fails its tests):
  wlanapi.h   WLAN_INTERFACE_INFO_LIST / WLAN_INTERFACE_INFO (GUID, WCHAR[256], state),
              WLAN_CONNECTION_ATTRIBUTES (state, mode, WCHAR[256] profile,
              WLAN_ASSOCIATION_ATTRIBUTES, WLAN_SECURITY_ATTRIBUTES), WLAN_BSS_LIST /
              WLAN_BSS_ENTRY (360 bytes, ULONGLONG-aligned), WLAN_INTF_OPCODE values
  wlantypes.h DOT11_SSID (ULONG length + 32 bytes)
  windot11.h  DOT11_PHY_TYPE (7 = ht, 8 = vht, 10 = he)
and the information elements from IEEE 802.11-2020 §9.4.2 (SSID 0, DS Parameter Set 3,
BSS Load 11: station count u16 LE, utilisation u8, capacity u16).
"""

from __future__ import annotations

import ctypes
import struct
import uuid
from typing import Any

from agent.probes.wifi import wlanapi

GUID_A = "f899e530-fd03-44a9-8307-4d4fc4827eab"
GUID_B = "0a1b2c3d-0000-4000-8000-00000000beef"
AP = bytes.fromhex("3c378615a001")
AP_2 = bytes.fromhex("3c378615a002")
NEIGHBOUR = bytes.fromhex("12345678 9abc".replace(" ", ""))

CONNECTED, DISCONNECTED = 1, 4  # WLAN_INTERFACE_STATE
PHY_HT, PHY_HE = 7, 10


def interface_info(guid: str, description: str, state: int) -> bytes:
    # GUID (Data1-3 little-endian = uuid's bytes_le), WCHAR[256], WLAN_INTERFACE_STATE: 532 bytes
    name = description.encode("utf-16-le").ljust(512, b"\0")
    return uuid.UUID(guid).bytes_le + name + struct.pack("<I", state)


def interface_list(*infos: bytes) -> bytes:
    return struct.pack("<II", len(infos), 0) + b"".join(infos)


def connection_attributes(ssid: bytes, bssid: bytes, phy: int, quality: int, rx_kbps: int,
                          tx_kbps: int, state: int = CONNECTED) -> bytes:
    data = (struct.pack("<II", state, 1) + "Schoolnet".encode("utf-16-le").ljust(512, b"\0")
            # DOT11_SSID, DOT11_BSS_TYPE, DOT11_MAC_ADDRESS + 2 bytes padding, DOT11_PHY_TYPE,
            # uDot11PhyIndex, wlanSignalQuality, ulRxRate, ulTxRate
            + struct.pack("<I32sI6s2xIIIII", len(ssid), ssid, 1, bssid, phy, 0, quality, rx_kbps, tx_kbps)
            + struct.pack("<iiII", 1, 1, 6, 4))  # WLAN_SECURITY_ATTRIBUTES
    assert len(data) == 604
    return data


def elements(ssid: bytes, channel: int | None = None, stations: int | None = None,
             utilisation: int | None = None) -> bytes:
    blob = bytes([0, len(ssid)]) + ssid
    if channel is not None:
        blob += bytes([3, 1, channel])
    if stations is not None and utilisation is not None:
        blob += bytes([11, 5]) + struct.pack("<HBH", stations, utilisation, 0)
    return blob


def bss_list(*entries: dict[str, Any]) -> bytes:
    """WLAN_BSS_LIST: dwTotalSize, dwNumberOfItems, then the 360-byte entries, then the IE
    blobs, each entry's ulIeOffset counted from the start of that entry (as the API does)."""
    header, size = 8, 360
    blobs_at = header + size * len(entries)
    packed, blobs = b"", b""
    for index, entry in enumerate(entries):
        ies = entry.get("ies", b"")
        offset = entry.get("ie_offset", blobs_at + len(blobs) - (header + index * size))
        ssid = entry["ssid"]
        packed += struct.pack(
            "<I32sI6s2xIIiIBxH4xQQH2xII252sII",
            len(ssid), ssid, 0, entry["bssid"], 1, entry.get("phy", PHY_HE), entry["rssi"],
            entry.get("quality", 50), 1, 100, 0, 0, 0x431, entry["khz"], 0, b"", offset,
            entry.get("ie_size", len(ies)))
        blobs += ies
    body = packed + blobs
    return struct.pack("<II", header + len(body), len(entries)) + body


class FakeWlanDll:
    """wlanapi.dll's calls as the module makes them, with memory the caller must free."""

    def __init__(self) -> None:
        self.interfaces = [interface_info(GUID_A, "Intel(R) Wi-Fi 6 AX201 160MHz", CONNECTED)]
        self.connection: dict[str, bytes] = {GUID_A: connection_attributes(
            b"Schoolnet-Leerlingen", AP, PHY_HE, 80, 866_700, 576_500)}
        self.rssi: dict[str, int] = {GUID_A: -58}
        self.channel: dict[str, int] = {GUID_A: 36}
        self.bss = bss_list(
            {"ssid": b"Schoolnet-Leerlingen", "bssid": AP, "rssi": -58, "khz": 5_180_000,
             "ies": elements(b"Schoolnet-Leerlingen", stations=23, utilisation=60)},
            {"ssid": b"Schoolnet-Leerlingen", "bssid": AP_2, "rssi": 0, "quality": 40, "khz": 6_135_000},
            {"ssid": b"", "bssid": NEIGHBOUR, "rssi": -81, "khz": 2_462_000, "phy": PHY_HT,
             "ies": elements(b"", channel=11)})
        self.errors: dict[Any, int] = {}
        self.live: dict[int, ctypes.Array[ctypes.c_char]] = {}
        self.calls: list[str] = []
        self.handles_open = 0

    # --- helpers
    def _give(self, out: Any, data: bytes) -> None:
        buffer = ctypes.create_string_buffer(data, len(data))
        self.live[ctypes.addressof(buffer)] = buffer
        out.contents.value = ctypes.addressof(buffer)

    def _fail(self, *keys: Any) -> int:
        return next((self.errors[key] for key in keys if key in self.errors), 0)

    @staticmethod
    def _guid(pointer: Any) -> str:
        return str(uuid.UUID(bytes_le=bytes(pointer.contents)))

    def _check_handle(self, handle: Any) -> None:
        assert handle.value == 0xC0FFEE, "the handle WlanOpenHandle gave is passed on"

    # --- the DLL's functions
    def WlanOpenHandle(self, version: int, reserved: Any, negotiated: Any, handle: Any) -> int:
        self.calls.append("WlanOpenHandle")
        assert version == 2 and reserved is None
        if code := self._fail("WlanOpenHandle"):
            return code
        negotiated.contents.value, handle.contents.value = 2, 0xC0FFEE
        self.handles_open += 1
        return 0

    def WlanCloseHandle(self, handle: Any, reserved: Any) -> int:
        self._check_handle(handle)
        self.handles_open -= 1
        return 0

    def WlanEnumInterfaces(self, handle: Any, reserved: Any, out: Any) -> int:
        self._check_handle(handle)
        self.calls.append("WlanEnumInterfaces")
        if code := self._fail("WlanEnumInterfaces"):
            return code
        self._give(out, interface_list(*self.interfaces))
        return 0

    def WlanQueryInterface(self, handle: Any, guid: Any, opcode: int, reserved: Any, size: Any,
                           data: Any, value_type: Any) -> int:
        self._check_handle(handle)
        which = self._guid(guid)
        self.calls.append(f"WlanQueryInterface:{opcode:#x}")
        if code := self._fail(("WlanQueryInterface", opcode), "WlanQueryInterface"):
            return code
        if opcode == wlanapi.WLAN_INTF_OPCODE_CURRENT_CONNECTION:
            if which not in self.connection:
                return wlanapi.ERROR_INVALID_STATE
            reply = self.connection[which]
        elif opcode == 0x10000102:  # wlan_intf_opcode_rssi: LONG
            reply = struct.pack("<i", self.rssi[which])
        elif opcode == 8:  # wlan_intf_opcode_channel_number: ULONG
            reply = struct.pack("<I", self.channel[which])
        else:
            return wlanapi.ERROR_NOT_SUPPORTED
        size.contents.value = len(reply)
        self._give(data, reply)
        return 0

    def WlanGetNetworkBssList(self, handle: Any, guid: Any, ssid: Any, bss_type: int, secure: int,
                              reserved: Any, out: Any) -> int:
        self._check_handle(handle)
        self.calls.append("WlanGetNetworkBssList")
        assert ssid is None and bss_type == 3  # every BSS: dot11_BSS_type_any
        if code := self._fail("WlanGetNetworkBssList"):
            return code
        self._give(out, self.bss)
        return 0

    def WlanScan(self, handle: Any, guid: Any, ssid: Any, ie_data: Any, reserved: Any) -> int:
        self._check_handle(handle)
        self.calls.append(f"WlanScan:{self._guid(guid)}")
        return self._fail("WlanScan")

    def WlanFreeMemory(self, memory: Any) -> None:
        address = memory.value if isinstance(memory, ctypes.c_void_p) else memory
        assert address in self.live, "only memory the API handed out is freed, once"
        del self.live[address]
