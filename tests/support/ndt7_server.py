"""A real ndt7 server for tests, on 127.0.0.1, and a mock of M-Lab's locate service (v2).

The server speaks the protocol as m-lab/ndt-server does: a WebSocket upgrade with the
subprotocol ``net.measurementlab.ndt.v7`` on ``/ndt/v7/download`` (binary messages of
random data, scaled from 8 KiB up as the bytes sent grow) and ``/ndt/v7/upload`` (it reads
and counts), and about every 250 ms a text Measurement with AppInfo, ConnectionInfo and
TCPInfo read from its own socket's TCP_INFO (so BytesReceived on upload is the kernel's
count). ``Behaviour`` holds the knobs for misbehaviour and for rate limits; ``served``
records what each connection did, for the tests' assertions.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import ssl
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from agent.probes.bandwidth.tcpinfo import TCP_INFO, tcp_info

SUBPROTOCOL = "net.measurementlab.ndt.v7"
DOWNLOAD_PATH = "/ndt/v7/download"
UPLOAD_PATH = "/ndt/v7/upload"
LOCATE_PATH = "/v2/nearest/ndt/ndt7"
RATE_LIMITED_RECEIVE_BUFFER = 256 * 1024


@dataclass
class Behaviour:
    """How the server behaves; change it between tests (it is read per connection)."""

    duration: float = 10.0  # seconds each direction lasts (the spec's ten)
    rate: float | None = None  # bytes per second it sends (download) or reads from its socket
    max_message_size: int = 1 << 20  # download messages scale up to this
    measurement_interval: float = 0.25
    handshake: Literal["ok", "500", "no-subprotocol"] = "ok"
    require_token: str | None = None  # answer 401 unless ?access_token= this
    close_after_bytes: int | None = None  # drop the TCP connection (no WebSocket close)
    stall_after_bytes: int | None = None  # stop sending/reading, connection left open
    garbage: Literal["text", "shape"] | None = None  # measurements replaced by non-ndt7 text
    report: Literal["tcpinfo", "appinfo", "none"] = "tcpinfo"  # upload: which counts it sends
    report_scale: float = 1.0  # upload: reported byte counts multiplied (an under-counting server)
    binary_during_upload: bool = False  # forbidden by the spec


@dataclass
class Served:
    """What one test connection did."""

    direction: str
    path: str
    binary_bytes: int = 0  # binary message payload sent (download) or received (upload)
    text_bytes: int = 0  # text message bytes sent (download)
    reported_bytes: list[int] = field(default_factory=list)  # byte counts in its measurements
    message_sizes: list[int] = field(default_factory=list)  # upload: sizes received, in order
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Seen:
    """One HTTP request the server got (upgraded or refused)."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class Ndt7Server:
    """``with Ndt7Server(Behaviour(...)) as server: server.url`` — ws://127.0.0.1:PORT, or
    wss:// when given a TLS context."""

    def __init__(self, behaviour: Behaviour | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.tls = tls
        self.requests: list[Seen] = []
        self.served: list[Served] = []
        self._stop = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    def __enter__(self) -> Ndt7Server:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.behaviour.rate:
            # A fixed receive buffer (set before listen, inherited by every connection) turns
            # the kernel's autotuning off: it fills in the first fraction of a second, then
            # the kernel's count of bytes received grows exactly as fast as we read.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RATE_LIMITED_RECEIVE_BUFFER)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        self._server = serve(
            self._handle, sock=listener, ssl=self.tls, compression=None,
            process_request=self._process_request, select_subprotocol=self._select_subprotocol,
            # One frame queued at most: like ndt-server, which reads as data comes, so that
            # what the kernel received is what we read plus the socket buffer, no more.
            max_size=1 << 24, max_queue=1, ping_interval=None, close_timeout=2,
            create_connection=self._connection_class(),
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="ndt7-test-server")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._thread.join(timeout=10)

    def _connection_class(self) -> type[ServerConnection]:
        server = self

        class PacedConnection(ServerConnection):
            """Reads its socket no faster than ``behaviour.rate``: the upload's limit sits
            under the WebSocket layer, as a slow line would, so the kernel's BytesReceived
            follows it (whole frames buffered above would drift as the client's messages
            grow)."""

            def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
                super().__init__(cast(socket.socket, _PacedSocket(sock, server)), *args, **kwargs)

        return PacedConnection

    # --- the handshake ---

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        query = parse_qs(parts.query)
        self.requests.append(Seen(parts.path, query, {k.lower(): v for k, v in request.headers.raw_items()}))
        behaviour = self.behaviour
        if behaviour.handshake == "500":
            return connection.respond(500, "internal error\n")
        if parts.path not in (DOWNLOAD_PATH, UPLOAD_PATH):
            return connection.respond(404, "not found\n")
        if behaviour.require_token is not None and query.get("access_token") != [behaviour.require_token]:
            return connection.respond(401, "missing or wrong access token\n")
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        if SUBPROTOCOL not in [item.strip() for item in offered.split(",")]:
            return connection.respond(400, "the ndt7 subprotocol is required\n")  # as the spec says
        return None

    def _select_subprotocol(self, connection: ServerConnection,
                            offered: Sequence[Subprotocol]) -> Subprotocol | None:
        if self.behaviour.handshake == "no-subprotocol":
            return None
        return Subprotocol(SUBPROTOCOL) if SUBPROTOCOL in offered else None

    # --- the two subtests ---

    def _handle(self, ws: ServerConnection) -> None:
        path = urlsplit(ws.request.path if ws.request else "").path
        served = Served("download" if path == DOWNLOAD_PATH else "upload", path)
        self.served.append(served)
        try:
            if served.direction == "download":
                self._download(ws, served)
            else:
                self._upload(ws, served)
        except (ConnectionClosed, OSError):
            pass  # the client went away: its side of the test decides what that means
        finally:
            served.done.set()

    def _download(self, ws: ServerConnection, served: Served) -> None:
        behaviour = self.behaviour
        payload = memoryview(os.urandom(behaviour.max_message_size))
        size = min(1 << 13, behaviour.max_message_size)
        started = time.perf_counter()
        next_report = started + behaviour.measurement_interval
        while not self._stop.is_set() and time.perf_counter() - started < behaviour.duration:
            sent = served.binary_bytes
            if behaviour.close_after_bytes is not None and sent >= behaviour.close_after_bytes:
                _drop(ws)
                return
            if behaviour.stall_after_bytes is not None and sent >= behaviour.stall_after_bytes:
                self._hold(ws, read=True)
                _drop(ws)
                return
            ws.send(payload[:size])
            served.binary_bytes += size
            if behaviour.rate:
                _sleep_until(started + served.binary_bytes / behaviour.rate)
            now = time.perf_counter()
            if now >= next_report:
                text = self._measurement(ws, served, "download", now - started, served.binary_bytes)
                if text is not None:
                    ws.send(text)
                    served.text_bytes += len(text.encode())
                next_report = now + behaviour.measurement_interval
            if size < behaviour.max_message_size and size * 16 <= served.binary_bytes:
                size = min(size * 2, behaviour.max_message_size)
        ws.close()

    def _upload(self, ws: ServerConnection, served: Served) -> None:
        behaviour = self.behaviour
        started = time.perf_counter()
        next_report = started + behaviour.measurement_interval
        while not self._stop.is_set() and time.perf_counter() - started < behaviour.duration:
            received = served.binary_bytes
            if behaviour.close_after_bytes is not None and received >= behaviour.close_after_bytes:
                _drop(ws)
                return
            if behaviour.stall_after_bytes is not None and received >= behaviour.stall_after_bytes:
                self._hold(ws, read=False)
                _drop(ws)  # our unread queue would keep a polite close waiting for its timeout
                return
            try:
                message = ws.recv(timeout=0.05)
            except TimeoutError:
                message = None
            if isinstance(message, bytes):
                served.binary_bytes += len(message)
                served.message_sizes.append(len(message))
            now = time.perf_counter()
            if now >= next_report:
                if behaviour.report != "none":
                    text = self._measurement(ws, served, "upload", now - started, served.binary_bytes)
                    if text is not None:
                        ws.send(text)
                if behaviour.binary_during_upload:
                    ws.send(b"\0" * 1024)
                next_report = now + behaviour.measurement_interval
        _close_reading(ws)

    def _hold(self, ws: ServerConnection, read: bool) -> None:
        """Stall: neither send nor (when ``read`` is false) read, until the client gives up
        or the server stops; at most 15 s."""
        deadline = time.monotonic() + 15
        while not self._stop.is_set() and time.monotonic() < deadline:
            if read:
                try:
                    ws.recv(timeout=0.05)  # only the client's close can come
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    return
            else:
                self._stop.wait(0.05)

    def _measurement(self, ws: ServerConnection, served: Served, test: str, elapsed: float,
                     app_bytes: int) -> str | None:
        """A Measurement as ndt-server sends it, from this connection's real TCP_INFO."""
        behaviour = self.behaviour
        if behaviour.garbage == "text":
            return "this is not JSON {"
        if behaviour.garbage == "shape":
            return json.dumps({"TCPInfo": "fast", "AppInfo": [1, 2]})
        info = tcp_info(ws.socket)
        extra = _more_tcp_info(ws.socket)
        microseconds = int(elapsed * 1e6)
        scale = behaviour.report_scale if test == "upload" else 1.0
        message: dict[str, Any] = {
            "AppInfo": {"ElapsedTime": microseconds, "NumBytes": int(app_bytes * scale)},
            "ConnectionInfo": {"Client": _address(ws.remote_address), "Server": _address(ws.local_address),
                               "UUID": str(uuid.uuid4())},
            "Origin": "server",
            "Test": test,
        }
        if info is not None and not (test == "upload" and behaviour.report == "appinfo"):
            message["TCPInfo"] = {
                "BytesAcked": info.bytes_acked, "BytesReceived": int(info.bytes_received * scale),
                "RTT": int(info.rtt_seconds * 1e6), "TotalRetrans": info.total_retransmits,
                "ElapsedTime": microseconds, **extra,
            }
        if test == "upload":
            served.reported_bytes.append(message["TCPInfo"]["BytesReceived"] if "TCPInfo" in message
                                         else message["AppInfo"]["NumBytes"])
        return json.dumps(message)


