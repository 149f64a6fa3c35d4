"""A fake SNMP v2c agent on 127.0.0.1: a UDP server thread that answers from a fixed MIB.

It has its own small BER codec, written apart from the agent's (agent/probes/users/snmp.py)
so that a mistake made twice does not cancel out; the real snmpd test checks both against
Net-SNMP. It answers Get, GetNext and GetBulk the way RFC 3416 §4.2 says (lexicographic
successor, endOfMibView past the last object, noSuchObject for a Get of a missing one),
drops a request with a wrong community as Net-SNMP does (no answer at all), and can be made
to return at most ``max_repetitions`` rows per GetBulk (a table spanning several replies),
to refuse with an error-status, or to stay silent.

``walk_rows`` reads a walk written in the numeric output of ``snmpwalk -On`` (Hex-STRING,
STRING, INTEGER, Gauge32, Counter32) into the MIB, so tests replay recorded walks.
"""

from __future__ import annotations

import bisect
import re
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

Oid = tuple[int, ...]

GET, GET_NEXT, RESPONSE, GET_BULK = 0xA0, 0xA1, 0xA2, 0xA5


def _length(n: int) -> bytes:
    if n < 128:
        return bytes([n])
    octets = n.to_bytes(4, "big").lstrip(b"\x00")
    return bytes([0x80 + len(octets)]) + octets


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def _int(tag: int, value: int) -> bytes:
    body = value.to_bytes(8, "big", signed=True).lstrip(b"\x00") or b"\x00"
    if value >= 0 and body[0] & 0x80:
        body = b"\x00" + body
    if value < 0:
        body = value.to_bytes(8, "big", signed=True)
        while len(body) > 1 and body[0] == 0xFF and body[1] & 0x80:
            body = body[1:]
    return _tlv(tag, body)


def _oid(oid: Oid) -> bytes:
    body = bytearray([40 * oid[0] + oid[1]])
    for arc in oid[2:]:
        septets: list[int] = []
        while True:
            septets.insert(0, arc % 128)
            arc //= 128
            if not arc:
                break
        body += bytes([s | 0x80 for s in septets[:-1]] + [septets[-1]])
    return _tlv(0x06, bytes(body))


def integer(value: int) -> bytes:
    return _int(0x02, value)


def gauge32(value: int) -> bytes:
    return _int(0x42, value)


def counter32(value: int) -> bytes:
    return _int(0x41, value)


def octets(value: bytes) -> bytes:
    return _tlv(0x04, value)


def _parse(data: bytes, at: int = 0) -> tuple[int, bytes, int]:
    tag, n = data[at], data[at + 1]
    at += 2
    if n & 0x80:
        size = n & 0x7F
        n = int.from_bytes(data[at:at + size], "big")
        at += size
    return tag, data[at:at + n], at + n


def _items(body: bytes) -> list[tuple[int, bytes]]:
    out, at = [], 0
    while at < len(body):
        tag, value, at = _parse(body, at)
        out.append((tag, value))
    return out


