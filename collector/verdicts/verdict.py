"""What every rule set returns: the checks it made, whether the data was enough, and why.

The outcome follows one rule for all rule sets: "fail" when a check that could be made
failed; "pass" only when every required check could be made and passed; otherwise
"not_enough_data", with the reason in words. A check that could not be made (too few
measurements, or a speed the contract does not state) never counts towards a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from collector.terms import DIRECTIONS, Direction, Level
from collector.verdicts.model import Hours, Measurement
from collector.verdicts.stats import median_interval

Outcome = Literal["pass", "fail", "not_enough_data"]
Comparison = Literal[">=", "<="]

LEVEL_WORDS: dict[Level, str] = {
    "advertised": "advertised speed", "minimum": "minimum speed",
    "normal": "normally available speed", "maximum": "maximum speed"}


@dataclass(frozen=True)
class Source:
    title: str
    url: str


@dataclass(frozen=True)
class Check:
    name: str
    direction: Direction
    passed: bool | None  # None: could not be made (see detail)
    value: float | None
    threshold: float | None
    comparison: Comparison  # passes when value <comparison> threshold
    detail: str
    required: bool = True  # False: reported for information, never decides the outcome


@dataclass(frozen=True)
class Counts:
    direction: Direction
    measurements: int  # in the window and the rule's hours
    invalid: int
    without_terms: int
    without_value: int
    judged: int  # valid, under known terms, that direction measured
    counted: int  # what the rule counts of those (e.g. one per hour)
    days: int  # distinct local days among the counted
    enough: bool
    missing: str | None  # what is short, in words ("7 of 10 measurements; 2 of 3 days")


@dataclass(frozen=True)
class RuleVerdict:
    rule_set: str
    outcome: Outcome
    enough_data: bool
    hours: Hours
    window_start: float
    window_end: float
    counts: dict[Direction, Counts]
    checks: list[Check]
    # Per direction, 95 % interval of the median of the counted measurements.
    median_interval_bytes_per_second: dict[Direction, tuple[float, float] | None]
    median_ratio_interval: dict[Direction, tuple[float, float] | None]
    source: Source
    reason: str | None  # why it failed or why the data was not enough; None on a pass
    figures: dict[str, float | None] = field(default_factory=dict)  # rule-specific, informative
    days: list[str] = field(default_factory=list)  # local dates (ISO) of the counted measurements

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("median_interval_bytes_per_second", "median_ratio_interval"):
            out[key] = {d: list(v) if v is not None else None for d, v in out[key].items()}
        return out


def counts_for(measurements: Sequence[Measurement], direction: Direction, counted: Sequence[Measurement],
               enough: bool, missing: str | None) -> Counts:
    return Counts(
        direction=direction, measurements=len(measurements),
        invalid=sum(1 for m in measurements if not m.valid),
        without_terms=sum(1 for m in measurements if m.valid and m.terms is None),
        without_value=sum(1 for m in measurements if m.valid and m.terms is not None
                          and m.speed(direction) is None),
        judged=sum(1 for m in measurements if m.judged(direction)),
        counted=len(counted), days=len({m.local_day for m in counted}),
        enough=enough, missing=missing)


def shortfall(have_measurements: int, need_measurements: int, have_days: int, need_days: int) -> str | None:
    """"7 of 10 measurements; 2 of 3 days": only what is short; None when nothing is."""
    parts = []
    if have_measurements < need_measurements:
        parts.append(f"{have_measurements} of {need_measurements} measurements")
    if have_days < need_days:
        parts.append(f"{have_days} of {need_days} days")
    return "; ".join(parts) or None


def speed_intervals(counted: dict[Direction, list[Measurement]]) -> tuple[
        dict[Direction, tuple[float, float] | None], dict[Direction, tuple[float, float] | None]]:
    speeds: dict[Direction, tuple[float, float] | None] = {}
    ratios: dict[Direction, tuple[float, float] | None] = {}
    for d in DIRECTIONS:
        speeds[d] = median_interval([s for m in counted[d] if (s := m.speed(d)) is not None])
        ratios[d] = median_interval([r for m in counted[d] if (r := m.ratio(d)) is not None])
    return speeds, ratios


def decide(checks: Sequence[Check], counts: dict[Direction, Counts]) -> tuple[Outcome, str | None]:
    """The one outcome rule (see the module docstring), with its reason in words."""
    required = [c for c in checks if c.required]
    failed = [c for c in required if c.passed is False]
    if failed:
        return "fail", "; ".join(f"{c.direction}: {c.detail}" for c in failed)
    unmade = [c for c in required if c.passed is None]
    if not unmade and required:
        return "pass", None
    reasons = [f"{d}: {c.missing}" for d, c in counts.items() if not c.enough and c.missing]
    # A check can also be unmade with enough measurements: the contract lacks its speed.
    reasons += [f"{c.direction}: {c.detail}" for c in unmade if counts[c.direction].enough]
    return "not_enough_data", "; ".join(dict.fromkeys(reasons)) or "no measurements to judge"


def level_speeds(measurements: Sequence[Measurement], direction: Direction,
                 level: Level) -> list[tuple[Measurement, float, float]]:
    """(measurement, measured, the level's speed in its own terms) where the terms state it."""
    out = []
    for m in measurements:
        measured, promised = m.speed(direction), m.contract_speed(direction, level)
        if measured is not None and promised is not None:
            out.append((m, measured, promised))
    return out


def not_stated(level: Level) -> str:
    return f"the contract states no {LEVEL_WORDS[level]}"


def counted_days(counted: dict[Direction, list[Measurement]]) -> list[str]:
    return sorted({m.local_day.isoformat() for ms in counted.values() for m in ms})


def rule_verdict(rule_set: str, hours: Hours, checks: list[Check], counts: dict[Direction, Counts],
                 counted: dict[Direction, list[Measurement]], window_start: float, window_end: float,
                 source: Source, *, figures: dict[str, float | None] | None = None,
                 enough_data: bool | None = None, days: list[str] | None = None) -> RuleVerdict:
    """A rule set's verdict from its checks and counts, decided by the one outcome rule.
    ``enough_data`` and ``days`` default to what the counted measurements say."""
    outcome, reason = decide(checks, counts)
    speeds, ratios = speed_intervals(counted)
    return RuleVerdict(
        rule_set=rule_set, outcome=outcome,
        enough_data=all(c.enough for c in counts.values()) if enough_data is None else enough_data,
        hours=hours, window_start=window_start, window_end=window_end, counts=counts, checks=checks,
        median_interval_bytes_per_second=speeds, median_ratio_interval=ratios, source=source,
        reason=reason, figures=figures or {}, days=counted_days(counted) if days is None else days)
