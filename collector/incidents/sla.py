"""The SLA clock: how much of a period a contract's SLA times count, and when they run out.

A contract's SLA times (``Terms.sla_response_seconds``, ``sla_restore_seconds``) count on
its clock (``Terms.sla_clock``):

- ``"24x7"`` (and None, what contracts without a clock mean): every second counts;
- ``"business"``: only BUSINESS_HOURS on BUSINESS_DAYS, on the school's own clock (its time
  zone, from its calendar), and not on the calendar's public holidays. School holidays do
  not stop it: the provider's helpdesk works in the autumn break as on any weekday.

Business hours are worked out date by date on the local clock, so a business day is
08:00-18:00 on the clock (10 hours) also in the weeks the clocks change, and a 24x7 period
across a change is its real length (the night of the autumn change has 25 hours).

Pure: no store, no wall clock. ``sla_deadline`` looks at most MAX_SEARCH_DAYS days ahead;
when the SLA time does not run out within them (a business clock whose calendar is all
public holidays, or an SLA longer than a year of business hours) it returns ``math.inf``:
"no deadline we can name", which callers show as such and never as a date.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, time, timedelta

from collector.calendar import SchoolCalendar, local_instant

# Monday to Friday (ISO weekday numbers), 08:00 up to 18:00 local: the business hours of
# Dutch providers' business SLAs ("kantooruren", "werkdagen 8-18").
BUSINESS_DAYS = frozenset({1, 2, 3, 4, 5})
BUSINESS_HOURS = (time(8, 0), time(18, 0))
MAX_SEARCH_DAYS = 400

CLOCK_24X7 = "24x7"
CLOCK_BUSINESS = "business"


def effective_clock(clock: str | None) -> str:
    """The clock a contract's SLA counts on: None (no clock stated) is 24x7."""
    if clock is None or clock == CLOCK_24X7:
        return CLOCK_24X7
    if clock == CLOCK_BUSINESS:
        return CLOCK_BUSINESS
    raise ValueError(f"SLA clock {clock!r} is not one of 24x7, business")


def business_intervals(start: float, end: float, calendar: SchoolCalendar) -> Iterator[tuple[float, float]]:
    """The business hours inside [start, end), in time order."""
    if end <= start:
        return
    day, last = calendar.local_date(start), calendar.local_date(end)
    while day <= last:
        interval = _business_day(day, calendar)
        if interval is not None:
            low, high = max(interval[0], start), min(interval[1], end)
            if low < high:
                yield low, high
        day += timedelta(days=1)


def sla_elapsed(start: float, end: float, clock: str | None, calendar: SchoolCalendar) -> float:
    """The seconds of [start, end) that the SLA counts (0 when end <= start)."""
    if end <= start:
        return 0.0
    if effective_clock(clock) == CLOCK_24X7:
        return end - start
    return sum(high - low for low, high in business_intervals(start, end, calendar))


def sla_deadline(start: float, seconds: float, clock: str | None, calendar: SchoolCalendar) -> float:
    """The instant at which ``seconds`` of SLA time from ``start`` have run out: the
    earliest ``t`` with ``sla_elapsed(start, t) == seconds``. On a business clock that is
    inside business hours (an SLA time that runs out at 18:00 ends at 18:00, not the next
    morning). ``math.inf`` when it does not run out within MAX_SEARCH_DAYS days."""
    if seconds <= 0:
        return start
    if effective_clock(clock) == CLOCK_24X7:
        return start + seconds
    remaining = seconds
    day = calendar.local_date(start)
    for _ in range(MAX_SEARCH_DAYS + 1):
        interval = _business_day(day, calendar)
        if interval is not None and interval[1] > start:
            low = max(interval[0], start)
            if interval[1] - low >= remaining:
                return low + remaining
            remaining -= interval[1] - low
        day += timedelta(days=1)
    return math.inf


def _business_day(day: date, calendar: SchoolCalendar) -> tuple[float, float] | None:
    if day.isoweekday() not in BUSINESS_DAYS or calendar.is_public_holiday(day) is not None:
        return None
    return (local_instant(day, BUSINESS_HOURS[0], calendar.zone),
            local_instant(day, BUSINESS_HOURS[1], calendar.zone))
