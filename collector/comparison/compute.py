"""The provider comparison: every figure of the report, from the store, for one viewer.

Which lines
    Every school of the boards the viewer may count (``Viewer.aggregate_boards``: every
    board for an admin or an analyst, its own for a board role), narrowed to the boards,
    regions (``schools.region``, any case), technologies and providers asked for. Of each
    school its *main* lines only: a backup line is not what a board buys the school for. A
    line counts for the period when it has terms in force on some day of it. The period is
    whole local days, each school's in its own time zone.

A line's figures (LineFigures)
    Tests: the judged bandwidth tests in school hours (valid, under the terms in force on
    the test's own local date, download measured): an upgrade mid-period judges each test
    by the speed promised at the time. Median ratio (measured / advertised): the
    nearest-rank median (the lower middle value when n is even), with a distribution-free
    95 % interval from n >= 6 tests; the 80/80 ratio: the 20th nearest-rank percentile (the
    ratio reached in 80 % of the tests); upload and the median delivered download speed
    likewise. A line with fewer than MIN_TESTS_PER_LINE (5) tests is "too few tests" and
    adds nothing to a group's test-based figures. The tier (TIER_BOUNDS_MBPS), the
    advertised speeds and the monthly cost come from the terms in force on the last day of
    the period on which the line has terms. Availability: the school-hours share without an
    outage on the provider's side, from when the school began observing (n: observed
    school seconds). Latency and loss: the school-hours connectivity windows
    (collector/comparison/connectivity.py). Incidents: provider-responsible incidents of
    kinds bandwidth, outage, loss, latency that started in the period (on this line or on
    the school as a whole); time to restore = restored - started. Cost per delivered
    Mbit/s = monthly cost / median delivered download (Mbit/s, school hours; measured, not
    advertised); cost per pupil = monthly cost / pupils. Normalised ratio: the line's
    median ratio over the median of the median ratios of every measured line of the same
    technology and tier that the viewer may count in the period, whatever the region,
    technology, provider or board filters (1 = typical for its kind; needs 5 such lines).

Groups (GroupFigures: per provider, per technology, per provider x technology x tier, and
overall)
    Medians over lines of the lines' figures (median ratio with a distribution-free
    interval over the line medians, 80/80 as the 20th percentile of the lines' 80/80
    ratios, upload, normalised ratio, latency, monthly cost, cost per Mbit/s and per
    pupil; the test-based ones over measured lines only), each needing MIN_LINES_PER_GROUP
    (5) lines that have it, else "too few lines" ("no data" when no line has it at all);
    the share of measured lines whose median ratio is below 80 % with a Wilson score
    interval; availability and loss pooled over the group's schools (seconds and probes
    summed); incidents summed by id (a school-wide incident on a school with two main
    lines once) and the median time to restore over the group's restored incidents
    ("no_incidents" without one). Costs in more than one currency are not put together ("mixed currency").

Privacy
    See collector/comparison/privacy.py: a figure resting on 1 to 4 schools the viewer may
    not see one by one is "hidden" (a hidden group shows its counts only; its incident
    count is None); rows beside a hidden one are hidden too where the parent row minus the
    shown ones would give it away (complementary suppression); ``Report.lines`` lists only
    the schools the viewer may see, and ``hidden_schools`` says how many more are counted.
    Hour profiles (per provider, the measured lines' school-hours tests pooled by local
    hour, each hour needing 5 such lines) follow the provider's row; distributions list the
    visible lines' median ratios and, of the others, a count and quartiles of at least 5
    schools. An analyst's board filter names only boards it sees one by one.

Benchmark
    collector/comparison/benchmark.py.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from collector.accounts.roles import Viewer
from collector.calendar import SchoolCalendar, load_calendars, local_instant
from collector.comparison.connectivity import school_link_quality
from collector.comparison.groups import distribution, group_figures, hour_profile, normalise, withhold
from collector.comparison.lines import LineData, Period, counts_in, line_data
from collector.comparison.model import (
    Benchmark,
    FilterChoices,
    Filters,
    Report,
)
from collector.comparison.privacy import Partition, complementary, hidden_schools, hidden_set
from collector.comparison.store import (
    BoardRow,
    SchoolRow,
    load_boards,
    load_incidents,
    load_main_lines,
    load_observations,
    load_results,
    load_schools,
)
from collector.contracts import ConnectionInfo
from collector.contracts_csv import TECHNOLOGIES

MAX_PERIOD_DAYS = 400
DEFAULT_PERIOD_DAYS = 91


class ReportError(ValueError):
    """Filters that cannot make a report; the message is one line for the reader (English).
    ``code`` and ``params`` say the same for a rendering that words it in another language:
    unknown_board {board}, unknown_region {region}, unknown_technology {technology,
    technologies}, unknown_provider {provider}, period_reversed {start, end},
    period_too_long {days, maximum}, date_out_of_range {date, first, last}, unknown_school
    {board, school}. Dates in params are ISO text."""

    default_code = "bad_filters"

    def __init__(self, message: str, code: str | None = None, params: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code or self.default_code
        self.params: dict[str, Any] = dict(params or {})


class UnknownSchool(ReportError):
    """The benchmark's school does not exist, or is of a board the viewer may not see: the
    two are told alike (the routes answer 404), so another board's school ids cannot be probed."""

    default_code = "unknown_school"


