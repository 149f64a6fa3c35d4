"""A small generic-netlink client for nl80211: the Linux kernel's own Wi-Fi interface.

Hand-written on ``socket.AF_NETLINK`` and ``struct`` rather than pyroute2, because importing
pyroute2 costs the agent's long-lived process 8.5 MB of resident memory, more than the rest
of the Wi-Fi probe together, on a Raspberry Pi that has little to spare. The few requests the
agent makes need little code. The layouts come from the kernel's UAPI headers:

- linux/netlink.h: ``struct nlmsghdr`` {u32 len; u16 type; u16 flags; u32 seq; u32 pid},
  messages and attributes padded to 4 bytes (NLMSG_ALIGN, NLA_ALIGN), ``struct nlattr``
  {u16 len; u16 type} with NLA_F_NESTED / NLA_F_NET_BYTEORDER in the type's top bits,
  NLMSG_ERROR carrying ``struct nlmsgerr`` {int error; struct nlmsghdr msg} (error 0 = ACK)
  and NLMSG_DONE ending a multi-part (NLM_F_MULTI) dump; everything in host byte order.
- linux/genetlink.h: ``struct genlmsghdr`` {u8 cmd; u8 version; u16 reserved}, the control
  family (GENL_ID_CTRL) answering CTRL_CMD_GETFAMILY with the family id and its multicast
  groups.
- linux/nl80211.h: the commands, attributes, STA_INFO / RATE_INFO / BSS / SURVEY_INFO nests.

Decoding is pure (``parse_messages``, ``attributes``, the ``*_from_*`` functions) and apart
from the socket, which comes from an injectable factory so tests replay recorded replies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from agent.netlink import (
    _NLATTR,
    _NLMSGHDR,
    NLA_F_NESTED,
    MalformedMessage,
    Message,
    align,
    attribute_map,
    attributes,
    encode_message,
    parse_messages,
)
from agent.probes.wifi import radio
from agent.probes.wifi.ies import decode_ssid, parse_elements
from agent.probes.wifi.reading import LinkReading, ScanEntry
from agent.probes.wifi.source import COMMAND_TIMEOUT_SECONDS, SCAN_TIMEOUT_SECONDS, Unavailable

T = TypeVar("T")
R = TypeVar("R")

# linux/netlink.h
NETLINK_GENERIC = 16
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_CAPPED = 0x100  # on NLMSG_ERROR: the request was not echoed back in full
NLM_F_ACK_TLVS = 0x200  # on NLMSG_ERROR: extended-ack attributes follow
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK = 270  # linux/socket.h
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

# linux/genetlink.h
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_MCAST_GROUPS = 7
CTRL_ATTR_MCAST_GRP_NAME = 1
CTRL_ATTR_MCAST_GRP_ID = 2

# linux/nl80211.h
NL80211_GENL_NAME = "nl80211"
NL80211_MULTICAST_GROUP_SCAN = "scan"
NL80211_CMD_GET_INTERFACE = 5
NL80211_CMD_NEW_INTERFACE = 7
NL80211_CMD_GET_STATION = 17
NL80211_CMD_NEW_STATION = 19
NL80211_CMD_GET_SCAN = 32
NL80211_CMD_TRIGGER_SCAN = 33
NL80211_CMD_NEW_SCAN_RESULTS = 34
NL80211_CMD_SCAN_ABORTED = 35
NL80211_CMD_GET_SURVEY = 50
NL80211_CMD_NEW_SURVEY_RESULTS = 51

NL80211_ATTR_WIPHY = 1
NL80211_ATTR_IFINDEX = 3
NL80211_ATTR_IFNAME = 4
NL80211_ATTR_IFTYPE = 5
NL80211_ATTR_MAC = 6
NL80211_ATTR_STA_INFO = 21
NL80211_ATTR_WIPHY_FREQ = 38
NL80211_ATTR_SCAN_SSIDS = 45
NL80211_ATTR_BSS = 47
NL80211_ATTR_SSID = 52
NL80211_ATTR_SURVEY_INFO = 84
NL80211_ATTR_CHANNEL_WIDTH = 159

NL80211_IFTYPE_STATION = 2
NL80211_IFTYPE_P2P_CLIENT = 8
IFTYPE_NAMES = {0: "unspecified", 1: "ad-hoc", 2: "station (client)", 3: "access point",
                4: "access point VLAN", 5: "WDS", 6: "monitor", 7: "mesh point", 8: "P2P client",
                9: "P2P group owner", 10: "P2P device", 11: "OCB", 12: "NAN"}

NL80211_STA_INFO_SIGNAL = 7
NL80211_STA_INFO_TX_BITRATE = 8
NL80211_STA_INFO_TX_RETRIES = 11
NL80211_STA_INFO_TX_FAILED = 12
NL80211_STA_INFO_SIGNAL_AVG = 13
NL80211_STA_INFO_RX_BITRATE = 14
NL80211_STA_INFO_CONNECTED_TIME = 16
NL80211_STA_INFO_STA_FLAGS = 17
NL80211_STA_INFO_BEACON_LOSS = 18
NL80211_STA_FLAG_TDLS_PEER = 6

NL80211_RATE_INFO_BITRATE = 1
NL80211_RATE_INFO_MCS = 2
NL80211_RATE_INFO_40_MHZ_WIDTH = 3
NL80211_RATE_INFO_BITRATE32 = 5
NL80211_RATE_INFO_VHT_MCS = 6
NL80211_RATE_INFO_80_MHZ_WIDTH = 8
NL80211_RATE_INFO_80P80_MHZ_WIDTH = 9
NL80211_RATE_INFO_160_MHZ_WIDTH = 10
NL80211_RATE_INFO_10_MHZ_WIDTH = 11
NL80211_RATE_INFO_5_MHZ_WIDTH = 12
NL80211_RATE_INFO_HE_MCS = 13
NL80211_RATE_INFO_320_MHZ_WIDTH = 18
NL80211_RATE_INFO_EHT_MCS = 19
# Width flags of a rate, in MHz; 80+80 spans 160. No flag: the frame went at 20 MHz.
RATE_WIDTH_FLAGS_MHZ = {NL80211_RATE_INFO_5_MHZ_WIDTH: 5, NL80211_RATE_INFO_10_MHZ_WIDTH: 10,
                        NL80211_RATE_INFO_40_MHZ_WIDTH: 40, NL80211_RATE_INFO_80_MHZ_WIDTH: 80,
                        NL80211_RATE_INFO_80P80_MHZ_WIDTH: 160, NL80211_RATE_INFO_160_MHZ_WIDTH: 160,
                        NL80211_RATE_INFO_320_MHZ_WIDTH: 320}
# Newest generation first: the MCS attribute a rate carries names its PHY.
RATE_PHY_MODES = ((NL80211_RATE_INFO_EHT_MCS, "EHT"), (NL80211_RATE_INFO_HE_MCS, "HE"),
                  (NL80211_RATE_INFO_VHT_MCS, "VHT"), (NL80211_RATE_INFO_MCS, "HT"))
_GENERATION = {"HT": 1, "VHT": 2, "HE": 3, "EHT": 4}

NL80211_BSS_BSSID = 1
NL80211_BSS_FREQUENCY = 2
NL80211_BSS_INFORMATION_ELEMENTS = 6
NL80211_BSS_SIGNAL_MBM = 7
NL80211_BSS_SIGNAL_UNSPEC = 8
NL80211_BSS_STATUS = 9
NL80211_BSS_BEACON_IES = 11
NL80211_BSS_STATUS_ASSOCIATED = 1

NL80211_SURVEY_INFO_FREQUENCY = 1
NL80211_SURVEY_INFO_NOISE = 2
NL80211_SURVEY_INFO_IN_USE = 3

# enum nl80211_chan_width -> MHz (80+80 spans 160; 1-16 MHz are 802.11ah, S1G).
CHANNEL_WIDTH_MHZ = {0: 20, 1: 20, 2: 40, 3: 80, 4: 160, 5: 160, 6: 5, 7: 10, 8: 1, 9: 2,
                     10: 4, 11: 8, 12: 16, 13: 320}

_GENLMSGHDR = struct.Struct("=BBH")
# Dumps come in datagrams of up to 32 KiB (netlink_dump's cap); a datagram larger than the
# buffer would be cut silently, so the buffer is roomier than any.
RECEIVE_BUFFER_BYTES = 65536


class NetlinkError(Exception):
    """The kernel answered a request with an error (NLMSG_ERROR or a failed dump)."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        self.errno = code
        self.detail = detail
        text = os.strerror(code)
        super().__init__(f"{text} ({detail})" if detail else text)


