"""DNS resolution time: one RFC 1035 query over UDP to every configured resolver at once.

Our own minimal client rather than dnspython: importing dnspython costs about 15 MB of
resident memory, and the agent's whole idle budget on a Raspberry Pi is 50 MB. We need
little of DNS: ask one question, time the answer, and say in one line why there was none.
"""

from __future__ import annotations

import errno
import ipaddress
import secrets
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.config import SYSTEM_RESOLVERS
from agent.units import split_host_port

RESOLV_CONF = Path("/etc/resolv.conf")
DNS_PORT = 53

QTYPES = {"A": 1, "AAAA": 28}
CNAME = 5
CLASS_IN = 1

# Header flags (RFC 1035 4.1.1).
FLAG_QR = 0x8000
FLAG_TC = 0x0200
FLAG_RD = 0x0100
OPCODE_MASK = 0x7800
RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

# Without EDNS a UDP answer is at most 512 bytes (RFC 1035 4.2.1); read more in case a
# server sends more anyway, we parse what arrives.
RECEIVE_BYTES = 4096
HEADER = struct.Struct("!HHHHHH")


@dataclass(frozen=True)
class Resolver:
    """One DNS server to ask. ``label`` is the config's text; every server that "system"
    expands to carries the label "system"."""

    label: str
    host: str  # an IP address (IPv6 possibly with %scope), never a name
    port: int


@dataclass(frozen=True)
class DnsOutcome:
    resolver: Resolver
    name: str
    seconds: float | None  # from sending to the matching answer; None when it failed
    error: str | None


def resolvers(configured: list[str], resolv_conf: Path = RESOLV_CONF) -> list[Resolver]:
    """The resolvers the config names: ``"system"`` (the machine's own, from resolv.conf),
    ``"9.9.9.9"``, ``"9.9.9.9:5353"``, ``"[2001:db8::1]:53"`` or a host name (looked up once,
    here). Raises ValueError with a one-line reason for one that cannot be used."""
    found: list[Resolver] = []
    for text in configured:
        text = text.strip()
        if text == SYSTEM_RESOLVERS:
            found.extend(Resolver(SYSTEM_RESOLVERS, host, DNS_PORT)
                         for host in system_nameservers(resolv_conf))
            continue
        try:
            host, port = split_host_port(text, DNS_PORT)
        except ValueError as exc:
            raise ValueError(f"DNS server {exc}") from None
        found.append(Resolver(text, _address_of(text, host, port), port))
    return found


def system_nameservers(resolv_conf: Path = RESOLV_CONF) -> list[str]:
    """The ``nameserver`` addresses in resolv.conf, in order; lines the C library would not
    use either (not an IP address) are skipped."""
    try:
        text = resolv_conf.read_text(errors="replace")
    except OSError as exc:
        raise ValueError(f"DNS server 'system': cannot read {resolv_conf}: {exc.strerror or exc}") from None
    servers = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] != "nameserver":
            continue  # comments (# or ;), search, options, domain, blank lines
        try:
            ipaddress.ip_address(fields[1])  # accepts fe80::1%eth0 (a link-local with its scope)
        except ValueError:
            continue
        servers.append(fields[1])
    if not servers:
        raise ValueError(f"DNS server 'system': {resolv_conf} names no usable nameserver; "
                         "list the school's resolvers in probes.connectivity.dns_servers instead")
    return servers


def _address_of(text: str, host: str, port: int) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    # A server given by name is looked up once, at start-up: timing our own resolver
    # lookups of the server's name on every query would measure the wrong thing.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ValueError(f"DNS server {text!r}: cannot resolve {host}: {exc.strerror or exc}") from None
    address = str(infos[0][4][0])
    scope = infos[0][4][3] if len(infos[0][4]) > 3 else 0
    return f"{address}%{scope}" if scope and "%" not in address else address


# --- one round of queries ---------------------------------------------------------------


