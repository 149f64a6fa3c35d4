"""Each rule set on histories built to just pass and just fail each of its rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from test_collector.verdict_histories import TERMS, ZONE, at, days_of, spread, window

from collector.policy import MBIT, RULE_SETS
from collector.terms import Terms
from collector.verdicts import acm, bnetza, fcc, giga
from collector.verdicts.model import Measurement
from collector.verdicts.rulesets import evaluate
from collector.verdicts.verdict import RuleVerdict

THREE_DAYS = days_of(date(2026, 3, 2), 3)  # Mon, Tue, Wed


def check(v: RuleVerdict, name: str, direction: str = "download") -> bool | None:
    [c] = [c for c in v.checks if c.name == name and c.direction == direction]
    return c.passed


def run(rule: object, ms: list[Measurement]) -> RuleVerdict:
    return rule.evaluate(ms, *window(ms))  # type: ignore[attr-defined, no-any-return]


# ACM: normal 80, minimum 50, maximum 100 (90 % of it: 90) download; upload always 20 of 20.
ACM_PASS = [95, 85, 85, 85, 85, 85, 85, 85, 60, 60]  # 8 of 10 at normal, 1 at 90 % of max


def test_acm_just_passes_with_8_of_10_at_normal() -> None:
    v = run(acm, spread(ACM_PASS, THREE_DAYS))
    assert v.outcome == "pass" and v.enough_data and v.reason is None
    assert v.counts["download"].counted == 10 and v.counts["download"].days == 3
    assert all(c.passed for c in v.checks)
    assert v.median_ratio_interval["download"] == (pytest.approx(0.6), pytest.approx(0.85))  # (x2, x9)
    assert v.days == ["2026-03-02", "2026-03-03", "2026-03-04"]


def test_acm_fails_with_7_of_10_at_normal() -> None:
    v = run(acm, spread([95, 85, 85, 85, 85, 85, 85, 60, 60, 60], THREE_DAYS))
    assert v.outcome == "fail" and check(v, "normal_in_80_percent") is False
    assert check(v, "minimum_never_undercut") and check(v, "normal_in_80_percent", "upload")
    assert v.reason is not None and "70%" in v.reason


def test_acm_one_measurement_below_the_minimum_fails() -> None:
    v = run(acm, spread([95, 85, 85, 85, 85, 85, 85, 85, 85, 49], THREE_DAYS))
    assert v.outcome == "fail" and check(v, "minimum_never_undercut") is False
    assert check(v, "normal_in_80_percent") is True


def test_acm_maximum_must_be_neared_in_1_of_10() -> None:
    assert run(acm, spread([90] + [85] * 9, THREE_DAYS)).outcome == "pass"  # exactly 90 % of 100
    v = run(acm, spread([89.9] + [85] * 9, THREE_DAYS))
    assert v.outcome == "fail" and check(v, "maximum_90_percent_in_1_of_10") is False


def test_acm_counts_one_measurement_per_hour() -> None:
    ms = spread(ACM_PASS, THREE_DAYS)
    # Three more in the hour of the first (09:00 on Monday), all slow: only the first counts.
    ms += [at(datetime(2026, 3, 2, 9, m), 55.0, 20.0) for m in (10, 20, 30)]
    v = run(acm, ms)
    assert v.outcome == "pass" and v.counts["download"].judged == 13 and v.counts["download"].counted == 10


def test_acm_two_days_is_not_enough_data() -> None:
    v = run(acm, spread([95] * 12, THREE_DAYS[:2]))
    assert v.outcome == "not_enough_data" and not v.enough_data
    assert v.counts["download"].missing == "2 of 3 days"
    assert all(c.passed is None for c in v.checks)
    assert v.reason is not None and "2 of 3 days" in v.reason
    v = run(acm, spread([95] * 7, THREE_DAYS))
    assert v.counts["upload"].missing == "7 of 10 measurements"
    # Not enough data never hides behind a pass or a fail, even with a breach among them.
    assert run(acm, spread([10] * 9, THREE_DAYS)).outcome == "not_enough_data"


def test_acm_ignores_invalid_and_unattributed_measurements() -> None:
    ms = spread(ACM_PASS, THREE_DAYS)
    ms += spread([1.0] * 6, THREE_DAYS, first_hour=16, valid=False)
    ms += spread([1.0] * 3, THREE_DAYS, first_hour=18, terms=None)
    v = run(acm, ms)
    assert v.outcome == "pass"
    c = v.counts["download"]
    assert (c.measurements, c.invalid, c.without_terms, c.judged, c.counted) == (19, 6, 3, 10, 10)


def test_acm_without_a_normal_speed_is_not_a_pass() -> None:
    mobile = Terms(starts_on=date(2026, 1, 1), ends_on=None,
                   download_advertised=100 * MBIT, upload_advertised=20 * MBIT,
                   download_maximum=100 * MBIT, upload_maximum=20 * MBIT)
    v = run(acm, spread(ACM_PASS, THREE_DAYS, terms=mobile))
    assert v.enough_data and v.outcome == "not_enough_data"
    [c] = [c for c in v.checks if c.name == "normal_in_80_percent" and c.direction == "download"]
    assert c.passed is None and c.detail == "the contract states no normally available speed"
    assert v.reason is not None and "states no minimum speed" in v.reason
    # A check that was made and failed still fails the verdict.
    assert run(acm, spread([85] * 10, THREE_DAYS, terms=mobile)).outcome == "fail"


def test_acm_judges_each_measurement_by_the_contract_in_force_then() -> None:
    old = replace(TERMS, ends_on=date(2026, 3, 3))
    new = Terms(starts_on=date(2026, 3, 4), ends_on=None,
                download_advertised=200 * MBIT, upload_advertised=20 * MBIT,
                download_minimum=100 * MBIT, upload_minimum=10 * MBIT,
                download_normal=160 * MBIT, upload_normal=16 * MBIT,
                download_maximum=200 * MBIT, upload_maximum=20 * MBIT)
    before = spread([95, 85, 85, 85, 85], days_of(date(2026, 3, 2), 2), terms=old)
    after = spread([170, 170, 170, 170, 170], days_of(date(2026, 3, 4), 2), terms=new)
    assert run(acm, before + after).outcome == "pass"  # 85 of normal 80, then 170 of normal 160
    # The same 85s after the upgrade miss the new normal speed and undercut the new minimum.
    late = spread([85] * 5, days_of(date(2026, 3, 6), 1), terms=new, first_hour=8)
    v = run(acm, before + after + late)
    assert v.outcome == "fail" and check(v, "minimum_never_undercut") is False


def test_acm_counts_both_repeated_hours_of_the_autumn_change() -> None:
    # 25 October 2026: 02:00-03:00 local happens twice (+02:00, then +01:00).
    first = datetime(2026, 10, 25, 2, 30, tzinfo=ZONE)
    second = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZONE)
    pair = [at(first, 95.0, 20.0), at(second, 85.0, 20.0)]
    assert pair[0].hour_key == "2026-10-25T02+02:00" and pair[1].hour_key == "2026-10-25T02+01:00"
    assert pair[1].measured_at - pair[0].measured_at == 3600
    ms = pair + spread([85] * 8, days_of(date(2026, 10, 26), 2))
    v = run(acm, ms)
    assert v.counts["download"].counted == 10 and v.counts["download"].days == 3
    assert v.outcome == "pass"


# BNetzA: 10 a day, 5 minutes apart, 3 hours between the 5th and the 6th.
BNETZA_TIMES = [(8, 0), (8, 10), (8, 20), (8, 30), (8, 40), (11, 40), (11, 50), (12, 0), (12, 10), (12, 20)]


def campaign_day(day: date, downs: list[float],
                 times: list[tuple[int, int]] = BNETZA_TIMES) -> list[Measurement]:
    """The day's measurements at the first len(downs) of the campaign times."""
    return [at(datetime(day.year, day.month, day.day, h, m), d, 20.0)
            for (h, m), d in zip(times, downs, strict=False)]