class ScanNotTriggered(Unavailable):
    """No fresh scan could be made (the message says why); the kernel's cached results can
    still be read."""


class ScanNotPermitted(ScanNotTriggered):
    """Triggering a scan needs CAP_NET_ADMIN, which the agent's process does not have."""


# ---- the wire format: pure decoding and encoding -----------------------------------------

@dataclass(frozen=True)
class GenericMessage:
    command: int
    attributes: dict[int, bytes]


def generic(message: Message) -> GenericMessage:
    """The generic-netlink command and attributes of a family's message."""
    if len(message.payload) < _GENLMSGHDR.size:
        raise MalformedMessage("a generic netlink message shorter than its 4-byte genlmsghdr")
    command, _version, _reserved = _GENLMSGHDR.unpack_from(message.payload)
    return GenericMessage(command, attribute_map(message.payload[_GENLMSGHDR.size:]))


def error_of(message: Message) -> tuple[int, str | None]:
    """An NLMSG_ERROR's errno (0 = an ACK) and the kernel's extended-ack text, if any."""
    if len(message.payload) < 4:
        raise MalformedMessage("an NLMSG_ERROR without its error code")
    (code,) = struct.unpack_from("=i", message.payload)
    detail = None
    if message.flags & NLM_F_ACK_TLVS and len(message.payload) >= 4 + _NLMSGHDR.size:
        # The request's header is echoed back, its payload too unless NLM_F_CAPPED.
        (echoed,) = struct.unpack_from("=I", message.payload, 4)
        start = 4 + (_NLMSGHDR.size if message.flags & NLM_F_CAPPED else align(echoed))
        text = attribute_map(message.payload[start:]).get(NLMSGERR_ATTR_MSG)
        detail = text.rstrip(b"\x00").decode("utf-8", "replace") if text else None
    return -code, detail


