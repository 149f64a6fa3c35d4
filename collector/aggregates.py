"""Daily aggregates: what one school's local day holds once its raw records are gone.

Retention (collector/retention.py) deletes raw rows after 13 months; these rows stay, so a
year can still be compared with the last. One row per (school, scope, day, kind) in
``daily_aggregates``; ``data`` is a JSON document per kind:

- ``bandwidth``, scope ``school`` (every result of the school) and ``connection/<slug>``
  (the results attributed to that line): ``tests``, ``valid_tests``, ``imported_tests``
  and per direction (``download_bytes_per_second``, ``upload_bytes_per_second``) the
  nearest-rank ``median``, ``p20`` (the "80/80" speed), ``min`` and ``max`` of the valid
  tests that measured that direction, with their ``count``. The school scope also holds
  ``unattributed_tests``. With the school calendar: ``school_hours_tests`` and
  ``school_hours_valid_tests``.
- ``connectivity``, scope ``agent/<slug>``: ``windows`` (measured), ``failed_windows``,
  ``window_seconds`` and ``down_seconds`` (summed), ``outages`` and ``outage_seconds`` by
  outage kind (an outage counts on the day it ended: its record's clock is its end). With
  the calendar: ``school_hours_window_seconds``, ``school_hours_down_seconds`` (a window
  counts by its start).
- ``users``, scope ``agent/<slug>``: ``windows``, ``peak_concurrent_devices`` and the
  nearest-rank ``median_concurrent_devices``; with the calendar also
  ``school_hours_peak_concurrent_devices``.
- ``wifi``, scope ``school``: ``rooms`` = {room slug: {``observations``,
  ``with_signal``, ``median_signal_dbm``, ``min_signal_dbm``, ``max_signal_dbm``}}.

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

KINDS = ("bandwidth", "connectivity", "users", "wifi")
# Days aggregated per read: bounds the rows held in memory (a day of connectivity windows
# is 1,440 per agent) while keeping the number of queries small.
DAYS_PER_READ = 7

InSession = Callable[[float], bool]


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


def session_checker(conn: Connection, school_pk: int, default_timezone: str) -> InSession | None:
    """``in_session`` of the school's calendar, or None while collector.calendar does not
    exist (then the aggregates leave the school-hours fields out rather than guess)."""
    try:
        from collector.calendar import load_calendar  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    calendar = load_calendar(conn, school_pk, default_timezone)
    checker: InSession = calendar.in_session
    return checker


# --- the documents, from rows -------------------------------------------------------------


def bandwidth_document(rows: Sequence[Any], in_session: InSession | None) -> dict[str, Any]:
    """``rows``: bandwidth_results rows (measured_at, valid, source, download/upload)."""
    valid = [row for row in rows if row.valid]
    document: dict[str, Any] = {
        "tests": len(rows), "valid_tests": len(valid),
        "imported_tests": sum(1 for row in rows if row.source != "agent"),
        "download_bytes_per_second": summary(
            [row.download_bytes_per_second for row in valid if row.download_bytes_per_second is not None]),
        "upload_bytes_per_second": summary(
            [row.upload_bytes_per_second for row in valid if row.upload_bytes_per_second is not None]),
    }
    if in_session is not None:
        document["school_hours_tests"] = sum(1 for row in rows if in_session(row.measured_at))
        document["school_hours_valid_tests"] = sum(1 for row in valid if in_session(row.measured_at))
    return document


def connectivity_document(windows: Sequence[Any], outages: Sequence[Any],
                          in_session: InSession | None) -> dict[str, Any]:
    """``windows``: connectivity records; ``outages``: outage records (ok ones)."""
    measured = [row for row in windows if row.ok and row.payload]
    by_kind: dict[str, int] = defaultdict(int)
    seconds_by_kind: dict[str, float] = defaultdict(float)
    for row in outages:
        kind = str(row.payload.get("outage_kind"))
        by_kind[kind] += 1
        seconds_by_kind[kind] += float(row.payload.get("duration_seconds") or 0.0)
    document: dict[str, Any] = {
        "windows": len(measured), "failed_windows": len(windows) - len(measured),
        "window_seconds": sum(float(row.payload["window_seconds"]) for row in measured),
        "down_seconds": sum(float(row.payload.get("down_seconds") or 0.0) for row in measured),
        "outages": dict(sorted(by_kind.items())), "outage_seconds": dict(sorted(seconds_by_kind.items())),
    }
    if in_session is not None:
        in_school = [row for row in measured if in_session(row.measured_at)]
        document["school_hours_window_seconds"] = sum(float(row.payload["window_seconds"])
                                                      for row in in_school)
        document["school_hours_down_seconds"] = sum(float(row.payload.get("down_seconds") or 0.0)
                                                    for row in in_school)
    return document


def users_document(windows: Sequence[Any], in_session: InSession | None) -> dict[str, Any]:
    counted = [row for row in windows
               if row.ok and row.payload and row.payload.get("concurrent_devices") is not None]
    counts = [int(row.payload["concurrent_devices"]) for row in counted]
    document: dict[str, Any] = {
        "windows": len(counted), "peak_concurrent_devices": max(counts) if counts else None,
        "median_concurrent_devices": nearest_rank(counts, 50),
    }
    if in_session is not None:
        in_school = [int(row.payload["concurrent_devices"]) for row in counted
                     if in_session(row.measured_at)]
        document["school_hours_peak_concurrent_devices"] = max(in_school) if in_school else None
    return document


def wifi_document(observations: Sequence[Any]) -> dict[str, Any]:
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


# --- reading a school's days and writing their rows ---------------------------------------


def day_documents(conn: Connection, school_pk: int, days: Sequence[Bounds],
                  in_session: InSession | None) -> list[dict[str, Any]]:
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

        day_results = on(bounds, results)
        school_bandwidth = bandwidth_document(day_results, in_session)
        school_bandwidth["unattributed_tests"] = sum(1 for row in day_results if row.connection is None)
        add("school", "bandwidth", school_bandwidth)
        for connection, rows in _grouped(day_results, "connection"):
            add(f"connection/{connection}", "bandwidth", bandwidth_document(rows, in_session))
        day_raw = on(bounds, raw)
        for agent, rows in _grouped(day_raw, "agent"):
            windows = [row for row in rows if row.kind == "connectivity"]
            outages = [row for row in rows if row.kind == "outage" and row.ok and row.payload]
            if windows or outages:
                add(f"agent/{agent}", "connectivity", connectivity_document(windows, outages, in_session))
            census = [row for row in rows if row.kind == "users"]
            if census:
                add(f"agent/{agent}", "users", users_document(census, in_session))
        add("school", "wifi", wifi_document(on(bounds, observations)))
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
            zone = school_zone(conn, pk, default_timezone)
            in_session = session_checker(conn, pk, default_timezone)
        days = [day_bounds(day, zone) for day in each_day(first_day, last_day)]
        for index in range(0, len(days), DAYS_PER_READ):
            chunk = days[index:index + DAYS_PER_READ]
            with engine.connect() as conn:
                rows = day_documents(conn, pk, chunk, in_session)
            written += replace_days(engine, pk, [bounds.day for bounds in chunk], rows, stamp)
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
