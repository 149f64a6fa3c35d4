"""Holidays from iCalendar files (RFC 5545): school-holiday and public-holiday feeds.

Every VEVENT is a holiday named by its SUMMARY, from DTSTART to DTEND:
- all-day events (DATE values): DTEND is exclusive, as RFC 5545 says, so a week off from
  Saturday 18 to Sunday 26 October is written DTSTART 20251018, DTEND 20251027; without
  DTEND (or DURATION) it is one day;
- timed events (DATE-TIME): the dates from DTSTART to DTEND on the event's own clock (an
  end at midnight does not touch the next day);
- RRULE is expanded with python-dateutil (yearly public holidays), up to its UNTIL or
  COUNT, or MAX_YEARS after DTSTART when it has neither; RDATE adds dates, EXDATE and
  changed instances (RECURRENCE-ID) take them out; cancelled events are left out;
- a rule that gives no occurrence in the MAX_YEARS after DTSTART is refused: dateutil
  looks for the first one up to the year 9999 whatever UNTIL says (seconds of CPU for
  FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30), so the days are checked first, by _first_possible_day.

Parsing is done in full before anything is written: a file that cannot be read gives
one line naming what is wrong, and nothing is stored.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from dateutil.rrule import rrule, rrulestr
from icalendar import Calendar, Component
from sqlalchemy import Engine, select

from collector.calendar import DEFAULT_KIND, Holiday, check_calendar_key, check_day_kind
from collector.db.engine import writer
from collector.db.schema import holidays

MAX_YEARS = 5  # how far an open-ended RRULE is expanded
MAX_OCCURRENCES = 1000  # more from one event is not a holiday calendar
MAX_NAME = 200  # holidays.name


class IcalError(ValueError):
    """An iCalendar file that cannot be read as holidays; the message is one line."""


@dataclass(frozen=True)
class ImportReport:
    source: str
    calendar: str
    events: int  # VEVENTs that gave holidays (cancelled ones and changed instances aside)
    holidays: int  # distinct holidays the file gives
    added: int  # of which new in the store
    kind: str = DEFAULT_KIND  # what the days are (collector/calendar.py DAY_KINDS)
    # Of those already there, how many had another kind and now have this one.
    rekinded: int = 0

    @property
    def existing(self) -> int:
        return self.holidays - self.added


def import_holidays(engine: Engine, text: str, calendar_key: str, *, source_name: str,
                    kind: str = DEFAULT_KIND) -> ImportReport:
    """Store the holidays of an iCalendar file in calendar ``calendar_key`` as days of
    ``kind`` (one transaction). Those already there keep their row; one stored with another
    kind takes this one: importing a feed again with ``--kind public`` reclassifies it."""
    check_calendar_key(calendar_key)
    kind = check_day_kind(kind)
    found, events = parse_holidays(text, source_name=source_name)
    with writer(engine) as conn, conn.begin():
        stored = {(row.starts_on, row.ends_on, row.name): (row.id, row.kind) for row in conn.execute(
            select(holidays.c.id, holidays.c.starts_on, holidays.c.ends_on, holidays.c.name,
                   holidays.c.kind).where(holidays.c.calendar == calendar_key))}
        now = time.time()
        new: list[dict[str, object]] = []
        rekind: list[int] = []
        for first, last, name in sorted(found):
            existing = stored.get((first.isoformat(), last.isoformat(), name))
            if existing is None:
                new.append({"calendar": calendar_key, "starts_on": first.isoformat(),
                            "ends_on": last.isoformat(), "name": name, "kind": kind, "created_at": now})
            elif existing[1] != kind:
                rekind.append(existing[0])
        if new:
            conn.execute(holidays.insert(), new)
        for index in range(0, len(rekind), 500):  # far below SQLite's bound on parameters
            conn.execute(holidays.update().where(holidays.c.id.in_(rekind[index:index + 500]))
                         .values(kind=kind))
    return ImportReport(source_name, calendar_key, events, len(found), len(new), kind, len(rekind))


def parse_holidays(text: str, *, source_name: str) -> tuple[set[Holiday], int]:
    """The distinct holidays of an iCalendar text, and how many events gave them."""
    calendar = _parse(text, source_name)
    events = list(calendar.walk("VEVENT"))
    if not events:
        raise IcalError(f"{source_name}: the calendar has no events (VEVENT)")
    # Instances changed or cancelled one by one are their own VEVENTs, with the UID of the
    # recurring one and the start they replace as RECURRENCE-ID.
    replaced: dict[str, list[Any]] = {}
    for event in events:
        if "RECURRENCE-ID" in event:
            replaced.setdefault(str(event.get("UID", "")), []).append(event.decoded("RECURRENCE-ID"))
    found: set[Holiday] = set()
    used = 0
    for number, event in enumerate(events, start=1):
        where = _describe(source_name, number, event)
        try:
            days = list(_event_holidays(event, replaced.get(str(event.get("UID", "")), [])))
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            raise IcalError(f"{where}: {_one_line(exc)}") from None
        if days:
            used += 1
            found.update(days)
    return found, used


def _parse(text: str, source_name: str) -> Calendar:
    try:
        calendar = Calendar.from_ical(text.lstrip("\ufeff"))
    except (ValueError, IndexError, KeyError) as exc:
        raise IcalError(f"{source_name}: not an iCalendar file: {_one_line(exc)}") from None
    if calendar.name != "VCALENDAR":
        raise IcalError(f"{source_name}: not an iCalendar file: it holds a {calendar.name}, "
                        "not a VCALENDAR")
    return calendar


def _event_holidays(event: Component, replaced: list[Any]) -> Iterator[Holiday]:
    for prop, message in event.errors:
        raise ValueError(f"{prop}: {message}")
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return
    name = " ".join(str(event.get("SUMMARY", "")).split())
    if not name:
        raise ValueError("it has no SUMMARY (the holiday's name)")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        # NUL above all: PostgreSQL refuses it in text, and no name holds one.
        raise ValueError("its SUMMARY holds a control character")
    if len(name) > MAX_NAME:
        raise ValueError(f"its SUMMARY is longer than {MAX_NAME} characters")
    if "DTSTART" not in event:
        raise ValueError("it has no DTSTART")
    start = event.decoded("DTSTART")
    all_day = not isinstance(start, datetime)
    zone = None if all_day else start.tzinfo
    first = _wall(start, zone)
    length = _length(event, start, first, zone, all_day)
    for occurrence in _starts(event, first, zone, replaced):
        yield _dates(occurrence, length, all_day, name)


def _length(event: Component, start: Any, first: datetime, zone: tzinfo | None,
            all_day: bool) -> timedelta:
    if "DTEND" in event:
        end = event.decoded("DTEND")
        if isinstance(end, datetime) == all_day:
            raise ValueError("DTSTART and DTEND must both be dates or both date-times")
        length = _wall(end, zone) - first
        if length < timedelta(0):
            raise ValueError(f"DTEND {end} is before DTSTART {start}")
    elif "DURATION" in event:
        length = event.decoded("DURATION")
        if length < timedelta(0):
            raise ValueError("DURATION is negative")
    else:
        length = timedelta(0)
    # An all-day event lasts at least its day (RFC 5545 3.6.1: no DTEND is one day).
    return max(length, timedelta(days=1)) if all_day else length


def _starts(event: Component, first: datetime, zone: tzinfo | None,
            replaced: list[Any]) -> Iterator[datetime]:
    """The starts of the event's occurrences, on its own clock (naive)."""
    if "RECURRENCE-ID" in event:
        # A changed instance: itself, once.
        yield first
        return
    starts: set[datetime] = set()
    rules = event.get("RRULE")
    for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
        starts.update(_expand(rule, first, zone))
    if not starts:
        starts.add(first)
    starts.update(_wall(value, zone) for value in _date_values(event.get("RDATE")))
    removed = [*_date_values(event.get("EXDATE")), *replaced]
    # A DATE takes out the occurrence on that date whatever its time (feeds mix DATE and
    # DATE-TIME values); a DATE-TIME takes out the occurrence that starts then.
    removed_days = {value for value in removed if not isinstance(value, datetime)}
    removed_starts = {_wall(value, zone) for value in removed if isinstance(value, datetime)}
    for start in sorted(starts):
        if start not in removed_starts and start.date() not in removed_days:
            yield start


