"""Windows' native Wi-Fi API (wlanapi.dll) through ctypes: the link in dBm, and the BSS
list with each access point's information elements (for its BSS Load).

netsh only prints a signal percentage; WlanQueryInterface(wlan_intf_opcode_rssi) gives the
RSSI in dBm, and WlanGetNetworkBssList each access point's RSSI, centre frequency and raw
beacon elements. Struct layouts are those of the Windows SDK headers wlanapi.h,
windot11.h and wlantypes.h (cited per struct); they are declared with fixed-width ctypes
(never c_ulong, which is 8 bytes on 64-bit Linux, nor c_wchar, which is 4 bytes there) so the
same declarations decode the DLL's memory on Windows and the tests' buffers on Linux.

The DLL is injected (``WlanApi(dll)``): anything with the same functions will do, which is how
the tests run here without Windows. ``ctypes.WinDLL`` exists only on Windows, so
load_wlanapi looks it up when called, never at import.
"""

from __future__ import annotations

import ctypes
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ctypes import POINTER, Structure, c_int32, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p
from dataclasses import dataclass
from typing import Any

from agent.probes.wifi import ies, radio
from agent.probes.wifi.netsh import LOCATION_PERMISSION_MESSAGE, LocationPermissionDenied
from agent.probes.wifi.reading import LinkReading, ScanEntry
from agent.probes.wifi.source import NoWirelessInterface, Unavailable

log = logging.getLogger("schoolnet.agent.wifi")

SOURCE = "wlanapi"

# WlanOpenHandle's dwClientVersion: 2 = the Windows Vista-and-later API (wlanapi.h).
CLIENT_VERSION = 2
# Microsoft: a driver must finish a scan within 4 seconds of WlanScan; then the BSS list holds it.
SCAN_SETTLE_SECONDS = 4.0

# Win32 error codes (winerror.h) these calls return.
ERROR_SUCCESS = 0
ERROR_ACCESS_DENIED = 5  # Windows 11 24H2+: the Location permission is off
ERROR_INVALID_HANDLE = 6
ERROR_NOT_ENOUGH_MEMORY = 8
ERROR_NOT_SUPPORTED = 50
ERROR_INVALID_PARAMETER = 87
ERROR_SERVICE_NOT_ACTIVE = 1062
ERROR_NOT_FOUND = 1168
ERROR_INVALID_STATE = 5023  # current_connection asked of an interface that is not connected
ERROR_NDIS_DOT11_POWER_STATE_INVALID = 0x80342002  # the radio is off

_WHAT_IT_MEANS = {
    ERROR_INVALID_HANDLE: "the WLAN service closed the session (was it restarted?)",
    ERROR_NOT_ENOUGH_MEMORY: "out of memory",
    ERROR_NOT_SUPPORTED: "the Wi-Fi driver does not support it",
    ERROR_INVALID_PARAMETER: "the interface is gone",
    ERROR_SERVICE_NOT_ACTIVE: "the WLAN AutoConfig service (WlanSvc) is not running: start it in "
                              "services.msc",
    ERROR_NOT_FOUND: "the interface is gone",
    ERROR_INVALID_STATE: "the interface is not connected",
    ERROR_NDIS_DOT11_POWER_STATE_INVALID: "the Wi-Fi radio is switched off (flight mode or the Wi-Fi switch)",
}

# WLAN_INTF_OPCODE (wlanapi.h): autoconf opcodes count up from 0, MSM ones from 0x10000100.
WLAN_INTF_OPCODE_CURRENT_CONNECTION = 7
WLAN_INTF_OPCODE_CHANNEL_NUMBER = 8
WLAN_INTF_OPCODE_RSSI = 0x10000102

# WLAN_INTERFACE_STATE (wlanapi.h).
WLAN_INTERFACE_STATE_CONNECTED = 1

# DOT11_BSS_TYPE (wlantypes.h).
DOT11_BSS_TYPE_ANY = 3

# DOT11_PHY_TYPE (windot11.h) as the 802.11 amendment that defines it.
PHY_TYPES = {4: "802.11a", 5: "802.11b", 6: "802.11g", 7: "802.11n", 8: "802.11ac",
             9: "802.11ad", 10: "802.11ax", 11: "802.11be"}