def done_code(message: Message) -> int:
    """The errno a dump ended with (0 = complete): NLMSG_DONE carries an int."""
    if len(message.payload) >= 4:
        (code,) = struct.unpack_from("=i", message.payload)
        return -code
    return 0


def encode_attribute(kind: int, payload: bytes) -> bytes:
    length = _NLATTR.size + len(payload)
    return _NLATTR.pack(length, kind) + payload + b"\x00" * (align(length) - length)


def encode_request(family: int, command: int, flags: int, seq: int, attrs: bytes = b"",
                   port: int = 0) -> bytes:
    return encode_message(family, flags, seq, _GENLMSGHDR.pack(command, 1, 0) + attrs, port)


def _u8(data: bytes | None) -> int | None:
    return data[0] if data else None


def _s8(data: bytes | None) -> int | None:
    return struct.unpack_from("=b", data)[0] if data else None


def _u16(data: bytes | None) -> int | None:
    return struct.unpack_from("=H", data)[0] if data is not None and len(data) >= 2 else None


def _u32(data: bytes | None) -> int | None:
    return struct.unpack_from("=I", data)[0] if data is not None and len(data) >= 4 else None


def _s32(data: bytes | None) -> int | None:
    return struct.unpack_from("=i", data)[0] if data is not None and len(data) >= 4 else None


def _text(data: bytes | None) -> str | None:
    return data.split(b"\x00", 1)[0].decode("utf-8", "replace") if data is not None else None


# ---- from attributes to readings ----------------------------------------------------------

@dataclass(frozen=True)
class Family:
    id: int
    groups: dict[str, int] = field(default_factory=dict)


def family_from_attributes(attrs: dict[int, bytes]) -> Family:
    family_id = _u16(attrs.get(CTRL_ATTR_FAMILY_ID))
    if family_id is None:
        raise MalformedMessage("the control family's answer has no CTRL_ATTR_FAMILY_ID")
    groups = {}
    for group in attributes(attrs.get(CTRL_ATTR_MCAST_GROUPS, b"")):
        members = attribute_map(group.payload)
        name = _text(members.get(CTRL_ATTR_MCAST_GRP_NAME))
        group_id = _u32(members.get(CTRL_ATTR_MCAST_GRP_ID))
        if name is not None and group_id is not None:
            groups[name] = group_id
    return Family(family_id, groups)


