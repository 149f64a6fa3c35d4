"""Impact and urgency (collector/incidents/impact.py): exams, weekends, holiday weeks, lessons,
the SLA at risk, the supplier and the contact, and reasons that say it in words and codes."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

from collector.calendar import DEFAULT_DAY, SchoolCalendar
from collector.contracts import ConnectionInfo
from collector.incidents.contacts import Contact
from collector.incidents.impact import REASON_CODES, Assessment, assess, duration_english
from collector.terms import Terms

AMS = ZoneInfo("Europe/Amsterdam")
HOUR = 3600.0
CALENDAR = SchoolCalendar(
    AMS, DEFAULT_DAY, [(date(2025, 10, 18), date(2025, 10, 26), "Herfstvakantie")],
    public_holidays=[(date(2026, 4, 27), date(2026, 4, 27), "Koningsdag")],
    # Monday 11 to Friday 22 May 2026 (with the weekend between).
    exam_periods=[(date(2026, 5, 11), date(2026, 5, 22), "Centraal examen")])
TERMS = Terms(starts_on=date(2025, 1, 1), ends_on=None, download_advertised=12.5e6,
              upload_advertised=12.5e6, sla_restore_seconds=8 * HOUR)
NO_SLA = Terms(starts_on=date(2025, 1, 1), ends_on=None, download_advertised=12.5e6, upload_advertised=12.5e6)
LINE = ConnectionInfo(id=1, school_id=1, slug="glas", provider="KPN Zakelijk", provider_id="kpn-zakelijk",
                      technology="fibre", role="main", networks=(), support_contact="servicedesk@kpn.example",
                      terms=(TERMS,))
CONTACT = Contact("Jan de Vries", "ict@primo.example", None, "central")


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=AMS).timestamp()  # type: ignore[misc]


def codes(assessment: Assessment) -> list[str]:
    return [reason.code for reason in assessment.reasons]


def test_an_outage_in_an_exam_week_is_high() -> None:
    # Tuesday 12 May 2026, 10:00; down since 09:45.
    result = assess("outage", "provider", at(2026, 5, 12, 9, 45), at(2026, 5, 12, 10, 0), CALENDAR,
                    TERMS, CONTACT, line=LINE)
    assert (result.impact, result.urgency) == ("teaching", "high")
    assert {"exam_period", "outage_in_session", "sla_running"} <= set(codes(result))
    exam = next(r for r in result.reasons if r.code == "exam_period")
    assert exam.params == {"name": "Centraal examen", "date": "2026-05-12"}
    assert result.english()[codes(result).index("exam_period")] == (
        'Today (2026-05-12) is a school day in the exam period "Centraal examen": a problem now is urgent.')


def test_in_an_exam_week_a_problem_of_the_evening_is_still_high() -> None:
    # Tuesday 19:00, since 18:30: not in lessons (administration), but the exams go on tomorrow.
    result = assess("bandwidth", "provider", at(2026, 5, 12, 18, 30), at(2026, 5, 12, 19, 0), CALENDAR,
                    TERMS, CONTACT, line=LINE)
    assert (result.impact, result.urgency) == ("administration", "high")


def test_the_same_outage_on_the_saturday_of_the_exam_weeks_is_low() -> None:
    # Saturday 16 May 2026 10:00, since 09:30: no school today, next session Monday 08:30.
    result = assess("outage", "provider", at(2026, 5, 16, 9, 30), at(2026, 5, 16, 10, 0), CALENDAR,
                    TERMS, CONTACT, line=LINE)
    assert (result.impact, result.urgency) == ("administration", "low")
    assert "exam_period" not in codes(result) and "no_session_soon" in codes(result)
    upcoming = next(r for r in result.reasons if r.code == "no_session_soon").params
    assert upcoming["next_session_local"] == "2026-05-18T08:30:00+02:00"
    assert upcoming["seconds_until"] == 46.5 * HOUR


def test_a_bandwidth_problem_in_lessons_is_teaching_and_normal() -> None:
    # Wednesday 8 October 2025, since 10:00, now 11:00; an 8 h restore time around the clock.
    started, now = at(2025, 10, 8, 10, 0), at(2025, 10, 8, 11, 0)
    result = assess("bandwidth", "provider", started, now, CALENDAR, TERMS, CONTACT, line=LINE)
    assert (result.impact, result.urgency) == ("teaching", "normal")
    assert (result.sla_restore_seconds, result.sla_clock) == (8 * HOUR, "24x7")
    assert result.sla_deadline_at == started + 8 * HOUR and result.sla_elapsed_seconds == HOUR
    assert result.supplier.english() == "KPN Zakelijk (support: servicedesk@kpn.example)"
    assert result.contact == CONTACT and "no_contact" not in codes(result)
    assert result.english()[0] == ("The problem overlapped school hours (1 h of school time so far): "
                                   "it affects teaching.")
    assert "7 h of the contract's restore time of 8 h (around the clock) is left, until " \
           "Wed 08 Oct 2025 18:00." in result.english()


def test_a_problem_across_a_holiday_week_is_low() -> None:
    # Tuesday 21 to Wednesday 22 October 2025: the autumn break; school again on Monday 27.
    result = assess("bandwidth", "provider", at(2025, 10, 21, 10, 0), at(2025, 10, 22, 10, 0), CALENDAR,
                    NO_SLA, CONTACT, line=LINE)
    assert (result.impact, result.urgency) == ("administration", "low")
    assert "no_sla" in codes(result) and result.sla_deadline_at is None
    # But with an 8 h restore time around the clock that ran out on Tuesday 18:00, it is high:
    # the provider's clock does not stop for the school's holiday.
    late = assess("bandwidth", "provider", at(2025, 10, 21, 10, 0), at(2025, 10, 22, 10, 0), CALENDAR,
                  TERMS, CONTACT, line=LINE)
    assert late.urgency == "high" and "sla_passed" in codes(late)
    assert "ran out at Tue 21 Oct 2025 18:00." in " ".join(late.english())


def test_an_sla_with_less_than_a_quarter_left_is_high() -> None:
    # Thursday 9 October 2025, since 08:00: at 14:30 1.5 h of the 8 h are left (< 2 h).
    result = assess("loss", "provider", at(2025, 10, 9, 8, 0), at(2025, 10, 9, 14, 30), CALENDAR,
                    TERMS, CONTACT, line=LINE)
    assert result.urgency == "high" and "sla_near" in codes(result)
    # At 13:30, 2.5 h are left: normal.
    assert assess("loss", "provider", at(2025, 10, 9, 8, 0), at(2025, 10, 9, 13, 30), CALENDAR,
                  TERMS, CONTACT, line=LINE).urgency == "normal"


def test_a_business_clock_runs_from_the_escalation_and_stops_at_the_weekend() -> None:
    business = Terms(starts_on=date(2025, 1, 1), ends_on=None, download_advertised=1e6,
                     upload_advertised=1e6, sla_restore_seconds=8 * HOUR, sla_clock="business")
    # Since Thursday 9 October 10:00, escalated Friday 10 October 16:00; now Friday 17:00:
    # 1 business hour used, the deadline Monday 13 October 14:00. The school is out until
    # Monday 08:30 (63.5 h): low.
    result = assess("bandwidth", "provider", at(2025, 10, 9, 10, 0), at(2025, 10, 10, 17, 0), CALENDAR,
                    business, CONTACT, line=LINE, sla_from=at(2025, 10, 10, 16, 0))
    assert result.sla_clock == "business" and result.sla_elapsed_seconds == HOUR
    assert result.sla_deadline_at == at(2025, 10, 13, 14, 0)
    assert (result.impact, result.urgency) == ("teaching", "low")


def test_sunday_noon_is_normal_because_monday_morning_is_within_a_day() -> None:
    result = assess("bandwidth", "provider", at(2025, 10, 12, 11, 0), at(2025, 10, 12, 12, 0), CALENDAR,
                    NO_SLA, CONTACT, line=LINE)
    assert (result.impact, result.urgency) == ("administration", "normal")
    assert "session_soon" in codes(result)


def test_a_silent_agent_is_administration_and_not_made_urgent_by_exams() -> None:
    result = assess("silent", "school", at(2026, 5, 12, 9, 0), at(2026, 5, 12, 10, 0), CALENDAR,
                    None, None)
    assert (result.impact, result.urgency) == ("administration", "normal")
    assert codes(result)[0] == "monitoring_only" and "exam_period" not in codes(result)
    assert result.supplier.english() == "the school's own network"
    assert result.sla_restore_seconds is None and result.sla_clock is None
    assert "school_network" in codes(result) and codes(result)[-1] == "no_contact"


def test_wifi_in_a_room_is_the_schools_own_network() -> None:
    result = assess("wifi", "school", at(2025, 10, 8, 9, 0), at(2025, 10, 8, 11, 0), CALENDAR, TERMS, CONTACT)
    assert (result.impact, result.urgency, result.sla_deadline_at) == ("teaching", "normal", None)
    assert result.supplier.responsible == "school"


def test_reasons_have_stable_codes_and_params_and_survive_json() -> None:
    cases = [
        assess("outage", "provider", at(2026, 5, 12, 9, 45), at(2026, 5, 12, 10, 0), CALENDAR, TERMS,
               CONTACT, line=LINE),
        assess("bandwidth", "provider", at(2025, 10, 21, 10, 0), at(2025, 10, 22, 10, 0), CALENDAR, TERMS,
               None),
        assess("latency", "provider", at(2025, 10, 9, 8, 0), at(2025, 10, 9, 14, 30), CALENDAR, None, None),
        assess("silent", "school", at(2025, 10, 12, 11, 0), at(2025, 10, 12, 12, 0), CALENDAR, None, CONTACT),
    ]
    seen: set[str] = set()
    for result in cases:
        for reason in result.reasons:
            assert set(reason.params) == set(REASON_CODES[reason.code]), reason.code
            sentence = reason.english()
            assert sentence.endswith(".") and "{" not in sentence
            seen.add(reason.code)
        document = json.loads(json.dumps(result.as_document()))
        assert Assessment.from_document(document) == result
    assert {"no_terms", "sla_passed", "no_contact", "monitoring_only"} <= seen
    # No contact known: the assessment says so, and how to set one.
    assert "No escalation contact" in cases[1].english()[-1]


def test_durations_in_words() -> None:
    assert [duration_english(s) for s in (0, 2700, 5400, 8 * HOUR, 52 * HOUR)] == [
        "0 min", "45 min", "1 h 30 min", "8 h", "2 d 4 h"]