WLAN_MAX_NAME_LENGTH = 256  # wlanapi.h
DOT11_SSID_MAX_LENGTH = 32  # wlantypes.h
DOT11_RATE_SET_MAX_LENGTH = 126  # windot11.h
# Sanity bounds: a list claiming more than this is not memory worth reading.
_MAX_INTERFACES = 64
_MAX_BSS_ENTRIES = 4096
_MAX_BSS_LIST_BYTES = 16 * 1024 * 1024

WCHAR = c_uint16  # UTF-16 code unit, as on Windows


class GUID(Structure):  # guiddef.h
    _fields_ = [("Data1", c_uint32), ("Data2", c_uint16), ("Data3", c_uint16),
                ("Data4", c_uint8 * 8)]


class WLAN_INTERFACE_INFO(Structure):  # wlanapi.h, 532 bytes
    _fields_ = [("InterfaceGuid", GUID),
                ("strInterfaceDescription", WCHAR * WLAN_MAX_NAME_LENGTH),
                ("isState", c_uint32)]  # WLAN_INTERFACE_STATE


class WLAN_INTERFACE_INFO_LIST_HEADER(Structure):
    """wlanapi.h's WLAN_INTERFACE_INFO_LIST up to its InterfaceInfo[dwNumberOfItems]."""

    _fields_ = [("dwNumberOfItems", c_uint32), ("dwIndex", c_uint32)]


class DOT11_SSID(Structure):  # wlantypes.h, 36 bytes
    _fields_ = [("uSSIDLength", c_uint32), ("ucSSID", c_uint8 * DOT11_SSID_MAX_LENGTH)]


class WLAN_ASSOCIATION_ATTRIBUTES(Structure):  # wlanapi.h, 68 bytes
    _fields_ = [("dot11Ssid", DOT11_SSID),
                ("dot11BssType", c_uint32),  # DOT11_BSS_TYPE
                ("dot11Bssid", c_uint8 * 6),  # DOT11_MAC_ADDRESS; 2 bytes padding follow
                ("dot11PhyType", c_uint32),  # DOT11_PHY_TYPE
                ("uDot11PhyIndex", c_uint32),
                ("wlanSignalQuality", c_uint32),  # 0-100: 0 = -100 dBm, 100 = -50 dBm
                ("ulRxRate", c_uint32),  # kbit/s
                ("ulTxRate", c_uint32)]  # kbit/s


class WLAN_SECURITY_ATTRIBUTES(Structure):  # wlanapi.h, 16 bytes
    _fields_ = [("bSecurityEnabled", c_int32), ("bOneXEnabled", c_int32),
                ("dot11AuthAlgorithm", c_uint32), ("dot11CipherAlgorithm", c_uint32)]


class WLAN_CONNECTION_ATTRIBUTES(Structure):  # wlanapi.h, 604 bytes
    _fields_ = [("isState", c_uint32),  # WLAN_INTERFACE_STATE
                ("wlanConnectionMode", c_uint32),
                ("strProfileName", WCHAR * WLAN_MAX_NAME_LENGTH),
                ("wlanAssociationAttributes", WLAN_ASSOCIATION_ATTRIBUTES),
                ("wlanSecurityAttributes", WLAN_SECURITY_ATTRIBUTES)]


class WLAN_RATE_SET(Structure):  # wlanapi.h, 256 bytes
    _fields_ = [("uRateSetLength", c_uint32),
                ("usRateSet", c_uint16 * DOT11_RATE_SET_MAX_LENGTH)]


class WLAN_BSS_ENTRY(Structure):  # wlanapi.h, 360 bytes, 8-byte aligned
    _fields_ = [("dot11Ssid", DOT11_SSID),
                ("uPhyId", c_uint32),
                ("dot11Bssid", c_uint8 * 6),
                ("dot11BssType", c_uint32),
                ("dot11BssPhyType", c_uint32),
                ("lRssi", c_int32),  # dBm
                ("uLinkQuality", c_uint32),  # 0-100
                ("bInRegDomain", c_uint8),  # BOOLEAN
                ("usBeaconPeriod", c_uint16),
                ("ullTimestamp", c_uint64),
                ("ullHostTimestamp", c_uint64),
                ("usCapabilityInformation", c_uint16),
                ("ulChCenterFrequency", c_uint32),  # kHz
                ("wlanRateSet", WLAN_RATE_SET),
                ("ulIeOffset", c_uint32),  # from the start of this entry
                ("ulIeSize", c_uint32)]