SchoolNotFound = UnknownSchool  # the name the renderings' brief uses; one class


def school_missing(board: str, school: str) -> str:
    # The registry's words for a school that does not exist (collector/registry.py
    # resolve_school, collector/routes/scope.py school_missing): one answer on every route.
    return f"no school {f'{board}/{school}'!r} (see: school list)"


def default_filters(today: dt.date) -> Filters:
    """The last 91 whole local days, through yesterday: a day still under way is not yet a
    day to compare (and its windows, not yet in a day document, would be decoded on every
    view). Asked for explicitly, a period may run to today."""
    return Filters(start=today - dt.timedelta(days=DEFAULT_PERIOD_DAYS), end=today - dt.timedelta(days=1))


# Dates a report may cover: far enough either way for any real measurement, and far from
# date.max, where the day after the period (its end's midnight) would not exist.
FIRST_DATE = dt.date(2000, 1, 1)
LAST_DATE = dt.date(2100, 12, 31)


def check_period(filters: Filters) -> None:
    for day in (filters.start, filters.end):
        if not FIRST_DATE <= day <= LAST_DATE:
            raise ReportError(f"the date {day} is outside {FIRST_DATE} to {LAST_DATE}", "date_out_of_range",
                              {"date": day.isoformat(), "first": FIRST_DATE.isoformat(),
                               "last": LAST_DATE.isoformat()})
    if filters.start > filters.end:
        raise ReportError(f"the period starts ({filters.start}) after it ends ({filters.end})",
                          "period_reversed",
                          {"start": filters.start.isoformat(), "end": filters.end.isoformat()})
    days = (filters.end - filters.start).days + 1
    if days > MAX_PERIOD_DAYS:
        raise ReportError(f"the period is {days} days; a report covers at most {MAX_PERIOD_DAYS}",
                          "period_too_long", {"days": days, "maximum": MAX_PERIOD_DAYS})


@dataclass(frozen=True)
class Candidate:
    board: BoardRow
    school: SchoolRow
    line: ConnectionInfo


@dataclass
class Scope:
    """The boards, schools and main lines a viewer may count, read once."""

    boards: dict[int, BoardRow]
    counted: set[int]
    schools: dict[int, SchoolRow]
    lines: dict[int, list[ConnectionInfo]]
    # The boards the viewer may name in the board filter: those it sees one by one. An
    # analyst naming an unshared board could set it against the others (privacy.py).
    nameable: set[int]


