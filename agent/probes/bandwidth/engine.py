"""The multi-stream transfer engine: how many bytes one direction moves, and how fast.

Protocol-free: a backend hands it a way to open one stream (an HTTP download, an
upload, a WebSocket), and the engine runs the streams, each in its own thread (a
blocking ``recv_into``/``send`` releases the GIL, so threads cost little CPU and TLS
works unchanged), samples the bytes every tenth of a second, and decides:

- **streams**: it starts with ``limits.min_streams``; at every ramp step (half a
  second) in which throughput still rose by more than 10 %, it doubles them, up to
  ``limits.max_streams`` — unless the path is already full: round trips under load
  well above the idle ones (the bottleneck's queue is filling) or retransmissions.
  One TCP stream rarely fills a long, lossy path; sixteen are plenty for a school.
- **the stable window**: the first step in which throughput stopped rising marks the
  end of slow start; goodput is computed from there to the end. If throughput is still
  rising at half the duration, the window starts there anyway.
- **bounds**: it stops at ``limits.duration`` or ``limits.max_bytes``, whichever comes
  first. A stream that fails fails the direction, with its reason: a server that hangs
  up mid-test gives a reason, never a number.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from agent.probes.bandwidth.backend import DirectionResult, Limits, TransferError

SAMPLE_SECONDS = 0.1
RAMP_STEP_SECONDS = 0.5
# A step counts as "still rising" when its rate beat the previous step's by this share.
GROWTH = 0.10
# Throughput still rising here: the window starts anyway (and no more streams are added).
RAMP_SHARE = 0.5
# Fewer bytes than this in the window cannot give a meaningful rate.
MINIMUM_WINDOW_BYTES = 64 * 1024
# What uploads send, over and over: random, so no compression on the way can inflate a
# result; made once per process and sent as slices, so no CPU goes into making data.
RANDOM_BLOCK = os.urandom(1024 * 1024)


class StreamDone(Exception):
    """Raised by ``pump`` when a stream has nothing more to move (the byte cap is
    reserved by the others): it ends without an error."""


class Allowance:
    """The byte cap of one direction, shared by its streams: each reserves what its next
    request will move, so the test stops at the cap instead of overshooting it by
    whatever was in flight."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.lock = threading.Lock()

    def reserve(self, wanted: int) -> int:
        """Up to ``wanted`` bytes for the next request; 0 when the cap is reached."""
        with self.lock:
            granted = min(wanted, self.left)
            self.left -= granted
            return granted


class Stream(Protocol):
    """One open connection moving test data in one direction."""

    def pump(self) -> None:
        """Move the next chunk; block at most the stall timeout. Raise TransferError
        (one line) when the stream cannot go on."""
        ...

    def moved(self) -> int:
        """Payload bytes that count so far: received (download), or acknowledged by the
        peer (upload: bytes merely written into the socket buffer do not count). Called
        from another thread; must be cheap."""
        ...

    def retransmits(self) -> int | None:
        """TCP segments this stream retransmitted, where the OS says; else None."""
        ...

    def close(self) -> None:
        """Stop at once; a ``pump`` blocked in another thread must return or raise."""
        ...


StreamOpener = Callable[[int], Stream]


class LatencyUnderLoad(Protocol):
    """Round trips measured while the transfer runs (bufferbloat)."""

    def start(self) -> None: ...

    def recent(self) -> float | None:
        """The median of the last few round trips, seconds; None before there are any."""
        ...

    def stop(self) -> list[float]:
        """Stop and return the round trips measured, seconds."""
        ...


# The bottleneck's queue is filling when round trips under load exceed the idle ones by
# this much (and by at least QUEUE_DELAY_SECONDS): the line is full, and more streams
# would only add loss and delay for everyone else on it.
QUEUE_DELAY_FACTOR = 2.0
QUEUE_DELAY_SECONDS = 0.005


def line_is_full(latency: LatencyUnderLoad | None, idle: float | None,
                 retransmits_now: int | None, retransmits_before: int | None) -> bool:
    """Whether the evidence says the path is already full: queueing delay, or loss."""
    if retransmits_now is not None and retransmits_before is not None \
            and retransmits_now > retransmits_before:
        return True
    loaded = latency.recent() if latency is not None else None
    if loaded is None or idle is None:
        return False
    return loaded > max(idle * QUEUE_DELAY_FACTOR, idle + QUEUE_DELAY_SECONDS)


@dataclass
class _Running:
    stream: Stream
    thread: threading.Thread | None = None
    error: str | None = None
    finished: bool = False


@dataclass
class _Run:
    opener: StreamOpener
    stop: threading.Event = field(default_factory=threading.Event)
    running: list[_Running] = field(default_factory=list)

    def add(self, count: int) -> None:
        for _ in range(count):
            stream = self.opener(len(self.running))
            entry = _Running(stream)
            entry.thread = threading.Thread(target=self._pump, args=(entry,), daemon=True,
                                            name=f"bandwidth-stream-{len(self.running)}")
            self.running.append(entry)
            entry.thread.start()

    def _pump(self, entry: _Running) -> None:
        try:
            while not self.stop.is_set():
                entry.stream.pump()
        except StreamDone:
            pass
        except TransferError as exc:
            if not self.stop.is_set():
                entry.error = str(exc)
        except Exception as exc:  # a bug or an odd OS error: a reason, never a crash
            if not self.stop.is_set():
                entry.error = f"{type(exc).__name__}: {exc}"
        finally:
            entry.finished = True

    def moved(self) -> int:
        return sum(entry.stream.moved() for entry in self.running)

    def retransmits(self) -> int | None:
        """All streams' retransmits; None unless every stream's OS says."""
        counts = [entry.stream.retransmits() for entry in self.running]
        known = [count for count in counts if count is not None]
        return sum(known) if counts and len(known) == len(counts) else None

    def first_error(self) -> str | None:
        return next((entry.error for entry in self.running if entry.error), None)

    def all_finished(self) -> bool:
        return all(entry.finished for entry in self.running)

    def close(self) -> None:
        self.stop.set()
        for entry in self.running:
            entry.stream.close()
        for entry in self.running:
            if entry.thread is not None:
                entry.thread.join(timeout=5)


