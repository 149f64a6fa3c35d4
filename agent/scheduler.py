"""Running each probe on its interval, with jitter, never overlapping itself.

Jitter keeps a fleet of agents from measuring in lock-step (a hundred Pis that booted at
08:00 must not all test the line at 08:00:00). A run that is still going when its next
slot comes skips that slot instead of starting a second copy. A probe with a plan of its
own (the bandwidth tests: random times inside windows) gives a planner instead of an
interval, and the scheduler asks it for the next time after every run.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.clock import now as clock_now
from agent.probes import Measurement, Probe
from agent.wire import ClockStamp

log = logging.getLogger("schoolnet.agent.scheduler")

# The first run comes within this share of the interval (at most FIRST_RUN_CAP seconds).
FIRST_RUN_SPREAD = 0.1
FIRST_RUN_CAP = 600.0
# Later runs: the interval, plus or minus this share.
JITTER = 0.1

Sink = Callable[[str, ClockStamp, Measurement], None]
Starter = Callable[[Callable[[], None]], None]
# A probe's own plan (the bandwidth tests' random times in windows): the wall-clock time
# of its next run after the given one, or None for "not within the planning horizon".
Planner = Callable[[float], float | None]
Timing = float | Planner
# With a planner that finds no time, look again after this long (the config may change).
REPLAN_SECONDS = 3600.0


def start_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, daemon=True).start()


@dataclass
class Slot:
    probe: Probe
    timing: Timing
    next_due: float
    running: bool = False
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Scheduler:
    def __init__(self, sink: Sink, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, start: Starter = start_thread,
                 stamp: Callable[[], ClockStamp] = clock_now,
                 wall: Callable[[], float] = time.time) -> None:
        self.sink = sink
        self.clock = clock
        self.wall = wall
        self.rng = rng or random.Random()
        self.start = start
        self.stamp = stamp
        self.slots: dict[str, Slot] = {}

    def configure(self, probes: dict[str, tuple[Probe, Timing]]) -> None:
        """Set the probes and their timing (an interval, or a planner); probes already
        scheduled keep their next slot unless the new timing brings it closer."""
        now = self.clock()
        for name in list(self.slots):
            if name not in probes:
                del self.slots[name]
        for name, (probe, timing) in probes.items():
            slot = self.slots.get(name)
            if callable(timing):
                due = self._planned(timing)
            elif slot is None:
                due = now + self.rng.uniform(0, min(timing * FIRST_RUN_SPREAD, FIRST_RUN_CAP))
            else:
                due = now + timing
            if slot is None:
                self.slots[name] = Slot(probe, timing, due)
            else:
                # A planner's new plan replaces the old one; an interval only shortens.
                slot.next_due = due if callable(timing) else min(slot.next_due, due)
                slot.probe, slot.timing = probe, timing

    def _planned(self, planner: Planner) -> float:
        """The planner's next time, on the monotonic clock the slots use."""
        wall = self.wall()
        planned = planner(wall)
        if planned is None:
            return self.clock() + REPLAN_SECONDS
        return self.clock() + max(0.0, planned - wall)

    def _next_due(self, slot: Slot, now: float) -> float:
        if callable(slot.timing):
            return self._planned(slot.timing)
        return now + slot.timing * self.rng.uniform(1 - JITTER, 1 + JITTER)

    def start_due(self) -> list[str]:
        """Start every probe whose slot has come; return the names started."""
        now = self.clock()
        started = []
        for name, slot in self.slots.items():
            if slot.next_due > now:
                continue
            slot.next_due = self._next_due(slot, now)
            with slot.lock:
                if slot.running:
                    slot.skipped += 1
                    log.warning("probe %s is still running; skipping this slot", name)
                    continue
                slot.running = True
            self.start(functools.partial(self._run, name, slot))
            started.append(name)
        return started

    def seconds_until_next(self) -> float:
        if not self.slots:
            return 60.0
        return max(0.0, min(slot.next_due for slot in self.slots.values()) - self.clock())

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.start_due()
            stop.wait(min(self.seconds_until_next(), 30.0))

    def _run(self, name: str, slot: Slot) -> None:
        try:
            stamp = self.stamp()
            measurement = slot.probe.measure()
            self.sink(name, stamp, measurement)
            if not measurement.ok:
                log.warning("probe %s failed: %s", name, measurement.error)
        except Exception:
            log.exception("probe %s: could not keep its result", name)
        finally:
            with slot.lock:
                slot.running = False