def read_scope(conn: Connection, viewer: Viewer | None) -> Scope:
    """What ``viewer`` may count (None: every board, for the anonymised benchmark)."""
    boards = load_boards(conn)
    counted = viewer.aggregate_boards(boards) if viewer is not None else set(boards)
    nameable = {pk for pk in counted if viewer is None or viewer.may_read_board(pk, boards[pk].shared)}
    schools = load_schools(conn, sorted(counted))
    return Scope(boards, counted, schools, load_main_lines(conn, sorted(schools)), nameable)


def choices_of(scope: Scope) -> FilterChoices:
    # One region however its schools spell it ("Zuid", "zuid"): the first spelling in order.
    spellings: dict[str, str] = {}
    for region in sorted(s.region.strip() for s in scope.schools.values() if s.region and s.region.strip()):
        spellings.setdefault(region.lower(), region)
    regions = [spellings[key] for key in sorted(spellings)]
    lines = [line for school_lines in scope.lines.values() for line in school_lines]
    providers: dict[str, str] = {}
    for line in lines:
        providers.setdefault(line.provider_id, line.provider)
    return FilterChoices(
        regions=tuple(regions), technologies=tuple(sorted({line.technology for line in lines})),
        boards=tuple(sorted((scope.boards[pk].slug, scope.boards[pk].name) for pk in scope.nameable)),
        providers=tuple(sorted(providers.items())))


def selected_boards(scope: Scope, wanted: Sequence[str]) -> set[int]:
    """The boards of the ``board=`` filter, among those the viewer may name (``Scope.nameable``:
    those it sees one by one). Any other board (another board, for a board role; an unshared
    one, for an analyst) is as unknown as one that does not exist, in the same words, so
    board ids cannot be probed."""
    if not wanted:
        return set(scope.counted)
    by_slug = {board.slug: board.pk for board in scope.boards.values() if board.pk in scope.nameable}
    chosen = set()
    for slug in wanted:
        if slug not in by_slug:
            raise ReportError(f"no board with id {slug!r}", "unknown_board", {"board": slug})
        chosen.add(by_slug[slug])
    return chosen


def check_choices(filters: Filters, choices: FilterChoices) -> None:
    regions = {region.lower() for region in choices.regions}
    for region in filters.regions:
        if region.strip().lower() not in regions:
            raise ReportError(f"no school in region {region!r}", "unknown_region", {"region": region})
    for technology in filters.technologies:
        if technology not in TECHNOLOGIES and technology not in choices.technologies:
            raise ReportError(f"unknown technology {technology!r}: one of {', '.join(TECHNOLOGIES)}",
                              "unknown_technology",
                              {"technology": technology, "technologies": list(TECHNOLOGIES)})
    providers = {provider_id for provider_id, _ in choices.providers}
    for provider in filters.providers:
        if provider not in providers:
            raise ReportError(f"no line of a provider with id {provider!r}", "unknown_provider",
                              {"provider": provider})


def candidates(scope: Scope, filters: Filters, board_pks: set[int]) -> list[Candidate]:
    regions = {region.strip().lower() for region in filters.regions}
    found = []
    for school in sorted(scope.schools.values(), key=lambda s: (scope.boards[s.board_pk].slug, s.slug)):
        if school.board_pk not in board_pks:
            continue
        if regions and (school.region or "").strip().lower() not in regions:
            continue
        for line in scope.lines.get(school.pk, []):
            if filters.technologies and line.technology not in filters.technologies:
                continue
            if filters.providers and line.provider_id not in filters.providers:
                continue
            if counts_in(line, filters.start, filters.end):
                found.append(Candidate(scope.boards[school.board_pk], school, line))
    return found


def period_of(calendar: SchoolCalendar, filters: Filters) -> Period:
    midnight = dt.time(0, 0)
    return Period(filters.start, filters.end, local_instant(filters.start, midnight, calendar.zone),
                  local_instant(filters.end + dt.timedelta(days=1), midnight, calendar.zone))