@dataclass(frozen=True)
class Interface:
    """A wireless interface as nl80211 describes it (its own MAC address is not kept)."""

    ifindex: int
    name: str
    iftype: int | None
    frequency_mhz: int | None = None
    ssid: str | None = None
    channel_width_hertz: int | None = None

    @property
    def is_client(self) -> bool:
        return self.iftype in (NL80211_IFTYPE_STATION, NL80211_IFTYPE_P2P_CLIENT)


def interface_from_attributes(attrs: dict[int, bytes]) -> Interface | None:
    """A NEW_INTERFACE message's interface; None for a wireless device without a network
    interface (a P2P device)."""
    ifindex, name = _u32(attrs.get(NL80211_ATTR_IFINDEX)), _text(attrs.get(NL80211_ATTR_IFNAME))
    if ifindex is None or name is None:
        return None
    width_code = _u32(attrs.get(NL80211_ATTR_CHANNEL_WIDTH))
    width = CHANNEL_WIDTH_MHZ.get(width_code) if width_code is not None else None
    ssid = attrs.get(NL80211_ATTR_SSID)
    return Interface(ifindex, name, _u32(attrs.get(NL80211_ATTR_IFTYPE)),
                     frequency_mhz=_u32(attrs.get(NL80211_ATTR_WIPHY_FREQ)),
                     ssid=decode_ssid(ssid) if ssid is not None else None,
                     channel_width_hertz=width * radio.MHZ if width is not None else None)


@dataclass(frozen=True)
class Rate:
    bits_per_second: float | None
    phy_mode: str | None
    width_hertz: int | None


def rate_from_attributes(data: bytes) -> Rate:
    """A nested RATE_INFO: BITRATE32 (u32) or else BITRATE (u16), both in 100 kbit/s; 0 is
    "unknown". The MCS attribute present names the PHY; a width flag the frame's width."""
    attrs = attribute_map(data)
    rate = _u32(attrs.get(NL80211_RATE_INFO_BITRATE32))
    if rate is None:
        rate = _u16(attrs.get(NL80211_RATE_INFO_BITRATE))
    phy_mode = next((mode for kind, mode in RATE_PHY_MODES if kind in attrs), None)
    widths = [mhz for kind, mhz in RATE_WIDTH_FLAGS_MHZ.items() if kind in attrs]
    return Rate(rate * 100_000.0 if rate else None, phy_mode, max(widths) * radio.MHZ if widths else None)


def _is_tdls_peer(station_info: dict[int, bytes]) -> bool:
    flags = station_info.get(NL80211_STA_INFO_STA_FLAGS)
    if flags is None or len(flags) < 8:
        return False
    mask, values = struct.unpack_from("=II", flags)  # struct nl80211_sta_flag_update
    bit = 1 << NL80211_STA_FLAG_TDLS_PEER
    return bool(mask & bit and values & bit)


def link_from_station(station: dict[int, bytes], interface: Interface,
                      noise_dbm: float | None = None) -> LinkReading:
    """A client's one station (its access point) with the interface's channel as the link.
    The station's address is the access point's BSSID on a client interface."""
    info = attribute_map(station.get(NL80211_ATTR_STA_INFO, b""))
    signal = _s8(info.get(NL80211_STA_INFO_SIGNAL))
    if signal is None:
        signal = _s8(info.get(NL80211_STA_INFO_SIGNAL_AVG))
    rx_rate, tx_rate = info.get(NL80211_STA_INFO_RX_BITRATE), info.get(NL80211_STA_INFO_TX_BITRATE)
    rx = rate_from_attributes(rx_rate) if rx_rate is not None else None
    tx = rate_from_attributes(tx_rate) if tx_rate is not None else None
    rates = [rate for rate in (rx, tx) if rate is not None]
    modes = [rate.phy_mode for rate in rates if rate.phy_mode is not None]
    widths = [rate.width_hertz for rate in rates if rate.width_hertz is not None]
    connected = _u32(info.get(NL80211_STA_INFO_CONNECTED_TIME))
    mac = station.get(NL80211_ATTR_MAC)
    mhz = interface.frequency_mhz
    return LinkReading(
        source="nl80211", interface=interface.name, ssid=interface.ssid,
        bssid=radio.normalise_bssid(mac.hex(":")) if mac is not None and len(mac) == 6 else None,
        signal_dbm=float(signal) if signal is not None else None, noise_dbm=noise_dbm,
        frequency_hertz=mhz * radio.MHZ if mhz else None,
        channel=radio.channel_of(mhz) if mhz else None, band=radio.band_of(mhz) if mhz else None,
        # The interface's channel width is the real one; a rate's is only a lower bound.
        channel_width_hertz=interface.channel_width_hertz or (max(widths) if widths else None),
        rx_bitrate_bits_per_second=rx.bits_per_second if rx else None,
        tx_bitrate_bits_per_second=tx.bits_per_second if tx else None,
        tx_retries=_u32(info.get(NL80211_STA_INFO_TX_RETRIES)),
        tx_failed=_u32(info.get(NL80211_STA_INFO_TX_FAILED)),
        beacon_loss=_u32(info.get(NL80211_STA_INFO_BEACON_LOSS)),
        connected_seconds=float(connected) if connected is not None else None,
        phy_mode=max(modes, key=lambda mode: _GENERATION[mode]) if modes else None)


