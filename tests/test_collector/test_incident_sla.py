"""The SLA clock (collector/incidents/sla.py): 24x7 and business hours, across a weekend, a
public holiday, a school holiday and the clock changes. Every expected instant is worked
out by hand in the comments."""

from __future__ import annotations

import math
import random
import time as wall
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from collector.calendar import DEFAULT_DAY, SchoolCalendar
from collector.incidents.sla import sla_deadline, sla_elapsed

AMS = ZoneInfo("Europe/Amsterdam")
HOUR = 3600.0
PLAIN = SchoolCalendar(AMS, DEFAULT_DAY, [])


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=AMS).timestamp()  # type: ignore[misc]


def local(t: float) -> datetime:
    return datetime.fromtimestamp(t, AMS).replace(tzinfo=None)


def one_day(day: date, name: str) -> tuple[date, date, str]:
    return (day, day, name)


def test_24x7_counts_every_second_and_none_means_24x7() -> None:
    start = at(2025, 10, 10, 16, 0)  # a Friday
    assert sla_elapsed(start, start + 70 * HOUR, "24x7", PLAIN) == 70 * HOUR
    assert sla_elapsed(start, start + 70 * HOUR, None, PLAIN) == 70 * HOUR
    assert sla_deadline(start, 8 * HOUR, None, PLAIN) == start + 8 * HOUR
    assert sla_elapsed(start, start - 1, "24x7", PLAIN) == 0.0


def test_24x7_across_the_autumn_change_is_real_time() -> None:
    # Saturday 25 October 2025 12:00 CEST (UTC+2); the clocks go back at 03:00 on Sunday,
    # so 24 real hours later the clock reads Sunday 11:00 CET.
    start = at(2025, 10, 25, 12, 0)
    assert local(sla_deadline(start, 24 * HOUR, "24x7", PLAIN)) == datetime(2025, 10, 26, 11, 0)
    # Friday 16:00 CEST to Monday 14:00 CET: 70 hours on the clock, 71 real ones.
    assert sla_elapsed(at(2025, 10, 24, 16, 0), at(2025, 10, 27, 14, 0), "24x7", PLAIN) == 71 * HOUR


def test_business_hours_across_a_weekend() -> None:
    friday = at(2025, 10, 10, 16, 0)
    # 8 business hours from Friday 16:00: 2 on Friday (16-18), none at the weekend, 6 on
    # Monday (08-14): Monday 13 October 14:00.
    deadline = sla_deadline(friday, 8 * HOUR, "business", PLAIN)
    assert local(deadline) == datetime(2025, 10, 13, 14, 0)
    assert sla_elapsed(friday, deadline, "business", PLAIN) == 8 * HOUR
    # The weekend counts nothing; Friday evening neither.
    assert sla_elapsed(at(2025, 10, 10, 18, 0), at(2025, 10, 13, 8, 0), "business", PLAIN) == 0.0
    # 4 business hours: 2 on Friday, 2 on Monday: Monday 10:00.
    assert local(sla_deadline(friday, 4 * HOUR, "business", PLAIN)) == datetime(2025, 10, 13, 10, 0)


def test_business_hours_across_a_public_holiday_monday() -> None:
    # Whit Monday (Pinkstermaandag) 9 June 2025 is a public holiday: 4 business hours from
    # Friday 6 June 16:00 are 2 on Friday and 2 on Tuesday: Tuesday 10 June 10:00.
    calendar = SchoolCalendar(AMS, DEFAULT_DAY, [],
                              public_holidays=[one_day(date(2025, 6, 9), "Pinkstermaandag")])
    friday = at(2025, 6, 6, 16, 0)
    assert local(sla_deadline(friday, 4 * HOUR, "business", calendar)) == datetime(2025, 6, 10, 10, 0)
    # Without the public holiday it would be Monday 10:00.
    assert local(sla_deadline(friday, 4 * HOUR, "business", PLAIN)) == datetime(2025, 6, 9, 10, 0)


def test_business_hours_across_koningsdag() -> None:
    # Koningsdag, Monday 27 April 2026: 8 business hours from Friday 24 April 16:00 are 2 on
    # Friday and 6 on Tuesday 28 April: 14:00.
    calendar = SchoolCalendar(AMS, DEFAULT_DAY, [],
                              public_holidays=[one_day(date(2026, 4, 27), "Koningsdag")])
    friday = at(2026, 4, 24, 16, 0)
    deadline = sla_deadline(friday, 8 * HOUR, "business", calendar)
    assert local(deadline) == datetime(2026, 4, 28, 14, 0)
    assert sla_elapsed(friday, deadline, "business", calendar) == 8 * HOUR
    assert sla_elapsed(at(2026, 4, 27, 0, 0), at(2026, 4, 28, 0, 0), "business", calendar) == 0.0
    # Around the clock the holiday changes nothing.
    assert sla_deadline(friday, 8 * HOUR, "24x7", calendar) == friday + 8 * HOUR


