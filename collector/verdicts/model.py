"""One bandwidth result as the verdicts see it: the speeds, the terms in force, and the clock.

The caller attributes each stored result to a connection, finds the terms in force on the
school's local date and the school's calendar, and hands over these frozen rows; everything
here is arithmetic on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from collector.terms import Direction, Level, Terms

Hours = Literal["school", "outside", "all"]
HOURS: tuple[Hours, ...] = ("school", "outside", "all")


@dataclass(frozen=True)
class Measurement:
    measured_at: float  # Unix seconds
    local_day: date  # the school's local date
    # The local clock hour with its UTC offset ("2026-10-25T02+02:00"): the autumn's repeated
    # hour is two keys, so "at most one per hour" never merges two real hours.
    hour_key: str
    in_session: bool  # school time by the school's own calendar
    download: float | None  # bytes per second; None when that direction was not measured
    upload: float | None
    terms: Terms | None  # the terms in force then; None: no contract known, not judged
    valid: bool  # False when the agent itself was the limit: never held against a provider
    concurrent_devices: int | None
    source: str
    backend: str
    server: str

    def speed(self, direction: Direction) -> float | None:
        return self.download if direction == "download" else self.upload

    def contract_speed(self, direction: Direction, level: Level) -> float | None:
        """The speed this measurement's own terms state (None where they state none)."""
        if self.terms is None:
            return None
        speed = self.terms.speed(direction, level)
        # A stated speed of 0 cannot be a yardstick: a ratio to it means nothing.
        return speed if speed is not None and speed > 0 else None

    def ratio(self, direction: Direction, level: Level = "advertised") -> float | None:
        """Measured / the level's speed in this measurement's own terms, so a contract that
        changed mid-window judges each result by what was promised at the time."""
        measured, promised = self.speed(direction), self.contract_speed(direction, level)
        if measured is None or promised is None:
            return None
        return measured / promised

    def judged(self, direction: Direction) -> bool:
        """Counts in a verdict: valid, under known terms, and that direction measured."""
        return self.valid and self.terms is not None and self.speed(direction) is not None


def in_hours(measurements: Iterable[Measurement], hours: Hours) -> list[Measurement]:
    if hours == "all":
        return list(measurements)
    want = hours == "school"
    return [m for m in measurements if m.in_session == want]


def in_window(measurements: Iterable[Measurement], start: float, end: float) -> list[Measurement]:
    """Measurements taken in [start, end), oldest first."""
    return sorted((m for m in measurements if start <= m.measured_at < end), key=lambda m: m.measured_at)


def one_per_hour(measurements: Iterable[Measurement]) -> list[Measurement]:
    """The first measurement of each clock hour, oldest first. The ACM counts at most one
    per hour so that a burst of tests during one passing fault does not decide a verdict."""
    first: dict[str, Measurement] = {}
    for m in sorted(measurements, key=lambda m: m.measured_at):
        first.setdefault(m.hour_key, m)
    return sorted(first.values(), key=lambda m: m.measured_at)
