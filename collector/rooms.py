"""Rooms: created on first use, observed at ingest, graded at scrape and query time.

A room belongs to a school and is created by the first accepted record naming it (a
`wifi` or `wifi_scan` record with `room`, every `survey`). Its display name is the newest
record's `room_name` (or its id until a record names it); a record delivered late with an
older clock renames nothing.

At ingest (``update_rooms``, called from ``collector.ingest.store`` with the records a
batch actually added, so a duplicate never counts twice) every successful `wifi` record
of an agent in a room and every successful `survey` becomes an observation: its time, its
signal (null when not connected) and its source ("agent" or "survey"). Per room and source
the newest observation and a count are kept beside them (`room_latest`), so a scrape reads
one small table.

Grades are never stored: they are computed from the stored signal with the collector's
thresholds whenever a page or the ``rooms`` command asks, so a changed threshold re-grades
the whole history consistently.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Integer, case, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite

from agent.coverage import BROWSING_DBM, GRADE_VALUES, GRADES, VIDEO_DBM, grade
from agent.wire import CoverageGrade, Record, SurveyPayload, WifiPayload, WifiScanPayload
from collector.calendar import SchoolCalendar, load_calendar
from collector.db.schema import boards, room_latest, room_observations, rooms, schools
from collector.exposition import Family
from collector.registry import resolve_school

DAY = 86400.0
DEFAULT_ROOM_EXPIRY = 400 * DAY
# Where a room's observations come from: an agent placed in it, or a person's survey.
SOURCES = ("agent", "survey")
SOURCE_OF_KIND = {"wifi": "agent", "survey": "survey"}
# The kinds whose payload names a room, and their models (to read the stored values typed).
ROOM_PAYLOADS: dict[str, type[BaseModel]] = {
    "wifi": WifiPayload, "wifi_scan": WifiScanPayload, "survey": SurveyPayload}

ROOM_IDENTITY = ("board", "school", "room")
# The hours a period's figures may be restricted to, by the school's calendar.
HOURS = ("all", "school", "outside")
# Observations are counted in groups of (room, signal, this many seconds): a group that no
# school-hours boundary falls into is placed whole, so few rows are read one by one.
BUCKET_SECONDS = 900
ON_REPORT = "updated when an agent reports"


@dataclass(frozen=True)
class Thresholds:
    """The collector's coverage thresholds (settings ``wifi_video_dbm``, ``wifi_browsing_dbm``)."""

    video_dbm: float = VIDEO_DBM
    browsing_dbm: float = BROWSING_DBM

    def grade(self, signal_dbm: float | None) -> CoverageGrade:
        return grade(signal_dbm, self.video_dbm, self.browsing_dbm)


# The guidance's defaults (agent.coverage), for callers without settings (tests, tools).
DEFAULT_THRESHOLDS = Thresholds()


# --- at ingest -------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    slug: str
    source: str
    measured_at: float
    signal_dbm: float | None


@dataclass
class _Naming:
    """What one batch says about one room's name: its newest `room_name` and that record's clock."""

    name: str | None = None
    named_at: float | None = None