def _expand(rule: Any, first: datetime, zone: tzinfo | None) -> Iterator[datetime]:
    parts = {key: value for key, value in rule.items() if key != "UNTIL"}
    text = type(rule)(parts).to_ical().decode()
    try:
        recurrence = rrulestr(text, dtstart=first)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"RRULE {rule.to_ical().decode()!r}: {_one_line(exc)}") from None
    if not isinstance(recurrence, rrule):
        raise ValueError(f"RRULE {rule.to_ical().decode()!r} is not one rule")
    until = rule.get("UNTIL")
    bounded = bool(until) or "COUNT" in rule
    if _first_possible_day(rule, first) is None:
        raise ValueError(f"its RRULE {rule.to_ical().decode()!r} gives no occurrence in the {MAX_YEARS} "
                         "years after DTSTART (no day matches all of its BY parts)")
    if until:
        recurrence = recurrence.replace(until=_wall(until[0], zone, end_of_day=True))
    horizon = first.replace(year=first.year + MAX_YEARS) if first.month != 2 or first.day != 29 \
        else first.replace(year=first.year + MAX_YEARS, day=28)
    for count, start in enumerate(recurrence, start=1):
        if not bounded and start > horizon:
            return
        if count > MAX_OCCURRENCES:
            raise ValueError(f"its RRULE gives more than {MAX_OCCURRENCES} occurrences")
        yield start


# RFC 5545 day names -> Python weekday numbers (Monday 0).
_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


