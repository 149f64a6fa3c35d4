"""Complementary suppression across the like-for-like cells: with a provider and a technology
both withheld, the overall row minus the shown cells must not give away a hidden school."""

from __future__ import annotations

import datetime as dt
import itertools

from collector.accounts.roles import Viewer
from collector.comparison.compute import assemble
from collector.comparison.lines import LineData
from collector.comparison.model import Estimate, FilterChoices, Filters, LineFigures

PKS = itertools.count(1)


def line(provider: str, technology: str, visible: bool, ratio: float, down: float) -> LineData:
    """A measured line with 1,000 observed school seconds, ``down`` of them in an outage."""
    pk = next(PKS)

    def estimate(value: float, unit: str = "tests") -> Estimate:
        return Estimate(value=value, n=10, unit=unit)

    figures = LineFigures(
        board="b", school=f"s{pk}", school_name=f"S{pk}", region=None, pupils=None, connection="main",
        provider_id=provider, provider=provider.title(), technology=technology, tier=2,
        advertised_download_bytes_per_second=1e7, advertised_upload_bytes_per_second=1e7, tests=30,
        tests_all_hours=30, median_ratio=estimate(ratio), ratio_80_80=estimate(ratio * 0.9),
        upload_median_ratio=estimate(ratio), median_download_bytes_per_second=estimate(ratio * 1e7),
        below_80=ratio < 0.8, availability=Estimate(value=1 - down / 1000, n=1000, unit="seconds"),
        latency_seconds=Estimate.none("no_data"), loss_ratio=Estimate.none("no_data"), incidents=0,
        median_restore_seconds=Estimate.none("no_incidents"), monthly_cost=Estimate.none("no_cost"),
        currency=None, cost_per_mbps=Estimate.none("no_cost"), cost_per_pupil=Estimate.none("no_cost"),
        normalised_ratio=estimate(1.0, "lines"))
    return LineData(figures=figures, school_pk=pk, board_pk=1 if visible else 2, line_pk=pk,
                    visible=visible, measured=True, observed_seconds=1000.0, outage_seconds=down)


def test_the_overall_row_minus_the_shown_cells_gives_no_hidden_school_away() -> None:
    # Provider p on fibre: 5 visible schools and 1 hidden one (137 s down) -> p, fibre and
    # their cell are withheld. Provider q on cable: 5 hidden and 5 visible -> q and cable are
    # withheld by complementary suppression. Were the q/cable cell shown beside the overall
    # row, overall - cell - p's visible lines would be the hidden school's 1,000 s and 137 s.
    datas = [line("p", "fibre", True, 0.9, 10.0) for _ in range(5)]
    datas.append(line("p", "fibre", False, 0.7, 137.0))
    datas += [line("q", "cable", False, 0.85, 20.0) for _ in range(5)]
    datas += [line("q", "cable", True, 0.95, 5.0) for _ in range(5)]
    report = assemble(datas, Filters(start=dt.date(2026, 9, 1), end=dt.date(2026, 11, 30)),
                      Viewer(role="analyst", name="a", board_id=1, board="b"),
                      FilterChoices(regions=(), technologies=("cable", "fibre"), boards=(),
                                    providers=(("p", "P"), ("q", "Q"))),
                      now=0.0, default_timezone="Europe/Amsterdam")
    cell_q = next(g for g in report.by_provider_technology_tier if g.provider_id == "q")
    assert report.by_provider[0].hidden and report.by_provider[1].hidden
    assert cell_q.hidden or report.overall.hidden