def update_rooms(conn: Connection, agent_id: int, school_id: int, accepted: list[Record],
                 now: float) -> None:
    """Create the rooms this batch names, rename them where it names them anew, and add
    its observations with the per-room-and-source newest and counts."""
    namings: dict[str, _Naming] = {}
    observations: list[Observation] = []
    for record in accepted:
        model = ROOM_PAYLOADS.get(record.kind)
        if model is None or not record.payload:
            continue
        # Validated already; parsed again for typed values (the stored payload keeps what
        # the agent sent, and pydantic accepts "-61" for a float).
        payload: Any = model.model_validate(record.payload)
        slug = payload.room
        if not slug:
            continue
        # Nothing was measured after it arrived: an agent clock ahead (a laptop set to 2035)
        # counts as now, or that one record would stay the room's newest for years.
        at = min(record.clock.wall_time_seconds, now)
        naming = namings.setdefault(slug, _Naming())
        name = (payload.room_name or "").strip()
        if name and (naming.named_at is None or at >= naming.named_at):
            naming.name, naming.named_at = name, at
        observation = observation_of(record.kind, record.ok, payload, at)
        if observation is not None:
            observations.append(observation)
    if not namings:
        return
    upsert_rooms, insert_observations, upsert_latest = _statements(conn.dialect.name)
    found = conn.execute(upsert_rooms, [
        {"school_id": school_id, "slug": slug, "name": naming.name or slug,
         "named_at": naming.named_at, "created_at": now}
        for slug, naming in sorted(namings.items())]).all()
    room_ids = {row.slug: row.id for row in found}
    if not observations:
        return
    conn.execute(insert_observations, [
        {"room_id": room_ids[o.slug], "agent_id": agent_id, "measured_at": o.measured_at,
         "source": o.source, "signal_dbm": o.signal_dbm} for o in observations])
    newest: dict[tuple[str, str], Observation] = {}
    counts: dict[tuple[str, str], int] = {}
    for o in observations:
        key = (o.slug, o.source)
        counts[key] = counts.get(key, 0) + 1
        if key not in newest or o.measured_at >= newest[key].measured_at:
            newest[key] = o
    conn.execute(upsert_latest, [
        {"room_id": room_ids[slug], "source": source, "measured_at": o.measured_at,
         "signal_dbm": o.signal_dbm, "agent_id": agent_id,
         "observations_total": counts[(slug, source)]}
        for (slug, source), o in sorted(newest.items())])


def observation_of(kind: str, ok: bool, payload: Any, measured_at: float) -> Observation | None:
    """The observation a record makes of its room, if any: a successful `wifi` or `survey`
    record with a room.

    - A signal is observed as it is, connected or not (a survey made from a bare scan has
      the strongest school access point's signal and no connection).
    - A survey with no connection and no signal is an observation without a signal (grade
      "none"): a person stood in the room and found no Wi-Fi.
    - An agent whose Wi-Fi is not connected observes nothing: a wired Pi's idle radio is
      not missing coverage (its `schoolnet_wifi_connected` 0 says what it is).
    - Connected without a signal (the tool did not say) is no observation: a grade made up
      for it would be a guess. Nor is an agent connected to a network not the school's
      (`own_network` false): it says nothing about the school's coverage.
    """
    source = SOURCE_OF_KIND.get(kind)
    if source is None or not ok or not payload.room:
        return None
    if getattr(payload, "own_network", None) is False:
        return None
    if payload.signal_dbm is not None:
        return Observation(payload.room, source, measured_at, float(payload.signal_dbm))
    if not payload.connected and source == "survey":
        return Observation(payload.room, source, measured_at, None)
    return None


