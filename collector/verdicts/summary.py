"""Per direction, over school hours, outside them or all: how the measured speeds compare with
the contract's advertised speed.

Every figure is computed from the judged measurements only (valid, under known terms, that
direction measured); those left out are counted, by why, so a reader sees what a figure rests
on. Ratios use each measurement's own terms: after an upgrade mid-window the old results are
judged by the old contract and the new ones by the new.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from collector.terms import Direction
from collector.verdicts.model import Hours, Measurement, in_hours
from collector.verdicts.stats import median, median_interval, nearest_rank

# Bands of the distribution, as ratios of the advertised speed.
GOOD_RATIO = 0.95
FAIR_RATIO = 0.80


@dataclass(frozen=True)
class DirectionSummary:
    direction: Direction
    hours: Hours
    measurements: int  # in these hours, judged or not
    invalid: int  # the agent itself was the limit
    without_terms: int  # no contract known for that day
    without_value: int  # that direction not measured
    n: int  # judged: what every figure below rests on
    median_bytes_per_second: float | None
    median_interval_bytes_per_second: tuple[float, float] | None  # 95 %, None when n < 6
    p20_bytes_per_second: float | None  # the "80/80" speed: reached in 80 % of tests
    median_ratio: float | None  # median of measured / advertised
    median_ratio_interval: tuple[float, float] | None
    ratio_80_80: float | None  # 20th percentile of measured / advertised
    mean_ratio: float | None
    share_at_least_95: float | None  # share of tests >= 95 % of advertised
    share_80_to_95: float | None
    share_below_80: float | None
    per_device_tests: int  # judged tests that carried a concurrent-device count
    per_device_median_bytes_per_second: float | None  # median of speed / concurrent devices

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("median_interval_bytes_per_second", "median_ratio_interval"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out


def direction_summary(measurements: Iterable[Measurement], direction: Direction,
                      hours: Hours) -> DirectionSummary:
    chosen = in_hours(measurements, hours)
    judged = [m for m in chosen if m.judged(direction)]
    speeds = [s for m in judged if (s := m.speed(direction)) is not None]
    ratios = [r for m in judged if (r := m.ratio(direction)) is not None]
    per_device = [s / m.concurrent_devices for m in judged
                  if (s := m.speed(direction)) is not None
                  # 0 devices during a test cannot be divided by; the agent itself is one
                  and m.concurrent_devices is not None and m.concurrent_devices > 0]
    n = len(ratios)
    return DirectionSummary(
        direction=direction, hours=hours, measurements=len(chosen),
        invalid=sum(1 for m in chosen if not m.valid),
        without_terms=sum(1 for m in chosen if m.valid and m.terms is None),
        without_value=sum(1 for m in chosen if m.valid and m.terms is not None
                          and m.speed(direction) is None),
        n=n,
        median_bytes_per_second=median(speeds) if speeds else None,
        median_interval_bytes_per_second=median_interval(speeds),
        p20_bytes_per_second=nearest_rank(speeds, 20) if speeds else None,
        median_ratio=median(ratios) if ratios else None,
        median_ratio_interval=median_interval(ratios),
        ratio_80_80=nearest_rank(ratios, 20) if ratios else None,
        mean_ratio=sum(ratios) / n if n else None,
        share_at_least_95=_share(ratios, lambda r: r >= GOOD_RATIO),
        share_80_to_95=_share(ratios, lambda r: FAIR_RATIO <= r < GOOD_RATIO),
        share_below_80=_share(ratios, lambda r: r < FAIR_RATIO),
        per_device_tests=len(per_device),
        per_device_median_bytes_per_second=median(per_device) if per_device else None,
    )


def _share(ratios: list[float], keep: Any) -> float | None:
    return sum(1 for r in ratios if keep(r)) / len(ratios) if ratios else None
