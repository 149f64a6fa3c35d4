"""A school's verdicts from the store: its results, contract terms and calendar, judged.

The arithmetic is in ``collector/verdicts/`` (pure functions); this module loads what it
needs — the bandwidth results attributed to each connection, the terms in force on each
result's local date, the school's calendar, its outages — and assembles the document that
``schoolnet-collector verdicts`` prints and the admin API returns. ``/metrics`` uses the same
``judge_school`` (collector/verdict_metrics.py), so a dashboard and a verdict never disagree.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, literal, select

from collector.availability import OUTAGE_SETS, Outage, ongoing_outage, recorded_outage
from collector.calendar import SchoolCalendar, load_calendar
from collector.contracts import ConnectionInfo, board_policy, school_connections
from collector.db.schema import agents, connectivity_first_windows, latest, records, schools
from collector.policy import RULE_SETS, BoardPolicy, RuleSetName
from collector.registry import resolve_school
from collector.results import StoredResult, load_results
from collector.terms import DIRECTIONS, Direction, Terms, terms_on
from collector.verdicts.availability import school_hours_availability
from collector.verdicts.capacity import CapacityVerdict, capacity_verdict
from collector.verdicts.model import HOURS, Hours, Measurement, in_hours
from collector.verdicts.rulesets import evaluate
from collector.verdicts.summary import DirectionSummary, direction_summary
from collector.verdicts.verdict import RuleVerdict

# Outage kinds counted against the provider: the same set as
# schoolnet_connectivity_availability_ratio{outages="isp"}. An "internet" outage (no gateway
# probed) may be the school's own network, so it is not held against the provider.
PROVIDER_OUTAGES = OUTAGE_SETS["isp"]


@dataclass
class ConnectionJudgement:
    line: ConnectionInfo
    measurements: list[Measurement]
    summaries: dict[tuple[Direction, Hours], DirectionSummary]
    verdicts: dict[RuleSetName, RuleVerdict]
    capacity: CapacityVerdict
    current_terms: Terms | None
    terms_in_window: int  # how many different terms the window's results were judged by


@dataclass
class SchoolJudgement:
    board: str
    school: str
    school_pk: int
    policy: BoardPolicy
    calendar: SchoolCalendar
    start: float
    end: float
    hours: Hours
    connections: list[ConnectionJudgement]
    unattributed: list[StoredResult] = field(default_factory=list)
    availability: dict[str, float | None] = field(default_factory=dict)
    school_seconds: float = 0.0


def hour_key(local: dt.datetime) -> str:
    """The local clock hour with its UTC offset: the autumn's repeated 02:00 is two hours."""
    offset = local.strftime("%z")  # "+0200"
    return f"{local:%Y-%m-%dT%H}{offset[:3]}:{offset[3:]}"


def measurements_of(results: Sequence[StoredResult], line: ConnectionInfo | None,
                    calendar: SchoolCalendar) -> list[Measurement]:
    """Each result as the verdicts see it, judged by the terms of ``line`` in force on its
    local date (None without a line: counted, never judged)."""
    built = []
    for result in results:
        local = calendar.local_datetime(result.measured_at)
        built.append(Measurement(
            measured_at=result.measured_at, local_day=local.date(), hour_key=hour_key(local),
            in_session=calendar.in_session(result.measured_at),
            download=result.download_bytes_per_second, upload=result.upload_bytes_per_second,
            terms=terms_on(line.terms, local.date()) if line is not None else None,
            valid=result.valid, concurrent_devices=result.concurrent_devices,
            source=result.source, backend=result.backend, server=result.server))
    return built


