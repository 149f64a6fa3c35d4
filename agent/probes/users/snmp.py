"""Census source: the router's ARP table and the access points' client counts, over SNMP v2c.

A school's router knows every device that talked IP through it in the last minutes (its
ARP table, ``ipNetToMediaPhysAddress``, RFC 1213 / RFC 4293), on every VLAN it routes, which
the agent's own ARP census cannot see past its one VLAN; an access point or controller
often publishes its associated-client count as a single number. This module asks for
both with a minimal SNMP v2c client: stdlib UDP sockets and a hand-written BER codec
(X.690 basic encoding rules, the subset SNMP uses), because pysnmp would cost the agent's
long-lived process far more memory than the few hundred lines here.

Protocol references: RFC 1157 (message layout, community string), RFC 1905/3416 (v2 PDUs:
GetRequest, GetNextRequest, GetBulkRequest, Response; the exceptions noSuchObject,
noSuchInstance, endOfMibView; error-status values), RFC 2578 (SMIv2 application types:
IpAddress, Counter32, Gauge32, TimeTicks, Opaque, Counter64), RFC 3417 (UDP transport).

Privacy: a table's values that are hardware addresses are hashed with the day's key the
moment they are decoded and only the hashes are kept (for de-duplication across hosts and
with the other sources); index arcs (which hold client IPs) are never kept either. Error
messages name the SNMP host and OID, never the community string or a value.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from agent.config import SnmpCensusConfig
from agent.probes.users.census import CensusUnavailable, DeviceKeys, SourceResult, is_device_address

# --- BER (X.690 §8) -------------------------------------------------------------------

INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30
# SMIv2 application types (RFC 2578 §7.1)
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIME_TICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
# Exceptions in a Response's variable bindings (RFC 3416 §3)
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82
# PDUs (RFC 3416 §3): context-specific, constructed
GET_REQUEST = 0xA0
GET_NEXT_REQUEST = 0xA1
RESPONSE = 0xA2
GET_BULK_REQUEST = 0xA5
REPORT = 0xA8

SNMP_V2C = 1  # the version field of a community-based SNMPv2 message (RFC 1901)
NUMBER_TYPES = frozenset({INTEGER, COUNTER32, GAUGE32, COUNTER64})

# error-status (RFC 3416 §3), named so a message says what the agent meant.
ERROR_STATUS = {
    1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr", 6: "noAccess",
    7: "wrongType", 8: "wrongLength", 9: "wrongEncoding", 10: "wrongValue", 11: "noCreation",
    12: "inconsistentValue", 13: "resourceUnavailable", 14: "commitFailed", 15: "undoFailed",
    16: "authorizationError", 17: "notWritable", 18: "inconsistentName",
}
REFUSED = frozenset({6, 16})  # noAccess, authorizationError: the view excludes the OID

Oid = tuple[int, ...]


class BerError(ValueError):
    """A datagram that is not the BER SNMP speaks."""


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(content)) + content


def encode_integer(value: int) -> bytes:
    # Two's complement in the fewest octets (X.690 §8.3.2): one extra bit for the sign.
    magnitude = value if value >= 0 else ~value  # -128 fits one octet, +128 needs two
    size = (magnitude.bit_length() + 8) // 8
    return tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def encode_oid(oid: Oid) -> bytes:
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise BerError(f"not an object identifier: {format_oid(oid)}")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):  # X.690 §8.19.4: the first two arcs share one
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return tlv(OBJECT_IDENTIFIER, bytes(out))


def decode_tlv(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, content, offset after it). Definite lengths only: SNMP forbids the others."""
    if offset + 2 > len(data):
        raise BerError("truncated")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise BerError("multi-octet tags are not used in SNMP")
    first = data[offset + 1]
    offset += 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if size == 0 or size > 4 or offset + size > len(data):
            raise BerError("bad length")
        length = int.from_bytes(data[offset:offset + size], "big")
        offset += size
    end = offset + length
    if end > len(data):
        raise BerError("truncated")
    return tag, data[offset:end], end


def decode_sequence(content: bytes) -> list[tuple[int, bytes]]:
    items, offset = [], 0
    while offset < len(content):
        tag, value, offset = decode_tlv(content, offset)
        items.append((tag, value))
    return items


def decode_integer(content: bytes) -> int:
    if not content:
        raise BerError("empty INTEGER")
    return int.from_bytes(content, "big", signed=True)