def access_point_station(stations: Sequence[dict[int, bytes]]) -> dict[int, bytes] | None:
    """Of a client interface's stations, its access point: not a TDLS peer (a direct link
    to another device, whose address must not be read)."""
    for station in stations:
        if not _is_tdls_peer(attribute_map(station.get(NL80211_ATTR_STA_INFO, b""))):
            return station
    return None


def scan_entry_from_attributes(attrs: dict[int, bytes]) -> ScanEntry | None:
    """A NEW_SCAN_RESULTS message's BSS; None when it carries no BSS."""
    if NL80211_ATTR_BSS not in attrs:
        return None
    bss = attribute_map(attrs[NL80211_ATTR_BSS])
    bssid = bss.get(NL80211_BSS_BSSID)
    mhz = _u32(bss.get(NL80211_BSS_FREQUENCY))
    # The latest frame's elements (probe response or beacon), then the beacon's for what
    # those lack.
    latest = parse_elements(bss.get(NL80211_BSS_INFORMATION_ELEMENTS, b""))
    beacon = parse_elements(bss.get(NL80211_BSS_BEACON_IES, b""))
    mbm = _s32(bss.get(NL80211_BSS_SIGNAL_MBM))
    unspecified = _u8(bss.get(NL80211_BSS_SIGNAL_UNSPEC))
    channel = latest.channel if latest.channel is not None else beacon.channel
    stations = latest.station_count if latest.station_count is not None else beacon.station_count
    utilization = (latest.channel_utilization_ratio if latest.channel_utilization_ratio is not None
                   else beacon.channel_utilization_ratio)
    return ScanEntry(
        source="nl80211",
        bssid=radio.normalise_bssid(bssid.hex(":")) if bssid is not None and len(bssid) == 6 else None,
        ssid=latest.ssid if latest.ssid is not None else beacon.ssid,
        signal_dbm=mbm / 100 if mbm is not None else None,
        # SIGNAL_UNSPEC is a driver-defined 0-100 "signal strength"; nl80211.h documents
        # no mapping to dBm, so the dBm stays unknown.
        signal_percent=float(unspecified) if mbm is None and unspecified is not None else None,
        frequency_hertz=mhz * radio.MHZ if mhz else None,
        channel=channel if channel is not None else (radio.channel_of(mhz) if mhz else None),
        band=radio.band_of(mhz) if mhz else None,
        station_count=stations, channel_utilization_ratio=utilization,
        associated=_u32(bss.get(NL80211_BSS_STATUS)) == NL80211_BSS_STATUS_ASSOCIATED)


def in_use_noise(surveys: Iterable[dict[int, bytes]]) -> float | None:
    """The noise floor (dBm) of the channel marked in use; None when none reports one.
    SURVEY_INFO_NOISE is a u8 holding a signed dBm value (iw casts it to int8_t)."""
    for survey in surveys:
        info = attribute_map(survey.get(NL80211_ATTR_SURVEY_INFO, b""))
        if NL80211_SURVEY_INFO_IN_USE in info and NL80211_SURVEY_INFO_NOISE in info:
            noise = _s8(info[NL80211_SURVEY_INFO_NOISE])
            if noise is not None:
                return float(noise)
    return None


