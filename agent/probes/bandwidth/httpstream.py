"""HTTP/1.1 test streams over plain sockets, for the engine: downloads, uploads, pings.

Why not httpx here: in the hot loop every chunk would be a new ``bytes`` object, and
an upload would be counted when it is written into the socket buffer rather than when
the server has it. These streams read with ``recv_into`` into one buffer per stream,
send slices of one random block, and count an upload by the bytes the peer's TCP
acknowledged (Linux ``TCP_INFO``). Speed tests go straight to the server, never
through a proxy: through a proxy one would measure the proxy.

Used by the ``http`` backend (LibreSpeed-style paths) and by the ``speedtest`` backend
(Ookla's legacy paths).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agent.probes.bandwidth.backend import DirectionResult, Limits, TransferError
from agent.probes.bandwidth.engine import (
    RANDOM_BLOCK,
    Allowance,
    Stream,
    StreamDone,
    StreamOpener,
    measure,
)
from agent.probes.bandwidth.tcpinfo import tcp_info
from agent.transport import USER_AGENT, tls_context

BUFFER_BYTES = 256 * 1024
MAX_HEADER_BYTES = 64 * 1024
PING_INTERVAL_SECONDS = 0.25
MAX_PING_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class HttpEndpoint:
    """Where and how to reach one speed-test server over HTTP."""

    base_url: str  # scheme://host[:port][/prefix]
    download_path: str  # path and query; "{bytes}" becomes request_bytes
    upload_path: str
    ping_path: str
    request_bytes: int  # what one download asks for, and one upload's body
    headers: tuple[tuple[str, str], ...] = ()
    ca_bundle: Path | None = None
    stall_seconds: float = 5.0

    @property
    def parts(self) -> tuple[str, str, int, str]:
        """(scheme, host, port, path prefix)."""
        url = urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise TransferError(f"{self.base_url!r} is not an http:// or https:// URL")
        try:
            port = url.port or (443 if url.scheme == "https" else 80)
        except ValueError:
            raise TransferError(f"{self.base_url!r} has an invalid port") from None
        return url.scheme, url.hostname, port, url.path.rstrip("/")


def connect(endpoint: HttpEndpoint) -> socket.socket:
    scheme, host, port, _ = endpoint.parts
    try:
        sock = socket.create_connection((host, port), timeout=min(endpoint.stall_seconds, 10.0))
    except TimeoutError:
        raise TransferError(f"cannot connect to {host}:{port}: timed out") from None
    except OSError as exc:
        raise TransferError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    sock.settimeout(endpoint.stall_seconds)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if scheme == "https":
        try:
            sock = tls_context(endpoint.ca_bundle).wrap_socket(sock, server_hostname=host)
        except ssl.SSLError as exc:
            sock.close()
            raise TransferError(f"TLS with {host}:{port} failed: {exc.reason or exc}") from None
        except OSError as exc:
            sock.close()
            raise TransferError(f"TLS with {host}:{port} failed: {exc}") from None
    return sock


def request_head(endpoint: HttpEndpoint, method: str, path: str, length: int | None = None) -> bytes:
    _, host, port, prefix = endpoint.parts
    lines = [f"{method} {prefix}{path} HTTP/1.1", f"Host: {host}:{port}",
             f"User-Agent: {USER_AGENT}", "Accept-Encoding: identity", "Cache-Control: no-store"]
    lines += [f"{name}: {value}" for name, value in endpoint.headers]
    if length is not None:
        lines += ["Content-Type: application/octet-stream", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Response:
    status: int
    length: int | None  # Content-Length; None: read until the server closes
    keep_alive: bool
    body_start: bytes  # body bytes that came with the head
    head_bytes: int  # the status line and headers, as they came over the wire


def read_head(sock: socket.socket, what: str) -> Response:
    """Read a response head; the start of the body that came with it is returned too."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = _recv(sock, what)
        if not chunk:
            raise TransferError(f"{what}: the server closed the connection without an answer")
        data += chunk
        if len(data) > MAX_HEADER_BYTES:
            raise TransferError(f"{what}: the server's answer is not HTTP")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
        raise TransferError(f"{what}: the server's answer is not HTTP ({lines[0][:60]!r})")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length_text = headers.get("content-length")
    if length_text is not None and not length_text.isdigit():
        raise TransferError(f"{what}: the server sent a bad Content-Length {length_text[:20]!r}")
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length = int(length_text) if length_text is not None and not chunked else None
    if status_line[1] in ("204", "304"):
        length = 0  # no body, whatever the headers say (RFC 9110)
    keep_alive = (status_line[0] == "HTTP/1.1" and length is not None
                  and headers.get("connection", "").lower() != "close")
    return Response(int(status_line[1]), length, keep_alive, rest, len(head) + 4)


