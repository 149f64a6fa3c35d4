"""Echo probes to many destinations at once: ICMP echo (datagram or raw socket) or a TCP connect.

Why not icmplib: it times round trips with the wall clock (a clock step makes a round trip
negative or huge), resolves the destination on every send, and on Linux's unprivileged
datagram ICMP sockets never sees ICMP Time Exceeded, so TTL-limited probes to the provider's
first routers look lost. Here the packets are written by hand (RFC 792, RFC 4443), timed on
the monotonic clock, and errors are read from the kernel's error queue (IP_RECVERR).

Three ways to send, chosen once (``EchoSampler.method`` names the one IPv4 uses):

- ``icmp``: ``socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)``, allowed when the process's group
  is inside ``net.ipv4.ping_group_range``. The kernel sets the ICMP id and hands this socket
  only the replies to its own id; ICMP errors (Time Exceeded, Destination Unreachable) arrive
  on the socket's error queue with the router's address (SO_EE_OFFENDER).
- ``icmp-raw``: ``SOCK_RAW`` with CAP_NET_RAW. Every ICMP packet of the host arrives, so
  replies are matched by our own random id and sequence, errors by the echo header they quote.
- ``tcp``: a non-blocking connect to ``tcp_port``; an answer either way (connected, or refused
  with a reset) proves the host is reachable. TTL-limited probes need ICMP.

One socket per address family serves every ICMP probe (no thread, no socket per probe), and
a probe ends exactly once: answered, failed, or lost when ``timeout`` passed first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import ipaddress
import itertools
import math
import os
import secrets
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from agent import wire

EchoMethod = wire.EchoMethod

# Linux values that Python's socket module does not export (linux/in.h, linux/in6.h,
# linux/errqueue.h, linux/icmp.h, linux/icmpv6.h).
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1
# Kernel receive timestamps: replies that arrive while we are busy sending are still timed
# when they arrived, not when we got round to reading them.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_EE_ORIGIN_LOCAL = 1
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
SOCK_EXTENDED_ERR = struct.Struct("=IBBBBII")  # ee_errno, origin, type, code, pad, info, data

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
# Like ping(8): 56 bytes of data, a 64-byte ICMP message. It starts with a token of this
# sampler, so a reply to another program's ping with the same id and sequence is not ours.
PAYLOAD_BYTES = 56
TOKEN_BYTES = 8
ANCILLARY_BYTES = 512  # room for a timestamp and an extended error with its offender
MAX_READS_PER_WAKE = 1000  # a flood of foreign ICMP must not keep collect() from returning
SEQUENCES = 65536

_REPLY = "reply"
_TIME_EXCEEDED = "time exceeded"
_ERROR = "error"

# errno values that an ICMP error leaves pending on a datagram socket (sk_err): a send or a
# receive can fail with one of them although the error belongs to an earlier probe.
_ICMP_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNREFUSED, errno.EPROTO,
                          errno.EMSGSIZE, errno.EACCES, errno.ENOPROTOOPT, errno.ENONET,
                          errno.EOPNOTSUPP, errno.ETIMEDOUT, errno.EHOSTDOWN})


class EchoUnavailable(Exception):
    """No echo method works here; the message names what was tried and why it failed."""


@dataclass(frozen=True)
class Outcome:
    """How one probe ended."""

    probe_id: int  # what send() returned
    address: str  # the destination probed, as given to send()
    ttl: int | None  # as given to send()
    sent_at: float  # the monotonic clock at send
    rtt_seconds: float | None  # None: no answer within the timeout, or an error
    # Who answered: the destination, or (TTL-limited probe) the router that sent Time
    # Exceeded, or the router that reported the destination unreachable; None: nobody.
    responder: str | None
    # The destination itself answered: an echo reply, or for TCP connected or refused (a
    # reset proves the host is there).
    reached: bool
    error: str | None  # one line; None when answered as asked


@dataclass(frozen=True)
class _Family:
    """What differs between ICMP for IPv4 and ICMPv6."""

    family: int
    name: str
    protocol: int
    echo_request: int
    echo_reply: int
    time_exceeded: int
    unreachable: int
    level: int  # socket options and control messages
    hop_option: int  # IP_TTL / IPV6_UNICAST_HOPS
    recverr_option: int


IPV4 = _Family(socket.AF_INET, "IPv4", socket.IPPROTO_ICMP, 8, 0, 11, 3, socket.IPPROTO_IP,
               socket.IP_TTL, IP_RECVERR)
IPV6 = _Family(socket.AF_INET6, "IPv6", socket.IPPROTO_ICMPV6, 128, 129, 3, 1, socket.IPPROTO_IPV6,
               socket.IPV6_UNICAST_HOPS, IPV6_RECVERR)

_UNREACHABLE_V4 = {0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
                   3: "port unreachable", 4: "fragmentation needed", 5: "source route failed",
                   6: "destination network unknown", 7: "destination host unknown",
                   9: "network administratively prohibited", 10: "host administratively prohibited",
                   11: "network unreachable for this type of service",
                   12: "host unreachable for this type of service",
                   13: "communication administratively prohibited (a firewall)"}
_UNREACHABLE_V6 = {0: "no route to destination", 1: "communication administratively prohibited (a firewall)",
                   2: "beyond scope of source address", 3: "address unreachable", 4: "port unreachable",
                   5: "source address failed ingress/egress policy", 6: "reject route to destination"}


def _icmp_error_text(family: _Family, icmp_type: int, code: int) -> tuple[str, str]:
    """(kind, words) for an ICMP error message quoting one of our echo requests."""
    if icmp_type == family.time_exceeded:
        words = "TTL exceeded in transit" if code == 0 else "fragment reassembly time exceeded"
        return (_TIME_EXCEEDED if code == 0 else _ERROR), words
    if icmp_type == family.unreachable:
        names = _UNREACHABLE_V4 if family is IPV4 else _UNREACHABLE_V6
        return _ERROR, names.get(code, f"destination unreachable (code {code})")
    others = ({4: "source quench", 12: "parameter problem"} if family is IPV4
              else {2: "packet too big", 4: "parameter problem"})
    return _ERROR, others.get(icmp_type, f"ICMP type {icmp_type} code {code}")


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: _Family, ident: int, sequence: int, payload: bytes) -> bytes:
    """An ICMP (v4) or ICMPv6 echo request. The ICMPv6 checksum covers a pseudo-header that
    only the kernel knows (the source address), so the kernel fills it in; for datagram
    sockets the kernel also sets the id and the checksum, for IPv4 raw sockets we do."""
    header = struct.pack("!BBHHH", family.echo_request, 0, 0, ident, sequence)
    if family is IPV6:
        return header + payload
    checksum = _checksum(header + payload)
    return struct.pack("!BBHHH", family.echo_request, 0, checksum, ident, sequence) + payload


def _canonical(host: str) -> str | None:
    """An address without its scope, in one spelling, to compare what a reply says with
    what was sent; None when it is not an address."""
    try:
        return str(ipaddress.ip_address(host.partition("%")[0]))
    except ValueError:
        return None


def _scoped(host: str, scope_id: int) -> str:
    """A link-local address with its interface, as people and the routing table write it."""
    if not scope_id or "%" in host:
        return host
    try:
        return f"{host}%{socket.if_indextoname(scope_id)}"
    except OSError:
        return f"{host}%{scope_id}"


def _sockaddr_host(raw: bytes) -> str | None:
    """The address in a struct sockaddr_in / sockaddr_in6 (SO_EE_OFFENDER)."""
    if len(raw) < 2:
        return None
    (family,) = struct.unpack_from("=H", raw)
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if family == socket.AF_INET6 and len(raw) >= 28:
        (scope_id,) = struct.unpack_from("=I", raw, 24)
        return _scoped(socket.inet_ntop(socket.AF_INET6, raw[8:24]), scope_id)
    return None  # AF_UNSPEC: the kernel knows no offender


@dataclass(frozen=True)
class _Arrival:
    """When an answer came: when we read it, and (better) when the kernel received it."""

    read_at: float
    kernel_at: float | None  # on the same clock; None without a kernel timestamp

    def time(self, sent_at: float) -> float:
        """The kernel's time when it is plausible. It is on the wall clock, moved to ours by
        its age at read time; a clock step in between makes it implausible: then the read."""
        if self.kernel_at is not None and sent_at <= self.kernel_at <= self.read_at:
            return self.kernel_at
        return self.read_at


def _arrival(ancillary: list[tuple[int, int, bytes]], clock: Callable[[], float]) -> _Arrival:
    read_at, wall = clock(), time.time()
    for level, kind, data in ancillary:
        if level != socket.SOL_SOCKET or kind != SO_TIMESTAMPNS:
            continue
        # struct timespec: two 64-bit fields, or two 32-bit ones on an old 32-bit ABI (armhf).
        if len(data) >= 16:
            seconds, nanoseconds = struct.unpack_from("=qq", data)
        elif len(data) >= 8:
            seconds, nanoseconds = struct.unpack_from("=ii", data)
        else:
            continue
        return _Arrival(read_at, read_at - (wall - (seconds + nanoseconds / 1e9)))
    return _Arrival(read_at, None)


@dataclass(frozen=True)
class _Answer:
    """Something an ICMP socket received about one of our sequence numbers."""

    sequence: int
    destination: str | None  # the address the probe went to (canonical), as the answer says
    responder: str | None
    kind: str  # _REPLY, _TIME_EXCEEDED or _ERROR
    words: str  # for errors: what went wrong
    arrival: _Arrival


class _IcmpChannel:
    """One ICMP socket of one family, datagram or raw, reused for every probe of that family."""

    def __init__(self, family: _Family, sock: socket.socket, raw: bool, token: bytes) -> None:
        self.family = family
        self.sock = sock
        self.raw = raw
        self.token = token
        # Datagram sockets: the kernel chooses the id (the socket's "port") and overwrites ours.
        self.ident = secrets.randbelow(SEQUENCES)
        # A random start: a new sampler's first sequence numbers are not those of the last one.
        self.next_sequence = secrets.randbelow(SEQUENCES)
        self.pending: dict[int, int] = {}  # sequence -> probe id
        self.hops: int | None = None  # the hop limit set on the socket; None = the default
        self.payload = (token + bytes(range(PAYLOAD_BYTES)))[:PAYLOAD_BYTES]
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if raw:
            self._filter()
        else:
            # Without it a datagram ICMP socket never hears of Time Exceeded or Unreachable.
            with contextlib.suppress(OSError):
                sock.setsockopt(family.level, family.recverr_option, 1)

    def _filter(self) -> None:
        """Let the kernel drop what a raw socket never needs (other pings' requests, neighbour
        discovery), so a busy network costs no wake-ups. Best effort: matching checks anyway."""
        wanted = (self.family.echo_reply, self.family.time_exceeded, self.family.unreachable)
        with contextlib.suppress(OSError):
            if self.family is IPV4:  # ICMP_FILTER: a bit set = that type is dropped (types < 32)
                mask = 0xFFFFFFFF & ~sum(1 << kind for kind in wanted)
                self.sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", mask))
            else:  # ICMP6_FILTER: 256 bits, a bit set = blocked
                words = [0xFFFFFFFF] * 8
                for kind in (*wanted, 2, 4):  # and Packet Too Big, Parameter Problem
                    words[kind >> 5] &= ~(1 << (kind & 31))
                self.sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *words))

    def allocate(self) -> int | None:
        """The next free sequence number (they wrap at 65536); None if all are in flight."""
        for _ in range(SEQUENCES):
            sequence = self.next_sequence
            self.next_sequence = (sequence + 1) % SEQUENCES
            if sequence not in self.pending:
                return sequence
        return None

    def send(self, sequence: int, sockaddr: tuple[str, int] | tuple[str, int, int, int],
             hops: int | None) -> None:
        if hops != self.hops:
            # -1 restores the route's default hop limit, for IPv4 and IPv6 alike.
            self.sock.setsockopt(self.family.level, self.family.hop_option, -1 if hops is None else hops)
            self.hops = hops
        packet = echo_request(self.family, self.ident, sequence, self.payload)
        self.sock.sendto(packet, sockaddr)

    def read(self, clock: Callable[[], float]) -> list[_Answer]:
        """Everything waiting on the socket (errors first), without blocking."""
        answers = [] if self.raw else self.read_errors(clock)
        for _ in range(MAX_READS_PER_WAKE):
            try:
                packet, ancillary, _flags, source = self.sock.recvmsg(2048, ANCILLARY_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                # An ICMP error left pending on the socket (its details are on the error
                # queue); reading it cleared it: go on reading. An errno not foreseen here
                # must not end the window either: drain the queue and read again later.
                answers.extend(self.read_errors(clock))
                if exc.errno in _ICMP_ERRNOS:
                    continue
                break
            answer = self._parse(packet, source[0], _arrival(ancillary, clock))
            if answer is not None:
                answers.append(answer)
        return answers

    def read_errors(self, clock: Callable[[], float]) -> list[_Answer]:
        """The datagram socket's error queue: ICMP errors about our probes, with the router."""
        answers: list[_Answer] = []
        if self.raw:
            return answers
        for _ in range(MAX_READS_PER_WAKE):
            try:
                data, ancillary, _flags, address = self.sock.recvmsg(
                    2048, ANCILLARY_BYTES, MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    break
                raise
            arrival = _arrival(ancillary, clock)
            # The data is the echo request as we sent it: its sequence names the probe.
            if len(data) < 8 or data[0] != self.family.echo_request:
                continue
            (sequence,) = struct.unpack_from("!H", data, 6)
            destination = _canonical(address[0]) if address else None
            for level, kind, cdata in ancillary:
                if (level, kind) not in ((socket.IPPROTO_IP, IP_RECVERR),
                                         (socket.IPPROTO_IPV6, IPV6_RECVERR)):
                    continue
                if len(cdata) < SOCK_EXTENDED_ERR.size:
                    continue
                ee_errno, origin, icmp_type, code, _pad, _info, _data = SOCK_EXTENDED_ERR.unpack_from(cdata)
                if origin in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6):
                    family = IPV4 if origin == SO_EE_ORIGIN_ICMP else IPV6
                    result, words = _icmp_error_text(family, icmp_type, code)
                    responder = _sockaddr_host(cdata[SOCK_EXTENDED_ERR.size:])
                else:  # raised by this host itself (SO_EE_ORIGIN_LOCAL): no router involved
                    result, words, responder = _ERROR, os.strerror(ee_errno).lower(), None
                answers.append(_Answer(sequence, destination, responder, result, words, arrival))
                break
        return answers

    def _parse(self, packet: bytes, source: str, arrival: _Arrival) -> _Answer | None:
        if self.raw and self.family is IPV4:  # a raw IPv4 socket also hands over the IP header
            if len(packet) < 20:
                return None
            packet = packet[(packet[0] & 0x0F) * 4:]
        if len(packet) < 8:
            return None
        icmp_type, code = packet[0], packet[1]
        if icmp_type == self.family.echo_reply:
            ident, sequence = struct.unpack_from("!HH", packet, 4)
            if (self.raw and ident != self.ident) or packet[8:8 + TOKEN_BYTES] != self.token:
                return None  # another program's ping (raw sockets see every reply)
            return _Answer(sequence, _canonical(source), source, _REPLY, "", arrival)
        if not self.raw:
            return None
        return self._parse_quoted(packet, icmp_type, code, source, arrival)

    def _parse_quoted(self, packet: bytes, icmp_type: int, code: int, source: str,
                      arrival: _Arrival) -> _Answer | None:
        """An ICMP error on a raw socket: ours when it quotes an echo request with our id."""
        inner = packet[8:]
        if self.family is IPV4:
            if len(inner) < 20 or inner[9] != socket.IPPROTO_ICMP:
                return None
            destination = socket.inet_ntop(socket.AF_INET, inner[16:20])
            quoted = inner[(inner[0] & 0x0F) * 4:]
        else:
            if len(inner) < 40 or inner[6] != socket.IPPROTO_ICMPV6:
                return None  # extension headers before ICMPv6: not a packet we sent
            destination = socket.inet_ntop(socket.AF_INET6, inner[24:40])
            quoted = inner[40:]
        if len(quoted) < 8 or quoted[0] != self.family.echo_request:
            return None
        ident, sequence = struct.unpack_from("!HH", quoted, 4)
        echoed_token = quoted[8:8 + TOKEN_BYTES]  # RFC 792 routers quote only 8 bytes
        if ident != self.ident or echoed_token != self.token[:len(echoed_token)]:
            return None
        result, words = _icmp_error_text(self.family, icmp_type, code)
        return _Answer(sequence, _canonical(destination), source, result, words, arrival)

    def close(self) -> None:
        self.sock.close()


