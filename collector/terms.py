"""A connection's contract terms: the speeds it promises, from a date on.

European law (Regulation 2015/2120, art. 4(1)(d), and BEREC's guidelines) has a fixed-line
contract state, per direction, the minimum, normally available, maximum and advertised
speed. Providers state the advertised one always; the others where the law of the country
asks for them (the Dutch and German regulators do), so they may be unknown (None).

A connection has a list of terms: a new one starts when the contract changes (an upgrade
mid-year), and every result is judged by the terms in force on the school's local date.
Speeds are bytes per second, as everywhere in the store.

The SLA times (response, restore) count on the contract's ``sla_clock``: "24x7" (every
hour; None means this too) or "business" (Monday to Friday 08:00-18:00 on the school's
clock, public holidays off): collector/incidents/sla.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

Direction = Literal["download", "upload"]
DIRECTIONS: tuple[Direction, ...] = ("download", "upload")
# The four speeds of the EU transparency rules, as the regulators name them.
Level = Literal["advertised", "minimum", "normal", "maximum"]
LEVELS: tuple[Level, ...] = ("advertised", "minimum", "normal", "maximum")
# Which hours an SLA time counts (collector/incidents/model.py SlaClock says the same).
SLA_CLOCKS = ("24x7", "business")


@dataclass(frozen=True)
class Terms:
    starts_on: date
    ends_on: date | None  # inclusive; None = open-ended
    download_advertised: float
    upload_advertised: float
    download_minimum: float | None = None
    upload_minimum: float | None = None
    download_normal: float | None = None
    upload_normal: float | None = None
    download_maximum: float | None = None
    upload_maximum: float | None = None
    monthly_cost: float | None = None
    currency: str | None = None
    sla_response_seconds: float | None = None
    sla_restore_seconds: float | None = None
    sla_clock: str | None = None  # "24x7" | "business" (SLA_CLOCKS); None = "24x7"

    def speed(self, direction: Direction, level: Level) -> float | None:
        """Bytes per second; None where the contract does not state that speed."""
        value: float | None = getattr(self, f"{direction}_{level}")
        return value

    def in_force_on(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)


def terms_on(terms: Sequence[Terms], day: date) -> Terms | None:
    """The terms in force on ``day``: of those that cover it, the one that started last
    (a new contract supersedes an old one left open-ended)."""
    current = [t for t in terms if t.in_force_on(day)]
    return max(current, key=lambda t: t.starts_on) if current else None
