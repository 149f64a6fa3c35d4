"""The active ARP census: ask every address of the agent's subnet(s) who has it, in rounds.

One raw AF_PACKET socket on the LAN interface sends ARP requests (broadcast, "who has
10.1.2.3?") paced to a schedule at ``rate`` requests a second, and reads the answers between
sends: a device that answers is matched by its IP address in a dict, never by comparing every
reply with every request (scapy's ``srp`` does that and took 4.4 CPU seconds for a /22).
Devices that did not answer are asked again in later rounds (requests get lost, lossy Wi-Fi
drops some, phones doze), but never sooner than ``wait`` after they were last asked; after the
last request the census listens ``wait`` more for late answers.

A classic BPF filter in the kernel passes only incoming ARP requests and replies for Ethernet
and IPv4, so a busy LAN's other traffic never wakes Python. What it can see: one broadcast
domain (the VLAN the interface is on); devices that answer ARP (nearly all do, but a
firewall can make one silent, and Wi-Fi client isolation may keep the access point from
passing the question on).

Privacy: a sender's MAC address is turned into a keyed hash (``DeviceKeys``) the moment it is
read; the result holds only those hashes and counts, never an address of a client.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil

from agent.probes.users import bpf
from agent.probes.users.census import CensusUnavailable, DeviceKeys, SourceResult, is_device_address

if TYPE_CHECKING:
    from agent.config import ArpCensusConfig

NO_CAPABILITY = "the ARP census needs CAP_NET_RAW (run as root or grant the capability)"

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
# Ethernet header (14 bytes) + ARP for Ethernet/IPv4 (28 bytes).
FRAME_BYTES = 42
# htype, ptype, hlen, plen of an ARP packet for Ethernet and IPv4: what we send and accept.
ARP_ETHER_IPV4 = struct.pack("!HHBB", ARPHRD_ETHER, ETH_P_IP, 6, 4)
ARP_ETHERTYPE = struct.pack("!H", ETH_P_ARP)

# linux/socket.h, linux/if_packet.h, linux/filter.h (the socket module lacks some of them).
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF (-0x1000) + SKF_AD_PKTTYPE, as the u32 the kernel reads

# Falling behind the schedule by more than this (the machine stalled) restarts the schedule
# from now instead of sending the backlog in one burst: the pace is what keeps us kind to the LAN.
MAX_LAG_SECONDS = 0.05
# A full transmit queue (ENOBUFS) clears within milliseconds; wait at most this long for it.
SEND_RETRY_SECONDS = 0.5
# Frames read between two looks at the clock: a few milliseconds of work at most.
DRAIN_FRAMES = 1024


LDB_ABS, LDH_ABS, JEQ_K, RET_K = 0x30, 0x28, 0x15, 0x06
# Accept incoming ARP requests and replies for Ethernet/IPv4, keep their first 64 bytes; drop
# everything else, including our own requests (a packet socket also sees what it sends).
# Jump offsets count the instructions to skip; instruction 13 accepts, 14 drops.
ARP_FILTER = b"".join((
    bpf.instruction(LDB_ABS, 0, 0, SKF_AD_PKTTYPE),
    bpf.instruction(JEQ_K, 12, 0, PACKET_OUTGOING),
    bpf.instruction(LDH_ABS, 0, 0, 12),                 # ethertype
    bpf.instruction(JEQ_K, 0, 10, ETH_P_ARP),
    bpf.instruction(LDH_ABS, 0, 0, 14),                 # hardware type
    bpf.instruction(JEQ_K, 0, 8, ARPHRD_ETHER),
    bpf.instruction(LDH_ABS, 0, 0, 16),                 # protocol type
    bpf.instruction(JEQ_K, 0, 6, ETH_P_IP),
    bpf.instruction(LDH_ABS, 0, 0, 18),                 # hardware and protocol address lengths
    bpf.instruction(JEQ_K, 0, 4, 0x0604),
    bpf.instruction(LDH_ABS, 0, 0, 20),                 # operation
    bpf.instruction(JEQ_K, 1, 0, ARPOP_REPLY),
    bpf.instruction(JEQ_K, 0, 1, ARPOP_REQUEST),
    bpf.instruction(RET_K, 0, 0, 64),
    bpf.instruction(RET_K, 0, 0, 0),
))

Interfaces = Callable[[], Mapping[str, Sequence[Any]]]


def request_frame(own_mac: bytes, own_ip: bytes, target_ip: bytes) -> bytes:
    """A broadcast ARP request "who has target_ip? tell own_ip" from own_mac."""
    return (BROADCAST + own_mac + ARP_ETHERTYPE + ARP_ETHER_IPV4 + struct.pack("!H", ARPOP_REQUEST)
            + own_mac + own_ip + ZERO_MAC + target_ip)


def sender(frame: bytes) -> tuple[bytes, bytes] | None:
    """(sender MAC, sender IPv4 address) of an ARP request or reply for Ethernet/IPv4, or None.

    Checked here as well as in the kernel's filter: the filter is an optimisation that a
    kernel may refuse."""
    if (len(frame) < FRAME_BYTES or frame[12:14] != ARP_ETHERTYPE or frame[14:20] != ARP_ETHER_IPV4
            or frame[20:22] not in (b"\x00\x01", b"\x00\x02")):
        return None
    return frame[22:28], frame[28:32]


@dataclass(frozen=True)
class CensusPlan:
    """Where and whom to ask: the interface, its MAC, and each target's request frame."""

    interface: str
    mac: bytes
    frames: dict[bytes, bytes]  # target address (4 bytes) -> its request, in asking order


