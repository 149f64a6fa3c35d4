"""The hand-written nl80211 client: replies built by hand from the kernel's UAPI headers,
replies encoded by pyroute2 (an independent implementation, test-only), a fake kernel socket
replaying whole conversations, and this machine's real kernel (it has no cfg80211).

Layouts (linux/netlink.h, linux/genetlink.h):
  struct nlmsghdr   { __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags;
                      __u32 nlmsg_seq; __u32 nlmsg_pid; }
  struct nlattr     { __u16 nla_len; __u16 nla_type; }   padded to NLA_ALIGNTO = 4
  struct genlmsghdr { __u8 cmd; __u8 version; __u16 reserved; }
  struct nlmsgerr   { int error; struct nlmsghdr msg; }  (error is -errno; 0 is an ACK)
all in host byte order. Numbers of commands and attributes are those of linux/nl80211.h.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.probes.wifi import nl80211
from agent.probes.wifi.source import Unavailable

# linux/netlink.h, linux/genetlink.h
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_MULTI, NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x2, 0x100, 0x200
NLA_F_NESTED = 0x8000
GENL_ID_CTRL, CTRL_CMD_NEWFAMILY = 0x10, 1
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_MCAST_GROUPS = 1, 2, 7
CTRL_ATTR_MCAST_GRP_NAME, CTRL_ATTR_MCAST_GRP_ID = 1, 2
# linux/nl80211.h
CMD_GET_INTERFACE, CMD_NEW_INTERFACE, CMD_GET_STATION, CMD_NEW_STATION = 5, 7, 17, 19
CMD_GET_SCAN, CMD_TRIGGER_SCAN, CMD_NEW_SCAN_RESULTS, CMD_SCAN_ABORTED = 32, 33, 34, 35
CMD_GET_SURVEY, CMD_NEW_SURVEY_RESULTS = 50, 51
ATTR_WIPHY, ATTR_IFINDEX, ATTR_IFNAME, ATTR_IFTYPE, ATTR_MAC = 1, 3, 4, 5, 6
ATTR_STA_INFO, ATTR_WIPHY_FREQ, ATTR_BSS, ATTR_SSID = 21, 38, 47, 52
ATTR_SURVEY_INFO, ATTR_CHANNEL_WIDTH = 84, 159
ATTR_WDEV, ATTR_SCAN_SSIDS = 153, 45
IFTYPE_STATION, IFTYPE_AP, IFTYPE_P2P_CLIENT, IFTYPE_P2P_DEVICE = 2, 3, 8, 10
CHAN_WIDTH_80 = 3
STA_INFO_SIGNAL, STA_INFO_TX_BITRATE, STA_INFO_TX_RETRIES, STA_INFO_TX_FAILED = 7, 8, 11, 12
STA_INFO_SIGNAL_AVG, STA_INFO_RX_BITRATE, STA_INFO_CONNECTED_TIME = 13, 14, 16
STA_INFO_STA_FLAGS, STA_INFO_BEACON_LOSS = 17, 18
STA_FLAG_TDLS_PEER = 6
RATE_INFO_BITRATE, RATE_INFO_MCS, RATE_INFO_BITRATE32, RATE_INFO_VHT_MCS = 1, 2, 5, 6
RATE_INFO_80_MHZ_WIDTH, RATE_INFO_HE_MCS = 8, 13
BSS_BSSID, BSS_FREQUENCY, BSS_INFORMATION_ELEMENTS, BSS_SIGNAL_MBM = 1, 2, 6, 7
BSS_SIGNAL_UNSPEC, BSS_STATUS, BSS_BEACON_IES = 8, 9, 11
BSS_STATUS_ASSOCIATED = 1
SURVEY_INFO_FREQUENCY, SURVEY_INFO_NOISE, SURVEY_INFO_IN_USE = 1, 2, 3

FAMILY = 0x1C  # what a kernel might assign to nl80211 (it is dynamic)
SCAN_GROUP = 5
IFINDEX = 3
PORT = 4242


def pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def nla(kind: int, payload: bytes) -> bytes:
    return pad(struct.pack("=HH", 4 + len(payload), kind) + payload)


def u8(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=B", value))


def s8(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=b", value))


def u16(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=H", value))


def u32(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=I", value))


def s32(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=i", value))


def flag(kind: int) -> bytes:
    return nla(kind, b"")


def nest(kind: int, *members: bytes, flagged: bool = True) -> bytes:
    return nla(kind | (NLA_F_NESTED if flagged else 0), b"".join(members))


def nlmsg(kind: int, payload: bytes, seq: int, flags: int = 0) -> bytes:
    return pad(struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, PORT) + payload)


def genl(family: int, command: int, *attrs: bytes, seq: int, flags: int = 0) -> bytes:
    return nlmsg(family, struct.pack("=BBH", command, 1, 0) + b"".join(attrs), seq, flags)


def error(seq: int, code: int, text: str | None = None) -> bytes:
    echoed = struct.pack("=IHHII", 20, FAMILY, 5, seq, 0)  # the request's header (capped)
    flags = NLM_F_CAPPED
    tlvs = b""
    if text is not None:
        flags |= NLM_F_ACK_TLVS
        tlvs = nla(1, text.encode() + b"\x00")  # NLMSGERR_ATTR_MSG
    return nlmsg(NLMSG_ERROR, struct.pack("=i", -code) + echoed + tlvs, seq, flags)


def ack(seq: int) -> bytes:
    return error(seq, 0)


def done(seq: int) -> bytes:
    return nlmsg(NLMSG_DONE, struct.pack("=i", 0), seq, NLM_F_MULTI)


def elements(*items: tuple[int, bytes]) -> bytes:
    """802.11 elements: id, length, body (IEEE 802.11-2020 §9.4.2)."""
    return b"".join(bytes([element_id, len(body)]) + body for element_id, body in items)


SCHOOL_IES = elements((0, b"Lokaal 12"), (3, bytes([6])), (11, struct.pack("<HBH", 17, 102, 0)))


def family_reply(seq: int) -> bytes:
    groups = nest(CTRL_ATTR_MCAST_GROUPS,
                  nest(1, nla(CTRL_ATTR_MCAST_GRP_NAME, b"config\x00"), u32(CTRL_ATTR_MCAST_GRP_ID, 4)),
                  nest(2, nla(CTRL_ATTR_MCAST_GRP_NAME, b"scan\x00"),
                       u32(CTRL_ATTR_MCAST_GRP_ID, SCAN_GROUP)))
    return genl(GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, u16(CTRL_ATTR_FAMILY_ID, FAMILY),
                nla(CTRL_ATTR_FAMILY_NAME, b"nl80211\x00"), groups, seq=seq)


def interface_message(seq: int, name: str = "wlan0", iftype: int = IFTYPE_STATION) -> bytes:
    return genl(FAMILY, CMD_NEW_INTERFACE, u32(ATTR_IFINDEX, IFINDEX),
                nla(ATTR_IFNAME, name.encode() + b"\x00"), u32(ATTR_WIPHY, 0), u32(ATTR_IFTYPE, iftype),
                nla(ATTR_MAC, bytes.fromhex("dca632000001")),  # the Pi's own MAC: never kept
                u32(ATTR_WIPHY_FREQ, 5180), u32(ATTR_CHANNEL_WIDTH, CHAN_WIDTH_80),
                nla(ATTR_SSID, b"Lokaal 12"), seq=seq, flags=NLM_F_MULTI)


def p2p_device_message(seq: int) -> bytes:
    # A wireless device without a network interface: no IFINDEX, no IFNAME.
    return genl(FAMILY, CMD_NEW_INTERFACE, u32(ATTR_WIPHY, 0), u32(ATTR_IFTYPE, IFTYPE_P2P_DEVICE),
                nla(ATTR_WDEV, struct.pack("=Q", 2)), seq=seq, flags=NLM_F_MULTI)


def station_message(seq: int, mac: str = "64:d1:54:68:93:ae", tdls: bool = False) -> bytes:
    tx = nest(STA_INFO_TX_BITRATE, u32(RATE_INFO_BITRATE32, 8667), u8(RATE_INFO_VHT_MCS, 9),
              flag(RATE_INFO_80_MHZ_WIDTH))
    rx = nest(STA_INFO_RX_BITRATE, u16(RATE_INFO_BITRATE, 7020), u8(RATE_INFO_VHT_MCS, 8))
    sta_flags = struct.pack("=II", 1 << STA_FLAG_TDLS_PEER, (1 << STA_FLAG_TDLS_PEER) if tdls else 0)
    info = nest(ATTR_STA_INFO, s8(STA_INFO_SIGNAL, -61), s8(STA_INFO_SIGNAL_AVG, -59), tx, rx,
                u32(STA_INFO_TX_RETRIES, 976), u32(STA_INFO_TX_FAILED, 3), u32(STA_INFO_BEACON_LOSS, 1),
                u32(STA_INFO_CONNECTED_TIME, 233), nla(STA_INFO_STA_FLAGS, sta_flags))
    address = nla(ATTR_MAC, bytes.fromhex(mac.replace(":", "")))
    return genl(FAMILY, CMD_NEW_STATION, u32(ATTR_IFINDEX, IFINDEX), address, info, seq=seq,
                flags=NLM_F_MULTI)


def survey_message(seq: int, mhz: int, noise: int | None, in_use: bool) -> bytes:
    members = [u32(SURVEY_INFO_FREQUENCY, mhz)]
    if noise is not None:
        members.append(u8(SURVEY_INFO_NOISE, noise & 0xFF))  # a u8 holding a signed dBm value
    if in_use:
        members.append(flag(SURVEY_INFO_IN_USE))
    return genl(FAMILY, CMD_NEW_SURVEY_RESULTS, u32(ATTR_IFINDEX, IFINDEX), nest(ATTR_SURVEY_INFO, *members),
                seq=seq, flags=NLM_F_MULTI)


def bss_message(seq: int, bssid: str, mhz: int, *members: bytes) -> bytes:
    address = nla(BSS_BSSID, bytes.fromhex(bssid.replace(":", "")))
    bss = nest(ATTR_BSS, address, u32(BSS_FREQUENCY, mhz), *members)
    return genl(FAMILY, CMD_NEW_SCAN_RESULTS, u32(ATTR_IFINDEX, IFINDEX), bss, seq=seq, flags=NLM_F_MULTI)


def scan_dump(seq: int) -> list[bytes]:
    return [bss_message(seq, "64:d1:54:68:93:ae", 2437, s32(BSS_SIGNAL_MBM, -6450),
                        nla(BSS_INFORMATION_ELEMENTS, SCHOOL_IES), u32(BSS_STATUS, BSS_STATUS_ASSOCIATED))
            + bss_message(seq, "64:d1:54:68:93:af", 5180, u8(BSS_SIGNAL_UNSPEC, 70),
                          nla(BSS_INFORMATION_ELEMENTS, elements((0, b""))),
                          nla(BSS_BEACON_IES, elements((0, b""), (11, struct.pack("<HBH", 3, 51, 0))))),
            done(seq)]


def event(command: int, ifindex: int = IFINDEX) -> bytes:
    return genl(FAMILY, command, u32(ATTR_WIPHY, 0), u32(ATTR_IFINDEX, ifindex), seq=0)


@dataclass
class Request:
    family: int
    flags: int
    seq: int
    command: int
    attrs: bytes
    pending_when_sent: int


class FakeKernel:
    """A netlink socket whose kernel is a script: each request gets the datagrams the script
    returns for it, delivered one per recv(); nothing left to deliver is a timeout."""

    def __init__(self, answer: Callable[[Request], list[bytes]]) -> None:
        self._answer = answer
        self.requests: list[Request] = []
        self.options: list[tuple[int, int, int]] = []
        self.pending: list[bytes] = []
        self.closed = False

    def bind(self, address: tuple[int, int], /) -> None:
        assert address == (0, 0)

    def setsockopt(self, level: int, option: int, value: int, /) -> None:
        self.options.append((level, option, value))

    def settimeout(self, timeout: float | None, /) -> None:
        assert timeout is not None and timeout > 0

    def send(self, data: bytes, /) -> int:
        length, family, flags, seq, _port = struct.unpack_from("=IHHII", data)
        assert length == len(data)
        request = Request(family, flags, seq, data[16], data[20:length], len(self.pending))
        self.requests.append(request)
        self.pending.extend(self._answer(request))
        return len(data)

    def recv(self, size: int, /) -> bytes:
        assert size >= 32768
        if not self.pending:
            raise TimeoutError("timed out")
        return self.pending.pop(0)

    def close(self) -> None:
        self.closed = True

    def commands(self) -> list[int]:
        return [request.command for request in self.requests if request.family == FAMILY]


def school_kernel(iftype: int = IFTYPE_STATION, stations: Callable[[int], list[bytes]] | None = None,
                  trigger: Callable[[int], list[bytes]] | None = None) -> FakeKernel:
    """A kernel with one wireless interface, wlan0, associated to a school's access point."""
    def answer(request: Request) -> list[bytes]:
        seq = request.seq
        if request.family == GENL_ID_CTRL:
            return [family_reply(seq) + ack(seq)]
        if request.command == CMD_GET_INTERFACE:
            # A dump spread over three datagrams.
            return [p2p_device_message(seq), interface_message(seq, iftype=iftype), done(seq)]
        if request.command == CMD_GET_STATION:
            return stations(seq) if stations else [station_message(seq) + done(seq)]
        if request.command == CMD_GET_SURVEY:
            return [survey_message(seq, 2412, -91, False) + survey_message(seq, 5180, -95, True), done(seq)]
        if request.command == CMD_GET_SCAN:
            return scan_dump(seq)
        if request.command == CMD_TRIGGER_SCAN and trigger is not None:
            return trigger(seq)
        raise AssertionError(f"unexpected request {request}")
    return FakeKernel(answer)


