"""Availability per school over a window: the share of the observed time without an outage.

    availability = 1 - |union of the outage intervals, clipped to the window| / observed

The outages of all of a school's agents are merged first: two agents that saw the same
outage count it once, and an outage that only one agent saw still counts. Observed time
runs from the window's start, or from the school's first connectivity window when that is
later, to now: a school that began measuring yesterday is not called available for the
29 days before.

The arithmetic is in pure functions; ``read_school_outages`` is the one query of the
store, over the outage records that ended within the longest window (a partial index of
`records` keeps that cheap) and the first windows kept at ingest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, literal, select

from collector.db.schema import agents, boards, connectivity_first_windows, records, schools
from collector.exposition import stored_number

DAY = 86400.0
WINDOWS = {"1d": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
LONGEST_WINDOW = max(WINDOWS.values())

# `outages` label value -> which outage kinds count; None: every kind.
OUTAGE_SETS: dict[str, frozenset[str] | None] = {"all": None, "isp": frozenset({"isp"})}

SchoolKey = tuple[str, str]  # (board id, school id)


@dataclass(frozen=True)
class Outage:
    kind: str
    start: float
    end: float


@dataclass
class SchoolHistory:
    """What availability needs of one school: when it began observing, and its outages."""

    first_window_at: float | None = None
    outages: list[Outage] = field(default_factory=list)


def union_seconds(intervals: Iterable[tuple[float, float]], start: float, end: float) -> float:
    """Length of the union of ``intervals`` within [start, end]: overlaps count once."""
    total = 0.0
    covered_until = start  # intervals come sorted by start: what lies before this is counted
    for a, b in sorted(intervals):
        a, b = max(a, covered_until), min(b, end)
        if b > a:
            total += b - a
            covered_until = b
    return total


def availability_ratio(outages: Iterable[tuple[float, float]], first_window_at: float, now: float,
                       window_seconds: float) -> float | None:
    """1 - outage time / observed time over the window ending now; None when nothing of
    the window was observed (the first window starts now or later)."""
    start = max(now - window_seconds, first_window_at)
    observed = now - start
    if observed <= 0:
        return None
    return 1.0 - union_seconds(outages, start, now) / observed


def school_availability(history: SchoolHistory, now: float) -> dict[tuple[str, str], float]:
    """Every (window, outages) ratio of one school; empty without connectivity data."""
    if history.first_window_at is None:
        return {}
    ratios: dict[tuple[str, str], float] = {}
    for set_name, kinds in OUTAGE_SETS.items():
        intervals = [(o.start, o.end) for o in history.outages if kinds is None or o.kind in kinds]
        for window_name, seconds in WINDOWS.items():
            ratio = availability_ratio(intervals, history.first_window_at, now, seconds)
            if ratio is not None:
                ratios[(window_name, set_name)] = ratio
    return ratios


def ongoing_outage(payload: Mapping[str, Any], measured_at: float) -> Outage | None:
    """The outage under way at the end of a connectivity window (its record's clock is the
    window's start): from its start to the window's end, as far as it is known."""
    kind = payload.get("outage_kind")
    window = stored_number(payload.get("window_seconds"))
    if not isinstance(kind, str) or window is None:
        return None
    end = measured_at + window
    start = stored_number(payload.get("outage_start_seconds"))
    if start is None:
        # Not said: what this window itself spent down is what is known.
        down = stored_number(payload.get("down_seconds"))
        if down is None:
            return None
        start = end - down
    return Outage(kind, min(start, end), end)


def read_school_outages(conn: Connection, now: float) -> dict[SchoolKey, SchoolHistory]:
    """Per school, from every agent it ever had: its first connectivity window and the
    outages recorded as ended within the longest window. Ongoing outages are not in the
    store as outages yet: the caller adds them from the latest windows."""
    school = (boards.c.slug.label("board"), schools.c.slug.label("school"))
    by_agent = (agents.join(schools, schools.c.id == agents.c.school_id)
                .join(boards, boards.c.id == schools.c.board_id))
    histories: dict[SchoolKey, SchoolHistory] = {}
    firsts = conn.execute(
        select(*school, connectivity_first_windows.c.first_window_at, agents.c.created_at)
        .select_from(connectivity_first_windows.join(
            by_agent, agents.c.id == connectivity_first_windows.c.agent_id))).all()
    for first_row in firsts:
        history = histories.setdefault((first_row.board, first_row.school), SchoolHistory())
        # Not before the agent was enrolled: a window stamped by a clock still at its image's
        # build date would otherwise add months of "available" time nobody observed.
        first = max(first_row.first_window_at, first_row.created_at)
        if history.first_window_at is None or first < history.first_window_at:
            history.first_window_at = first
    # The kind as a literal in the SQL, not a bound parameter: only then may SQLite use
    # the partial index (its WHERE must be implied by the query's at prepare time).
    outage_rows = conn.execute(
        select(*school, records.c.payload)
        .select_from(records.join(by_agent, agents.c.id == records.c.agent_id))
        .where(records.c.kind == literal("outage", literal_execute=True),
               records.c.measured_at >= now - LONGEST_WINDOW, records.c.ok)).all()
    for row in outage_rows:
        outage = recorded_outage(row.payload)
        if outage is not None:
            histories.setdefault((row.board, row.school), SchoolHistory()).outages.append(outage)
    return histories


def recorded_outage(payload: Any) -> Outage | None:
    """An ended outage from its stored payload (validated at ingest; read leniently, as
    the agent sent it)."""
    if not isinstance(payload, Mapping):
        return None
    kind = payload.get("outage_kind")
    start = stored_number(payload.get("start_seconds"))
    end = stored_number(payload.get("end_seconds"))
    if not isinstance(kind, str) or start is None or end is None:
        return None
    return Outage(kind, start, end)

