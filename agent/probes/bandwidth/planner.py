"""When the bandwidth tests run: a few a day, at random times inside the configured windows.

Random, because a fleet of agents testing on the hour would all measure the same
moment (and congest the servers); inside windows, because the school's peak is the
school day and the contract is judged there; optionally outside lessons, so a test
never disturbs a lesson on a thin line. The times of one day are drawn from a seed of
the agent and the date, so a restart does not draw a second set for the same day.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from agent.config import BandwidthProbeConfig

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAYS_AHEAD = 8  # every weekday comes up within a week, plus today


def minutes(clock_range: str) -> tuple[int, int]:
    """"08:30-15:30" -> (510, 930), minutes since midnight."""
    start, end = clock_range.split("-")
    (h1, m1), (h2, m2) = (map(int, start.split(":")), map(int, end.split(":")))
    return h1 * 60 + m1, h2 * 60 + m2


def open_spans(config: BandwidthProbeConfig, weekday: str) -> list[tuple[int, int]]:
    """The day's minutes in which a test may start, as sorted, disjoint spans."""
    if weekday not in config.days:
        return []
    spans = sorted(minutes(window) for window in config.windows)
    if config.avoid_lessons and weekday in config.lesson_days:
        lesson_start, lesson_end = minutes(config.lessons)
        cut: list[tuple[int, int]] = []
        for start, end in spans:
            cut += [(start, min(end, lesson_start)), (max(start, lesson_end), end)]
        spans = cut
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def day_times(config: BandwidthProbeConfig, day: dt.date, seed: str) -> list[dt.datetime]:
    """The day's test times, local time, sorted."""
    spans = open_spans(config, WEEKDAYS[day.weekday()])
    total = sum(end - start for start, end in spans)
    if total == 0:
        return []
    rng = random.Random(f"{seed}/{day.isoformat()}")
    times = []
    for _ in range(config.tests_per_day):
        offset = rng.uniform(0, total)
        for start, end in spans:
            if offset < end - start:
                seconds = (start + offset) * 60
                midnight = dt.datetime.combine(day, dt.time())
                times.append(midnight + dt.timedelta(seconds=seconds))
                break
            offset -= end - start
    return sorted(times)


def upcoming(config: BandwidthProbeConfig, after: float, seed: str) -> Iterator[float]:
    start = dt.datetime.fromtimestamp(after).date()
    for ahead in range(DAYS_AHEAD):
        for moment in day_times(config, start + dt.timedelta(days=ahead), seed):
            stamp = moment.timestamp()  # local time, DST-aware
            if stamp > after:
                yield stamp


def next_test(config: BandwidthProbeConfig, after: float, seed: str) -> float | None:
    """Unix time of the next test after ``after``; None when the windows allow none."""
    return next(upcoming(config, after, seed), None)