def decode_unsigned(content: bytes) -> int:
    # Counter32/Gauge32/TimeTicks/Counter64 are unsigned; a correct agent pads a set high
    # bit with a zero octet, some do not, and reading the octets unsigned suits both.
    if not content or len(content) > 9:
        raise BerError("bad unsigned number")
    return int.from_bytes(content, "big")


# RFC 2578 §3.5: at most 128 sub-identifiers, each at most 2**32 - 1. Beyond that a datagram
# is garbage or hostile, and unbounded arcs cost quadratic time (0.3 s of CPU for one 64 kB one).
MAX_OID_ARCS = 128
MAX_ARC = 2**32 - 1


def decode_oid(content: bytes) -> Oid:
    if not content or content[-1] & 0x80 or len(content) > 5 * MAX_OID_ARCS:
        raise BerError("bad OBJECT IDENTIFIER")
    arcs, arc = [], 0
    for octet in content:
        arc = (arc << 7) | (octet & 0x7F)
        if arc > MAX_ARC + 80:  # the first octets hold two arcs: 2.x adds 80
            raise BerError("bad OBJECT IDENTIFIER")
        if not octet & 0x80:
            arcs.append(arc)
            arc = 0
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def parse_oid(text: str) -> Oid:
    """A configured OID in dotted numbers ("1.3.6.1.2.1.4.22.1.2", a leading dot allowed)."""
    try:
        oid = tuple(int(arc) for arc in text.strip().removeprefix(".").split("."))
        encode_oid(oid)
    except (ValueError, OverflowError):
        raise CensusUnavailable(
            f"SNMP OID {text!r} is not in dotted numbers like 1.3.6.1.2.1.4.22.1.2 "
            "(MIB names are not resolved)") from None
    if any(arc < 0 for arc in oid):
        raise CensusUnavailable(f"SNMP OID {text!r} has a negative arc")
    return oid


def format_oid(oid: Sequence[int]) -> str:
    return ".".join(str(arc) for arc in oid)


# --- messages (RFC 1157 §4, RFC 3416 §3) -------------------------------------------------


@dataclass(frozen=True)
class VarBind:
    oid: Oid
    tag: int
    content: bytes  # the value's BER content octets, decoded by the caller for its type

    def number(self) -> int | None:
        if self.tag == INTEGER:
            return decode_integer(self.content)
        if self.tag in NUMBER_TYPES:
            return decode_unsigned(self.content)
        return None


@dataclass(frozen=True)
class Response:
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[VarBind]


def encode_request(community: bytes, pdu_tag: int, request_id: int, oids: Iterable[Oid],
                   first: int = 0, second: int = 0) -> bytes:
    """A v2c message with one PDU asking for ``oids`` (values NULL). ``first`` and ``second``
    are error-status and error-index (both 0) or, in a GetBulkRequest, non-repeaters and
    max-repetitions."""
    bindings = b"".join(tlv(SEQUENCE, encode_oid(oid) + tlv(NULL, b"")) for oid in oids)
    pdu = tlv(pdu_tag, encode_integer(request_id) + encode_integer(first) + encode_integer(second)
              + tlv(SEQUENCE, bindings))
    return tlv(SEQUENCE, encode_integer(SNMP_V2C) + tlv(OCTET_STRING, community) + pdu)


def decode_response(datagram: bytes) -> Response:
    tag, message, end = decode_tlv(datagram, 0)
    if tag != SEQUENCE or end != len(datagram):
        raise BerError("not an SNMP message")
    parts = decode_sequence(message)
    if len(parts) != 3 or parts[0][0] != INTEGER or parts[1][0] != OCTET_STRING:
        raise BerError("not an SNMP message")
    if decode_integer(parts[0][1]) != SNMP_V2C:
        raise BerError("not an SNMPv2c message")
    pdu_tag, pdu = parts[2]
    if pdu_tag != RESPONSE:
        raise BerError(f"unexpected PDU type 0x{pdu_tag:02x}")
    fields = decode_sequence(pdu)
    if len(fields) != 4 or [f[0] for f in fields] != [INTEGER, INTEGER, INTEGER, SEQUENCE]:
        raise BerError("malformed PDU")
    varbinds = []
    for vb_tag, binding in decode_sequence(fields[3][1]):
        pair = decode_sequence(binding)
        if vb_tag != SEQUENCE or len(pair) != 2 or pair[0][0] != OBJECT_IDENTIFIER:
            raise BerError("malformed variable binding")
        varbinds.append(VarBind(decode_oid(pair[0][1]), pair[1][0], pair[1][1]))
    return Response(decode_integer(fields[0][1]), decode_integer(fields[1][1]),
                    decode_integer(fields[2][1]), varbinds)


