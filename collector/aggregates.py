"""Daily aggregates: what one school's local day holds once its raw records are gone.

Retention (collector/retention.py) deletes raw rows after 13 months; these rows stay, so a
year can still be compared with the last. One row per (school, scope, day, kind) in
``daily_aggregates``. Every ``data`` document has the same three parts, by the school's
calendar (collector/calendar.py): ``all``, ``school`` (in session: a school day, not a
holiday, within school hours) and ``outside`` (the rest), each with the same fields:

- ``bandwidth``, scope ``school`` (every result of the school) and ``connection/<slug>``
  (the results attributed to that line): ``tests``, ``valid_tests``, ``imported_tests``
  and per direction (``download_bytes_per_second``, ``upload_bytes_per_second``) the
  nearest-rank ``median``, ``p20`` (the "80/80" speed), ``min`` and ``max`` of the valid
  tests that measured that direction, with their ``count``. The school scope also holds
  ``unattributed_tests``. A test belongs to the hours it was measured in.
- ``connectivity``, scope ``agent/<slug>``: ``windows`` (measured), ``failed_windows``,
  ``window_seconds`` and ``down_seconds`` (summed; a window, a minute or so, belongs to the
  hours it started in); the line's quality over the windows the school's own network did
  not spoil: ``lan_windows`` (measured windows left out because the agent put the trouble
  in the LAN: ``segment`` or ``outage_kind`` "lan", or a probed gateway that answered
  nothing), ``targets_sent`` and ``targets_received`` (echo probes to the internet-role
  targets, summed as collector/incidents/history.reduce_window counts them, so loss is
  1 - received / sent), ``latency_windows`` (windows with a round trip to a target) and
  ``latency_p50_seconds`` (nearest-rank median over those windows of each window's
  median of its targets' median round trips; null without one); ``outages`` and
  ``outage_seconds`` by outage kind. An outage counts
  on the day it ended (its record's clock is its end); its seconds, from its start to its
  end, are split by the school's sessions, and it is counted in each part it has time in
  (so ``school`` + ``outside`` seconds make ``all``, while an outage over 08:30 counts once
  in each).
- ``users``, scope ``agent/<slug>``: ``windows``, ``peak_concurrent_devices`` and the
  nearest-rank ``median_concurrent_devices`` (a census window belongs to the hours it
  started in).
- ``wifi``, scope ``school``: ``rooms`` = {room slug: {``observations``, ``with_signal``,
  ``median_signal_dbm``, ``min_signal_dbm``, ``max_signal_dbm``}}, each part listing the
  rooms observed in its hours.

A school-scope row of ``bandwidth`` and ``wifi`` is written for every aggregated day,
even an empty one: "no tests that day" is a fact worth keeping. Agent and connection
scopes appear only on days they have data. Days are the school's local days
(``schools.timezone``, else the collector's ``timezone`` setting), DST-correct: a day is
from one local midnight to the next (23 or 25 hours on the change days).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, select

from collector.availability import recorded_outage, union_seconds
from collector.calendar import SchoolCalendar, load_calendar
from collector.db.engine import writer
from collector.db.schema import (
    agents,
    bandwidth_results,
    connections,
    daily_aggregates,
    records,
    room_observations,
    rooms,
    schools,
)
from collector.exposition import stored_number
from collector.incidents.history import Window, reduce_window

KINDS = ("bandwidth", "connectivity", "users", "wifi")
# The parts of every document: what ``--hours`` offers elsewhere (verdicts, rooms).
HOURS = ("all", "school", "outside")
# Days aggregated per read: bounds the rows held in memory (a day of connectivity windows
# is 1,440 per agent) while keeping the number of queries small.
DAYS_PER_READ = 7

Interval = tuple[float, float]


def nearest_rank(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``percent`` % of the
    values at or below it (no interpolation: every answer is a value that was measured)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, Any]:
    return {"count": len(values), "median": nearest_rank(values, 50), "p20": nearest_rank(values, 20),
            "min": min(values) if values else None, "max": max(values) if values else None}


@dataclass(frozen=True)
class Bounds:
    """One local day of one school as Unix seconds: [start, end)."""

    day: date
    start: float
    end: float


def day_bounds(day: date, zone: ZoneInfo) -> Bounds:
    start = datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone).timestamp()
    return Bounds(day, start, end)


def local_day(t: float, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(t, zone).date()


def school_zone(conn: Connection, school_pk: int, default_timezone: str) -> ZoneInfo:
    name = conn.scalar(select(schools.c.timezone).where(schools.c.id == school_pk))
    return ZoneInfo(name or default_timezone)


# --- hours: school, outside, all ------------------------------------------------------------


def split_by_hours(rows: Sequence[Any], sessions: Sequence[Interval]) -> dict[str, list[Any]]:
    """``rows`` (with ``measured_at``) in the three parts by their time: ``sessions`` are the
    school's session intervals covering those times (one day's: at most one interval, so
    this stays cheap for a day of per-minute windows)."""
    school: list[Any] = []
    outside: list[Any] = []
    for row in rows:
        t = float(row.measured_at)
        (school if any(a <= t < b for a, b in sessions) else outside).append(row)
    return {"all": list(rows), "school": school, "outside": outside}


def by_hours(rows: Sequence[Any], sessions: Sequence[Interval],
             figures: Callable[[list[Any]], dict[str, Any]]) -> dict[str, Any]:
    return {part: figures(part_rows) for part, part_rows in split_by_hours(rows, sessions).items()}


# --- the documents, from rows -------------------------------------------------------------


def bandwidth_figures(rows: Sequence[Any]) -> dict[str, Any]:
    """``rows``: bandwidth_results rows (measured_at, valid, source, download/upload)."""
    valid = [row for row in rows if row.valid]
    return {
        "tests": len(rows), "valid_tests": len(valid),
        "imported_tests": sum(1 for row in rows if row.source != "agent"),
        "download_bytes_per_second": summary(
            [row.download_bytes_per_second for row in valid if row.download_bytes_per_second is not None]),
        "upload_bytes_per_second": summary(
            [row.upload_bytes_per_second for row in valid if row.upload_bytes_per_second is not None]),
    }


def bandwidth_document(rows: Sequence[Any], sessions: Sequence[Interval],
                       school_scope: bool = False) -> dict[str, Any]:
    def figures(part: list[Any]) -> dict[str, Any]:
        found = bandwidth_figures(part)
        if school_scope:
            found["unattributed_tests"] = sum(1 for row in part if row.connection is None)
        return found

    return by_hours(rows, sessions, figures)


@dataclass(frozen=True)
class WindowRow:
    """A connectivity record with its payload reduced once (a window counts in two parts)."""

    measured_at: float
    ok: bool
    payload: Any
    window: Window | None


def window_rows(rows: Sequence[Any]) -> list[WindowRow]:
    """Connectivity records (measured_at, ok, payload) as WindowRows."""
    return [WindowRow(float(row.measured_at), bool(row.ok), row.payload,
                      reduce_window(0, "", float(row.measured_at), row.payload)
                      if row.ok and row.payload else None) for row in rows]


def window_figures(windows: Sequence[WindowRow]) -> dict[str, Any]:
    measured = [row for row in windows if row.ok and row.payload]
    # The line is judged only where the school's own network was fine: a window with
    # the trouble in the LAN says nothing about the provider (as in the evidence pack).
    windows_left = [row.window for row in measured if row.window is not None]
    judged = [window for window in windows_left if not lan_fault(window)]
    latencies = [window.targets_latency_p50_seconds for window in judged
                 if window.targets_latency_p50_seconds is not None]
    return {
        "windows": len(measured), "failed_windows": len(windows) - len(measured),
        "window_seconds": sum(float(row.payload["window_seconds"]) for row in measured),
        "down_seconds": sum(float(row.payload.get("down_seconds") or 0.0) for row in measured),
        "lan_windows": len(windows_left) - len(judged),
        "targets_sent": sum(window.targets_sent for window in judged),
        "targets_received": sum(window.targets_received for window in judged),
        "latency_windows": len(latencies),
        "latency_p50_seconds": nearest_rank(latencies, 50),
    }


def lan_fault(window: Window) -> bool:
    """Whether the agent put this window's trouble in the school's own network: its
    segment or its outage is "lan", or the gateway it probed answered none of its probes."""
    return (window.segment == "lan" or window.outage_kind == "lan"
            or (window.gateway_loss_ratio is not None and window.gateway_loss_ratio >= 1.0))


def outage_interval(row: Any) -> tuple[str, Interval] | None:
    """(kind, [start, end]) of an outage record: its own start and end; a payload without
    them (read leniently, as stored) ends at its record's clock and lasts its duration."""
    outage = recorded_outage(row.payload)
    if outage is not None:
        return outage.kind, (outage.start, outage.end)
    kind = row.payload.get("outage_kind")
    duration = stored_number(row.payload.get("duration_seconds"))
    if not isinstance(kind, str) or duration is None:
        return None
    return kind, (float(row.measured_at) - duration, float(row.measured_at))


