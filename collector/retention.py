"""Retention: raw records are kept ``settings.retention`` (13 months), daily aggregates for good.

Privacy by construction (DESIGN.md): raw history has an end. Before a school's raw rows
go, every day they belong to is aggregated (collector/aggregates.py) and marked
``pruned``: from then on the day's aggregates are final. Only whole local days are
pruned (the cut-off moves back to the local midnight that starts the day holding
``now - retention``): a day half pruned could never be aggregated right again.

What goes: ``records`` (every kind), ``room_observations``, ``bandwidth_results`` of
source "agent", ``rejected_records`` and ``given_up_ranges``. What stays: results
imported from a board's archive (``source`` "import": the board's own data, which it can
import again anyway) and the state tables (``latest``, the totals, ``rooms``,
``room_latest``, ``connectivity_first_windows``, ``streams``), which are not history.

Re-delivery: ingest tells a duplicate only by the unique (agent, stream, seq) of
``records``; a pruned record sent again would be stored again as new. So no row that the
stream's watermark (``streams.accounted_through``) has not passed is deleted (it may be
what lets the watermark advance over a gap), and the report counts what is kept for that.

Deletion runs in chunks of ``CHUNK`` rows, one short transaction each, so ingest waits
for SQLite's write lock for a moment at most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, delete, func, or_, select

from agent.wire import PAYLOADS
from collector.aggregates import (
    aggregate_days,
    day_bounds,
    each_day,
    local_day,
    school_ids,
    school_zone,
)
from collector.db.engine import writer
from collector.db.schema import (
    agents,
    bandwidth_results,
    boards,
    daily_aggregates,
    given_up_ranges,
    records,
    rejected_records,
    room_observations,
    rooms,
    schools,
    streams,
)
from collector.settings import CollectorSettings

log = logging.getLogger("schoolnet.collector.retention")

CHUNK = 5000
# Recent days are (re)aggregated at every run too, so reports over recent weeks find
# aggregates before the raw rows go; today's row is partial until it is recomputed.
RECENT_DAYS = 7
# The marker row (scope "school") of a day whose raw rows have been deleted.
PRUNED = "pruned"
TABLES = ("records", "room_observations", "bandwidth_results", "rejected_records", "given_up_ranges")


@dataclass
class SchoolRetention:
    school: str  # BOARD/SCHOOL
    cutoff: float  # raw rows measured before this instant go (a local midnight)
    cutoff_day: str  # the first local day kept whole
    aggregated_days: int = 0
    first_aggregated: str | None = None
    last_aggregated: str | None = None
    aggregate_rows: int = 0
    pruned_days: int = 0
    # Days pruned before that had raw rows again (delivered late, or a pruned record
    # re-delivered): not re-aggregated, their final aggregates stay; the rows go.
    late_rows_days: int = 0
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    # Rows older than the cut-off kept because the stream's watermark has not passed them.
    kept_above_watermark: int = 0


@dataclass
class RetentionReport:
    now: float
    retention_seconds: float
    dry_run: bool
    schools: list[SchoolRetention] = field(default_factory=list)

    @property
    def deleted(self) -> dict[str, int]:
        return {table: sum(school.deleted[table] for school in self.schools) for table in TABLES}

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now, "retention_seconds": self.retention_seconds, "dry_run": self.dry_run,
                "deleted": self.deleted, "schools": [asdict(school) for school in self.schools]}

    def lines(self) -> Iterator[str]:
        verb = "would delete" if self.dry_run else "deleted"
        for school in self.schools:
            span = (f"{school.aggregated_days} days {school.first_aggregated}..{school.last_aggregated}"
                    if school.aggregated_days else "no days")
            deleted = ", ".join(f"{table}={count}" for table, count in school.deleted.items() if count)
            yield (f"{school.school}: raw rows before {school.cutoff_day} go; aggregated {span} "
                   f"({school.aggregate_rows} rows); {verb} {deleted or 'nothing'}"
                   + (f"; kept {school.kept_above_watermark} above the watermark"
                      if school.kept_above_watermark else "")
                   + (f"; {school.late_rows_days} pruned days had late rows" if school.late_rows_days
                      else ""))
        total = ", ".join(f"{table}={count}" for table, count in self.deleted.items())
        yield f"total: {verb} {total}"


def apply_retention(engine: Engine, settings: CollectorSettings, now: float, dry_run: bool = False,
                    chunk: int = CHUNK) -> RetentionReport:
    """Aggregate what is about to go (and the recent days), then delete raw rows from
    before each school's cut-off. ``dry_run``: report what would happen, change nothing."""
    report = RetentionReport(now, settings.retention, dry_run)
    with engine.connect() as conn:
        pks = school_ids(conn, None)
    for pk in pks:
        report.schools.append(_school_retention(engine, settings, pk, now, dry_run, chunk))
    return report