def judge_connection(line: ConnectionInfo, results: Sequence[StoredResult], calendar: SchoolCalendar,
                     policy: BoardPolicy, video_participants: int | None, start: float, end: float,
                     hours: Hours, rule_sets: Sequence[RuleSetName]) -> ConnectionJudgement:
    measurements = measurements_of(results, line, calendar)
    summaries = {(direction, h): direction_summary(measurements, direction, h)
                 for direction in DIRECTIONS for h in HOURS}
    # The rule sets see the hours asked for; FCC-style and Giga keep to school hours
    # themselves (the school's peak), whatever is asked.
    judged = in_hours(measurements, hours)
    verdicts = {name: evaluate(name, judged, start, end) for name in rule_sets}
    today = calendar.local_date(end)
    current = terms_on(line.terms, today)
    # Capacity is about the school day whatever hours the rule sets judge (it keeps to
    # school hours itself), and against today's contract: none in force is no contract
    # verdict, not the expired one.
    capacity = capacity_verdict(measurements, policy.capacity, video_participants, current)
    distinct_terms = {m.terms for m in measurements if m.terms is not None}
    return ConnectionJudgement(line, measurements, summaries, verdicts, capacity, current,
                               len(distinct_terms))


def judge_school(conn: Connection, school_pk: int, board: str, school: str, *, start: float,
                 end: float, hours: Hours, rule_sets: Sequence[RuleSetName] | None,
                 default_timezone: str, with_availability: bool = True) -> SchoolJudgement:
    """Everything the verdicts of one school say over [start, end). ``rule_sets`` None:
    the board's own; ``with_availability`` False leaves out the outages (/metrics reads
    them once for its own windows)."""
    row = conn.execute(select(schools.c.board_id, schools.c.video_participants)
                       .where(schools.c.id == school_pk)).one()
    policy = board_policy(conn, row.board_id)
    calendar = load_calendar(conn, school_pk, default_timezone)
    chosen = list(rule_sets) if rule_sets is not None else [policy.rule_set]
    results = load_results(conn, school_pk, start, end)
    by_line: dict[int | None, list[StoredResult]] = {}
    for result in results:
        by_line.setdefault(result.connection_id, []).append(result)
    judgements = [judge_connection(line, by_line.get(line.id, []), calendar, policy,
                                   row.video_participants, start, end, hours, chosen)
                  for line in school_connections(conn, school_pk)]
    judgement = SchoolJudgement(board, school, school_pk, policy, calendar, start, end, hours,
                                judgements, by_line.get(None, []))
    if not with_availability:
        return judgement
    outages, observed_from = school_outages(conn, school_pk, start, end)
    if observed_from is not None:
        sessions = calendar.session_intervals(max(start, observed_from), end)
        judgement.school_seconds = sum(b - a for a, b in sessions)
        for name, kinds in (("all", None), ("isp", PROVIDER_OUTAGES)):
            intervals = [(o.start, o.end) for o in outages if kinds is None or o.kind in kinds]
            judgement.availability[name] = school_hours_availability(
                intervals, sessions, max(start, observed_from), end)
    return judgement


def school_outages(conn: Connection, school_pk: int, start: float, end: float
                   ) -> tuple[list[Outage], float | None]:
    """The outages of the school's agents that touch [start, end) (ended ones from the
    store, the one under way from each agent's latest window), and when the school began
    observing (its earliest connectivity window, not before an agent was enrolled)."""
    school_agents = select(agents.c.id).where(agents.c.school_id == school_pk)
    firsts = conn.execute(
        select(connectivity_first_windows.c.first_window_at, agents.c.created_at)
        .join(agents, agents.c.id == connectivity_first_windows.c.agent_id)
        .where(agents.c.school_id == school_pk)).all()
    observed_from = min((max(r.first_window_at, r.created_at) for r in firsts), default=None)
    outages: list[Outage] = []
    # An outage record's clock is its end; the kind as a literal so SQLite uses the
    # partial index on outage records.
    for payload in conn.scalars(
            select(records.c.payload)
            .where(records.c.agent_id.in_(school_agents),
                   records.c.kind == literal("outage", literal_execute=True),
                   records.c.measured_at >= start, records.c.ok)):
        outage = recorded_outage(payload)
        if outage is not None and outage.start < end:
            outages.append(outage)
    for measured_at, payload in conn.execute(
            select(latest.c.measured_at, latest.c.payload)
            .where(latest.c.agent_id.in_(school_agents), latest.c.kind == "connectivity")).all():
        ongoing = ongoing_outage(payload or {}, measured_at) if measured_at is not None else None
        if ongoing is not None and ongoing.end >= start:
            outages.append(ongoing)
    return outages, observed_from