# ---- pure decoding ------------------------------------------------------------------------

def test_messages_and_attributes_by_hand() -> None:
    station_info = nest(ATTR_STA_INFO, s8(STA_INFO_SIGNAL, -61))
    data = genl(FAMILY, CMD_NEW_STATION, u8(200, 7), station_info, seq=9) + done(9)
    station, end = nl80211.parse_messages(data)
    assert (station.type, station.seq, station.port, end.type) == (FAMILY, 9, PORT, NLMSG_DONE)
    message = nl80211.generic(station)
    assert message.command == CMD_NEW_STATION
    assert message.attributes[200] == b"\x07"  # one byte, padded to four on the wire
    (signal,) = nl80211.attributes(message.attributes[ATTR_STA_INFO])
    assert signal.type == STA_INFO_SIGNAL and not signal.nested
    (outer,) = nl80211.attributes(nest(ATTR_STA_INFO, b""))
    assert outer.type == ATTR_STA_INFO and outer.nested  # NLA_F_NESTED masked off the type
    assert nl80211.done_code(end) == 0


def test_malformed_bytes_are_refused() -> None:
    with pytest.raises(nl80211.MalformedMessage, match="claims"):
        nl80211.parse_messages(struct.pack("=IHHII", 200, FAMILY, 0, 1, 0))
    with pytest.raises(nl80211.MalformedMessage, match="attribute"):
        nl80211.attributes(struct.pack("=HH", 40, 1) + b"\x00" * 4)


