"""A report's groups, normalisation cells, hour profiles and distributions, from lines.

Medians and shares over lines need MIN_LINES_PER_GROUP lines that have the figure (for the
test-based ones: measured lines); availability and loss are pooled (seconds and probes
summed over the group's schools, each school once) and need no line count; every figure
passes the privacy rule (collector/comparison/privacy.py) over the schools it rests on.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence

from collector.comparison.lines import LineData
from collector.comparison.model import (
    MIN_LINES_PER_GROUP,
    MIN_TESTS_PER_LINE,
    Distribution,
    Estimate,
    GroupFigures,
    HourProfile,
)
from collector.comparison.privacy import withheld
from collector.comparison.stats import median_estimate, percentile_estimate, share_estimate
from collector.verdicts.stats import median

HIDDEN = Estimate.none("hidden")


def normalise(datas: Sequence[LineData]) -> list[LineData]:
    """Each measured line's median ratio over the median of the measured lines' median
    ratios of its technology and tier (its cell), where the cell has MIN_LINES_PER_GROUP
    measured lines and passes the privacy rule."""
    cells: dict[tuple[str, int], list[LineData]] = defaultdict(list)
    for data in datas:
        if data.measured:
            cells[(data.figures.technology, data.figures.tier)].append(data)
    out = []
    for data in datas:
        if not data.measured:
            out.append(data)
            continue
        cell = cells[(data.figures.technology, data.figures.tier)]
        if len(cell) < MIN_LINES_PER_GROUP:
            value = Estimate.none("too_few_lines", n=len(cell))
        elif withheld(cell):
            value = Estimate.none("hidden", n=len(cell))
        else:
            typical = median([_value(c.figures.median_ratio) for c in cell])
            ratio = _value(data.figures.median_ratio)
            value = (Estimate(value=ratio / typical, n=len(cell), unit="lines") if typical > 0
                     else Estimate.none("no_data", n=len(cell)))
        out.append(dataclasses.replace(
            data, figures=dataclasses.replace(data.figures, normalised_ratio=value)))
    return out


def _value(estimate: Estimate) -> float:
    assert estimate.value is not None  # callers pass measured lines' figures only
    return estimate.value


def over_lines(datas: Sequence[LineData], pick: Callable[[LineData], Estimate], *,
               percent: float = 50) -> Estimate:
    """A median (or another nearest-rank percentile) over the lines that have the figure."""
    having = [d for d in datas if pick(d).value is not None]
    if withheld(having):
        return HIDDEN
    values = [_value(pick(d)) for d in having]
    if percent == 50:
        return median_estimate(values, minimum=MIN_LINES_PER_GROUP, unit="lines", too_few="too_few_lines")
    return percentile_estimate(values, percent, minimum=MIN_LINES_PER_GROUP, unit="lines",
                               too_few="too_few_lines")


def one_per_school(datas: Sequence[LineData]) -> list[LineData]:
    """The first line of each school: availability and connectivity are the school's."""
    seen: dict[int, LineData] = {}
    for data in datas:
        seen.setdefault(data.school_pk, data)
    return list(seen.values())


