"""The scheduler with a fake clock: jitter bounds, no overlap, failures recorded."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from agent.clock import now
from agent.config import AgentSettings
from agent.outbox import Outbox
from agent.probes import Probe, ProbeContext, ProbeError
from agent.scheduler import FIRST_RUN_CAP, Scheduler


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RunPayload(BaseModel):
    run: int


class CountingProbe(Probe):
    name = "system"

    def __init__(self, context: ProbeContext, fail: bool = False) -> None:
        super().__init__(context)
        self.fail = fail
        self.runs = 0

    def run(self) -> RunPayload:
        self.runs += 1
        if self.fail:
            raise ProbeError("sensor unplugged")
        return RunPayload(run=self.runs)


def context(tmp_path: Path) -> ProbeContext:
    return ProbeContext(AgentSettings(state_dir=tmp_path), None, tmp_path)


def scheduler(clock: FakeClock, kept: list, start: Callable | None = None) -> Scheduler:  # type: ignore[type-arg]
    return Scheduler(lambda name, stamp, m: kept.append((name, m)), clock=clock,
                     rng=random.Random(1), start=start or (lambda work: work()), stamp=now)


def test_runs_follow_the_interval_with_bounded_jitter(tmp_path: Path) -> None:
    clock, kept = FakeClock(), []
    probe = CountingProbe(context(tmp_path))
    schedule = scheduler(clock, kept)
    schedule.configure({"system": (probe, 60.0)})
    first = schedule.slots["system"].next_due - clock.now
    assert 0 <= first <= 6.0, "the first run comes within 10 % of the interval"
    starts = []
    for _ in range(24 * 3600):  # a simulated day, looked at every second
        if schedule.start_due():
            starts.append(clock.now)
        clock.now += 1
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(54 <= gap <= 67 for gap in gaps), "60 s +/- 10 %"
    assert len(set(gaps)) > 5, "jittered, not lock-step"
    assert 1300 <= len(starts) <= 1600
    assert probe.runs == len(starts) == len(kept)


def test_long_intervals_start_within_the_cap(tmp_path: Path) -> None:
    schedule = scheduler(FakeClock(), [])
    for seed in range(20):
        schedule.rng = random.Random(seed)
        schedule.slots.clear()
        schedule.configure({"system": (CountingProbe(context(tmp_path)), 6 * 3600.0)})
        assert schedule.slots["system"].next_due - 1000.0 <= FIRST_RUN_CAP


def test_a_run_still_going_skips_its_next_slot(tmp_path: Path) -> None:
    clock, kept = FakeClock(), []
    started: list[Callable[[], None]] = []
    schedule = scheduler(clock, kept, start=started.append)  # runs only when we say
    schedule.configure({"system": (CountingProbe(context(tmp_path)), 60.0)})
    clock.now += 100
    assert schedule.start_due() == ["system"]
    clock.now += 100
    assert schedule.start_due() == [], "never two runs of one probe at once"
    assert schedule.slots["system"].skipped == 1
    started[0]()  # the first run finishes
    clock.now += 100
    assert schedule.start_due() == ["system"]


def test_a_failed_run_is_recorded_with_its_reason(tmp_path: Path) -> None:
    clock, kept = FakeClock(), []
    schedule = scheduler(clock, kept)
    schedule.configure({"system": (CountingProbe(context(tmp_path), fail=True), 60.0)})
    clock.now += 100
    schedule.start_due()
    [(name, measurement)] = kept
    assert name == "system" and not measurement.ok and measurement.error == "sensor unplugged"


def test_a_crashing_probe_becomes_a_failure_record(tmp_path: Path) -> None:
    class Broken(Probe):
        name = "system"

        def run(self) -> RunPayload:
            raise ZeroDivisionError("division by zero")

    measurement = Broken(context(tmp_path)).measure()
    assert not measurement.ok and measurement.error == "ZeroDivisionError: division by zero"


def test_threads_really_run_and_stop(tmp_path: Path) -> None:
    kept: list = []  # type: ignore[type-arg]
    done = threading.Event()
    schedule = Scheduler(lambda name, stamp, m: (kept.append(m), done.set()))
    schedule.configure({"system": (CountingProbe(context(tmp_path)), 0.01)})
    stop = threading.Event()
    runner = threading.Thread(target=schedule.run, args=(stop,))
    runner.start()
    assert done.wait(5)
    stop.set()
    runner.join(5)
    assert not runner.is_alive() and kept[0].ok


def test_a_long_multi_line_reason_still_makes_a_valid_record(tmp_path: Path) -> None:
    class Verbose(Probe):
        name = "system"

        def run(self) -> RunPayload:
            raise ProbeError("line one\n" + "x" * 5000)

    measurement = Verbose(context(tmp_path)).measure()
    assert measurement.error is not None
    assert "\n" not in measurement.error and len(measurement.error) <= 1000
    assert measurement.error.startswith("line one xxx")
    outbox = Outbox(tmp_path / "outbox.sqlite", 1_000_000)
    outbox.add("system", now(), measurement.ok, measurement.error, measurement.payload)
    assert outbox.status().records == 1
