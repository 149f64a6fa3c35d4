"""Giga (UNICEF and ITU): the average speed over the window at least 80 % of the contracted one.

Giga helps governments contract connectivity for schools and monitors it; the rule this
project applies in its name, from the issue that asked for it, is: the 30-day average of the
measured speed is at least 80 % of the contracted (advertised) speed. We could not find the
rule in a public Giga document, so the docs say so. The average is of the per-measurement
ratios (each against the terms then in force), in school hours, one per clock hour; "enough
data" as in peak.py. Over a window other than 30 days it is that window's average.
"""

from __future__ import annotations

from collections.abc import Sequence

from collector.terms import DIRECTIONS
from collector.verdicts.model import Measurement
from collector.verdicts.peak import school_peak
from collector.verdicts.verdict import Check, RuleVerdict, Source, rule_verdict

NAME = "giga"
SOURCE = Source("UNICEF/ITU Giga: school connectivity contracted and monitored; average over 30 days "
                "at least 80 % of the contracted speed", "https://giga.global")
MEAN_RATIO = 0.8
# A sum of ratios carries float rounding (1.0 and 0.6 average to 0.7999999999999999): a
# line exactly on the mark must not fail on that.
ROUNDING = 1e-9


def evaluate(measurements: Sequence[Measurement], window_start: float, window_end: float) -> RuleVerdict:
    counted, counts = school_peak(measurements, window_start, window_end)
    checks: list[Check] = []
    figures: dict[str, float | None] = {}
    for d in DIRECTIONS:
        ratios = [r for m in counted[d] if (r := m.ratio(d)) is not None]
        mean = sum(ratios) / len(ratios) if ratios else None
        figures[f"{d}_mean_ratio"] = mean
        if not counts[d].enough:
            checks.append(Check("average_80_percent", d, None, mean, MEAN_RATIO, ">=",
                                f"not enough data: {counts[d].missing}"))
        else:
            assert mean is not None  # enough data means measurements
            checks.append(Check(
                "average_80_percent", d, mean >= MEAN_RATIO - ROUNDING, mean, MEAN_RATIO, ">=",
                f"the average in school hours was {mean:.0%} of the contracted speed (at least 80 % must)"))
    return rule_verdict(NAME, "school", checks, counts, counted, window_start, window_end, SOURCE,
                        figures=figures)