class WLAN_BSS_LIST_HEADER(Structure):
    """wlanapi.h's WLAN_BSS_LIST up to its wlanBssEntries[dwNumberOfItems] (at offset 8)."""

    _fields_ = [("dwTotalSize", c_uint32), ("dwNumberOfItems", c_uint32)]


@dataclass(frozen=True)
class WlanInterface:
    guid: str  # "f899e530-fd03-44a9-8307-4d4fc4827eab"
    description: str  # the adapter, e.g. "Intel(R) Wi-Fi 6 AX201 160MHz"
    connected: bool


@dataclass(frozen=True)
class Connection:
    ssid: str
    bssid: str | None
    phy_mode: str | None
    signal_quality: int
    rx_rate_kbps: int
    tx_rate_kbps: int


@dataclass(frozen=True)
class BssEntry:
    ssid: str
    bssid: str | None
    rssi_dbm: int
    link_quality: int
    center_frequency_khz: int
    elements: ies.Elements


class WlanApiError(Unavailable):
    """A WLAN API call failed; the message names the call and the Win32 error code."""

    def __init__(self, call: str, code: int) -> None:
        meaning = _WHAT_IT_MEANS.get(code)
        super().__init__(f"{call} failed with Win32 error {code}" + (f" ({meaning})" if meaning else ""))
        self.call = call
        self.code = code