def outage_figures(outages: Sequence[Any], calendar: SchoolCalendar) -> dict[str, dict[str, Any]]:
    """Per part: ``outages`` and ``outage_seconds`` by kind, each outage's seconds split by
    the school's sessions over its whole span (it may have begun days before it ended)."""
    counts: dict[str, dict[str, int]] = {part: defaultdict(int) for part in HOURS}
    seconds: dict[str, dict[str, float]] = {part: defaultdict(float) for part in HOURS}
    for row in outages:
        found = outage_interval(row)
        if found is None:
            continue
        kind, (start, end) = found
        length = max(end - start, 0.0)
        in_school = union_seconds(calendar.session_intervals(start, end), start, end) if length else 0.0
        # An outage of no length belongs to the hours it happened in.
        parts = {"all": length, "school": in_school, "outside": length - in_school}
        touched = {"all": True, "school": in_school > 0, "outside": length - in_school > 0}
        if not length:
            touched["school" if calendar.in_session(start) else "outside"] = True
        for part in HOURS:
            if touched[part]:
                counts[part][kind] += 1
                seconds[part][kind] += parts[part]
    return {part: {"outages": dict(sorted(counts[part].items())),
                   "outage_seconds": dict(sorted(seconds[part].items()))} for part in HOURS}


def connectivity_document(windows: Sequence[Any], outages: Sequence[Any], sessions: Sequence[Interval],
                          calendar: SchoolCalendar) -> dict[str, Any]:
    """``windows``: connectivity records; ``outages``: outage records (ok ones)."""
    document = by_hours(window_rows(windows), sessions, window_figures)
    for part, figures in outage_figures(outages, calendar).items():
        document[part].update(figures)
    return dict(document)


