"""A school's calendar: its school day (hours, weekdays, time zone) and its holidays.

A school is in session on a school day (one of its weekdays, not a holiday) from its
local start time up to (not including) its local end time. Everything is computed in the
school's own time zone, date by date, so a school day stays 08:30-15:30 on the clock on
the days the clocks change (it is then still 7 hours long: the change is at night).

Holidays are stored per calendar (``holidays.calendar``): "all", "board:<pk>",
"region:<region, lowercased>" or "school:<pk>"; a school has the holidays of all four
that name it. Dates are local ISO dates, both ends inclusive.

Each stored range has a kind (``holidays.kind``, DAY_KINDS):
- "holiday": a day without school (a school holiday, a study day);
- "public": a public holiday: also a day without school, and a day on which a provider's
  business-hours SLA clock stands still (collector/incidents/sla.py);
- "exams": an exam period: school as usual, but an outage then is urgent
  (collector/incidents/impact.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, select

from collector.db.schema import holidays as holidays_table
from collector.db.schema import schools
from collector.exposition import Family

Holiday = tuple[date, date, str]  # first day, last day (inclusive), name

DayKind = Literal["holiday", "public", "exams"]
DAY_KINDS: tuple[DayKind, ...] = get_args(DayKind)
DEFAULT_KIND: DayKind = "holiday"

DEFAULT_START = time(8, 30)
DEFAULT_END = time(15, 30)
DEFAULT_WEEKDAYS = frozenset({1, 2, 3, 4, 5})  # ISO: 1 = Monday .. 7 = Sunday

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class CalendarError(ValueError):
    """A school day or calendar key that cannot be read; the message is one line."""


@dataclass(frozen=True)
class SchoolDay:
    start: time
    end: time
    weekdays: frozenset[int]

    def __post_init__(self) -> None:
        if not self.start < self.end:
            # A school day that crosses midnight would belong to two dates; none does.
            raise CalendarError(f"school hours {self.start:%H:%M}-{self.end:%H:%M}: the end "
                                "must be later than the start")
        if not self.weekdays or not self.weekdays <= frozenset(range(1, 8)):
            raise CalendarError("school days are ISO weekday numbers 1 (Monday) to 7 (Sunday)")


DEFAULT_DAY = SchoolDay(DEFAULT_START, DEFAULT_END, DEFAULT_WEEKDAYS)


def parse_clock(text: str, what: str = "time") -> time:
    """ "HH:MM" (24-hour) -> time; CalendarError naming ``what`` otherwise."""
    match = _CLOCK.match(text.strip())
    if not match:
        raise CalendarError(f"{what} {text!r} is not a time of day as HH:MM (like 08:30)")
    return time(int(match.group(1)), int(match.group(2)))


def parse_weekdays(text: str) -> frozenset[int]:
    """ "1,2,3,4,5" -> ISO weekday numbers; CalendarError otherwise."""
    try:
        days = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        days = frozenset()
    if not days or not days <= frozenset(range(1, 8)):
        raise CalendarError(f"school days {text!r} are not ISO weekday numbers like 1,2,3,4,5 "
                            "(1 = Monday, 7 = Sunday)")
    return days


def parse_school_day(hours_start: str | None, hours_end: str | None,
                     school_days: str | None) -> SchoolDay:
    """A school's row values (null = the default) -> SchoolDay."""
    start = parse_clock(hours_start, "start") if hours_start else DEFAULT_START
    end = parse_clock(hours_end, "end") if hours_end else DEFAULT_END
    weekdays = parse_weekdays(school_days) if school_days else DEFAULT_WEEKDAYS
    return SchoolDay(start, end, weekdays)


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"{name!r} is not a time zone name (like Europe/Amsterdam)") from None


def check_day_kind(text: str) -> DayKind:
    """ "holiday", "public" or "exams" (any case) -> the kind; CalendarError otherwise."""
    kind = text.strip().lower()
    for known in DAY_KINDS:
        if kind == known:
            return known
    raise CalendarError(f"kind {text!r} is not one of {', '.join(DAY_KINDS)}")


