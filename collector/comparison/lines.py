"""One school's main line over the period: its LineFigures and what groups pool from it.

Every test is judged by the terms in force on its own local date (an upgrade mid-period
judges the tests before it by the old speed); the tier, the advertised speeds and the money
come from the terms in force on the last day of the period on which the line has terms.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from collector.availability import union_seconds
from collector.calendar import SchoolCalendar
from collector.comparison.connectivity import LinkQuality
from collector.comparison.model import MIN_TESTS_PER_LINE, Estimate, LineFigures
from collector.comparison.stats import mbps, median_estimate, percentile_estimate, tier_of
from collector.comparison.store import BoardRow, IncidentRow, Observation, SchoolRow
from collector.contracts import ConnectionInfo
from collector.results import StoredResult
from collector.school_verdicts import PROVIDER_OUTAGES, measurements_of
from collector.terms import Terms, terms_on
from collector.verdicts.availability import merged


@dataclass(frozen=True)
class Period:
    """The report's local days, and for one school their Unix-second bounds in its zone."""

    first_day: dt.date
    last_day: dt.date
    start: float  # local midnight opening first_day
    end: float  # local midnight closing last_day


@dataclass
class LineData:
    """A line's figures and the raw sums a group pools (never shown per school)."""

    figures: LineFigures
    school_pk: int
    board_pk: int
    line_pk: int
    visible: bool  # the viewer may see this school one by one
    measured: bool  # at least MIN_TESTS_PER_LINE judged school-hours download tests
    observed_seconds: float = 0.0  # school seconds observed (0: no availability data)
    outage_seconds: float = 0.0  # of those, down by the provider's side
    sent: int = 0  # connectivity probes in school-hours windows
    received: int = 0
    hour_ratios: dict[int, list[float]] = field(default_factory=dict)  # local hour -> ratios
    # incident id -> seconds to restore (None: not restored); by id, so that a school-wide
    # incident seen on two main lines of one group counts there once
    incidents: dict[int, float | None] = field(default_factory=dict)
    last_terms: Terms | None = None


def counts_in(line: ConnectionInfo, first_day: dt.date, last_day: dt.date) -> bool:
    """The line has terms in force on some day of the period."""
    return any(t.starts_on <= last_day and (t.ends_on is None or t.ends_on >= first_day) for t in line.terms)


def last_terms(line: ConnectionInfo, first_day: dt.date, last_day: dt.date) -> Terms | None:
    """The terms in force on the last day of the period on which the line has terms."""
    days = [min(last_day, t.ends_on or last_day) for t in line.terms
            if t.starts_on <= last_day and (t.ends_on is None or t.ends_on >= first_day)]
    return terms_on(line.terms, max(days)) if days else None