# --- a session with one agent ------------------------------------------------------------

MAX_DATAGRAM = 65507
# Rows per GetBulk reply: ~35 bytes a row of ipNetToMediaPhysAddress, so ~1.4 kB, one
# unfragmented datagram on Ethernet. An agent may return fewer; it never returns more.
MAX_REPETITIONS = 40
MAX_ROWS = 10_000  # per walk: a school's ARP table is far smaller; more means a wrong OID
VALUES_PER_GET = 20
RETRIES = 1


class SnmpSession:
    """Requests to one agent over a connected UDP socket (so the kernel drops datagrams
    from anyone else, and an ICMP port-unreachable surfaces as an error)."""

    def __init__(self, host: str, community: str, timeout: float, deadline: float,
                 clock: Callable[[], float] = time.monotonic, retries: int = RETRIES) -> None:
        self.label = host
        self.community = community.encode()
        self.timeout = timeout
        self.deadline = deadline
        self.clock = clock
        self.retries = retries
        self.requests = 0
        name, port = split_host(host)
        try:
            family, kind, proto, _, address = socket.getaddrinfo(name, port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, UnicodeError) as exc:
            raise CensusUnavailable(f"SNMP host {host}: cannot resolve the name ({exc})") from None
        self.sock = socket.socket(family, kind, proto)
        try:
            self.sock.connect(address)
        except OSError as exc:
            self.sock.close()
            raise CensusUnavailable(f"SNMP host {host}: {exc.strerror or exc}") from None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SnmpSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, pdu_tag: int, oids: Sequence[Oid], first: int = 0, second: int = 0) -> Response:
        request_id = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
        datagram = encode_request(self.community, pdu_tag, request_id, oids, first, second)
        for _attempt in range(1 + self.retries):
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                raise CensusUnavailable(f"SNMP host {self.label}: the census ran out of time "
                                        "(the hosts answer too slowly or their tables are too long)")
            self.requests += 1
            try:
                self.sock.send(datagram)
            except OSError as exc:
                raise CensusUnavailable(f"SNMP host {self.label}: {exc.strerror or exc}") from None
            response = self._receive(request_id, min(self.timeout, remaining))
            if response is not None:
                return response
        raise CensusUnavailable(
            f"SNMP host {self.label} did not answer (a wrong community string, SNMP v2c not "
            "enabled, or a firewall: agents drop requests with a community they do not know)")

    def _receive(self, request_id: int, wait: float) -> Response | None:
        until = self.clock() + wait
        while (left := until - self.clock()) > 0:
            self.sock.settimeout(left)
            try:
                datagram = self.sock.recv(MAX_DATAGRAM)
            except TimeoutError:
                return None
            except ConnectionRefusedError:
                raise CensusUnavailable(f"SNMP host {self.label}: nothing listens on its SNMP port "
                                        "(ICMP port unreachable)") from None
            except OSError as exc:
                raise CensusUnavailable(f"SNMP host {self.label}: {exc.strerror or exc}") from None
            try:
                response = decode_response(datagram)
            except BerError:
                continue  # not for us or garbled: keep waiting for the real answer
            if response.request_id == request_id:  # else a late answer to an earlier try
                return response
        return None

    def checked(self, response: Response, what: str) -> Response:
        if response.error_status == 0:
            return response
        name = ERROR_STATUS.get(response.error_status, str(response.error_status))
        if response.error_status in REFUSED:
            raise CensusUnavailable(f"SNMP host {self.label} refused access to {what} ({name}): "
                                    "the community's view does not include it")
        raise CensusUnavailable(f"SNMP host {self.label} answered {name} for {what}")

    def walk(self, base: Oid) -> Iterable[VarBind]:
        """The rows under ``base`` in order, by GetBulk, until the subtree or the MIB ends."""
        what = format_oid(base)
        cursor, rows, repetitions = base, 0, MAX_REPETITIONS
        while True:
            response = self.request(GET_BULK_REQUEST, [cursor], 0, repetitions)
            if response.error_status == 1 and repetitions > 1:  # tooBig: ask for fewer rows
                repetitions //= 2
                continue
            self.checked(response, what)
            if not response.varbinds:
                raise CensusUnavailable(f"SNMP host {self.label} sent an empty answer for {what}")
            for binding in response.varbinds:
                if binding.tag == END_OF_MIB_VIEW or binding.oid[:len(base)] != base:
                    return
                if binding.oid <= cursor:  # RFC 3416 §4.2.3: each answer lies past the cursor
                    raise CensusUnavailable(f"SNMP host {self.label} walked {what} out of order "
                                            "(an agent bug): stopped rather than loop")
                rows += 1
                if rows > MAX_ROWS:
                    raise CensusUnavailable(f"SNMP host {self.label}: {what} has more than "
                                            f"{MAX_ROWS} rows, not a table of devices")
                cursor = binding.oid
                yield binding

    def get_numbers(self, oids: Sequence[Oid]) -> list[int]:
        numbers: list[int] = []
        for start in range(0, len(oids), VALUES_PER_GET):
            chunk = oids[start:start + VALUES_PER_GET]
            response = self.checked(self.request(GET_REQUEST, chunk),
                                    ", ".join(format_oid(oid) for oid in chunk))
            if [b.oid for b in response.varbinds] != list(chunk):
                raise CensusUnavailable(f"SNMP host {self.label} answered for other OIDs than asked")
            for binding in response.varbinds:
                what = format_oid(binding.oid)
                if binding.tag in (NO_SUCH_OBJECT, NO_SUCH_INSTANCE):
                    raise CensusUnavailable(f"SNMP host {self.label} has no {what} "
                                            "(check the OID and the instance suffix, e.g. .0)")
                number = binding.number()
                if number is None or number < 0:
                    raise CensusUnavailable(f"SNMP host {self.label}: {what} is not a count")
                numbers.append(number)
        return numbers


