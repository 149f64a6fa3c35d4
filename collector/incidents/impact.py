"""Impact and urgency of an incident: what the sector's advice asks before calling for help
(is it lessons or only administration, how fast must it be solved, which supplier, and
who contacts them), answered from the calendar, the contract and the board's choice.

Pure: ``assess`` takes the calendar, the terms and the contact; no store, no wall clock.

The rules, as an ICT coordinator reads them:

Impact
- "teaching" when the problem overlaps a school session of the school between its start
  and now (school hours on a school day: not a weekend, holiday or public holiday);
- "administration" otherwise: so far it only hit the office, the evening, the weekend;
- an agent that went silent ("silent") is "administration" always: what stopped is the
  monitoring; whether lessons are hit is for the other kinds to show.

Urgency
- "high" when any of:
  - today (the school's local date) is a school day in an exam period (calendar kind
    "exams"), for every kind but "silent": exams need the line and the Wi-Fi;
  - the provider is responsible and the SLA restore time has run out, or less than a
    quarter of it is left (counted on the contract's SLA clock: collector/incidents/sla.py);
  - an outage while the school is in session now;
- "low" when none of that holds, the school is not in session now and its next session
  starts more than 24 hours from now (a weekend, a holiday week), or there is none in the
  next year;
- "normal" otherwise (in lessons, or the next session is within a day).

The SLA clock runs from ``sla_from`` (when the provider was told: the escalation) where
the caller knows it, else from the start of the problem. Only a provider's problem has an
SLA; for the school's own network (``responsible="school"``) there is none.

Reasons are kept twice over: each ``Reason`` has a stable ``code`` and JSON-able
``params`` (times as Unix seconds and as the school's local ISO time, durations in
seconds), so the evidence pack can say them in Dutch; ``Reason.english()`` says them in
English. REASON_CODES lists every code and its params.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector.calendar import SchoolCalendar
from collector.contracts import ConnectionInfo
from collector.incidents.contacts import Contact
from collector.incidents.model import Impact, IncidentKind, Responsible, SlaClock, Urgency
from collector.incidents.sla import (
    BUSINESS_HOURS,
    MAX_SEARCH_DAYS,
    effective_clock,
    sla_deadline,
    sla_elapsed,
)
from collector.terms import Terms

# "Soon": a session within this is one to get ready for (the next morning).
NEXT_SESSION_SOON_SECONDS = 24 * 3600.0
# Less than this share of the restore time left: the SLA is at risk.
SLA_AT_RISK_SHARE = 0.25

# code -> its params (what each means is in english() below).
REASON_CODES: Mapping[str, tuple[str, ...]] = {
    "teaching_hours": ("school_seconds",),
    "outside_school_hours": (),
    "monitoring_only": (),
    "exam_period": ("name", "date"),
    "outage_in_session": (),
    "sla_passed": ("restore_seconds", "clock", "deadline_at", "deadline_local"),
    "sla_near": ("restore_seconds", "clock", "remaining_seconds", "deadline_at", "deadline_local"),
    "sla_running": ("restore_seconds", "clock", "remaining_seconds", "deadline_at", "deadline_local"),
    "sla_no_deadline": ("restore_seconds", "clock", "days"),
    "no_terms": (),
    "no_sla": (),
    "school_network": (),
    "in_session_now": (),
    "session_soon": ("next_session_at", "next_session_local", "seconds_until"),
    "no_session_soon": ("next_session_at", "next_session_local", "seconds_until"),
    "no_contact": (),
}


@dataclass(frozen=True)
class Reason:
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def english(self) -> str:
        return _ENGLISH[self.code](self.params)

    def as_document(self) -> dict[str, Any]:
        return {"code": self.code, "params": dict(self.params)}


@dataclass(frozen=True)
class Supplier:
    """Who must act: the line's provider (its name and support desk), or the school."""

    responsible: Responsible
    name: str | None  # the provider's name; None for the school's own network
    support_contact: str | None = None

    def english(self) -> str:
        if self.responsible == "school":
            return "the school's own network"
        name = self.name or "the line's provider (no line known)"
        return f"{name} (support: {self.support_contact})" if self.support_contact else name

    def as_document(self) -> dict[str, Any]:
        return {"responsible": self.responsible, "name": self.name, "support_contact": self.support_contact}


