"""Summaries of a window's round trips: loss, percentiles and jitter that mean something.

Loss is counted over every probe of the window (at the defaults 120 per target), never
from one ping. Jitter is RFC 3550's idea without its smoothing: the mean absolute
difference between consecutive round trips, in the order they were sent, over the probes
that came back (a lost probe breaks no pair: the neighbours either side form one).
Percentiles use the nearest-rank method, so every figure is a round trip that happened.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(ordered: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence; None when it is empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def jitter(round_trips: Sequence[float]) -> float | None:
    """Mean absolute difference of consecutive round trips; None with fewer than two."""
    if len(round_trips) < 2:
        return None
    steps = [abs(later - earlier) for earlier, later in itertools.pairwise(round_trips)]
    return sum(steps) / len(steps)


@dataclass(frozen=True)
class Summary:
    sent: int
    received: int
    loss_ratio: float | None
    minimum: float | None
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    maximum: float | None
    jitter: float | None


def summarise(sent: int, round_trips: Sequence[float]) -> Summary:
    """``round_trips`` in the order the probes were sent (the lost ones left out)."""
    ordered = sorted(round_trips)
    received = len(ordered)
    return Summary(
        sent=sent, received=received,
        loss_ratio=(sent - received) / sent if sent else None,
        minimum=ordered[0] if ordered else None,
        mean=sum(ordered) / received if ordered else None,
        p50=percentile(ordered, 0.5), p90=percentile(ordered, 0.9),
        p99=percentile(ordered, 0.99), maximum=ordered[-1] if ordered else None,
        jitter=jitter(round_trips),
    )
