"""The comparison report as data: what the statistics produce and every rendering reads.

``collector/comparison/compute.py`` builds a ``Report`` (or a ``Benchmark``) from the store
for one viewer and one set of filters; the web page, the PDF, the CSV and the JSON render
the same object, so they never disagree. Every figure is an ``Estimate``: a value with its
interval and the sample it rests on, or no value and the reason (``Missing``), never a
number made from too little.

Units are the store's: ratios (1 = 100 %), bytes per second, seconds, money in the
contract's currency per month. Renderings convert for display (Mbit/s, %, ms).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

# --- thresholds a reader is told about (docs/report.md) -----------------------------------
# A school's line counts as measured in a period with at least this many judged (valid,
# under a known contract) download tests in school hours; fewer and its own figures are
# "too few measurements" and it adds nothing to a group's test-based figures.
MIN_TESTS_PER_LINE = 5
# A group's figure about schools (a median over schools, a share of schools) needs at
# least this many measured lines; fewer is "too few measurements".
MIN_LINES_PER_GROUP = 5
# Confidence of every interval.
CONFIDENCE = 0.95
# Advertised download tiers, Mbit/s, lower bounds (a tier runs to the next bound).
TIER_BOUNDS_MBPS = (0, 30, 100, 250, 500, 1000)

Missing = Literal[
    "too_few_tests",  # a line with fewer than MIN_TESTS_PER_LINE tests
    "too_few_lines",  # a group with fewer than MIN_LINES_PER_GROUP measured lines
    "hidden",  # fewer than AGGREGATE_MINIMUM schools of boards the viewer may not see one by one
    "no_cost",  # no monthly cost in the contracts
    "no_pupils",  # no pupil count in the registry
    "mixed_currency",  # costs in more than one currency: not added up
    "no_data",  # nothing measured at all (no tests, no connectivity windows): no line of a
    # group has the figure, so "too few" would be the wrong word
    "no_incidents",  # a time to restore with no restored incident to take it from
]


@dataclass(frozen=True)
class Estimate:
    """One figure. ``value`` None means ``missing`` says why. ``low``/``high``: the
    ``CONFIDENCE`` interval where one can be given (None otherwise: too small a sample for
    a distribution-free interval, or a figure that has none, such as a count). ``n``: how
    many units the figure rests on (``unit``: "tests", "lines", "seconds", "incidents")."""

    value: float | None
    n: int
    unit: str
    low: float | None = None
    high: float | None = None
    missing: Missing | None = None

    @classmethod
    def none(cls, why: Missing, n: int = 0, unit: str = "lines") -> Estimate:
        return cls(value=None, n=n, unit=unit, missing=why)


@dataclass(frozen=True)
class Filters:
    start: date  # first local day, inclusive
    end: date  # last local day, inclusive
    regions: tuple[str, ...] = ()  # schools.region values; () = all
    technologies: tuple[str, ...] = ()  # connections.technology; () = all
    boards: tuple[str, ...] = ()  # board ids (slugs); () = every board the viewer may count
    providers: tuple[str, ...] = ()  # connections.provider_id; () = all


@dataclass(frozen=True)
class LineFigures:
    """One school's main line over the period: what a group's figures are made of.
    Shown per school only where the viewer may see that school (``Report.lines``)."""

    board: str
    school: str
    school_name: str
    region: str | None
    pupils: int | None
    connection: str  # connection slug
    provider_id: str
    provider: str  # display name
    technology: str
    tier: int  # index into TIER_BOUNDS_MBPS, by the advertised download in force at the end
    advertised_download_bytes_per_second: float | None
    advertised_upload_bytes_per_second: float | None
    tests: int  # judged download tests in school hours
    tests_all_hours: int  # judged download tests at any hour
    median_ratio: Estimate  # download, school hours, measured / advertised (own terms)
    ratio_80_80: Estimate  # 20th percentile of the ratios: reached in 80 % of tests
    upload_median_ratio: Estimate
    median_download_bytes_per_second: Estimate
    below_80: bool | None  # median_ratio < 0.80; None when too few tests
    availability: Estimate  # school hours, provider-side outages (unit "seconds")
    latency_seconds: Estimate  # median of school-hours connectivity windows' median RTT
    loss_ratio: Estimate  # pooled: 1 - received / sent over school-hours windows
    incidents: int  # provider-responsible incidents that started in the period
    median_restore_seconds: Estimate  # of those restored
    monthly_cost: Estimate  # in force at the end of the period (unit "lines")
    currency: str | None
    cost_per_mbps: Estimate  # monthly cost / median delivered download Mbit/s (school hours)
    cost_per_pupil: Estimate  # monthly cost / pupils
    normalised_ratio: Estimate  # median_ratio / median of median_ratio over the same
    # technology and tier (every measured line the report counts): 1 = typical for its kind


@dataclass(frozen=True)
class GroupFigures:
    """A provider, a technology, or a provider within one technology and tier."""

    provider_id: str | None  # None: every provider (a technology row)
    provider: str | None
    technology: str | None  # None: every technology (a provider row)
    tier: int | None  # None: every tier
    schools: int  # distinct schools with a line in the group
    lines: int
    measured_lines: int  # with at least MIN_TESTS_PER_LINE tests
    tests: int  # judged school-hours download tests, all lines
    # True: every figure below is Estimate.none("hidden"); counts stay. Either the group
    # rests on 1-4 schools the viewer may not see, or it is withheld so that it cannot be
    # worked out from the rows beside it (complementary suppression, privacy.py).
    hidden: bool
    median_ratio: Estimate  # median over measured lines of their median ratio, with CI
    ratio_80_80: Estimate  # 20th percentile over measured lines of their 80/80 ratio
    share_below_80: Estimate  # share of measured lines whose median ratio < 0.80 (Wilson CI)
    upload_median_ratio: Estimate
    normalised_ratio: Estimate  # median over measured lines of normalised_ratio
    availability: Estimate  # pooled over lines: 1 - outage seconds / school seconds observed
    latency_seconds: Estimate  # median over lines of their latency
    loss_ratio: Estimate  # pooled over lines
    # Distinct incidents (a school-wide one on a school with two main lines counts once);
    # None when the group is hidden (a count of 0 would read as "no incidents").
    incidents: int | None
    median_restore_seconds: Estimate  # over the group's restored incidents, each once
    monthly_cost: Estimate  # median over lines with a cost
    currency: str | None
    cost_per_mbps: Estimate  # median over measured lines with a cost
    cost_per_pupil: Estimate  # median over lines with a cost and pupils


@dataclass(frozen=True)
class HourProfile:
    """Median download ratio by local hour of the school day, per provider: the tests of
    the provider's measured lines pooled by hour; an hour needs MIN_LINES_PER_GROUP measured
    lines with tests in it (else "too_few_lines", n = those lines), all hours are "hidden"
    when the provider's row is."""

    provider_id: str
    provider: str
    hours: dict[int, Estimate]  # local hour (8 = 08:00-08:59) -> median ratio of its tests


