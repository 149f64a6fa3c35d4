"""The engine's decisions, on synthetic streams whose throughput follows a known curve:
slow start left out, streams added only while throughput rises, bounds kept, failures
reported. (Accuracy against a kernel-shaped link is in test_bandwidth_accuracy.py.)"""

from __future__ import annotations

import threading
import time

import pytest

from agent.probes.bandwidth.backend import Limits, TransferError
from agent.probes.bandwidth.engine import (
    Allowance,
    StreamDone,
    goodput,
    measure,
    plateau_start,
)

MB = 1_000_000


class Link:
    """A shared link: ``capacity`` bytes/s split over the streams, each stream at most
    ``per_stream``; the first ``ramp`` seconds of each stream climb linearly (slow start)."""

    def __init__(self, capacity: float, per_stream: float, ramp: float = 0.6) -> None:
        self.capacity, self.per_stream, self.ramp = capacity, per_stream, ramp
        self.streams: list[SyntheticStream] = []
        self.lock = threading.Lock()
        self.started = time.perf_counter()

    def rate_of_one(self, stream: SyntheticStream, now: float) -> float:
        share = min(self.per_stream, self.capacity / len(self.streams))
        age = now - stream.opened
        return share * min(1.0, age / self.ramp) if self.ramp else share


class SyntheticStream:
    def __init__(self, link: Link, fail_after: float | None = None, byte_cap: Allowance | None = None,
                 retransmitted: int = 0) -> None:
        self.link = link
        self.retransmitted = retransmitted
        self.opened = time.perf_counter()
        self.bytes = 0.0
        self.last = self.opened
        self.fail_after = fail_after
        self.closed = threading.Event()
        self.allowance = byte_cap
        with link.lock:
            link.streams.append(self)

    def pump(self) -> None:
        if self.closed.wait(0.01):
            return
        now = time.perf_counter()
        with self.link.lock:
            step = self.link.rate_of_one(self, now) * (now - self.last)
            if self.allowance is not None:
                step = self.allowance.reserve(int(step))
                if step == 0:
                    raise StreamDone
            self.bytes += step
            self.last = now
        if self.fail_after is not None and now - self.opened > self.fail_after:
            raise TransferError("connection reset by the server")

    def moved(self) -> int:
        return int(self.bytes)

    def retransmits(self) -> int | None:
        return self.retransmitted

    def close(self) -> None:
        self.closed.set()


def test_slow_start_is_left_out_of_the_rate() -> None:
    link = Link(capacity=20 * MB, per_stream=20 * MB, ramp=0.8)
    result = measure(lambda i: SyntheticStream(link, retransmitted=3), Limits(3.0, 10**12, 4, 4))
    whole = result.bytes / result.seconds
    assert result.bytes_per_second == pytest.approx(20 * MB, rel=0.04)
    assert whole < result.bytes_per_second * 0.95, "the average over everything is lower"
    assert 1.5 < result.window_seconds < result.seconds
    assert result.streams == 4 and result.retransmits == 12


def test_streams_are_added_while_throughput_rises_and_not_beyond() -> None:
    # One stream carries at most 2 MB/s; the line carries 16 MB/s: eight streams fill it.
    link = Link(capacity=16 * MB, per_stream=2 * MB, ramp=0.0)
    result = measure(lambda i: SyntheticStream(link), Limits(3.0, 10**12, 2, 32))
    assert 8 <= result.streams <= 16, "doubling stops once the line is full"
    assert result.bytes_per_second == pytest.approx(16 * MB, rel=0.05)


class Pings:
    """Round trips under load as a test sets them."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def start(self) -> None:
        pass

    def recent(self) -> float | None:
        return self.seconds

    def stop(self) -> list[float]:
        return [self.seconds]


def test_no_streams_are_added_once_the_line_is_full() -> None:
    # Each stream could carry more, but the queue before the bottleneck is filling
    # (round trips 40 ms under load against 2 ms idle), or the streams lose packets.
    link = Link(capacity=16 * MB, per_stream=2 * MB, ramp=0.0)
    queueing = measure(lambda i: SyntheticStream(link), Limits(3.0, 10**12, 2, 32), Pings(0.040), 0.002)
    assert queueing.streams == 2 and queueing.loaded_latency_seconds == 0.040

    link = Link(capacity=16 * MB, per_stream=2 * MB, ramp=0.0)
    losing = iter(range(1000))

    class Lossy(SyntheticStream):
        def retransmits(self) -> int | None:
            return next(losing)

    assert measure(lambda i: Lossy(link), Limits(3.0, 10**12, 2, 32)).streams == 2

    link = Link(capacity=16 * MB, per_stream=2 * MB, ramp=0.0)
    calm = measure(lambda i: SyntheticStream(link), Limits(3.0, 10**12, 2, 32), Pings(0.003), 0.002)
    assert calm.streams >= 8, "a little more delay under load is no reason to stop"


def test_the_stream_cap_is_kept() -> None:
    link = Link(capacity=100 * MB, per_stream=1 * MB, ramp=0.0)
    result = measure(lambda i: SyntheticStream(link), Limits(4.0, 10**12, 2, 5))
    assert result.streams == 5
    assert result.bytes_per_second == pytest.approx(5 * MB, rel=0.05)


def test_the_duration_and_the_byte_cap_bound_the_test() -> None:
    link = Link(capacity=50 * MB, per_stream=50 * MB, ramp=0.0)
    started = time.monotonic()
    timed = measure(lambda i: SyntheticStream(link), Limits(1.0, 10**12, 2, 2))
    assert time.monotonic() - started < 1.6 and timed.seconds < 1.2

    link = Link(capacity=50 * MB, per_stream=50 * MB, ramp=0.0)
    cap = Allowance(20 * MB)
    capped = measure(lambda i: SyntheticStream(link, byte_cap=cap), Limits(10.0, 20 * MB, 2, 2))
    assert capped.bytes == pytest.approx(20 * MB, abs=10)
    assert capped.seconds < 1.0


def test_a_stream_that_fails_fails_the_direction() -> None:
    link = Link(capacity=10 * MB, per_stream=10 * MB, ramp=0.0)
    openers = iter([0.5, None, None, None])
    with pytest.raises(TransferError, match="reset by the server"):
        measure(lambda i: SyntheticStream(link, fail_after=next(openers)), Limits(3.0, 10**12, 4, 4))


def test_a_stream_that_cannot_open_fails_the_direction() -> None:
    def refuse(index: int) -> SyntheticStream:
        raise TransferError("cannot connect to 10.0.0.1:80: refused")

    with pytest.raises(TransferError, match="cannot connect"):
        measure(refuse, Limits(3.0, 10**12, 4, 4))


def test_plateau_start_on_samples_taken_elsewhere() -> None:
    # Half-second samples of a transfer that ramps up for a second, then runs at 10 MB/s.
    rates = [2, 6, 10, 10, 10, 10, 10, 10]
    samples, total = [(0.0, 0)], 0
    for index, rate in enumerate(rates, 1):
        total += rate * MB // 2
        samples.append((index * 0.5, total))
    start = plateau_start(samples, duration=4.0)
    # The step 1.5-2.0 s is the first that did not rise: the window starts there.
    assert samples[start][0] == 1.5, "the window starts after the ramp"
    rate, window = goodput(samples, start)
    assert rate == pytest.approx(10 * MB) and window == 2.5
    with pytest.raises(TransferError, match="too few"):
        goodput([(0.0, 0), (1.0, 10)], 0)