def users_figures(counted: Sequence[Any]) -> dict[str, Any]:
    counts = [int(row.payload["concurrent_devices"]) for row in counted]
    return {"windows": len(counts), "peak_concurrent_devices": max(counts) if counts else None,
            "median_concurrent_devices": nearest_rank(counts, 50)}


def users_document(windows: Sequence[Any], sessions: Sequence[Interval]) -> dict[str, Any]:
    counted = [row for row in windows
               if row.ok and row.payload and row.payload.get("concurrent_devices") is not None]
    return by_hours(counted, sessions, users_figures)


def wifi_figures(observations: Sequence[Any]) -> dict[str, Any]:
    by_room: dict[str, list[Any]] = defaultdict(list)
    for row in observations:
        by_room[row.room].append(row.signal_dbm)
    result: dict[str, Any] = {}
    for room, readings in sorted(by_room.items()):
        signals = [float(value) for value in readings if value is not None]
        result[room] = {"observations": len(readings), "with_signal": len(signals),
                        "median_signal_dbm": nearest_rank(signals, 50),
                        "min_signal_dbm": min(signals) if signals else None,
                        "max_signal_dbm": max(signals) if signals else None}
    return {"rooms": result}


def wifi_document(observations: Sequence[Any], sessions: Sequence[Interval]) -> dict[str, Any]:
    return by_hours(observations, sessions, wifi_figures)


# --- reading a school's days and writing their rows ---------------------------------------


def day_documents(conn: Connection, school_pk: int, days: Sequence[Bounds],
                  calendar: SchoolCalendar) -> list[dict[str, Any]]:
    """The aggregate rows (school_id, scope, day, kind, data) of ``days`` (consecutive)."""
    start, end = days[0].start, days[-1].end
    results = conn.execute(
        select(bandwidth_results.c.measured_at, bandwidth_results.c.valid, bandwidth_results.c.source,
               bandwidth_results.c.download_bytes_per_second, bandwidth_results.c.upload_bytes_per_second,
               connections.c.slug.label("connection"))
        .outerjoin(connections, connections.c.id == bandwidth_results.c.connection_id)
        .where(bandwidth_results.c.school_id == school_pk, bandwidth_results.c.measured_at >= start,
               bandwidth_results.c.measured_at < end)).all()
    raw = conn.execute(
        select(records.c.kind, records.c.ok, records.c.measured_at, records.c.payload,
               agents.c.slug.label("agent"))
        .join(agents, agents.c.id == records.c.agent_id)
        .where(agents.c.school_id == school_pk, records.c.kind.in_(("connectivity", "outage", "users")),
               records.c.measured_at >= start, records.c.measured_at < end)).all()
    observations = conn.execute(
        select(room_observations.c.measured_at, room_observations.c.signal_dbm,
               rooms.c.slug.label("room"))
        .join(rooms, rooms.c.id == room_observations.c.room_id)
        .where(rooms.c.school_id == school_pk, room_observations.c.measured_at >= start,
               room_observations.c.measured_at < end)).all()

    def on(bounds: Bounds, rows: Sequence[Any]) -> list[Any]:
        return [row for row in rows if bounds.start <= row.measured_at < bounds.end]

    out: list[dict[str, Any]] = []
    for bounds in days:
        day = bounds.day.isoformat()

        def add(scope: str, kind: str, data: dict[str, Any], day: str = day) -> None:
            out.append({"school_id": school_pk, "scope": scope, "day": day, "kind": kind, "data": data})

        # The day's school time: at most one session, so each row is placed cheaply.
        sessions = calendar.session_intervals(bounds.start, bounds.end)
        day_results = on(bounds, results)
        add("school", "bandwidth", bandwidth_document(day_results, sessions, school_scope=True))
        for connection, rows in _grouped(day_results, "connection"):
            add(f"connection/{connection}", "bandwidth", bandwidth_document(rows, sessions))
        day_raw = on(bounds, raw)
        for agent, rows in _grouped(day_raw, "agent"):
            windows = [row for row in rows if row.kind == "connectivity"]
            outages = [row for row in rows if row.kind == "outage" and row.ok and row.payload]
            if windows or outages:
                add(f"agent/{agent}", "connectivity",
                    connectivity_document(windows, outages, sessions, calendar))
            census = [row for row in rows if row.kind == "users"]
            if census:
                add(f"agent/{agent}", "users", users_document(census, sessions))
        add("school", "wifi", wifi_document(on(bounds, observations), sessions))
    return out