def mac_bytes(text: str) -> bytes | None:
    try:
        value = bytes.fromhex(text.replace(":", "").replace("-", ""))
    except ValueError:
        return None
    return value if len(value) == 6 else None


def ipv4_interfaces(entries: Iterable[Any]) -> list[ipaddress.IPv4Interface]:
    """The IPv4 addresses (with their networks) among psutil's entries for one interface."""
    found = []
    for entry in entries:
        if entry.family == socket.AF_INET and entry.address and entry.netmask:
            found.append(ipaddress.IPv4Interface(f"{entry.address}/{entry.netmask}"))
    return found


def host_count(network: ipaddress.IPv4Network) -> int:
    """Addresses a census asks in ``network``: all but its network and broadcast addresses
    (a /31 and a /32 have neither)."""
    return network.num_addresses - 2 if network.prefixlen < 31 else network.num_addresses


def plan_census(config: ArpCensusConfig, interfaces: Mapping[str, Sequence[Any]],
                gateway: Callable[[], str | None]) -> CensusPlan:
    """Pick the interface and the addresses to ask; CensusUnavailable says what to set if
    that cannot be done. Pure: reads only what it is handed (tests pass captured tables)."""
    name = config.interface or _default_route_interface(interfaces, gateway)
    if name not in interfaces:
        raise CensusUnavailable(f"interface {name!r} (probes.users.arp.interface) does not exist here")
    macs = [mac_bytes(entry.address) for entry in interfaces[name] if entry.family == psutil.AF_LINK]
    mac = next((m for m in macs if m is not None and is_device_address(m)), None)
    if mac is None:
        raise CensusUnavailable(f"interface {name!r} has no Ethernet address: the ARP census needs "
                                "an Ethernet or Wi-Fi interface")
    own = ipv4_interfaces(interfaces[name])
    if not own:
        raise CensusUnavailable(f"interface {name!r} has no IPv4 address: the ARP census asks from the "
                                "interface's own address in the subnet it counts")
    if config.subnets:
        networks = [ipaddress.IPv4Network(subnet) for subnet in config.subnets]
        # ARP reaches only the link: a request for an address off it is never answered (or,
        # through a router's proxy ARP, answered for devices that are not here). Refused, not sent.
        off_link = [network for network in networks
                    if not any(network.subnet_of(address.network) for address in own)]
        if off_link:
            on = ", ".join(str(address.network) for address in own)
            raise CensusUnavailable(f"{', '.join(map(str, off_link))} (probes.users.arp.subnets) "
                                    f"is not on interface {name!r}, which is on {on}: ARP reaches only "
                                    "the interface's own subnets")
    else:
        networks = list(dict.fromkeys(address.network for address in own))
    # Counted before a single address is listed: a mistyped /8 must not fill the memory.
    total = sum(host_count(network) for network in networks)
    if total > config.max_addresses:
        listed = ", ".join(map(str, networks))
        raise CensusUnavailable(f"{listed} hold {total} addresses, more than probes.users.arp."
                                f"max_addresses ({config.max_addresses}): census smaller subnets "
                                "(probes.users.arp.subnets) or raise the limit")
    own_addresses = {address.ip for address in own}
    frames: dict[bytes, bytes] = {}
    for network in networks:
        # Ask as our address on that subnet (every subnet is on the link, checked above).
        source = next(address.ip for address in own if network.subnet_of(address.network))
        hosts = network.hosts() if network.prefixlen < 31 else iter(network)
        for host in hosts:
            if host not in own_addresses and host.packed not in frames:
                frames[host.packed] = request_frame(mac, source.packed, host.packed)
    if not frames:
        # A /32 (or a /31 of our own): no neighbour to ask; a count of 0 would be made up.
        listed = ", ".join(map(str, networks))
        raise CensusUnavailable(f"{listed} on {name!r} hold no address but the agent's own: there is "
                                "no neighbour to ask with ARP there")
    return CensusPlan(interface=name, mac=mac, frames=frames)


def _default_route_interface(interfaces: Mapping[str, Sequence[Any]],
                             gateway: Callable[[], str | None]) -> str:
    """The interface whose IPv4 subnet holds the default gateway."""
    address = gateway()
    if address is None:
        raise CensusUnavailable("no IPv4 default gateway to find the LAN interface by: set "
                                "probes.users.arp.interface")
    ip = ipaddress.IPv4Address(address)
    for name, entries in interfaces.items():
        if any(ip in own.network for own in ipv4_interfaces(entries)):
            return name
    raise CensusUnavailable("no interface is on the default gateway's subnet: set "
                            "probes.users.arp.interface")