def test_error_with_the_kernels_extended_ack() -> None:
    (message,) = nl80211.parse_messages(error(4, errno.EINVAL, "unsupported scan flags"))
    assert nl80211.error_of(message) == (errno.EINVAL, "unsupported scan flags")
    (plain,) = nl80211.parse_messages(error(4, errno.EPERM))
    assert nl80211.error_of(plain) == (errno.EPERM, None)


def test_family_and_its_groups() -> None:
    (message,) = nl80211.parse_messages(family_reply(1))
    family = nl80211.family_from_attributes(nl80211.generic(message).attributes)
    assert family == nl80211.Family(FAMILY, {"config": 4, "scan": SCAN_GROUP})


def test_station_as_a_link() -> None:
    (interface_data,) = nl80211.parse_messages(interface_message(1))
    interface = nl80211.interface_from_attributes(nl80211.generic(interface_data).attributes)
    assert interface is not None and interface.is_client
    assert (interface.ifindex, interface.name, interface.frequency_mhz, interface.ssid) == (
        IFINDEX, "wlan0", 5180, "Lokaal 12")
    (station,) = nl80211.parse_messages(station_message(2))
    reading = nl80211.link_from_station(nl80211.generic(station).attributes, interface, noise_dbm=-95.0)
    assert reading.source == "nl80211"
    assert (reading.interface, reading.ssid, reading.bssid) == ("wlan0", "Lokaal 12", "64:d1:54:68:93:ae")
    assert reading.signal_dbm == -61.0  # s8
    assert reading.noise_dbm == -95.0
    assert (reading.frequency_hertz, reading.channel, reading.band) == (5_180_000_000, 36, "5GHz")
    assert reading.channel_width_hertz == 80_000_000  # NL80211_CHAN_WIDTH_80
    assert reading.tx_bitrate_bits_per_second == pytest.approx(866.7e6)  # BITRATE32, 100 kbit/s
    assert reading.rx_bitrate_bits_per_second == pytest.approx(702.0e6)  # 16-bit BITRATE
    assert reading.phy_mode == "VHT"
    assert (reading.tx_retries, reading.tx_failed, reading.beacon_loss, reading.connected_seconds) == (
        976, 3, 1, 233.0)
    assert "dc:a6:32" not in repr(reading)  # the machine's own MAC is nowhere