def group_figures(datas: Sequence[LineData], *, provider_id: str | None, provider: str | None,
                  technology: str | None, tier: int | None) -> GroupFigures:
    measured = [d for d in datas if d.measured]
    counts = dict(provider_id=provider_id, provider=provider, technology=technology, tier=tier,
                  schools=len({d.school_pk for d in datas}), lines=len(datas),
                  measured_lines=len(measured), tests=sum(d.figures.tests for d in datas))
    if withheld(datas):
        return GroupFigures(**counts, hidden=True, median_ratio=HIDDEN, ratio_80_80=HIDDEN,  # type: ignore[arg-type]
                            share_below_80=HIDDEN, upload_median_ratio=HIDDEN, normalised_ratio=HIDDEN,
                            availability=HIDDEN, latency_seconds=HIDDEN, loss_ratio=HIDDEN,
                            incidents=0, median_restore_seconds=HIDDEN, monthly_cost=HIDDEN,
                            currency=None, cost_per_mbps=HIDDEN, cost_per_pupil=HIDDEN)
    if measured and withheld(measured):
        share = HIDDEN
    else:
        share = share_estimate([bool(d.figures.below_80) for d in measured], minimum=MIN_LINES_PER_GROUP)
    schools = one_per_school(datas)
    monthly, currency, per_mbps, per_pupil = money(datas)
    restored = [d for d in datas if d.restore_seconds]
    return GroupFigures(
        **counts, hidden=False,  # type: ignore[arg-type]
        median_ratio=over_lines(measured, lambda d: d.figures.median_ratio),
        ratio_80_80=over_lines(measured, lambda d: d.figures.ratio_80_80, percent=20),
        share_below_80=share,
        upload_median_ratio=over_lines(datas, lambda d: d.figures.upload_median_ratio),
        normalised_ratio=over_lines(measured, lambda d: d.figures.normalised_ratio),
        availability=pooled_availability(schools),
        latency_seconds=over_lines(schools, lambda d: d.figures.latency_seconds),
        loss_ratio=pooled_loss(schools),
        incidents=sum(d.figures.incidents for d in datas),
        median_restore_seconds=(HIDDEN if withheld(restored) else median_estimate(
            [s for d in restored for s in d.restore_seconds], minimum=1, unit="incidents",
            too_few="no_data")),
        monthly_cost=monthly, currency=currency, cost_per_mbps=per_mbps, cost_per_pupil=per_pupil)


def pooled_availability(schools: Sequence[LineData]) -> Estimate:
    having = [d for d in schools if d.observed_seconds > 0]
    if withheld(having):
        return HIDDEN
    observed = sum(d.observed_seconds for d in having)
    if observed <= 0:
        return Estimate.none("no_data", unit="seconds")
    down = sum(d.outage_seconds for d in having)
    return Estimate(value=1.0 - down / observed, n=int(observed), unit="seconds")


def pooled_loss(schools: Sequence[LineData]) -> Estimate:
    having = [d for d in schools if d.sent > 0]
    if withheld(having):
        return HIDDEN
    sent = sum(d.sent for d in having)
    if sent <= 0:
        return Estimate.none("no_data", unit="probes")
    return Estimate(value=1.0 - sum(d.received for d in having) / sent, n=sent, unit="probes")


def money(datas: Sequence[LineData]) -> tuple[Estimate, str | None, Estimate, Estimate]:
    """(median monthly cost, its currency, median cost per delivered Mbit/s, median cost
    per pupil): costs in two currencies are not put together."""
    costed = [d for d in datas if d.figures.monthly_cost.value is not None]
    if not costed:
        none = Estimate.none("no_cost")
        return none, None, none, none
    currencies = {d.figures.currency for d in costed}
    if len(currencies) > 1:
        mixed = Estimate.none("mixed_currency", n=len(costed))
        return mixed, None, mixed, mixed
    return (over_lines(costed, lambda d: d.figures.monthly_cost), currencies.pop(),
            over_lines(costed, lambda d: d.figures.cost_per_mbps),
            over_lines(costed, lambda d: d.figures.cost_per_pupil))


def hour_profile(datas: Sequence[LineData], provider_id: str, provider: str) -> HourProfile:
    """The provider's tests pooled by local hour: each hour's median ratio."""
    hidden = withheld(datas)
    hours: dict[int, Estimate] = {}
    for hour in sorted({h for d in datas for h in d.hour_ratios}):
        having = [d for d in datas if hour in d.hour_ratios]
        if hidden or withheld(having):
            hours[hour] = Estimate.none("hidden", unit="tests")
            continue
        ratios = [r for d in having for r in d.hour_ratios[hour]]
        hours[hour] = median_estimate(ratios, minimum=MIN_TESTS_PER_LINE, unit="tests",
                                      too_few="too_few_tests")
    return HourProfile(provider_id=provider_id, provider=provider, hours=hours)


def distribution(datas: Sequence[LineData], provider_id: str, provider: str) -> Distribution:
    measured = [d for d in datas if d.measured]
    if withheld(datas) or withheld(measured):
        return Distribution(provider_id=provider_id, provider=provider, ratios=(), hidden=True)
    return Distribution(provider_id=provider_id, provider=provider,
                        ratios=tuple(sorted(_value(d.figures.median_ratio) for d in measured)), hidden=False)