def plateau_start(samples: list[tuple[float, int]], duration: float) -> int:
    """For samples taken elsewhere (iperf3's intervals, ndt7's measurements): the index of
    the sample where slow start ended, by the same rule the engine uses live (the first
    half-second step that did not beat the previous one by 10 %; at most half-way).
    Never the last sample: a window needs two ends."""
    return min(_plateau_start(samples, duration), max(0, len(samples) - 2))


def _plateau_start(samples: list[tuple[float, int]], duration: float) -> int:
    previous_rate: float | None = None
    step_begin = 0
    for index in range(1, len(samples)):
        elapsed = samples[index][0]
        # A step is (about) half a second: iperf3's intervals come a few microseconds short.
        if elapsed - samples[step_begin][0] < RAMP_STEP_SECONDS * 0.95 and index < len(samples) - 1:
            continue
        rate = (samples[index][1] - samples[step_begin][1]) / max(elapsed - samples[step_begin][0], 1e-9)
        if previous_rate is not None and rate <= previous_rate * (1 + GROWTH):
            return step_begin
        if elapsed >= duration * RAMP_SHARE:
            return index if index < len(samples) - 1 else step_begin
        previous_rate, step_begin = rate, index
    return max(0, len(samples) // 2)


def goodput(samples: list[tuple[float, int]], start: int) -> tuple[float, float]:
    """(bytes per second, window seconds) from ``samples[start]`` to the last sample;
    TransferError when the window holds too little to measure."""
    (t0, b0), (t1, b1) = samples[start], samples[-1]
    if b1 - b0 < MINIMUM_WINDOW_BYTES or t1 <= t0:
        raise TransferError(f"only {b1 - b0} bytes moved in the {t1 - t0:.1f} s after slow start "
                            f"({b1} in all), too few to measure a rate")
    return (b1 - b0) / (t1 - t0), t1 - t0


def measure(opener: StreamOpener, limits: Limits, latency: LatencyUnderLoad | None = None,
            idle_latency: float | None = None,
            clock: Callable[[], float] = time.perf_counter,
            sleep: Callable[[float], None] = time.sleep) -> DirectionResult:
    """Run one direction with as many streams as help, and return its goodput.

    ``idle_latency`` (the round trip before the test) lets the engine see the
    bottleneck's queue fill: then the line is full and no streams are added."""
    run = _Run(opener)
    samples: list[tuple[float, int]] = []
    window_start: int | None = None  # index into samples
    pinging = False
    try:
        # The clock starts before the first stream: on a fast link, a small test can be
        # over before the first sample.
        started = clock()
        samples.append((0.0, 0))
        run.add(min(limits.min_streams, limits.max_streams))
        if latency is not None:
            latency.start()
            pinging = True
        step_samples = max(1, round(RAMP_STEP_SECONDS / SAMPLE_SECONDS))
        previous_rate: float | None = None
        retransmits_before = run.retransmits()
        while True:
            sleep(SAMPLE_SECONDS)
            elapsed = clock() - started
            moved = run.moved()
            samples.append((elapsed, moved))
            error = run.first_error()
            if error:
                raise TransferError(f"after {moved} bytes: {error}")
            if elapsed >= limits.duration or moved >= limits.max_bytes or run.all_finished():
                break
            if window_start is None and (len(samples) - 1) % step_samples == 0:
                # After the first step, streams are doubled as a probe; after each later
                # step, again only if throughput rose since: more streams helped.
                step_start = samples[-1 - step_samples]
                rate = (moved - step_start[1]) / max(elapsed - step_start[0], 1e-9)
                if previous_rate is not None and rate <= previous_rate * (1 + GROWTH):
                    window_start = len(samples) - 1 - step_samples
                elif elapsed >= limits.duration * RAMP_SHARE:
                    window_start = len(samples) - 1
                elif len(run.running) < limits.max_streams:
                    retransmits_now = run.retransmits()
                    if not line_is_full(latency, idle_latency, retransmits_now, retransmits_before):
                        run.add(min(len(run.running), limits.max_streams - len(run.running)))
                    retransmits_before = retransmits_now
                previous_rate = rate
        retransmits = run.retransmits()
    finally:
        round_trips = latency.stop() if latency is not None and pinging else []
        streams = len(run.running)
        run.close()
    if window_start is None:
        # Stopped during the ramp (the byte cap came first, or the server ended): the
        # second half is the best estimate of the steady state there is.
        half = samples[-1][0] / 2
        window_start = next(i for i, (t, _) in enumerate(samples) if t >= half)
        window_start = min(window_start, len(samples) - 2)  # never an empty window
    rate, window = goodput(samples, window_start)
    return DirectionResult(
        bytes_per_second=rate, bytes=samples[-1][1], seconds=samples[-1][0],
        window_seconds=window, streams=streams,
        loaded_latency_seconds=statistics.median(round_trips) if round_trips else None,
        retransmits=retransmits,
    )