@pytest.mark.parametrize(("code", "mhz"), [(0, 20), (1, 20), (2, 40), (4, 160), (5, 160), (13, 320),
                                           (99, None)])
def test_interface_channel_widths(code: int, mhz: int | None) -> None:
    # enum nl80211_chan_width: 20_NOHT, 20, 40, 80, 80P80, 160, 5, 10, 1, 2, 4, 8, 16, 320.
    attrs = nl80211.attribute_map(u32(ATTR_IFINDEX, IFINDEX) + nla(ATTR_IFNAME, b"wlan0\x00")
                                  + u32(ATTR_CHANNEL_WIDTH, code))
    interface = nl80211.interface_from_attributes(attrs)
    assert interface is not None
    assert interface.channel_width_hertz == (mhz * 1_000_000 if mhz else None)


def test_scan_results_as_entries() -> None:
    school, hidden = [nl80211.scan_entry_from_attributes(nl80211.generic(message).attributes)
                      for message in nl80211.parse_messages(b"".join(scan_dump(3)))[:2]]
    assert school is not None and hidden is not None
    assert (school.source, school.bssid, school.ssid) == ("nl80211", "64:d1:54:68:93:ae", "Lokaal 12")
    assert school.signal_dbm == -64.5  # SIGNAL_MBM is s32 mBm
    assert (school.frequency_hertz, school.channel, school.band) == (2_437_000_000, 6, "2.4GHz")
    assert school.station_count == 17
    assert school.channel_utilization_ratio == pytest.approx(102 / 255)
    assert school.associated
    assert hidden.ssid == "" and not hidden.associated
    # SIGNAL_UNSPEC: a 0-100 with no documented dBm mapping.
    assert (hidden.signal_percent, hidden.signal_dbm, hidden.signal_converted) == (70.0, None, False)
    assert hidden.station_count == 3  # from the beacon's elements, missing from the latest frame's
    assert hidden.channel == 36  # no DS Parameter Set: from the frequency