@dataclass
class _Pending:
    probe_id: int
    address: str
    ttl: int | None
    sent_at: float
    deadline: float
    channel: _IcmpChannel | None = None
    sequence: int | None = None
    destination: str | None = None  # canonical, to match answers
    connection: socket.socket | None = None  # TCP


@dataclass
class _Destination:
    family: _Family
    canonical: str
    sockaddr: tuple[str, int] | tuple[str, int, int, int]


def _parse_destination(address: str) -> _Destination:
    """An IP literal, optionally with a scope (``fe80::1%eth0``); names are not resolved here."""
    text, _, scope = address.partition("%")
    ip = ipaddress.ip_address(text)  # ValueError: not an address
    if ip.version == 4:
        if scope:
            raise ValueError(f"{address!r}: an IPv4 address has no scope")
        return _Destination(IPV4, str(ip), (str(ip), 0))
    scope_id = 0
    if scope:
        scope_id = int(scope) if scope.isdigit() else socket.if_nametoindex(scope)
    return _Destination(IPV6, str(ip), (str(ip), 0, 0, scope_id))


def _ping_group_range() -> str:
    try:
        return " ".join(PING_GROUP_RANGE.read_text().split())
    except OSError:
        return "unreadable"


def _open_icmp(family: _Family, token: bytes) -> tuple[_IcmpChannel | None, list[str]]:
    """A datagram ICMP socket, else a raw one; else None and why each failed."""
    reasons = []
    try:
        sock = socket.socket(family.family, socket.SOCK_DGRAM, family.protocol)
    except OSError as exc:
        if exc.errno == errno.EACCES:
            reasons.append(f"{family.name} datagram ICMP socket not allowed for group {os.getegid()} "
                           f"(net.ipv4.ping_group_range is '{_ping_group_range()}')")
        else:
            reasons.append(f"{family.name} datagram ICMP socket: {exc.strerror or exc}")
    else:
        return _IcmpChannel(family, sock, raw=False, token=token), reasons
    try:
        sock = socket.socket(family.family, socket.SOCK_RAW, family.protocol)
    except OSError as exc:
        if exc.errno == errno.EPERM:
            reasons.append(f"{family.name} raw ICMP socket needs CAP_NET_RAW")
        else:
            reasons.append(f"{family.name} raw ICMP socket: {exc.strerror or exc}")
    else:
        return _IcmpChannel(family, sock, raw=True, token=token), reasons
    return None, reasons