class SchoolCalendar:
    """One school's days and hours. Unix seconds in, the school's local clock inside.

    ``holidays`` are the school holidays; ``public_holidays`` are days without school too,
    so ``self.holidays`` (every day without school) holds both; ``exam_periods`` are
    school days that matter more."""

    def __init__(self, zone: ZoneInfo, day: SchoolDay, holidays: Sequence[Holiday], *,
                 public_holidays: Sequence[Holiday] = (), exam_periods: Sequence[Holiday] = ()) -> None:
        self.zone = zone
        self.day = day
        self.holidays: tuple[Holiday, ...] = tuple(sorted(set(holidays) | set(public_holidays)))
        self.public_holidays: tuple[Holiday, ...] = tuple(sorted(set(public_holidays)))
        self.exam_periods: tuple[Holiday, ...] = tuple(sorted(set(exam_periods)))

    def local_datetime(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, self.zone)

    def local_date(self, t: float) -> date:
        return self.local_datetime(t).date()

    def is_holiday(self, d: date) -> str | None:
        """The name of the day without school on ``d`` (a school or a public holiday; the
        earliest-starting one if several), or None."""
        return _named_on(self.holidays, d)

    def is_public_holiday(self, d: date) -> str | None:
        """The name of the public holiday on ``d``, or None."""
        return _named_on(self.public_holidays, d)

    def exam_period(self, d: date) -> str | None:
        """The name of the exam period ``d`` lies in, or None."""
        return _named_on(self.exam_periods, d)

    def is_school_day(self, d: date) -> bool:
        return d.isoweekday() in self.day.weekdays and self.is_holiday(d) is None

    def session_on(self, d: date) -> tuple[float, float] | None:
        """The school time of local date ``d`` as Unix seconds [start, end), or None."""
        if not self.is_school_day(d):
            return None
        return (_instant(d, self.day.start, self.zone), _instant(d, self.day.end, self.zone))

    def in_session(self, t: float) -> bool:
        # Through the same instants as session_intervals, so the two always agree (also in
        # the hour that repeats when the clocks go back).
        session = self.session_on(self.local_date(t))
        return session is not None and session[0] <= t < session[1]

    def session_intervals(self, start: float, end: float) -> list[tuple[float, float]]:
        """The school time inside [start, end), as Unix-second intervals in time order."""
        intervals: list[tuple[float, float]] = []
        if end <= start:
            return intervals
        d, last = self.local_date(start), self.local_date(end)
        while d <= last:
            session = self.session_on(d)
            if session is not None:
                low, high = max(session[0], start), min(session[1], end)
                if low < high:
                    intervals.append((low, high))
            d += timedelta(days=1)
        return intervals

    def school_seconds(self, start: float, end: float) -> float:
        return sum(high - low for low, high in self.session_intervals(start, end))

    def next_session(self, t: float, max_days: int = 366) -> tuple[float, float] | None:
        """The first session that starts at or after ``t``, looked for over ``max_days``
        local dates (a calendar with holidays all year has none: None)."""
        d = self.local_date(t)
        for _ in range(max_days + 1):
            session = self.session_on(d)
            if session is not None and session[0] >= t:
                return session
            d += timedelta(days=1)
        return None


def _named_on(ranges: Sequence[Holiday], d: date) -> str | None:
    # ``ranges`` sorted by first day: stop at the first that starts after ``d``.
    for first, last, name in ranges:
        if first > d:
            break
        if d <= last:
            return name
    return None


def local_instant(d: date, clock: time, zone: ZoneInfo) -> float:
    """The Unix time at which the local clock of ``zone`` on ``d`` first reads ``clock``
    (see _instant: DST-correct on the days the clocks change)."""
    return _instant(d, clock, zone)


def _instant(d: date, clock: time, zone: ZoneInfo) -> float:
    """The first instant at which the local clock on ``d`` reads ``clock`` or later.

    Usually that reading itself (its first occurrence, when the clocks go back). When the
    clocks go forward past it (02:30 on the spring change), it is the moment of the jump."""
    naive = datetime.combine(d, clock)
    first = naive.replace(tzinfo=zone, fold=0).timestamp()
    if datetime.fromtimestamp(first, zone).replace(tzinfo=None) == naive:
        return first
    # In the gap: fold=1 reads it with the later offset, an instant before the jump.
    low, high = int(naive.replace(tzinfo=zone, fold=1).timestamp()), int(first)
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return float(high)


# --- calendar keys ---------------------------------------------------------------------------


def school_calendar_keys(school_pk: int, board_pk: int, region: str | None) -> tuple[str, ...]:
    """The holiday calendars that apply to a school."""
    keys = ["all", f"board:{board_pk}", f"school:{school_pk}"]
    if region and region.strip():
        keys.append(region_key(region))
    return tuple(keys)


