"""The ``iperf3`` backend: the ``iperf3`` program against an iperf3 server (``iperf3 -s``).

The server is ``host``, ``host:port`` or ``[v6addr]:port`` (default port 5201). Each
direction is one ``iperf3 -c HOST -p PORT -J -P N -t SECONDS -i 0.5`` run (``-R`` for the
download: the server sends), read from its JSON report:

- **goodput**: from the half-second intervals, the same slow-start rule as our engine
  (``engine.plateau_start``/``engine.goodput``) on the receiver's view: in a download the
  receiver is iperf3 here; in an upload it is the server, whose intervals arrive with
  ``--get-server-output`` when the server runs in JSON mode (``iperf3 -s -J``). A server
  that prints text leaves only the sender's intervals here (bytes handed to TCP, which
  run ahead of the receiver by what the send buffers hold), and so does an upload we
  stopped early (iperf3 then never gets the server's figures); the result says which
  view it used (``details["view"]``). The sender's view reads high by however much the
  send buffers grew during the window: measured through a 40 Mbit/s link, up to +4 %
  over a 3 s window but +11 % over 1.6 s, so below SENDER_VIEW_MIN_WINDOW_SECONDS it is
  a reason, not a number. Run your server with ``-J`` for the exact view.
- **streams**: ``limits.min_streams``, fixed: iperf3 cannot add streams to a running test,
  so the engine's "more streams while throughput rises" does not apply here.
- **bounds**: iperf3 takes one end condition (``-t`` or ``-n``), not both. We give it the
  time (``-t``, whole seconds, rounded down) and enforce ``limits.max_bytes`` ourselves:
  the kernel counts every byte iperf3 reads or writes (Linux ``/proc/PID/io``, through
  psutil), and when that passes the cap we stop iperf3 with SIGTERM, on which it prints
  what it measured so far. The counter also holds iperf3's buffers, filled from
  /dev/urandom (128 KiB a stream), which we take off. Where the OS keeps no such
  counters we give iperf3 the byte cap (``-n``) instead and stop it with SIGTERM at the
  duration. A hard timeout (duration + 3 stall timeouts, 15 s by default) kills a run
  whose server went silent.
- **settling**: an iperf3 server refuses or says "busy" for a moment after each test, so
  a run right after our own waits half a second, and such an answer then gets up to
  three more tries, a second apart (never when we ran no test against it lately).
- **latency**: iperf3 has no ping, and connecting to its port just to time the handshake
  would disturb the server (it expects a test cookie on every connection), so ``ping()``
  raises and the probe records no idle latency. Loaded latency is the median of the
  sender's mean RTTs: ours in an upload, the server's in a download (only when the server
  runs with ``-J``; iperf3 does not pass the sender's RTT in its text results).
- **retransmits**: from the sender's summary; in a download that is the server's count,
  which iperf3 reports back to the client at the end of the test.

Every failure (the server refused, is busy, answered nonsense, stalled; iperf3 missing)
is a TransferError with one line of reason, never a number. The report's ``error``
decides, not the exit status: iperf3 3.12 exits 0 after an error in JSON mode.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

import psutil

from agent.probes import one_line_reason
from agent.probes.bandwidth.backend import BackendOptions, DirectionResult, Limits, TransferError
from agent.probes.bandwidth.engine import goodput, plateau_start

DEFAULT_PORT = 5201
INTERVAL_SECONDS = 0.5  # iperf3's report interval: the engine's ramp step
# Beyond the duration, a run may take this many stall timeouts (connecting, the results
# exchange, slack): 15 s with the default 5 s. A silent server is killed after that.
TIMEOUT_STALLS = 3
WATCH_SECONDS = 0.1
# iperf3 fills each stream's buffer (its default TCP block, 128 KiB) from /dev/urandom at the
# start: bytes its I/O counter holds that are no test traffic.
BLOCK_BYTES = 128 * 1024
# What iperf3 3.x reports when it got SIGTERM; a stop we asked for, not a failure.
INTERRUPTED = "interrupt - the client has terminated"
# iperf3's intervals and its own summary should agree to the byte; allow a little slack.
AGREEMENT_SHARE = 0.01
AGREEMENT_BYTES = 64 * 1024
SENDER_VIEW_MIN_WINDOW_SECONDS = 3.0  # see the module docstring
# An iperf3 server needs a moment after a test before it accepts the next one: until then
# it refuses, resets or says it is busy. Right after our own test against it, that is the
# reason, so we pause a little before each run and retry such an answer a few times.
SETTLE_SECONDS = 0.5
NOT_READY_RETRIES = 3
NOT_READY_WAIT_SECONDS = 1.0
OWN_TEST_RECENT_SECONDS = 10.0
INSTALL_HINT = "install it with apt-get install iperf3 (or set probes.bandwidth.iperf3.binary)"

Direction = Literal["download", "upload"]


def parse_server(server: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6addr]:port`` or a bare IPv6 address -> (host, port)."""
    text = server.strip()
    if not text:
        raise TransferError("iperf3 needs a server: set probes.bandwidth.server to host or host:port")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise TransferError(f"iperf3 server {server!r} is not [address]:port")
        port_text = rest[1:] if rest else ""
    elif text.count(":") > 1:  # a bare IPv6 address: no port can be told apart from it
        host, port_text = text, ""
    else:
        host, _, port_text = text.partition(":")
    if not host or any(c.isspace() or c == "/" for c in host):
        raise TransferError(f"iperf3 server {server!r} is not host or host:port")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise TransferError(f"iperf3 server {server!r}: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


class ServerNotReady(TransferError):
    """The server refused the test or said it was busy (maybe still resetting after ours)."""


@dataclass(frozen=True)
class Iperf3Output:
    """What one iperf3 run left behind."""

    stdout: str
    stderr: str
    returncode: int
    stopped_by_us: bool  # we sent SIGTERM (byte cap or duration): "interrupt" is expected


def parse_report(output: Iperf3Output, direction: Direction, duration: float) -> DirectionResult:
    """One direction's result from iperf3's JSON report; TransferError when it has none."""
    report = _load(output)
    error = report.get("error")
    if error and not (output.stopped_by_us and error == INTERRUPTED):
        reason = f"iperf3: {one_line_reason(str(error))}"
        if "server is busy" in str(error) or str(error).startswith("unable to connect to server"):
            raise ServerNotReady(reason)
        raise TransferError(reason)
    if output.returncode != 0 and not output.stopped_by_us:
        raise TransferError(f"iperf3 exited with status {output.returncode}: "
                            f"{one_line_reason(output.stderr or 'no reason given')}")
    start, end = _section(report, "start"), _section(report, "end")
    server_report = report.get("server_output_json")
    server_report = server_report if isinstance(server_report, dict) else {}

    # The receiver's view where the report has one (see the module docstring).
    if direction == "download":
        intervals, summary, view = report.get("intervals"), end.get("sum_received"), "receiver"
    elif isinstance(server_report.get("intervals"), list) and server_report["intervals"]:
        intervals, view = server_report["intervals"], "receiver"
        summary = _section(server_report, "end").get("sum_received")
    else:
        intervals, summary, view = report.get("intervals"), end.get("sum_sent"), "sender"
    samples = _samples(intervals)
    summary_bytes = _number(summary, "bytes")
    moved = samples[-1][1]
    if summary_bytes is not None and abs(moved - summary_bytes) > max(
            AGREEMENT_BYTES, AGREEMENT_SHARE * summary_bytes):
        raise TransferError(f"iperf3's intervals ({moved} bytes) disagree with its own summary "
                            f"({int(summary_bytes)} bytes); the report cannot be trusted")

    window_start = plateau_start(samples, min(duration, samples[-1][0]))
    rate, window = goodput(samples, window_start)
    if view == "sender" and window < SENDER_VIEW_MIN_WINDOW_SECONDS:
        raise TransferError(
            f"only the sending side's figures, over {window:.1f} s of stable transfer: too short to tell "
            f"delivery from the send buffers filling (run the iperf3 server with -J, and let the upload "
            f"run at least {SENDER_VIEW_MIN_WINDOW_SECONDS + 1:.0f} s within max_bytes)")

    # Bytes that reached the receiver, for the budget and the record; after our SIGTERM
    # in an upload the server never reported them, so the bytes we sent stand in.
    received = _number(end.get("sum_received"), "bytes")
    if received and rate * window > received * (1 + AGREEMENT_SHARE) + AGREEMENT_BYTES:
        # Only the sender's view can get here: more in the window than ever arrived.
        raise TransferError(f"iperf3's intervals hold {rate * window:.0f} bytes in the stable window, "
                            f"more than the {int(received)} bytes the receiver got")
    total = int(received) if received else moved
    retransmits = _number(end.get("sum_sent"), "retransmits")
    # The sender's RTTs: ours in an upload, the server's (when it sent JSON) in a download.
    round_trips = _mean_rtts(end if direction == "upload" else _section(server_report, "end"))
    connected = start.get("connected")
    cpu = end.get("cpu_utilization_percent")
    details: dict[str, Any] = {"view": view, "iperf3_version": str(start.get("version", "unknown"))}
    if output.stopped_by_us:
        details["stopped_early"] = True
    if isinstance(cpu, dict) and isinstance(cpu.get("host_total"), int | float):
        details["local_cpu_percent"] = round(float(cpu["host_total"]), 1)
        details["server_cpu_percent"] = round(float(cpu.get("remote_total", 0.0)), 1)
    return DirectionResult(
        bytes_per_second=rate, bytes=total, seconds=samples[-1][0], window_seconds=window,
        streams=len(connected) if isinstance(connected, list) and connected else _streams(end),
        loaded_latency_seconds=statistics.median(round_trips) if round_trips else None,
        retransmits=int(retransmits) if retransmits is not None else None,
        details=details,
    )


def _load(output: Iperf3Output) -> dict[str, Any]:
    try:
        report = json.loads(output.stdout)
    except ValueError:
        report = None
    if not isinstance(report, dict):
        # iperf3 prints some errors (bad options) as text on stderr even with -J.
        said = (output.stderr or output.stdout).strip().splitlines()
        reason = said[0] if said else f"exit status {output.returncode}, no output"
        raise TransferError(f"iperf3 gave no JSON report: {one_line_reason(reason)}")
    return report


def _section(report: dict[str, Any], key: str) -> dict[str, Any]:
    section = report.get(key)
    return section if isinstance(section, dict) else {}


def _number(section: Any, key: str) -> float | None:
    value = section.get(key) if isinstance(section, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _samples(intervals: Any) -> list[tuple[float, int]]:
    """Cumulative (elapsed seconds, bytes) from iperf3's intervals, starting at (0, 0)."""
    samples: list[tuple[float, int]] = [(0.0, 0)]
    for interval in intervals if isinstance(intervals, list) else []:
        total = interval.get("sum") if isinstance(interval, dict) else None
        ended, moved = _number(total, "end"), _number(total, "bytes")
        if ended is None or moved is None or not isinstance(total, dict) or total.get("omitted"):
            continue
        if ended <= samples[-1][0]:
            raise TransferError("iperf3's intervals go back in time; the report cannot be trusted")
        samples.append((ended, samples[-1][1] + int(moved)))
    if len(samples) < 2:
        raise TransferError("iperf3 reported no intervals: the test did not run")
    # iperf3 ends with the remainder of an interval (often a few ms, as the last bytes drain):
    # too short to be a step of its own, so it joins the one before (its bytes stay counted).
    if len(samples) >= 3 and (samples[-1][0] - samples[-2][0]) < (samples[-2][0] - samples[-3][0]) / 2:
        del samples[-2]
    return samples


def _mean_rtts(end: dict[str, Any]) -> list[float]:
    """The senders' mean RTTs in seconds; iperf3 writes 0 where it did not measure one."""
    found = []
    for stream in end.get("streams") or []:
        rtt = _number(stream.get("sender") if isinstance(stream, dict) else None, "mean_rtt")
        if rtt:
            found.append(rtt / 1e6)  # microseconds
    return found


def _streams(end: dict[str, Any]) -> int:
    streams = end.get("streams")
    return len(streams) if isinstance(streams, list) else 0


def _byte_counter(process: psutil.Process, direction: Direction) -> int | None:
    """Bytes iperf3 has read (download) or written (upload) so far, where the OS says."""
    try:
        counters = process.io_counters()
    except (psutil.Error, AttributeError, NotImplementedError, OSError):
        return None
    value = getattr(counters, "read_chars" if direction == "download" else "write_chars", None)
    return int(value) if isinstance(value, int) else None


class Iperf3Backend:
    """One iperf3 server, both directions (see the module docstring)."""

    name = "iperf3"

    def __init__(self, options: BackendOptions) -> None:
        self.server = options.server
        self.host, self.port = parse_server(options.server)
        iperf3 = getattr(options.config, "iperf3", None) if options.config is not None else None
        self.binary: str = getattr(iperf3, "binary", None) or "iperf3"
        self.stall_seconds = options.stall_seconds
        self._lock = threading.Lock()
        self._child: subprocess.Popen[str] | None = None
        self._closed = False
        self._last_run_end: float | None = None  # monotonic: when iperf3 last exited
        self._last_test_end: float | None = None  # ... after a test that reached the server

    @classmethod
    def discover(cls, options: BackendOptions) -> list[str]:
        """The configured server: iperf3 servers have no directory to find them in."""
        parse_server(options.server)  # a bad server is reported before any test
        return [options.server]

    def ping(self) -> float:
        raise TransferError("iperf3 measures no idle latency")

    def download(self, limits: Limits) -> DirectionResult:
        return self._measure("download", limits)

    def upload(self, limits: Limits) -> DirectionResult:
        return self._measure("upload", limits)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            child = self._child
        if child is not None and child.poll() is None:
            child.kill()

    # -- one run ---------------------------------------------------------------------------

    def _measure(self, direction: Direction, limits: Limits) -> DirectionResult:
        seconds = max(1, int(limits.duration))  # iperf3 takes whole seconds; never more than asked
        attempt = 0
        while True:
            self._settle()
            try:
                output = self._run(direction, limits, seconds)
            finally:
                self._last_run_end = time.monotonic()
            try:
                result = parse_report(output, direction, float(seconds))
            except ServerNotReady as exc:
                attempt += 1
                if attempt > NOT_READY_RETRIES or not self._own_test_was_recent():
                    raise TransferError(f"iperf3 {direction} against {self.server}: {exc}") from None
                time.sleep(NOT_READY_WAIT_SECONDS)
                continue
            except TransferError as exc:
                self._last_test_end = self._last_run_end
                raise TransferError(f"iperf3 {direction} against {self.server}: {exc}") from None
            self._last_test_end = self._last_run_end
            return result

    def _settle(self) -> None:
        if self._last_run_end is not None:
            time.sleep(max(0.0, self._last_run_end + SETTLE_SECONDS - time.monotonic()))

    def _own_test_was_recent(self) -> bool:
        """Whether a refusal may be the server resetting after our own previous test: only
        then is another try worth it (a server that is down stays down, and one busy with
        another agent's test will not be free within a few seconds)."""
        return (self._last_test_end is not None
                and time.monotonic() - self._last_test_end < OWN_TEST_RECENT_SECONDS)

    def command(self, direction: Direction, streams: int, end_condition: list[str]) -> list[str]:
        program = shutil.which(self.binary)
        if program is None:
            raise TransferError(f"iperf3 is not installed (no program {self.binary!r} found): {INSTALL_HINT}")
        stall = str(int(self.stall_seconds * 1000))
        return [
            program, "-c", self.host, "-p", str(self.port), "-J", "-P", str(streams), *end_condition,
            "-i", str(INTERVAL_SECONDS), "--get-server-output",
            # A server that does not answer or stops moving data: a quick, clear error
            # instead of a long hang (iperf3 takes the receive timeout only when receiving,
            # the send timeout, TCP_USER_TIMEOUT, only when sending).
            "--connect-timeout", stall,
            *(["-R", "--rcv-timeout", stall] if direction == "download" else ["--snd-timeout", stall]),
        ]

    def _run(self, direction: Direction, limits: Limits, seconds: int) -> Iperf3Output:
        # Decide the end condition: time from iperf3, bytes watched by us, where we can.
        counters_work = _byte_counter(psutil.Process(), direction) is not None
        end_condition = ["-t", str(seconds)] if counters_work else ["-n", str(limits.max_bytes)]
        streams = min(limits.min_streams, limits.max_streams)
        argv = self.command(direction, streams, end_condition)
        with self._lock:
            if self._closed:
                raise TransferError("the test was stopped")
            try:
                child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
            except OSError as exc:
                raise TransferError(f"iperf3 could not be started: {exc.strerror or exc}") from None
            self._child = child
        try:
            return self._wait(child, direction, limits, seconds, counters_work, streams)
        finally:
            with self._lock:
                self._child = None
            if child.poll() is None:
                child.kill()
                child.wait()

    def _wait(self, child: subprocess.Popen[str], direction: Direction, limits: Limits, seconds: int,
              counters_work: bool, streams: int) -> Iperf3Output:
        started = time.monotonic()
        allowed = seconds + TIMEOUT_STALLS * self.stall_seconds
        hard_deadline = started + allowed
        watched: psutil.Process | None = None
        if counters_work:
            with contextlib.suppress(psutil.Error):
                watched = psutil.Process(child.pid)
        stopped_by_us = False
        stdout, stderr = "", ""
        while True:
            # communicate() keeps what it read when it times out, so polling loses nothing;
            # and the pipe is drained while we wait (a large report cannot block iperf3).
            try:
                stdout, stderr = child.communicate(timeout=WATCH_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now > hard_deadline:
                child.kill()
                child.communicate()
                raise TransferError(f"iperf3 {direction} against {self.server} did not finish within "
                                    f"{allowed:g} s: the server stopped answering")
            if stopped_by_us:
                continue
            if counters_work:  # iperf3 holds the duration (-t); the byte cap is ours
                moved = _byte_counter(watched, direction) if watched is not None else None
                over = moved is not None and moved - streams * BLOCK_BYTES >= limits.max_bytes
            else:  # iperf3 holds the byte cap (-n); the duration is ours
                over = now - started >= seconds
            if over:
                stopped_by_us = True
                # SIGTERM: iperf3 prints its report so far (on Windows this ends it outright,
                # without a report, and the direction fails with that reason).
                with contextlib.suppress(ProcessLookupError):
                    child.terminate()
        with self._lock:
            if self._closed:
                raise TransferError("the test was stopped")
        return Iperf3Output(stdout or "", stderr or "", child.returncode, stopped_by_us)
