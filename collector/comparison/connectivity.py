"""Latency and loss of a school's line over a period of local days, in school hours.

The report needs these for every school over up to 400 days, on every page view. The raw
connectivity windows (about one a minute per agent, some 4.6 KB of JSON each) are far too
many to decode each time, so the figures come from the daily aggregates
(collector/aggregates.py, kind "connectivity", one document per agent and local day), and
this module keeps those documents current as it reads them:

- a past day without documents is computed from the raw rows and stored;
- a stored day is computed again when the school's connectivity windows of that day are
  not the ones its documents counted (a window delivered late adds a row: one grouped count
  per school over the records' index, reading no row), or when its documents predate the
  line's quality figures;
- a day retention pruned is final: what is stored is used, and never recomputed;
- today is computed from the raw windows every time and not stored: it is not over.

Only the ``school`` part (school days, within school hours) is read, pooled over the
school's agents. Windows where the agent put the trouble in the school's own network are
left out by the aggregates (``lan_windows``): they say nothing about the provider.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Integer, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from collector.aggregates import (
    aggregate_school_days,
    day_bounds,
    each_day,
    load_aggregates,
    window_figures,
    window_rows,
)
from collector.calendar import SchoolCalendar
from collector.db.schema import agents, daily_aggregates, records
from collector.retention import PRUNED
from collector.verdicts.stats import median

# The fields a connectivity document has had since the line's quality was added to it.
QUALITY_FIELDS = ("lan_windows", "targets_sent", "targets_received", "latency_windows",
                  "latency_p50_seconds")


@dataclass(frozen=True)
class LinkQuality:
    """A school's line over a period, school hours, every agent pooled.

    ``windows``: connectivity windows judged (measured, the school's LAN not at fault);
    ``sent``/``received``: echo probes to the internet targets in them; ``days``: local
    days with at least one judged window; ``latency_seconds``: the nearest-rank median of
    the daily medians (one per agent and day with a round trip), None without one."""

    windows: int
    sent: int
    received: int
    days: int
    latency_seconds: float | None

    @property
    def loss_ratio(self) -> float | None:
        """Pooled: 1 - received / sent; None when nothing was sent."""
        return 1.0 - self.received / self.sent if self.sent > 0 else None


def school_link_quality(engine: Engine, school_pk: int, calendar: SchoolCalendar, first_day: date,
                        last_day: date, now: float) -> LinkQuality:
    """The line's quality over the local days ``first_day`` to ``last_day`` (inclusive) of
    the school whose calendar is ``calendar``; ``now`` decides which day is today (days
    after it have nothing yet)."""
    today = calendar.local_date(now)
    last_past = min(last_day, today - timedelta(days=1))
    documents: list[tuple[str, Mapping[str, Any]]] = []
    if first_day <= last_past:
        refresh_days(engine, school_pk, calendar, first_day, last_past)
        with engine.connect() as conn:
            documents += agent_documents(load_aggregates(conn, school_pk, first_day, last_past,
                                                         "connectivity"))
    if first_day <= today <= last_day:
        with engine.connect() as conn:
            documents += today_documents(conn, school_pk, calendar, today)
    return pooled(documents)


def today_documents(conn: Connection, school_pk: int, calendar: SchoolCalendar,
                    today: date) -> list[tuple[str, Mapping[str, Any]]]:
    """Today's ``school`` parts, per agent, from the raw windows of today's school hours
    alone (the aggregates' own figures, but neither the rest of the day nor other kinds:
    this runs on every view)."""
    session = calendar.session_on(today)
    if session is None:
        return []
    rows = conn.execute(
        select(records.c.agent_id, records.c.measured_at, records.c.ok, records.c.payload)
        .where(records.c.agent_id.in_(select(agents.c.id).where(agents.c.school_id == school_pk)),
               records.c.kind == "connectivity", records.c.measured_at >= session[0],
               records.c.measured_at < session[1])).all()
    by_agent: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_agent[row.agent_id].append(row)
    return [(today.isoformat(), {"school": window_figures(window_rows(windows))})
            for _, windows in sorted(by_agent.items())]


def agent_documents(rows: Iterable[Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(row.day, row.data) for row in rows if row.scope.startswith("agent/")]


def pooled(documents: Iterable[tuple[str, Mapping[str, Any]]]) -> LinkQuality:
    """The ``school`` parts of (day, connectivity document) pairs added up."""
    windows = sent = received = 0
    days: set[str] = set()
    daily_latencies: list[float] = []
    for day, document in documents:
        part = document.get("school")
        # A document from before the quality figures, kept because its day was pruned,
        # has none to give.
        if not isinstance(part, Mapping) or any(name not in part for name in QUALITY_FIELDS):
            continue
        judged = int(part["windows"]) - int(part["lan_windows"])
        windows += judged
        sent += int(part["targets_sent"])
        received += int(part["targets_received"])
        if judged > 0:
            days.add(day)
        if part["latency_p50_seconds"] is not None:
            daily_latencies.append(float(part["latency_p50_seconds"]))
    return LinkQuality(windows=windows, sent=sent, received=received, days=len(days),
                       latency_seconds=median(daily_latencies) if daily_latencies else None)


# --- keeping the stored days current ---------------------------------------------------------


@dataclass(frozen=True)
class StoredDay:
    pruned: bool  # retention deleted its raw rows: final
    current: bool  # its connectivity documents have the quality figures
    windows: int  # connectivity records its documents counted, over every agent


def refresh_days(engine: Engine, school_pk: int, calendar: SchoolCalendar, first_day: date,
                 last_day: date) -> list[date]:
    """Compute and store the days of [first_day, last_day] (all past) that have no
    documents, that predate the quality figures, or that windows arrived for after they
    were written. Returns those days."""
    stamp = time.time()
    with engine.connect() as conn:
        stored = stored_days(conn, school_pk, first_day, last_day)
        late = late_days(conn, school_pk, calendar, stored)
    due = [day for day in each_day(first_day, last_day)
           if day not in stored or (not stored[day].pruned and (not stored[day].current or day in late))]
    for run in consecutive_runs(due):
        aggregate_school_days(engine, school_pk, calendar, run, stamp)
    return due


def stored_days(conn: Connection, school_pk: int, first_day: date, last_day: date) -> dict[date, StoredDay]:
    """The days of the period that were aggregated: every aggregated day has its school-scope
    bandwidth row (written even for an empty day), a pruned day its marker."""
    rows = conn.execute(
        select(daily_aggregates.c.day, daily_aggregates.c.kind, daily_aggregates.c.scope,
               daily_aggregates.c.updated_at, daily_aggregates.c.data)
        .where(daily_aggregates.c.school_id == school_pk,
               daily_aggregates.c.day >= first_day.isoformat(),
               daily_aggregates.c.day <= last_day.isoformat(),
               daily_aggregates.c.kind.in_(("bandwidth", "connectivity", PRUNED)))
        # Of the bandwidth documents only the school scope's, which marks an aggregated day.
        .where((daily_aggregates.c.kind != "bandwidth") | (daily_aggregates.c.scope == "school"))).all()
    written: set[str] = set()
    pruned: set[str] = set()
    outdated: set[str] = set()
    windows: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.kind == PRUNED:
            pruned.add(row.day)
        elif row.kind == "bandwidth":
            written.add(row.day)
        elif not _has_quality(row.data):
            outdated.add(row.day)
        else:
            whole_day = row.data.get("all") or {}
            windows[row.day] += int(whole_day.get("windows", 0)) + int(whole_day.get("failed_windows", 0))
    return {date.fromisoformat(day): StoredDay(day in pruned, day not in outdated, windows[day])
            for day in written}


def _has_quality(document: Any) -> bool:
    part = document.get("school") if isinstance(document, Mapping) else None
    return isinstance(part, Mapping) and all(name in part for name in QUALITY_FIELDS)


# Windows are counted in buckets of this many seconds; every time zone's offset from UTC is a
# multiple of a quarter of an hour, so each bucket lies within one local day.
BUCKET_SECONDS = 900


class whole_part(FunctionElement[int]):
    """The whole part of a non-negative number: FLOOR where every SQLite has no such
    function (it needs the math extension), so CAST there (which truncates: the same for
    x >= 0); PostgreSQL's CAST would round instead."""

    type = Integer()
    inherit_cache = True


@compiles(whole_part)
def _whole_part_default(element: whole_part, compiler: Any, **kw: Any) -> str:
    return f"FLOOR({compiler.process(element.clauses, **kw)})"


@compiles(whole_part, "sqlite")
def _whole_part_sqlite(element: whole_part, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


def late_days(conn: Connection, school_pk: int, calendar: SchoolCalendar,
              stored: Mapping[date, StoredDay]) -> set[date]:
    """The stored, unpruned days whose connectivity windows are not the ones their documents
    counted: a window delivered late (or re-delivered after an outage) adds a row, so the
    day's row count differs from the documents' windows. One grouped count over the index on
    (agent, kind, time): no payload, not even a row, is read."""
    open_days = {day: state for day, state in stored.items() if not state.pruned}
    if not open_days:
        return set()
    start = day_bounds(min(open_days), calendar.zone).start
    end = day_bounds(max(open_days), calendar.zone).end
    bucket = whole_part((records.c.measured_at - start) / BUCKET_SECONDS)
    counts: dict[date, int] = defaultdict(int)
    for index, count in conn.execute(
            select(bucket, func.count())
            .where(records.c.agent_id.in_(select(agents.c.id).where(agents.c.school_id == school_pk)),
                   records.c.kind == "connectivity", records.c.measured_at >= start,
                   records.c.measured_at < end)
            .group_by(bucket)):
        counts[calendar.local_date(start + float(index) * BUCKET_SECONDS)] += int(count)
    return {day for day, state in open_days.items() if counts.get(day, 0) != state.windows}


def consecutive_runs(days: Sequence[date]) -> Iterator[list[date]]:
    """``days`` (in order) as runs of consecutive days."""
    run: list[date] = []
    for day in days:
        if run and day != run[-1] + timedelta(days=1):
            yield run
            run = []
        run.append(day)
    if run:
        yield run