def _handshake_rtt(connection: socket.socket) -> float | None:
    """The kernel's round trip of the SYN and its SYN-ACK (tcp_info.tcpi_rtt, microseconds,
    at byte 68): exact even when we were busy when the connection completed. None when the
    kernel has no sample (the SYN was resent) or no TCP_INFO (not Linux)."""
    try:
        info = connection.getsockopt(socket.IPPROTO_TCP, getattr(socket, "TCP_INFO", 11), 104)
    except OSError:
        return None
    if len(info) < 72:
        return None
    (microseconds,) = struct.unpack_from("=I", info, 68)
    return microseconds / 1e6 if microseconds else None


def _send_error(exc: OSError) -> str:
    """A send that failed at once, in words an ICT person can act on."""
    if exc.errno == errno.ENETUNREACH:
        return "network unreachable (this host has no route there)"
    if exc.errno == errno.EHOSTUNREACH:
        return "host unreachable"
    if exc.errno == errno.EPERM:
        return "blocked by this host's firewall (operation not permitted)"
    if exc.errno == errno.EACCES:
        return "permission denied (a broadcast address?)"
    if exc.errno in (errno.EAGAIN, errno.ENOBUFS):
        return "send buffer full: too many probes at once"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no local address to send from (is the interface up?)"
    return f"cannot send: {(exc.strerror or str(exc)).lower()}"