@dataclass(frozen=True)
class Assessment:
    impact: Impact
    urgency: Urgency
    reasons: tuple[Reason, ...]
    sla_restore_seconds: float | None  # the contract's restore time; None = none applies
    sla_clock: SlaClock | None  # the clock it counts on; None when no restore time applies
    sla_deadline_at: float | None  # when it runs out; None: no SLA, or not within MAX_SEARCH_DAYS
    sla_elapsed_seconds: float | None  # SLA time used up to now
    supplier: Supplier
    contact: Contact | None  # None: no escalation contact known (a "no_contact" reason says so)

    def english(self) -> tuple[str, ...]:
        return tuple(reason.english() for reason in self.reasons)

    def as_document(self) -> dict[str, Any]:
        """JSON-able, for incidents.assessment; from_document reads it back."""
        return {"impact": self.impact, "urgency": self.urgency,
                "reasons": [reason.as_document() for reason in self.reasons],
                "sla_restore_seconds": self.sla_restore_seconds, "sla_clock": self.sla_clock,
                "sla_deadline_at": self.sla_deadline_at, "sla_elapsed_seconds": self.sla_elapsed_seconds,
                "supplier": self.supplier.as_document(),
                "contact": None if self.contact is None else self.contact.as_document()}

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Assessment:
        supplier = document["supplier"]
        contact = document.get("contact")
        return cls(
            impact=document["impact"], urgency=document["urgency"],
            reasons=tuple(Reason(r["code"], r.get("params") or {}) for r in document["reasons"]),
            sla_restore_seconds=document.get("sla_restore_seconds"), sla_clock=document.get("sla_clock"),
            sla_deadline_at=document.get("sla_deadline_at"),
            sla_elapsed_seconds=document.get("sla_elapsed_seconds"),
            supplier=Supplier(supplier["responsible"], supplier.get("name"), supplier.get("support_contact")),
            contact=None if contact is None else Contact(contact.get("name"), contact.get("email"),
                                                         contact.get("phone"), contact["role"]))


def assess(kind: IncidentKind, responsible: Responsible, started_at: float, now: float,
           calendar: SchoolCalendar, terms: Terms | None, contact: Contact | None, *,
           line: ConnectionInfo | None = None, sla_from: float | None = None) -> Assessment:
    """Impact, urgency and why, for a problem of ``kind`` that began at ``started_at`` and
    holds at ``now``. ``terms``: the line's terms in force (None: none known); ``line``:
    the line (its provider and support desk name the supplier); ``sla_from``: when the SLA
    clock started (the escalation), default ``started_at``. See the module's rules."""
    reasons: list[Reason] = []
    end = max(now, started_at)
    in_session_now = calendar.in_session(now)

    # Impact.
    if kind == "silent":
        impact: Impact = "administration"
        reasons.append(Reason("monitoring_only"))
    else:
        school_seconds = calendar.school_seconds(started_at, end)
        if school_seconds > 0 or in_session_now:
            impact = "teaching"
            reasons.append(Reason("teaching_hours", {"school_seconds": school_seconds}))
        else:
            impact = "administration"
            reasons.append(Reason("outside_school_hours"))

    high = False
    # Exams.
    today = calendar.local_date(now)
    exams = calendar.exam_period(today)
    if kind != "silent" and exams is not None and calendar.is_school_day(today):
        high = True
        reasons.append(Reason("exam_period", {"name": exams, "date": today.isoformat()}))

    # An outage in lessons.
    if kind == "outage" and in_session_now:
        high = True
        reasons.append(Reason("outage_in_session"))

    # The SLA.
    restore: float | None = None
    clock: SlaClock | None = None
    deadline_at: float | None = None
    elapsed: float | None = None
    if responsible == "school":
        reasons.append(Reason("school_network"))
    elif terms is None:
        reasons.append(Reason("no_terms"))
    elif not terms.sla_restore_seconds:
        reasons.append(Reason("no_sla"))
    else:
        restore = terms.sla_restore_seconds
        clock = "business" if effective_clock(terms.sla_clock) == "business" else "24x7"
        start = started_at if sla_from is None else sla_from
        elapsed = sla_elapsed(start, now, clock, calendar)
        deadline = sla_deadline(start, restore, clock, calendar)
        remaining = restore - elapsed
        if math.isinf(deadline):
            reasons.append(Reason("sla_no_deadline", {"restore_seconds": restore, "clock": clock,
                                                      "days": MAX_SEARCH_DAYS}))
        else:
            deadline_at = deadline
            sla: dict[str, Any] = {"restore_seconds": restore, "clock": clock, "deadline_at": deadline,
                                   "deadline_local": calendar.local_datetime(deadline).isoformat()}
            if remaining <= 0:
                high = True
                reasons.append(Reason("sla_passed", sla))
            elif remaining < SLA_AT_RISK_SHARE * restore:
                high = True
                reasons.append(Reason("sla_near", {**sla, "remaining_seconds": remaining}))
            else:
                reasons.append(Reason("sla_running", {**sla, "remaining_seconds": remaining}))

    # When lessons come next.
    low = False
    if in_session_now:
        reasons.append(Reason("in_session_now"))
    else:
        upcoming = calendar.next_session(now)
        params: dict[str, Any]
        if upcoming is None:
            params = {"next_session_at": None, "next_session_local": None, "seconds_until": None}
        else:
            params = {"next_session_at": upcoming[0],
                      "next_session_local": calendar.local_datetime(upcoming[0]).isoformat(),
                      "seconds_until": upcoming[0] - now}
        if upcoming is None or upcoming[0] - now > NEXT_SESSION_SOON_SECONDS:
            low = True
            reasons.append(Reason("no_session_soon", params))
        else:
            reasons.append(Reason("session_soon", params))

    urgency: Urgency = "high" if high else "low" if low else "normal"
    if contact is None:
        reasons.append(Reason("no_contact"))
    if responsible == "school":
        supplier = Supplier("school", None)
    else:
        supplier = Supplier("provider", line.provider if line else None,
                            line.support_contact if line else None)
    return Assessment(impact, urgency, tuple(reasons), restore, clock, deadline_at, elapsed, supplier,
                      contact)