def test_a_school_holiday_does_not_stop_the_providers_business_day() -> None:
    # The autumn break (a school holiday, not a public one): Monday 20 October counts.
    calendar = SchoolCalendar(AMS, DEFAULT_DAY, [(date(2025, 10, 18), date(2025, 10, 26), "Herfst")])
    friday = at(2025, 10, 17, 16, 0)
    assert local(sla_deadline(friday, 8 * HOUR, "business", calendar)) == datetime(2025, 10, 20, 14, 0)


def test_business_hours_across_the_autumn_change() -> None:
    # Friday 24 October 2025 16:00 CEST; the clocks go back on Sunday 26. 8 business hours:
    # 2 on Friday, 6 on Monday 27 (CET): 14:00 on the clock, 71 real hours after the start.
    friday = at(2025, 10, 24, 16, 0)
    deadline = sla_deadline(friday, 8 * HOUR, "business", PLAIN)
    assert local(deadline) == datetime(2025, 10, 27, 14, 0)
    assert deadline - friday == 71 * HOUR
    # A business day is 10 hours on both sides of the change.
    assert sla_elapsed(at(2025, 10, 24, 0, 0), at(2025, 10, 25, 0, 0), "business", PLAIN) == 10 * HOUR
    assert sla_elapsed(at(2025, 10, 27, 0, 0), at(2025, 10, 28, 0, 0), "business", PLAIN) == 10 * HOUR


def test_business_hours_across_the_spring_change() -> None:
    # Friday 27 March 2026 17:00 CET; clocks forward on Sunday 29. 3 business hours: 1 on
    # Friday, 2 on Monday 30 (CEST): 10:00, 64 real hours after the start (65 on the clock).
    friday = at(2026, 3, 27, 17, 0)
    deadline = sla_deadline(friday, 3 * HOUR, "business", PLAIN)
    assert local(deadline) == datetime(2026, 3, 30, 10, 0)
    assert deadline - friday == 64 * HOUR


def test_edges_of_the_business_day() -> None:
    # Time that runs out at 18:00 ends at 18:00, not at 08:00 the next working day.
    assert local(sla_deadline(at(2025, 10, 10, 16, 0), 2 * HOUR, "business", PLAIN)) == \
        datetime(2025, 10, 10, 18, 0)
    # A start outside business hours waits for them: Saturday 10:00 + 1 h = Monday 09:00;
    # Tuesday 17:30 + 1 h = 30 min on Tuesday and 30 on Wednesday: 08:30.
    assert local(sla_deadline(at(2025, 10, 11, 10, 0), HOUR, "business", PLAIN)) == \
        datetime(2025, 10, 13, 9, 0)
    assert local(sla_deadline(at(2025, 10, 14, 17, 30), HOUR, "business", PLAIN)) == \
        datetime(2025, 10, 15, 8, 30)
    # No time at all runs out at once.
    start = at(2025, 10, 11, 10, 0)
    assert sla_deadline(start, 0, "business", PLAIN) == start


def test_a_business_clock_with_no_business_hours_gives_infinity_quickly() -> None:
    # A calendar whose public holidays cover every day for years: no business hour ever.
    calendar = SchoolCalendar(AMS, DEFAULT_DAY, [],
                              public_holidays=[(date(2025, 1, 1), date(2030, 12, 31), "closed")])
    began = wall.monotonic()
    assert math.isinf(sla_deadline(at(2025, 3, 3, 9, 0), 8 * HOUR, "business", calendar))
    assert sla_elapsed(at(2025, 3, 3, 9, 0), at(2025, 4, 3, 9, 0), "business", calendar) == 0.0
    assert wall.monotonic() - began < 1.0
    # An SLA longer than 400 days of business hours has no deadline we name either.
    assert math.isinf(sla_deadline(at(2025, 3, 3, 9, 0), 400 * 10 * HOUR, "business", PLAIN))


def test_the_deadline_is_where_the_elapsed_time_reaches_the_sla() -> None:
    calendar = SchoolCalendar(AMS, DEFAULT_DAY, [], public_holidays=[
        one_day(date(2025, 12, 25), "Kerst"), one_day(date(2025, 12, 26), "Tweede kerstdag"),
        one_day(date(2026, 1, 1), "Nieuwjaarsdag"), one_day(date(2026, 4, 27), "Koningsdag")])
    rng = random.Random(9)
    first, last = at(2025, 9, 1, 0, 0), at(2026, 6, 30, 0, 0)
    for _ in range(300):
        start = rng.uniform(first, last)
        seconds = rng.choice([900.0, 4 * HOUR, 8 * HOUR, 24 * HOUR, 5 * 24 * HOUR]) + rng.uniform(0, HOUR)
        for clock in ("24x7", "business"):
            deadline = sla_deadline(start, seconds, clock, calendar)
            assert sla_elapsed(start, deadline, clock, calendar) == pytest.approx(seconds, abs=1e-3)
            # And not a moment earlier: a second before, less had run.
            assert sla_elapsed(start, deadline - 1, clock, calendar) < seconds


def test_an_unknown_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="SLA clock 'office'"):
        sla_elapsed(0.0, 10.0, "office", PLAIN)