@functools.cache
def _statements(dialect_name: str) -> tuple[Any, Any, Any]:
    """Built once per dialect, like ingest's: building them per batch cost more than running them."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    new_room = dialect.insert(rooms)
    new = new_room.excluded
    # A name from a record at least as new as the one the room bears; a room named only by
    # its id takes any name.
    renames = new.named_at.is_not(None) & (rooms.c.named_at.is_(None) | (new.named_at >= rooms.c.named_at))
    # Always an update (never DO NOTHING): only then does RETURNING give the id of a room
    # that exists already, on SQLite and PostgreSQL alike.
    upsert_rooms = new_room.on_conflict_do_update(
        index_elements=["school_id", "slug"],
        set_={"name": case((renames, new.name), else_=rooms.c.name),
              "named_at": case((renames, new.named_at), else_=rooms.c.named_at)},
    ).returning(rooms.c.id, rooms.c.slug)
    insert_observations = room_observations.insert()
    new_latest = dialect.insert(room_latest)
    latest_new = new_latest.excluded
    newer = latest_new.measured_at >= room_latest.c.measured_at
    upsert_latest = new_latest.on_conflict_do_update(
        index_elements=["room_id", "source"],
        set_={"measured_at": case((newer, latest_new.measured_at), else_=room_latest.c.measured_at),
              "signal_dbm": case((newer, latest_new.signal_dbm), else_=room_latest.c.signal_dbm),
              "agent_id": case((newer, latest_new.agent_id), else_=room_latest.c.agent_id),
              "observations_total": room_latest.c.observations_total
              + latest_new.observations_total},
    )
    return upsert_rooms, insert_observations, upsert_latest


# --- at scrape time --------------------------------------------------------------------


def read_rooms(conn: Connection, since: float) -> Sequence[Any]:
    """Per room and source, the newest observation and count, of every room whose newest
    observation (of any source) is at ``since`` or later: one query of `room_latest`."""
    live = select(room_latest.c.room_id).where(room_latest.c.measured_at >= since)
    return conn.execute(
        select(boards.c.slug.label("board"), schools.c.slug.label("school"),
               rooms.c.slug.label("room"), room_latest.c.source, room_latest.c.measured_at,
               room_latest.c.signal_dbm, room_latest.c.observations_total)
        .select_from(room_latest.join(rooms, rooms.c.id == room_latest.c.room_id)
                     .join(schools, schools.c.id == rooms.c.school_id)
                     .join(boards, boards.c.id == schools.c.board_id))
        .where(room_latest.c.room_id.in_(live))
        .order_by(boards.c.slug, schools.c.slug, rooms.c.slug, room_latest.c.source)).all()


def room_families(room_rows: Sequence[Any], thresholds: Thresholds) -> list[Family]:
    """Per room its grade now (from its newest observation of any source) and per source
    the newest signal, its time and the count; and the thresholds the grades come from."""
    per_source = (*ROOM_IDENTITY, "source")
    fresh = ("graded at each scrape with the collector's current thresholds from the newest "
             "stored observation, " + ON_REPORT)
    grade_now = Family(
        "schoolnet_wifi_room_coverage_grade",
        "Wi-Fi coverage grade of the room from its newest observation of any source: 3 video, "
        "2 browsing, 1 poor, 0 none (no connection, no signal), a grade value; " + fresh,
        "gauge", ROOM_IDENTITY)
    info = Family(
        "schoolnet_wifi_room_coverage_info",
        "The room's coverage grade (video, browsing, poor, none) and the source of the "
        "observation it comes from (agent, survey), value 1; " + fresh,
        "gauge", (*ROOM_IDENTITY, "grade", "source"))
    signal = Family(
        "schoolnet_wifi_room_signal_dbm",
        "Signal of the room's newest observation from the source, dBm; absent when that "
        "observation had no signal (grade none); " + ON_REPORT, "gauge", per_source)
    when = Family(
        "schoolnet_wifi_room_observation_timestamp_seconds",
        "When the room's newest observation from the source was measured, Unix seconds "
        "(agent clock); " + ON_REPORT, "gauge", per_source)
    count = Family(
        "schoolnet_wifi_room_observations",
        "Observations of the room from the source, a count since the room was created; "
        + ON_REPORT, "counter", per_source)
    by_room: dict[tuple[str, str, str], list[Any]] = {}
    for row in room_rows:
        by_room.setdefault((row.board, row.school, row.room), []).append(row)
    for identity, rows in by_room.items():
        newest = max(rows, key=lambda row: (row.measured_at, row.source))
        room_grade = thresholds.grade(newest.signal_dbm)
        grade_now.add(identity, GRADE_VALUES[room_grade])
        info.add((*identity, room_grade, newest.source), 1)
        for row in rows:
            labels = (*identity, row.source)
            if row.signal_dbm is not None:
                signal.add(labels, row.signal_dbm)
            when.add(labels, row.measured_at)
            count.add(labels, row.observations_total)
    return [grade_now, info, signal, when, count, threshold_family(thresholds)]


def threshold_family(thresholds: Thresholds) -> Family:
    family = Family(
        "schoolnet_wifi_coverage_threshold_dbm",
        "The weakest signal that still earns the grade (video, browsing), dBm: the collector's "
        "setting, the same for every room; as configured at the collector's start",
        "gauge", ("grade",))
    family.add(("video",), thresholds.video_dbm)
    family.add(("browsing",), thresholds.browsing_dbm)
    return family


# --- the history: the `rooms` command --------------------------------------------------


@dataclass
class RoomHistory:
    """One room: its grade now and what its observations over the period say."""

    id: str
    name: str
    grade: CoverageGrade | None = None  # None: never observed
    signal_dbm: float | None = None
    source: str | None = None
    measured_at: float | None = None
    observations: int = 0
    signal_median_dbm: float | None = None
    # Share of the period's observations per grade, best first; None without one (a share
    # of nothing is no 0 %).
    grade_shares: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "grade": self.grade,
                "signal_dbm": self.signal_dbm, "source": self.source,
                "measured_at_seconds": self.measured_at, "observations": self.observations,
                "signal_median_dbm": self.signal_median_dbm, "grade_shares": self.grade_shares}


@dataclass
class SchoolRooms:
    board: str
    school: str
    since: float
    until: float
    thresholds: Thresholds
    rooms: list[RoomHistory]
    hours: str = "all"

    def as_dict(self) -> dict[str, Any]:
        return {"board": self.board, "school": self.school, "since_seconds": self.since,
                "until_seconds": self.until, "hours": self.hours,
                "thresholds_dbm": {"video": self.thresholds.video_dbm,
                                   "browsing": self.thresholds.browsing_dbm},
                "rooms": [room.as_dict() for room in self.rooms]}


def school_rooms(engine: Engine, school_ref: str, since: float, until: float,
                 thresholds: Thresholds, hours: str = "all",
                 default_timezone: str = "Europe/Amsterdam") -> SchoolRooms:
    """Every room of the school (SCHOOL or BOARD/SCHOOL) with its grade now (from its newest
    observation, of any hour) and the period's observations from ``since`` on, of the
    ``hours`` (school, outside, all) by the school's calendar. Raises ``RegistryError`` for
    an unknown school."""
    if hours not in HOURS:
        raise ValueError(f"hours {hours!r} is not one of {', '.join(HOURS)}")
    with engine.connect() as conn:
        school_pk, board, school = resolve_school(conn, school_ref)
        room_rows = conn.execute(select(rooms.c.id, rooms.c.slug, rooms.c.name)
                                 .where(rooms.c.school_id == school_pk)
                                 .order_by(rooms.c.slug)).all()
        newest_rows = conn.execute(
            select(room_latest.c.room_id, room_latest.c.source, room_latest.c.measured_at,
                   room_latest.c.signal_dbm)
            .join(rooms, rooms.c.id == room_latest.c.room_id)
            .where(rooms.c.school_id == school_pk)).all()
        if hours == "all":
            histograms = _histograms(conn, school_pk, since)
        else:
            histograms = _histograms_in_hours(conn, school_pk, since,
                                              load_calendar(conn, school_pk, default_timezone),
                                              hours == "school")
    newest: dict[int, Any] = {}
    for row in newest_rows:
        if row.room_id not in newest or (row.measured_at, row.source) > (
                newest[row.room_id].measured_at, newest[row.room_id].source):
            newest[row.room_id] = row
    result = []
    for room in room_rows:
        history = RoomHistory(room.slug, room.name)
        latest_row = newest.get(room.id)
        if latest_row is not None:
            history.grade = thresholds.grade(latest_row.signal_dbm)
            history.signal_dbm = latest_row.signal_dbm
            history.source = latest_row.source
            history.measured_at = latest_row.measured_at
        summarise(history, histograms.get(room.id, []), thresholds)
        result.append(history)
    return SchoolRooms(board, school, since, until, thresholds, result, hours)


Histograms = dict[int, list[tuple[float | None, int]]]  # room pk -> (signal, how often)


def _period(school_pk: int, since: float) -> tuple[Any, ...]:
    # No upper bound: an agent clock a little ahead must not hide the newest readings.
    return (rooms.c.school_id == school_pk, room_observations.c.measured_at >= since)


def _histograms(conn: Connection, school_pk: int, since: float) -> Histograms:
    """A histogram per room, not every row: signals repeat (most tools print whole dBm),
    so a month of an agent's readings each minute comes back as a few dozen rows."""
    found: Histograms = {}
    for row in conn.execute(
            select(room_observations.c.room_id, room_observations.c.signal_dbm, func.count().label("n"))
            .join(rooms, rooms.c.id == room_observations.c.room_id)
            .where(*_period(school_pk, since))
            .group_by(room_observations.c.room_id, room_observations.c.signal_dbm)):
        found.setdefault(row.room_id, []).append((row.signal_dbm, row.n))
    return found