class EchoSampler:
    """Sends echo probes without blocking and collects how each ended.

    ``send()`` returns a probe id at once; ``collect(until)`` waits and returns the outcomes
    of every probe that ended meanwhile; ``finish()`` waits for the rest. Round trips are on
    ``clock`` (monotonic). An ICMP answer is timed by the kernel's receive timestamp and a TCP
    connect by the kernel's handshake round trip, so an answer that arrives while the caller
    is busy elsewhere is still timed right (and counts when it came within the timeout); a
    TCP reset has no such time and is timed when it is read.
    """

    def __init__(self, method: Literal["auto", "icmp", "tcp"], tcp_port: int, timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        if not 1 <= tcp_port <= 65535:
            raise ValueError(f"tcp_port {tcp_port} is not a port")
        if not hasattr(select, "poll"):
            # Windows: no poll(), and no recvmsg() for the kernel's receive times either.
            raise EchoUnavailable(f"the connectivity probe's echo needs poll(), which {sys.platform} "
                                  "does not have; switch it off (probes.connectivity.enabled = false)")
        self.timeout = timeout
        self.tcp_port = tcp_port
        self._clock = clock
        self._token = secrets.token_bytes(TOKEN_BYTES)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}  # in send order: the first is the oldest
        self._outcomes: list[Outcome] = []
        self._channels: dict[int, _IcmpChannel | None] = {}  # family -> channel
        self._channel_errors: dict[int, str] = {}
        self._by_fd: dict[int, _IcmpChannel | _Pending] = {}
        self._poller = select.poll()
        self._closed = False
        self.method: EchoMethod = self._choose(method)

    def _choose(self, wanted: str) -> EchoMethod:
        if wanted not in ("auto", "icmp", "tcp"):
            raise ValueError(f"method {wanted!r} is not 'auto', 'icmp' or 'tcp'")
        reasons: list[str] = []
        if wanted in ("auto", "icmp"):
            channel, reasons = _open_icmp(IPV4, self._token)
            if channel is not None:
                self._add_channel(channel)
                return "icmp-raw" if channel.raw else "icmp"
            if wanted == "icmp":
                raise EchoUnavailable(
                    f"no ICMP echo method works: {'; '.join(reasons)}. Allow the agent's group in "
                    "net.ipv4.ping_group_range (sysctl), give it CAP_NET_RAW, or set method to "
                    "'auto' or 'tcp' to use TCP connects")
        try:
            socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        except OSError as exc:
            tried = "; ".join([*reasons, f"IPv4 TCP socket: {exc.strerror or exc}"])
            raise EchoUnavailable(f"no echo method works: {tried}") from None
        return "tcp"

    def _add_channel(self, channel: _IcmpChannel) -> None:
        self._channels[channel.family.family] = channel
        self._by_fd[channel.sock.fileno()] = channel
        self._poller.register(channel.sock, select.POLLIN | select.POLLERR)

    def _channel(self, family: _Family) -> _IcmpChannel | None:
        """This family's ICMP socket, opened on first use (an IPv4-only host never opens v6)."""
        if family.family not in self._channels:
            channel, reasons = _open_icmp(family, self._token)
            if channel is None:
                self._channels[family.family] = None
                self._channel_errors[family.family] = "; ".join(reasons)
            else:
                self._add_channel(channel)
        return self._channels[family.family]

    # -- sending ---------------------------------------------------------------------------

    def send(self, address: str, ttl: int | None = None) -> int:
        """Send one probe; never blocks. Returns its id; its Outcome comes from collect()."""
        if self._closed:
            raise ValueError("the sampler is closed")
        if ttl is not None and not 1 <= ttl <= 255:
            raise ValueError(f"ttl {ttl} is outside 1-255")
        probe_id = next(self._ids)
        try:
            destination = _parse_destination(address)
        except (ValueError, OSError) as exc:
            reason = f"not an IP address: {address!r}" if isinstance(exc, ValueError) else \
                f"unknown interface in {address!r}"
            self._fail_now(probe_id, address, ttl, reason)
            return probe_id
        if self.method == "tcp":
            self._send_tcp(probe_id, address, ttl, destination)
        else:
            self._send_icmp(probe_id, address, ttl, destination)
        return probe_id

    def _fail_now(self, probe_id: int, address: str, ttl: int | None, reason: str) -> None:
        self._outcomes.append(Outcome(probe_id, address, ttl, self._clock(), None, None, False, reason))

    def _send_icmp(self, probe_id: int, address: str, ttl: int | None, destination: _Destination) -> None:
        channel = self._channel(destination.family)
        if channel is None:
            self._fail_now(probe_id, address, ttl, f"no ICMP echo for {destination.family.name}: "
                           f"{self._channel_errors[destination.family.family]}")
            return
        sequence = channel.allocate()
        if sequence is None:
            self._fail_now(probe_id, address, ttl, "65536 probes in flight: no sequence number free")
            return
        sent_at = self._clock()
        try:
            channel.send(sequence, destination.sockaddr, ttl)
        except OSError as first:
            # An ICMP error about an earlier probe that arrived since the last read fails the
            # next send on a datagram socket with its errno (the socket's pending error, which
            # that failure cleared). Hand the earlier probe its error, then retry once: a
            # second failure is this send's own.
            if channel.raw or first.errno not in _ICMP_ERRNOS:
                self._fail_now(probe_id, address, ttl, _send_error(first))
                return
            self._match(channel, channel.read_errors(self._clock))
            sent_at = self._clock()
            try:
                channel.send(sequence, destination.sockaddr, ttl)
            except OSError as second:
                self._fail_now(probe_id, address, ttl, _send_error(second))
                return
        pending = _Pending(probe_id, address, ttl, sent_at, sent_at + self.timeout, channel=channel,
                           sequence=sequence, destination=destination.canonical)
        channel.pending[sequence] = probe_id
        self._pending[probe_id] = pending

    def _send_tcp(self, probe_id: int, address: str, ttl: int | None, destination: _Destination) -> None:
        if ttl is not None:
            self._fail_now(probe_id, address, ttl, "TTL-limited probes need ICMP")
            return
        try:
            connection = socket.socket(destination.family.family, socket.SOCK_STREAM)
        except OSError as exc:
            self._fail_now(probe_id, address, ttl,
                           f"no {destination.family.name} TCP socket: {exc.strerror or exc}")
            return
        connection.setblocking(False)
        sockaddr = (destination.sockaddr[0], self.tcp_port, *destination.sockaddr[2:])
        sent_at = self._clock()
        code = connection.connect_ex(sockaddr)
        pending = _Pending(probe_id, address, ttl, sent_at, sent_at + self.timeout, connection=connection)
        if code == errno.EINPROGRESS:
            self._pending[probe_id] = pending
            self._by_fd[connection.fileno()] = pending
            self._poller.register(connection, select.POLLOUT)
        else:  # decided at once (loopback, or no route)
            self._outcomes.append(self._tcp_outcome(pending, code, self._clock()))
            connection.close()

    def _tcp_outcome(self, pending: _Pending, code: int, now: float) -> Outcome:
        if code in (0, errno.ECONNREFUSED):  # connected, or a reset: the host is there
            return Outcome(pending.probe_id, pending.address, None, pending.sent_at, now - pending.sent_at,
                           pending.address, True, None)
        if code == errno.ENETUNREACH:
            words = "network unreachable"
        elif code == errno.EHOSTUNREACH:
            words = "host unreachable"
        else:
            words = (os.strerror(code) if code else "failed").lower()
        return Outcome(pending.probe_id, pending.address, None, pending.sent_at, None, None, False,
                       f"{words} (TCP port {self.tcp_port})")

    # -- collecting ------------------------------------------------------------------------

    def collect(self, until: float) -> list[Outcome]:
        """Wait until monotonic ``until`` (or until nothing is pending); return every probe
        that ended meanwhile: answered, failed, or lost (older than ``timeout``)."""
        first = True
        while not self._closed:
            now = self._clock()
            self._expire(now)
            if not self._pending or (now >= until and not first):
                break
            oldest = next(iter(self._pending.values()))
            wait = max(0.0, min(until, oldest.deadline) - now)
            self._dispatch(self._poller.poll(math.ceil(wait * 1000)))
            first = False
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    def finish(self) -> list[Outcome]:
        """Wait for every pending probe (at most ``timeout``) and return what remains."""
        return self.collect(until=self._clock() + self.timeout)

    def _expire(self, now: float) -> None:
        if not self._pending or next(iter(self._pending.values())).deadline > now:
            return
        # Before calling a probe lost, read what has arrived: an answer that came in time but
        # was not read yet (the caller was busy elsewhere) counts, by its kernel timestamp.
        self._dispatch(self._poller.poll(0))
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.deadline > now:
                break
            self._lost(oldest)

    def _lost(self, pending: _Pending) -> None:
        self._forget(pending)
        self._outcomes.append(self._timed_out(pending))

    def _timed_out(self, pending: _Pending) -> Outcome:
        """Lost: no answer within the timeout. An answer read later counts as lost too."""
        port = f" (TCP port {self.tcp_port})" if self.method == "tcp" else ""
        return Outcome(pending.probe_id, pending.address, pending.ttl, pending.sent_at, None, None, False,
                       f"timeout after {self.timeout:g} s{port}")

    def _forget(self, pending: _Pending) -> None:
        del self._pending[pending.probe_id]
        if pending.channel is not None and pending.sequence is not None:
            pending.channel.pending.pop(pending.sequence, None)
        if pending.connection is not None:
            self._by_fd.pop(pending.connection.fileno(), None)
            self._poller.unregister(pending.connection)
            pending.connection.close()

    def _dispatch(self, events: list[tuple[int, int]]) -> None:
        for fd, _mask in events:
            target = self._by_fd.get(fd)
            if isinstance(target, _IcmpChannel):
                self._match(target, target.read(self._clock))
            elif target is not None and target.connection is not None:
                self._connected(target)

    def _connected(self, pending: _Pending) -> None:
        """A TCP probe's connect ended: connected, refused, or failed."""
        assert pending.connection is not None
        code = pending.connection.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        now = self._clock()
        outcome = self._tcp_outcome(pending, code, now)
        if code == 0 and outcome.rtt_seconds is not None:
            measured = _handshake_rtt(pending.connection)
            if measured is not None and 0 < measured <= outcome.rtt_seconds:
                outcome = dataclasses.replace(outcome, rtt_seconds=measured)
        self._forget(pending)
        took = outcome.rtt_seconds if outcome.rtt_seconds is not None else now - pending.sent_at
        self._outcomes.append(self._timed_out(pending) if took > self.timeout else outcome)

    def _match(self, channel: _IcmpChannel, answers: list[_Answer]) -> None:
        for answer in answers:
            probe_id = channel.pending.get(answer.sequence)
            pending = self._pending.get(probe_id) if probe_id is not None else None
            if pending is None or answer.destination != pending.destination:
                continue  # late (already counted lost), a duplicate, or not ours
            self._forget(pending)
            rtt = answer.arrival.time(pending.sent_at) - pending.sent_at
            if rtt > self.timeout:
                self._outcomes.append(self._timed_out(pending))
                continue
            if answer.kind == _REPLY:
                outcome = Outcome(pending.probe_id, pending.address, pending.ttl, pending.sent_at, rtt,
                                  answer.responder, True, None)
            elif answer.kind == _TIME_EXCEEDED and pending.ttl is not None:
                # What a TTL-limited probe is for: the router `ttl` hops away answered.
                outcome = Outcome(pending.probe_id, pending.address, pending.ttl, pending.sent_at, rtt,
                                  answer.responder, False, None)
            else:
                source = f" (ICMP from {answer.responder})" if answer.responder else ""
                outcome = Outcome(pending.probe_id, pending.address, pending.ttl, pending.sent_at, None,
                                  answer.responder, False, f"{answer.words}{source}")
            self._outcomes.append(outcome)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close every socket; probes still pending get no outcome."""
        if self._closed:
            return
        self._closed = True
        for pending in list(self._pending.values()):
            if pending.connection is not None:
                pending.connection.close()
        self._pending.clear()
        for channel in self._channels.values():
            if channel is not None:
                channel.close()

    def __enter__(self) -> EchoSampler:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