@dataclass(frozen=True)
class Distribution:
    """Per provider, the measured lines' median ratios (for the chart). ``ratios`` holds only
    the lines the viewer may see one by one (they are listed in ``Report.lines`` anyway); the
    others are a count and, where they come from at least AGGREGATE_MINIMUM schools the
    viewer may not see, their quartiles."""

    provider_id: str
    provider: str
    ratios: tuple[float, ...]  # sorted; visible lines only
    hidden: bool  # the provider's row is hidden: hidden_quartiles is None
    hidden_lines: int = 0  # measured lines of schools the viewer may not see one by one
    # nearest-rank (p25, median, p75) of those lines' median ratios; None when they come from
    # fewer than AGGREGATE_MINIMUM schools (or none), or when ``hidden``
    hidden_quartiles: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class FilterChoices:
    """What the viewer may filter on (the form's options)."""

    regions: tuple[str, ...]
    technologies: tuple[str, ...]
    boards: tuple[tuple[str, str], ...]  # (id, name)
    providers: tuple[tuple[str, str], ...]  # (id, name)


@dataclass(frozen=True)
class Report:
    filters: Filters
    generated_at: float
    timezone: str  # the collector's default zone (days of schools in other zones are their own)
    viewer_role: str
    viewer_board: str | None
    by_provider: tuple[GroupFigures, ...]
    by_technology: tuple[GroupFigures, ...]
    by_provider_technology_tier: tuple[GroupFigures, ...]  # the like-for-like comparison
    overall: GroupFigures  # every line in the report
    lines: tuple[LineFigures, ...]  # only the schools the viewer may see one by one
    hidden_schools: int  # schools counted in aggregates but not shown one by one
    hour_profiles: tuple[HourProfile, ...]
    distributions: tuple[Distribution, ...]
    choices: FilterChoices
    notes: tuple[str, ...] = field(default_factory=tuple)  # coded notes ("no_contracts", …)

    def as_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


@dataclass(frozen=True)
class PeerFigure:
    """One figure of the school beside the same figure of similar schools (anonymised)."""

    name: str  # "median_ratio", "ratio_80_80", "availability", "latency_seconds", ...
    school: Estimate
    peers_n: int
    peers_p25: float | None
    peers_median: float | None
    peers_p75: float | None
    # Share of peers whose figure is worse than the school's (0..1; None without a figure).
    better_than: float | None
    higher_is_better: bool


@dataclass(frozen=True)
class Benchmark:
    """"Your line compared with similar schools": similar = same technology and tier,
    widened to the same technology when that has fewer than AGGREGATE_MINIMUM peers."""

    board: str
    school: str
    school_name: str
    filters: Filters
    generated_at: float
    line: LineFigures | None  # None: the school has no main line with a contract
    similarity: Literal["technology_tier", "technology", "none"]  # "none": too few peers
    # Distinct peer schools compared with (never named): schools the viewer may not see one
    # by one (for an admin: every other school); 0 when "none".
    peers: int
    figures: tuple[PeerFigure, ...]

    def as_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


def to_jsonable(value: Any) -> Any:
    """Dates as ISO text, dict keys as text, tuples as lists; non-finite floats as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value
