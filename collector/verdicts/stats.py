"""Order statistics: nearest-rank percentiles and a distribution-free interval for the median.

Speeds are not normally distributed (a line is capped at its profile and falls away under
load), so nothing here assumes a distribution: percentiles are observed values, and the
median's confidence interval comes from the binomial distribution of how many results fall
below the true median, which holds whatever the speeds look like.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from fractions import Fraction


def nearest_rank(values: Sequence[float], percent: float) -> float:
    """The p-th percentile by the nearest-rank method: the ceil(p/100 * n)-th smallest value,
    always one of the observed values. p in (0, 100]."""
    if not values:
        raise ValueError("no values to take a percentile of")
    if not 0 < percent <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {percent}")
    # Exact arithmetic: 0.2 * 10 in floats must not become rank 3.
    rank = math.ceil(Fraction(str(percent)) * len(values) / 100)
    return sorted(values)[max(rank, 1) - 1]


def median(values: Sequence[float]) -> float:
    """The nearest-rank median (the lower middle value when n is even)."""
    return nearest_rank(values, 50)


# Exact binomial sums are slow (Fractions over 2^n) and /metrics asks for the same few n
# thousands of times per computation: the ranks depend on n and the confidence alone.
@functools.lru_cache(maxsize=1024)
def median_interval_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """1-based ranks (j, k) of the order statistics that bound the median with at least the
    given confidence: P(j <= B <= k - 1) >= confidence for B ~ Bin(n, 1/2), symmetric
    (k = n + 1 - j) and as narrow as possible; None when even (1, n) is not enough."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    if n < 1:
        return None
    total = 2 ** n
    wanted = Fraction(str(confidence))
    best: tuple[int, int] | None = None
    below = 0  # sum of C(n, i) for i < j: 2^n * P(B <= j - 1)
    # Coverage of [x_(j), x_(n+1-j)] is 1 - 2 * P(B <= j - 1); it shrinks as j grows, so
    # the last j that still covers enough gives the narrowest interval.
    for j in range(1, (n + 1) // 2 + 1):
        below += math.comb(n, j - 1)
        if Fraction(total - 2 * below, total) < wanted:
            break
        best = (j, n + 1 - j)
    return best


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the median: (x_(j), x_(k)) by
    `median_interval_ranks`; None when there are too few values (n < 6 at 95 %)."""
    ranks = median_interval_ranks(len(values), confidence)
    if ranks is None:
        return None
    ordered = sorted(values)
    return ordered[ranks[0] - 1], ordered[ranks[1] - 1]
