"""The kernel's neighbour table: devices this host talked to lately, without a packet sent.

The cheapest census there is, and the default: no privileges, no traffic. It sees only
the devices the agent's host exchanged packets with recently (the gateway, a printer,
whoever sent it a broadcast that needed an answer), so it undercounts; ``arp`` and
``passive`` see more.

- IPv4 from ``/proc/net/arp``, written by ``arp_seq_show`` in the kernel's
  net/ipv4/arp.c: a header line, then per neighbour
  ``"%-16s 0x%-10x0x%-10x%-17s     %-8s %s\\n"`` (IP address, HW type, flags, HW address,
  mask ``*``, device). The flags come from ``arp_state_to_flags``: ATF_COM (0x2) for a
  resolved entry (NUD_VALID), ATF_PERM (0x4) as well for a static one.
- IPv6 from rtnetlink: an RTM_GETNEIGH dump (linux/rtnetlink.h, linux/neighbour.h), each
  RTM_NEWNEIGH a ``struct ndmsg`` then rtattrs (NDA_LLADDR is the hardware address).

Only entries that mean "this device answered lately" count: complete, non-static IPv4
entries; IPv6 in REACHABLE, STALE, DELAY or PROBE (not INCOMPLETE or FAILED, which never
answered; not NOARP or PERMANENT, which nobody learnt). A device seen over both families is
one device: every address is hashed with the day's key as it is read, and the hashes are
a set. Hand-written netlink (``socket`` and ``struct``) rather than pyroute2, which costs
the agent's long-lived process megabytes.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from agent.config import UsersProbeConfig
from agent.netlink import MalformedMessage, Message, attribute_map, encode_message, parse_messages
from agent.probes.users.census import CensusUnavailable, DeviceKeys, SourceResult, is_device_address

log = logging.getLogger(__name__)

# linux/if_arp.h
ARPHRD_ETHER = 1
ATF_COM = 0x02  # the entry is complete (resolved)
ATF_PERM = 0x04  # static: set by hand, not learnt from the device
LOOPBACK = "lo"

# linux/netlink.h and linux/rtnetlink.h
NETLINK_ROUTE = 0
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWNEIGH = 28
RTM_GETNEIGH = 30

# linux/neighbour.h
NDA_DST = 1
NDA_LLADDR = 2
NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
# A device answered lately (REACHABLE) or answered once and is not known to be gone.
NUD_SEEN = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE

_NDMSG = struct.Struct("=BBHiHBB")  # family, pad, pad, ifindex, state, flags, type
# A dump datagram is at most 32 KiB (netlink_dump); a roomier buffer never cuts one.
RECEIVE_BUFFER_BYTES = 65536
NETLINK_TIMEOUT_SECONDS = 5.0


class NetlinkSocket(Protocol):
    def send(self, data: bytes, /) -> int: ...
    def recv(self, size: int, /) -> bytes: ...
    def close(self) -> None: ...


def open_route_socket() -> NetlinkSocket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    sock.settimeout(NETLINK_TIMEOUT_SECONDS)
    sock.bind((0, 0))
    return sock


# ---- IPv4: /proc/net/arp ------------------------------------------------------------------

def arp_table_devices(text: str, keys: DeviceKeys, counted: Callable[[str], bool]) -> set[bytes]:
    """Hashes of the devices in a /proc/net/arp text on the interfaces ``counted`` accepts."""
    devices: set[bytes] = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) != 6:
            continue
        _address, hw_type, flags, hw_address, _mask, interface = fields
        try:
            if int(hw_type, 16) != ARPHRD_ETHER:
                continue
            flag_bits = int(flags, 16)
            if not flag_bits & ATF_COM or flag_bits & ATF_PERM or not counted(interface):
                continue
            mac = bytes.fromhex(hw_address.replace(":", ""))
        except ValueError:
            continue
        if is_device_address(mac):
            devices.add(keys(mac))
    return devices


# ---- IPv6: an RTM_GETNEIGH dump -----------------------------------------------------------

def neighbour_dump_request(seq: int, family: int = socket.AF_INET6) -> bytes:
    return encode_message(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq,
                          _NDMSG.pack(family, 0, 0, 0, 0, 0, 0))


class DumpIncomplete(Exception):
    """The kernel ended the dump with an error, or sent bytes that are not netlink."""


def _messages(datagram: bytes) -> list[Message]:
    try:
        return parse_messages(datagram)
    except MalformedMessage as exc:
        raise DumpIncomplete(str(exc)) from None


def neighbour_dump_devices(datagrams: Iterable[bytes], keys: DeviceKeys,
                           counted: Callable[[int], bool]) -> set[bytes]:
    """Hashes of the devices in an RTM_GETNEIGH dump (its datagrams, up to NLMSG_DONE) on
    the interfaces (by index) ``counted`` accepts."""
    devices: set[bytes] = set()
    for datagram in datagrams:
        for message in _messages(datagram):
            kind, payload = message.type, message.payload
            if kind == NLMSG_DONE:
                code = struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
                if code < 0:
                    raise DumpIncomplete(f"the neighbour dump ended with: {os.strerror(-code)}")
                return devices
            if kind == NLMSG_ERROR:
                code = struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
                raise DumpIncomplete(f"the kernel refused the neighbour dump: {os.strerror(-code)}")
            if kind != RTM_NEWNEIGH or len(payload) < _NDMSG.size:
                continue
            _family, _, _, ifindex, state, _flags, _type = _NDMSG.unpack_from(payload)
            if not state & NUD_SEEN or state & (NUD_NOARP | NUD_PERMANENT) or not counted(ifindex):
                continue
            try:
                mac = attribute_map(payload[_NDMSG.size:]).get(NDA_LLADDR, b"")
            except MalformedMessage:
                continue  # a cut entry: the others still count
            if is_device_address(mac):
                devices.add(keys(mac))
    raise DumpIncomplete("the neighbour dump stopped before NLMSG_DONE")


def _dump(sock: NetlinkSocket, seq: int) -> Iterator[bytes]:
    sock.send(neighbour_dump_request(seq))
    while True:
        yield sock.recv(RECEIVE_BUFFER_BYTES)


# ---- the source ---------------------------------------------------------------------------

class NeighbourSource:
    """Devices in the kernel's IPv4 and IPv6 neighbour tables on the agent's LAN: every
    interface but loopback, or just ``config.arp.interface`` when it is set."""

    name = "neighbours"

    def __init__(self, config: UsersProbeConfig, keys: DeviceKeys,
                 proc_arp: Path = Path("/proc/net/arp"),
                 route_socket: Callable[[], NetlinkSocket] = open_route_socket,
                 interfaces: Callable[[], list[tuple[int, str]]] = socket.if_nameindex,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interface = config.arp.interface
        self._keys = keys
        self._proc_arp = proc_arp
        self._route_socket = route_socket
        self._interfaces = interfaces
        self._clock = clock
        self._seq = 0

    def _counted(self, name: str) -> bool:
        return name == self._interface if self._interface else name != LOOPBACK

    def census(self) -> SourceResult:
        started = self._clock()
        names = dict(self._interfaces())
        if self._interface and self._interface not in names.values():
            raise CensusUnavailable(f"interface {self._interface!r} (users.arp.interface) does not exist "
                                    f"here; it has {', '.join(sorted(names.values()))}")
        try:
            text = self._proc_arp.read_text()
        except OSError as error:
            raise CensusUnavailable(f"cannot read the kernel's neighbour table {self._proc_arp}: "
                                    f"{error.strerror or error}") from None
        devices = arp_table_devices(text, self._keys, self._counted)
        devices |= self._ipv6_devices(names)
        return SourceResult(source=self.name, count=len(devices), devices=frozenset(devices),
                            duration_seconds=self._clock() - started)

    def _ipv6_devices(self, names: dict[int, str]) -> set[bytes]:
        """IPv6 neighbours; a host where rtnetlink fails still has its IPv4 count (with a
        warning), since most school LANs' devices speak IPv4 anyway."""
        self._seq += 1
        try:
            sock = self._route_socket()
        except OSError as error:
            log.warning("IPv6 neighbours not counted: cannot open a netlink socket: %s", error)
            return set()
        try:
            return neighbour_dump_devices(_dump(sock, self._seq), self._keys,
                                          lambda index: index in names and self._counted(names[index]))
        except (OSError, DumpIncomplete) as error:
            log.warning("IPv6 neighbours not counted: %s", error)
            return set()
        finally:
            sock.close()