MON, WED, FRI = date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 6)


def test_bnetza_campaign_of_3_days_passes() -> None:
    good = [95.0] * 10
    v = run(bnetza, campaign_day(MON, good) + campaign_day(WED, good) + campaign_day(FRI, good))
    assert v.outcome == "pass" and v.counts["download"].counted == 30
    assert v.days == ["2026-03-02", "2026-03-04", "2026-03-06"]


def test_bnetza_takes_the_most_recent_campaign() -> None:
    bad = campaign_day(MON, [40] * 10)  # below the minimum all day: not part of the latest campaign
    extra = [at(datetime(2026, 3, 4, 14, 0), 1.0, 1.0)]  # an 11th on Wednesday: the first ten are taken
    ms = bad + campaign_day(WED, [95] * 10) + extra + campaign_day(FRI, [95] * 10) \
        + campaign_day(date(2026, 3, 9), [95] * 10)
    v = run(bnetza, ms)
    assert v.outcome == "pass" and v.days == ["2026-03-04", "2026-03-06", "2026-03-09"]
    # Without the Monday of the next week, the bad Monday is in the campaign and fails it.
    v = run(bnetza, bad + campaign_day(WED, [95] * 10) + campaign_day(FRI, [40] * 10))
    assert v.outcome == "fail" and check(v, "minimum_on_fewer_than_2_days") is False