def school_verdicts(engine: Engine, school_ref: str, *, window: float, now: float,
                    rule_set: RuleSetName | None = None, all_rule_sets: bool = False,
                    hours: Hours = "all", default_timezone: str = "Europe/Amsterdam") -> dict[str, Any]:
    """The document of ``schoolnet-collector verdicts --json`` and the admin API."""
    rule_sets: list[RuleSetName] | None = (
        list(RULE_SETS) if all_rule_sets else [rule_set] if rule_set else None)
    with engine.connect() as conn:
        school_pk, board, school = resolve_school(conn, school_ref)
        judgement = judge_school(conn, school_pk, board, school, start=max(now - window, 0.0),
                                 end=now, hours=hours, rule_sets=rule_sets,
                                 default_timezone=default_timezone)
    return judgement_document(judgement)


def judgement_document(judgement: SchoolJudgement) -> dict[str, Any]:
    return finite(_document(judgement))


def finite(value: Any) -> Any:
    """``value`` with every non-finite float as None: JSON has no Infinity or NaN, and a
    ratio to an absurd stored speed is no figure at all."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _document(judgement: SchoolJudgement) -> dict[str, Any]:
    calendar = judgement.calendar
    return {
        "board": judgement.board,
        "school": judgement.school,
        "window": {"start": _iso(judgement.start, calendar), "end": _iso(judgement.end, calendar),
                   "seconds": judgement.end - judgement.start},
        "timezone": str(calendar.zone),
        "hours": judgement.hours,
        "rule_sets": sorted({name for c in judgement.connections for name in c.verdicts})
        or [judgement.policy.rule_set],
        "connections": [_connection_document(c, calendar) for c in judgement.connections],
        "unattributed_results": {
            "count": len(judgement.unattributed),
            "why": None if not judgement.unattributed else (
                "the school has no connection these results could be attributed to (import the "
                "contracts: schoolnet-collector import contracts FILE.csv)"
                if not judgement.connections else
                "no evidence said which of the school's connections they used"),
        },
        "availability_school_hours": {
            "school_seconds_observed": judgement.school_seconds,
            "all_outages": judgement.availability.get("all"),
            "provider_outages": judgement.availability.get("isp"),
        },
    }


def _connection_document(c: ConnectionJudgement, calendar: SchoolCalendar) -> dict[str, Any]:
    line = c.line
    results = c.measurements
    return {
        "connection": line.slug,
        "provider": line.provider,
        "provider_id": line.provider_id,
        "technology": line.technology,
        "role": line.role,
        "terms_now": _terms_document(c.current_terms),
        "terms_in_window": c.terms_in_window,
        "results": {"total": len(results), "valid": sum(1 for m in results if m.valid),
                    "invalid": sum(1 for m in results if not m.valid),
                    "without_terms": sum(1 for m in results if m.terms is None),
                    "days": len({m.local_day for m in results})},
        **{direction: {h: c.summaries[(direction, h)].as_dict() for h in HOURS}
           for direction in DIRECTIONS},
        "verdicts": [verdict.as_dict() for verdict in c.verdicts.values()],
        "capacity": c.capacity.as_dict(),
    }


def _terms_document(terms: Terms | None) -> dict[str, Any] | None:
    if terms is None:
        return None
    document: dict[str, Any] = {"starts_on": terms.starts_on.isoformat(),
                                "ends_on": terms.ends_on.isoformat() if terms.ends_on else None}
    for direction in DIRECTIONS:
        for level in ("advertised", "minimum", "normal", "maximum"):
            document[f"{direction}_{level}_bytes_per_second"] = terms.speed(direction, level)
    document.update(monthly_cost=terms.monthly_cost, currency=terms.currency,
                    sla_response_seconds=terms.sla_response_seconds,
                    sla_restore_seconds=terms.sla_restore_seconds)
    return document


def _iso(t: float, calendar: SchoolCalendar) -> str:
    return calendar.local_datetime(t).isoformat(timespec="seconds")
