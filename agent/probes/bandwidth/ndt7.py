"""The ``ndt7`` backend: M-Lab's open speed test, WebSocket over one TCP connection.

The protocol (m-lab/ndt-server, spec/ndt7-protocol.md): a WebSocket upgrade to
``/ndt/v7/download`` or ``/ndt/v7/upload`` with the subprotocol ``net.measurementlab.ndt.v7``;
the sending side sends binary messages of random data, and the server sends JSON text
"measurements" (AppInfo, ConnectionInfo, TCPInfo from its kernel) about every 250 ms. Each
direction lasts at most about ten seconds, then the server closes.

**One stream, by design**: ndt7 measures what a single TCP connection gets (M-Lab's data
are comparable because of that), so ``streams`` is always 1 and the limits' stream counts
are ignored. A lossy long path may read lower here than with the multi-stream backends.

**Servers**: ``server`` is a base URL (``ws://host:port`` or ``wss://host``) to which the
paths are appended; empty means asking M-Lab's locate service (v2) for the nearest
servers. Its answers carry per-direction access tokens, which are credentials: they stay
in this module, in a per-process table keyed by the readable name ``discover`` returns
(``wss://host``, what the payload records), and never reach a record or a log. A token
that is old or already used is replaced by asking the locate service again.

**Counting**: download = every message byte received, binary and text, as the spec says;
upload = the server's ``TCPInfo.BytesReceived`` (its kernel's count: bytes that merely sit
in our socket buffer do not count), else its ``AppInfo.NumBytes``, else our own kernel's
``bytes_acked``; ``details["counted_by"]`` says which. Server counts include a few bytes
of WebSocket framing (about 0.1 %). The cumulative samples go through the engine's
``plateau_start``/``goodput``, so slow start is left out by the same rule as everywhere.

**Bounds**: a direction stops at ``limits.duration`` or ``limits.max_bytes``; ndt7 has no
way to ask the server for fewer bytes, so on a download stopped early the data already in
flight (about one round trip's worth) still arrives; it is read while closing, left out of
the rate, and reported as ``details["bytes_after_stop"]`` (it is traffic all the same).
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import ssl
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

import httpx
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from agent import __version__
from agent.config import Ndt7Config
from agent.probes.bandwidth import engine
from agent.probes.bandwidth.backend import BackendOptions, DirectionResult, Limits, TransferError
from agent.probes.bandwidth.tcpinfo import tcp_info
from agent.transport import USER_AGENT, describe_error, make_client, tls_context

SUBPROTOCOL = "net.measurementlab.ndt.v7"
DOWNLOAD_PATH = "/ndt/v7/download"
UPLOAD_PATH = "/ndt/v7/upload"
# The locate service's keys for a result's URLs, by preference: TLS first.
LOCATE_KEYS = (("wss", "wss:///ndt/v7/download", "wss:///ndt/v7/upload"),
               ("ws", "ws:///ndt/v7/download", "ws:///ndt/v7/upload"))
# Upload message sizes (the spec's rule): start small so a slow line is not flooded with
# megabytes it cannot carry, double while a message is at most 1/16 of what has arrived.
MIN_MESSAGE = 1 << 13
MAX_MESSAGE = 1 << 20
SCALING_FRACTION = 16
# The largest message we accept (the spec's maximum; servers send up to 1 MiB in practice).
MAX_RECEIVED_MESSAGE = 1 << 24
# Frames waiting to be read, at most: bounds memory on a Pi (TCP flow control does the rest).
MAX_QUEUE = 8
CONNECT_SECONDS = 10.0  # DNS, TCP, TLS and the upgrade, together
CLOSE_SECONDS = 2.0  # for the server to answer our close frame
# M-Lab's access tokens are short-lived (their lifetime is M-Lab's to choose); one older
# than this, or already used, is replaced by asking the locate service again.
TOKEN_MAX_AGE_SECONDS = 60.0
PINGS = 3
# A server's byte count above what we wrote (plus TLS and framing overhead) is not believed.
OVERHEAD_SHARE = 0.01
OVERHEAD_SLACK = 64 * 1024
# This many text messages without one real measurement: the server does not speak ndt7.
GARBAGE_VERDICT = 3

@dataclass
class _Target:
    """Where one server's tests go."""

    name: str  # readable and recorded: scheme://host[:port][/prefix], never a token
    download_url: str
    upload_url: str
    host: str
    port: int
    machine: str | None = None
    location: str | None = None
    located_at: float | None = None  # monotonic; None for a configured server (no token)
    used: set[str] = field(default_factory=set)  # directions whose token has been spent


