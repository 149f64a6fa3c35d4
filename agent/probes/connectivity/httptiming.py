"""HTTP(S) time to first byte of a service the school depends on (the learning platform,
the student administration), and how long setting up the connection took.

Like blackbox_exporter's http probe: a new connection for every request, so each
measurement includes the name lookup, the TCP handshake and the TLS handshake a pupil's
browser pays too, and a status below 500 counts as an answer (a 403 or a 404 still proves
the service is there; a 5xx says it is broken).
"""

from __future__ import annotations

import errno
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx

from agent.transport import USER_AGENT, tls_context

# Enough of the body to be a polite client; the measurement ends with the headers.
MAX_BODY_BYTES = 64 * 1024
CHUNK_BYTES = 16 * 1024

# OpenSSL's verify codes for "signed by a CA we do not have" (self-signed, or an unknown
# issuer): what a TLS-inspecting school proxy causes, until its CA is given to the agent.
UNKNOWN_ISSUER_CODES = {18, 19, 20, 21}
PROXY_HINT = "; if the school's proxy inspects TLS, give its CA in collector.ca_bundle"


@dataclass(frozen=True)
class HttpOutcome:
    url: str
    status: int | None
    connect_seconds: float | None  # name lookup + TCP connect + TLS handshake
    ttfb_seconds: float | None  # from starting the request to the response headers
    error: str | None  # None: an answer with a status below 500


def make_client(timeout: float, ca_bundle: Path | None = None) -> httpx.Client:
    """A client for timing: certificates verified (the system store, or the school's CA
    bundle for a TLS-inspecting proxy), no credential, no cookies kept, redirects not
    followed, and no connection reused. HTTPS_PROXY/NO_PROXY are honoured, as for the
    collector: where the school's only way out is its proxy, that is the pupils' way too."""
    if ca_bundle is not None and not ca_bundle.is_file():
        raise ValueError(f"collector.ca_bundle: {ca_bundle} is not a file")
    return httpx.Client(
        verify=tls_context(ca_bundle),
        trust_env=True,
        follow_redirects=False,
        # A jar whose policy accepts no domain: Set-Cookie is dropped, nothing is sent back.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        # No idle connection is kept, and the server is told so (as Go's DisableKeepAlives
        # does): the next request opens, and times, a connection of its own.
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"User-Agent": f"{USER_AGENT} (connectivity)", "Connection": "close"},
        timeout=httpx.Timeout(timeout),
    )


def time_request(client: httpx.Client, url: str,
                 clock: Callable[[], float] = time.monotonic) -> HttpOutcome:
    """One GET of ``url``: its status, connection set-up time and time to first byte, or a
    one-line reason why there was no answer."""
    marks: dict[str, float] = {}

    def trace(event: str, info: dict[str, Any]) -> None:
        # The first time each event happened (a proxy adds a second TLS set-up, which
        # "last complete" below still includes).
        marks.setdefault(event, clock())
        if event.endswith(".complete"):
            marks[event + ".last"] = clock()

    try:
        request = client.build_request("GET", url, extensions={"trace": trace})
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        return HttpOutcome(url, None, None, None, f"invalid URL: {exc}")
    started = clock()
    try:
        response = client.send(request, stream=True)
    except httpx.HTTPError as exc:
        return HttpOutcome(url, None, _connect_seconds(marks), None, describe_error(exc, client.timeout))
    ttfb = marks.get("http11.receive_response_headers.complete", clock()) - started
    try:
        _drain(response, started + _read_timeout(client.timeout), clock)
    except httpx.HTTPError:
        pass  # the headers came, so the service answered: what follows does not change that
    finally:
        response.close()
    status = response.status_code
    return HttpOutcome(url, status, _connect_seconds(marks), ttfb,
                       f"HTTP {status}" if status >= 500 else None)


def _drain(response: httpx.Response, deadline: float, clock: Callable[[], float]) -> None:
    """Read and discard at most MAX_BODY_BYTES, and stop at the deadline: a slow or endless
    body must not hold the probe (the connection is closed, not reused, either way)."""
    read = 0
    chunks: Iterator[bytes] = response.iter_raw(CHUNK_BYTES)
    for chunk in chunks:
        read += len(chunk)
        if read >= MAX_BODY_BYTES or clock() > deadline:
            return


def _connect_seconds(marks: dict[str, float]) -> float | None:
    """Lookup, TCP and TLS set-up; None unless the connection was fully made (a failed TLS
    handshake leaves only the TCP part, which is not the figure asked for)."""
    if "connection.start_tls.failed" in marks or "connection.connect_tcp.failed" in marks:
        return None
    start = marks.get("connection.connect_tcp.started")
    end = marks.get("connection.start_tls.complete.last", marks.get("connection.connect_tcp.complete"))
    if start is None or end is None:
        return None
    return end - start


def _read_timeout(timeout: httpx.Timeout) -> float:
    return timeout.read if timeout.read is not None else 30.0


def describe_error(exc: httpx.HTTPError, timeout: httpx.Timeout) -> str:
    """A failed request as one line a school's ICT person can act on."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timeout after {timeout.connect:g} s (connecting)"
    if isinstance(exc, httpx.ReadTimeout):
        return f"timeout after {timeout.read:g} s (waiting for the response)"
    if isinstance(exc, httpx.WriteTimeout):
        return f"timeout after {timeout.write:g} s (sending the request)"
    if isinstance(exc, httpx.PoolTimeout):
        return f"timeout after {timeout.pool:g} s (waiting for a connection)"
    if isinstance(exc, httpx.ProxyError):
        return f"proxy error: {_root(exc)}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"invalid URL: {exc}"
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = str(cause.verify_message or cause.reason or cause).rstrip(".")
            hint = PROXY_HINT if cause.verify_code in UNKNOWN_ISSUER_CODES else ""
            return f"TLS certificate not trusted: {why}{hint}"
        if isinstance(cause, ssl.SSLError):
            if cause.reason == "WRONG_VERSION_NUMBER":
                return "TLS handshake failed: the server does not speak TLS on this port"
            return f"TLS handshake failed: {cause.reason or cause}"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno == errno.ENETUNREACH:
            return "network unreachable"
        if isinstance(cause, OSError) and cause.errno == errno.EHOSTUNREACH:
            return "host unreachable"
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending a response" in str(exc):
            return "the server closed the connection without answering"
        return f"not a valid HTTP answer: {_root(exc)}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {_root(exc)}"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return f"connection broken: {_root(exc)}"
    return f"{type(exc).__name__}: {_root(exc)}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _root(exc: BaseException) -> str:
    *_, last = _chain(exc)
    return " ".join(str(last).split()).rstrip(".") or type(last).__name__