@dataclass
class _Pending:
    resolver: Resolver
    sock: socket.socket
    query_id: int
    sent_at: float


def query_all(resolvers: list[Resolver], name: str, timeout: float, qtype: str = "A",
              clock: Callable[[], float] = time.monotonic) -> list[DnsOutcome]:
    """Ask every resolver for ``name`` at the same moment; one outcome per resolver, in
    order, once each has answered or ``timeout`` seconds have passed."""
    question = encode_question(name, qtype)
    outcomes: dict[int, DnsOutcome] = {}
    pending: dict[int, _Pending] = {}
    selector = selectors.DefaultSelector()
    try:
        for index, resolver in enumerate(resolvers):
            try:
                pending[index] = _send(resolver, question, clock)
            except OSError as exc:
                outcomes[index] = DnsOutcome(resolver, name, None, describe_socket_error(exc))
                continue
            selector.register(pending[index].sock, selectors.EVENT_READ, index)
        deadline = clock() + timeout
        while pending:
            remaining = deadline - clock()
            if remaining <= 0:
                break
            for key, _ in selector.select(remaining):
                index = key.data
                outcome = _receive(pending[index], name, question, qtype, clock)
                if outcome is not None:
                    outcomes[index] = outcome
                    selector.unregister(pending[index].sock)
                    pending.pop(index).sock.close()
        for index, waiting in pending.items():
            outcomes[index] = DnsOutcome(waiting.resolver, name, None, f"timeout after {timeout:g} s")
    finally:
        selector.close()
        for waiting in pending.values():
            waiting.sock.close()
    return [outcomes[index] for index in range(len(resolvers))]