def lines_data(engine: Engine, chosen: Sequence[Candidate], filters: Filters, *, now: float,
               default_timezone: str, visible: Callable[[BoardRow], bool]) -> list[LineData]:
    """Every chosen line's figures: a few queries for all of them, then arithmetic. (Latency
    and loss are asked per school after the reads, as they may write their cache.)"""
    if not chosen:
        return []
    school_pks = sorted({c.school.pk for c in chosen})
    with engine.connect() as conn:
        calendars = load_calendars(conn, default_timezone)
        periods = {pk: period_of(calendars[pk], filters) for pk in school_pks}
        since = min(p.start for p in periods.values())
        until = max(p.end for p in periods.values())
        results = load_results(conn, [c.line.id for c in chosen], since, until)
        observations = load_observations(conn, school_pks, since, until)
        incidents = load_incidents(conn, school_pks, since, until)
    qualities = {pk: school_link_quality(engine, pk, calendars[pk], periods[pk].first_day,
                                         periods[pk].last_day, now) for pk in school_pks}
    return [line_data(board=c.board, school=c.school, line=c.line, calendar=calendars[c.school.pk],
                      period=periods[c.school.pk], results=results.get(c.line.id, []),
                      observation=observations.get(c.school.pk), incidents=incidents.get(c.school.pk, []),
                      quality=qualities[c.school.pk], now=now, visible=visible(c.board))
            for c in chosen]


def build_report(engine: Engine, viewer: Viewer, filters: Filters, *, now: float,
                 default_timezone: str) -> Report:
    check_period(filters)
    with engine.connect() as conn:
        scope = read_scope(conn, viewer)
        board_pks = selected_boards(scope, filters.boards)
        choices = choices_of(scope)
        check_choices(filters, choices)
        chosen = candidates(scope, filters, board_pks)
        # The normalisation's cells are every line the viewer may count in the period, whatever
        # the filters: "typical for its kind" must not turn into "typical of what was asked"
        # (a report of one provider would make it 1.0 by construction).
        counted = candidates(scope, Filters(start=filters.start, end=filters.end), set(scope.counted))
    asked = {(c.school.pk, c.line.id) for c in chosen}
    everyone = normalise(lines_data(engine, counted, filters, now=now, default_timezone=default_timezone,
                                    visible=lambda board: viewer.may_read_board(board.pk, board.shared)))
    datas = [d for d in everyone if (d.school_pk, d.line_pk) in asked]
    return assemble(datas, filters, viewer, choices, now=now, default_timezone=default_timezone)