def _recv(sock: socket.socket, what: str) -> bytes:
    try:
        return sock.recv(65536)
    except TimeoutError:
        raise TransferError(f"{what}: the server stalled (no data in time)") from None
    except OSError as exc:
        raise TransferError(f"{what}: connection failed: {exc.strerror or exc}") from None


def read_rest(sock: socket.socket, response: Response, what: str) -> None:
    """Read (and drop) the rest of a short answer's body, so the connection can be reused."""
    body = len(response.body_start)
    while response.length is not None and body < response.length:
        chunk = _recv(sock, what)
        if not chunk:
            break
        body += len(chunk)


def refuse(response: Response, sock: socket.socket, what: str) -> TransferError:
    """The error for a non-2xx answer, naming the status and the start of its text."""
    detail = response.body_start[:200]
    try:
        if len(detail) < 200 and response.length:
            sock.settimeout(1.0)
            detail += sock.recv(200 - len(detail))
    except OSError:
        pass
    text = " ".join(detail.decode("utf-8", "replace").split())[:200]
    return TransferError(f"{what}: the server answered {response.status} {text}".rstrip())


class _Connection:
    """The socket of a stream, replaced when the server ends a connection; ``close``
    from another thread unblocks a pending ``recv_into``/``send``."""

    def __init__(self, endpoint: HttpEndpoint) -> None:
        self.endpoint = endpoint
        self.sock: socket.socket | None = None
        self.closed = threading.Event()

    def open(self) -> socket.socket:
        if self.closed.is_set():
            raise TransferError("stopped")
        self.sock = connect(self.endpoint)
        return self.sock

    def drop(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.closed.set()
        self.drop()


class DownloadStream:
    """Asks for ``request_bytes`` at a time (within the allowance) and counts the body
    bytes that arrive."""

    def __init__(self, endpoint: HttpEndpoint, allowance: Allowance) -> None:
        self.endpoint = endpoint
        self.allowance = allowance
        self.connection = _Connection(endpoint)
        self.buffer = memoryview(bytearray(BUFFER_BYTES))
        self.received_before = 0  # body bytes of connections already closed
        self.received_here = 0  # body bytes read on this connection
        self.heads_here = 0  # response heads on this connection (TCP counts them too)
        self.left: int | None = 0  # body bytes still due on this response; None: until EOF
        self.keep_alive = False

    def pump(self) -> None:
        sock = self.connection.sock
        if self.left == 0:
            self._ask()
            return
        assert sock is not None
        want = BUFFER_BYTES if self.left is None else min(BUFFER_BYTES, self.left)
        try:
            count = sock.recv_into(self.buffer, want)
        except TimeoutError:
            raise TransferError("download: the server stalled (no data in time)") from None
        except OSError as exc:
            raise TransferError(f"download: connection failed: {exc.strerror or exc}") from None
        if count == 0:
            if self.left is None:  # a response without a length ends here
                self.left, self.keep_alive = 0, False
                return
            raise TransferError(f"download: the server closed the connection with {self.left} "
                                "bytes of the answer still due")
        self.received_here += count
        if self.left is not None:
            self.left -= count

    def _ask(self) -> None:
        template = self.endpoint.download_path
        # A server that decides the size itself (Ookla's fixed files) is asked as it is;
        # its answer is what the allowance is charged.
        size = self.allowance.reserve(self.endpoint.request_bytes) if "{bytes}" in template else (
            1 if self.allowance.reserve(1) else 0)
        if size == 0:
            raise StreamDone
        # Connect only once there is something to ask for (and again when the server
        # ended the last connection).
        sock = self.connection.sock
        if sock is None or not self.keep_alive:
            self.connection.drop()
            self.received_before += self.received_here
            self.received_here = self.heads_here = 0
            sock = self.connection.open()
        try:
            sock.sendall(request_head(self.endpoint, "GET", template.replace("{bytes}", str(size))))
        except OSError as exc:
            raise TransferError(f"download: cannot send the request: {exc.strerror or exc}") from None
        response = read_head(sock, "download")
        if response.status != 200:
            raise refuse(response, sock, "download")
        self.heads_here += response.head_bytes
        self.keep_alive = response.keep_alive
        early = len(response.body_start)
        if response.length is not None and "{bytes}" not in template:
            self.allowance.reserve(response.length - 1)  # the server chose the size
        if response.length is not None:
            early = min(early, response.length)
            self.left = response.length - early
            if response.length == 0:
                raise TransferError("download: the server sent an empty answer")
        else:
            self.left = None
        self.received_here += early

    def moved(self) -> int:
        """What TCP received, when the OS says: bytes still waiting in the socket buffer
        have crossed the line too. Counting only what this thread has read would let a
        moment of GIL contention at the window's start inflate the rate a little."""
        sock = self.connection.sock
        info = tcp_info(sock) if sock is not None else None
        if info is None:
            return self.received_before + self.received_here
        arrived = info.bytes_received - self.heads_here
        if self.left is not None:
            # Never past the answer's end (the server's FIN counts one byte in TCP).
            arrived = min(arrived, self.received_here + self.left)
        return self.received_before + max(self.received_here, arrived)

    def retransmits(self) -> int | None:
        return None  # the server is the sender: its retransmits are not visible here

    def close(self) -> None:
        self.connection.close()


class UploadStream:
    """POSTs ``request_bytes`` at a time (within the allowance); counts what the
    server's TCP acknowledged."""

    def __init__(self, endpoint: HttpEndpoint, allowance: Allowance) -> None:
        self.endpoint = endpoint
        self.allowance = allowance
        self.connection = _Connection(endpoint)
        self.block = memoryview(RANDOM_BLOCK)
        self.left = 0  # body bytes of the current request still to send
        self.keep_alive = False
        self.acked_before = 0  # acknowledged on connections already closed
        self.retransmitted_before = 0
        self.written = 0  # fallback count where the OS has no TCP_INFO
        self.position = 0
        self.base = 0  # the connection's bytes_acked when it opened (the SYN counts one)

    def pump(self) -> None:
        sock = self.connection.sock
        if self.left == 0:
            if sock is not None and self.written:  # the body is out: the answer is due
                self._answer(sock)
            size = self.allowance.reserve(self.endpoint.request_bytes)
            if size == 0:
                raise StreamDone
            if sock is None or not self.keep_alive:
                self._retire()
                sock = self.connection.open()
                self.base = self._acked_now()
            try:
                sock.sendall(request_head(self.endpoint, "POST", self.endpoint.upload_path, size))
            except OSError as exc:
                raise TransferError(f"upload: cannot send the request: {exc.strerror or exc}") from None
            self.left = size
            self.keep_alive = True
            return
        assert sock is not None
        size = min(BUFFER_BYTES, self.left, len(self.block) - self.position)
        try:
            sent = sock.send(self.block[self.position : self.position + size])
        except TimeoutError:
            raise TransferError("upload: the server stopped reading (no progress in time)") from None
        except OSError as exc:
            raise TransferError(f"upload: connection failed: {exc.strerror or exc}") from None
        self.left -= sent
        self.written += sent
        self.position = (self.position + sent) % len(self.block)

    def _answer(self, sock: socket.socket) -> None:
        response = read_head(sock, "upload")
        if not 200 <= response.status < 300:
            raise refuse(response, sock, "upload")
        read_rest(sock, response, "upload")
        self.keep_alive = response.keep_alive

    def _acked_now(self) -> int:
        sock = self.connection.sock
        info = tcp_info(sock) if sock is not None else None
        return info.bytes_acked if info is not None else 0

    def _retire(self) -> None:
        sock = self.connection.sock
        info = tcp_info(sock) if sock is not None else None
        if info is not None:
            self.acked_before += max(0, info.bytes_acked - self.base)
            self.retransmitted_before += info.total_retransmits
        self.connection.drop()

    def moved(self) -> int:
        sock = self.connection.sock
        info = tcp_info(sock) if sock is not None else None
        if info is None:
            return self.acked_before if self.acked_before else self.written
        return self.acked_before + max(0, info.bytes_acked - self.base)

    def retransmits(self) -> int | None:
        sock = self.connection.sock
        info = tcp_info(sock) if sock is not None else None
        return None if info is None else self.retransmitted_before + info.total_retransmits

    def close(self) -> None:
        self.connection.close()


def download_opener(endpoint: HttpEndpoint, max_bytes: int) -> StreamOpener:
    """Streams for one download of at most ``max_bytes`` in all."""
    allowance = Allowance(max_bytes)

    def open_stream(index: int) -> Stream:
        return DownloadStream(endpoint, allowance)
    return open_stream


def upload_opener(endpoint: HttpEndpoint, max_bytes: int) -> StreamOpener:
    """Streams for one upload of at most ``max_bytes`` in all."""
    allowance = Allowance(max_bytes)

    def open_stream(index: int) -> Stream:
        return UploadStream(endpoint, allowance)
    return open_stream


def measure_direction(direction: str, endpoint: HttpEndpoint, limits: Limits,
                      idle_latency: float | None, pings: HttpEndpoint | None = None) -> DirectionResult:
    """One direction on the engine against ``endpoint``, with pings under load on
    ``pings`` (default: the same server) set against the idle round trip."""
    opener = download_opener if direction == "download" else upload_opener
    return measure(opener(endpoint, limits.max_bytes), limits, PingsUnderLoad(pings or endpoint),
                   idle_latency)


def ping_once(sock: socket.socket, endpoint: HttpEndpoint) -> float:
    """One request on an open keep-alive connection: its round trip, seconds."""
    started = time.perf_counter()
    sock.sendall(request_head(endpoint, "GET", endpoint.ping_path))
    response = read_head(sock, "ping")
    if response.status >= 400:
        raise refuse(response, sock, "ping")
    if response.length is None or response.length > MAX_PING_BODY_BYTES:
        # Not a ping endpoint (a download, say): its body is not a round trip.
        raise TransferError("ping: the server's answer is not an empty or short one")
    read_rest(sock, response, "ping")
    elapsed = time.perf_counter() - started
    if not response.keep_alive:
        raise _Reconnect(elapsed)
    return elapsed


class _Reconnect(Exception):
    """The ping answered but the server closed the connection: measured, then reconnect."""

    def __init__(self, elapsed: float) -> None:
        self.elapsed = elapsed


def idle_ping(endpoint: HttpEndpoint, count: int = 5) -> float:
    """Median of a few request round trips on one connection (its set-up not counted).
    A lost ping does not void the others."""
    times: list[float] = []
    problem = "no answer"
    sock: socket.socket | None = None
    for _ in range(count):
        try:
            if sock is None:
                sock = connect(endpoint)
            times.append(ping_once(sock, endpoint))
        except _Reconnect as answered:
            times.append(answered.elapsed)
            if sock is not None:
                sock.close()
            sock = None
        except (TransferError, OSError) as exc:
            problem = str(exc)
            if sock is not None:
                sock.close()
            sock = None
    if sock is not None:
        sock.close()
    if not times:
        raise TransferError(f"ping failed: {problem}")
    return statistics.median(times)


class PingsUnderLoad:
    """Request round trips on a connection of their own while the streams run: what a
    video call in the classroom would feel (bufferbloat)."""

    def __init__(self, endpoint: HttpEndpoint) -> None:
        self.endpoint = endpoint
        self.stopped = threading.Event()
        self.times: list[float] = []
        self.connection = _Connection(endpoint)
        self.thread = threading.Thread(target=self._run, daemon=True, name="bandwidth-pings")

    def start(self) -> None:
        self.thread.start()

    def recent(self) -> float | None:
        last = self.times[-3:]
        return statistics.median(last) if last else None

    def stop(self) -> list[float]:
        self.stopped.set()
        self.connection.close()  # a ping waiting for its answer ends now
        self.thread.join(timeout=self.endpoint.stall_seconds + 1)
        return list(self.times)

    def _run(self) -> None:
        while not self.stopped.wait(PING_INTERVAL_SECONDS):
            try:
                sock = self.connection.sock or self.connection.open()
                self.times.append(ping_once(sock, self.endpoint))
            except _Reconnect as answered:
                self.times.append(answered.elapsed)
                self.connection.drop()
            except (TransferError, OSError):
                # A ping lost under load is part of the picture, not a failure of the test.
                self.connection.drop()
        self.connection.drop()