def test_survey_noise_of_the_channel_in_use() -> None:
    surveys = [nl80211.generic(message).attributes for message in nl80211.parse_messages(
        survey_message(1, 2412, -91, False) + survey_message(1, 5180, -95, True))]
    assert nl80211.in_use_noise(surveys) == -95.0
    assert nl80211.in_use_noise(surveys[:1]) is None
    no_noise = nl80211.generic(nl80211.parse_messages(survey_message(1, 5180, None, True))[0]).attributes
    assert nl80211.in_use_noise([no_noise]) is None


# ---- cross-checked with pyroute2 --------------------------------------------------------

def test_a_station_encoded_by_pyroute2() -> None:
    from pyroute2.netlink.nl80211 import nl80211cmd

    message = nl80211cmd()
    message["cmd"] = CMD_NEW_STATION
    message["version"] = 1
    message["attrs"] = [
        ("NL80211_ATTR_IFINDEX", IFINDEX), ("NL80211_ATTR_MAC", "04:f0:21:32:3f:d2"),
        ("NL80211_ATTR_STA_INFO", {"attrs": [
            ("NL80211_STA_INFO_SIGNAL", -60), ("NL80211_STA_INFO_TX_RETRIES", 976),
            ("NL80211_STA_INFO_TX_FAILED", 0), ("NL80211_STA_INFO_BEACON_LOSS", 2),
            ("NL80211_STA_INFO_CONNECTED_TIME", 233),
            ("NL80211_STA_INFO_TX_BITRATE", {"attrs": [("NL80211_RATE_INFO_BITRATE32", 6500),
                                                      ("NL80211_RATE_INFO_VHT_MCS", 7),
                                                      ("NL80211_RATE_INFO_80_MHZ_WIDTH", True)]}),
            ("NL80211_STA_INFO_RX_BITRATE", {"attrs": [("NL80211_RATE_INFO_BITRATE", 6500),
                                                      ("NL80211_RATE_INFO_HE_MCS", 7)]})]})]
    message["header"]["type"] = FAMILY
    message["header"]["flags"] = NLM_F_MULTI
    message.encode()
    (decoded,) = nl80211.parse_messages(bytes(message.data))
    interface = nl80211.Interface(IFINDEX, "wlo1", IFTYPE_STATION, frequency_mhz=5300)
    reading = nl80211.link_from_station(nl80211.generic(decoded).attributes, interface)
    assert reading.bssid == "04:f0:21:32:3f:d2"
    assert reading.signal_dbm == -60.0
    assert reading.tx_bitrate_bits_per_second == pytest.approx(650.0e6)
    assert reading.rx_bitrate_bits_per_second == pytest.approx(650.0e6)
    assert reading.phy_mode == "HE"  # the newer of the two rates' PHYs
    assert reading.channel_width_hertz == 80_000_000  # from the rate: the interface says none
    assert (reading.tx_retries, reading.tx_failed, reading.beacon_loss, reading.connected_seconds) == (
        976, 0, 2, 233.0)