def assemble(datas: list[LineData], filters: Filters, viewer: Viewer, choices: FilterChoices, *,
             now: float, default_timezone: str) -> Report:
    by_provider: dict[str, list[LineData]] = defaultdict(list)
    by_technology: dict[str, list[LineData]] = defaultdict(list)
    by_cell: dict[tuple[str, str, int], list[LineData]] = defaultdict(list)
    names: dict[str, str] = {}
    for data in datas:
        f = data.figures
        names.setdefault(f.provider_id, f.provider)
        by_provider[f.provider_id].append(data)
        by_technology[f.technology].append(data)
        by_cell[(f.provider_id, f.technology, f.tier)].append(data)
    providers = sorted(by_provider, key=lambda p: (names[p].lower(), p))

    cells = sorted(by_cell, key=lambda k: (names[k[0]].lower(), k[0], k[1], k[2]))
    technologies = sorted(by_technology)
    # Every row by a key of its own, for the complementary suppression (privacy.py).
    members: dict[Hashable, list[LineData]] = {OVERALL: datas}
    members.update({("provider", p): by_provider[p] for p in providers})
    members.update({("technology", t): by_technology[t] for t in technologies})
    members.update({("cell", *key): by_cell[key] for key in cells})
    rows = {key: group_figures(lines, provider_id=_part(key, 0), provider=names.get(_part(key, 0) or ""),
                               technology=_part(key, 1), tier=_tier(key))
            for key, lines in members.items()}
    partitions: list[Partition] = [
        (OVERALL, [("provider", p) for p in providers]),
        (OVERALL, [("technology", t) for t in technologies]),
        # The cells partition the whole report too: with a provider and a technology both
        # withheld, the overall row minus the shown cells would otherwise give a hidden cell.
        (OVERALL, [("cell", *k) for k in cells]),
        *((("provider", p), [("cell", *k) for k in cells if k[0] == p]) for p in providers),
        *((("technology", t), [("cell", *k) for k in cells if k[1] == t]) for t in technologies)]
    withheld_rows = complementary(partitions, {key: hidden_set(lines) for key, lines in members.items()},
                                  [key for key, row in rows.items() if row.hidden])
    shown = {key: withhold(row) if key in withheld_rows else row for key, row in rows.items()}

    notes = []
    if not datas:
        notes.append("no_lines")
    elif not any(d.measured for d in datas):
        notes.append("no_measured_lines")
    hidden = hidden_schools(datas)
    if hidden:
        notes.append("hidden_schools")
    return Report(
        filters=filters, generated_at=now, timezone=default_timezone, viewer_role=viewer.role,
        viewer_board=viewer.board,
        by_provider=tuple(shown[("provider", p)] for p in providers),
        by_technology=tuple(shown[("technology", t)] for t in technologies),
        by_provider_technology_tier=tuple(shown[("cell", *key)] for key in cells),
        overall=shown[OVERALL],
        lines=tuple(d.figures for d in datas if d.visible),
        hidden_schools=hidden,
        hour_profiles=tuple(hour_profile(by_provider[p], p, names[p], hidden=shown[("provider", p)].hidden)
                            for p in providers),
        distributions=tuple(distribution(by_provider[p], p, names[p], hidden=shown[("provider", p)].hidden)
                            for p in providers),
        choices=choices, notes=tuple(notes))


OVERALL = ("overall",)


def _part(key: Hashable, index: int) -> str | None:
    """A row key's provider (0) or technology (1): ("provider", p), ("technology", t),
    ("cell", p, t, tier), ("overall",)."""
    assert isinstance(key, tuple)
    if key[0] == "cell":
        return str(key[1 + index])
    if key[0] == ("provider", "technology")[index]:
        return str(key[1])
    return None


def _tier(key: Hashable) -> int | None:
    assert isinstance(key, tuple)
    return int(key[3]) if key[0] == "cell" else None


def build_benchmark(engine: Engine, viewer: Viewer, board: str, school: str, filters: Filters, *,
                    now: float, default_timezone: str) -> Benchmark:
    from collector.comparison.benchmark import benchmark

    check_period(filters)
    with engine.connect() as conn:
        scope = read_scope(conn, None)
        found = next((b for b in scope.boards.values() if b.slug == board
                      and viewer.may_read_board(b.pk, b.shared)), None)
        target = next((s for s in scope.schools.values()
                       if found is not None and s.board_pk == found.pk and s.slug == school), None)
        if target is None:  # no such school, or one of a board the viewer may not see
            raise UnknownSchool(school_missing(board, school), params={"board": board, "school": school})
        # Peers are the schools of any board that the viewer may NOT see one by one (an
        # admin's: every other school): the benchmark is anonymised, only quartiles of at
        # least AGGREGATE_MINIMUM such schools leave it; a viewer's own schools are no
        # anonymous peers (their figures minus the quartiles would tell on the others).
        period_only = Filters(start=filters.start, end=filters.end)
        chosen = candidates(scope, period_only, set(scope.boards))
    datas = lines_data(engine, chosen, period_only, now=now, default_timezone=default_timezone,
                       visible=lambda row: viewer.may_read_board(row.pk, row.shared))
    return benchmark(datas, target, board, filters, now=now, every_school_a_peer=viewer.is_admin)
