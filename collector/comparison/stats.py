"""The report's small statistics: Estimates from samples, a Wilson interval, tiers.

Medians and percentiles are nearest-rank (collector/verdicts/stats.py): always an observed
value, the lower middle one when n is even. A median's interval is distribution-free (the
binomial order-statistic interval, n >= 6 at 95 %); a share's is Wilson's score interval,
which stays inside [0, 1] and is honest for small n and for shares near 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from collector.comparison.model import CONFIDENCE, TIER_BOUNDS_MBPS, Estimate, Missing
from collector.verdicts.stats import median, median_interval, nearest_rank

BITS_PER_BYTE = 8
BITS_PER_MBIT = 1_000_000


def mbps(bytes_per_second: float) -> float:
    return bytes_per_second * BITS_PER_BYTE / BITS_PER_MBIT


def tier_of(advertised_bytes_per_second: float | None) -> int:
    """Index into TIER_BOUNDS_MBPS of the tier an advertised download speed falls in
    (a bound belongs to the tier it starts: 100 Mbit/s is the 100-250 tier)."""
    if advertised_bytes_per_second is None:
        return 0
    speed = mbps(advertised_bytes_per_second)
    return max((i for i, bound in enumerate(TIER_BOUNDS_MBPS) if speed >= bound), default=0)


def median_estimate(values: Sequence[float], *, minimum: int, unit: str, too_few: Missing) -> Estimate:
    """The nearest-rank median with its distribution-free interval, or ``too_few`` under
    ``minimum`` values (n says how many there were)."""
    if len(values) < max(minimum, 1):
        return Estimate.none(too_few, n=len(values), unit=unit)
    interval = median_interval(values, CONFIDENCE)
    low, high = interval if interval is not None else (None, None)
    return Estimate(value=median(values), n=len(values), unit=unit, low=low, high=high)


def percentile_estimate(values: Sequence[float], percent: float, *, minimum: int, unit: str,
                        too_few: Missing) -> Estimate:
    """The nearest-rank percentile (no interval), or ``too_few`` under ``minimum`` values."""
    if len(values) < max(minimum, 1):
        return Estimate.none(too_few, n=len(values), unit=unit)
    return Estimate(value=nearest_rank(values, percent), n=len(values), unit=unit)


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval for a binomial share successes / n (n > 0)."""
    if n <= 0:
        raise ValueError("a share of nothing has no interval")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def share_estimate(flags: Sequence[bool], *, minimum: int, unit: str = "lines") -> Estimate:
    """The share of True among ``flags`` with its Wilson interval."""
    if len(flags) < max(minimum, 1):
        return Estimate.none("too_few_lines", n=len(flags), unit=unit)
    hits = sum(1 for flag in flags if flag)
    low, high = wilson_interval(hits, len(flags))
    return Estimate(value=hits / len(flags), n=len(flags), unit=unit, low=low, high=high)