# name -> target, from the latest locate answer of this process (the tokens live here).
_located: dict[str, _Target] = {}
_located_lock = threading.Lock()


class Ndt7Backend:
    name = "ndt7"
    streams = 1  # ndt7 is single-stream by design

    def __init__(self, options: BackendOptions) -> None:
        self._options = options
        with _located_lock:
            located = _located.get(options.server)
        self._target = located if located is not None else _configured(options.server)
        self.server = self._target.name

    @classmethod
    def discover(cls, options: BackendOptions) -> list[str]:
        """The configured server, or the locate service's servers, best first."""
        if options.server:
            return [_configured(options.server).name]
        return [target.name for target in _locate(options)]

    def close(self) -> None:
        """Nothing stays open between directions: each opens and closes its own connection."""

    def ping(self) -> float:
        """Idle round trip: the median time of a few TCP handshakes with the server, each
        closed at once. ndt7 has no ping message; a TCP connect costs the server nothing,
        spends no access token, and is one round trip (the name is resolved beforehand)."""
        target = self._target
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM)[0]
        except OSError as exc:
            raise TransferError(f"ping failed: {_describe(exc, target)}") from None
        times: list[float] = []
        problem = "no answer"
        for _ in range(PINGS):
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(self._options.stall_seconds)
                started = time.perf_counter()
                try:
                    sock.connect(address)
                except OSError as exc:
                    problem = _describe(exc, target)
                    continue
                times.append(time.perf_counter() - started)
        if not times:
            raise TransferError(f"ping failed: {problem}")
        return statistics.median(times)

    def download(self, limits: Limits) -> DirectionResult:
        ws = self._open("download")
        try:
            run = _receive(ws, limits, self._options.stall_seconds)
        finally:
            # Stopped by our limits, the server is still sending: drain while closing.
            after_stop = _close(ws, draining=True)
        samples = _ended(run.samples, run.server_ended, limits, "download")
        if run.reports.text_messages and not run.reports.valid:
            _not_ndt7()
        rate, window = engine.goodput(samples, engine.plateau_start(samples, limits.duration))
        rtts = run.reports.values("rtt")
        retransmits = run.reports.last("total_retrans")
        return DirectionResult(
            bytes_per_second=rate, bytes=samples[-1][1], seconds=samples[-1][0], window_seconds=window,
            streams=1,
            loaded_latency_seconds=statistics.median(rtts) if rtts else None,
            retransmits=int(retransmits) if retransmits is not None else None,
            details=self._details(
                run.reports, counted_by="agent: WebSocket message bytes received",
                bytes_after_stop=after_stop or None,  # real traffic (for the budget), not in the rate
                latency_by="server TCPInfo.RTT" if rtts else None,
                retransmits_by="server TCPInfo.TotalRetrans (the server sends)"
                if retransmits is not None else None),
        )

    def upload(self, limits: Limits) -> DirectionResult:
        ws = self._open("upload")
        try:
            run = _send(ws, limits, self._options.stall_seconds)
        finally:
            _close(ws, draining=False)
        samples, counted_by = _upload_samples(run.reports, run.acked)
        samples = _ended(samples, run.server_ended, limits, "upload")
        rate, window = engine.goodput(samples, engine.plateau_start(samples, limits.duration))
        server_rtts = run.reports.values("rtt")
        # We are the sender: our kernel's smoothed RTT is the loaded latency of the uplink.
        rtts = run.rtts or server_rtts
        latency_by = ("agent TCP_INFO rtt (the agent sends)" if run.rtts
                      else "server TCPInfo.RTT" if server_rtts else None)
        return DirectionResult(
            bytes_per_second=rate, bytes=samples[-1][1], seconds=samples[-1][0], window_seconds=window,
            streams=1,
            loaded_latency_seconds=statistics.median(rtts) if rtts else None,
            retransmits=run.retransmits,
            details=self._details(
                run.reports, counted_by=counted_by, sent_bytes=run.sent, latency_by=latency_by,
                retransmits_by="agent TCP_INFO total_retrans (the agent sends)"
                if run.retransmits is not None else None),
        )

    def _open(self, direction: str) -> ClientConnection:
        """The WebSocket for one direction, upgraded with the ndt7 subprotocol. No credential
        of ours goes along: ndt7 servers are never our collector."""
        url = self._url(direction)
        target = self._target
        try:
            context = tls_context(self._options.ca_bundle) if url.startswith("wss:") else None
        except (ValueError, OSError) as exc:
            raise TransferError(f"the CA bundle cannot be used: {exc}") from None
        try:
            ws = connect(url, ssl=context, subprotocols=[Subprotocol(SUBPROTOCOL)],
                         compression=None,  # random data: deflate would only burn CPU
                         user_agent_header=USER_AGENT, open_timeout=CONNECT_SECONDS,
                         ping_interval=None, close_timeout=CLOSE_SECONDS,
                         max_size=MAX_RECEIVED_MESSAGE, max_queue=MAX_QUEUE, legacy=True)
        except Exception as exc:  # every way a connection can fail: a reason, never a crash
            raise TransferError(_describe(exc, target)) from None
        if ws.subprotocol != SUBPROTOCOL:
            _close(ws, draining=False)
            raise TransferError(f"{target.name} did not accept the ndt7 WebSocket subprotocol "
                                f"({SUBPROTOCOL}): it is not an ndt7 server")
        return ws

    def _url(self, direction: str) -> str:
        """The test URL, with a fresh access token where the server came from the locate
        service, and the client metadata the spec asks for."""
        target = self._target
        if target.located_at is not None and (
                direction in target.used or time.monotonic() - target.located_at > TOKEN_MAX_AGE_SECONDS):
            fresh = {located.name: located for located in _locate(self._options)}
            if target.name not in fresh:
                raise TransferError(f"{target.name} is no longer offered by the ndt7 locate service and "
                                    f"its access token has expired; the next test locates again")
            target = self._target = fresh[target.name]
        target.used.add(direction)
        url = target.download_url if direction == "download" else target.upload_url
        return (f"{url}{'&' if '?' in url else '?'}client_name=schoolnet-agent"
                f"&client_version={quote(__version__)}")

    def _details(self, reports: _ServerReports, **facts: Any) -> dict[str, Any]:
        min_rtt = reports.last("min_rtt")
        details: dict[str, Any] = {
            "server_min_rtt_seconds": min_rtt,
            "server_measurements": len(reports.valid),
            "ignored_measurements": reports.ignored,
            "server_machine": self._target.machine,
            "server_location": self._target.location,
            **facts,
        }
        return {key: value for key, value in details.items() if value is not None}


