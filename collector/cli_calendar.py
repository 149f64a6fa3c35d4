"""`schoolnet-collector` commands: the school calendar.

- `import holidays FILE.ics (--school S | --board B | --region R | --all) [--kind K]`
- `calendar show --school S [--from DATE] [--days N] [--json]`
- `calendar list [--calendar KEY] [--kind K]`
- `calendar add --calendar KEY --from DATE [--to DATE] --name NAME [--kind K]`
- `calendar delete --calendar KEY [--name NAME] [--kind K]`

K is what the days are: holiday (no school; the default), public (a public holiday: no
school, and no business hours for an SLA clock) or exams (an exam period: school as usual,
an outage is urgent).

On the command line a calendar is named by ids, not store keys: `all`, `region:NAME`,
`board:BOARD`, `school:SCHOOL` (or `school:BOARD/SCHOOL`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import Connection, delete, select

from agent.cli import OneLineParser

# argparse._SubParsersAction is not subscriptable at run time: annotations only.
Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"

KEY_HELP = "all, region:NAME, board:BOARD or school:SCHOOL (or school:BOARD/SCHOOL)"
KIND_HELP = ("what the days are: holiday (no school), public (a public holiday: no school, and no "
             "business hours for a provider's SLA clock) or exams (an exam period: school as usual, "
             "an outage is urgent)")
KINDS = ("holiday", "public", "exams")  # collector/calendar.py DAY_KINDS (not imported: --help stays light)
MAX_DAYS = 366
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def register(commands: Subcommands, imports: Subcommands, exports: Subcommands) -> None:
    """Add this module's commands to the collector's parser (`imports`, `exports`: the
    actions of `import` and `export`)."""
    holidays = imports.add_parser("holidays", help="holidays from an iCalendar (.ics) file: "
                                  "school holidays of a region, public holidays, a school's own days")
    holidays.add_argument("file", type=Path, metavar="FILE.ics", help="the iCalendar file")
    scope = holidays.add_mutually_exclusive_group(required=True)
    scope.add_argument("--school", help="for one school: SCHOOL or BOARD/SCHOOL")
    scope.add_argument("--board", help="for every school of a board (the board's id)")
    scope.add_argument("--region", help="for every school whose region is this (e.g. noord; "
                       "case does not matter)")
    scope.add_argument("--all", action="store_true", help="for every school")
    holidays.add_argument("--kind", choices=KINDS, default="holiday", help=KIND_HELP + " (default holiday)")
    holidays.set_defaults(run=cmd_import_holidays)

    calendar = commands.add_parser("calendar", help="school hours and holidays")
    actions = calendar.add_subparsers(metavar="ACTION", required=True, parser_class=OneLineParser)
    show = actions.add_parser("show", help="a school's hours, time zone and the days ahead: "
                              "school day or not, and which holiday")
    show.add_argument("--school", required=True, help="SCHOOL or BOARD/SCHOOL")
    show.add_argument("--from", dest="start", metavar="DATE",
                      help="first day, YYYY-MM-DD (default: today, in the school's time zone)")
    show.add_argument("--days", type=int, default=14, help=f"how many days (default 14, at most "
                      f"{MAX_DAYS})")
    show.add_argument("--json", action="store_true", help="print one JSON object, not a table")
    show.set_defaults(run=cmd_calendar_show)

    listing = actions.add_parser("list", help="the holidays held: calendar, first day, last day, name")
    listing.add_argument("--calendar", metavar="KEY", help=f"only this calendar: {KEY_HELP}")
    listing.add_argument("--kind", choices=KINDS, help="only days of this kind")
    listing.set_defaults(run=cmd_calendar_list)

    add = actions.add_parser("add", help="add one range of days by hand (an exam period, a study "
                             "day) to a calendar")
    add.add_argument("--calendar", metavar="KEY", required=True, help=KEY_HELP)
    add.add_argument("--from", dest="first", metavar="DATE", required=True, help="first day, YYYY-MM-DD")
    add.add_argument("--to", dest="last", metavar="DATE", help="last day, inclusive (default: the "
                     "first day)")
    add.add_argument("--name", required=True, help="its name, e.g. Centraal examen")
    add.add_argument("--kind", choices=KINDS, default="holiday", help=KIND_HELP + " (default holiday)")
    add.set_defaults(run=cmd_calendar_add)

    remove = actions.add_parser("delete", help="delete a calendar's holidays (all, or by name or kind)")
    remove.add_argument("--calendar", metavar="KEY", required=True, help=KEY_HELP)
    remove.add_argument("--name", help="only the holidays with this name")
    remove.add_argument("--kind", choices=KINDS, help="only the days of this kind")
    remove.set_defaults(run=cmd_calendar_delete)


# --- commands ----------------------------------------------------------------------------


def cmd_import_holidays(args: argparse.Namespace) -> int:
    from collector.cli import UsageError, open_store
    from collector.ical import import_holidays

    try:
        text = args.file.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise UsageError(f"{args.file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{args.file}: not UTF-8 text (iCalendar files are UTF-8)") from None
    engine = open_store(args)
    with engine.connect() as conn:
        if args.all:
            name = "all"
        elif args.region is not None:
            name = f"region:{args.region}"
        elif args.board is not None:
            name = f"board:{args.board}"
        else:
            name = f"school:{args.school}"
        key = stored_key(conn, name)
        shown = shown_key(conn, key)
    report = import_holidays(engine, text, key, source_name=str(args.file), kind=args.kind)
    rekinded = f" ({report.rekinded} of them now of kind {report.kind})" if report.rekinded else ""
    print(f"{report.added} holidays added, {report.existing} already there{rekinded}, from "
          f"{report.events} events in {args.file}, calendar {shown}, kind {report.kind}")
    return 0


def cmd_calendar_show(args: argparse.Namespace) -> int:
    from collector.calendar import load_calendar
    from collector.cli import UsageError, load_settings, open_store
    from collector.registry import resolve_school

    if not 1 <= args.days <= MAX_DAYS:
        raise UsageError(f"--days must be from 1 to {MAX_DAYS}")
    settings = load_settings(args)
    with open_store(args).connect() as conn:
        school_pk, board, school = resolve_school(conn, args.school)
        calendar = load_calendar(conn, school_pk, settings.timezone)
        first = _date_option(args.start, "--from") if args.start else \
            datetime.now(calendar.zone).date()
        last = first + timedelta(days=args.days - 1)
        ahead = _school_holidays(conn, school_pk, first, last)
    days = []
    for offset in range(args.days):
        day = first + timedelta(days=offset)
        session = calendar.session_on(day)
        days.append({
            "date": day.isoformat(), "weekday": day.isoweekday(),
            "school_day": session is not None, "holiday": calendar.is_holiday(day),
            "public_holiday": calendar.is_public_holiday(day), "exam_period": calendar.exam_period(day),
            "session": None if session is None else {
                "start": calendar.local_datetime(session[0]).isoformat(),
                "end": calendar.local_datetime(session[1]).isoformat()}})
    report = {
        "school": f"{board}/{school}", "timezone": calendar.zone.key,
        "hours": {"start": f"{calendar.day.start:%H:%M}", "end": f"{calendar.day.end:%H:%M}"},
        "school_days": sorted(calendar.day.weekdays),
        "from": first.isoformat(), "days": days, "holidays": ahead}
    print(json.dumps(report, indent=2) if args.json else _show_table(report))
    return 0


def cmd_calendar_list(args: argparse.Namespace) -> int:
    from collector.cli import open_store
    from collector.db.schema import holidays

    query = select(holidays.c.calendar, holidays.c.starts_on, holidays.c.ends_on, holidays.c.name,
                   holidays.c.kind)
    if args.kind:
        query = query.where(holidays.c.kind == args.kind)
    with open_store(args).connect() as conn:
        if args.calendar:
            query = query.where(holidays.c.calendar == stored_key(conn, args.calendar))
        rows = conn.execute(query).all()
        names = _KeyNames(conn)
        shown = sorted((names.show(row.calendar), row.starts_on, row.ends_on, row.name, row.kind)
                       for row in rows)
    # The kind last: the four columns before it are what this printed before there were kinds.
    for calendar, first, last, name, kind in shown:
        print(f"{calendar}\t{first}\t{last}\t{name}\t{kind}")
    return 0


def cmd_calendar_add(args: argparse.Namespace) -> int:
    from collector.cli import UsageError, open_store
    from collector.contracts_csv import FieldError, parse_text
    from collector.db.engine import writer
    from collector.db.schema import holidays

    first = _date_option(args.first, "--from")
    last = _date_option(args.last, "--to") if args.last else first
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    if (last - first).days >= MAX_DAYS:
        raise UsageError(f"--from {first} --to {last} is more than {MAX_DAYS} days")
    try:
        name = parse_text(200)(args.name.strip())
    except FieldError as exc:
        raise UsageError(f"--name: {exc}") from None
    if not name:
        raise UsageError("--name must not be empty")
    engine = open_store(args)
    with writer(engine) as conn, conn.begin():
        key = stored_key(conn, args.calendar)
        same = (holidays.c.calendar == key, holidays.c.starts_on == first.isoformat(),
                holidays.c.ends_on == last.isoformat(), holidays.c.name == name)
        stored = conn.scalar(select(holidays.c.kind).where(*same))
        if stored is None:
            conn.execute(holidays.insert().values(
                calendar=key, starts_on=first.isoformat(), ends_on=last.isoformat(), name=name,
                kind=args.kind, created_at=time.time()))
            what = "added"
        elif stored != args.kind:
            conn.execute(holidays.update().where(*same).values(kind=args.kind))
            what = f"already there as {stored}; now {args.kind}"
        else:
            what = "already there"
    print(f"{first} .. {last} {name!r} ({args.kind}) in calendar {args.calendar}: {what}")
    return 0


def cmd_calendar_delete(args: argparse.Namespace) -> int:
    from collector.cli import PROG, open_store
    from collector.db.engine import writer
    from collector.db.schema import holidays

    engine = open_store(args)
    with writer(engine) as conn, conn.begin():
        key = stored_key(conn, args.calendar)
        where = [holidays.c.calendar == key]
        if args.name is not None:
            where.append(holidays.c.name == args.name)
        if args.kind is not None:
            where.append(holidays.c.kind == args.kind)
        deleted = conn.execute(delete(holidays).where(*where)).rowcount
    if not deleted:
        named = f" named {args.name!r}" if args.name is not None else ""
        kind = f" of kind {args.kind}" if args.kind is not None else ""
        print(f"{PROG}: error: no holidays{named}{kind} in calendar {args.calendar}", file=sys.stderr)
        return 1
    print(f"deleted {deleted} holidays from calendar {args.calendar}")
    return 0


# --- calendar names ---------------------------------------------------------------------------


def stored_key(conn: Connection, name: str) -> str:
    """A calendar as named on the command line -> its key in the store."""
    from collector.calendar import region_key
    from collector.db.schema import boards
    from collector.registry import RegistryError, resolve_school

    kind, _, value = name.strip().partition(":")
    kind = kind.lower()
    if kind == "all" and not value:
        return "all"
    if kind == "region":
        return region_key(value)
    if kind == "board" and value:
        board_pk = conn.scalar(select(boards.c.id).where(boards.c.slug == value))
        if board_pk is None:
            raise RegistryError(f"no board with id {value!r} (see: board list)")
        return f"board:{board_pk}"
    if kind == "school" and value:
        return f"school:{resolve_school(conn, value)[0]}"
    raise RegistryError(f"calendar {name!r} is not one of {KEY_HELP}")


def shown_key(conn: Connection, key: str) -> str:
    return _KeyNames(conn).show(key)


class _KeyNames:
    """Store keys ("board:3") shown with ids ("board:north-schools"); read once."""

    def __init__(self, conn: Connection) -> None:
        from collector.db.schema import boards, schools

        self.boards: dict[int, str] = {
            row.id: row.slug for row in conn.execute(select(boards.c.id, boards.c.slug))}
        self.schools = {row.id: f"{row.board}/{row.slug}" for row in conn.execute(
            select(schools.c.id, schools.c.slug, boards.c.slug.label("board"))
            .join(boards, boards.c.id == schools.c.board_id))}

    def show(self, key: str) -> str:
        kind, _, value = key.partition(":")
        table = self.boards if kind == "board" else self.schools if kind == "school" else None
        if table is not None and value.isdigit() and int(value) in table:
            return f"{kind}:{table[int(value)]}"
        return key


# --- helpers -----------------------------------------------------------------------------------


def _school_holidays(conn: Connection, school_pk: int, first: date, last: date) -> list[dict[str, Any]]:
    """The holidays of the school that overlap [first, last], with the calendar each is in."""
    from collector.calendar import school_calendar_keys
    from collector.db.schema import holidays, schools

    row = conn.execute(select(schools.c.board_id, schools.c.region)
                       .where(schools.c.id == school_pk)).one()
    keys = school_calendar_keys(school_pk, row.board_id, row.region)
    names = _KeyNames(conn)
    rows = conn.execute(
        select(holidays.c.calendar, holidays.c.starts_on, holidays.c.ends_on, holidays.c.name,
               holidays.c.kind)
        .where(holidays.c.calendar.in_(keys), holidays.c.starts_on <= last.isoformat(),
               holidays.c.ends_on >= first.isoformat())
        .order_by(holidays.c.starts_on, holidays.c.ends_on, holidays.c.name))
    return [{"starts_on": r.starts_on, "ends_on": r.ends_on, "name": r.name, "kind": r.kind,
             "calendar": names.show(r.calendar)} for r in rows]


def _date_option(text: str, option: str) -> date:
    from collector.cli import UsageError

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date as YYYY-MM-DD") from None


def _show_table(report: dict[str, Any]) -> str:
    days = " ".join(WEEKDAY_NAMES[d - 1] for d in report["school_days"])
    lines = [f"school: {report['school']}", f"time zone: {report['timezone']}",
             f"hours: {report['hours']['start']}-{report['hours']['end']}", f"school days: {days}", ""]
    lines.append("date        day  school day  holiday")
    for day in report["days"]:
        notes = [day["holiday"] + (" (public holiday)" if day["public_holiday"] else "")] \
            if day["holiday"] else []
        if day["exam_period"]:
            notes.append(f"exams: {day['exam_period']}")
        lines.append(f"{day['date']}  {WEEKDAY_NAMES[day['weekday'] - 1]}  "
                     f"{'yes' if day['school_day'] else 'no ':<10}  {'; '.join(notes)}".rstrip())
    lines.append("")
    if report["holidays"]:
        lines.append("holidays:")
        lines += [f"  {h['starts_on']} .. {h['ends_on']}  {h['name']}  ({h['kind']}, {h['calendar']})"
                  for h in report["holidays"]]
    else:
        lines.append("holidays: none in these days")
    return "\n".join(lines)