_KEY = re.compile(r"^(all|(board|school):[1-9][0-9]*|region:\S(.*\S)?)$")


def check_calendar_key(key: str) -> str:
    """A stored calendar key as it is, or CalendarError."""
    if not _KEY.match(key) or (key.startswith("region:") and key != key.lower()):
        raise CalendarError(f"calendar {key!r} is not one of all, board:<pk>, school:<pk>, "
                            "region:<name in lower case>")
    return key


def region_key(region: str) -> str:
    # Regions are matched without regard to case or surrounding space ("Noord" = "noord").
    name = region.strip().lower()
    if not name:
        raise CalendarError("a region needs a name (like noord, midden or zuid)")
    return f"region:{name}"


# --- loading -----------------------------------------------------------------------------------

_SCHOOL_COLUMNS = (schools.c.id, schools.c.board_id, schools.c.region, schools.c.timezone,
                   schools.c.hours_start, schools.c.hours_end, schools.c.school_days)


def load_calendar(conn: Connection, school_pk: int, default_timezone: str) -> SchoolCalendar:
    row = conn.execute(select(*_SCHOOL_COLUMNS).where(schools.c.id == school_pk)).first()
    if row is None:
        raise CalendarError(f"no school with key {school_pk}")
    keys = school_calendar_keys(row.id, row.board_id, row.region)
    return _calendar(row, _holidays_by_key(conn, keys), default_timezone)


def load_calendars(conn: Connection, default_timezone: str) -> dict[int, SchoolCalendar]:
    """Every school's calendar, by school pk: two queries whatever the number of schools."""
    rows = conn.execute(select(*_SCHOOL_COLUMNS)).all()
    by_key = _holidays_by_key(conn, None)
    return {row.id: _calendar(row, by_key, default_timezone) for row in rows}


KindedHoliday = tuple[Holiday, str]  # a stored range and its kind


def _holidays_by_key(conn: Connection, keys: Iterable[str] | None) -> dict[str, list[KindedHoliday]]:
    query = select(holidays_table.c.calendar, holidays_table.c.starts_on,
                   holidays_table.c.ends_on, holidays_table.c.name, holidays_table.c.kind)
    if keys is not None:
        query = query.where(holidays_table.c.calendar.in_(list(keys)))
    by_key: dict[str, list[KindedHoliday]] = defaultdict(list)
    for row in conn.execute(query):
        by_key[row.calendar].append(
            ((date.fromisoformat(row.starts_on), date.fromisoformat(row.ends_on), row.name), row.kind))
    return by_key


def _calendar(row: Any, by_key: dict[str, list[KindedHoliday]], default_timezone: str) -> SchoolCalendar:
    # row: a Row of _SCHOOL_COLUMNS.
    school_pk: int = row.id
    try:
        zone = parse_zone(row.timezone or default_timezone)
        day = parse_school_day(row.hours_start, row.hours_end, row.school_days)
    except CalendarError as exc:
        raise CalendarError(f"school {school_pk}: {exc}") from None
    keys = school_calendar_keys(school_pk, row.board_id, row.region)
    found: dict[str, list[Holiday]] = defaultdict(list)
    for key in keys:
        for holiday, kind in by_key.get(key, ()):
            # A kind this code does not know (a newer collector wrote it) is read as the
            # default: a day without school, what every stored day was before kinds.
            found[kind if kind in DAY_KINDS else DEFAULT_KIND].append(holiday)
    return SchoolCalendar(zone, day, found["holiday"], public_holidays=found["public"],
                          exam_periods=found["exams"])


# --- /metrics -----------------------------------------------------------------------------------


IN_SESSION_HELP = ("1 while the school is in session (one of its school days, not a holiday, "
                   "within its school hours), else 0. Computed at each scrape from the school's "
                   "hours, time zone and holidays as the collector holds them.")


def in_session_families(calendars: dict[int, SchoolCalendar], schools: dict[int, tuple[str, str]],
                        now: float) -> list[Family]:
    """``schoolnet_school_in_session{board, school}`` for each school that has a calendar
    (``schools``: pk -> (board id, school id))."""
    family = Family("schoolnet_school_in_session", IN_SESSION_HELP, "gauge", ("board", "school"))
    for pk, (board, school) in sorted(schools.items(), key=lambda item: item[1]):
        calendar = calendars.get(pk)
        if calendar is not None:
            family.add((board, school), 1 if calendar.in_session(now) else 0)
    return [family]