# --- the two directions -------------------------------------------------------------


@dataclass
class _Received:
    samples: list[tuple[float, int]]  # cumulative (seconds, message bytes), every >= 0.1 s
    received: int
    reports: _ServerReports
    server_ended: bool  # the server closed normally (its test time was over)


def _receive(ws: ClientConnection, limits: Limits, stall: float) -> _Received:
    """Read and count the download until our limits, or until the server closes."""
    run = _Received(samples=[(0.0, 0)], received=0, reports=_ServerReports(), server_ended=False)
    started = last_data = time.perf_counter()
    while True:
        now = time.perf_counter()
        if now - started >= limits.duration or run.received >= limits.max_bytes:
            break
        wait = min(stall - (now - last_data), limits.duration - (now - started))
        if wait <= 0:
            raise TransferError(f"the server sent nothing for {stall:g} s after {run.received} bytes "
                                f"(stalled)")
        try:
            message = ws.recv(timeout=wait)
        except TimeoutError:
            continue
        except ConnectionClosed as exc:
            if _server_ended(exc):
                run.server_ended = True
                break
            raise TransferError(f"the server dropped the connection after {run.received} bytes in "
                                f"{now - started:.1f} s{_close_detail(exc)}") from None
        last_data = time.perf_counter()
        if isinstance(message, str):
            run.received += len(message.encode())
            run.reports.add(message)
            if run.reports.ignored >= GARBAGE_VERDICT and not run.reports.valid:
                _not_ndt7()  # stop at once: no reason to spend the line's capacity on it
        else:
            run.received += len(message)
        if last_data - started - run.samples[-1][0] >= engine.SAMPLE_SECONDS:
            run.samples.append((last_data - started, run.received))
    if run.received > run.samples[-1][1]:
        run.samples.append((time.perf_counter() - started, run.received))
    return run


