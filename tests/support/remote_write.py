"""A remote_write receiver for tests: an independent protobuf decoder of WriteRequest (not
the collector's encoder run backwards) and a local HTTP server that answers as told."""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cramjam

Series = tuple[dict[str, str], list[tuple[float, int]]]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes) -> list[tuple[int, Any]]:
    """(field number, value) of a message: ints for varints, bytes for length-delimited,
    bytes(8) for fixed64; any other wire type is an error here."""
    out: list[tuple[int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        else:
            raise ValueError(f"unexpected wire type {wire}")
        out.append((number, value))
    if pos != len(data):
        raise ValueError("message overruns its buffer")
    return out


def decode_write_request(body: bytes, compressed: bool = True) -> list[Series]:
    """A WriteRequest as [(labels, [(value, timestamp ms)])]."""
    data = bytes(cramjam.snappy.decompress_raw(body)) if compressed else body
    result: list[Series] = []
    for number, ts in _fields(data):
        assert number == 1
        labels: dict[str, str] = {}
        samples: list[tuple[float, int]] = []
        for part, value in _fields(ts):
            if part == 1:
                label = dict(_fields(value))
                labels[label.get(1, b"").decode()] = label.get(2, b"").decode()
            elif part == 2:
                sample = dict(_fields(value))
                timestamp = sample.get(2, 0)
                if timestamp >= 1 << 63:
                    timestamp -= 1 << 64
                samples.append((struct.unpack("<d", sample.get(1, bytes(8)))[0], timestamp))
        result.append((labels, samples))
    return result


@dataclass
class Receiver:
    """A local remote_write endpoint. ``answers``: what to answer next, in turn, as
    (status, headers, delay seconds); once they are used up, 204. Every request is kept."""

    answers: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], list[Series]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/write"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, headers, delay = (receiver.answers.pop(0) if receiver.answers
                                          else (204, {}, 0.0))
                if delay:
                    time.sleep(delay)
                if 200 <= status < 300:
                    receiver.requests.append((dict(self.headers), decode_write_request(body)))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def samples(self) -> dict[tuple[tuple[str, str], ...], list[tuple[float, int]]]:
        """Every accepted sample by series (sorted labels)."""
        out: dict[tuple[tuple[str, str], ...], list[tuple[float, int]]] = {}
        for _, request in self.requests:
            for labels, samples in request:
                out.setdefault(tuple(sorted(labels.items())), []).extend(samples)
        return out