# ---- the socket -----------------------------------------------------------------------

class NetlinkSocket(Protocol):
    def bind(self, address: tuple[int, int], /) -> None: ...
    def send(self, data: bytes, /) -> int: ...
    def recv(self, size: int, /) -> bytes: ...
    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...
    def settimeout(self, timeout: float | None, /) -> None: ...
    def close(self) -> None: ...


SocketFactory = Callable[[], NetlinkSocket]


def kernel_socket() -> NetlinkSocket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)


class Nl80211:
    """One generic-netlink socket speaking nl80211; use as a context manager. Opening it
    resolves the family: Unavailable when the kernel has none."""

    def __init__(self, socket_factory: SocketFactory = kernel_socket,
                 timeout: float = COMMAND_TIMEOUT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._clock = clock
        self._seq = 0
        # nl80211 messages that came for no request of ours: multicast notifications.
        self._events: list[Message] = []
        try:
            self._socket = socket_factory()
        except OSError as exc:
            raise Unavailable(f"cannot open a netlink socket: {exc.strerror or exc}") from None
        try:
            self._socket.bind((0, 0))
            for option in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
                # An old kernel has neither: plain error codes, which are enough.
                with contextlib.suppress(OSError):
                    self._socket.setsockopt(SOL_NETLINK, option, 1)
            self.family = self._resolve_family()
        except OSError as exc:
            self._socket.close()
            raise Unavailable(f"cannot use a netlink socket: {exc.strerror or exc}") from None
        except BaseException:
            self._socket.close()
            raise

    def __enter__(self) -> Nl80211:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._socket.close()

    def _resolve_family(self) -> Family:
        name = encode_attribute(CTRL_ATTR_FAMILY_NAME, NL80211_GENL_NAME.encode() + b"\x00")
        try:
            replies = self._request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, name, dump=False)
        except NetlinkError as exc:
            if exc.errno == errno.ENOENT:
                raise Unavailable("the kernel has no nl80211 (no cfg80211: no Wi-Fi driver is "
                                  "loaded on this machine)") from None
            raise Unavailable(f"the kernel's generic netlink did not resolve nl80211: {exc}") from None
        if not replies:
            raise Unavailable("the kernel's generic netlink answered nothing about nl80211")
        return family_from_attributes(_generic(replies[0]).attributes)

    def _request(self, family: int, command: int, attrs: bytes, dump: bool) -> list[Message]:
        """Send one request and gather its answer: a dump's messages up to NLMSG_DONE (over
        as many recv() as it takes), or a single answer up to its ACK. NetlinkError when the
        kernel refuses."""
        self._seq += 1
        seq = self._seq
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        try:
            self._socket.send(encode_request(family, command, flags, seq, attrs))
        except OSError as exc:
            raise Unavailable(f"cannot send to the kernel's netlink: {exc.strerror or exc}") from None
        replies: list[Message] = []
        deadline = self._clock() + self._timeout
        try:
            while True:
                for message in self._receive(deadline):
                    if message.seq != seq:
                        if message.seq == 0:
                            self._events.append(message)
                        continue  # a late answer to an earlier request
                    if message.type == NLMSG_ERROR:
                        code, detail = _checked_decode(error_of, message)
                        if code:
                            raise NetlinkError(code, detail)
                        return replies  # the ACK
                    if message.type == NLMSG_DONE:
                        code = done_code(message)
                        if code:
                            raise NetlinkError(code)
                        return replies
                    if message.type == NLMSG_OVERRUN:
                        raise NetlinkError(errno.ENOBUFS, "netlink overrun")
                    if message.type != NLMSG_NOOP:
                        replies.append(message)
        except TimeoutError:
            raise Unavailable(f"the kernel's nl80211 did not answer within {self._timeout:g} s") from None

    def _receive(self, deadline: float) -> list[Message]:
        """The messages of the next datagram; TimeoutError once ``deadline`` has passed."""
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise TimeoutError
        self._socket.settimeout(remaining)
        try:
            data = self._socket.recv(RECEIVE_BUFFER_BYTES)
        except TimeoutError:
            raise
        except OSError as exc:
            raise Unavailable(f"reading from the kernel's netlink failed: {exc.strerror or exc}") from None
        return _checked_decode(parse_messages, data)

    def _call(self, command: int, interface: Interface | None, dump: bool,
              extra: bytes = b"") -> list[dict[int, bytes]]:
        attrs = b""
        if interface is not None:
            attrs = encode_attribute(NL80211_ATTR_IFINDEX, struct.pack("=I", interface.ifindex))
        messages = self._request(self.family.id, command, attrs + extra, dump)
        return [_generic(message).attributes for message in messages if message.type == self.family.id]

    def interfaces(self) -> list[Interface]:
        try:
            replies = self._call(NL80211_CMD_GET_INTERFACE, None, dump=True)
        except NetlinkError as exc:
            raise _explained(exc, "listing the wireless interfaces") from None
        return [interface for interface in map(interface_from_attributes, replies) if interface is not None]

    def interface(self, name: str) -> Interface:
        known = self.interfaces()
        for interface in known:
            if interface.name == name:
                return interface
        raise Unavailable(f"{name} is not a wireless interface nl80211 knows (it knows "
                          f"{', '.join(interface.name for interface in known) or 'none'})")

    def stations(self, interface: Interface) -> list[dict[int, bytes]]:
        try:
            return self._call(NL80211_CMD_GET_STATION, interface, dump=True)
        except NetlinkError as exc:
            raise _explained(exc, f"reading the link of {interface.name}", interface.name) from None

    def survey_noise(self, interface: Interface) -> float | None:
        """The in-use channel's noise; None when the driver keeps no survey (EOPNOTSUPP is
        common) or reports no noise: the link reading stands without it."""
        try:
            return in_use_noise(self._call(NL80211_CMD_GET_SURVEY, interface, dump=True))
        except NetlinkError:
            return None

    def scan_results(self, interface: Interface) -> list[ScanEntry]:
        try:
            replies = self._call(NL80211_CMD_GET_SCAN, interface, dump=True)
        except NetlinkError as exc:
            raise _explained(exc, f"reading the scan results of {interface.name}", interface.name) from None
        return [entry for entry in map(scan_entry_from_attributes, replies) if entry is not None]

    def trigger_scan(self, interface: Interface, timeout: float = SCAN_TIMEOUT_SECONDS) -> None:
        """Start a scan and wait (at most ``timeout``) until the kernel has its results.
        ScanNotPermitted without CAP_NET_ADMIN; ScanNotTriggered when it fails otherwise."""
        group = self.family.groups.get(NL80211_MULTICAST_GROUP_SCAN)
        if group is None:
            raise ScanNotTriggered("nl80211 offers no scan notifications: these are the cached results")
        try:
            # Joined before the trigger, so the end of the scan cannot be missed.
            self._socket.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        except OSError as exc:
            raise ScanNotTriggered(f"cannot follow nl80211's scan notifications ({exc.strerror or exc}): "
                                   "these are the cached results") from None
        # One wildcard (empty) SSID makes the scan active, as `iw dev IF scan` does: probe
        # requests find the access points at once instead of waiting for their beacons.
        wildcard = encode_attribute(NL80211_ATTR_SCAN_SSIDS | NLA_F_NESTED, encode_attribute(1, b""))
        try:
            self._call(NL80211_CMD_TRIGGER_SCAN, interface, dump=False, extra=wildcard)
        except NetlinkError as exc:
            if exc.errno == errno.EPERM:
                raise ScanNotPermitted("triggering a scan needs CAP_NET_ADMIN (give the agent's "
                                       "service AmbientCapabilities=CAP_NET_ADMIN, or set "
                                       "trigger_scan = false): these are the cached results") from None
            if exc.errno != errno.EBUSY:
                raise ScanNotTriggered(f"the kernel refused a scan on {interface.name} ({exc}): "
                                       "these are the cached results") from None
            # EBUSY: a scan (NetworkManager's, wpa_supplicant's) is already running; its
            # results are as fresh as ours would be.
        self._await_scan(interface, timeout)

    def _await_scan(self, interface: Interface, timeout: float) -> None:
        deadline = self._clock() + timeout
        while True:
            while self._events:
                message = self._events.pop(0)
                if message.type != self.family.id:
                    continue
                event = _generic(message)
                if _u32(event.attributes.get(NL80211_ATTR_IFINDEX)) != interface.ifindex:
                    continue  # another interface's scan
                if event.command == NL80211_CMD_NEW_SCAN_RESULTS:
                    return
                if event.command == NL80211_CMD_SCAN_ABORTED:
                    raise ScanNotTriggered(f"the scan on {interface.name} was aborted (the interface "
                                           "went down or roamed): these are the cached results")
            try:
                self._events.extend(self._receive(deadline))
            except TimeoutError:
                raise ScanNotTriggered(f"the scan on {interface.name} did not finish within {timeout:g} s: "
                                       "these are the cached results") from None


