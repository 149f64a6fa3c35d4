"""Availability arithmetic: union of outages, clipping to the window, observed time.

Every expected value is computed by hand in the comment beside it.
"""

from __future__ import annotations

import pytest

from collector.availability import (
    DAY,
    Outage,
    SchoolHistory,
    availability_ratio,
    ongoing_outage,
    recorded_outage,
    school_availability,
    union_seconds,
)

HOUR = 3600.0
NOW = 1_800_000_000.0


def test_overlapping_outages_of_two_agents_count_once() -> None:
    # Agent A down 10:00-11:00, agent B down 10:30-12:00: the school was down 10:00-12:00.
    a = (10 * HOUR, 11 * HOUR)
    b = (10.5 * HOUR, 12 * HOUR)
    assert union_seconds([a, b], 0, DAY) == 2 * HOUR
    assert union_seconds([b, a], 0, DAY) == 2 * HOUR  # order does not matter
    # One outage inside another, and one that only touches the end of the first.
    assert union_seconds([(0, 10), (2, 3), (10, 15)], 0, 100) == 15
    # Separate outages add up.
    assert union_seconds([(0, 10), (20, 25), (30, 31)], 0, 100) == 16


def test_outages_are_clipped_to_the_range() -> None:
    # Straddling the start: 40 of its 60 s lie inside; straddling the end: 5 of 10 s.
    assert union_seconds([(80, 140)], 100, 200) == 40
    assert union_seconds([(195, 205)], 100, 200) == 5
    assert union_seconds([(0, 50), (250, 300)], 100, 200) == 0  # wholly outside
    assert union_seconds([(120, 120)], 100, 200) == 0  # an empty outage
    assert union_seconds([], 100, 200) == 0


def test_an_outage_straddling_the_window_start() -> None:
    # 1-day window ending NOW; an outage from 2 h before the window's start to 1 h after
    # it: 1 h of the 24 h observed.
    start = NOW - DAY
    outage = (start - 2 * HOUR, start + HOUR)
    assert availability_ratio([outage], NOW - 30 * DAY, NOW, DAY) == pytest.approx(1 - 1 / 24)


def test_first_data_inside_the_window_shortens_the_observed_time() -> None:
    # The school's first window was 6 h ago; 30 min down since: 0.5 / 6 of the observed
    # time, the same over 1, 7 and 30 days (no day before the first window counts as up).
    first = NOW - 6 * HOUR
    outage = (NOW - 3 * HOUR, NOW - 2.5 * HOUR)
    for window in (DAY, 7 * DAY, 30 * DAY):
        assert availability_ratio([outage], first, NOW, window) == pytest.approx(1 - 0.5 / 6)


def test_no_outage_is_full_availability_and_no_observed_time_is_none() -> None:
    assert availability_ratio([], NOW - 10 * DAY, NOW, DAY) == 1.0
    assert availability_ratio([], NOW, NOW, DAY) is None  # the first window starts now
    assert availability_ratio([], NOW + 60, NOW, DAY) is None  # an agent clock ahead
    assert school_availability(SchoolHistory(), NOW) == {}  # no connectivity data at all
    # Outages without any window: still no observed time to divide by.
    assert school_availability(SchoolHistory(None, [Outage("isp", NOW - 60, NOW)]), NOW) == {}


def test_a_school_over_every_window_and_outage_set() -> None:
    # Observed since 10 days ago. An isp outage of 2 h 3 days ago, a lan outage of 1 h
    # 12 h ago, and a dns outage of 6 h 20 days ago (before the observed time: clipped).
    history = SchoolHistory(NOW - 10 * DAY, [
        Outage("isp", NOW - 3 * DAY, NOW - 3 * DAY + 2 * HOUR),
        Outage("lan", NOW - 12 * HOUR, NOW - 11 * HOUR),
        Outage("dns", NOW - 20 * DAY, NOW - 20 * DAY + 6 * HOUR),
    ])
    ratios = school_availability(history, NOW)
    assert ratios[("1d", "all")] == pytest.approx(1 - 1 / 24)
    assert ratios[("1d", "isp")] == 1.0
    assert ratios[("7d", "all")] == pytest.approx(1 - 3 / (7 * 24))
    assert ratios[("7d", "isp")] == pytest.approx(1 - 2 / (7 * 24))
    assert ratios[("30d", "all")] == pytest.approx(1 - 3 / (10 * 24))  # observed: 10 days
    assert ratios[("30d", "isp")] == pytest.approx(1 - 2 / (10 * 24))
    assert len(ratios) == 6


def test_an_ongoing_outage_runs_to_the_end_of_the_latest_window() -> None:
    window = {"window_seconds": 60.0, "up": False, "down_seconds": 45.0, "outage_kind": "isp",
              "outage_start_seconds": NOW - 300}
    assert ongoing_outage(window, NOW - 60) == Outage("isp", NOW - 300, NOW)
    # Without a start, what the window itself spent down is what is known.
    assert ongoing_outage({**window, "outage_start_seconds": None}, NOW - 60) == Outage(
        "isp", NOW - 45, NOW)
    assert ongoing_outage({**window, "outage_kind": None, "up": True}, NOW - 60) is None
    # As stored (validation is lax: "60" passed as a number).
    assert ongoing_outage({**window, "window_seconds": "60"}, NOW - 60) == Outage(
        "isp", NOW - 300, NOW)


def test_a_recorded_outage_is_read_from_its_payload() -> None:
    payload = {"outage_kind": "lan", "start_seconds": 100, "end_seconds": "160.5",
               "duration_seconds": 60.5, "interrupted": False, "detail": ""}
    assert recorded_outage(payload) == Outage("lan", 100.0, 160.5)
    assert recorded_outage({}) is None
    assert recorded_outage(None) is None