def _read_oid(body: bytes) -> Oid:
    arcs = [body[0] // 40, body[0] % 40]
    arc = 0
    for b in body[1:]:
        arc = arc * 128 + (b & 0x7F)
        if b < 0x80:
            arcs.append(arc)
            arc = 0
    return tuple(arcs)


_LINE = re.compile(r"^\.?([\d.]+) = (\w[\w-]*): ?(.*)$")


def walk_rows(path: Path) -> dict[Oid, bytes]:
    """The variable bindings of an ``snmpwalk -On`` transcript (comments start with #)."""
    mib: dict[Oid, bytes] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if not match:
            raise ValueError(f"not an snmpwalk -On line: {line!r}")
        oid, kind, text = tuple(int(a) for a in match[1].split(".")), match[2], match[3].strip()
        if kind == "Hex-STRING":
            mib[oid] = octets(bytes.fromhex(text))
        elif kind == "STRING":
            mib[oid] = octets(text.strip('"').encode())
        elif kind == "INTEGER":
            mib[oid] = integer(int(text.split("(")[-1].rstrip(")")))
        elif kind == "Gauge32":
            mib[oid] = gauge32(int(text))
        elif kind == "Counter32":
            mib[oid] = counter32(int(text))
        else:
            raise ValueError(f"type {kind} is not replayed: {line!r}")
    return mib


class FakeSnmpAgent:
    """``with FakeSnmpAgent(mib, community) as agent:`` then ask ``agent.address``."""

    def __init__(self, mib: dict[Oid, bytes], community: str = "public", *,
                 max_repetitions: int | None = None, error_status: int = 0,
                 silent: bool = False) -> None:
        self.oids = sorted(mib)
        self.mib = dict(mib)
        self.community = community.encode()
        self.max_repetitions = max_repetitions
        self.error_status = error_status
        self.silent = silent
        self.received: list[tuple[int, list[Oid]]] = []  # (PDU type, OIDs asked) per request
        self.bad_community = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeSnmpAgent:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            answer = self._answer(datagram)
            if answer is not None:
                self.sock.sendto(answer, peer)

    def _answer(self, datagram: bytes) -> bytes | None:
        _, message, _ = _parse(datagram)
        (_, version), (_, community), (pdu_type, pdu) = _items(message)
        if community != self.community:
            self.bad_community += 1
            return None  # RFC 3584 / Net-SNMP: an unknown community gets no answer
        request_id, first, second, (_, bindings) = _items(pdu)
        asked = [_read_oid(_items(vb)[0][1]) for _, vb in _items(bindings)]
        self.received.append((pdu_type, asked))
        if self.silent:
            return None
        status = 0
        if self.error_status:
            status, answers = self.error_status, [(oid, b"\x05\x00") for oid in asked]
        elif pdu_type == GET:
            answers = [(oid, self.mib.get(oid, b"\x80\x00")) for oid in asked]
        elif pdu_type == GET_NEXT:
            answers = [self._next(oid) for oid in asked]
        elif pdu_type == GET_BULK:
            answers = self._bulk(asked, int.from_bytes(first[1], "big"), int.from_bytes(second[1], "big"))
        else:
            return None
        body = b"".join(_tlv(0x30, _oid(oid) + value) for oid, value in answers)
        reply_pdu = _tlv(RESPONSE, _tlv(0x02, request_id[1]) + integer(status) + integer(
            1 if status else 0) + _tlv(0x30, body))
        return _tlv(0x30, _tlv(0x02, version) + octets(community) + reply_pdu)

    def _next(self, oid: Oid) -> tuple[Oid, bytes]:
        at = bisect.bisect_right(self.oids, oid)
        if at == len(self.oids):
            return oid, b"\x82\x00"  # endOfMibView
        found = self.oids[at]
        return found, self.mib[found]

    def _bulk(self, asked: list[Oid], non_repeaters: int, repetitions: int) -> list[tuple[Oid, bytes]]:
        answers = [self._next(oid) for oid in asked[:non_repeaters]]
        if self.max_repetitions is not None:
            repetitions = min(repetitions, self.max_repetitions)
        cursors = list(asked[non_repeaters:])
        for _ in range(repetitions):
            row = [self._next(oid) for oid in cursors]
            answers.extend(row)
            cursors = [oid for oid, _ in row]
            if all(value == b"\x82\x00" for _, value in row):
                break
        return answers

    def requests(self, pdu_type: int | None = None) -> int:
        return sum(1 for kind, _ in self.received if pdu_type is None or kind == pdu_type)


def mib_of(*parts: Iterable[tuple[Oid, bytes]] | dict[Oid, bytes]) -> dict[Oid, bytes]:
    merged: dict[Oid, bytes] = {}
    for part in parts:
        merged.update(dict(part))
    return merged