def _school_retention(engine: Engine, settings: CollectorSettings, pk: int, now: float,
                      dry_run: bool, chunk: int) -> SchoolRetention:
    with engine.connect() as conn:
        zone = school_zone(conn, pk, settings.timezone)
        cutoff_day = local_day(now - settings.retention, zone)
        cutoff = day_bounds(cutoff_day, zone).start
        result = SchoolRetention(_school_ref(conn, pk), cutoff, cutoff_day.isoformat())
        targets = _Targets(conn, pk, cutoff)
        oldest = targets.oldest(conn)
        old_days = list(each_day(local_day(oldest, zone), cutoff_day - timedelta(days=1))) if oldest else []
        closed = _pruned_days(conn, pk, old_days)
        result.kept_above_watermark = targets.count_kept(conn)
        if dry_run:
            result.deleted = targets.count(conn)
    today = local_day(now, zone)
    to_close = [day for day in old_days if day not in closed]
    if closed:
        with engine.connect() as conn:
            result.late_rows_days = sum(1 for day in sorted(closed)
                                        if targets.any_between(conn, *_span(day_bounds(day, zone))))
    recent = list(each_day(max(today - timedelta(days=RECENT_DAYS), cutoff_day), today))
    days = sorted(set(to_close) | set(recent))
    if days:
        result.aggregated_days, result.first_aggregated, result.last_aggregated = (
            len(days), days[0].isoformat(), days[-1].isoformat())
    result.pruned_days = len(to_close)
    if dry_run:
        return result
    for first, last in _runs(days):
        result.aggregate_rows += aggregate_days(engine, pk, first, last, settings.timezone, now)
    # Marked before anything is deleted: should deletion stop half-way, the next run
    # deletes the rest without re-aggregating those days from what is left.
    _mark_pruned(engine, pk, to_close, cutoff, now)
    result.deleted = targets.delete(engine, chunk)
    return result


class _Targets:
    """The raw rows of one school older than its cut-off, as delete conditions per table
    (split per agent, kind and room so that each is a range scan of an index)."""

    def __init__(self, conn: Connection, school_pk: int, cutoff: float) -> None:
        self.agent_ids = list(conn.scalars(select(agents.c.id).where(agents.c.school_id == school_pk)))
        self.room_ids = list(conn.scalars(select(rooms.c.id).where(rooms.c.school_id == school_pk)))
        self.school_pk, self.cutoff = school_pk, cutoff

    def conditions(self) -> Iterator[tuple[str, Any, ColumnElement[bool]]]:
        """(table name, table, condition) for every part of what goes."""
        cut = self.cutoff
        for agent_id in self.agent_ids:
            for kind in sorted(PAYLOADS):
                yield "records", records, (
                    (records.c.agent_id == agent_id) & (records.c.kind == kind)
                    & (records.c.measured_at < cut) & (records.c.seq <= _watermark(records)))
        for room_id in self.room_ids:
            yield "room_observations", room_observations, (
                (room_observations.c.room_id == room_id) & (room_observations.c.measured_at < cut))
        yield "bandwidth_results", bandwidth_results, (
            (bandwidth_results.c.school_id == self.school_pk) & (bandwidth_results.c.source == "agent")
            & (bandwidth_results.c.measured_at < cut))
        if self.agent_ids:
            yield "rejected_records", rejected_records, (
                rejected_records.c.agent_id.in_(self.agent_ids) & (rejected_records.c.received_at < cut)
                & or_(rejected_records.c.seq.is_(None), rejected_records.c.stream_id.is_(None),
                      rejected_records.c.seq <= _watermark(rejected_records)))
            yield "given_up_ranges", given_up_ranges, (
                given_up_ranges.c.agent_id.in_(self.agent_ids) & (given_up_ranges.c.reported_at < cut)
                & (given_up_ranges.c.last_seq <= _watermark(given_up_ranges)))

    def oldest(self, conn: Connection) -> float | None:
        """The earliest measurement time among the rows that are to be aggregated."""
        cut = self.cutoff
        candidates = []
        if self.agent_ids:
            candidates.append(conn.scalar(select(func.min(records.c.measured_at)).where(
                records.c.agent_id.in_(self.agent_ids), records.c.measured_at < cut)))
        if self.room_ids:
            candidates.append(conn.scalar(select(func.min(room_observations.c.measured_at)).where(
                room_observations.c.room_id.in_(self.room_ids), room_observations.c.measured_at < cut)))
        candidates.append(conn.scalar(select(func.min(bandwidth_results.c.measured_at)).where(
            bandwidth_results.c.school_id == self.school_pk, bandwidth_results.c.source == "agent",
            bandwidth_results.c.measured_at < cut)))
        found = [value for value in candidates if value is not None]
        return min(found) if found else None

    def any_between(self, conn: Connection, start: float, end: float) -> bool:
        """Whether raw rows measured in [start, end) are there."""
        queries = [select(bandwidth_results.c.id).where(
            bandwidth_results.c.school_id == self.school_pk, bandwidth_results.c.source == "agent",
            bandwidth_results.c.measured_at >= start, bandwidth_results.c.measured_at < end)]
        if self.agent_ids:
            queries.append(select(records.c.id).where(
                records.c.agent_id.in_(self.agent_ids), records.c.measured_at >= start,
                records.c.measured_at < end))
        if self.room_ids:
            queries.append(select(room_observations.c.id).where(
                room_observations.c.room_id.in_(self.room_ids), room_observations.c.measured_at >= start,
                room_observations.c.measured_at < end))
        return any(conn.execute(query.limit(1)).first() is not None for query in queries)

    def count(self, conn: Connection) -> dict[str, int]:
        counts = dict.fromkeys(TABLES, 0)
        for name, table, condition in self.conditions():
            counts[name] += conn.scalar(select(func.count()).select_from(table).where(condition)) or 0
        return counts

    def count_kept(self, conn: Connection) -> int:
        if not self.agent_ids:
            return 0
        watermark = _watermark(records)
        return conn.scalar(select(func.count()).select_from(records).where(
            records.c.agent_id.in_(self.agent_ids), records.c.measured_at < self.cutoff,
            or_(watermark.is_(None), records.c.seq > watermark))) or 0

    def delete(self, engine: Engine, chunk: int) -> dict[str, int]:
        deleted = dict.fromkeys(TABLES, 0)
        for name, table, condition in self.conditions():
            deleted[name] += _delete_in_chunks(engine, table, condition, chunk)
        return deleted