def test_a_scan_result_encoded_by_pyroute2_and_one_decoded_by_it() -> None:
    from pyroute2.netlink.nl80211 import nl80211cmd

    message = nl80211cmd()
    message["cmd"] = CMD_NEW_SCAN_RESULTS
    message["attrs"] = [("NL80211_ATTR_IFINDEX", IFINDEX), ("NL80211_ATTR_BSS", {"attrs": [
        ("NL80211_BSS_BSSID", bytes.fromhex("70f096d2e062")), ("NL80211_BSS_FREQUENCY", 5180),
        ("NL80211_BSS_SIGNAL_UNSPEC", 70), ("NL80211_BSS_STATUS", BSS_STATUS_ASSOCIATED)]})]
    message["header"]["type"] = FAMILY
    message.encode()
    (decoded,) = nl80211.parse_messages(bytes(message.data))
    entry = nl80211.scan_entry_from_attributes(nl80211.generic(decoded).attributes)
    assert entry is not None
    assert (entry.bssid, entry.frequency_hertz, entry.channel, entry.band) == (
        "70:f0:96:d2:e0:62", 5_180_000_000, 36, "5GHz")
    assert (entry.signal_percent, entry.signal_dbm, entry.associated) == (70.0, None, True)
    # pyroute2 cannot encode SIGNAL_MBM or the elements, but it decodes them: it must read
    # the hand-built reply as this decoder does.
    data = scan_dump(3)[0]
    theirs = nl80211cmd(data)
    theirs.decode()
    bss = theirs.get_attr("NL80211_ATTR_BSS")
    ours = nl80211.scan_entry_from_attributes(nl80211.generic(nl80211.parse_messages(data)[0]).attributes)
    assert ours is not None
    assert bss.get_attr("NL80211_BSS_SIGNAL_MBM")["SIGNAL_STRENGTH"]["VALUE"] == ours.signal_dbm
    ies = bss.get_attr("NL80211_BSS_INFORMATION_ELEMENTS")
    assert (ies["SSID"].decode(), ies["CHANNEL"]) == (ours.ssid, ours.channel)
    assert bss.get_attr("NL80211_BSS_FREQUENCY") * 1_000_000 == ours.frequency_hertz


def test_survey_and_family_encoded_by_pyroute2() -> None:
    from pyroute2.netlink.generic import ctrlmsg
    from pyroute2.netlink.nl80211 import nl80211cmd

    survey = nl80211cmd()
    survey["cmd"] = CMD_NEW_SURVEY_RESULTS
    survey["attrs"] = [("NL80211_ATTR_IFINDEX", IFINDEX), ("NL80211_ATTR_SURVEY_INFO", {"attrs": [
        ("NL80211_SURVEY_INFO_FREQUENCY", 5180), ("NL80211_SURVEY_INFO_NOISE", 161),  # u8 of -95
        ("NL80211_SURVEY_INFO_IN_USE", True)]})]
    survey["header"]["type"] = FAMILY
    survey.encode()
    attrs = nl80211.generic(nl80211.parse_messages(bytes(survey.data))[0]).attributes
    assert nl80211.in_use_noise([attrs]) == -95.0
    family = ctrlmsg()
    family["cmd"] = CTRL_CMD_NEWFAMILY
    family["attrs"] = [("CTRL_ATTR_FAMILY_ID", FAMILY), ("CTRL_ATTR_FAMILY_NAME", "nl80211"),
                       ("CTRL_ATTR_MCAST_GROUPS", [
                           {"attrs": [("CTRL_ATTR_MCAST_GRP_NAME", "mlme"), ("CTRL_ATTR_MCAST_GRP_ID", 6)]},
                           {"attrs": [("CTRL_ATTR_MCAST_GRP_NAME", "scan"), ("CTRL_ATTR_MCAST_GRP_ID", 7)]}])]
    family["header"]["type"] = GENL_ID_CTRL
    family.encode()
    attrs = nl80211.generic(nl80211.parse_messages(bytes(family.data))[0]).attributes
    assert nl80211.family_from_attributes(attrs) == nl80211.Family(FAMILY, {"mlme": 6, "scan": 7})


# ---- whole conversations with a fake kernel ----------------------------------------------

def test_read_link_conversation() -> None:
    kernel = school_kernel()
    reading = nl80211.read_link("wlan0", lambda: kernel)
    assert (reading.ssid, reading.bssid, reading.signal_dbm, reading.noise_dbm) == (
        "Lokaal 12", "64:d1:54:68:93:ae", -61.0, -95.0)
    assert kernel.closed
    assert kernel.commands() == [CMD_GET_INTERFACE, CMD_GET_STATION, CMD_GET_SURVEY]
    family_request, interfaces, stations, _survey = kernel.requests
    assert family_request.family == GENL_ID_CTRL and family_request.flags & 0x4  # NLM_F_ACK
    assert nl80211.attribute_map(family_request.attrs)[CTRL_ATTR_FAMILY_NAME] == b"nl80211\x00"
    assert interfaces.flags & 0x300 == 0x300  # NLM_F_DUMP
    assert nl80211.attribute_map(stations.attrs)[ATTR_IFINDEX] == struct.pack("=I", IFINDEX)
    assert (270, 11, 1) in kernel.options  # NETLINK_EXT_ACK: the kernel's reasons with errors


