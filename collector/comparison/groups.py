"""A report's groups, normalisation cells, hour profiles and distributions, from lines.

Medians and shares over lines need MIN_LINES_PER_GROUP lines that have the figure (for the
test-based ones, upload included: measured lines); availability and loss are pooled (seconds
and probes summed over the group's schools, each school once) and need no line count; when
no line of the group has a figure at all it is "no_data" (or the lines' common reason, such
as "no_cost"), not "too few". Incidents are counted by id, so a school-wide incident on a
school with two main lines counts once in a group, and its time to restore once. Every
figure passes the privacy rule (collector/comparison/privacy.py) over the schools it rests
on; ``withhold`` hides a whole row for complementary suppression.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence

from collector.accounts.roles import AGGREGATE_MINIMUM
from collector.comparison.lines import LineData
from collector.comparison.model import (
    MIN_LINES_PER_GROUP,
    MIN_TESTS_PER_LINE,
    Distribution,
    Estimate,
    GroupFigures,
    HourProfile,
    Missing,
)
from collector.comparison.privacy import hidden_set, withheld
from collector.comparison.stats import median_estimate, percentile_estimate, share_estimate
from collector.verdicts.stats import median, nearest_rank

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
               percent: float = 50, measured_only: bool = False) -> Estimate:
    """A median (or another nearest-rank percentile) over the lines that have the figure
    (of the measured lines only, for the figures that rest on tests)."""
    pool = [d for d in datas if d.measured] if measured_only else datas
    having = [d for d in pool if pick(d).value is not None]
    if withheld(having):
        return HIDDEN
    if not having:
        return absent(datas, pick)
    values = [_value(pick(d)) for d in having]
    if percent == 50:
        return median_estimate(values, minimum=MIN_LINES_PER_GROUP, unit="lines", too_few="too_few_lines")
    return percentile_estimate(values, percent, minimum=MIN_LINES_PER_GROUP, unit="lines",
                               too_few="too_few_lines")


# A line's own reasons that a group without a single figure can repeat as they are.
PASSED_ON: frozenset[Missing] = frozenset({"no_data", "no_cost", "no_pupils", "no_incidents", "hidden"})


def absent(datas: Sequence[LineData], pick: Callable[[LineData], Estimate]) -> Estimate:
    """Why a group has not one line with the figure: "no_data" when none measured anything
    (a line without a single test counts as that), the lines' one common reason where
    there is one ("no_cost"), else "too few lines" (0 of them had enough tests)."""
    reasons: set[Missing] = set()
    for data in datas:
        estimate = pick(data)
        if estimate.value is not None:  # has it, but the line is not measured (upload)
            reasons.add("too_few_tests")
        elif estimate.missing == "too_few_tests" and estimate.n == 0:
            reasons.add("no_data")
        else:
            reasons.add(estimate.missing or "no_data")
    if reasons <= {"no_data"}:
        return Estimate.none("no_data")
    if len(reasons) == 1 and (why := reasons.pop()) in PASSED_ON:
        return Estimate.none(why)
    return Estimate.none("too_few_lines", n=0)


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
        return hidden_group(**counts)  # type: ignore[arg-type]
    if not measured:
        share = absent(datas, lambda d: d.figures.median_ratio)
    elif withheld(measured):
        share = HIDDEN
    else:
        share = share_estimate([bool(d.figures.below_80) for d in measured], minimum=MIN_LINES_PER_GROUP)
    schools = one_per_school(datas)
    monthly, currency, per_mbps, per_pupil = money(datas)
    incidents, restore = incident_figures(datas)
    return GroupFigures(
        **counts, hidden=False,  # type: ignore[arg-type]
        median_ratio=over_lines(datas, lambda d: d.figures.median_ratio, measured_only=True),
        ratio_80_80=over_lines(datas, lambda d: d.figures.ratio_80_80, percent=20, measured_only=True),
        share_below_80=share,
        upload_median_ratio=over_lines(datas, lambda d: d.figures.upload_median_ratio, measured_only=True),
        normalised_ratio=over_lines(datas, lambda d: d.figures.normalised_ratio, measured_only=True),
        availability=pooled_availability(schools),
        latency_seconds=over_lines(schools, lambda d: d.figures.latency_seconds),
        loss_ratio=pooled_loss(schools),
        incidents=incidents, median_restore_seconds=restore,
        monthly_cost=monthly, currency=currency, cost_per_mbps=per_mbps, cost_per_pupil=per_pupil)


def hidden_group(*, provider_id: str | None, provider: str | None, technology: str | None,
                 tier: int | None, schools: int, lines: int, measured_lines: int, tests: int) -> GroupFigures:
    """A row that shows its counts only (the incidents too are withheld: None, not 0)."""
    return GroupFigures(provider_id=provider_id, provider=provider, technology=technology, tier=tier,
                        schools=schools, lines=lines, measured_lines=measured_lines, tests=tests,
                        hidden=True, median_ratio=HIDDEN, ratio_80_80=HIDDEN, share_below_80=HIDDEN,
                        upload_median_ratio=HIDDEN, normalised_ratio=HIDDEN, availability=HIDDEN,
                        latency_seconds=HIDDEN, loss_ratio=HIDDEN, incidents=None,
                        median_restore_seconds=HIDDEN, monthly_cost=HIDDEN, currency=None,
                        cost_per_mbps=HIDDEN, cost_per_pupil=HIDDEN)


def withhold(group: GroupFigures) -> GroupFigures:
    """The same row with every figure withheld (complementary suppression)."""
    if group.hidden:
        return group
    return hidden_group(provider_id=group.provider_id, provider=group.provider, technology=group.technology,
                        tier=group.tier, schools=group.schools, lines=group.lines,
                        measured_lines=group.measured_lines, tests=group.tests)


def incident_figures(datas: Sequence[LineData]) -> tuple[int, Estimate]:
    """(distinct incidents, median time to restore over the restored ones): by incident id,
    as a school-wide incident is on each main line of its school."""
    restores: dict[int, float | None] = {}
    restoring: list[LineData] = []  # the lines whose school a restore time comes from
    for data in datas:
        restores.update(data.incidents)
        if any(seconds is not None for seconds in data.incidents.values()):
            restoring.append(data)
    if withheld(restoring):
        return len(restores), HIDDEN
    seconds = [s for s in restores.values() if s is not None]
    return len(restores), median_estimate(seconds, minimum=1, unit="incidents", too_few="no_incidents")


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


def hour_profile(datas: Sequence[LineData], provider_id: str, provider: str, *,
                 hidden: bool = False) -> HourProfile:
    """The tests of the provider's measured lines pooled by local hour: each hour's median
    ratio, where MIN_LINES_PER_GROUP measured lines have tests in that hour (as the tables'
    figures need); every hour hidden when the provider's row is (``hidden``)."""
    hidden = hidden or withheld(datas)
    hours: dict[int, Estimate] = {}
    for hour in sorted({h for d in datas for h in d.hour_ratios}):
        having = [d for d in datas if d.measured and hour in d.hour_ratios]
        if hidden or withheld(having):
            hours[hour] = Estimate.none("hidden", unit="tests")
        elif len(having) < MIN_LINES_PER_GROUP:
            hours[hour] = Estimate.none("too_few_lines", n=len(having), unit="lines")
        else:
            hours[hour] = median_estimate([r for d in having for r in d.hour_ratios[hour]],
                                          minimum=MIN_TESTS_PER_LINE, unit="tests", too_few="too_few_tests")
    return HourProfile(provider_id=provider_id, provider=provider, hours=hours)


def distribution(datas: Sequence[LineData], provider_id: str, provider: str, *,
                 hidden: bool = False) -> Distribution:
    """The visible measured lines' median ratios as points; of the others a count, and
    their quartiles where they come from AGGREGATE_MINIMUM schools and the row is shown."""
    measured = [d for d in datas if d.measured]
    hidden = hidden or withheld(datas) or withheld(measured)
    unseen = [d for d in measured if not d.visible]
    quartiles: tuple[float, float, float] | None = None
    if not hidden and len(hidden_set(unseen)) >= AGGREGATE_MINIMUM:
        ratios = [_value(d.figures.median_ratio) for d in unseen]
        quartiles = (nearest_rank(ratios, 25), nearest_rank(ratios, 50), nearest_rank(ratios, 75))
    return Distribution(provider_id=provider_id, provider=provider,
                        ratios=tuple(sorted(_value(d.figures.median_ratio) for d in measured if d.visible)),
                        hidden=hidden, hidden_lines=len(unseen), hidden_quartiles=quartiles)
