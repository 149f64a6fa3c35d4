"""What the FCC-style and Giga rule sets share: they judge the school's own peak.

Both rules come from judging a line at its busy time (the FCC's CAF tests run in the evening
peak of homes); a school's peak is its school day, so they take the measurements in school
hours by the school's calendar, at most one per clock hour (the CAF's hourly test).

"Enough data" is ours, as neither source states one for a single site: measurements on at
least 5 different days (one school week: the CAF tests a week each quarter, and a school has
no weekend classes) and at least 6 measurements, the fewest for which the 95 % interval of the
median exists.
"""

from __future__ import annotations

from collections.abc import Sequence

from collector.terms import DIRECTIONS, Direction
from collector.verdicts.model import Measurement, in_hours, in_window, one_per_hour
from collector.verdicts.stats import median_interval_ranks
from collector.verdicts.verdict import Counts, counts_for, shortfall

MIN_DAYS = 5
MIN_MEASUREMENTS = next(n for n in range(1, 100) if median_interval_ranks(n) is not None)  # 6


def school_peak(measurements: Sequence[Measurement], window_start: float, window_end: float
                ) -> tuple[dict[Direction, list[Measurement]], dict[Direction, Counts]]:
    window = in_hours(in_window(measurements, window_start, window_end), "school")
    counted: dict[Direction, list[Measurement]] = {}
    counts: dict[Direction, Counts] = {}
    for d in DIRECTIONS:
        counted[d] = one_per_hour(m for m in window if m.judged(d) and m.ratio(d) is not None)
        days = len({m.local_day for m in counted[d]})
        missing = shortfall(len(counted[d]), MIN_MEASUREMENTS, days, MIN_DAYS)
        counts[d] = counts_for(window, d, counted[d], missing is None, missing)
    return counted, counts
