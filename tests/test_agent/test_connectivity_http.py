"""HTTP(S) time to first byte (agent/probes/connectivity/httptiming.py) against real local
servers on 127.0.0.1: a small http.server that keeps connections alive unless told not
to and counts them, the same behind TLS with a self-signed certificate, and raw sockets
that misbehave."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from support.ndt7_server import self_signed_tls
from support.speed_servers import raw_server
from support.tools import free_port, require_tool

from agent import __version__
from agent.probes.connectivity.httptiming import MAX_BODY_BYTES, make_client, time_request


class Site(http.server.ThreadingHTTPServer):
    """The school's learning platform, as far as timing it goes."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), SiteHandler)
        self.tls = tls
        self.connections = 0
        self.requests: list[dict[str, str]] = []  # each request's headers, lowercased names
        self.body_bytes_sent = 0

    def get_request(self) -> tuple[socket.socket, object]:
        connection, peer = super().get_request()
        self.connections += 1
        if self.tls is not None:
            # The handshake runs in the handler's thread, on its first read.
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, peer

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that rejects our certificate or hangs up early is expected here."""

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


class SiteHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, unless the client says otherwise
    server: Site

    def do_GET(self) -> None:
        self.server.requests.append({key.lower(): value for key, value in self.headers.items()})
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/slow":
            time.sleep(float(query["delay"][0]))
        if parts.path == "/endless":
            self._endless()
            return
        status = {"/missing": 404, "/busy": 503, "/redirect": 302}.get(parts.path, 200)
        body = b"hello from the learning platform\n"
        self.send_response(status)
        if parts.path == "/redirect":
            self.send_header("Location", "/ok")
        if parts.path == "/cookie":
            self.send_header("Set-Cookie", "session=pupil-42; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _endless(self) -> None:
        """A body that never ends (a stream, a hung download): bounded at 10 s here."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = b"z" * 8192
        chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                # Counted before the write: the client may read a block and be checked
                # before this thread gets to count it.
                self.server.body_bytes_sent += len(block)
                self.wfile.write(chunk)
        except OSError:
            pass
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def site(tls: ssl.SSLContext | None = None) -> Iterator[Site]:
    server = Site(tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def plain() -> Iterator[Site]:
    with site() as server:
        yield server


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    return self_signed_tls(tmp_path_factory.mktemp("tls"), require_tool("openssl"))


# --- answers ----------------------------------------------------------------------------


def test_ok_and_not_found_both_count_as_an_answer(plain: Site) -> None:
    with make_client(2.0) as client:
        ok = time_request(client, plain.url + "/ok")
        missing = time_request(client, plain.url + "/missing")
    assert (ok.status, ok.error, missing.status, missing.error) == (200, None, 404, None)
    for outcome in (ok, missing):
        assert outcome.ttfb_seconds is not None and 0 < outcome.ttfb_seconds < 1
        assert outcome.connect_seconds is not None and 0 < outcome.connect_seconds <= outcome.ttfb_seconds
    assert ok.url == plain.url + "/ok"


def test_a_server_error_is_a_failure_with_its_status(plain: Site) -> None:
    with make_client(2.0) as client:
        outcome = time_request(client, plain.url + "/busy")
    assert (outcome.status, outcome.error) == (503, "HTTP 503")


def test_a_redirect_is_not_followed(plain: Site) -> None:
    with make_client(2.0) as client:
        outcome = time_request(client, plain.url + "/redirect")
    assert (outcome.status, outcome.error) == (302, None)
    assert len(plain.requests) == 1


def test_ttfb_includes_the_servers_delay_and_connect_does_not(plain: Site) -> None:
    with make_client(2.0) as client:
        outcome = time_request(client, plain.url + "/slow?delay=0.3")
    assert outcome.error is None
    assert outcome.ttfb_seconds is not None and 0.3 <= outcome.ttfb_seconds < 1.0
    assert outcome.connect_seconds is not None and outcome.connect_seconds < outcome.ttfb_seconds - 0.2


def test_every_request_opens_a_new_connection(plain: Site) -> None:
    """The HTTP/1.1 server would keep a connection open: we must not reuse it, so that
    every measurement pays the handshake a pupil's browser pays."""
    with make_client(2.0) as client:
        outcomes = [time_request(client, plain.url + "/ok") for _ in range(3)]
    assert [o.status for o in outcomes] == [200, 200, 200]
    assert all(o.connect_seconds is not None for o in outcomes)
    assert plain.connections == 3


def test_who_we_say_we_are_and_no_cookies_kept(plain: Site) -> None:
    with make_client(2.0) as client:
        time_request(client, plain.url + "/cookie")
        time_request(client, plain.url + "/ok")
    first, second = plain.requests
    assert first["user-agent"] == f"schoolnet-agent/{__version__} (connectivity)"
    assert first["connection"] == "close"
    assert "authorization" not in first
    assert "cookie" not in second  # the Set-Cookie of the first answer was not kept


def test_an_endless_body_is_cut_off_after_64_kib(plain: Site) -> None:
    """Reading stops after MAX_BODY_BYTES: without the cap this would read for 10 s."""
    began = time.monotonic()
    with make_client(5.0) as client:
        outcome = time_request(client, plain.url + "/endless")
    assert (outcome.status, outcome.error) == (200, None)
    assert time.monotonic() - began < 2.0  # not the server's 10 s, nor our 5 s timeout
    assert plain.body_bytes_sent >= MAX_BODY_BYTES


# --- failures, one line each -------------------------------------------------------------


def test_a_refused_port() -> None:
    with make_client(2.0) as client:
        outcome = time_request(client, f"http://127.0.0.1:{free_port()}/")
    assert outcome == type(outcome)(outcome.url, None, None, None, "connection refused")


def test_headers_later_than_the_timeout(plain: Site) -> None:
    began = time.monotonic()
    with make_client(0.3) as client:
        outcome = time_request(client, plain.url + "/slow?delay=1.5")
    assert outcome.status is None and outcome.ttfb_seconds is None
    assert outcome.error == "timeout after 0.3 s (waiting for the response)"
    assert outcome.connect_seconds is not None  # the connection was made: the server is slow
    assert time.monotonic() - began < 1.0


def test_not_http_at_all() -> None:
    def garbage(connection: socket.socket, request: bytes) -> None:
        connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")

    with raw_server(garbage) as url, make_client(2.0) as client:
        outcome = time_request(client, url + "/")
    assert outcome.status is None and outcome.ttfb_seconds is None
    assert outcome.error is not None and outcome.error.startswith("not a valid HTTP answer: ")


def test_an_invalid_url_is_said_so() -> None:
    with make_client(2.0) as client:
        outcome = time_request(client, "ftp://127.0.0.1/file")
    assert outcome.error is not None and outcome.error.startswith("invalid URL: ")


def test_a_missing_ca_bundle_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a file"):
        make_client(2.0, tmp_path / "missing.pem")


# --- TLS ----------------------------------------------------------------------------------


def test_https_with_a_trusted_certificate(certificate: tuple[Path, ssl.SSLContext]) -> None:
    bundle, context = certificate
    with site(context) as server, make_client(2.0, ca_bundle=bundle) as client:
        outcomes = [time_request(client, server.url + "/slow?delay=0.2") for _ in range(2)]
    for outcome in outcomes:
        assert (outcome.status, outcome.error) == (200, None)
        assert outcome.connect_seconds is not None and outcome.ttfb_seconds is not None
        # TCP and the TLS handshake, but not the server's think time.
        assert 0 < outcome.connect_seconds < 0.2 <= outcome.ttfb_seconds
    assert server.connections == 2  # a handshake for each


def test_https_with_an_untrusted_certificate(certificate: tuple[Path, ssl.SSLContext]) -> None:
    _, context = certificate
    with site(context) as server, make_client(2.0) as client:  # the system store only
        outcome = time_request(client, server.url + "/ok")
    assert outcome.status is None and outcome.ttfb_seconds is None
    assert outcome.error is not None and outcome.error.startswith("TLS certificate not trusted: ")
    assert outcome.error.endswith("give its CA in collector.ca_bundle")  # what a proxy would cause
    assert "\n" not in outcome.error and server.requests == []
    assert outcome.connect_seconds is None  # the connection was never made


def test_https_to_the_wrong_name(certificate: tuple[Path, ssl.SSLContext]) -> None:
    """The certificate is for 127.0.0.1, the URL says localhost: trusted issuer, wrong name,
    so the proxy hint would mislead."""
    bundle, context = certificate
    with site(context) as server, make_client(2.0, ca_bundle=bundle) as client:
        outcome = time_request(client, f"https://localhost:{server.server_address[1]}/ok")
    assert outcome.error is not None and outcome.error.startswith("TLS certificate not trusted: ")
    assert "localhost" in outcome.error and "ca_bundle" not in outcome.error


def test_https_to_a_plain_http_port(plain: Site) -> None:
    with make_client(2.0) as client:
        outcome = time_request(client, plain.url.replace("http://", "https://") + "/ok")
    assert (outcome.status, outcome.connect_seconds) == (None, None)
    assert outcome.error == "TLS handshake failed: the server does not speak TLS on this port"


def test_plain_http_to_a_tls_port(certificate: tuple[Path, ssl.SSLContext]) -> None:
    _, context = certificate
    with site(context) as server, make_client(1.0) as client:
        outcome = time_request(client, server.url.replace("https://", "http://") + "/ok")
    assert outcome.status is None
    assert outcome.error == "the server closed the connection without answering"