def load_wlanapi() -> Any:
    """wlanapi.dll with the signatures this module calls (wlanapi.h)."""
    windll = getattr(ctypes, "WinDLL", None)
    if windll is None:
        raise Unavailable("the Windows WLAN API (wlanapi.dll) exists only on Windows")
    try:
        dll = windll("wlanapi.dll")
    except OSError:
        raise Unavailable("wlanapi.dll is missing: install the Wireless LAN Service feature "
                          "(Windows Server) or a Wi-Fi driver") from None
    handle, dword = c_void_p, c_uint32
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "WlanOpenHandle": (dword, [dword, c_void_p, POINTER(dword), POINTER(handle)]),
        "WlanCloseHandle": (dword, [handle, c_void_p]),
        "WlanEnumInterfaces": (dword, [handle, c_void_p, POINTER(c_void_p)]),
        "WlanQueryInterface": (dword, [handle, POINTER(GUID), dword, c_void_p, POINTER(dword),
                                       POINTER(c_void_p), c_void_p]),
        "WlanGetNetworkBssList": (dword, [handle, POINTER(GUID), c_void_p, dword, c_int32, c_void_p,
                                          POINTER(c_void_p)]),
        "WlanScan": (dword, [handle, POINTER(GUID), c_void_p, c_void_p, c_void_p]),
        "WlanFreeMemory": (None, [c_void_p]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(dll, name)
        function.restype, function.argtypes = restype, argtypes
    return dll


def interface_alias_from_iphlpapi(guid: str) -> str | None:
    """The name Windows shows for an interface ("Wi-Fi", "WLAN"), which the WLAN API does
    not give: ConvertInterfaceGuidToLuid + ConvertInterfaceLuidToAlias (netioapi.h).
    None when it cannot be had (not Windows, an old build)."""
    windll = getattr(ctypes, "WinDLL", None)
    if windll is None:
        return None
    try:
        iphlpapi = windll("iphlpapi.dll")
        iphlpapi.ConvertInterfaceGuidToLuid.argtypes = [POINTER(GUID), POINTER(c_uint64)]
        iphlpapi.ConvertInterfaceLuidToAlias.argtypes = [POINTER(c_uint64), ctypes.c_wchar_p,
                                                         ctypes.c_size_t]
        return alias_via(iphlpapi, guid)
    except (OSError, AttributeError, ValueError, ctypes.ArgumentError):
        return None


def alias_via(iphlpapi: Any, guid: str) -> str | None:
    """interface_alias_from_iphlpapi with the DLL given (the tests pass a fake)."""
    luid = c_uint64()  # NET_LUID
    if iphlpapi.ConvertInterfaceGuidToLuid(ctypes.pointer(guid_struct(guid)), ctypes.pointer(luid)) != 0:
        return None
    # NDIS_IF_MAX_STRING_SIZE + 1 characters; on Windows c_wchar is the 2-byte WCHAR.
    alias = ctypes.create_unicode_buffer(257)
    if iphlpapi.ConvertInterfaceLuidToAlias(ctypes.pointer(luid), alias, len(alias)) != 0:
        return None
    return alias.value or None


def guid_struct(text: str) -> GUID:
    """A GUID as Windows lays it out (Data1-3 little-endian, which is uuid's bytes_le)."""
    return GUID.from_buffer_copy(uuid.UUID(text.strip("{}")).bytes_le)


def guid_text(guid: GUID) -> str:
    return str(uuid.UUID(bytes_le=bytes(guid)))


class WlanApi:
    """The WLAN API calls the sources need, decoded into plain values."""

    def __init__(self, dll: Any) -> None:
        self.dll = dll

    @contextmanager
    def session(self) -> Iterator[WlanSession]:
        """A client handle for the calls of one reading, closed afterwards (a handle kept for
        days goes stale when the WLAN service restarts)."""
        negotiated, handle = c_uint32(), c_void_p()
        code = self.dll.WlanOpenHandle(CLIENT_VERSION, None, ctypes.pointer(negotiated),
                                       ctypes.pointer(handle))
        if code != ERROR_SUCCESS:
            raise _error("WlanOpenHandle", code)
        try:
            yield WlanSession(self.dll, handle)
        finally:
            self.dll.WlanCloseHandle(handle, None)


class WlanSession:
    def __init__(self, dll: Any, handle: c_void_p) -> None:
        self.dll = dll
        self.handle = handle

    def interfaces(self) -> list[WlanInterface]:
        memory = c_void_p()
        code = self.dll.WlanEnumInterfaces(self.handle, None, ctypes.pointer(memory))
        if code != ERROR_SUCCESS:
            raise _error("WlanEnumInterfaces", code)
        with self._owned(memory) as address:
            header = WLAN_INTERFACE_INFO_LIST_HEADER.from_buffer_copy(
                ctypes.string_at(address, ctypes.sizeof(WLAN_INTERFACE_INFO_LIST_HEADER)))
            count = min(header.dwNumberOfItems, _MAX_INTERFACES)
            size = ctypes.sizeof(WLAN_INTERFACE_INFO)
            # InterfaceInfo[] follows the two DWORDs; WLAN_INTERFACE_INFO is 4-byte aligned.
            raw = ctypes.string_at(address + ctypes.sizeof(WLAN_INTERFACE_INFO_LIST_HEADER), count * size)
        found = []
        for index in range(count):
            info = WLAN_INTERFACE_INFO.from_buffer_copy(raw, index * size)
            found.append(WlanInterface(guid=guid_text(info.InterfaceGuid),
                                       description=_wide(info.strInterfaceDescription),
                                       connected=info.isState == WLAN_INTERFACE_STATE_CONNECTED))
        return found

    def connection(self, guid: str) -> Connection | None:
        """The association, or None when the interface is not connected."""
        data = self._query(guid, WLAN_INTF_OPCODE_CURRENT_CONNECTION,
                           ctypes.sizeof(WLAN_CONNECTION_ATTRIBUTES), none_on=(ERROR_INVALID_STATE,))
        if data is None:
            return None
        attributes = WLAN_CONNECTION_ATTRIBUTES.from_buffer_copy(data)
        if attributes.isState != WLAN_INTERFACE_STATE_CONNECTED:
            return None
        association = attributes.wlanAssociationAttributes
        return Connection(ssid=_ssid(association.dot11Ssid),
                          bssid=_bssid(association.dot11Bssid),
                          phy_mode=PHY_TYPES.get(association.dot11PhyType),
                          signal_quality=association.wlanSignalQuality,
                          rx_rate_kbps=association.ulRxRate,
                          tx_rate_kbps=association.ulTxRate)

    def rssi(self, guid: str) -> int | None:
        """The link's RSSI in dBm; None where the driver does not report it."""
        data = self._query(guid, WLAN_INTF_OPCODE_RSSI, 4, none_on=_OPTIONAL_QUERY_ERRORS)
        return c_int32.from_buffer_copy(data).value if data is not None else None

    def channel(self, guid: str) -> int | None:
        data = self._query(guid, WLAN_INTF_OPCODE_CHANNEL_NUMBER, 4, none_on=_OPTIONAL_QUERY_ERRORS)
        return c_uint32.from_buffer_copy(data).value if data is not None else None

    def bss_entries(self, guid: str) -> list[BssEntry]:
        """Every access point in the interface's BSS list (the latest scan's results)."""
        memory = c_void_p()
        code = self.dll.WlanGetNetworkBssList(self.handle, ctypes.pointer(guid_struct(guid)), None,
                                              DOT11_BSS_TYPE_ANY, 0, None, ctypes.pointer(memory))
        if code != ERROR_SUCCESS:
            raise _error("WlanGetNetworkBssList", code)
        with self._owned(memory) as address:
            header = WLAN_BSS_LIST_HEADER.from_buffer_copy(
                ctypes.string_at(address, ctypes.sizeof(WLAN_BSS_LIST_HEADER)))
            if not ctypes.sizeof(WLAN_BSS_LIST_HEADER) <= header.dwTotalSize <= _MAX_BSS_LIST_BYTES:
                raise Unavailable(f"WlanGetNetworkBssList returned a list of {header.dwTotalSize} bytes")
            blob = ctypes.string_at(address, header.dwTotalSize)
        return _decode_bss_list(blob, header.dwNumberOfItems)

    def scan(self, guid: str) -> None:
        code = self.dll.WlanScan(self.handle, ctypes.pointer(guid_struct(guid)), None, None, None)
        if code != ERROR_SUCCESS:
            raise _error("WlanScan", code)

    def _query(self, guid: str, opcode: int, size: int, none_on: tuple[int, ...]) -> bytes | None:
        data_size, memory = c_uint32(), c_void_p()
        code = self.dll.WlanQueryInterface(self.handle, ctypes.pointer(guid_struct(guid)), opcode, None,
                                           ctypes.pointer(data_size), ctypes.pointer(memory), None)
        if code in none_on:
            return None
        if code != ERROR_SUCCESS:
            raise _error("WlanQueryInterface", code)
        with self._owned(memory) as address:
            if data_size.value < size:
                raise Unavailable(f"WlanQueryInterface returned {data_size.value} bytes for opcode "
                                  f"{opcode:#x}, expected {size}")
            return ctypes.string_at(address, size)

    @contextmanager
    def _owned(self, memory: c_void_p) -> Iterator[int]:
        """The address of memory the API allocated, freed with WlanFreeMemory afterwards."""
        if not memory.value:
            raise Unavailable("the WLAN API returned no data")
        try:
            yield memory.value
        finally:
            self.dll.WlanFreeMemory(memory)


# RSSI and channel are extras: drivers that lack them answer these, and the link still reads.
_OPTIONAL_QUERY_ERRORS = (ERROR_NOT_SUPPORTED, ERROR_INVALID_STATE, ERROR_NOT_FOUND)


def _error(call: str, code: int) -> Unavailable:
    if code == ERROR_ACCESS_DENIED:
        # Windows 11 24H2+ answers access denied to programs without the Location permission.
        return LocationPermissionDenied(f"{call}: {LOCATION_PERMISSION_MESSAGE}")
    return WlanApiError(call, code)


def _decode_bss_list(blob: bytes, count: int) -> list[BssEntry]:
    header_size, entry_size = ctypes.sizeof(WLAN_BSS_LIST_HEADER), ctypes.sizeof(WLAN_BSS_ENTRY)
    if count > _MAX_BSS_ENTRIES or header_size + count * entry_size > len(blob):
        raise Unavailable(f"WlanGetNetworkBssList returned {len(blob)} bytes for {count} entries")
    entries = []
    for index in range(count):
        offset = header_size + index * entry_size
        entry = WLAN_BSS_ENTRY.from_buffer_copy(blob, offset)
        start, end = offset + entry.ulIeOffset, offset + entry.ulIeOffset + entry.ulIeSize
        # An IE blob claimed outside the list is not read: it would be someone else's memory.
        blob_ies = blob[start:end] if entry.ulIeSize and end <= len(blob) else b""
        entries.append(BssEntry(ssid=_ssid(entry.dot11Ssid), bssid=_bssid(entry.dot11Bssid),
                                rssi_dbm=entry.lRssi, link_quality=entry.uLinkQuality,
                                center_frequency_khz=entry.ulChCenterFrequency,
                                elements=ies.parse_elements(blob_ies)))
    return entries


def _wide(text: Any) -> str:
    """A NUL-terminated WCHAR array as text."""
    units = bytes(text)
    raw = units.decode("utf-16-le", errors="replace")
    return raw.split("\x00", 1)[0]


def _ssid(ssid: DOT11_SSID) -> str:
    return ies.decode_ssid(bytes(ssid.ucSSID)[:min(ssid.uSSIDLength, DOT11_SSID_MAX_LENGTH)])


def _bssid(octets: Any) -> str | None:
    return radio.normalise_bssid(":".join(f"{octet:02x}" for octet in bytes(octets)))


def _signal(rssi_dbm: int | None, quality: int) -> tuple[float | None, float | None, bool]:
    """(signal_dbm, signal_percent, converted): the RSSI where the API has one (a
    negative dBm value), else the signal quality through Microsoft's documented line."""
    if rssi_dbm is not None and rssi_dbm < 0:
        return float(rssi_dbm), None, False
    if 0 <= quality <= 100:
        return radio.dbm_from_windows_percent(quality), float(quality), True
    return None, None, False


class WlanApiSource:
    """The Wi-Fi link and scans of one interface through the WLAN API."""

    name = SOURCE

    def __init__(self, api: WlanApi, guid: str, interface: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.api = api
        self.guid = guid
        self.interface = interface
        self.sleep = sleep
        # Whether the latest scan() was a fresh scan (the probe records it) or the cached list.
        self.last_scan_triggered = False

    def link(self) -> LinkReading:
        with self.api.session() as session:
            present = {found.guid: found for found in session.interfaces()}
            if self.guid not in present:
                raise Unavailable(f"the Wi-Fi interface {self.interface} ({self.guid}) is gone")
            connection = session.connection(self.guid) if present[self.guid].connected else None
            if connection is None:
                return LinkReading(source=SOURCE, interface=self.interface, connected=False)
            rssi = session.rssi(self.guid)
            channel = session.channel(self.guid)
            frequency_khz = self._frequency_khz(session, connection.bssid)
        signal_dbm, percent, converted = _signal(rssi, connection.signal_quality)
        hertz = frequency_khz * 1000 if frequency_khz else None
        if hertz is None and channel and connection.phy_mode not in ("802.11ax", "802.11be"):
            # Without the BSS entry the channel number alone says the band, except for Wi-Fi
            # 6/7 links, whose 6 GHz channel numbers overlap 2.4 and 5 GHz: unsaid there.
            mhz = radio.frequency_of(channel)
            hertz = mhz * radio.MHZ if mhz is not None else None
        frequency_mhz = hertz / radio.MHZ if hertz is not None else None
        return LinkReading(
            source=SOURCE,
            interface=self.interface,
            connected=True,
            ssid=connection.ssid or None,
            bssid=connection.bssid,
            signal_dbm=signal_dbm,
            signal_percent=percent,
            signal_converted=converted,
            frequency_hertz=hertz,
            channel=channel or (radio.channel_of(frequency_mhz) if frequency_mhz is not None else None),
            band=radio.band_of(frequency_mhz) if frequency_mhz is not None else None,
            rx_bitrate_bits_per_second=connection.rx_rate_kbps * 1e3 if connection.rx_rate_kbps else None,
            tx_bitrate_bits_per_second=connection.tx_rate_kbps * 1e3 if connection.tx_rate_kbps else None,
            phy_mode=connection.phy_mode,
        )

    def scan(self, trigger: bool) -> list[ScanEntry]:
        """The BSS list; with ``trigger``, after a WlanScan and the 4 s a driver has to
        finish it. A scan the driver refuses (radio off) leaves Windows' cached list."""
        self.last_scan_triggered = False
        with self.api.session() as session:
            if trigger:
                try:
                    session.scan(self.guid)
                except LocationPermissionDenied:
                    raise
                except Unavailable as exc:
                    log.warning("Wi-Fi scan not triggered, reading the cached list: %s", exc)
                else:
                    self.sleep(SCAN_SETTLE_SECONDS)
                    self.last_scan_triggered = True
            entries = session.bss_entries(self.guid)
            associated = self._associated_bssid(session)
        return [_scan_entry(entry, associated) for entry in entries]

    def _associated_bssid(self, session: WlanSession) -> str | None:
        """Which entry the interface is associated with; a scan is still a scan without it."""
        try:
            connection = session.connection(self.guid)
        except LocationPermissionDenied:
            raise
        except Unavailable:
            return None
        return connection.bssid if connection is not None else None

    def _frequency_khz(self, session: WlanSession, bssid: str | None) -> int | None:
        """The connected access point's centre frequency, from its BSS entry."""
        if bssid is None:
            return None
        try:
            entries = session.bss_entries(self.guid)
        except LocationPermissionDenied:
            raise
        except Unavailable:
            return None
        return next((entry.center_frequency_khz for entry in entries
                     if entry.bssid == bssid and entry.center_frequency_khz), None)


def _scan_entry(entry: BssEntry, associated_bssid: str | None) -> ScanEntry:
    signal_dbm, percent, converted = _signal(entry.rssi_dbm, entry.link_quality)
    hertz = entry.center_frequency_khz * 1000 if entry.center_frequency_khz else None
    frequency_mhz = hertz / radio.MHZ if hertz is not None else None
    channel = radio.channel_of(frequency_mhz) if frequency_mhz is not None else None
    return ScanEntry(
        source=SOURCE,
        bssid=entry.bssid,
        ssid=entry.ssid,
        signal_dbm=signal_dbm,
        signal_percent=percent,
        signal_converted=converted,
        frequency_hertz=hertz,
        channel=channel if channel is not None else entry.elements.channel,
        band=radio.band_of(frequency_mhz) if frequency_mhz is not None else None,
        station_count=entry.elements.station_count,
        channel_utilization_ratio=entry.elements.channel_utilization_ratio,
        associated=entry.bssid is not None and entry.bssid == associated_bssid,
    )


def open_wlanapi_source(api: WlanApi, wanted: str = "",
                        alias_of: Callable[[str], str | None] = interface_alias_from_iphlpapi,
                        sleep: Callable[[float], None] = time.sleep) -> WlanApiSource:
    """The source for the interface ``wanted`` names (its Windows name such as "Wi-Fi", its
    GUID or its adapter description), else the first connected interface, else the first."""
    with api.session() as session:
        interfaces = session.interfaces()
    if not interfaces:
        raise NoWirelessInterface("Windows reports no Wi-Fi interface (WlanEnumInterfaces lists "
                                  "none): is the adapter disabled or its driver missing?")
    names = {found.guid: alias_of(found.guid) or found.description for found in interfaces}
    if wanted:
        key = wanted.strip("{} ").casefold()
        for found in interfaces:
            if key in (found.guid, names[found.guid].casefold(), found.description.casefold()):
                return WlanApiSource(api, found.guid, names[found.guid], sleep)
        listed = ", ".join(f"{names[found.guid]} ({found.guid})" for found in interfaces)
        raise Unavailable(f"no Wi-Fi interface named {wanted!r}; this machine has: {listed}")
    chosen = next((found for found in interfaces if found.connected), interfaces[0])
    return WlanApiSource(api, chosen.guid, names[chosen.guid], sleep)
