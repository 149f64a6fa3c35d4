"""An authoritative test DNS server over UDP, written by hand (no DNS library).

Answers A (and AAAA, for IPv6 values) for the names it is given, NXDOMAIN for any other
name, SERVFAIL for the names told to fail, optionally after a delay. Two ways to use it:

- in-process: ``with DnsServer("127.0.0.1", 0, {"school.test": "10.203.0.10"}) as server:``
  (a thread; ``server.port`` is the bound port, ``server.queries`` what it received);
- as a process inside a network namespace::

      python tests/support/dns_server.py --listen 10.203.1.1:53 --answer school.test=10.203.1.10 \
          [--cname www.school.test=school.test] [--servfail broken.test] [--delay 0.2]

  prints "ready" on stdout once bound and answers until killed (SIGTERM or SIGINT).

Imports nothing from the project: the script runs from any directory and any namespace.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import struct
import sys
import threading
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

TYPE_A, TYPE_CNAME, TYPE_AAAA, CLASS_IN = 1, 5, 28, 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD = 0x8000, 0x0400, 0x0200, 0x0100
HEADER = struct.Struct("!HHHHHH")
TTL = 60


@dataclass(frozen=True)
class Query:
    """A query as received: enough to answer it, and for tests to check what was sent."""

    ident: int
    flags: int
    name: str  # lowercase, no trailing dot
    qtype: int
    qclass: int
    question: bytes  # the question section exactly as received (echoed in the answer)


@dataclass(frozen=True)
class Record:
    owner: str
    rtype: int
    rdata: bytes


def parse_query(data: bytes) -> Query:
    """The header and first question of a query; ValueError for anything else."""
    if len(data) < HEADER.size:
        raise ValueError("shorter than a DNS header")
    ident, flags, qdcount, _, _, _ = HEADER.unpack_from(data)
    if flags & FLAG_QR or qdcount != 1:
        raise ValueError("not a query with one question")
    labels, offset = [], HEADER.size
    while True:
        if offset >= len(data):
            raise ValueError("question runs past the end")
        length = data[offset]
        if length & 0xC0:
            raise ValueError("compressed or unknown label in a question")
        offset += 1
        if length == 0:
            break
        labels.append(data[offset:offset + length].decode("ascii", errors="replace"))
        offset += length
    if offset + 4 > len(data):
        raise ValueError("question has no type and class")
    qtype, qclass = struct.unpack_from("!HH", data, offset)
    return Query(ident, flags, ".".join(labels).lower(), qtype, qclass,
                 data[HEADER.size:offset + 4])


def encode_name(name: str) -> bytes:
    labels = [label for label in name.strip().rstrip(".").split(".") if label]
    return b"".join(bytes([len(raw)]) + raw for raw in (label.encode("ascii") for label in labels)) + b"\0"


def address_record(owner: str, address: str) -> Record:
    ip = ipaddress.ip_address(address)
    return Record(owner, TYPE_A if ip.version == 4 else TYPE_AAAA, ip.packed)


def build_response(query: Query, rcode: int = NOERROR, records: Sequence[Record] = (), *,
                   ident: int | None = None, truncated: bool = False,
                   question: bytes | None = None) -> bytes:
    """An answer to ``query``. Records owned by the name asked point back at the question
    (name compression, RFC 1035 4.1.4), as real servers do; others carry their full name.
    ``ident`` and ``question`` let a test forge answers that must be ignored."""
    flags = FLAG_QR | FLAG_AA | (query.flags & FLAG_RD) | (FLAG_TC if truncated else 0) | rcode
    answer = b""
    for record in records:
        owner = (b"\xc0\x0c" if record.owner.lower() == query.name
                 else encode_name(record.owner))
        answer += owner + struct.pack("!HHIH", record.rtype, CLASS_IN, TTL, len(record.rdata)) + record.rdata
    header = HEADER.pack(query.ident if ident is None else ident, flags, 1, len(records), 0, 0)
    return header + (query.question if question is None else question) + answer


# A handler turns a query into the datagrams to send back, in order (none: stay silent).
Handler = Callable[[Query], Sequence[bytes]]


@dataclass
class Zone:
    """What the server knows: addresses per name, aliases, and names that fail."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    cnames: dict[str, str] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)

    def respond(self, query: Query) -> list[bytes]:
        name = query.name
        if name in self.servfail:
            return [build_response(query, SERVFAIL)]
        records: list[Record] = []
        seen = set()
        while name in self.cnames and name not in seen:  # an alias, as a resolver returns it
            seen.add(name)
            records.append(Record(name, TYPE_CNAME, encode_name(self.cnames[name])))
            name = self.cnames[name].lower().rstrip(".")
        if name not in self.answers:
            return [build_response(query, NXDOMAIN, records)]
        records += [record for record in (address_record(name, value) for value in self.answers[name])
                    if record.rtype == query.qtype and query.qclass == CLASS_IN]
        return [build_response(query, NOERROR, records)]  # no record of the type: NODATA