def test_bnetza_needs_days_apart_ten_a_day_and_the_spacing() -> None:
    consecutive = campaign_day(MON, [95] * 10) + campaign_day(MON + timedelta(1), [95] * 10) \
        + campaign_day(WED, [95] * 10)
    v = run(bnetza, consecutive)
    assert v.outcome == "not_enough_data" and "2 of 3 measuring days" in (v.counts["download"].missing or "")
    nine = [d for day in (MON, WED, FRI) for d in campaign_day(day, [95] * 9)]
    v = run(bnetza, nine)
    assert v.outcome == "not_enough_data" and "the best day has 9 of 10" in (v.reason or "")
    # Ten a day but the 6th only two hours after the 5th: the day holds no campaign day.
    squeezed = [(h - 1, m) if h >= 11 else (h, m) for h, m in BNETZA_TIMES]
    v = run(bnetza, [m for day in (MON, WED, FRI) for m in campaign_day(day, [95] * 10, squeezed)])
    assert v.outcome == "not_enough_data"
    spread_out = campaign_day(MON, [95] * 10) + campaign_day(WED, [95] * 10) \
        + campaign_day(MON + timedelta(14), [95] * 10)
    assert run(bnetza, spread_out).outcome == "not_enough_data"  # not within 14 days


def test_bnetza_maximum_on_2_of_3_days() -> None:
    near = [95] + [85] * 9  # 90 % of the maximum once
    never = [85] * 10
    one_day_short = campaign_day(MON, near) + campaign_day(WED, near) + campaign_day(FRI, never)
    assert run(bnetza, one_day_short).outcome == "pass"
    v = run(bnetza, campaign_day(MON, near) + campaign_day(WED, never) + campaign_day(FRI, never))
    assert v.outcome == "fail" and check(v, "maximum_90_percent_each_day") is False


def test_bnetza_normal_missed_in_more_than_10_percent() -> None:
    three_missed = [95] * 7 + [70] * 3  # 27 of 30 reach the normal speed
    ok = campaign_day(MON, three_missed) + campaign_day(WED, [95] * 10) + campaign_day(FRI, [95] * 10)
    assert run(bnetza, ok).outcome == "pass"
    four = campaign_day(MON, three_missed) + campaign_day(WED, [95] * 9 + [70]) + campaign_day(FRI, [95] * 10)
    v = run(bnetza, four)
    assert v.outcome == "fail" and check(v, "normal_in_90_percent") is False


def test_bnetza_minimum_undercut_on_2_of_3_days() -> None:
    once = [95] * 9 + [45]
    assert run(bnetza, campaign_day(MON, once) + campaign_day(WED, [95] * 10)
               + campaign_day(FRI, [95] * 10)).outcome == "pass"
    v = run(bnetza, campaign_day(MON, once) + campaign_day(WED, once) + campaign_day(FRI, [95] * 10))
    assert v.outcome == "fail" and check(v, "minimum_on_fewer_than_2_days") is False


FIVE_DAYS = days_of(date(2026, 3, 2), 5)


def test_fcc_80_80_just_passes_and_just_fails() -> None:
    passes = spread([80] * 8 + [50] * 2, FIVE_DAYS)  # 8 of 10 at 80 % of advertised
    v = run(fcc, passes)
    assert v.outcome == "pass" and v.hours == "school"
    assert v.figures["download_median_ratio"] == pytest.approx(0.8)
    assert v.figures["download_ratio_80_80"] == pytest.approx(0.5)
    v = run(fcc, spread([80] * 7 + [79.9] + [50] * 2, FIVE_DAYS))
    assert v.outcome == "fail" and check(v, "80_80") is False
    # Measurements outside school hours are not the school's peak: a slow evening changes nothing.
    evening = spread([1] * 10, FIVE_DAYS, first_hour=19, in_session=False)
    assert run(fcc, passes + evening).outcome == "pass"


def test_fcc_and_giga_need_a_school_week() -> None:
    for rule in (fcc, giga):
        v = run(rule, spread([95] * 12, FIVE_DAYS[:4]))
        assert v.outcome == "not_enough_data" and v.counts["download"].missing == "4 of 5 days"
        v = run(rule, spread([95] * 5, FIVE_DAYS))
        assert v.outcome == "not_enough_data" and v.counts["download"].missing == "5 of 6 measurements"


def test_giga_average_of_80_percent() -> None:
    assert run(giga, spread([100, 60] * 5, FIVE_DAYS)).outcome == "pass"  # average 80 %
    v = run(giga, spread([100, 59.8] * 5, FIVE_DAYS))
    assert v.outcome == "fail" and check(v, "average_80_percent") is False
    assert v.figures["download_mean_ratio"] == pytest.approx(0.799)


def test_every_rule_set_by_name_and_json() -> None:
    ms = spread([95] * 10, FIVE_DAYS)
    for name in RULE_SETS:
        d = evaluate(name, ms, *window(ms)).as_dict()
        assert d["rule_set"] == name and d["outcome"] in {"pass", "fail", "not_enough_data"}
        assert d["source"]["url"].startswith("https://")
    with pytest.raises(ValueError, match="unknown rule set"):
        evaluate("ofcom", ms, 0, 1)  # type: ignore[arg-type]
    # The window bounds are kept to: nothing in it, nothing judged.
    empty = evaluate("acm", ms, 0.0, 1.0)
    assert empty.outcome == "not_enough_data" and empty.counts["download"].measurements == 0