def _more_tcp_info(sock: socket.socket) -> dict[str, int]:
    """MinRTT and BytesSent, which agent's tcpinfo does not read (struct tcp_info offsets
    148 and 200, Linux 4.6 and 4.19)."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 232)
    except OSError:
        return {}
    found: dict[str, int] = {}
    if len(raw) >= 152:
        found["MinRTT"] = struct.unpack_from("=I", raw, 148)[0]
    if len(raw) >= 208:
        found["BytesSent"] = struct.unpack_from("=Q", raw, 200)[0]
    return found


def _address(address: Any) -> str:
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


def _drop(ws: ServerConnection) -> None:
    """End the TCP connection without a WebSocket close: a server that died mid-test."""
    with contextlib.suppress(OSError):
        ws.socket.shutdown(socket.SHUT_RDWR)


def _close_reading(ws: ServerConnection) -> None:
    """End the upload as ndt-server does: send the close frame and keep reading (and
    discarding) until the client's close frame arrives behind its last data."""
    closer = threading.Thread(target=ws.close, daemon=True, name="ndt7-test-close")
    closer.start()
    deadline = time.monotonic() + 5
    while closer.is_alive() and time.monotonic() < deadline:
        try:
            ws.recv(timeout=0.05)
        except TimeoutError:
            continue
        except ConnectionClosed:
            break
    closer.join(5)