class _Sessions:
    """Which side of school hours a time is on, one school date's session looked up once."""

    def __init__(self, calendar: SchoolCalendar) -> None:
        self.calendar = calendar
        self._by_date: dict[date, tuple[float, float] | None] = {}

    def session_of(self, t: float) -> tuple[float, float] | None:
        day = self.calendar.local_date(t)
        if day not in self._by_date:
            self._by_date[day] = self.calendar.session_on(day)
        return self._by_date[day]

    def in_session(self, t: float) -> bool:
        session = self.session_of(t)
        return session is not None and session[0] <= t < session[1]

    def side(self, first: float, last: float) -> bool | None:
        """In session (True) or not (False) all through [first, last]; None when a start or
        end of school hours lies inside. A session lies within its own local date, so only
        those of ``first``'s and ``last``'s dates can (the span is shorter than a day)."""
        side = self.in_session(first)
        if self.in_session(last) != side:
            return None
        for session in (self.session_of(first), self.session_of(last)):
            if session is not None and any(first < edge <= last for edge in session):
                return None
        return side


def _histograms_in_hours(conn: Connection, school_pk: int, since: float, calendar: SchoolCalendar,
                         in_school: bool) -> Histograms:
    """The histograms of the observations in school hours (``in_school``) or outside them.

    Counted per (room, signal, bucket of BUCKET_SECONDS) with the bucket's first and last
    time: a group wholly on one side is placed by those; the buckets that a start or end of
    school hours falls into (usually two a school day, or none when school hours begin on a
    quarter hour) are read row by row."""
    bucket = cast(room_observations.c.measured_at / BUCKET_SECONDS, Integer)
    sessions = _Sessions(calendar)
    counts: dict[int, dict[float | None, int]] = defaultdict(lambda: defaultdict(int))
    placed: list[tuple[int, int, float | None, int]] = []  # (bucket, room, signal, n)
    split: set[int] = set()
    groups = conn.execute(
        select(room_observations.c.room_id, room_observations.c.signal_dbm, bucket.label("bucket"),
               func.count().label("n"), func.min(room_observations.c.measured_at).label("first"),
               func.max(room_observations.c.measured_at).label("last"))
        .join(rooms, rooms.c.id == room_observations.c.room_id)
        .where(*_period(school_pk, since))
        .group_by(room_observations.c.room_id, room_observations.c.signal_dbm, bucket)).all()
    for group in groups:
        side = sessions.side(group.first, group.last)
        if side is None:
            split.add(group.bucket)
        elif side == in_school:
            placed.append((group.bucket, group.room_id, group.signal_dbm, group.n))
    for bucket_value, room_id, signal, n in placed:
        # A split bucket is read whole below, every room and signal of it.
        if bucket_value not in split:
            counts[room_id][signal] += n
    ordered = sorted(split)
    for index in range(0, len(ordered), 500):
        for row in conn.execute(
                select(room_observations.c.room_id, room_observations.c.signal_dbm,
                       room_observations.c.measured_at)
                .join(rooms, rooms.c.id == room_observations.c.room_id)
                .where(*_period(school_pk, since), bucket.in_(ordered[index:index + 500]))):
            if sessions.in_session(row.measured_at) == in_school:
                counts[row.room_id][row.signal_dbm] += 1
    return {room_id: list(by_signal.items()) for room_id, by_signal in counts.items()}