def _system_gateway() -> str | None:
    from agent.routes import default_gateway

    return default_gateway()


def open_arp_socket(interface: str) -> socket.socket:
    """A non-blocking packet socket on ``interface`` that receives incoming ARP only."""
    try:
        # Protocol 0 receives nothing until bound: the filter is in place before any frame
        # can queue up unfiltered.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        raise CensusUnavailable(NO_CAPABILITY) from None
    try:
        # No socket filters here: sender() filters in Python instead.
        with contextlib.suppress(OSError):
            bpf.attach(sock, ARP_FILTER)
        # Linux 4.20+: our own requests are not even copied to us; older kernels, the filter
        # (or sender() and our own MAC) drop them.
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        sock.bind((interface, ETH_P_ARP))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise CensusUnavailable(f"cannot listen for ARP on {interface!r}: {exc.strerror}") from None
    return sock


class ArpSource:
    """The ``arp`` census source (see the module's docstring)."""

    name = "arp"

    def __init__(self, config: ArpCensusConfig, keys: DeviceKeys, *,
                 interfaces: Interfaces = psutil.net_if_addrs,
                 gateway: Callable[[], str | None] = _system_gateway,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.keys = keys
        self._interfaces = interfaces
        self._gateway = gateway
        self._clock = clock

    def census(self) -> SourceResult:
        plan = plan_census(self.config, self._interfaces(), self._gateway)
        sock = open_arp_socket(plan.interface)
        try:
            return _Census(self, plan, sock).run()
        finally:
            sock.close()


class _Census:
    """One census's state: who has answered, the devices heard, the schedule."""

    def __init__(self, source: ArpSource, plan: CensusPlan, sock: socket.socket) -> None:
        self.config = source.config
        self.keys = source.keys
        self.clock = source._clock
        self.plan = plan
        self.sock = sock
        self.answered: set[bytes] = set()
        self.devices: set[bytes] = set()
        self.asked_at: dict[bytes, float] = {}
        self.requests = 0

    def run(self) -> SourceResult:
        started = self.clock()
        interval = 1.0 / self.config.rate
        wait = float(self.config.wait)
        due = started
        rounds = 0
        for _ in range(self.config.rounds):
            if len(self.answered) == len(self.plan.frames):
                break
            rounds += 1
            for target, frame in self.plan.frames.items():
                if target in self.answered:
                    continue
                # Not sooner than `wait` after its last request: its answer may be on the way.
                due = max(due, self.asked_at.get(target, -wait) + wait)
                self.listen_until(due)
                if target in self.answered:
                    continue  # a late answer came meanwhile
                now = self.clock()
                if now - due > MAX_LAG_SECONDS:
                    due = now
                self.send(frame)
                self.asked_at[target] = now
                # The schedule, not the clock after sending: oversleeping one slot shortens
                # the next, so the pace does not drift below the rate.
                due += interval
        if self.asked_at:
            self.listen_until(max(self.asked_at.values()) + wait)
        return SourceResult(source=ArpSource.name, count=len(self.devices), devices=frozenset(self.devices),
                            duration_seconds=self.clock() - started, rounds=rounds, requests=self.requests)

    def listen_until(self, deadline: float) -> None:
        """Read every answer that arrives until ``deadline`` (or until everyone answered)."""
        while True:
            self.drain()
            remaining = deadline - self.clock()
            if remaining <= 0 or len(self.answered) == len(self.plan.frames):
                return
            select.select([self.sock], [], [], remaining)

    def drain(self) -> None:
        """Read the answers waiting, at most DRAIN_FRAMES of them: a broadcast storm (or a
        kernel that refused the filter on a busy LAN) must not keep us reading past a deadline."""
        frames = self.plan.frames
        for _ in range(DRAIN_FRAMES):
            try:
                frame = self.sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ENETDOWN: the interface went down or away mid-census
                raise CensusUnavailable(f"listening for ARP on {self.plan.interface!r} failed: "
                                        f"{exc.strerror}") from None
            heard = sender(frame)
            if heard is None:
                continue
            mac, ip = heard
            # Replies and requests (gratuitous or asking someone else) alike: a device with
            # one of our targets' addresses is there. Only devices count: not our own frames,
            # not a broadcast or zero sender.
            if ip in frames and ip not in self.answered and mac != self.plan.mac and is_device_address(mac):
                self.answered.add(ip)
                self.devices.add(self.keys(mac))  # the MAC goes no further than this line

    def send(self, frame: bytes) -> None:
        give_up = self.clock() + SEND_RETRY_SECONDS
        while True:
            try:
                self.sock.send(frame)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise CensusUnavailable(f"sending ARP requests on {self.plan.interface!r} failed: "
                                            f"{exc.strerror}") from None
            else:
                self.requests += 1
                return
            if self.clock() > give_up:
                raise CensusUnavailable(f"the transmit queue of {self.plan.interface!r} stays full: "
                                        "lower probes.users.arp.rate")
            select.select([], [self.sock], [], 0.005)
