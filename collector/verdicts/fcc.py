"""FCC-style: the median and the "80/80" speed as a percentage of the advertised speed.

Measuring Broadband America (the FCC's programme) reports the median measured speed as a
percentage of the advertised one; the Connect America Fund's performance measures (FCC
orders DA 18-710, 2018, and FCC 19-104, 2019) require 80 % of the speed measurements to be at
or above 80 % of the speed the provider must deliver: the "80/80" standard. The check here is
that standard, per direction, against the advertised speed; the median is reported beside it
and decides nothing (MBA sets no pass mark for it). School hours only: see peak.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from collector.terms import DIRECTIONS
from collector.verdicts.model import Measurement
from collector.verdicts.peak import school_peak
from collector.verdicts.stats import median, nearest_rank
from collector.verdicts.verdict import Check, RuleVerdict, Source, rule_verdict

NAME = "fcc"
SOURCE = Source(
    "FCC, Connect America Fund performance measures (DA 18-710, 2018; FCC 19-104, 2019): the 80/80 "
    "standard; Measuring Broadband America: median speed as a percentage of advertised",
    "https://docs.fcc.gov/public/attachments/FCC-19-104A1.txt")
SPEED_FRACTION = 0.8  # at or above 80 % of the speed ...
SHARE = 0.8  # ... in 80 % of the measurements


def evaluate(measurements: Sequence[Measurement], window_start: float, window_end: float) -> RuleVerdict:
    counted, counts = school_peak(measurements, window_start, window_end)
    checks: list[Check] = []
    figures: dict[str, float | None] = {}
    for d in DIRECTIONS:
        ratios = [r for m in counted[d] if (r := m.ratio(d)) is not None]
        figures[f"{d}_median_ratio"] = median(ratios) if ratios else None
        figures[f"{d}_ratio_80_80"] = nearest_rank(ratios, 20) if ratios else None
        at_least = sum(1 for r in ratios if r >= SPEED_FRACTION)
        share = at_least / len(ratios) if ratios else None
        if not counts[d].enough:
            checks.append(Check("80_80", d, None, share, SHARE, ">=",
                                f"not enough data: {counts[d].missing}"))
        else:
            checks.append(Check(
                "80_80", d, at_least * 5 >= 4 * len(ratios), share, SHARE, ">=",
                f"{at_least} of {len(ratios)} measurements in school hours reached 80 % of the advertised "
                "speed (80 % of them must)"))
        med = figures[f"{d}_median_ratio"]
        checks.append(Check(
            "median_percent_of_advertised", d, None, med, None, ">=",
            f"median {med:.0%} of the advertised speed (reported, not a pass mark)" if med is not None
            else "no measurements in school hours", required=False))
    return rule_verdict(NAME, "school", checks, counts, counted, window_start, window_end, SOURCE,
                        figures=figures)