def _checked_decode(decode: Callable[[T], R], data: T) -> R:
    try:
        return decode(data)
    except MalformedMessage as exc:
        raise Unavailable(f"nl80211 sent a reply this cannot read: {exc}") from None


def _generic(message: Message) -> GenericMessage:
    return _checked_decode(generic, message)


def _explained(exc: NetlinkError, what: str, name: str | None = None) -> Unavailable:
    """A refusal as one line an ICT coordinator can act on."""
    if exc.errno == errno.ENODEV and name is not None:
        return Unavailable(f"{name} is gone (the kernel has no such device)")
    if exc.errno == errno.ENETDOWN and name is not None:
        return Unavailable(f"{name} is down (bring it up: ip link set {name} up)")
    return Unavailable(f"nl80211 failed {what}: {exc}")


# ---- what the Linux source asks ----------------------------------------------------------

@dataclass(frozen=True)
class ScanOutcome:
    entries: list[ScanEntry]
    triggered: bool  # a fresh scan; False: the kernel's cached results
    # Why a scan that was asked for was not made (None when it was, or was not asked for).
    not_triggered_reason: str | None = None


def check_available(socket_factory: SocketFactory = kernel_socket) -> None:
    """Unavailable (saying why) unless the kernel speaks nl80211: one round trip."""
    with Nl80211(socket_factory):
        pass


