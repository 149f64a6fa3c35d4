"""BNetzA (Germany): the measurement campaign that proves a fixed line too slow.

Since December 2021 a German customer may reduce the price or end the contract when the line
deviates "considerably, continuously or regularly" from the contract (TKG § 57(4)); the
Bundesnetzagentur's Allgemeinverfügung of 8 December 2021 (Nr. 99/2021) says when, measured
with its Breitbandmessung desktop app:

- a campaign is 30 measurements on 3 different calendar days, 10 per day, with at least one
  calendar day between measuring days, the three days within 14 days; within a day at least
  5 minutes between measurements and at least 3 hours between the 5th and the 6th;
- a deviation when, per direction: on 2 of the 3 days 90 % of the maximum speed is never
  reached; or the normally available speed is missed in more than 10 % of the measurements;
  or on 2 of the 3 days the minimum speed is undercut.

A school measures on many days; the regulator judges one campaign. Our choice, as the
regulator would take a customer's evidence: the most recent campaign the window holds, i.e.
the latest qualifying day, then the latest earlier qualifying day at least two dates before
it, and so on, all within 14 days. Within a day the first ten measurements that keep the
app's spacing are taken. A measurement counts only with both directions measured (the app
measures both in one test), valid and under known terms; the hours of the day do not matter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from collector.terms import DIRECTIONS, Direction, Level
from collector.verdicts.model import Measurement, in_window
from collector.verdicts.verdict import (
    Check,
    Comparison,
    Counts,
    RuleVerdict,
    Source,
    counts_for,
    level_speeds,
    not_stated,
    rule_verdict,
)

NAME = "bnetza"
SOURCE = Source(
    "Bundesnetzagentur, Allgemeinverfügung Nr. 99/2021 (8 December 2021) on the proof of a deviation "
    "under TKG § 57(4); measured with the Breitbandmessung desktop app",
    "https://www.breitbandmessung.de")
DAYS = 3
PER_DAY = 10
MIN_SPACING = 5 * 60.0  # seconds between measurements of a day
MIDDAY_GAP = 3 * 3600.0  # between the 5th and the 6th of a day
MAX_SPAN_DAYS = 14  # first to last measuring day, inclusive
MIN_DAY_GAP = 2  # dates apart: at least one calendar day between measuring days
MAXIMUM_FRACTION = 0.9
NORMAL_SHARE = 0.9
DAYS_FOR_DEVIATION = 2  # "on 2 of 3 days"


def evaluate(measurements: Sequence[Measurement], window_start: float, window_end: float) -> RuleVerdict:
    window = in_window(measurements, window_start, window_end)
    eligible = [m for m in window if all(m.judged(d) for d in DIRECTIONS)]
    per_day = _days_with_ten(eligible)
    campaign_days = latest_campaign(sorted(per_day))
    campaign = [m for day in campaign_days or () for m in per_day[day]]
    missing = None if campaign_days else _missing(eligible, sorted(per_day))
    counts: dict[Direction, Counts] = {d: counts_for(window, d, campaign, missing is None, missing)
                                       for d in DIRECTIONS}
    checks: list[Check] = []
    for d in DIRECTIONS:
        checks += _checks(campaign, d, missing)
    return rule_verdict(NAME, "all", checks, counts, {d: campaign for d in DIRECTIONS}, window_start,
                        window_end, SOURCE, enough_data=missing is None,
                        days=[day.isoformat() for day in campaign_days or ()])


def pick_day(measurements: Sequence[Measurement]) -> list[Measurement]:
    """The first ten of one day that keep the app's spacing (5 minutes apart, 3 hours between
    the 5th and 6th); fewer when the day does not allow ten. Taking the earliest that fits
    at every step finds ten whenever any ten fit."""
    picked: list[Measurement] = []
    for m in sorted(measurements, key=lambda m: m.measured_at):
        if len(picked) == PER_DAY:
            break
        if picked:
            gap = MIDDAY_GAP if len(picked) == PER_DAY // 2 else MIN_SPACING
            if m.measured_at - picked[-1].measured_at < gap:
                continue
        picked.append(m)
    return picked


def _days_with_ten(eligible: Sequence[Measurement]) -> dict[date, list[Measurement]]:
    by_day: dict[date, list[Measurement]] = {}
    for m in eligible:
        by_day.setdefault(m.local_day, []).append(m)
    picked = {day: pick_day(ms) for day, ms in by_day.items()}
    return {day: ms for day, ms in picked.items() if len(ms) == PER_DAY}


def _compatible_before(days: Sequence[date], last: date) -> list[date]:
    """Greedy from ``last`` backwards: the latest days at least a day apart within 14 days;
    the latest choice at each step leaves the most room for the next."""
    chosen = [last]
    for day in sorted(days, reverse=True):
        if len(chosen) == DAYS:
            break
        if (chosen[-1] - day).days >= MIN_DAY_GAP and (last - day).days < MAX_SPAN_DAYS:
            chosen.append(day)
    return sorted(chosen)


def latest_campaign(days: Sequence[date]) -> tuple[date, ...] | None:
    """The most recent three qualifying days that form a campaign, oldest first."""
    for last in sorted(days, reverse=True):
        chosen = _compatible_before(days, last)
        if len(chosen) == DAYS:
            return tuple(chosen)
    return None


def _missing(eligible: Sequence[Measurement], full_days: Sequence[date]) -> str:
    best = max((len(_compatible_before(full_days, last)) for last in full_days), default=0)
    text = (f"{best} of {DAYS} measuring days with {PER_DAY} measurements "
            f"(at least a day apart, within {MAX_SPAN_DAYS} days)")
    if not full_days:
        per_day: dict[date, list[Measurement]] = {}
        for m in eligible:
            per_day.setdefault(m.local_day, []).append(m)
        most = max((len(pick_day(ms)) for ms in per_day.values()), default=0)
        text += f"; the best day has {most} of {PER_DAY} measurements"
    return text


def _checks(campaign: list[Measurement], d: Direction, missing: str | None) -> list[Check]:
    maximum = _by_day(campaign, d, "maximum", lambda s, p: s >= MAXIMUM_FRACTION * p)
    minimum = _by_day(campaign, d, "minimum", lambda s, p: s < p)
    checks = []
    # Deviation if on 2 of 3 days 90 % of the maximum is never reached: passes with 2 days reaching it.
    checks.append(_made(
        "maximum_90_percent_each_day", d, missing, "maximum", maximum, DAYS - DAYS_FOR_DEVIATION + 1, ">=",
        "of 3 days reached 90 % of the maximum speed at least once (a deviation if 2 days did not)"))
    checks.append(_made(
        "minimum_on_fewer_than_2_days", d, missing, "minimum", minimum, DAYS_FOR_DEVIATION - 1, "<=",
        "of 3 days had a measurement below the minimum speed (a deviation from 2 days on)"))
    pairs = level_speeds(campaign, d, "normal")
    if campaign and len(pairs) < len(campaign):
        checks.append(Check("normal_in_90_percent", d, None, None, NORMAL_SHARE, ">=", not_stated("normal")))
    elif missing is not None:
        checks.append(Check("normal_in_90_percent", d, None, None, NORMAL_SHARE, ">=",
                            f"not enough data: {missing}"))
    else:
        reached = sum(1 for _, s, p in pairs if s >= p)
        checks.append(Check(
            "normal_in_90_percent", d, reached * 10 >= 9 * len(pairs), reached / len(pairs), NORMAL_SHARE,
            ">=", f"{reached} of {len(pairs)} measurements reached the normally available speed "
            "(a deviation if more than 10 % missed it)"))
    return checks


def _by_day(campaign: list[Measurement], d: Direction, level: Level,
            hit: Callable[[float, float], bool]) -> int | None:
    """Days on which at least one measurement ``hit`` the level; None when some terms of
    the campaign do not state that level (the campaign cannot be judged on it)."""
    pairs = level_speeds(campaign, d, level)
    if not campaign or len(pairs) < len(campaign):
        return None
    return len({m.local_day for m, s, p in pairs if hit(s, p)})


def _made(name: str, d: Direction, missing: str | None, level: Level, days: int | None,
          threshold: int, cmp: Comparison, what: str) -> Check:
    if missing is not None:
        return Check(name, d, None, None, float(threshold), cmp, f"not enough data: {missing}")
    if days is None:
        return Check(name, d, None, None, float(threshold), cmp, not_stated(level))
    passed = days >= threshold if cmp == ">=" else days <= threshold
    return Check(name, d, passed, float(days), float(threshold), cmp, f"{days} {what}")
