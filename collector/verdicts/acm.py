"""ACM (the Netherlands): the Dutch regulator's reading of the speeds a fixed-line contract states.

From the ACM's policy rule on internet speeds (Beleidsregel kenbaarheid internetsnelheden,
Stcrt. 2017, 68591, in force since 1 January 2018), which gives meaning to the speeds that
Regulation (EU) 2015/2120 art. 4(1)(d) makes a contract state:

- the normally available speed is reached in at least 8 of 10 measurements (with N
  measurements: in at least 80 % of them);
- the minimum speed is never undercut;
- at least 90 % of the maximum speed is reached in at least 1 of 10 measurements (with N: in
  at least 10 % of them; the ACM asks for that within a week, our window is what the caller
  chose);
- the measurements are spread over at least 3 days, and at most one per hour is counted.

Our choices where the rule leaves them open: of several measurements in one clock hour the
first counts; "enough data" is at least 10 counted measurements over at least 3 days, per
direction; the rule is applied at any hour of the day, as the ACM does (not only in school
hours).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from collector.terms import DIRECTIONS, Direction, Level
from collector.verdicts.model import Measurement, in_window, one_per_hour
from collector.verdicts.verdict import (
    LEVEL_WORDS,
    Check,
    Comparison,
    Counts,
    RuleVerdict,
    Source,
    counts_for,
    level_speeds,
    not_stated,
    rule_verdict,
    shortfall,
)

NAME = "acm"
SOURCE = Source(
    "ACM, Beleidsregel kenbaarheid internetsnelheden (Stcrt. 2017, 68591), art. 2-4; "
    "Telecommunicatiewet art. 7.1a; Regulation (EU) 2015/2120 art. 4",
    "https://zoek.officielebekendmakingen.nl/stcrt-2017-68591.html")
MIN_MEASUREMENTS = 10
MIN_DAYS = 3
NORMAL_SHARE = 0.8  # 8 of 10
MAXIMUM_FRACTION = 0.9  # "at least 90 % of the maximum"
MAXIMUM_SHARE = 0.1  # 1 of 10

# (passed, value) from the (measured, promised) pairs of the counted measurements.
Judge = Callable[[list[tuple[float, float]]], tuple[bool, float]]


def evaluate(measurements: Sequence[Measurement], window_start: float, window_end: float) -> RuleVerdict:
    window = in_window(measurements, window_start, window_end)
    counted: dict[Direction, list[Measurement]] = {}
    counts: dict[Direction, Counts] = {}
    checks: list[Check] = []
    for d in DIRECTIONS:
        counted[d] = one_per_hour(m for m in window if m.judged(d))
        missing = _missing(counted[d])
        counts[d] = counts_for(window, d, counted[d], missing is None, missing)
        checks += _checks(counted[d], d, missing)
    return rule_verdict(NAME, "all", checks, counts, counted, window_start, window_end, SOURCE)


def _missing(counted: Sequence[Measurement]) -> str | None:
    return shortfall(len(counted), MIN_MEASUREMENTS, len({m.local_day for m in counted}), MIN_DAYS)


def _normal(pairs: list[tuple[float, float]]) -> tuple[bool, float]:
    reached = sum(1 for measured, normal in pairs if measured >= normal)
    return reached * 10 >= 8 * len(pairs), reached / len(pairs)  # integers: 8 of 10 exactly


def _minimum(pairs: list[tuple[float, float]]) -> tuple[bool, float]:
    below = sum(1 for measured, minimum in pairs if measured < minimum)
    return below == 0, float(below)


def _maximum(pairs: list[tuple[float, float]]) -> tuple[bool, float]:
    reached = sum(1 for measured, maximum in pairs if measured >= MAXIMUM_FRACTION * maximum)
    return reached * 10 >= len(pairs), reached / len(pairs)


def _checks(counted: list[Measurement], d: Direction, missing: str | None) -> list[Check]:
    return [
        _check("normal_in_80_percent", counted, d, "normal", missing, _normal, NORMAL_SHARE, ">=",
               "of the counted measurements reached the normally available speed (at least 80 % must)"),
        _check("minimum_never_undercut", counted, d, "minimum", missing, _minimum, 0.0, "<=",
               "counted measurements fell below the minimum speed (none may)"),
        _check("maximum_90_percent_in_1_of_10", counted, d, "maximum", missing, _maximum, MAXIMUM_SHARE,
               ">=", "of the counted measurements reached 90 % of the maximum speed (1 in 10 must)"),
    ]


def _check(name: str, counted: list[Measurement], d: Direction, level: Level, missing: str | None,
           judge: Judge, threshold: float, comparison: Comparison, what: str) -> Check:
    stated = level_speeds(counted, d, level)
    if not stated:
        return Check(name, d, None, None, threshold, comparison, not_stated(level))
    if len(stated) < len(counted):
        # A contract changed and only some terms state this speed: judge those alone, if
        # they are enough on their own.
        subset_missing = _missing([m for m, _, _ in stated])
        if subset_missing is not None:
            return Check(name, d, None, None, threshold, comparison,
                         f"only {len(stated)} of {len(counted)} counted measurements fell under terms "
                         f"that state a {LEVEL_WORDS[level]} ({subset_missing})")
    elif missing is not None:
        passed, value = judge([(s, p) for _, s, p in stated])
        return Check(name, d, None, value, threshold, comparison, f"not enough data: {missing}")
    passed, value = judge([(s, p) for _, s, p in stated])
    shown = f"{value:.0%}" if comparison == ">=" else f"{value:.0f}"
    return Check(name, d, passed, value, threshold, comparison, f"{shown} {what}")
