"""Availability in school hours: the share of observed school time without an outage.

    availability = 1 - |outages (merged) within school time| / school time observed

School time is the union of the calendar's session intervals clipped to [observed_from,
now]: before the school began observing nothing is known, so it is not called available.
"""

from __future__ import annotations

from collections.abc import Iterable

from collector.availability import union_seconds


def merged(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, non-overlapping intervals covering the same time."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def school_time_seconds(sessions: Iterable[tuple[float, float]], observed_from: float, now: float) -> float:
    return sum(max(0.0, min(b, now) - max(a, observed_from)) for a, b in merged(sessions))


def school_hours_availability(outages: Iterable[tuple[float, float]], sessions: Iterable[tuple[float, float]],
                              observed_from: float, now: float) -> float | None:
    """None when no school time was observed (a holiday, a weekend, a new school)."""
    down = list(outages)
    observed = 0.0
    outage = 0.0
    for a, b in merged(sessions):
        start, end = max(a, observed_from), min(b, now)
        if end > start:
            observed += end - start
            outage += union_seconds(down, start, end)
    return None if observed <= 0 else 1.0 - outage / observed