def line_data(*, board: BoardRow, school: SchoolRow, line: ConnectionInfo, calendar: SchoolCalendar,
              period: Period, results: Sequence[StoredResult], observation: Observation | None,
              incidents: Sequence[IncidentRow], quality: LinkQuality, now: float, visible: bool) -> LineData:
    terms = last_terms(line, period.first_day, period.last_day)
    measurements = measurements_of(
        [r for r in results if period.start <= r.measured_at < period.end], line, calendar)
    download = [m for m in measurements if m.judged("download") and m.ratio("download") is not None]
    school_hours = [m for m in download if m.in_session]
    ratios = [m.ratio("download") or 0.0 for m in school_hours]
    speeds = [m.download or 0.0 for m in school_hours]
    upload = [m.ratio("upload") or 0.0 for m in measurements
              if m.in_session and m.judged("upload") and m.ratio("upload") is not None]
    hours: dict[int, list[float]] = defaultdict(list)
    for m, ratio in zip(school_hours, ratios, strict=True):
        hours[int(m.hour_key[11:13])].append(ratio)

    def by_tests(values: list[float]) -> Estimate:
        return median_estimate(values, minimum=MIN_TESTS_PER_LINE, unit="tests", too_few="too_few_tests")

    median_ratio = by_tests(ratios)
    median_speed = by_tests(speeds)
    measured = median_ratio.value is not None

    observed, down = availability_seconds(observation, calendar, period, now)
    availability = (Estimate(value=1.0 - down / observed, n=int(observed), unit="seconds")
                    if observed > 0 else Estimate.none("no_data", unit="seconds"))

    own = [i for i in incidents if i.connection_pk in (None, line.id)
           and period.start <= i.started_at < period.end]
    restores = [i.restored_at - i.started_at for i in own if i.restored_at is not None]
    restore = median_estimate(restores, minimum=1, unit="incidents", too_few="no_incidents")

    cost = terms.monthly_cost if terms is not None else None
    monthly = (Estimate(value=cost, n=1, unit="lines") if cost is not None
               else Estimate.none("no_cost", n=0, unit="lines"))
    if not measured:
        per_mbps = Estimate.none("too_few_tests", n=len(ratios), unit="tests")
    elif cost is None:
        per_mbps = Estimate.none("no_cost")
    elif not median_speed.value:
        per_mbps = Estimate.none("no_data", n=len(ratios), unit="tests")
    else:
        per_mbps = Estimate(value=cost / mbps(median_speed.value), n=len(ratios), unit="tests")
    if cost is None:
        per_pupil = Estimate.none("no_cost")
    elif not school.pupils:
        per_pupil = Estimate.none("no_pupils")
    else:
        per_pupil = Estimate(value=cost / school.pupils, n=1, unit="lines")

    latency, loss, sent, received = link_figures(quality)
    figures = LineFigures(
        board=board.slug, school=school.slug, school_name=school.name, region=school.region,
        pupils=school.pupils, connection=line.slug, provider_id=line.provider_id, provider=line.provider,
        technology=line.technology,
        tier=tier_of(terms.download_advertised if terms is not None else None),
        advertised_download_bytes_per_second=terms.download_advertised if terms is not None else None,
        advertised_upload_bytes_per_second=terms.upload_advertised if terms is not None else None,
        tests=len(ratios), tests_all_hours=len(download),
        median_ratio=median_ratio,
        ratio_80_80=percentile_estimate(ratios, 20, minimum=MIN_TESTS_PER_LINE, unit="tests",
                                        too_few="too_few_tests"),
        upload_median_ratio=by_tests(upload),
        median_download_bytes_per_second=median_speed,
        below_80=None if median_ratio.value is None else median_ratio.value < 0.80,
        availability=availability, latency_seconds=latency, loss_ratio=loss,
        incidents=len(own), median_restore_seconds=restore,
        monthly_cost=monthly, currency=terms.currency if terms is not None and cost is not None else None,
        cost_per_mbps=per_mbps, cost_per_pupil=per_pupil,
        normalised_ratio=(Estimate.none("too_few_tests", n=len(ratios), unit="tests") if not measured
                          else Estimate.none("too_few_lines")),  # set once the cells are known
    )
    return LineData(figures=figures, school_pk=school.pk, board_pk=board.pk, line_pk=line.id,
                    visible=visible, measured=measured, observed_seconds=observed, outage_seconds=down,
                    sent=sent, received=received, hour_ratios=dict(hours),
                    incidents={i.pk: (None if i.restored_at is None else i.restored_at - i.started_at)
                               for i in own},
                    last_terms=terms)


def availability_seconds(observation: Observation | None, calendar: SchoolCalendar, period: Period,
                         now: float) -> tuple[float, float]:
    """(school seconds observed in the period up to now, of them down by the provider's
    side): from when the school began observing; before that nothing is known."""
    if observation is None or observation.observed_from is None:
        return 0.0, 0.0
    begin, stop = max(period.start, observation.observed_from), min(period.end, now)
    sessions = merged(calendar.session_intervals(begin, stop))
    kinds = PROVIDER_OUTAGES  # None would be every kind
    down = [(o.start, o.end) for o in observation.outages if kinds is None or o.kind in kinds]
    observed = sum(b - a for a, b in sessions)
    outage = sum(union_seconds(down, a, b) for a, b in sessions)
    return observed, outage


def link_figures(quality: LinkQuality) -> tuple[Estimate, Estimate, int, int]:
    """Latency and loss of the school's LinkQuality -> Estimates and the probe sums a group
    pools."""
    latency = (Estimate(value=quality.latency_seconds, n=int(quality.windows), unit="windows")
               if quality.latency_seconds is not None else Estimate.none("no_data", unit="windows"))
    loss = (Estimate(value=quality.loss_ratio, n=int(quality.sent), unit="probes")
            if quality.loss_ratio is not None and quality.sent else Estimate.none("no_data", unit="probes"))
    sent = int(quality.sent or 0) if quality.loss_ratio is not None else 0
    received = int(quality.received or 0) if quality.loss_ratio is not None else 0
    return latency, loss, sent, received