def choose_interface(candidates: Sequence[str], socket_factory: SocketFactory = kernel_socket) -> str:
    """Of several wireless interfaces (in the order given), the one whose link to read: a
    station associated with a network (the kernel names its SSID), else any station, else
    any client, else the first (its runs then say what it is). A Pi serving a set-up hotspot
    (uap0, ap0) beside its client interface, with an idle built-in radio beside a USB
    dongle, or in a Wi-Fi Direct group (p2p-wlan0-0: a phone's or a screen's, not the
    school's network) reads the link that carries its traffic. One round trip; Unavailable
    when the kernel has no nl80211."""
    with Nl80211(socket_factory) as netlink:
        known = {interface.name: interface for interface in netlink.interfaces()}
    clients = [name for name in candidates if name in known and known[name].is_client]
    stations = [name for name in clients if known[name].iftype == NL80211_IFTYPE_STATION]
    associated = [name for name in stations if known[name].ssid]
    return (associated or stations or clients or list(candidates))[0]


def read_link(name: str, socket_factory: SocketFactory = kernel_socket) -> LinkReading:
    """The link of the client interface ``name``: its station (the access point), its
    channel, and the noise of that channel where the driver surveys it."""
    with Nl80211(socket_factory) as netlink:
        interface = netlink.interface(name)
        if not interface.is_client:
            kind = IFTYPE_NAMES.get(interface.iftype or 0, f"type {interface.iftype}")
            # An access point's stations are pupils' devices: never read them.
            raise Unavailable(f"{name} is in {kind} mode, not a client: the agent reads only its own "
                              "link to an access point")
        station = access_point_station(netlink.stations(interface))
        if station is None:
            return LinkReading(source="nl80211", interface=name, connected=False)
        return link_from_station(station, interface, netlink.survey_noise(interface))


def read_scan(name: str, trigger: bool, socket_factory: SocketFactory = kernel_socket,
              timeout: float = SCAN_TIMEOUT_SECONDS) -> ScanOutcome:
    """The access points ``name`` sees: a fresh scan when ``trigger`` and permitted, else
    the kernel's cached results (the outcome says which, and why)."""
    with Nl80211(socket_factory) as netlink:
        interface = netlink.interface(name)
        reason = None
        triggered = False
        if trigger:
            try:
                netlink.trigger_scan(interface, timeout)
                triggered = True
            except ScanNotTriggered as exc:
                reason = str(exc)
        return ScanOutcome(netlink.scan_results(interface), triggered, reason)