def _first_possible_day(rule: Any, first: datetime) -> date | None:
    """The first day from DTSTART on, within MAX_YEARS, that the rule's day-level parts
    (BYMONTH, BYMONTHDAY, BYYEARDAY, BYWEEKNO, the weekdays of BYDAY and the INTERVAL of a
    DAILY, WEEKLY, MONTHLY or YEARLY rule) all allow; None when no day does.

    A deterministic bound on the work (at most 1 827 days, each a few comparisons) where
    dateutil's own search has none. The test is generous where it has to be (the n of
    "1MO", BYSETPOS, the hours of an HOURLY rule are not checked), so a day found here
    is not proof of an occurrence; no day found is proof of none."""
    def numbers(key: str) -> list[int]:
        return [int(value) for value in rule.get(key, [])]

    freq = str(rule.get("FREQ", [""])[0]).upper()
    interval = max(numbers("INTERVAL") or [1], default=1)
    months, month_days, year_days, week_numbers = (
        set(numbers("BYMONTH")), set(numbers("BYMONTHDAY")), set(numbers("BYYEARDAY")),
        set(numbers("BYWEEKNO")))
    weekdays = {_WEEKDAYS[str(day).upper()[-2:]] for day in rule.get("BYDAY", [])
                if str(day).upper()[-2:] in _WEEKDAYS}
    start = first.date()
    # What dateutil fills in when a rule gives no day part (rrule.__init__): DTSTART's day.
    if not (week_numbers or year_days or month_days or weekdays):
        if freq == "YEARLY":
            months = months or {start.month}
            month_days = {start.day}
        elif freq == "MONTHLY":
            month_days = {start.day}
        elif freq == "WEEKLY":
            weekdays = {start.weekday()}
    week_start = _WEEKDAYS.get(str(rule.get("WKST", ["MO"])[0]).upper(), 0)
    first_week = start - timedelta(days=(start.weekday() - week_start) % 7)
    horizon = date(start.year + MAX_YEARS, start.month, min(start.day, 28))
    day = start
    while day <= horizon:
        if _allowed(day, freq, interval, start, first_week, months, month_days, year_days,
                    week_numbers, weekdays, week_start):
            return day
        day += timedelta(days=1)
    return None


def _allowed(day: date, freq: str, interval: int, start: date, first_week: date, months: set[int],
             month_days: set[int], year_days: set[int], week_numbers: set[int], weekdays: set[int],
             week_start: int) -> bool:
    if interval > 1:
        # Only the periods INTERVAL apart from DTSTART's hold occurrences.
        if freq == "DAILY" and (day - start).days % interval:
            return False
        if freq == "WEEKLY" and ((day - first_week).days // 7) % interval:
            return False
        if freq == "MONTHLY" and ((day.year - start.year) * 12 + day.month - start.month) % interval:
            return False
        if freq == "YEARLY" and (day.year - start.year) % interval:
            return False
    if months and day.month not in months:
        return False
    if weekdays and day.weekday() not in weekdays:
        return False
    if month_days:
        length = calendar.monthrange(day.year, day.month)[1]
        if day.day not in month_days and day.day - length - 1 not in month_days:
            return False
    if year_days:
        number, length = day.timetuple().tm_yday, 366 if calendar.isleap(day.year) else 365
        if number not in year_days and number - length - 1 not in year_days:
            return False
    if week_numbers and week_start == 0:
        # ISO weeks (WKST=MO, the default); other week starts are not checked.
        year, week, _ = day.isocalendar()
        weeks = date(year, 12, 28).isocalendar()[1]
        if week not in week_numbers and week - weeks - 1 not in week_numbers:
            return False
    return True


def _date_values(prop: Any) -> Iterable[Any]:
    """The dates and date-times of an RDATE or EXDATE (one or several properties)."""
    for item in prop if isinstance(prop, list) else [prop] if prop is not None else []:
        for value in item.dts:
            moment = value.dt
            # A PERIOD (start, end or duration) counts from its start.
            yield moment[0] if isinstance(moment, tuple) else moment


def _wall(value: Any, zone: tzinfo | None, *, end_of_day: bool = False) -> datetime:
    """A DATE or DATE-TIME as a naive reading of the event's own clock."""
    if isinstance(value, datetime):
        if value.tzinfo is not None and zone is not None:
            value = value.astimezone(zone)
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        moment = datetime.combine(value, datetime.min.time())
        return moment.replace(hour=23, minute=59, second=59) if end_of_day else moment
    raise ValueError(f"{value!r} is not a date or date-time")


def _dates(start: datetime, length: timedelta, all_day: bool, name: str) -> Holiday:
    end = start + length
    if all_day:
        return (start.date(), (end - timedelta(days=1)).date(), name)
    # The dates the event touches; its end is exclusive.
    last = (end - timedelta(microseconds=1)).date() if end > start else start.date()
    return (start.date(), last, name)


def _describe(source_name: str, number: int, event: Component) -> str:
    summary = " ".join(str(event.get("SUMMARY", "")).split())
    label = f" ({summary[:60]})" if summary else (f" (UID {event['UID']})" if "UID" in event else "")
    return f"{source_name}: event {number}{label}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