@dataclass
class _Sent:
    sent: int  # payload bytes written into the socket
    seconds: float
    reports: _ServerReports
    server_ended: bool
    acked: list[tuple[float, int]] | None  # our kernel's cumulative bytes_acked; None: no TCP_INFO
    rtts: list[float]  # our kernel's smoothed RTT, sampled
    retransmits: int | None


def _send(ws: ClientConnection, limits: Limits, stall: float) -> _Sent:
    """Send the upload until our limits, or until the server closes, reading its
    measurements as they come."""
    block = memoryview(engine.RANDOM_BLOCK)  # 1 MiB: the largest message (MAX_MESSAGE) is one slice
    sock = ws.socket
    first = tcp_info(sock)
    acked_before = first.bytes_acked if first is not None else 0  # the upgrade request
    run = _Sent(sent=0, seconds=0.0, reports=_ServerReports(), server_ended=False,
                acked=[(0.0, 0)] if first is not None else None, rtts=[], retransmits=None)
    size = MIN_MESSAGE
    # A send that cannot progress for this long means the server stopped reading. (With the
    # scaling rule a message takes about 1/16 of the time so far at most: well inside it.)
    sock.settimeout(stall)
    started = time.perf_counter()
    while time.perf_counter() - started < limits.duration and run.sent < limits.max_bytes:
        length = min(size, limits.max_bytes - run.sent)
        try:
            ws.send(block[:length])
        except ConnectionClosed as exc:
            if _server_ended(exc):
                run.server_ended = True
                break
            if isinstance(exc.__cause__, TimeoutError):
                raise TransferError(f"the server stopped reading: nothing could be sent for {stall:g} s "
                                    f"after {run.sent} bytes (stalled)") from None
            raise TransferError(f"the server dropped the connection after {run.sent} bytes sent in "
                                f"{time.perf_counter() - started:.1f} s{_close_detail(exc)}") from None
        run.sent += length
        _read_reports(ws, run.reports, run.sent)
        arrived = run.sent
        if run.acked is not None:
            elapsed = time.perf_counter() - started
            if elapsed - run.acked[-1][0] >= engine.SAMPLE_SECONDS and (info := tcp_info(sock)):
                run.acked.append((elapsed, info.bytes_acked - acked_before))
                run.rtts.append(info.rtt_seconds)
            arrived = run.acked[-1][1]
        # Scale on what arrived, not on what was written: the socket buffer swallows
        # megabytes at once, and messages sized by that would flood a slow line.
        if size < MAX_MESSAGE and size * SCALING_FRACTION <= arrived:
            size *= 2
    _read_reports(ws, run.reports, run.sent)
    run.seconds = time.perf_counter() - started
    final = tcp_info(sock)
    if final is not None and run.acked is not None:
        run.acked.append((run.seconds, final.bytes_acked - acked_before))
        run.retransmits = final.total_retransmits
    return run