def _watermark(table: Any) -> Any:
    """The stream's accounted_through, for the row of ``table`` being looked at."""
    return (select(streams.c.accounted_through)
            .where(streams.c.agent_id == table.c.agent_id, streams.c.stream_id == table.c.stream_id)
            .scalar_subquery())


def _delete_in_chunks(engine: Engine, table: Any, condition: ColumnElement[bool], chunk: int) -> int:
    total = 0
    while True:
        with writer(engine) as conn, conn.begin():
            ids = select(table.c.id).where(condition).limit(chunk).scalar_subquery()
            count = conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount
        total += count
        if count < chunk:
            return total


def _pruned_days(conn: Connection, school_pk: int, days: list[date]) -> set[date]:
    if not days:
        return set()
    found = conn.scalars(select(daily_aggregates.c.day).where(
        daily_aggregates.c.school_id == school_pk, daily_aggregates.c.kind == PRUNED,
        daily_aggregates.c.day >= days[0].isoformat(), daily_aggregates.c.day <= days[-1].isoformat()))
    return {date.fromisoformat(day) for day in found}


def _mark_pruned(engine: Engine, school_pk: int, days: list[date], cutoff: float, now: float) -> None:
    if not days:
        return
    with writer(engine) as conn, conn.begin():
        conn.execute(daily_aggregates.insert(), [
            {"school_id": school_pk, "scope": "school", "day": day.isoformat(), "kind": PRUNED,
             "data": {"raw_deleted_at": now, "cutoff": cutoff}, "updated_at": now} for day in days])


def _span(bounds: Any) -> tuple[float, float]:
    return bounds.start, bounds.end


def _runs(days: list[date]) -> Iterator[tuple[date, date]]:
    """Consecutive days as (first, last) runs."""
    if not days:
        return
    first = previous = days[0]
    for day in days[1:]:
        if day != previous + timedelta(days=1):
            yield first, previous
            first = day
        previous = day
    yield first, previous


def _school_ref(conn: Connection, school_pk: int) -> str:
    row = conn.execute(select(boards.c.slug, schools.c.slug.label("school"))
                       .join(boards, boards.c.id == schools.c.board_id)
                       .where(schools.c.id == school_pk)).one()
    return f"{row.slug}/{row.school}"


async def retention_loop(engine: Engine, settings: CollectorSettings, interval: float = 86400.0,
                         first_delay: float = 300.0) -> None:
    """Apply retention once a day while the collector serves (cancel the task to stop).

    The first run waits ``first_delay`` so a restart does not add its work to start-up.
    The work runs in a thread: it reads and deletes in short transactions, and the event
    loop keeps answering in the meantime. A failed run is logged and tried next time.
    """
    await asyncio.sleep(first_delay)
    while True:
        try:
            report = await asyncio.to_thread(apply_retention, engine, settings, time.time())
            for line in report.lines():
                log.info("retention: %s", line)
        except Exception:
            log.exception("retention run failed; trying again in %.0f s", interval)
        await asyncio.sleep(interval)
