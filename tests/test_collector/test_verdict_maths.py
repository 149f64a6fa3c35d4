"""Verdict maths on hand-computed histories: percentiles, the median's interval, summaries,
capacity and availability in school hours."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from test_collector.verdict_histories import TERMS, at, days_of, spread

from collector.policy import MBIT, CapacityPolicy
from collector.terms import Terms
from collector.verdicts.availability import school_hours_availability
from collector.verdicts.capacity import capacity_verdict
from collector.verdicts.stats import median, median_interval, median_interval_ranks, nearest_rank
from collector.verdicts.summary import direction_summary


def test_nearest_rank_on_tiny_samples_and_ties() -> None:
    assert nearest_rank([7.0], 1) == 7.0 and nearest_rank([7.0], 100) == 7.0
    # n = 4: p50 -> ceil(2) = 2nd smallest; p51 -> ceil(2.04) = 3rd; p25 -> 1st; p26 -> 2nd.
    values = [40.0, 10.0, 30.0, 20.0]
    assert [nearest_rank(values, p) for p in (25, 26, 50, 51, 75, 100)] == [10, 20, 20, 30, 30, 40]
    # p20 of 10 values is exactly rank 2 (0.2 * 10 must not round up to 3 in floating point).
    assert nearest_rank(list(range(1, 11)), 20) == 2
    assert nearest_rank([5.0, 5.0, 5.0, 9.0], 50) == 5.0  # ties: an observed value, never averaged
    assert median([3.0, 1.0, 2.0, 4.0]) == 2.0  # the lower middle for even n
    with pytest.raises(ValueError):
        nearest_rank([], 50)
    with pytest.raises(ValueError):
        nearest_rank([1.0], 0)


def test_median_interval_against_hand_computed_binomial_ranks() -> None:
    # n = 5: the widest interval (x1, x5) covers 1 - 2/32 = 0.9375 < 0.95: no interval.
    assert median_interval([1.0, 2, 3, 4, 5]) is None
    # n = 6: (x1, x6) covers 1 - 2/64 = 0.96875; (x2, x5) only 1 - 2*7/64 = 0.78.
    assert median_interval([6.0, 1, 5, 2, 4, 3]) == (1, 6)
    # n = 10: (x2, x9) covers 1 - 2*(1 + 10)/1024 = 0.9785; (x3, x8) 1 - 2*56/1024 = 0.8906.
    assert median_interval([float(v) for v in range(10, 0, -1)]) == (2, 9)
    # n = 30: sum C(30, i), i = 0..9, = 22,964,087; 1 - 2 * that / 2^30 = 0.95723 >= 0.95,
    # with C(30, 10) = 30,045,015 added: 1 - 2 * 53,009,102 / 2^30 = 0.90126 < 0.95 -> (x10, x21).
    assert median_interval_ranks(30) == (10, 21)
    assert median_interval([float(v) for v in range(1, 31)]) == (10, 21)
    # A lower confidence narrows it: n = 10 at 80 % -> (x3, x8) (0.8906 >= 0.80, x4..x7: 0.656).
    assert median_interval_ranks(10, 0.80) == (3, 8)


def test_direction_summary_by_hand() -> None:
    days = days_of(date(2026, 3, 2), 5)
    # Ratios 1.0, 0.96, 0.95 (>= 95 %), 0.9, 0.8 (80-95 %), 0.7, 0.5 (< 80 %); one outside hours.
    school = spread([100, 96, 95, 90, 80, 70, 50], days, devices=10)
    outside = [at(datetime(2026, 3, 2, 20, 0), 10.0, 20.0, in_session=False)]
    ignored = [at(datetime(2026, 3, 3, 13, 0), 1.0, 1.0, valid=False),
               at(datetime(2026, 3, 3, 14, 0), 1.0, 1.0, terms=None),
               at(datetime(2026, 3, 4, 14, 0), None, 1.0)]
    s = direction_summary(school + outside + ignored, "download", "school")
    assert (s.measurements, s.invalid, s.without_terms, s.without_value, s.n) == (10, 1, 1, 1, 7)
    assert s.median_bytes_per_second == 90 * MBIT  # 4th of 7
    assert s.p20_bytes_per_second == 70 * MBIT  # ceil(1.4) = 2nd smallest
    assert s.median_ratio == pytest.approx(0.9) and s.ratio_80_80 == pytest.approx(0.7)
    assert s.median_interval_bytes_per_second == (50 * MBIT, 100 * MBIT)  # n = 7: (x1, x7)
    assert s.mean_ratio == pytest.approx((1 + .96 + .95 + .9 + .8 + .7 + .5) / 7)
    assert (s.share_at_least_95, s.share_80_to_95, s.share_below_80) == pytest.approx((3 / 7, 2 / 7, 2 / 7))
    assert s.per_device_tests == 7 and s.per_device_median_bytes_per_second == 9 * MBIT
    assert direction_summary(school + outside, "download", "outside").median_ratio == pytest.approx(0.1)
    assert direction_summary(school + outside, "download", "all").n == 8
    d = s.as_dict()
    assert d["median_interval_bytes_per_second"] == [50 * MBIT, 100 * MBIT] and d["hours"] == "school"
    empty = direction_summary([], "upload", "all").as_dict()
    assert empty["n"] == 0 and empty["median_ratio"] is None and empty["median_ratio_interval"] is None


def test_summary_judges_each_result_by_the_terms_in_force_then() -> None:
    upgraded = Terms(starts_on=date(2026, 3, 4), ends_on=None,
                     download_advertised=200 * MBIT, upload_advertised=40 * MBIT)
    before = spread([100, 100], days_of(date(2026, 3, 2), 2))  # 100 of 100: ratio 1
    after = spread([100, 100, 100], days_of(date(2026, 3, 4), 3), terms=upgraded)  # 100 of 200: 0.5
    s = direction_summary(before + after, "download", "all")
    assert s.median_ratio == pytest.approx(0.5) and s.share_at_least_95 == pytest.approx(2 / 5)
    assert s.median_bytes_per_second == 100 * MBIT


def test_capacity_per_profile() -> None:
    days = days_of(date(2026, 3, 2), 3)
    # Peak 40 devices in school hours (60 outside hours does not count); median download 60 Mbit/s.
    ms = spread([50, 60, 70], days, devices=40)
    ms.append(at(datetime(2026, 3, 2, 19, 0), 90.0, 20.0, in_session=False, devices=60))
    ms.append(at(datetime(2026, 3, 3, 12, 0), 1.0, 1.0, valid=False, devices=500))  # invalid: ignored
    v = capacity_verdict(ms, CapacityPolicy(), video_participants=30)
    assert v.peak_concurrent_devices == 40 and v.median_download_bytes_per_second == 60 * MBIT
    basis, digitaal, experimenteel = (v.profiles[p] for p in ("basis", "digitaal", "experimenteel"))
    # basis: max(40 * 0.5, 30 * 2) = 60 Mbit/s * 1.3 = 78: measured 60 short, contract 100 enough.
    assert basis.required_bytes_per_second == pytest.approx(78 * MBIT)
    assert (basis.measured_sufficient, basis.contract_sufficient) == (False, True)
    # digitaal: max(40, 60) * 1.3 = 78 as well; experimenteel: max(80, 60) * 1.3 = 104 > 100.
    assert digitaal.required_bytes_per_second == pytest.approx(78 * MBIT)
    assert experimenteel.required_bytes_per_second == pytest.approx(104 * MBIT)
    assert experimenteel.contract_sufficient is False
    # A smaller school is served: 10 devices, no video: 1 Mbit/s * 10 * 1.3 = 13 Mbit/s.
    small = capacity_verdict(spread([50, 60, 70], days, devices=10), CapacityPolicy(), None)
    assert small.profiles["digitaal"].required_bytes_per_second == pytest.approx(13 * MBIT)
    assert small.profiles["digitaal"].measured_sufficient is True
    assert small.advertised_download_bytes_per_second == TERMS.download_advertised


def test_capacity_without_device_counts_is_unknown_with_why() -> None:
    v = capacity_verdict(spread([50, 60], days_of(date(2026, 3, 2), 2)), CapacityPolicy(), 30)
    for p in v.profiles.values():
        assert p.required_bytes_per_second is None and p.measured_sufficient is None
        assert p.contract_sufficient is None and p.reason is not None and "concurrent devices" in p.reason
    assert v.as_dict()["profiles"]["basis"]["measured_sufficient"] is None


def test_school_hours_availability() -> None:
    # Two school days of 7 h (25 200 s) each; observation began at 1000 s into the first.
    sessions = [(0.0, 25200.0), (86400.0, 111600.0)]
    outages = [
        (-500.0, 1500.0),  # 500 s of it in observed school time (from 1000)
        (20000.0, 30000.0),  # 5200 s to the end of the first session; the night does not count
        (90000.0, 91000.0), (90500.0, 92000.0),  # overlapping: 2000 s once
    ]
    observed = (25200 - 1000) + (100000 - 86400)  # "now" is 100000: mid second day
    ratio = school_hours_availability(outages, sessions, observed_from=1000.0, now=100000.0)
    assert ratio == pytest.approx(1 - (500 + 5200 + 2000) / observed)
    assert school_hours_availability([], sessions, 1000.0, 100000.0) == 1.0
    # No school time observed (a weekend, or observing began after it): None, not 100 %.
    assert school_hours_availability(outages, sessions, observed_from=120000.0, now=130000.0) is None
    assert school_hours_availability(outages, [], 0.0, 100000.0) is None