def split_host(host: str) -> tuple[str, int]:
    """"router", "router:1161", "10.0.0.1", "[fd00::1]:161" or a bare IPv6 address."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else 161
    if host.count(":") == 1:
        name, port = host.split(":")
        if port.isdigit():
            return name, int(port)
        raise CensusUnavailable(f"SNMP host {host}: the port is not a number")
    return host, 161


# --- the census source ---------------------------------------------------------------------


class SnmpSource:
    name = "snmp"

    def __init__(self, config: SnmpCensusConfig, keys: DeviceKeys, *,
                 overall_timeout: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 retries: int = RETRIES) -> None:
        self.config = config
        self.keys = keys
        self.overall_timeout = overall_timeout
        self.clock = clock
        self.retries = retries

    def census(self) -> SourceResult:
        config = self.config
        if not config.hosts:
            raise CensusUnavailable("no SNMP hosts configured (probes.users.snmp.hosts)")
        tables = [parse_oid(text) for text in config.count_oids]
        values = [parse_oid(text) for text in config.value_oids]
        if not tables and not values:
            raise CensusUnavailable("nothing to ask: probes.users.snmp.count_oids and value_oids are empty")
        began = self.clock()
        deadline = began + self.overall_timeout
        devices: set[bytes] = set()
        saw_addresses = False
        count = requests = 0
        for host in config.hosts:
            with SnmpSession(host, config.community, config.timeout, deadline, self.clock,
                             self.retries) as session:
                try:
                    for table in tables:
                        addresses, other_rows = self._count_table(session, table, devices)
                        saw_addresses |= addresses
                        count += other_rows
                    count += sum(session.get_numbers(values)) if values else 0
                finally:
                    requests += session.requests
        return SourceResult(source=self.name, count=count + len(devices),
                            devices=frozenset(devices) if saw_addresses else None,
                            duration_seconds=self.clock() - began, requests=requests)

    def _count_table(self, session: SnmpSession, table: Oid, devices: set[bytes]) -> tuple[bool, int]:
        """Walk one table: hardware-address values go into ``devices`` as keyed hashes;
        the rows of a table of anything else are counted. (Whether it held addresses, rows.)"""
        addresses, rows = False, 0
        for binding in session.walk(table):
            # A PhysAddress of an Ethernet neighbour is 6 octets; an incomplete ARP entry has
            # none (or zeros) and a multicast mapping (01:00:5e:…) is no device: neither counts.
            if binding.tag == OCTET_STRING and len(binding.content) in (0, 6):
                addresses |= len(binding.content) == 6
                if is_device_address(binding.content):
                    devices.add(self.keys(binding.content))
            else:
                rows += 1
        return addresses, (0 if addresses else rows)