def test_a_tdls_peer_is_passed_over_and_no_station_is_not_connected() -> None:
    kernel = school_kernel(stations=lambda seq: [
        station_message(seq, "02:00:00:00:00:09", tdls=True) + station_message(seq), done(seq)])
    assert nl80211.read_link("wlan0", lambda: kernel).bssid == "64:d1:54:68:93:ae"
    idle = school_kernel(stations=lambda seq: [done(seq)])
    reading = nl80211.read_link("wlan0", lambda: idle)
    assert (reading.connected, reading.interface, reading.signal_dbm) == (False, "wlan0", None)


def test_an_access_points_stations_are_never_asked_for() -> None:
    kernel = school_kernel(iftype=IFTYPE_AP)
    with pytest.raises(Unavailable, match="wlan0 is in access point mode, not a client"):
        nl80211.read_link("wlan0", lambda: kernel)
    assert CMD_GET_STATION not in kernel.commands()


def test_errors_become_reasons() -> None:
    gone = school_kernel(stations=lambda seq: [error(seq, errno.ENODEV)])
    with pytest.raises(Unavailable, match="wlan0 is gone"):
        nl80211.read_link("wlan0", lambda: gone)
    unknown = r"wlan1 is not a wireless interface nl80211 knows \(it knows wlan0\)"
    with pytest.raises(Unavailable, match=unknown):
        nl80211.read_link("wlan1", lambda: school_kernel())
    no_family = FakeKernel(lambda request: [error(request.seq, errno.ENOENT)])
    with pytest.raises(Unavailable, match="the kernel has no nl80211"):
        nl80211.check_available(lambda: no_family)
    assert no_family.closed
    silent = FakeKernel(lambda request: [])
    with pytest.raises(Unavailable, match="did not answer"):
        nl80211.check_available(lambda: silent)
    garbled = FakeKernel(lambda request: [struct.pack("=IHHII", 99, 2, 0, request.seq, 0)])
    with pytest.raises(Unavailable, match="cannot read"):
        nl80211.check_available(lambda: garbled)

    def refuse() -> nl80211.NetlinkSocket:
        raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(Unavailable, match="cannot open a netlink socket: Permission denied"):
        nl80211.check_available(refuse)


def test_triggered_scan_waits_for_this_interfaces_results() -> None:
    kernel = school_kernel(trigger=lambda seq: [
        ack(seq), event(CMD_TRIGGER_SCAN), event(CMD_NEW_SCAN_RESULTS, ifindex=7),
        event(CMD_NEW_SCAN_RESULTS)])
    outcome = nl80211.read_scan("wlan0", trigger=True, socket_factory=lambda: kernel)
    assert outcome.triggered and outcome.not_triggered_reason is None
    assert [entry.ssid for entry in outcome.entries] == ["Lokaal 12", ""]
    assert (270, 1, SCAN_GROUP) in kernel.options  # joined the "scan" group before triggering
    trigger, get_scan = [request for request in kernel.requests if request.family == FAMILY][-2:]
    scan_ssids = nl80211.attributes(trigger.attrs)[1]
    assert (scan_ssids.type, scan_ssids.nested) == (ATTR_SCAN_SSIDS, True)  # a wildcard: active scan
    assert get_scan.command == CMD_GET_SCAN and get_scan.pending_when_sent == 0  # after the right event


def test_a_scan_without_permission_returns_the_cached_results() -> None:
    kernel = school_kernel(trigger=lambda seq: [error(seq, errno.EPERM)])
    outcome = nl80211.read_scan("wlan0", trigger=True, socket_factory=lambda: kernel)
    assert not outcome.triggered
    assert outcome.not_triggered_reason is not None and "CAP_NET_ADMIN" in outcome.not_triggered_reason
    assert len(outcome.entries) == 2


@pytest.mark.parametrize(("answer", "triggered", "reason"), [
    (lambda seq: [error(seq, errno.EBUSY), event(CMD_NEW_SCAN_RESULTS)], True, None),  # someone else's scan
    (lambda seq: [ack(seq), event(CMD_SCAN_ABORTED)], False, "aborted"),
    (lambda seq: [ack(seq)], False, "did not finish within 30 s"),
    (lambda seq: [error(seq, errno.EOPNOTSUPP, "no scan on this iftype")], False, "no scan on this iftype"),
])
def test_scan_outcomes(answer: Callable[[int], list[bytes]], triggered: bool, reason: str | None) -> None:
    outcome = nl80211.read_scan("wlan0", True, lambda: school_kernel(trigger=answer), timeout=30.0)
    assert outcome.triggered is triggered
    if reason is None:
        assert outcome.not_triggered_reason is None
    else:
        assert outcome.not_triggered_reason is not None and reason in outcome.not_triggered_reason
    assert len(outcome.entries) == 2


