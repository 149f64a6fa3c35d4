"""The comparison report's figures against hand-computed fixtures.

Every line has advertised 100/100 Mbit/s unless said otherwise, so a test of 80 Mbit/s is a
ratio of 0.80; tests run in school hours (09:10-14:10) on the school days of March 2026.
Nearest rank: the k-th smallest of n with k = ceil(p/100 * n); the median is the lower
middle value when n is even.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import pytest
from support.comparison import NOW, PERIOD, TIMEZONE, ComparisonStore, local, school_hour_times

from collector.accounts.roles import Role
from collector.comparison.compute import (
    ReportError,
    SchoolNotFound,
    UnknownSchool,
    build_benchmark,
    build_report,
    default_filters,
)
from collector.comparison.model import Filters, GroupFigures, LineFigures, Report

pytestmark = pytest.mark.both_stores


@pytest.fixture
def store(tmp_path: Path, db_url: str) -> Iterator[ComparisonStore]:
    store = ComparisonStore.create(tmp_path, db_url)
    yield store
    store.engine.dispose()


def report(store: ComparisonStore, role: Role = "admin", board: str | None = None,
           filters: Filters = PERIOD) -> Report:
    return build_report(store.engine, store.viewer(role, board), filters, now=NOW,
                        default_timezone=TIMEZONE)


def provider(r: Report, provider_id: str) -> GroupFigures:
    return next(g for g in r.by_provider if g.provider_id == provider_id)


def line_of(r: Report, school: str) -> LineFigures:
    return next(f for f in r.lines if f.school == school)


def add(store: ComparisonStore, school: str, downs: Sequence[float | None], *, board: str = "noord",
        provider_name: str = "Glasnet", technology: str = "fibre", down_mbps: float = 100, **line: object
        ) -> None:
    store.line(board, school, provider=provider_name, technology=technology, down_mbps=down_mbps,
               **line)  # type: ignore[arg-type]
    store.tests(board, school, downs)


# The five lines of test_five_lines (download Mbit/s of 100 advertised):
FIVE = {
    # 10 tests 0.50..1.40: median = 5th = 0.90 (lower middle of 10); 80/80 = ceil(0.2*10) = 2nd = 0.60
    "a": [50, 60, 70, 80, 90, 100, 110, 120, 130, 140],
    # 5 tests: median = 3rd = 0.99; 80/80 = ceil(1.0) = 1st = 0.95
    "b": [101, 95, 99, 100, 97],
    # median = 3rd = 0.80: exactly 80 % is not below it; 80/80 = 0.70
    "c": [90, 70, 80, 85, 79],
    # 6 tests: median = 3rd = 0.75; 80/80 = ceil(1.2) = 2nd = 0.65; interval ranks (1, 6) = 0.60-0.90
    "d": [60, 65, 75, 78, 82, 90],
    # median = 3rd = 0.55; 80/80 = 1st = 0.40
    "e": [40, 50, 55, 60, 70],
}


def test_five_lines_medians_80_80_share_and_wilson(store: ComparisonStore) -> None:
    for school, downs in FIVE.items():
        add(store, school, downs)
    r = report(store)
    a, d = line_of(r, "a"), line_of(r, "d")
    assert a.tests == 10
    assert (a.median_ratio.value, a.ratio_80_80.value) == (pytest.approx(0.90), pytest.approx(0.60))
    # n = 10 at 95 %: ranks (2, 9) -> 0.60 .. 1.30
    assert (a.median_ratio.low, a.median_ratio.high) == (pytest.approx(0.60), pytest.approx(1.30))
    assert (d.median_ratio.value, d.ratio_80_80.value) == (pytest.approx(0.75), pytest.approx(0.65))
    assert (d.median_ratio.low, d.median_ratio.high) == (pytest.approx(0.60), pytest.approx(0.90))
    assert line_of(r, "b").median_ratio.low is None  # n = 5: no distribution-free interval
    assert line_of(r, "c").below_80 is False and d.below_80 is True
    # a median download of 90 Mbit/s on line a (5th of 10 speeds)
    assert a.median_download_bytes_per_second.value == pytest.approx(90 * 125_000)

    group = provider(r, "glasnet")
    assert (group.schools, group.lines, group.measured_lines, group.tests) == (5, 5, 5, 10 + 5 + 5 + 6 + 5)
    # line medians sorted 0.55, 0.75, 0.80, 0.90, 0.99: median = 3rd = 0.80; n = 5: no interval
    assert group.median_ratio.value == pytest.approx(0.80)
    assert group.median_ratio.n == 5 and group.median_ratio.low is None
    # line 80/80s 0.60, 0.95, 0.70, 0.65, 0.40: 20th percentile = ceil(1.0) = 1st = 0.40
    assert group.ratio_80_80.value == pytest.approx(0.40)
    # below 80 %: d (0.75) and e (0.55) -> 2 / 5
    assert group.share_below_80.value == pytest.approx(0.4)
    # Wilson, z = 1.959964, z^2 = 3.841459, n = 5, p = 0.4:
    #   centre = (0.4 + 3.841459/10) / (1 + 3.841459/5) = 0.784146 / 1.768292 = 0.443448
    #   half = 1.959964 / 1.768292 * sqrt(0.4*0.6/5 + 3.841459/100) = 1.108393 * 0.293965 = 0.325828
    assert group.share_below_80.low == pytest.approx(0.117620, abs=1e-5)
    assert group.share_below_80.high == pytest.approx(0.769276, abs=1e-5)
    assert r.overall.median_ratio.value == pytest.approx(0.80)
    assert "no_lines" not in r.notes and "hidden_schools" not in r.notes


def test_four_lines_are_too_few_and_four_tests_are_too_few(store: ComparisonStore) -> None:
    for school in ("a", "b", "c", "d"):
        add(store, school, FIVE[school])
    add(store, "few", [80, 80, 80, 80])
    r = report(store)
    few = line_of(r, "few")
    assert few.tests == 4 and few.median_ratio.missing == "too_few_tests" and few.median_ratio.n == 4
    assert few.ratio_80_80.missing == "too_few_tests" and few.below_80 is None
    assert few.cost_per_mbps.value is None
    group = provider(r, "glasnet")
    assert (group.lines, group.measured_lines) == (5, 4)  # the 4-test line counts, is not measured
    for figure in (group.median_ratio, group.ratio_80_80, group.share_below_80):
        assert (figure.value, figure.missing, figure.n) == (None, "too_few_lines", 4)


def test_even_counts_take_the_lower_middle(store: ComparisonStore) -> None:
    # Ties within a line: 80, 80, 80, 90, 90, 90 -> 3rd = 0.80 (not 0.85)
    add(store, "ties", [80, 80, 80, 90, 90, 90])
    # Five more lines of 5 equal tests: medians 0.50, 0.60, 0.70, 0.90, 1.00
    for school, speed in (("p", 50), ("q", 60), ("r", 70), ("s", 90), ("t", 100)):
        add(store, school, [speed] * 5)
    r = report(store)
    assert line_of(r, "ties").median_ratio.value == pytest.approx(0.80)
    group = provider(r, "glasnet")
    # six line medians 0.5, 0.6, 0.7, 0.8, 0.9, 1.0: 3rd = 0.70; n = 6: ranks (1, 6) = 0.5 .. 1.0
    assert group.median_ratio.value == pytest.approx(0.70)
    assert (group.median_ratio.low, group.median_ratio.high) == (pytest.approx(0.5), pytest.approx(1.0))


def test_an_upgrade_mid_period_judges_each_test_by_its_own_terms(store: ComparisonStore) -> None:
    store.line("noord", "up", provider="Glasnet", technology="fibre", down_mbps=100,
               contract_start="2026-01-01", contract_end="2026-03-15", cost=100.0)
    store.line("noord", "up", provider="Glasnet", technology="fibre", down_mbps=200,
               contract_start="2026-03-16", cost=150.0)
    # 5 tests on 2 March at 80 of 100 (0.80), 5 on 16 March at 180 of 200 (0.90)
    store.tests("noord", "up", [80] * 5 + [180] * 5,
                times=school_hour_times(5) + school_hour_times(5, date(2026, 3, 16)))
    line = line_of(report(store), "up")
    # ratios 0.8 x5, 0.9 x5: the 5th of 10 = 0.80 (judged by 200 throughout, it would be 0.40)
    assert line.tests == 10 and line.median_ratio.value == pytest.approx(0.80)
    # the tier, advertised speed and cost from the terms in force on 31 March: 200 Mbit/s,
    # tier 100-250 (index 2), EUR 150
    assert line.tier == 2 and line.advertised_download_bytes_per_second == pytest.approx(200 * 125_000)
    assert line.monthly_cost.value == pytest.approx(150.0)


def test_cost_per_delivered_mbps_and_per_pupil(store: ComparisonStore) -> None:
    # EUR 250 a month, 200 pupils, tests 40, 45, 50, 55, 60 Mbit/s: median 50 Mbit/s delivered
    add(store, "money", [40, 45, 50, 55, 60], cost=250.0, pupils=200)
    add(store, "no-pupils", [50] * 5, cost=100.0)
    add(store, "no-cost", [50] * 5, pupils=100)
    r = report(store)
    line = line_of(r, "money")
    assert line.cost_per_mbps.value == pytest.approx(250 / 50)  # EUR 5.00 per Mbit/s
    assert line.cost_per_pupil.value == pytest.approx(250 / 200)  # EUR 1.25 per pupil
    assert line.currency == "EUR"
    assert line_of(r, "no-pupils").cost_per_pupil.missing == "no_pupils"
    assert line_of(r, "no-cost").cost_per_mbps.missing == "no_cost"
    assert line_of(r, "no-cost").monthly_cost.missing == "no_cost"


def test_group_money_medians_and_mixed_currency(store: ComparisonStore) -> None:
    # five lines, each tests at 50 Mbit/s: cost per Mbit/s = cost / 50
    for school, cost in (("a", 100.0), ("b", 150.0), ("c", 200.0), ("d", 250.0), ("e", 300.0)):
        add(store, school, [50] * 5, cost=cost, pupils=100)
    group = provider(report(store), "glasnet")
    assert group.currency == "EUR"
    assert group.monthly_cost.value == pytest.approx(200.0)  # 3rd of 100..300
    assert group.cost_per_mbps.value == pytest.approx(4.0)  # 3rd of 2, 3, 4, 5, 6
    assert group.cost_per_pupil.value == pytest.approx(2.0)  # 3rd of 1, 1.5, 2, 2.5, 3
    add(store, "f", [50] * 5, cost=90.0, currency="GBP")
    group = provider(report(store), "glasnet")
    assert group.currency is None
    for figure in (group.monthly_cost, group.cost_per_mbps, group.cost_per_pupil):
        assert figure.missing == "mixed_currency"


def test_incidents_and_median_time_to_restore(store: ComparisonStore) -> None:
    add(store, "a", [90] * 5)
    day = date(2026, 3, 10)
    store.incident("noord", "a", kind="outage", started_at=local(day, 9), restored_at=local(day, 10))  # 1 h
    store.incident("noord", "a", kind="bandwidth", started_at=local(day, 11),
                   restored_at=local(day, 14))  # 3 h
    store.incident("noord", "a", kind="loss", started_at=local(date(2026, 3, 12), 9))  # still open
    store.incident("noord", "a", kind="latency", started_at=local(date(2026, 3, 13), 9),
                   restored_at=local(date(2026, 3, 13), 17), connection=None)  # the school's: 8 h
    # not counted: the school's own fault, and one that started in February
    store.incident("noord", "a", kind="outage", started_at=local(day, 12), restored_at=local(day, 13),
                   responsible="school")
    store.incident("noord", "a", kind="outage", started_at=local(date(2026, 2, 20), 9),
                   restored_at=local(date(2026, 2, 20), 10))
    line = line_of(report(store), "a")
    assert line.incidents == 4
    # restored: 1 h, 3 h, 8 h -> median = 2nd = 3 h
    assert line.median_restore_seconds.value == pytest.approx(3 * 3600)
    assert line.median_restore_seconds.n == 3 and line.median_restore_seconds.unit == "incidents"
    group = provider(report(store), "glasnet")
    assert group.incidents == 4 and group.median_restore_seconds.value == pytest.approx(3 * 3600)


def test_availability_in_school_hours_pooled_over_schools(store: ComparisonStore) -> None:
    add(store, "a", [90] * 5)
    add(store, "b", [90] * 5)
    add(store, "unobserved", [90] * 5)
    day = date(2026, 3, 10)
    # a: observed from 1 March; down 10:00-11:00 (3600 s) and at night (not school hours)
    store.observe("noord", "a", local(date(2026, 3, 1), 0),
                  [(local(day, 10), local(day, 11)), (local(day, 20), local(day, 22))])
    # b: observed from 16 March 12:00; a "lan" outage is not the provider's
    store.observe("noord", "b", local(date(2026, 3, 16), 12),
                  [(local(date(2026, 3, 17), 9), local(date(2026, 3, 17), 10))], kind="lan")
    r = report(store)
    # a: 22 school days (2-6, 9-13, 16-20, 23-27, 30-31 March) x 7 h = 554 400 s; 1 - 3600/554400
    a = line_of(r, "a").availability
    assert a.n == 554_400 and a.value == pytest.approx(1 - 3600 / 554_400)
    # b: 16 March from 12:00 (3.5 h) + 11 more days x 7 h = 12 600 + 277 200 = 289 800 s, no provider outage
    b = line_of(r, "b").availability
    assert b.n == 289_800 and b.value == pytest.approx(1.0)
    assert line_of(r, "unobserved").availability.missing == "no_data"
    pooled = provider(r, "glasnet").availability
    assert pooled.n == 554_400 + 289_800
    assert pooled.value == pytest.approx(1 - 3600 / (554_400 + 289_800))


def test_hour_profile_needs_five_measured_lines_in_the_hour(store: ComparisonStore) -> None:
    day = date(2026, 3, 3)

    def at(hour: int, count: int) -> list[float]:
        return [local(day, hour, 5 + 10 * i) for i in range(count)]

    for school in "abcdef":
        store.line("noord", school, provider="Glasnet", technology="fibre", down_mbps=100)
    # 09:xx: a 90, 85; b 80; c 70; d 60; e 50 -> 6 tests of 5 measured lines, sorted
    # 0.50 0.60 0.70 0.80 0.85 0.90: median = lower middle = 3rd = 0.70
    # 13:xx: a 3 tests, b-d 4 each (15 tests, but of 4 lines); f (4 tests: not measured) too
    # 11:xx: e's 4 more tests only
    store.tests("noord", "a", [90, 85, 95, 95, 95], times=at(9, 2) + at(13, 3))
    for school, speed in (("b", 80), ("c", 70), ("d", 60)):
        store.tests("noord", school, [speed] + [95] * 4, times=at(9, 1) + at(13, 4))
    store.tests("noord", "e", [50] + [95] * 4, times=at(9, 1) + at(11, 4))
    store.tests("noord", "f", [95] * 4, times=at(13, 4))
    profile = report(store).hour_profiles[0]
    assert profile.hours[9].value == pytest.approx(0.70) and profile.hours[9].n == 6
    assert profile.hours[9].unit == "tests"
    # before the fix hour 13 had a value (15 pooled tests) while the tables say "too few"
    thirteen = profile.hours[13]
    assert (thirteen.missing, thirteen.n, thirteen.unit) == ("too_few_lines", 4, "lines")
    assert (profile.hours[11].missing, profile.hours[11].n) == ("too_few_lines", 1)


def test_tests_outside_school_hours_or_invalid_are_not_judged(store: ComparisonStore) -> None:
    add(store, "a", [90] * 5)
    store.tests("noord", "a", [10] * 3, times=[local(date(2026, 3, 3), 20), local(date(2026, 3, 7), 10),
                                               local(date(2026, 3, 4), 7)])  # evening, Saturday, before 08:30
    store.tests("noord", "a", [10] * 2, times=school_hour_times(2, date(2026, 3, 9)), valid=False)
    line = line_of(report(store), "a")
    assert (line.tests, line.tests_all_hours) == (5, 8)
    assert line.median_ratio.value == pytest.approx(0.90)


def test_backup_lines_and_lines_without_terms_in_the_period_do_not_count(store: ComparisonStore) -> None:
    add(store, "a", [90] * 5)
    store.line("noord", "a", provider="Mobiel", technology="4g", down_mbps=50, connection="backup",
               role="backup")
    store.tests("noord", "a", [10] * 5, times=school_hour_times(5), connection="backup")
    store.line("noord", "old", provider="Glasnet", technology="fibre", down_mbps=100,
               contract_start="2025-01-01", contract_end="2026-02-28")
    r = report(store)
    assert [(f.school, f.connection) for f in r.lines] == [("a", "main")]
    assert [g.provider_id for g in r.by_provider] == ["glasnet"]


# --- privacy ------------------------------------------------------------------------------------


def five_schools_per_board(store: ComparisonStore, board: str, count: int, speed: float = 90) -> None:
    for i in range(count):
        add(store, f"{board}-{i}", [speed] * 5, board=board)


def test_analyst_four_hidden_schools_hide_the_group_five_show_it(store: ComparisonStore) -> None:
    five_schools_per_board(store, "noord", 4)
    r = report(store, "analyst")
    group = provider(r, "glasnet")
    assert group.hidden and (group.schools, group.lines, group.measured_lines, group.tests) == (4, 4, 4, 20)
    assert group.median_ratio.missing == "hidden" and group.availability.missing == "hidden"
    assert r.overall.hidden and r.lines == () and r.hidden_schools == 4
    assert group.incidents is None and r.as_dict()["overall"]["incidents"] is None  # not "0 incidents"
    assert r.distributions[0].hidden and r.distributions[0].ratios == ()
    assert (r.distributions[0].hidden_lines, r.distributions[0].hidden_quartiles) == (4, None)
    assert all(e.missing == "hidden" for e in r.hour_profiles[0].hours.values())
    add(store, "noord-4", [90] * 5)  # a fifth school
    r = report(store, "analyst")
    group = provider(r, "glasnet")
    assert not group.hidden and group.median_ratio.value == pytest.approx(0.90)
    assert r.lines == () and r.hidden_schools == 5
    # no hidden school's ratio as a point; their quartiles, as they are 5 schools
    d = r.distributions[0]
    assert d.ratios == () and d.hidden_lines == 5 and d.hidden_quartiles == pytest.approx((0.9, 0.9, 0.9))


def test_a_shared_boards_schools_are_listed_one_hidden_school_hides_the_mix(store: ComparisonStore) -> None:
    five_schools_per_board(store, "zuid", 5)
    store.share("zuid")
    r = report(store, "analyst")
    assert len(r.lines) == 5 and r.hidden_schools == 0 and not provider(r, "glasnet").hidden
    # one school of an unshared board beside five visible ones: the group would give its
    # figures away by difference, so it is hidden; the visible schools stay listed
    add(store, "lonely", [40] * 5, board="noord")
    r = report(store, "analyst")
    assert provider(r, "glasnet").hidden and len(r.lines) == 5 and r.hidden_schools == 1
    assert {line.school for line in r.lines} == {f"zuid-{i}" for i in range(5)}


def test_a_board_viewer_sees_its_own_board_only(store: ComparisonStore) -> None:
    five_schools_per_board(store, "noord", 2)
    five_schools_per_board(store, "zuid", 5)
    r = report(store, "board_viewer", "noord")
    assert {line.board for line in r.lines} == {"noord"} and r.hidden_schools == 0
    assert provider(r, "glasnet").lines == 2
    assert [b for b, _ in r.choices.boards] == ["noord"]
    # another board is as unknown to a board role as a board that does not exist
    with pytest.raises(ReportError, match=r"^no board with id 'zuid'$"):
        report(store, "board_viewer", "noord", dataclasses.replace(PERIOD, boards=("zuid",)))
    # an analyst's home board is seen in full
    r = report(store, "analyst", "noord")
    assert {line.board for line in r.lines} == {"noord"} and r.hidden_schools == 5


# --- normalisation -----------------------------------------------------------------------------


def test_normalised_ratio_against_the_technology_and_tier(store: ComparisonStore) -> None:
    # fibre, 100 Mbit/s (tier 2): medians 0.60, 0.80, 0.90, 1.00, 1.20 -> cell median 0.90
    for school, speed in (("a", 60), ("b", 80), ("c", 90), ("d", 100), ("e", 120)):
        add(store, school, [speed] * 5)
    # the same provider's vdsl lines, 50 Mbit/s (tier 1): 4 lines only
    for school in ("v1", "v2", "v3", "v4"):
        add(store, school, [25] * 5, technology="vdsl", down_mbps=50)
    r = report(store)
    assert line_of(r, "a").normalised_ratio.value == pytest.approx(0.60 / 0.90)
    assert line_of(r, "e").normalised_ratio.value == pytest.approx(1.20 / 0.90)
    assert line_of(r, "v1").normalised_ratio.missing == "too_few_lines"
    fibre = next(g for g in r.by_provider_technology_tier if g.technology == "fibre")
    # normalised values 0.667, 0.889, 1.0, 1.111, 1.333: 3rd = 1.0
    assert fibre.normalised_ratio.value == pytest.approx(1.0)
    assert (fibre.tier, fibre.lines) == (2, 5)
    assert next(g for g in r.by_technology if g.technology == "vdsl").median_ratio.missing == "too_few_lines"


# --- benchmark -------------------------------------------------------------------------------


def bench(store: ComparisonStore, school: str, board: str = "noord", role: Role = "admin",
          viewer_board: str | None = None):  # type: ignore[no-untyped-def]
    return build_benchmark(store.engine, store.viewer(role, viewer_board), board, school, PERIOD,
                           now=NOW, default_timezone=TIMEZONE)


def test_benchmark_quartiles_and_similarity_widening(store: ComparisonStore) -> None:
    add(store, "me", [85] * 5, cost=170.0)  # median 0.85, cost per Mbit/s 170 / 85 = 2.0
    # peers at 100 Mbit/s fibre (tier 2), other boards: medians 0.60, 0.70, 0.80, 0.90
    for i, speed in enumerate((60, 70, 80, 90)):
        add(store, f"peer{i}", [speed] * 5, board="zuid", cost=180.0)
    b = bench(store, "me")
    assert b.similarity == "none" and b.figures == () and b.line is not None
    # a 250 Mbit/s fibre line (tier 3) at 0.95: only "same technology" takes it in
    add(store, "big", [237.5] * 5, board="zuid", down_mbps=250, cost=180.0)
    b = bench(store, "me")
    assert (b.similarity, b.peers) == ("technology", 5)
    ratio = next(f for f in b.figures if f.name == "median_ratio")
    # peers 0.60, 0.70, 0.80, 0.90, 0.95: p25 = ceil(1.25) = 2nd = 0.70, median = 3rd = 0.80,
    # p75 = ceil(3.75) = 4th = 0.90; worse than 0.85: 0.60, 0.70, 0.80 -> 3/5
    assert (ratio.peers_p25, ratio.peers_median, ratio.peers_p75) == pytest.approx((0.70, 0.80, 0.90))
    assert ratio.better_than == pytest.approx(0.6) and ratio.higher_is_better
    cost = next(f for f in b.figures if f.name == "cost_per_mbps")
    # peers' cost per Mbit/s: 180/60 = 3.0, 180/70, 180/80, 180/90 = 2.0, 180/237.5 = 0.758;
    # lower is better: worse (higher) than 2.0: 3.0, 2.571, 2.25 -> 3/5
    assert cost.better_than == pytest.approx(0.6) and not cost.higher_is_better
    add(store, "peer4", [50] * 5, board="zuid")  # a fifth tier-2 peer: like for like again
    b = bench(store, "me")
    assert (b.similarity, b.peers) == ("technology_tier", 5)


def test_benchmark_scope(store: ComparisonStore) -> None:
    add(store, "me", [85] * 5)
    # a school the viewer may not see is told as one that does not exist, in the same words
    missing = r"^no school 'noord/me' \(see: school list\)$"
    with pytest.raises(UnknownSchool, match=missing):  # an analyst, and Noord has not shared its schools
        bench(store, "me", role="analyst")
    add(store, "other", [85] * 5, board="zuid")
    with pytest.raises(UnknownSchool, match=missing):
        bench(store, "me", role="board_viewer", viewer_board="zuid")
    assert bench(store, "me", role="board_viewer", viewer_board="noord").school == "me"
    with pytest.raises(UnknownSchool, match=r"^no school 'noord/nowhere' \(see: school list\)$") as caught:
        bench(store, "nowhere")
    assert caught.value.code == "unknown_school"
    assert caught.value.params == {"board": "noord", "school": "nowhere"}
    assert SchoolNotFound is UnknownSchool and issubclass(SchoolNotFound, ReportError)


# --- filters -----------------------------------------------------------------------------------


def test_filters_narrow_the_lines(store: ComparisonStore) -> None:
    add(store, "a", [90] * 5, region="Noord")
    add(store, "b", [90] * 5, region="Zuid", board="zuid", provider_name="Kabelco", technology="cable")
    add(store, "c", [90] * 5, region="zuid", board="zuid")

    def schools(**changes: tuple[str, ...]) -> list[str]:
        chosen = report(store, filters=dataclasses.replace(PERIOD, **changes))
        return sorted(line.school for line in chosen.lines)

    assert schools() == ["a", "b", "c"]
    assert schools(regions=("ZUID",)) == ["b", "c"]  # any case
    assert schools(technologies=("cable",)) == ["b"]
    assert schools(boards=("noord",)) == ["a"]
    assert schools(providers=("glasnet",)) == ["a", "c"]
    assert schools(technologies=("adsl",)) == []  # a technology nobody has: an empty report
    assert "no_lines" in report(store, filters=dataclasses.replace(PERIOD, technologies=("adsl",))).notes
    r = report(store)
    assert r.choices.regions == ("Noord", "Zuid")  # "Zuid" and "zuid" are one region
    assert r.choices.providers == (("glasnet", "Glasnet"), ("kabelco", "Kabelco"))


@pytest.mark.parametrize(("changes", "message", "code", "params"), [
    ({"start": date(2026, 4, 1)}, "after it ends", "period_reversed",
     {"start": "2026-04-01", "end": "2026-03-31"}),
    ({"start": date(2025, 1, 1)}, "at most 400", "period_too_long", {"days": 455, "maximum": 400}),
    # the day after 9999-12-31 does not exist: this was an OverflowError (a 500)
    ({"start": date(9999, 12, 1), "end": date(9999, 12, 31)}, "outside 2000-01-01 to 2100-12-31",
     "date_out_of_range", {"date": "9999-12-01", "first": "2000-01-01", "last": "2100-12-31"}),
    ({"start": date(1999, 12, 31)}, "outside", "date_out_of_range", {"date": "1999-12-31"}),
    ({"boards": ("nowhere",)}, "no board", "unknown_board", {"board": "nowhere"}),
    ({"regions": ("atlantis",)}, "region", "unknown_region", {"region": "atlantis"}),
    ({"technologies": ("pigeon",)}, "technology", "unknown_technology", {"technology": "pigeon"}),
    ({"providers": ("nobody",)}, "provider", "unknown_provider", {"provider": "nobody"}),
])
def test_bad_filters_are_one_line_errors(store: ComparisonStore, changes: dict[str, object],
                                         message: str, code: str, params: dict[str, object]) -> None:
    add(store, "a", [90] * 5, region="Noord")
    with pytest.raises(ReportError, match=message) as caught:
        report(store, filters=dataclasses.replace(PERIOD, **changes))  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    assert caught.value.code == code
    assert params.items() <= caught.value.params.items()


def test_default_filters_are_the_last_91_whole_days() -> None:
    # On 31 March: 30 December through 30 March (today is not over yet).
    f = default_filters(date(2026, 3, 31))
    assert (f.start, f.end) == (date(2025, 12, 30), date(2026, 3, 30))
    assert (f.end - f.start).days + 1 == 91


# --- the cooperative scenario and the time a report takes -----------------------------------------


def test_the_cooperative_scenario_for_an_analyst(tmp_path: Path, db_url: str) -> None:
    from support.comparison import cooperative

    store = cooperative(tmp_path, db_url)
    r = build_report(store.engine, store.viewer("analyst"), PERIOD, now=NOW, default_timezone=TIMEZONE)
    # Zuid shared: its 5 schools listed; Noord and Midden (11 schools) only in aggregates
    assert {line.board for line in r.lines} == {"zuid"} and r.hidden_schools == 11
    groups = {g.provider_id: g for g in r.by_provider}
    # Glasnet: 5 hidden schools (Noord 2, Midden 3) and Zuid's 2: shown
    assert not groups["glasnet"].hidden and groups["glasnet"].lines == 7
    # Kabelco and Koperlijn: 3 hidden schools each: hidden
    assert groups["kabelco"].hidden and groups["koperlijn"].hidden
    es = next(line for line in r.lines if line.school == "de-es")
    assert es.median_ratio.missing == "too_few_tests"
    # De Vlinder's 45 min outage over 5 Kabelco schools x 22 days x 7 h (admin sees it)
    admin = build_report(store.engine, store.viewer("admin"), PERIOD, now=NOW, default_timezone=TIMEZONE)
    kabelco = next(g for g in admin.by_provider if g.provider_id == "kabelco")
    assert kabelco.availability.value == pytest.approx(1 - 2700 / (5 * 554_400))
    assert kabelco.incidents == 1 and kabelco.median_restore_seconds.value == pytest.approx(2700)
    assert admin.as_dict()["overall"]["lines"] == 16


def test_the_report_reads_each_table_once_whatever_the_schools_and_tests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No query per school or per test (its speed is measured in tests/bench/bench_report.py):
    a store with four times the schools and tests takes exactly as many statements (latency
    and loss, asked per school from their own cache, left out)."""
    from sqlalchemy import event

    from collector.comparison import compute
    from collector.comparison.connectivity import LinkQuality

    monkeypatch.setattr(compute, "school_link_quality", lambda *args: LinkQuality(0, 0, 0, 0, None))

    def statements(folder: Path, schools: int, tests: int) -> int:
        folder.mkdir()
        store = ComparisonStore.create(folder)
        for i in range(schools):
            store.line(f"board-{i % 3}", f"school-{i}", provider=f"Provider {i % 3}",
                       technology=("fibre", "cable", "vdsl")[i % 3], down_mbps=100, cost=100.0, pupils=200)
            store.tests(f"board-{i % 3}", f"school-{i}", [50 + (j % 50) for j in range(tests)])
        seen: list[str] = []
        event.listen(store.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
        report = build_report(store.engine, store.viewer("analyst"), PERIOD, now=NOW,
                              default_timezone=TIMEZONE)
        assert report.overall.tests == schools * tests
        return len(seen)

    assert statements(tmp_path / "small", 6, 10) == statements(tmp_path / "large", 24, 40)


# --- differencing, complementary suppression and the other privacy rules -----------------------


def test_an_analyst_names_only_boards_it_sees_one_by_one(store: ComparisonStore) -> None:
    five_schools_per_board(store, "noord", 5)
    five_schools_per_board(store, "midden", 5)
    five_schools_per_board(store, "zuid", 5)
    store.share("zuid")
    # Noord alone against Noord + Midden would set one unshared board against another:
    # naming an unshared board is as unknown as a board that does not exist
    with pytest.raises(ReportError, match=r"^no board with id 'noord'$") as caught:
        report(store, "analyst", filters=dataclasses.replace(PERIOD, boards=("noord",)))
    assert (caught.value.code, caught.value.params) == ("unknown_board", {"board": "noord"})
    r = report(store, "analyst", filters=dataclasses.replace(PERIOD, boards=("zuid",)))
    assert {line.board for line in r.lines} == {"zuid"} and r.overall.schools == 5
    assert [b for b, _ in report(store, "analyst").choices.boards] == ["zuid"]
    # an analyst's home board is its own to name; the unshared others still all together only
    home = report(store, "analyst", "noord", dataclasses.replace(PERIOD, boards=("noord",)))
    assert home.overall.schools == 5 and home.hidden_schools == 0
    assert [b for b, _ in home.choices.boards] == ["noord", "zuid"]
    with pytest.raises(ReportError, match="no board with id 'midden'"):
        report(store, "analyst", "noord", dataclasses.replace(PERIOD, boards=("midden",)))


def test_a_distribution_shows_visible_lines_and_only_quartiles_of_the_others(store: ComparisonStore) -> None:
    # Zuid (shared): 0.91 .. 0.95; Noord (not shared): 0.50, 0.60, 0.70, 0.80, 0.90
    for i, speed in enumerate((91, 92, 93, 94, 95)):
        add(store, f"z{i}", [speed] * 5, board="zuid")
    store.share("zuid")
    for i, speed in enumerate((50, 60, 70, 80, 90)):
        add(store, f"n{i}", [speed] * 5)
    d = report(store, "analyst").distributions[0]
    assert d.ratios == pytest.approx((0.91, 0.92, 0.93, 0.94, 0.95)) and not d.hidden
    # hidden medians 0.5 .. 0.9: p25 = ceil(1.25) = 2nd = 0.60, median = 3rd = 0.70,
    # p75 = ceil(3.75) = 4th = 0.80
    assert d.hidden_lines == 5 and d.hidden_quartiles == pytest.approx((0.60, 0.70, 0.80))
    # an admin sees every line as a point
    d = report(store).distributions[0]
    assert len(d.ratios) == 10 and (d.hidden_lines, d.hidden_quartiles) == (0, None)


def test_the_overall_row_does_not_give_away_a_hidden_provider(store: ComparisonStore) -> None:
    # The reviewer's example: Glasnet with 5 shared (Zuid) and 5 unshared (Noord) schools,
    # and one unshared school on a provider of its own. Overall minus Glasnet would be it.
    for i in range(5):
        add(store, f"z{i}", [90] * 5, board="zuid")
        add(store, f"n{i}", [80] * 5)
    store.share("zuid")
    add(store, "alone", [30] * 5, provider_name="Eenling")
    r = report(store, "analyst", filters=dataclasses.replace(PERIOD, providers=("glasnet", "eenling")))
    glasnet, eenling = provider(r, "glasnet"), provider(r, "eenling")
    assert eenling.hidden  # 1 hidden school
    # overall (6 hidden schools) is shown, so the row beside the hidden one must go too
    assert not r.overall.hidden and glasnet.hidden and glasnet.incidents is None
    # its counts stay
    assert (glasnet.schools, glasnet.lines, glasnet.tests) == (10, 10, 50)
    # the technology row (fibre: the same 11 lines) and the cells: Eenling's cell is hidden,
    # so Glasnet's cell in fibre goes too
    cells = {g.provider_id: g for g in r.by_provider_technology_tier}
    assert cells["eenling"].hidden and cells["glasnet"].hidden
    # line medians 0.3, 0.8 x5, 0.9 x5: 6th of 11 = 0.80
    assert r.overall.median_ratio.value == pytest.approx(0.80)
    assert r.hour_profiles[0].provider_id == "eenling"
    assert all(e.missing == "hidden" for p in r.hour_profiles for e in p.hours.values())
    assert all(d.hidden and d.hidden_quartiles is None for d in r.distributions)
    assert {line.school for line in r.lines} == {f"z{i}" for i in range(5)}  # the visible ones stay listed
    # an admin sees everything
    assert not provider(report(store), "glasnet").hidden


def test_complementary_suppression_takes_the_fewest_hidden_schools_first() -> None:
    from collector.comparison.privacy import complementary

    hidden = {"P": frozenset(range(1, 13)), "A": frozenset({1}), "B": frozenset(range(2, 7)),
              "C": frozenset(range(7, 13)), "D": frozenset()}
    # A is hidden (1 school): B (5 hidden) goes before C (6); then 1 + 5 = 6 >= 5: C, D stay
    assert complementary([("P", ["A", "B", "C", "D"])], hidden, ["A"]) == {"A", "B"}
    # a parent already hidden needs nothing more
    assert complementary([("P", ["A", "B", "C", "D"])], hidden, ["A", "P"]) == {"A", "P"}
    # rows hidden in one partition are children of another: repeated until nothing changes
    hidden.update({"Q": frozenset(range(2, 13)), "B1": frozenset({2}), "B2": frozenset(range(3, 13))})
    assert complementary([("P", ["A", "B", "C", "D"]), ("Q", ["B1", "B2"])], hidden, ["A", "B1"]) \
        == {"A", "B", "B1", "B2"}


def test_benchmark_peers_are_schools_the_viewer_cannot_see(store: ComparisonStore) -> None:
    add(store, "me", [85] * 5)
    for i in range(5):  # five more of the viewer's own board
        add(store, f"own{i}", [60 + 5 * i] * 5)
    add(store, "theirs", [90] * 5, board="zuid")
    b = bench(store, "me", role="board_viewer", viewer_board="noord")
    # only Zuid's one school is a peer for Noord: too few, nothing leaves
    assert (b.similarity, b.peers, b.figures) == ("none", 0, ())
    # the admin compares with every other school: 6
    assert (bench(store, "me").similarity, bench(store, "me").peers) == ("technology_tier", 6)


def test_benchmark_counts_distinct_schools_not_lines(store: ComparisonStore) -> None:
    add(store, "me", [85] * 5)
    for i in range(3):
        add(store, f"peer{i}", [70 + 5 * i] * 5, board="zuid")
    # a fourth peer school with two main lines: 5 lines, 4 schools
    add(store, "two", [60] * 5, board="zuid")
    store.line("zuid", "two", provider="Glasnet", technology="fibre", down_mbps=100, connection="main2")
    store.tests("zuid", "two", [65] * 5, connection="main2")
    b = bench(store, "me")
    assert (b.similarity, b.peers) == ("none", 0)
    add(store, "peer3", [95] * 5, board="zuid")  # a fifth school
    b = bench(store, "me")
    assert (b.similarity, b.peers) == ("technology_tier", 5)
    ratio = next(f for f in b.figures if f.name == "median_ratio")
    # 6 peer lines: 0.60, 0.65, 0.70, 0.75, 0.80, 0.95: p25 = ceil(1.5) = 2nd = 0.65,
    # median = 3rd = 0.70, p75 = ceil(4.5) = 5th = 0.80; worse than 0.85: 5 of 6
    assert ratio.peers_n == 6
    assert (ratio.peers_p25, ratio.peers_median, ratio.peers_p75) == pytest.approx((0.65, 0.70, 0.80))
    assert ratio.better_than == pytest.approx(5 / 6)


# --- normalisation, upload, incidents and reasons --------------------------------------------------


def test_normalisation_cells_ignore_the_filters(store: ComparisonStore) -> None:
    # fibre 100 Mbit/s, tier 2: Glasnet 0.80 .. 1.00, Kabelco 0.50 .. 0.70
    for i, speed in enumerate((80, 85, 90, 95, 100)):
        add(store, f"g{i}", [speed] * 5, region="Noord")
    for i, speed in enumerate((50, 55, 60, 65, 70)):
        add(store, f"k{i}", [speed] * 5, provider_name="Kabelco", region="Zuid")
    # the cell: all 10 medians, lower middle = 5th = 0.70, whatever was asked for
    for changes in ({}, {"providers": ("glasnet",)}, {"regions": ("Noord",)}):
        r = report(store, filters=dataclasses.replace(PERIOD, **changes))  # type: ignore[arg-type]
        assert line_of(r, "g2").normalised_ratio.value == pytest.approx(0.90 / 0.70)
        # Glasnet's: 3rd of 0.80/0.70 .. 1.00/0.70 = 0.90 / 0.70 (1.0 if the cell were Glasnet's)
        assert provider(r, "glasnet").normalised_ratio.value == pytest.approx(0.90 / 0.70)


def test_group_upload_uses_measured_lines_only(store: ComparisonStore) -> None:
    # five measured lines, upload 0.50 .. 0.90 of 100
    for i, up in enumerate((50, 60, 70, 80, 90)):
        store.line("noord", f"m{i}", provider="Glasnet", technology="fibre", down_mbps=100)
        store.tests("noord", f"m{i}", [90] * 5, ups_mbps=[up] * 5)
    # a line with 4 download tests (not measured) but 6 upload tests at 0.10
    store.line("noord", "few", provider="Glasnet", technology="fibre", down_mbps=100)
    store.tests("noord", "few", [90] * 4 + [None] * 2, ups_mbps=[10] * 6)
    r = report(store)
    assert line_of(r, "few").upload_median_ratio.value == pytest.approx(0.10)
    # 0.5, 0.6, 0.7, 0.8, 0.9: 3rd = 0.70 (with "few" it would be 0.60)
    assert provider(r, "glasnet").upload_median_ratio.value == pytest.approx(0.70)
    assert provider(r, "glasnet").upload_median_ratio.n == 5


def test_a_school_wide_incident_counts_once_in_a_group(store: ComparisonStore) -> None:
    add(store, "two", [90] * 5)
    store.line("noord", "two", provider="Glasnet", technology="fibre", down_mbps=100, connection="main2")
    store.tests("noord", "two", [90] * 5, connection="main2")
    day = date(2026, 3, 10)
    store.incident("noord", "two", kind="outage", started_at=local(day, 9), restored_at=local(day, 13),
                   connection=None)  # the school's: 4 h, on both main lines
    store.incident("noord", "two", kind="bandwidth", started_at=local(day, 14),
                   restored_at=local(day, 16))  # main only: 2 h
    r = report(store)
    lines = {f.connection: f for f in r.lines}
    assert (lines["main"].incidents, lines["main2"].incidents) == (2, 1)
    group = provider(r, "glasnet")
    # 2 incidents (not 3); restores 2 h and 4 h: lower middle = 2 h (4 h if 4 h counted twice)
    assert group.incidents == 2 and r.overall.incidents == 2
    assert group.median_restore_seconds.value == pytest.approx(2 * 3600)
    assert group.median_restore_seconds.n == 2


def test_reasons_for_a_group_without_the_figure(store: ComparisonStore) -> None:
    for school in "abcde":
        add(store, school, [90] * 5)
    store.incident("noord", "a", kind="outage", started_at=local(date(2026, 3, 10), 9))  # open
    r = report(store)
    group = provider(r, "glasnet")
    # no connectivity windows anywhere: nothing measured, not "too few (0 lines)"
    assert (group.latency_seconds.missing, group.loss_ratio.missing) == ("no_data", "no_data")
    assert group.availability.missing == "no_data"
    # an incident that is not restored: no time to restore
    assert line_of(r, "a").median_restore_seconds.missing == "no_incidents"
    assert group.incidents == 1 and group.median_restore_seconds.missing == "no_incidents"
    # lines without a single test: no data; lines with too few tests: too few lines
    store.line("noord", "empty", provider="Leeg", technology="fibre", down_mbps=100)
    store.line("noord", "few", provider="Weinig", technology="fibre", down_mbps=100)
    store.tests("noord", "few", [90] * 4)
    r = report(store)
    assert provider(r, "leeg").median_ratio.missing == "no_data"
    assert provider(r, "leeg").share_below_80.missing == "no_data"
    few = provider(r, "weinig").median_ratio
    assert (few.missing, few.n) == ("too_few_lines", 0)
