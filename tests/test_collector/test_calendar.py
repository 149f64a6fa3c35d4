"""The school calendar: school hours, holidays by scope, DST, iCalendar import, CLI, metric."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, update

from collector.calendar import (
    DEFAULT_DAY,
    CalendarError,
    SchoolCalendar,
    SchoolDay,
    in_session_families,
    load_calendar,
    load_calendars,
    parse_school_day,
)
from collector.cli import main
from collector.db.engine import open_engine, writer
from collector.db.migrate import upgrade
from collector.db.schema import boards, holidays, schools
from collector.ical import IcalError, import_holidays, parse_holidays
from collector.registry import add_board, add_school

pytestmark = pytest.mark.both_stores

FIXTURES = Path(__file__).parents[1] / "fixtures" / "calendar"
AMS = ZoneInfo("Europe/Amsterdam")


def at(zone: ZoneInfo, *parts: int) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()  # type: ignore[misc]


def read(name: str) -> str:
    # newline="": the CRLF fixture reaches the parser with its CRLFs.
    with open(FIXTURES / name, encoding="utf-8", newline="") as handle:
        return handle.read()


@pytest.fixture
def db(db_url: str) -> Iterator[tuple[Engine, str]]:
    url = db_url
    engine = open_engine(url)
    upgrade(engine)
    add_board(engine, "North", "north")
    add_board(engine, "South", "south")
    add_school(engine, "north", "Linde", "linde")
    add_school(engine, "north", "Eik", "eik")
    add_school(engine, "south", "Beuk", "beuk")
    yield engine, url
    engine.dispose()


def pk(engine: Engine, school: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(schools.c.id).where(schools.c.slug == school)))


def board_pk(engine: Engine, board: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(boards.c.id).where(boards.c.slug == board)))


def set_school(engine: Engine, school: str, **values: Any) -> None:
    with writer(engine) as conn, conn.begin():
        conn.execute(update(schools).where(schools.c.slug == school).values(**values))


def holiday_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(holidays)))


# --- in session ------------------------------------------------------------------------------

WEEKDAYS = SchoolCalendar(AMS, DEFAULT_DAY, [])


def test_in_session_boundaries_on_a_school_day() -> None:
    # Tuesday 2025-09-16, summer time.
    assert not WEEKDAYS.in_session(at(AMS, 2025, 9, 16, 8, 29, 59))
    assert WEEKDAYS.in_session(at(AMS, 2025, 9, 16, 8, 30))
    assert WEEKDAYS.in_session(at(AMS, 2025, 9, 16, 15, 29, 59))
    assert not WEEKDAYS.in_session(at(AMS, 2025, 9, 16, 15, 30))


def test_weekends_are_not_in_session() -> None:
    assert not WEEKDAYS.in_session(at(AMS, 2025, 9, 13, 10))  # Saturday
    assert not WEEKDAYS.in_session(at(AMS, 2025, 9, 14, 10))  # Sunday
    assert WEEKDAYS.in_session(at(AMS, 2025, 9, 15, 10))  # Monday


def test_custom_days_and_hours() -> None:
    day = parse_school_day("08:15", "12:45", "1,2,3,4,5,6")
    calendar = SchoolCalendar(AMS, day, [])
    assert calendar.in_session(at(AMS, 2025, 9, 13, 8, 15))  # Saturday is a school day here
    assert not calendar.in_session(at(AMS, 2025, 9, 13, 12, 45))
    assert not calendar.in_session(at(AMS, 2025, 9, 14, 10))  # Sunday is not
    assert not calendar.in_session(at(AMS, 2025, 9, 15, 8, 14, 59))


def test_a_school_in_another_zone_keeps_its_own_clock() -> None:
    lisbon = ZoneInfo("Europe/Lisbon")  # one hour behind Amsterdam
    calendar = SchoolCalendar(lisbon, DEFAULT_DAY, [])
    moment = at(AMS, 2025, 9, 16, 9, 0)  # 08:00 in Lisbon
    assert WEEKDAYS.in_session(moment)
    assert not calendar.in_session(moment)
    assert calendar.in_session(at(AMS, 2025, 9, 16, 16, 0))  # 15:00 in Lisbon
    assert calendar.local_date(at(AMS, 2025, 9, 17, 0, 30)) == date(2025, 9, 16)


def test_holidays_are_inclusive_at_both_ends() -> None:
    calendar = SchoolCalendar(AMS, DEFAULT_DAY, [(date(2025, 10, 20), date(2025, 10, 24), "Herfst")])
    assert calendar.is_holiday(date(2025, 10, 19)) is None
    assert calendar.is_holiday(date(2025, 10, 20)) == "Herfst"
    assert calendar.is_holiday(date(2025, 10, 24)) == "Herfst"
    assert calendar.is_holiday(date(2025, 10, 25)) is None
    assert not calendar.in_session(at(AMS, 2025, 10, 24, 10))
    assert calendar.in_session(at(AMS, 2025, 10, 27, 10))


@pytest.mark.parametrize(("start", "end", "days"), [
    ("8:30", None, None), ("08:30", "24:00", None), ("15:30", "08:30", None),
    (None, None, "0,1"), (None, None, "mon"), (None, None, "1,8")])
def test_bad_school_days_are_refused(start: str | None, end: str | None, days: str | None) -> None:
    with pytest.raises(CalendarError):
        parse_school_day(start, end, days)


# --- DST ----------------------------------------------------------------------------------------


def test_session_intervals_across_the_spring_change() -> None:
    # Clocks go forward on Sunday 2026-03-29; Friday 27 and Monday 30 are school days.
    intervals = WEEKDAYS.session_intervals(at(AMS, 2026, 3, 27), at(AMS, 2026, 3, 31))
    assert intervals == [(at(AMS, 2026, 3, 27, 8, 30), at(AMS, 2026, 3, 27, 15, 30)),
                         (at(AMS, 2026, 3, 30, 8, 30), at(AMS, 2026, 3, 30, 15, 30))]
    assert [b - a for a, b in intervals] == [7 * 3600, 7 * 3600]
    # 08:30 local is 07:30 UTC before the change and 06:30 UTC after it.
    assert datetime.fromtimestamp(intervals[0][0], ZoneInfo("UTC")).hour == 7
    assert datetime.fromtimestamp(intervals[1][0], ZoneInfo("UTC")).hour == 6


def test_session_intervals_across_the_autumn_change_and_on_the_change_day() -> None:
    # Clocks go back on Sunday 2025-10-26: a school open every day is 7 h that day too.
    every_day = SchoolCalendar(AMS, SchoolDay(time(8, 30), time(15, 30), frozenset(range(1, 8))), [])
    intervals = every_day.session_intervals(at(AMS, 2025, 10, 25), at(AMS, 2025, 10, 28))
    assert [b - a for a, b in intervals] == [7 * 3600] * 3
    assert [datetime.fromtimestamp(a, ZoneInfo("UTC")).hour for a, _ in intervals] == [6, 7, 7]
    assert every_day.school_seconds(at(AMS, 2025, 10, 25), at(AMS, 2025, 10, 28)) == 21 * 3600


def test_hours_inside_the_changing_hour_follow_the_clock() -> None:
    # A school day from 02:30 (made up to test the rule): in spring the clock skips from
    # 02:00 to 03:00, so the day starts at the jump; in autumn at the first 02:30.
    night = SchoolCalendar(AMS, SchoolDay(time(2, 30), time(4, 0), frozenset(range(1, 8))), [])
    spring = night.session_on(date(2026, 3, 29))
    assert spring == (at(AMS, 2026, 3, 29, 3, 0), at(AMS, 2026, 3, 29, 4, 0))
    assert night.in_session(spring[0]) and not night.in_session(spring[0] - 1)
    autumn = night.session_on(date(2025, 10, 26))
    assert autumn is not None and autumn[1] - autumn[0] == 2.5 * 3600
    assert all(night.in_session(t) for t in range(int(autumn[0]), int(autumn[1]), 600))


def test_session_intervals_clip_to_the_period_and_skip_holidays() -> None:
    calendar = SchoolCalendar(AMS, DEFAULT_DAY, [(date(2025, 9, 17), date(2025, 9, 17), "Studiedag")])
    intervals = calendar.session_intervals(at(AMS, 2025, 9, 16, 12), at(AMS, 2025, 9, 18, 10))
    assert intervals == [(at(AMS, 2025, 9, 16, 12), at(AMS, 2025, 9, 16, 15, 30)),
                         (at(AMS, 2025, 9, 18, 8, 30), at(AMS, 2025, 9, 18, 10))]
    assert calendar.session_intervals(10.0, 10.0) == []


# --- loading from the store, holidays by scope ---------------------------------------------------


def add_holiday(engine: Engine, calendar: str, first: str, last: str, name: str) -> None:
    with writer(engine) as conn, conn.begin():
        conn.execute(holidays.insert().values(calendar=calendar, starts_on=first, ends_on=last,
                                              name=name, created_at=0.0))


def test_holidays_apply_by_each_scope(db: tuple[Engine, str]) -> None:
    engine, _ = db
    set_school(engine, "linde", region="Noord")
    set_school(engine, "beuk", region="zuid")
    add_holiday(engine, "all", "2025-12-25", "2025-12-26", "Kerst")
    add_holiday(engine, f"board:{board_pk(engine, 'north')}", "2025-11-03", "2025-11-03", "Board day")
    add_holiday(engine, "region:noord", "2025-10-18", "2025-10-26", "Herfst noord")
    add_holiday(engine, "region:zuid", "2025-10-11", "2025-10-19", "Herfst zuid")
    add_holiday(engine, f"school:{pk(engine, 'eik')}", "2025-11-12", "2025-11-12", "Studiedag Eik")
    with engine.connect() as conn:
        calendars = load_calendars(conn, "Europe/Amsterdam")
        single = load_calendar(conn, pk(engine, "linde"), "Europe/Amsterdam")
    linde, eik, beuk = (calendars[pk(engine, s)] for s in ("linde", "eik", "beuk"))
    assert single.holidays == linde.holidays
    checks = {
        date(2025, 12, 25): ("Kerst", "Kerst", "Kerst"),
        date(2025, 11, 3): ("Board day", "Board day", None),
        date(2025, 10, 20): ("Herfst noord", None, None),  # Eik has no region
        date(2025, 10, 13): (None, None, "Herfst zuid"),
        date(2025, 11, 12): (None, "Studiedag Eik", None),
    }
    for day, expected in checks.items():
        assert (linde.is_holiday(day), eik.is_holiday(day), beuk.is_holiday(day)) == expected, day


def test_a_schools_own_hours_and_zone_are_read(db: tuple[Engine, str]) -> None:
    engine, _ = db
    set_school(engine, "beuk", timezone="Europe/Lisbon", hours_start="09:00", hours_end="13:00",
               school_days="1,3,5")
    with engine.connect() as conn:
        calendars = load_calendars(conn, "Europe/Amsterdam")
    beuk, linde = calendars[pk(engine, "beuk")], calendars[pk(engine, "linde")]
    assert beuk.zone.key == "Europe/Lisbon" and linde.zone.key == "Europe/Amsterdam"
    assert beuk.day == SchoolDay(time(9), time(13), frozenset({1, 3, 5}))
    assert linde.day == DEFAULT_DAY
    lisbon = ZoneInfo("Europe/Lisbon")
    assert beuk.in_session(at(lisbon, 2025, 9, 15, 9))  # Monday
    assert not beuk.in_session(at(lisbon, 2025, 9, 16, 10))  # Tuesday


def test_a_bad_stored_school_day_names_the_school(db: tuple[Engine, str]) -> None:
    engine, _ = db
    set_school(engine, "eik", hours_start="9 uur")
    with engine.connect() as conn, pytest.raises(CalendarError, match=f"school {pk(engine, 'eik')}"):
        load_calendars(conn, "Europe/Amsterdam")


def test_load_calendars_uses_two_queries(db: tuple[Engine, str]) -> None:
    from sqlalchemy import event

    engine, _ = db
    for n in range(20):
        add_school(engine, "north", f"School {n}")
    statements: list[str] = []
    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", lambda *a: statements.append(a[2]))
        assert len(load_calendars(conn, "Europe/Amsterdam")) == 23
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2


# --- iCalendar -----------------------------------------------------------------------------------


def test_regional_school_holidays_fixture() -> None:
    text = read("schoolvakanties-noord-2025-2026.ics")
    assert "\r\n" in text  # the CRLF fixture
    found, events = parse_holidays(text, source_name="noord.ics")
    assert events == 5
    assert sorted(found) == [
        (date(2025, 10, 18), date(2025, 10, 26), "Herfstvakantie"),  # DTEND exclusive
        (date(2025, 12, 20), date(2026, 1, 4), "Kerstvakantie"),
        (date(2026, 2, 14), date(2026, 2, 22), "Voorjaarsvakantie"),  # folded SUMMARY
        (date(2026, 3, 11), date(2026, 3, 11), "Studiedag"),  # DATE-TIME to midnight
        (date(2026, 7, 4), date(2026, 8, 16), "Zomervakantie"),
    ]


def test_public_holidays_fixture_expands_rrule_with_exdate_rdate_and_horizon() -> None:
    found, events = parse_holidays(read("feestdagen.ics"), source_name="feestdagen.ics")
    assert events == 4  # the cancelled one gives nothing
    by_name: dict[str, list[tuple[date, date]]] = {}
    for first, last, name in found:
        by_name.setdefault(name, []).append((first, last))
    # Open-ended: 5 years after DTSTART.
    assert sorted(by_name["Nieuwjaarsdag"]) == [(date(y, 1, 1), date(y, 1, 1)) for y in range(2025, 2031)]
    # UNTIL 2030; the Sunday of 2025 taken out (EXDATE) and the Saturday put in (RDATE).
    assert sorted(by_name["Koningsdag"]) == [(date(2025, 4, 26), date(2025, 4, 26))] + [
        (date(y, 4, 27), date(y, 4, 27)) for y in range(2026, 2031)]
    assert sorted(by_name["Bevrijdingsdag"]) == [(date(2025, 5, 5),) * 2, (date(2030, 5, 5),) * 2]  # COUNT
    # Two days each year, 2026 taken out, UNTIL in UTC.
    assert sorted(by_name["Eerste en tweede kerstdag"]) == [
        (date(2025, 12, 25), date(2025, 12, 26)), (date(2027, 12, 25), date(2027, 12, 26))]
    assert "Afgelaste dag" not in by_name


CALENDAR = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//t//NL\n{}END:VCALENDAR\n"


def event(*lines: str) -> str:
    return "BEGIN:VEVENT\nUID:u@t\n" + "".join(f"{line}\n" for line in lines) + "END:VEVENT\n"


def test_timed_events_in_their_own_zone_and_recurring_overrides() -> None:
    text = CALENDAR.format(
        event("DTSTART;TZID=Europe/Amsterdam:20251231T230000",
              "DTEND;TZID=Europe/Amsterdam:20260102T010000", "SUMMARY:Oud en nieuw")
        + "BEGIN:VEVENT\nUID:weekly@t\nDTSTART;VALUE=DATE:20260105\nSUMMARY:Sportdag\n"
          "RRULE:FREQ=WEEKLY;COUNT=3\nEND:VEVENT\n"
        + "BEGIN:VEVENT\nUID:weekly@t\nRECURRENCE-ID;VALUE=DATE:20260112\n"
          "DTSTART;VALUE=DATE:20260113\nSUMMARY:Sportdag\nEND:VEVENT\n")
    found, _ = parse_holidays(text, source_name="t.ics")
    assert sorted(found) == [
        (date(2025, 12, 31), date(2026, 1, 2), "Oud en nieuw"),
        (date(2026, 1, 5), date(2026, 1, 5), "Sportdag"),
        (date(2026, 1, 13), date(2026, 1, 13), "Sportdag"),  # moved from the 12th
        (date(2026, 1, 19), date(2026, 1, 19), "Sportdag"),
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("not a calendar", "not an iCalendar file"),
    ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20251018\nSUMMARY:x\nEND:VEVENT\n",
     "not an iCalendar file"),
    (CALENDAR.format(""), "has no events"),
    (CALENDAR.format(event("DTSTART;VALUE=DATE:20251018")), "event 1 (UID u@t): it has no SUMMARY"),
    (CALENDAR.format(event("SUMMARY:Herfst")), "event 1 (Herfst): it has no DTSTART"),
    (CALENDAR.format(event("DTSTART;VALUE=DATE:20251018", "DTEND;VALUE=DATE:20251010", "SUMMARY:H")),
     "DTEND 2025-10-10 is before DTSTART"),
    (CALENDAR.format(event("DTSTART;VALUE=DATE:20251018", "DTEND:20251020T000000", "SUMMARY:H")),
     "must both be dates or both date-times"),
    (CALENDAR.format(event("DTSTART;VALUE=DATE:20251018", "SUMMARY:H", "RRULE:FREQ=SOMETIMES")),
     "event 1 (H):"),
    (CALENDAR.format(event("DTSTART;VALUE=DATE:20251018", "SUMMARY:H", "RRULE:FREQ=DAILY;COUNT=5000")),
     "more than 1000"),
])
def test_bad_files_give_one_line(text: str, message: str) -> None:
    with pytest.raises(IcalError) as caught:
        parse_holidays(text, source_name="x.ics")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("x.ics: ")


def test_import_is_idempotent_and_one_transaction(db: tuple[Engine, str]) -> None:
    engine, _ = db
    first = import_holidays(engine, read("feestdagen.ics"), "all", source_name="f.ics")
    assert (first.added, first.existing, first.events) == (16, 0, 4)
    again = import_holidays(engine, read("feestdagen.ics"), "all", source_name="f.ics")
    assert (again.added, again.existing) == (0, 16)
    # The same file in another calendar is another set of holidays.
    assert import_holidays(engine, read("feestdagen.ics"), "region:noord", source_name="f").added == 16
    assert holiday_count(engine) == 32
    # A file with one bad event after good ones writes nothing.
    bad = CALENDAR.format(event("DTSTART;VALUE=DATE:20270101", "SUMMARY:Good")
                          + event("DTSTART;VALUE=DATE:2027-01-02", "SUMMARY:Bad"))
    with pytest.raises(IcalError, match="event 2 \\(Bad\\): DTSTART"):
        import_holidays(engine, bad, "all", source_name="bad.ics")
    assert holiday_count(engine) == 32
    with pytest.raises(CalendarError):
        import_holidays(engine, read("feestdagen.ics"), "region:Noord", source_name="f")


# --- CLI -------------------------------------------------------------------------------------------


def cli(url: str, *argv: str) -> int:
    return main([*argv, "--db", url])


def test_cli_import_show_list_delete(db: tuple[Engine, str], capsys: pytest.CaptureFixture[str]) -> None:
    engine, url = db
    set_school(engine, "linde", region="Noord")
    noord = str(FIXTURES / "schoolvakanties-noord-2025-2026.ics")
    assert cli(url, "import", "holidays", noord, "--region", "NOORD") == 0
    assert "5 holidays added, 0 already there" in capsys.readouterr().out
    assert cli(url, "import", "holidays", noord, "--region", "noord") == 0
    assert "0 holidays added, 5 already there" in capsys.readouterr().out
    assert cli(url, "import", "holidays", str(FIXTURES / "feestdagen.ics"), "--all") == 0
    assert cli(url, "import", "holidays", noord, "--board", "south") == 0
    assert cli(url, "import", "holidays", noord, "--school", "north/eik") == 0
    capsys.readouterr()

    assert cli(url, "calendar", "show", "--school", "linde", "--from", "2025-10-24", "--days", "4",
               "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["school"] == "north/linde" and shown["timezone"] == "Europe/Amsterdam"
    assert shown["hours"] == {"start": "08:30", "end": "15:30"} and shown["school_days"] == [1, 2, 3, 4, 5]
    assert [(d["date"], d["school_day"], d["holiday"]) for d in shown["days"]] == [
        ("2025-10-24", False, "Herfstvakantie"), ("2025-10-25", False, "Herfstvakantie"),
        ("2025-10-26", False, "Herfstvakantie"), ("2025-10-27", True, None)]
    assert shown["days"][3]["session"] == {"start": "2025-10-27T08:30:00+01:00",
                                           "end": "2025-10-27T15:30:00+01:00"}
    assert shown["holidays"] == [{"starts_on": "2025-10-18", "ends_on": "2025-10-26",
                                  "name": "Herfstvakantie", "kind": "holiday", "calendar": "region:noord"}]
    assert cli(url, "calendar", "show", "--school", "linde", "--from", "2025-10-27", "--days", "1") == 0
    table = capsys.readouterr().out
    assert "hours: 08:30-15:30" in table and "2025-10-27  Mon  yes" in table

    assert cli(url, "calendar", "list", "--calendar", "board:south") == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 5 and listed[0] == "board:south\t2025-10-18\t2025-10-26\tHerfstvakantie\tholiday"
    assert cli(url, "calendar", "list") == 0
    assert any(line.startswith("school:north/eik\t") for line in capsys.readouterr().out.splitlines())

    assert cli(url, "calendar", "delete", "--calendar", "school:eik", "--name", "Studiedag") == 0
    assert "deleted 1 holidays" in capsys.readouterr().out
    assert cli(url, "calendar", "delete", "--calendar", "school:eik", "--name", "Studiedag") == 1
    assert cli(url, "calendar", "delete", "--calendar", "region:noord") == 0
    assert "deleted 5 holidays" in capsys.readouterr().out
    assert holiday_count(engine) == 16 + 5 + 4


@pytest.mark.parametrize(("argv", "message"), [
    (["import", "holidays", "bad-dtstart.ics", "--all"], "event 1 (Herfstvakantie): DTSTART"),
    (["import", "holidays", "missing.ics", "--all"], "missing.ics"),
    (["import", "holidays", "feestdagen.ics", "--board", "nope"], "no board with id 'nope'"),
    (["import", "holidays", "feestdagen.ics", "--school", "nope"], "no school 'nope'"),
    (["import", "holidays", "feestdagen.ics", "--region", " "], "a region needs a name"),
    (["calendar", "show", "--school", "linde", "--from", "24-10-2025"], "--from '24-10-2025'"),
    (["calendar", "show", "--school", "linde", "--days", "0"], "--days"),
    (["calendar", "list", "--calendar", "everyone"], "calendar 'everyone' is not one of"),
])
def test_cli_bad_input_is_one_line(db: tuple[Engine, str], capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str) -> None:
    engine, url = db
    monkeypatch.chdir(FIXTURES)
    assert cli(url, *argv) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error
    assert holiday_count(engine) == 0


def test_cli_import_needs_exactly_one_scope(db: tuple[Engine, str]) -> None:
    _, url = db
    with pytest.raises(SystemExit) as none:
        cli(url, "import", "holidays", str(FIXTURES / "feestdagen.ics"))
    with pytest.raises(SystemExit) as two:
        cli(url, "import", "holidays", str(FIXTURES / "feestdagen.ics"), "--all", "--region", "noord")
    assert none.value.code == two.value.code == 2


# --- the metric ------------------------------------------------------------------------------------


def test_in_session_families(db: tuple[Engine, str]) -> None:
    engine, _ = db
    set_school(engine, "beuk", timezone="Europe/Lisbon")
    set_school(engine, "linde", region="noord")
    add_holiday(engine, "region:noord", "2025-10-18", "2025-10-26", "Herfst noord")
    with engine.connect() as conn:
        calendars = load_calendars(conn, "Europe/Amsterdam")
    names = {pk(engine, "linde"): ("north", "linde"), pk(engine, "eik"): ("north", "eik"),
             pk(engine, "beuk"): ("south", "beuk")}

    def values(now: float) -> dict[tuple[str, ...], float]:
        [family] = in_session_families(calendars, names, now)
        assert family.name == "schoolnet_school_in_session" and family.type == "gauge"
        assert family.labelnames == ("board", "school")
        assert "each scrape" in family.help and "time zone" in family.help and "holidays" in family.help
        return {labels: value for _, labels, value in family.rows}

    # Wednesday 22 October 08:45 in Amsterdam (07:45 in Lisbon); Linde is on holiday.
    assert values(at(AMS, 2025, 10, 22, 8, 45)) == {
        ("north", "linde"): 0, ("north", "eik"): 1, ("south", "beuk"): 0}
    # 15:45 in Amsterdam is 14:45 in Lisbon.
    assert values(at(AMS, 2025, 10, 22, 15, 45)) == {
        ("north", "linde"): 0, ("north", "eik"): 0, ("south", "beuk"): 1}
    assert values(at(AMS, 2025, 10, 27, 10)) == {
        ("north", "linde"): 1, ("north", "eik"): 1, ("south", "beuk"): 1}
    # A school without a calendar gets no series (no made-up value).
    [family] = in_session_families({}, names, at(AMS, 2025, 10, 27, 9))
    assert family.rows == []


# --- kinds of days: public holidays and exam periods -----------------------------------------------


def add_kinded(engine: Engine, calendar: str, first: str, last: str, name: str, kind: str) -> None:
    with writer(engine) as conn, conn.begin():
        conn.execute(holidays.insert().values(calendar=calendar, starts_on=first, ends_on=last,
                                              name=name, kind=kind, created_at=0.0))


def test_public_holidays_are_days_without_school_and_exams_are_school_days() -> None:
    calendar = SchoolCalendar(AMS, DEFAULT_DAY, [(date(2025, 10, 20), date(2025, 10, 24), "Herfst")],
                              public_holidays=[(date(2026, 4, 27), date(2026, 4, 27), "Koningsdag")],
                              exam_periods=[(date(2026, 5, 11), date(2026, 5, 22), "Centraal examen")])
    koningsdag = date(2026, 4, 27)
    assert calendar.is_holiday(koningsdag) == "Koningsdag" and not calendar.is_school_day(koningsdag)
    assert calendar.is_public_holiday(koningsdag) == "Koningsdag"
    assert not calendar.in_session(at(AMS, 2026, 4, 27, 10, 0))
    # A school holiday is no public holiday.
    assert calendar.is_holiday(date(2025, 10, 21)) == "Herfst"
    assert calendar.is_public_holiday(date(2025, 10, 21)) is None
    # An exam day is a school day as usual.
    exam_day = date(2026, 5, 12)
    assert calendar.exam_period(exam_day) == "Centraal examen" and calendar.is_school_day(exam_day)
    assert calendar.in_session(at(AMS, 2026, 5, 12, 10, 0))
    assert calendar.exam_period(date(2026, 5, 23)) is None and calendar.exam_period(date(2026, 5, 10)) is None


def test_next_session_skips_weekends_and_holidays() -> None:
    calendar = SchoolCalendar(AMS, DEFAULT_DAY, [(date(2025, 10, 18), date(2025, 10, 26), "Herfst")])
    # Friday 17 October 16:00: the next session is after the autumn break, Monday 27 (CET).
    start, end = calendar.next_session(at(AMS, 2025, 10, 17, 16, 0)) or (0.0, 0.0)
    assert (start, end) == (at(AMS, 2025, 10, 27, 8, 30), at(AMS, 2025, 10, 27, 15, 30))
    # At 08:30 itself the session starting then is the next; a minute later, tomorrow's.
    assert calendar.next_session(at(AMS, 2025, 10, 16, 8, 30)) == (at(AMS, 2025, 10, 16, 8, 30),
                                                                   at(AMS, 2025, 10, 16, 15, 30))
    assert calendar.next_session(at(AMS, 2025, 10, 16, 8, 31))[0] == at(AMS, 2025, 10, 17, 8, 30)  # type: ignore[index]
    never = SchoolCalendar(AMS, DEFAULT_DAY, [(date(2025, 1, 1), date(2027, 1, 1), "closed")])
    assert never.next_session(at(AMS, 2025, 6, 1, 12, 0)) is None


def test_kinds_are_read_from_the_store(db: tuple[Engine, str]) -> None:
    engine, _ = db
    add_kinded(engine, "all", "2026-04-27", "2026-04-27", "Koningsdag", "public")
    add_kinded(engine, "all", "2026-05-11", "2026-05-22", "Centraal examen", "exams")
    add_kinded(engine, "all", "2026-05-25", "2026-05-25", "Studiedag", "holiday")
    with engine.connect() as conn:
        single = load_calendar(conn, pk(engine, "linde"), "Europe/Amsterdam")
        every = load_calendars(conn, "Europe/Amsterdam")[pk(engine, "linde")]
    for calendar in (single, every):
        assert calendar.is_public_holiday(date(2026, 4, 27)) == "Koningsdag"
        assert calendar.is_holiday(date(2026, 4, 27)) == "Koningsdag"
        assert calendar.exam_period(date(2026, 5, 12)) == "Centraal examen"
        assert calendar.is_school_day(date(2026, 5, 12))
        assert calendar.is_holiday(date(2026, 5, 25)) == "Studiedag"
        assert calendar.is_public_holiday(date(2026, 5, 25)) is None


def test_cli_kinds_import_reclassify_add_list_show_delete(db: tuple[Engine, str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    engine, url = db
    feestdagen = str(FIXTURES / "feestdagen.ics")
    assert cli(url, "import", "holidays", feestdagen, "--all", "--kind", "public") == 0
    assert "16 holidays added, 0 already there, from 4 events" in capsys.readouterr().out
    with engine.connect() as conn:
        assert set(conn.scalars(select(holidays.c.kind))) == {"public"}
    # The same feed again as school holidays: nothing added, every day reclassified.
    assert cli(url, "import", "holidays", feestdagen, "--all", "--kind", "holiday") == 0
    assert "0 holidays added, 16 already there (16 of them now of kind holiday)" in capsys.readouterr().out
    assert cli(url, "import", "holidays", feestdagen, "--all", "--kind", "public") == 0
    capsys.readouterr()

    assert cli(url, "calendar", "add", "--calendar", "school:linde", "--from", "2026-05-11",
               "--to", "2026-05-22", "--name", "Centraal examen", "--kind", "exams") == 0
    assert "added" in capsys.readouterr().out
    assert cli(url, "calendar", "add", "--calendar", "school:linde", "--from", "2026-05-11",
               "--to", "2026-05-22", "--name", "Centraal examen", "--kind", "exams") == 0
    assert "already there" in capsys.readouterr().out
    assert cli(url, "calendar", "list", "--kind", "exams") == 0
    assert capsys.readouterr().out == "school:north/linde\t2026-05-11\t2026-05-22\tCentraal examen\texams\n"

    assert cli(url, "calendar", "show", "--school", "linde", "--from", "2026-04-27", "--days", "1",
               "--json") == 0
    [day] = json.loads(capsys.readouterr().out)["days"]
    assert (day["school_day"], day["holiday"], day["public_holiday"], day["exam_period"]) == (
        False, "Koningsdag", "Koningsdag", None)
    assert cli(url, "calendar", "show", "--school", "linde", "--from", "2026-05-12", "--days", "1",
               "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["days"][0]["school_day"], shown["days"][0]["exam_period"]) == (True, "Centraal examen")
    assert shown["holidays"][0]["kind"] == "exams"
    assert cli(url, "calendar", "show", "--school", "linde", "--from", "2026-04-27", "--days", "1") == 0
    assert "2026-04-27  Mon  no          Koningsdag (public holiday)" in capsys.readouterr().out
    # Another school has no exams.
    assert cli(url, "calendar", "show", "--school", "eik", "--from", "2026-05-12", "--days", "1",
               "--json") == 0
    assert json.loads(capsys.readouterr().out)["days"][0]["exam_period"] is None

    assert cli(url, "calendar", "delete", "--calendar", "all", "--kind", "exams") == 1
    assert "no holidays of kind exams in calendar all" in capsys.readouterr().err
    assert cli(url, "calendar", "delete", "--calendar", "school:linde", "--kind", "exams") == 0
    assert holiday_count(engine) == 16


@pytest.mark.parametrize(("argv", "message"), [
    (["calendar", "add", "--calendar", "all", "--from", "2026-05-22", "--to", "2026-05-11", "--name", "x"],
     "--to 2026-05-11 is before --from 2026-05-22"),
    (["calendar", "add", "--calendar", "all", "--from", "22-05-2026", "--name", "x"], "--from '22-05-2026'"),
    (["calendar", "add", "--calendar", "all", "--from", "2026-05-22", "--name", " "], "--name must not"),
    (["calendar", "add", "--calendar", "nowhere", "--from", "2026-05-22", "--name", "x"],
     "calendar 'nowhere'"),
])
def test_cli_add_bad_input_is_one_line(db: tuple[Engine, str], capsys: pytest.CaptureFixture[str],
                                       argv: list[str], message: str) -> None:
    engine, url = db
    assert cli(url, *argv) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert holiday_count(engine) == 0


def test_a_kind_that_is_not_one_is_refused(db: tuple[Engine, str]) -> None:
    engine, url = db
    with pytest.raises(SystemExit) as caught:
        cli(url, "import", "holidays", str(FIXTURES / "feestdagen.ics"), "--all", "--kind", "vacation")
    assert caught.value.code == 2
    with pytest.raises(CalendarError, match="kind 'vacation' is not one of holiday, public, exams"):
        import_holidays(engine, read("feestdagen.ics"), "all", source_name="f.ics", kind="vacation")
    assert holiday_count(engine) == 0