def test_cached_scan_without_trigger() -> None:
    kernel = school_kernel()
    outcome = nl80211.read_scan("wlan0", trigger=False, socket_factory=lambda: kernel)
    assert (outcome.triggered, outcome.not_triggered_reason, len(outcome.entries)) == (False, None, 2)
    assert CMD_TRIGGER_SCAN not in kernel.commands()


# ---- this machine's kernel, for real --------------------------------------------------------

def test_this_kernel() -> None:
    """This machine has no cfg80211: its kernel answers CTRL_CMD_GETFAMILY "nl80211" with
    ENOENT. (On a machine with cfg80211 loaded, the family resolves instead.)"""
    if Path("/sys/module/cfg80211").exists():
        with nl80211.Nl80211() as netlink:
            assert netlink.family.id >= GENL_ID_CTRL
            assert "scan" in netlink.family.groups
    else:
        with pytest.raises(Unavailable, match=r"^the kernel has no nl80211 \(no cfg80211"):
            nl80211.check_available()


# ---- two wireless interfaces (review of issue 5) -----------------------------------------------

def named_interface(seq: int, name: str, ifindex: int, iftype: int, ssid: bytes | None) -> bytes:
    """A NEW_INTERFACE message; the kernel adds NL80211_ATTR_SSID only for an interface that
    is associated (a client) or beaconing (an access point)."""
    attrs = [u32(ATTR_IFINDEX, ifindex), nla(ATTR_IFNAME, name.encode() + b"\x00"), u32(ATTR_WIPHY, 0),
             u32(ATTR_IFTYPE, iftype)]
    if ssid is not None:
        attrs.append(nla(ATTR_SSID, ssid))
    return genl(FAMILY, CMD_NEW_INTERFACE, *attrs, seq=seq, flags=NLM_F_MULTI)


def two_interface_kernel(*interfaces: tuple[str, int, bytes | None]) -> Callable[[], FakeKernel]:
    def answer(request: Request) -> list[bytes]:
        if request.family == GENL_ID_CTRL:
            return [family_reply(request.seq) + ack(request.seq)]
        assert request.command == CMD_GET_INTERFACE
        return [b"".join(named_interface(request.seq, name, index + 3, iftype, ssid)
                         for index, (name, iftype, ssid) in enumerate(interfaces)), done(request.seq)]
    return lambda: FakeKernel(answer)


def test_of_two_wireless_interfaces_the_associated_client_is_read(tmp_path: Path) -> None:
    from agent.config import WifiProbeConfig
    from agent.probes.wifi import linux

    root = tmp_path / "net"
    for name in ("ap0", "p2p-wlan0-0", "uap0", "wlan0", "wlan1"):
        (root / name / "phy80211").mkdir(parents=True)
    auto = WifiProbeConfig()
    # A Pi that also serves a set-up hotspot (RaspAP's uap0): never the access point's side.
    hotspot = two_interface_kernel(("ap0", IFTYPE_AP, b"Setup"), ("uap0", IFTYPE_AP, b"Setup"),
                                   ("wlan0", IFTYPE_STATION, b"School"))
    assert linux.open_linux_source(auto, sysfs=root, socket_factory=hotspot).interface == "wlan0"
    # A USB dongle carries the link while the built-in radio is idle.
    dongle = two_interface_kernel(("wlan0", IFTYPE_STATION, None), ("wlan1", IFTYPE_STATION, b"School"))
    assert linux.open_linux_source(auto, sysfs=root, socket_factory=dongle).interface == "wlan1"
    # A Wi-Fi Direct group with a pupil's phone or a classroom screen is not the school's network.
    direct = two_interface_kernel(("p2p-wlan0-0", IFTYPE_P2P_CLIENT, b"DIRECT-xy-Galaxy"),
                                  ("wlan0", IFTYPE_STATION, b"School"))
    assert linux.open_linux_source(auto, sysfs=root, socket_factory=direct).interface == "wlan0"
    idle = two_interface_kernel(("wlan0", IFTYPE_STATION, None), ("wlan1", IFTYPE_STATION, None))
    assert linux.open_linux_source(auto, sysfs=root, socket_factory=idle).interface == "wlan0"
    # The configured interface is read whatever the others do.
    configured = WifiProbeConfig(interface="wlan0")
    assert linux.open_linux_source(configured, sysfs=root, socket_factory=dongle).interface == "wlan0"