def summarise(history: RoomHistory, histogram: Iterable[tuple[float | None, int]],
              thresholds: Thresholds) -> None:
    """The period's count, median signal and share per grade from (signal, count) pairs."""
    counts = dict.fromkeys(GRADES, 0)
    signals: list[tuple[float, int]] = []
    for signal, n in histogram:
        counts[thresholds.grade(signal)] += n
        if signal is not None:
            signals.append((signal, n))
    history.observations = sum(counts.values())
    if history.observations:
        history.grade_shares = {name: n / history.observations for name, n in counts.items()}
    history.signal_median_dbm = median_nearest_rank(signals)


def median_nearest_rank(weighted: list[tuple[float, int]]) -> float | None:
    """The median by nearest rank (the value at rank ceil(n / 2) in ascending order: always
    a reading that was made, never an average of two) of (value, how often) pairs."""
    total = sum(n for _, n in weighted)
    if not total:
        return None
    rank = math.ceil(total / 2)
    seen = 0
    ordered = sorted(weighted)
    for value, n in ordered:
        seen += n
        if seen >= rank:
            return value
    return ordered[-1][0]  # not reached: the counts add up to the total


def rooms_table(report: SchoolRooms) -> str:
    """The text of the ``rooms`` command: a line about the period, then a table of rooms."""
    days = (report.until - report.since) / DAY
    hours = {"all": "", "school": " in school hours", "outside": " outside school hours"}[report.hours]
    lines = [f"{report.board}/{report.school}: {len(report.rooms)} room(s); grade now from the newest "
             f"observation, the rest over the last {days:g} days (since {_utc(report.since)}){hours}; "
             f"video >= {report.thresholds.video_dbm:g} dBm, browsing >= "
             f"{report.thresholds.browsing_dbm:g} dBm"]
    if not report.rooms:
        return "\n".join([*lines, "no rooms yet: an agent with a room, or a survey, creates one"])
    header = ("ROOM", "NAME", "GRADE", "SIGNAL", "SOURCE", "NEWEST", "OBSERVATIONS", "MEDIAN",
              *(name.upper() for name in GRADES))
    rows = [header]
    for room in report.rooms:
        grade_shares = room.grade_shares
        shares = [f"{round(100 * grade_shares[name])}%" if grade_shares else "-" for name in GRADES]
        rows.append((room.id, _printable(room.name), room.grade or "-", _dbm(room.signal_dbm),
                     room.source or "-", _utc(room.measured_at), str(room.observations),
                     _dbm(room.signal_median_dbm), *shares))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    return "\n".join(lines)


def _dbm(value: float | None) -> str:
    return "-" if value is None else f"{value:g} dBm"


def _utc(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        # An agent clock outside the calendar (years 1 to 9999) was accepted as a number:
        # shown as one, since the command must not fail for what the store holds.
        return f"{seconds:.0f} s"


def _printable(text: str) -> str:
    """A name as a terminal may show it: a control or format character (an escape
    sequence, a line break, a bidirectional override) that an agent or a person typed
    becomes "?", so it neither drives the admin's terminal nor breaks the table."""
    return "".join("?" if unicodedata.category(char).startswith("C") else char for char in text)