# --- English ------------------------------------------------------------------------------------


def duration_english(seconds: float) -> str:
    """8 h, 1 h 30 min, 45 min, 2 d 4 h (rounded to the minute)."""
    minutes = max(0, round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    return " ".join(parts) or "0 min"


def _local(text: str | None) -> str:
    # An ISO time with its offset, as the school's clock read it: "Mon 27 Oct 2025 14:00".
    return "unknown" if text is None else datetime.fromisoformat(text).strftime("%a %d %b %Y %H:%M")


def _clock(clock: str) -> str:
    if clock == "business":
        start, end = BUSINESS_HOURS
        return f"business hours, Mon-Fri {start:%H:%M}-{end:%H:%M}, public holidays off"
    return "around the clock"


def _sla(p: Mapping[str, Any]) -> str:
    return f"{duration_english(p['restore_seconds'])} ({_clock(p['clock'])})"


_ENGLISH: dict[str, Any] = {
    "teaching_hours": lambda p: (
        f"The problem overlapped school hours ({duration_english(p['school_seconds'])} of school time so "
        "far): it affects teaching." if p["school_seconds"] > 0 else
        "The problem started just now, in school hours: it affects teaching."),
    "outside_school_hours": lambda p: (
        "The problem has not touched school hours so far: it affects administration, not lessons."),
    "monitoring_only": lambda p: (
        "Only the monitoring is affected (an agent stopped reporting); lessons are not known to be."),
    "exam_period": lambda p: f"Today ({p['date']}) is a school day in the exam period \"{p['name']}\": "
                             "a problem now is urgent.",
    "outage_in_session": lambda p: "The line is down while the school is in session.",
    "sla_passed": lambda p: f"The contract's restore time of {_sla(p)} ran out at "
                            f"{_local(p['deadline_local'])}.",
    "sla_near": lambda p: f"Less than a quarter of the contract's restore time of {_sla(p)} is left: "
                          f"{duration_english(p['remaining_seconds'])}, until {_local(p['deadline_local'])}.",
    "sla_running": lambda p: f"{duration_english(p['remaining_seconds'])} of the contract's restore time of "
                             f"{_sla(p)} is left, until {_local(p['deadline_local'])}.",
    "sla_no_deadline": lambda p: f"The contract's restore time of {_sla(p)} does not run out within "
                                 f"{p['days']} days: the calendar leaves no business hours.",
    "no_terms": lambda p: "No contract terms are known for the line: no restore time to hold the "
                          "provider to.",
    "no_sla": lambda p: "The contract states no restore time.",
    "school_network": lambda p: "The school's own network is responsible: no provider's SLA applies.",
    "in_session_now": lambda p: "The school is in session now.",
    "session_soon": lambda p: f"The school is not in session now; the next session starts in "
                              f"{duration_english(p['seconds_until'])} ({_local(p['next_session_local'])}).",
    "no_session_soon": lambda p: (
        "The school is not in session now and has no session in the next year."
        if p["next_session_at"] is None else f"The school is not in session now and the next session is "
             f"{duration_english(p['seconds_until'])} away ({_local(p['next_session_local'])})."),
    "no_contact": lambda p: (
        "No escalation contact with an e-mail address or phone number is set for this school: set one "
        "with `board set BOARD escalation=central escalation_email=...` or "
        "`school set SCHOOL contact_email=...`."),
}