class DnsServer:
    """The server as a thread on ``host``:``port`` (0 picks a free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 answers: Mapping[str, str | Sequence[str]] | None = None, *,
                 cnames: Mapping[str, str] | None = None, servfail: Iterable[str] = (),
                 delay: float = 0.0, handler: Handler | None = None) -> None:
        self.host = host
        self.port = port
        self.delay = delay
        self.zone = Zone(
            answers={_key(name): [values] if isinstance(values, str) else list(values)
                     for name, values in (answers or {}).items()},
            cnames={_key(alias): target for alias, target in (cnames or {}).items()},
            servfail={_key(name) for name in servfail})
        self.handler: Handler = handler or self.zone.respond
        self.queries: list[Query] = []  # every well-formed query received, in order
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def bind(self) -> None:
        family = socket.AF_INET6 if ipaddress.ip_address(self.host).version == 6 else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.bind((self.host, self.port))
        self.port = int(self._sock.getsockname()[1])
        self._sock.settimeout(0.1)  # how often the loop looks at the stop flag

    def serve(self) -> None:
        """Answer until stop() (or forever, in the script)."""
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            try:
                query = parse_query(data)
            except ValueError:
                continue  # not a query we understand: a real server would say FORMERR
            self.queries.append(query)
            replies = list(self.handler(query))
            if self.delay > 0:
                # A timer per query: a slow answer must not hold up the ones after it.
                threading.Timer(self.delay, self._send, (replies, peer)).start()
            else:
                self._send(replies, peer)

    def _send(self, replies: Sequence[bytes], peer: tuple[str, int]) -> None:
        sock = self._sock
        for reply in replies:
            try:
                if sock is not None:
                    sock.sendto(reply, peer)
            except OSError:
                return  # the client went away, or the server is closing

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> DnsServer:
        self.bind()
        self._thread = threading.Thread(target=self.serve, daemon=True, name="test-dns-server")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _key(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _listen_address(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` or ``[V6ADDR]:PORT``."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.rpartition(":")
    ipaddress.ip_address(host)
    if not port.isdigit():
        raise ValueError(f"{text!r} has no port")
    return host, int(port)


def _pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            raise SystemExit(f"--{what} {value!r}: write it as NAME=VALUE")
        pairs.append((name, target))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A test DNS server over UDP (answers the names given).")
    parser.add_argument("--listen", required=True, help="ADDR:PORT or [V6ADDR]:PORT to bind")
    parser.add_argument("--answer", action="append", default=[], metavar="NAME=IP",
                        help="answer NAME with IP (A for IPv4, AAAA for IPv6); repeatable")
    parser.add_argument("--cname", action="append", default=[], metavar="ALIAS=NAME",
                        help="answer ALIAS with a CNAME to NAME, then NAME's addresses; repeatable")
    parser.add_argument("--servfail", action="append", default=[], metavar="NAME",
                        help="answer SERVFAIL for NAME; repeatable")
    parser.add_argument("--delay", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long before every answer")
    args = parser.parse_args(argv)
    try:
        host, port = _listen_address(args.listen)
    except ValueError as exc:
        parser.error(f"--listen: {exc}")
    answers: dict[str, list[str]] = {}
    for name, address in _pairs(args.answer, "answer"):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            parser.error(f"--answer {name}={address}: not an IP address")
        answers.setdefault(name, []).append(address)
    server = DnsServer(host, port, answers, cnames=dict(_pairs(args.cname, "cname")),
                       servfail=args.servfail, delay=args.delay)
    try:
        server.bind()
    except OSError as exc:
        print(f"cannot bind {args.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1

    def finish(signum: int, frame: types.FrameType | None) -> None:
        server._stop.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    print("ready", flush=True)
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