def _grouped(rows: Sequence[Any], key: str) -> Iterator[tuple[str, list[Any]]]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        value = getattr(row, key)
        if value is not None:
            groups[value].append(row)
    return iter(sorted(groups.items()))


def school_ids(conn: Connection, school_pk: int | None) -> list[int]:
    query = select(schools.c.id).order_by(schools.c.id)
    if school_pk is not None:
        query = query.where(schools.c.id == school_pk)
    return list(conn.scalars(query))


def each_day(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def aggregate_days(engine: Engine, school_pk: int | None, first_day: date, last_day: date,
                   default_timezone: str = "Europe/Amsterdam", now: float | None = None) -> int:
    """Recompute the aggregates of every local day from ``first_day`` to ``last_day``
    (inclusive) of one school (None: every school) from the raw rows there now, replacing
    the rows those days had (so records delivered late count once their day is recomputed,
    and a scope that has no data any more disappears). Returns the rows written.

    Each read covers a few days and each write is one short transaction: ingest waits at
    most that long for the write lock.
    """
    if last_day < first_day:
        return 0
    written = 0
    stamp = time.time() if now is None else now
    with engine.connect() as conn:
        pks = school_ids(conn, school_pk)
    for pk in pks:
        with engine.connect() as conn:
            calendar = load_calendar(conn, pk, default_timezone)
        written += aggregate_school_days(engine, pk, calendar, list(each_day(first_day, last_day)), stamp)
    return written


def aggregate_school_days(engine: Engine, school_pk: int, calendar: SchoolCalendar, days: Sequence[date],
                          stamp: float) -> int:
    """Recompute and replace the aggregates of ``days`` (consecutive, in order) of one
    school whose calendar is known, ``stamp`` as their ``updated_at``. Returns the rows
    written."""
    written = 0
    bounds = [day_bounds(day, calendar.zone) for day in days]
    for index in range(0, len(bounds), DAYS_PER_READ):
        chunk = bounds[index:index + DAYS_PER_READ]
        with engine.connect() as conn:
            rows = day_documents(conn, school_pk, chunk, calendar)
        written += replace_days(engine, school_pk, [day.day for day in chunk], rows, stamp)
    return written


def replace_days(engine: Engine, school_pk: int, days: Sequence[date], rows: list[dict[str, Any]],
                 now: float) -> int:
    """Swap the aggregate rows of ``days`` for ``rows`` in one transaction."""
    with writer(engine) as conn, conn.begin():
        conn.execute(delete(daily_aggregates).where(
            daily_aggregates.c.school_id == school_pk,
            daily_aggregates.c.day.in_([day.isoformat() for day in days]),
            daily_aggregates.c.kind.in_(KINDS)))
        if rows:
            conn.execute(daily_aggregates.insert(), [{**row, "updated_at": now} for row in rows])
    return len(rows)


def load_aggregates(conn: Connection, school_pk: int, first_day: date, last_day: date,
                    kind: str | None = None) -> list[Any]:
    """The stored aggregate rows of a school's days, for reports (and tests)."""
    query = (select(daily_aggregates.c.scope, daily_aggregates.c.day, daily_aggregates.c.kind,
                    daily_aggregates.c.data)
             .where(daily_aggregates.c.school_id == school_pk,
                    daily_aggregates.c.day >= first_day.isoformat(),
                    daily_aggregates.c.day <= last_day.isoformat())
             .order_by(daily_aggregates.c.day, daily_aggregates.c.kind, daily_aggregates.c.scope))
    if kind is not None:
        query = query.where(daily_aggregates.c.kind == kind)
    return list(conn.execute(query).all())