class _PacedSocket:
    """A socket whose reads are paced to the server's current ``behaviour.rate``."""

    def __init__(self, sock: socket.socket, server: Ndt7Server) -> None:
        self._sock = sock
        self._server = server
        self._started = time.perf_counter()
        self._read = 0

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        rate = self._server.behaviour.rate
        if rate:
            self._read += len(data)
            _sleep_until(self._started + self._read / rate)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


# --- M-Lab's locate service ---------------------------------------------------------

LocateMode = Literal["ok", "500", "garbage", "empty", "no-capacity", "shape"]


class LocateMock:
    """``GET /v2/nearest/ndt/ndt7`` answering in the v2 format, one result per entry of
    ``results``; an entry is a server, or several (one per URL scheme) for one machine.
    Each URL carries ``?access_token=TOKEN``."""

    def __init__(self, results: Sequence[Ndt7Server | tuple[Ndt7Server, ...]], token: str = "tok-SECRET-42",
                 mode: LocateMode = "ok") -> None:
        self.results = [entry if isinstance(entry, tuple) else (entry,) for entry in results]
        self.token = token
        self.mode = mode
        self.requests: list[dict[str, str]] = []  # the headers of each request
        mock = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                mock.requests.append({k.lower(): v for k, v in self.headers.items()})
                status, body, kind = mock._answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{LOCATE_PATH}"

    def __enter__(self) -> LocateMock:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="locate-mock")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _answer(self, path: str) -> tuple[int, bytes, str]:
        if urlsplit(path).path != LOCATE_PATH:
            return 404, b"not found\n", "text/plain"
        if self.mode == "500":
            return 500, b"internal error\n", "text/plain"
        if self.mode == "garbage":
            return 200, b"<html>captive portal: please log in</html>", "text/html"
        body: Any
        if self.mode == "empty":
            body = {"results": []}
        elif self.mode == "no-capacity":
            body = {}
        elif self.mode == "shape":
            body = {"results": "mlab1-test01"}
        else:
            body = {"results": [self._result(index, servers) for index, servers in enumerate(self.results)]}
        return 200, json.dumps(body).encode(), "application/json"

    def _result(self, index: int, servers: tuple[Ndt7Server, ...]) -> dict[str, Any]:
        urls: dict[str, str] = {}
        for server in servers:
            scheme = "wss" if server.tls else "ws"
            for path in (DOWNLOAD_PATH, UPLOAD_PATH):
                urls[f"{scheme}://{path}"] = f"{server.url}{path}?access_token={self.token}"
        return {"machine": f"mlab{index + 1}-tst0{index + 1}.mlab-test.measurement-lab.org",
                "location": {"city": "Testdorp", "country": "NL"}, "urls": urls}


# --- TLS ----------------------------------------------------------------------------


def self_signed_tls(directory: Path, openssl: str) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 made with the real openssl, and a server context for it.
    Returns the certificate (the CA bundle a client must be given) and the context."""
    certificate, key = directory / "ndt7-test-cert.pem", directory / "ndt7-test-key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True, timeout=60,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    return certificate, context
