"""Passive listening: devices that announce themselves on the LAN, without a packet sent.

Over ``listen`` seconds an AF_PACKET socket on the interface hears the frames devices
broadcast anyway: ARP (the sender's hardware address), DHCP client messages (the client
hardware address, ``chaddr``, which a phone sends when it joins or renews) and mDNS
(the Ethernet source of frames to 224.0.0.251 or ff02::fb port 5353: phones, laptops and
printers announce their services there). It sees what reaches the agent's port: one
broadcast domain (VLAN), and on Wi-Fi with client isolation much less.

A classic BPF program (SO_ATTACH_FILTER) drops every other frame in the kernel, so the
agent's Python never wakes for the school's ordinary traffic. Needs CAP_NET_RAW.

Each address is hashed with the day's key as soon as it is read; the agent's own address,
broadcast and multicast sources are not devices.
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from agent.config import PassiveCensusConfig
from agent.probes.users import bpf
from agent.probes.users.census import CensusUnavailable, DeviceKeys, SourceResult, is_device_address
from agent.routes import default_route_interface

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETHERNET_HEADER = 14
IPPROTO_UDP = 17
DHCP_CLIENT_PORT, DHCP_SERVER_PORT = 68, 67
MDNS_PORT = 5353
MDNS_IPV4 = ipaddress.IPv4Address("224.0.0.251").packed
MDNS_IPV6 = ipaddress.IPv6Address("ff02::fb").packed
BOOTREQUEST = 1
ARPHRD_ETHER = 1
PACKET_OUTGOING = 4  # linux/if_packet.h: a frame this host sent, looped back to the socket
# Bytes of a frame the filter hands up: enough for DHCP's chaddr behind the longest IPv4
# header (14 + 60 + 8 + 28 + 16 = 126).
SNAP_BYTES = 128
RECEIVE_BYTES = 2048

# ---- the filter: classic BPF, written by hand ---------------------------------------------
# Opcodes from linux/bpf_common.h (and linux/filter.h for BPF_MSH): an instruction is
# {u16 code; u8 jt; u8 jf; u32 k}, a jump's jt/jf count the instructions it skips.
BPF_LD, BPF_LDX, BPF_JMP, BPF_RET = 0x00, 0x01, 0x05, 0x06
BPF_W, BPF_H, BPF_B = 0x00, 0x08, 0x10
BPF_ABS, BPF_IND, BPF_MSH = 0x20, 0x40, 0xA0
BPF_JEQ, BPF_JSET = 0x10, 0x40
BPF_K = 0x00

LD_H_ABS = BPF_LD | BPF_H | BPF_ABS  # 0x28: A = u16 at [k]
LD_B_ABS = BPF_LD | BPF_B | BPF_ABS  # 0x30: A = u8 at [k]
LD_W_ABS = BPF_LD | BPF_W | BPF_ABS  # 0x20: A = u32 at [k]
LD_H_IND = BPF_LD | BPF_H | BPF_IND  # 0x48: A = u16 at [X + k]
LDX_B_MSH = BPF_LDX | BPF_B | BPF_MSH  # 0xb1: X = 4 * ([k] & 0x0f), the IPv4 header length
JEQ = BPF_JMP | BPF_JEQ | BPF_K  # 0x15
JSET = BPF_JMP | BPF_JSET | BPF_K  # 0x45
RET = BPF_RET | BPF_K  # 0x06

Instruction = tuple[int, str | int, str | int, int]

# (code, jt, jf, k) with jumps to labels; "next" is the following instruction. Offsets
# are those of an untagged Ethernet frame (the kernel hands VLAN tags up out of band).
_PROGRAM: list[tuple[str | None, Instruction]] = [
    (None, (LD_H_ABS, 0, 0, 12)),                       # ethertype
    (None, (JEQ, "accept", "next", ETH_P_ARP)),
    (None, (JEQ, "ipv4", "next", ETH_P_IP)),
    (None, (JEQ, "ipv6", "drop", ETH_P_IPV6)),
    ("ipv4", (LD_B_ABS, 0, 0, 23)),                     # protocol
    (None, (JEQ, "next", "drop", IPPROTO_UDP)),
    (None, (LD_H_ABS, 0, 0, 20)),                       # flags and fragment offset
    (None, (JSET, "drop", "next", 0x1FFF)),             # a later fragment has no UDP header
    (None, (LDX_B_MSH, 0, 0, 14)),
    (None, (LD_H_IND, 0, 0, 14)),                       # UDP source port
    (None, (JEQ, "next", "mdns4", DHCP_CLIENT_PORT)),
    (None, (LD_H_IND, 0, 0, 16)),                       # UDP destination port
    (None, (JEQ, "accept", "drop", DHCP_SERVER_PORT)),
    ("mdns4", (LD_H_IND, 0, 0, 16)),
    (None, (JEQ, "next", "drop", MDNS_PORT)),
    (None, (LD_W_ABS, 0, 0, 30)),                       # destination address
    (None, (JEQ, "accept", "drop", int.from_bytes(MDNS_IPV4, "big"))),
    ("ipv6", (LD_B_ABS, 0, 0, 20)),                     # next header (no extension headers)
    (None, (JEQ, "next", "drop", IPPROTO_UDP)),
    (None, (LD_H_ABS, 0, 0, 56)),                       # UDP destination port
    (None, (JEQ, "next", "drop", MDNS_PORT)),
    *[(None, instruction) for offset in range(0, 16, 4) for instruction in (
        (LD_W_ABS, 0, 0, 38 + offset),                  # destination address, a word at a time
        (JEQ, "next", "drop", int.from_bytes(MDNS_IPV6[offset:offset + 4], "big")),
    )],
    ("accept", (RET, 0, 0, SNAP_BYTES)),
    ("drop", (RET, 0, 0, 0)),
]


def assemble(program: list[tuple[str | None, Instruction]]) -> list[tuple[int, int, int, int]]:
    """Labels resolved into the relative jumps BPF wants."""
    where = {label: index for index, (label, _) in enumerate(program) if label}

    def offset(target: str | int, index: int) -> int:
        if isinstance(target, int):
            return target
        skip = 0 if target == "next" else where[target] - index - 1
        if not 0 <= skip <= 255:
            raise ValueError(f"a jump from instruction {index} to {target!r} cannot be encoded")
        return skip

    return [(code, offset(jt, index), offset(jf, index), k)
            for index, (_, (code, jt, jf, k)) in enumerate(program)]


FILTER = assemble(_PROGRAM)


def filter_bytes(program: list[tuple[int, int, int, int]] = FILTER) -> bytes:
    """struct sock_filter[] (linux/filter.h) in host byte order."""
    return b"".join(bpf.instruction(*instruction) for instruction in program)


# ---- frames -------------------------------------------------------------------------------

def announced_address(frame: bytes) -> bytes | None:
    """The hardware address a frame announces, for the frames the census counts: ARP's
    sender address, a DHCP client message's chaddr, an mDNS frame's Ethernet source."""
    if len(frame) < ETHERNET_HEADER:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == ETH_P_ARP:
        return _arp_sender(frame[ETHERNET_HEADER:])
    if ethertype == ETH_P_IP:
        return _from_ipv4(frame)
    if ethertype == ETH_P_IPV6:
        return _from_ipv6(frame)
    return None


def _arp_sender(arp: bytes) -> bytes | None:
    if len(arp) < 14:
        return None
    hw_type, _protocol, hw_length = struct.unpack_from("!HHB", arp)
    if hw_type != ARPHRD_ETHER or hw_length != 6:
        return None
    return arp[8:14]


def _from_ipv4(frame: bytes) -> bytes | None:
    ip = frame[ETHERNET_HEADER:]
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    header = (ip[0] & 0x0F) * 4
    (fragment,) = struct.unpack_from("!H", ip, 6)
    if ip[9] != IPPROTO_UDP or fragment & 0x1FFF or header < 20 or len(ip) < header + 8:
        return None
    source_port, destination_port = struct.unpack_from("!HH", ip, header)
    if (source_port, destination_port) == (DHCP_CLIENT_PORT, DHCP_SERVER_PORT):
        return _dhcp_client(ip[header + 8:])
    if destination_port == MDNS_PORT and ip[16:20] == MDNS_IPV4:
        return frame[6:12]
    return None


def _dhcp_client(bootp: bytes) -> bytes | None:
    """RFC 2131: op (1 = BOOTREQUEST), htype, hlen, ..., chaddr at byte 28."""
    if len(bootp) < 34 or bootp[0] != BOOTREQUEST or bootp[1] != ARPHRD_ETHER or bootp[2] != 6:
        return None
    return bootp[28:34]


def _from_ipv6(frame: bytes) -> bytes | None:
    ip = frame[ETHERNET_HEADER:]
    if len(ip) < 48 or ip[0] >> 4 != 6 or ip[6] != IPPROTO_UDP or ip[24:40] != MDNS_IPV6:
        return None
    (destination_port,) = struct.unpack_from("!H", ip, 42)
    return frame[6:12] if destination_port == MDNS_PORT else None


# ---- the capture --------------------------------------------------------------------------

class Capture(Protocol):
    def recvfrom(self, size: int, /) -> tuple[bytes, tuple[str, int, int, int, bytes]]: ...
    def getsockname(self) -> tuple[str, int, int, int, bytes]: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


def open_capture(interface: str) -> Capture:
    """An AF_PACKET socket on ``interface`` that receives only what the filter passes.

    Made with protocol 0, which receives nothing, and bound to ETH_P_ALL only once the
    filter is attached: otherwise frames arriving in between would queue up unfiltered.
    """
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        raise CensusUnavailable("passive listening needs CAP_NET_RAW: run the agent with that "
                                "capability (the systemd unit's AmbientCapabilities) or remove "
                                "\"passive\" from users.sources") from None
    try:
        bpf.attach(sock, filter_bytes())
        sock.bind((interface, ETH_P_ALL))
    except OSError as error:
        sock.close()
        if error.errno == errno.ENODEV:
            raise CensusUnavailable(f"interface {interface!r} (users.passive.interface) "
                                    "does not exist") from None
        raise CensusUnavailable(f"cannot listen on {interface!r}: {error.strerror or error}") from None
    return sock


class PassiveSource:
    """Distinct devices that sent ARP, DHCP client or mDNS frames during ``listen`` seconds."""

    name = "passive"

    def __init__(self, config: PassiveCensusConfig, keys: DeviceKeys,
                 capture: Callable[[str], Capture] = open_capture,
                 route_table: Path = Path("/proc/net/route"),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._keys = keys
        self._capture = capture
        self._route_table = route_table
        self._clock = clock

    def census(self) -> SourceResult:
        interface = self._config.interface or default_route_interface(self._route_table)
        if not interface:
            raise CensusUnavailable("no interface to listen on: there is no default route; set "
                                    "users.passive.interface")
        started = self._clock()
        sock = self._capture(interface)
        try:
            devices = self._listen(sock, interface, started + self._config.listen)
        finally:
            sock.close()
        return SourceResult(source=self.name, count=len(devices), devices=frozenset(devices),
                            duration_seconds=self._clock() - started)

    def _listen(self, sock: Capture, interface: str, deadline: float) -> set[bytes]:
        own = sock.getsockname()[4]  # the interface's own hardware address
        devices: set[bytes] = set()
        while (remaining := deadline - self._clock()) > 0:
            readable, _, _ = select.select([sock], [], [], remaining)
            if not readable:
                continue
            try:
                frame, (_interface, _protocol, packet_type, _hw_type, _address) = sock.recvfrom(RECEIVE_BYTES)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as error:  # ENETDOWN: the interface went down or away mid-listen
                raise CensusUnavailable(f"listening on {interface!r} stopped: "
                                        f"{error.strerror or error}") from None
            if packet_type == PACKET_OUTGOING:
                continue
            mac = announced_address(frame)
            if mac is not None and mac != own and is_device_address(mac):
                devices.add(self._keys(mac))
        return devices