# --- servers: configured, or located -------------------------------------------------


def _configured(server: str) -> _Target:
    """A configured base URL, checked: ws:// or wss://, no query (an access token in the
    config would be recorded with every result), no user name or password."""
    text = server.strip()
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("ws", "wss") or not parts.hostname or port == -1:
        raise TransferError(f"ndt7 server {text!r} is not a ws:// or wss:// base URL "
                            f"(like wss://ndt.example.org)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise TransferError(f"ndt7 server {_readable(parts.scheme, parts.hostname, port)}: give the base "
                            f"URL only, without a query or user name (tokens do not belong in the config)")
    base = _readable(parts.scheme, parts.hostname, port) + parts.path.rstrip("/")
    return _Target(name=base, download_url=base + DOWNLOAD_PATH, upload_url=base + UPLOAD_PATH,
                   host=parts.hostname, port=port or (443 if parts.scheme == "wss" else 80))


def _readable(scheme: str, host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def _locate_url(options: BackendOptions) -> str:
    section = getattr(options.config, "ndt7", None)
    url = getattr(section, "locate_url", None)
    return url if isinstance(url, str) and url else Ndt7Config().locate_url


def _locate(options: BackendOptions) -> list[_Target]:
    """Ask the locate service for the nearest servers; remember their token URLs."""
    url = _locate_url(options)
    try:
        client = make_client(options.stall_seconds, options.ca_bundle)  # no credential of ours
    except ValueError as exc:
        raise TransferError(str(exc)) from None
    try:
        with client:
            answer = client.get(url, headers={"Accept": "application/json"}, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise TransferError(f"the ndt7 locate service ({url}) cannot be reached: "
                            f"{describe_error(exc)}") from None
    if answer.status_code != 200:
        raise TransferError(f"the ndt7 locate service ({url}) answered HTTP {answer.status_code}")
    try:
        body = answer.json()
    except ValueError:
        raise TransferError(f"the ndt7 locate service ({url}) answered something that is not JSON") from None
    targets = _targets(body, url)
    if not targets:
        # M-Lab answers 200 with no results when it is out of capacity.
        raise TransferError(f"the ndt7 locate service ({url}) offered no server (M-Lab may be out of "
                            f"capacity); the next test asks again")
    now = time.monotonic()
    for target in targets:
        target.located_at = now
    with _located_lock:
        _located.clear()  # only the latest answer's tokens are kept
        _located.update((target.name, target) for target in targets)
    return targets


def _targets(body: Any, url: str) -> list[_Target]:
    if body == {}:
        return []
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise TransferError(f"the ndt7 locate service ({url}) answered JSON without a server list "
                            f"(not the locate v2 format)")
    targets: dict[str, _Target] = {}
    for result in results:
        target = _target(result)
        if target is not None and target.name not in targets:
            targets[target.name] = target
    return list(targets.values())


def _target(result: Any) -> _Target | None:
    """One locate result as a target, or None when it has no usable pair of URLs."""
    if not isinstance(result, dict) or not isinstance(result.get("urls"), dict):
        return None
    urls = result["urls"]
    for scheme, download_key, upload_key in LOCATE_KEYS:
        download, upload = urls.get(download_key), urls.get(upload_key)
        if not (isinstance(download, str) and isinstance(upload, str)):
            continue
        parts = urlsplit(download)
        try:
            port = parts.port
        except ValueError:
            continue
        if parts.scheme != scheme or not parts.hostname or urlsplit(upload).scheme != scheme:
            continue
        location = result.get("location")
        place = None
        if isinstance(location, dict):
            place = ", ".join(str(location[key]) for key in ("city", "country")
                              if isinstance(location.get(key), str) and location[key]) or None
        machine = result.get("machine")
        return _Target(name=_readable(scheme, parts.hostname, port), download_url=download,
                       upload_url=upload, host=parts.hostname,
                       port=port or (443 if scheme == "wss" else 80),
                       machine=machine if isinstance(machine, str) else None, location=place)
    return None


# --- the server's measurement messages -------------------------------------------------

# (section, key, our name, scale): microseconds become seconds.
_FIELDS = (
    ("AppInfo", "ElapsedTime", "app_elapsed", 1e-6),
    ("AppInfo", "NumBytes", "num_bytes", 1),
    ("TCPInfo", "ElapsedTime", "tcp_elapsed", 1e-6),
    ("TCPInfo", "BytesReceived", "bytes_received", 1),
    ("TCPInfo", "RTT", "rtt", 1e-6),
    ("TCPInfo", "MinRTT", "min_rtt", 1e-6),
    ("TCPInfo", "TotalRetrans", "total_retrans", 1),
)


def _measurement(text: str) -> dict[str, float] | None:
    """The numbers we use from one measurement message, or None when it is not one: not
    JSON, not an object with AppInfo/TCPInfo objects, or a known field that is not a
    non-negative number."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not ("AppInfo" in data or "TCPInfo" in data):
        return None
    values: dict[str, float] = {}
    for section_name, key, name, scale in _FIELDS:
        section = data.get(section_name)
        if section is None:
            continue
        if not isinstance(section, dict):
            return None
        value = section.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or value < 0:
            return None
        values[name] = value * scale
    return values


class _ServerReports:
    """The server's measurements of one direction; bad ones are counted and ignored."""

    def __init__(self) -> None:
        self.valid: list[dict[str, float]] = []
        self.ignored = 0
        self.text_messages = 0

    def add(self, text: str, most_bytes: float | None = None) -> None:
        self.text_messages += 1
        values = _measurement(text)
        if values is None or (most_bytes is not None and any(
                values.get(key, 0) > most_bytes for key in ("bytes_received", "num_bytes"))):
            self.ignored += 1
            return
        self.valid.append(values)

    def values(self, name: str) -> list[float]:
        return [report[name] for report in self.valid if name in report]

    def last(self, name: str) -> float | None:
        found = self.values(name)
        return found[-1] if found else None


def _not_ndt7() -> NoReturn:
    raise TransferError("the server's text messages are not ndt7 measurements (not JSON of the ndt7 "
                        "shape): it is not an ndt7 server")


def _believable(sent: int) -> float:
    """The most bytes a server can honestly say it received from us so far."""
    return sent * (1 + OVERHEAD_SHARE) + OVERHEAD_SLACK


def _read_reports(ws: ClientConnection, reports: _ServerReports, sent: int) -> None:
    """Take the server's measurements that have arrived, without waiting."""
    while True:
        try:
            message = ws.recv(timeout=0)
        except (TimeoutError, ConnectionClosed):
            return  # nothing yet; or closed, which the next send reports
        if not isinstance(message, str):
            raise TransferError("the server sent binary data during the upload, which ndt7 forbids: "
                                "it is not an ndt7 server")
        reports.add(message, _believable(sent))


def _upload_samples(reports: _ServerReports,
                    local: list[tuple[float, int]] | None) -> tuple[list[tuple[float, int]], str]:
    """The cumulative (seconds, bytes) the upload is judged by, and whose count they are:
    the server's kernel, else the server's application, else our kernel's acknowledgements."""
    for elapsed, counted, source in (("tcp_elapsed", "bytes_received", "server TCPInfo.BytesReceived"),
                                     ("app_elapsed", "num_bytes", "server AppInfo.NumBytes")):
        samples: list[tuple[float, int]] = [(0.0, 0)]
        for report in reports.valid:
            if elapsed in report and counted in report and report[elapsed] > samples[-1][0] \
                    and report[counted] >= samples[-1][1]:
                samples.append((report[elapsed], int(report[counted])))
        if len(samples) >= 3:  # at least two measurements: a rate needs an interval
            return samples, source
    if local is None:
        raise TransferError("the server reported no usable upload byte count and this system cannot "
                            "read TCP_INFO, so the upload cannot be counted honestly")
    return local, "agent TCP_INFO bytes_acked (the server reported no usable count)"


# --- connections --------------------------------------------------------------------


def _server_ended(exc: ConnectionClosed) -> bool:
    """Whether the server closed normally: its test time was over (ndt7's way to end a
    direction). A close frame counts even when the closing handshake could not finish (the
    server stops reading at its end, so our last send may not get through)."""
    return exc.rcvd is not None and exc.rcvd.code in (1000, 1001)


def _ended(samples: list[tuple[float, int]], server_ended: bool, limits: Limits,
           direction: str) -> list[tuple[float, int]]:
    """The samples up to the end of the transfer. When the server ended it, nothing moved
    after its last bytes (a trailing flat stretch is only the close), and it may not end
    before half the test: the stable window would be mostly slow start."""
    if not server_ended:
        return samples
    last = next(index for index, sample in enumerate(samples) if sample[1] == samples[-1][1])
    samples = samples[: max(last, 1) + 1]
    seconds, moved = samples[-1]
    if seconds < limits.duration * engine.RAMP_SHARE and moved < limits.max_bytes:
        raise TransferError(f"the server ended the {direction} after {seconds:.1f} s ({moved} bytes), "
                            f"too early for a stable rate")
    return samples


def _close(ws: ClientConnection, draining: bool) -> int:
    """Close politely: our close frame, the server's answer, then the server closes TCP
    (the spec asks clients not to close first). When we stop a download early the server
    is still sending; that data is read and thrown away meanwhile (else the queue fills and
    the close waits out its timeout). Returns the bytes thrown away."""
    if not draining:
        with contextlib.suppress(Exception):  # best effort: the result is already known
            ws.close()
        return 0
    closer = threading.Thread(target=_close, args=(ws, False), daemon=True, name="ndt7-close")
    closer.start()
    deadline = time.monotonic() + CLOSE_SECONDS
    discarded = 0
    while closer.is_alive() and time.monotonic() < deadline:
        try:
            discarded += len(ws.recv(timeout=0.05))
        except TimeoutError:
            continue
        except Exception:
            break
    closer.join(CLOSE_SECONDS)
    return discarded


def _close_detail(exc: ConnectionClosed) -> str:
    if exc.rcvd is not None:
        return f" (close code {exc.rcvd.code}{': ' + exc.rcvd.reason if exc.rcvd.reason else ''})"
    if exc.__cause__ is not None:
        return f" ({type(exc.__cause__).__name__}: {exc.__cause__})"
    return " without a WebSocket close"


def _describe(exc: BaseException, target: _Target) -> str:
    """A connection failure as one line a school's ICT person can act on."""
    where = f"{target.host}:{target.port}"
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        hint = {401: " (access token refused: missing or expired)",
                403: " (access token refused: missing or expired)",
                429: " (server busy)", 503: " (server busy)"}.get(status, "")
        return f"{target.name} refused the ndt7 test: HTTP {status}{hint}"
    if isinstance(exc, InvalidURI):
        return f"{target.name} is not a valid WebSocket URL"
    if isinstance(exc, InvalidHandshake):
        return f"{target.name} is not an ndt7 server (WebSocket handshake failed: {exc})"
    if isinstance(exc, WebSocketException):
        return f"WebSocket error with {target.name}: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS certificate of {target.host} not trusted ({exc.verify_message or exc}); if the "
                f"school's proxy inspects TLS, give its CA in collector.ca_bundle")
    if isinstance(exc, ssl.SSLError):
        return f"TLS error with {where}: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} in time"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {target.host}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {where}: connection refused"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"{type(exc).__name__} with {where}: {exc}"
