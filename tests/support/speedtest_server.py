"""A local stand-in for speedtest.net and its Ookla servers, on 127.0.0.1 only.

What speedtest-cli 2.1.3 asks for, answered from here:

- ``/speedtest-config.php`` (the configuration: the client's location, test lengths,
  upload sizes) and ``/speedtest-servers-static.php`` / ``/speedtest-servers.php`` (the
  server list, with lat/lon so speedtest-cli's distance sort works), on any host;
- on each listed server: ``/speedtest/latency.txt`` ("test=test"),
  ``/speedtest/random{N}x{N}.jpg`` (random, incompressible bytes of the sizes real
  Ookla servers serve, streamed with Content-Length and keep-alive) and
  ``/speedtest/upload.php`` (the body discarded, answered "size=N").

speedtest-cli names www.speedtest.net and c.speedtest.net itself; its urllib opener
honours ``http_proxy``, so pointing ``http_proxy`` here makes it send absolute-URI
requests (``GET http://www.speedtest.net/speedtest-config.php HTTP/1.1``) that this
server answers by path, as a proxy would, without ever resolving or contacting the
host named. HTTPS through a proxy (``CONNECT``) is refused: tests run speedtest-cli
with ``secure = false``, so everything is plain HTTP to loopback. Every request is
logged (``requests``), so a test can prove that nothing went anywhere else.

Each listed server is a listener of its own on 127.0.0.1 (its own port); the first one
also serves the configuration and lists, and is the proxy. Knobs make it misbehave
the ways the backend must survive (see ``SpeedtestServer``).

Run by hand, for the benchmark or a look with the real command-line tool::

    .venv-test/bin/python tests/support/speedtest_server.py
    http_proxy=http://127.0.0.1:PORT no_proxy=127.0.0.1 .venv-test/bin/speedtest-cli --json --server 10001

(``no_proxy=127.0.0.1`` sends speedtest-cli's own transfers straight to the server, as
the agent's go; without it urllib sends them through the proxy too, which also works.)
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# The files every Ookla server has for the legacy HTTP test, and their sizes in bytes
# (the same on every server; speedtest-cli asks for 350 up to 4000).
RANDOM_SIZES = {
    350: 245_388, 500: 505_544, 750: 1_118_012, 1000: 1_986_284, 1500: 4_468_241,
    2000: 7_907_740, 2500: 12_407_926, 3000: 17_816_816, 3500: 24_262_167, 4000: 31_625_365,
}
# Streamed over and over: random, so nothing on the way can compress it.
RANDOM_BLOCK = os.urandom(1024 * 1024)
READ_BYTES = 256 * 1024
RANDOM_PATH = re.compile(r"^/speedtest/random(\d+)x(\d+)\.jpg$")


@dataclass(frozen=True)
class ListedServer:
    """One entry of the server list (what speedtest.net says about an Ookla server)."""

    id: int
    sponsor: str
    name: str
    lat: float
    lon: float
    country: str = "Netherlands"
    cc: str = "NL"
    latency_delay: float = 0.0  # seconds latency.txt waits before answering


# The client's location (Utrecht) and three servers: nearest first by distance.
CLIENT_LAT_LON = (52.09, 5.12)
DEFAULT_SERVERS = (
    ListedServer(10001, "Loopback Amsterdam", "Amsterdam", 52.37, 4.89),
    ListedServer(10002, "Loopback Rotterdam", "Rotterdam", 51.92, 4.48),
    ListedServer(10003, "Loopback Groningen", "Groningen", 53.22, 6.57),
)


@dataclass(frozen=True)
class LoggedRequest:
    port: int  # the listener that received it
    method: str
    target: str  # as sent: an absolute URI when it came as a proxy request
    path: str
    proxied_host: str | None  # the host named in an absolute URI (never contacted)
    headers: dict[str, str]


@dataclass
class SpeedtestServer:
    """The local speedtest.net and its servers. Use as a context manager.

    Knobs (set before or during a test):
    - ``servers``: the list entries (empty: a list with no servers);
    - ``config_status`` / ``config_body``: what the configuration request gets (e.g. 403,
      or bytes that are not Ookla's XML); ``servers_body`` the same for the server list;
    - ``upload_status``: upload.php reads the body, then answers this (e.g. 500);
    - ``download_cut_after``: a download closes the connection after this many body bytes;
    - ``download_stall_after``: a download stops sending (keeping the connection open)
      after this many body bytes, until the server stops;
    - ``test_length``: the download and upload test lengths the configuration gives
      speedtest-cli's own transfer (seconds).
    """

    servers: tuple[ListedServer, ...] = DEFAULT_SERVERS
    config_status: int = 200
    config_body: bytes | None = None
    servers_body: bytes | None = None
    upload_status: int = 200
    download_cut_after: int | None = None
    download_stall_after: int | None = None
    test_length: int = 10
    # Where to listen (a benchmark runs it inside a network namespace, on that address);
    # ``port_wanted`` is the first listener's, the proxy's (0: any free port).
    host: str = "127.0.0.1"
    port_wanted: int = 0
    requests: list[LoggedRequest] = field(default_factory=list)
    uploaded_bytes: int = 0
    downloaded_bytes: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listeners: list[_Listener] = []
        self._threads: list[threading.Thread] = []

    # -- life cycle --------------------------------------------------------------------

    def __enter__(self) -> SpeedtestServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        # One listener per listed server (at least one: it also serves config and lists).
        for index in range(max(1, len(self.servers))):
            listener = _Listener((self.host, self.port_wanted if index == 0 else 0), _Handler)
            listener.owner, listener.index = self, index
            self._listeners.append(listener)
        for listener in self._listeners:
            thread = threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.05},
                                      daemon=True, name=f"speedtest-server-{listener.port}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled downloads and delayed pings
        for listener in self._listeners:
            listener.shutdown()
            listener.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- what tests point things at ----------------------------------------------------

    @property
    def port(self) -> int:
        return self._listeners[0].port

    @property
    def proxy_url(self) -> str:
        """For http_proxy/https_proxy: speedtest.net's requests come here."""
        return f"http://{self.host}:{self.port}"

    def server_port(self, index: int) -> int:
        return self._listeners[index].port

    def server_url(self, index: int) -> str:
        """The upload URL of listed server ``index``, as the server list gives it."""
        return f"http://{self.host}:{self._listeners[index].port}/speedtest/upload.php"

    @property
    def server_urls(self) -> list[str]:
        return [self.server_url(index) for index in range(len(self.servers))]

    def requests_to(self, path_suffix: str) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]

    # -- the documents -----------------------------------------------------------------

    def config_xml(self) -> bytes:
        lat, lon = CLIENT_LAT_LON
        length = self.test_length
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<settings>\n'
            f'<client ip="127.0.0.1" lat="{lat}" lon="{lon}" isp="Loopback" isprating="3.7" '
            'rating="0" ispdlavg="0" ispulavg="0" loggedin="0" country="NL"/>\n'
            '<server-config threadcount="4" ignoreids="" notonmap="" forcepingid="" '
            'preferredserverid=""/>\n'
            '<times dl1="5000000" dl2="35000000" dl3="800000000" ul1="1000000" ul2="8000000" '
            'ul3="35000000"/>\n'
            f'<download testlength="{length}" initialtest="250K" mintestsize="250K" '
            'threadsperurl="4"/>\n'
            f'<upload testlength="{length}" ratio="5" initialtest="0" mintestsize="32K" threads="2" '
            'maxchunksize="512K" maxchunkcount="50" threadsperurl="4"/>\n'
            '<latency testlength="10" waittime="50" timeout="20"/>\n'
            '</settings>\n'
        ).encode()

    def servers_xml(self) -> bytes:
        lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<settings>", "<servers>"]
        for index, server in enumerate(self.servers):
            port = self._listeners[index].port
            lines.append(
                f'<server url="{self.server_url(index)}" lat="{server.lat}" lon="{server.lon}" '
                f'name="{server.name}" country="{server.country}" cc="{server.cc}" '
                f'sponsor="{server.sponsor}" id="{server.id}" host="{self.host}:{port}"/>')
        lines += ["</servers>", "</settings>", ""]
        return "\n".join(lines).encode()

    def _log(self, request: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _count(self, *, uploaded: int = 0, downloaded: int = 0) -> None:
        with self._lock:
            self.uploaded_bytes += uploaded
            self.downloaded_bytes += downloaded


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: SpeedtestServer
    index: int

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-body is how every speed test ends: not worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Ookla's servers do
    server: _Listener

    def setup(self) -> None:
        super().setup()
        # A head and a short body go out as separate writes: without this, Nagle's
        # algorithm and the client's delayed ACK would add 40 ms to every ping.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return  # the request log is kept in SpeedtestServer.requests

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_CONNECT(self) -> None:
        self.body_read = False
        self._record(self.path, None)
        self._answer(405, b"this local proxy speaks plain HTTP only: run with secure = false\n")
        self.close_connection = True

    def _record(self, path: str, host: str | None) -> None:
        self.server.owner._log(LoggedRequest(self.server.port, self.command, self.path, path, host,
                                             {k: v for k, v in self.headers.items()}))

    def _route(self) -> None:
        owner, me = self.server.owner, self.server.index
        self.body_read = False
        target = urlsplit(self.path)
        # An absolute URI is a proxy request: answered here by its path, never forwarded.
        host = target.netloc if target.scheme else None
        path = target.path
        self._record(path, host)
        if path.endswith("/speedtest-config.php"):
            self._answer(owner.config_status, owner.config_body or owner.config_xml(), "text/xml")
        elif path.endswith(("/speedtest-servers-static.php", "/speedtest-servers.php")):
            self._answer(200, owner.servers_body or owner.servers_xml(), "text/xml")
        elif path == "/speedtest/latency.txt":
            delay = owner.servers[me].latency_delay if me < len(owner.servers) else 0.0
            if delay and owner._stopping.wait(delay):
                return
            self._answer(200, b"test=test\n", "text/plain")
        elif (match := RANDOM_PATH.match(path)) and self.command == "GET":
            side, other = int(match.group(1)), int(match.group(2))
            if side != other or side not in RANDOM_SIZES:
                self._answer(404, b"no such file\n")
            else:
                self._stream(RANDOM_SIZES[side])
        elif path == "/speedtest/upload.php" and self.command == "POST":
            self._upload()
        else:
            self._answer(404, b"not found\n")

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self._discard_body()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def _discard_body(self) -> int:
        """Read and drop the request body (once); the number of bytes that came."""
        if self.body_read:
            return 0
        self.body_read = True
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # not spoken here: do not guess where the next request starts
        buffer = memoryview(bytearray(READ_BYTES))
        left = length
        while left > 0:
            count = self.rfile.readinto(buffer[: min(left, READ_BYTES)])
            if not count:
                self.close_connection = True
                break
            left -= count
        return length - left

    def _stream(self, size: int) -> None:
        owner = self.server.owner
        cut, stall = owner.download_cut_after, owner.download_stall_after
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(size))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        # Misbehaviour knobs: the body ends early, by a hang-up or by a stall.
        limit = min([size] + [n for n in (cut, stall) if n is not None])
        block = memoryview(RANDOM_BLOCK)
        sent = 0
        try:
            while sent < limit:
                count = min(len(block), limit - sent)
                self.wfile.write(block[:count])
                sent += count
                owner._count(downloaded=count)
        except OSError:
            self.close_connection = True  # the client went away: a finished test does that
            return
        if sent < size and cut is not None and sent >= cut:
            self._hang_up()
        elif sent < size:
            owner._stopping.wait()  # no more data, the connection left open
            self.close_connection = True

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _upload(self) -> None:
        owner = self.server.owner
        received = self._discard_body()
        owner._count(uploaded=received)
        if owner.upload_status != 200:
            self._answer(owner.upload_status, b"Internal Server Error\n")
            return
        self._answer(200, f"size={received}".encode())


def main() -> None:
    """Serve until interrupted; print what to point speedtest-cli (or the agent) at."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test-length", type=int, default=10,
                        help="speedtest-cli's download and upload test length, seconds (default 10)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="the proxy's port (default: any free one)")
    args = parser.parse_args()
    with SpeedtestServer(test_length=args.test_length, host=args.host, port_wanted=args.port) as server:
        print(f"http_proxy={server.proxy_url}", flush=True)
        for listed, url in zip(server.servers, server.server_urls, strict=True):
            print(f"server {listed.id} {url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