def _send(resolver: Resolver, question: bytes, clock: Callable[[], float]) -> _Pending:
    # Numeric only: a resolver's address is never a name here (see resolvers()), and a
    # scoped link-local address gets its interface index from getaddrinfo.
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            resolver.host, resolver.port, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST)[0]
    except socket.gaierror as exc:  # e.g. fe80::1%eth1 on a machine without eth1
        raise OSError(f"{resolver.host} is not a usable address here ({exc.strerror or exc})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        # Connected: the kernel drops datagrams from any other address and port, and an
        # ICMP port unreachable comes back to us as ECONNREFUSED.
        sock.connect(address)
        query_id = secrets.randbits(16)  # unpredictable, against spoofed answers
        sent_at = clock()
        sock.send(HEADER.pack(query_id, FLAG_RD, 1, 0, 0, 0) + question)
    except OSError:
        sock.close()
        raise
    return _Pending(resolver, sock, query_id, sent_at)


def _receive(waiting: _Pending, name: str, question: bytes, qtype: str,
             clock: Callable[[], float]) -> DnsOutcome | None:
    """The outcome once an answer to our question arrived or the socket failed; None while
    only other datagrams came (a wrong id or question: spoofed or stray, ignored)."""
    while True:
        try:
            data = waiting.sock.recv(RECEIVE_BYTES)
        except BlockingIOError:
            return None
        except OSError as exc:
            return DnsOutcome(waiting.resolver, name, None, describe_socket_error(exc))
        received_at = clock()
        verdict = check_response(data, waiting.query_id, question, qtype)
        if verdict is None:
            continue
        ok = verdict == ""
        return DnsOutcome(waiting.resolver, name, received_at - waiting.sent_at if ok else None,
                          None if ok else verdict)


def describe_socket_error(exc: OSError) -> str:
    """A socket failure as one line a school's ICT person can act on."""
    known = {
        errno.ECONNREFUSED: "port unreachable",
        # Windows reports an ICMP port unreachable on UDP as a reset connection.
        errno.ECONNRESET: "port unreachable",
        errno.ENETUNREACH: "network unreachable",
        errno.EHOSTUNREACH: "host unreachable",
        errno.EAFNOSUPPORT: "this machine has no IPv6",
        errno.EADDRNOTAVAIL: "no local address to send from",
        errno.EPERM: "blocked by this machine's firewall",
        errno.EACCES: "blocked by this machine's firewall",
    }
    if exc.errno in known:
        return known[exc.errno]
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


# --- the wire format (RFC 1035 section 4) -----------------------------------------------


def encode_question(name: str, qtype: str = "A") -> bytes:
    """The question section: the name as length-prefixed labels, type, class IN."""
    if qtype not in QTYPES:
        raise ValueError(f"query type {qtype!r} is not one of {', '.join(QTYPES)}")
    labels = name.strip().removesuffix(".").split(".")
    encoded = b""
    for label in labels:
        raw = label.encode("ascii", errors="strict") if label.isascii() else b""
        if not 0 < len(raw) <= 63:
            raise ValueError(f"{name!r} is not a name DNS can ask for")
        encoded += bytes([len(raw)]) + raw
    if len(encoded) + 1 > 255:
        raise ValueError(f"{name!r} is longer than DNS allows")
    return encoded + b"\0" + struct.pack("!HH", QTYPES[qtype], CLASS_IN)


def check_response(data: bytes, query_id: int, question: bytes, qtype: str) -> str | None:
    """``""`` for an answer holding at least one record of ``qtype``; the one-line error of
    an answer to our question that holds none; None for a datagram that is not an answer
    to our question at all (wrong id, wrong question, not a response)."""
    if len(data) < HEADER.size:
        return None
    ident, flags, qdcount, ancount, _, _ = HEADER.unpack_from(data)
    if ident != query_id or not flags & FLAG_QR or flags & OPCODE_MASK or qdcount != 1:
        return None
    try:
        qname, offset = read_name(data, HEADER.size)
        asked = struct.unpack_from("!HH", data, offset)
    except (ValueError, struct.error):
        return None
    ours_name, ours_end = read_name(question, 0)
    # Names compare without case (RFC 4343): some resolvers echo a different case.
    if qname.lower() != ours_name.lower() or asked != struct.unpack_from("!HH", question, ours_end):
        return None
    if flags & FLAG_TC:
        return "truncated answer"
    rcode = flags & 0x000F
    if rcode:
        return RCODES.get(rcode, f"error code {rcode}")
    try:
        found = _count_answers(data, offset + 4, ancount, qname, QTYPES[qtype])
    except (ValueError, struct.error):
        return "malformed answer"
    return "" if found else f"no {qtype} record in the answer"


def _count_answers(data: bytes, offset: int, count: int, qname: str, rtype: int) -> int:
    """Records of ``rtype`` in the answer section for the name asked or a CNAME of it."""
    records = []
    for _ in range(count):
        owner, offset = read_name(data, offset)
        kind, rclass, _, length = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        if offset + length > len(data):
            raise ValueError("record runs past the end")
        target = read_name(data, offset)[0] if kind == CNAME else ""
        records.append((owner.lower(), kind, rclass, target.lower()))
        offset += length
    # Follow the CNAME chain in the answer section, in any order; we do not chase
    # aliases that the resolver did not resolve itself.
    names = {qname.lower()}
    while True:
        more = {target for owner, kind, _, target in records
                if kind == CNAME and owner in names and target not in names}
        if not more:
            break
        names |= more
    return sum(1 for owner, kind, rclass, _ in records
               if kind == rtype and rclass == CLASS_IN and owner in names)


def read_name(data: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) name at ``offset``: the dotted name and the offset after it."""
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    while True:
        if offset >= len(data):
            raise ValueError("name runs past the end")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise ValueError("pointer runs past the end")
            if end is None:
                end = offset + 2
            jumps += 1
            if jumps > 64:  # a loop of pointers: a hostile or broken answer
                raise ValueError("name compression loop")
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length & 0xC0:
            raise ValueError("unknown label type")
        offset += 1
        if length == 0:
            return ".".join(labels), end if end is not None else offset
        labels.append(data[offset:offset + length].decode("ascii", errors="replace"))
        offset += length
