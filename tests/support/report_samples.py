"""Hand-built comparison reports for the rendering tests (collector/comparison/model.py).

The figures are chosen, not computed: the renderings are tested on what they say about a
``Report``, whatever the statistics (collector/comparison/compute.py) would have made of a
store. ``sample_report`` has a provider with every figure, one with too few lines (and no
cost), one hidden from the viewer, a line with too few tests, intervals and none.
"""

# The en dash is the range sign readers expect ("78–90 %"), not a typo for a hyphen.
# ruff: noqa: RUF003
from __future__ import annotations

from dataclasses import replace
from datetime import date

from collector.comparison.model import (
    Benchmark,
    Distribution,
    Estimate,
    FilterChoices,
    Filters,
    GroupFigures,
    HourProfile,
    LineFigures,
    PeerFigure,
    Report,
)

MBIT = 125_000.0
FILTERS = Filters(start=date(2026, 1, 5), end=date(2026, 3, 27))


def ratio(value: float, low: float | None = None, high: float | None = None, n: int = 40) -> Estimate:
    return Estimate(value=value, n=n, unit="tests", low=low, high=high)


def group(
    provider_id: str | None,
    provider: str | None,
    technology: str | None = None,
    tier: int | None = None,
    *,
    schools: int = 6,
    lines: int = 6,
    measured: int = 6,
    tests: int = 240,
    median: Estimate | None = None,
    hidden: bool = False,
    cost_per_mbps: Estimate | None = None,
) -> GroupFigures:
    if hidden:
        none = Estimate.none("hidden", n=lines)
        return GroupFigures(
            provider_id, provider, technology, tier, schools, lines, measured, tests, True,
            none, none, none, none, none, none, none, none, None, none, none, None, none, none,
        )
    few = Estimate.none("too_few_lines", n=measured, unit="lines")
    median = median or Estimate(0.84, measured, "lines", 0.78, 0.90)
    enough = median.value is not None
    return GroupFigures(
        provider_id=provider_id,
        provider=provider,
        technology=technology,
        tier=tier,
        schools=schools,
        lines=lines,
        measured_lines=measured,
        tests=tests,
        hidden=False,
        median_ratio=median,
        ratio_80_80=Estimate(0.61, measured, "lines") if enough else few,
        share_below_80=Estimate(1 / 3, measured, "lines", 0.097, 0.700) if enough else few,
        upload_median_ratio=Estimate(0.955, measured, "lines", 0.9, 0.99) if enough else few,
        normalised_ratio=Estimate(0.97, measured, "lines") if enough else few,
        availability=Estimate(0.9987, 1_800_000, "seconds"),
        latency_seconds=Estimate(0.0125, lines, "lines"),
        loss_ratio=Estimate(0.0012, lines, "lines"),
        incidents=3,
        median_restore_seconds=Estimate(5400.0, 3, "incidents"),
        monthly_cost=Estimate(450.0, lines, "lines") if cost_per_mbps is None or cost_per_mbps.value
        else Estimate.none("no_cost"),
        currency="EUR",
        cost_per_mbps=cost_per_mbps or Estimate(2.5, measured, "lines", 2.1, 3.25),
        cost_per_pupil=Estimate(1.8, lines, "lines") if cost_per_mbps is None or cost_per_mbps.value
        else Estimate.none("no_cost"),
    )


def line(
    school: str,
    name: str,
    provider_id: str,
    provider: str,
    *,
    tests: int = 40,
    median: float = 0.84,
    board: str = "de-regenboog",
) -> LineFigures:
    enough = tests >= 5
    few = Estimate.none("too_few_tests", n=tests, unit="tests")
    return LineFigures(
        board=board,
        school=school,
        school_name=name,
        region="Utrecht",
        pupils=240,
        connection="main",
        provider_id=provider_id,
        provider=provider,
        technology="fibre",
        tier=2,
        advertised_download_bytes_per_second=100 * MBIT,
        advertised_upload_bytes_per_second=100 * MBIT,
        tests=tests,
        tests_all_hours=tests + 3,
        median_ratio=ratio(median, 0.8, 0.9, tests) if enough else few,
        ratio_80_80=ratio(0.61, n=tests) if enough else few,
        upload_median_ratio=ratio(0.95, n=tests) if enough else few,
        median_download_bytes_per_second=ratio(median * 100 * MBIT, n=tests) if enough else few,
        below_80=(median < 0.8) if enough else None,
        availability=Estimate(0.9991, 300_000, "seconds"),
        latency_seconds=Estimate(0.0118, 20, "lines"),
        loss_ratio=Estimate(0.0004, 20, "lines"),
        incidents=1,
        median_restore_seconds=Estimate(3600.0, 1, "incidents"),
        monthly_cost=Estimate(450.0, 1, "lines"),
        currency="EUR",
        cost_per_mbps=Estimate(450 / (median * 100), 1, "lines") if enough else few,
        cost_per_pupil=Estimate(1.875, 1, "lines"),
        normalised_ratio=Estimate(0.98, 1, "lines") if enough else few,
    )


def sample_report(hidden_schools: int = 4) -> Report:
    fibre = group("example-fibre", "Example Fibre", schools=6, lines=6, measured=6)
    few = group(
        "kabelnet", "Kabelnet", schools=3, lines=3, measured=3, tests=90,
        median=Estimate.none("too_few_lines", n=3, unit="lines"),
        cost_per_mbps=Estimate.none("no_cost", n=0, unit="lines"),
    )
    hidden = group("dsl-direct", "DSL Direct", schools=4, lines=4, measured=4, tests=160, hidden=True)
    overall = group(None, None, schools=13, lines=13, measured=13, tests=490,
                    median=Estimate(0.81, 13, "lines", 0.74, 0.88))
    lines = (
        line("de-regenboog", "De Regenboog", "example-fibre", "Example Fibre", median=0.915),
        line("het-kompas", "Het Kompas", "example-fibre", "Example Fibre", median=0.72),
        line("de-wilg", "De Wilg", "kabelnet", "Kabelnet", tests=3),
    )
    return Report(
        filters=FILTERS,
        generated_at=1774605600.0,  # 2026-03-27 10:00 UTC
        timezone="Europe/Amsterdam",
        viewer_role="analyst",
        viewer_board="de-regenboog",
        by_provider=(fibre, few, hidden),
        by_technology=(group(None, None, "fibre", schools=9, lines=9, measured=9),
                       group(None, None, "vdsl", hidden=True, schools=4, lines=4, measured=4)),
        by_provider_technology_tier=(group("example-fibre", "Example Fibre", "fibre", 2),
                                     group("kabelnet", "Kabelnet", "cable", 2, schools=3, lines=3, measured=3,
                                           median=Estimate.none("too_few_lines", n=3, unit="lines"))),
        overall=overall,
        lines=lines,
        hidden_schools=hidden_schools,
        hour_profiles=(
            HourProfile("example-fibre", "Example Fibre",
                        {8: ratio(0.95), 9: ratio(0.9), 10: ratio(0.82), 11: ratio(0.78), 12: ratio(0.86),
                         13: Estimate.none("too_few_tests", n=2, unit="tests")}),
            HourProfile("kabelnet", "Kabelnet", {9: ratio(0.7, n=12), 10: ratio(0.65, n=12)}),
            HourProfile("dsl-direct", "DSL Direct", {}),
        ),
        distributions=(
            Distribution("example-fibre", "Example Fibre", (0.62, 0.72, 0.8, 0.88, 0.915, 1.02), False),
            Distribution("kabelnet", "Kabelnet", (0.55, 0.7, 0.74), False),
            Distribution("dsl-direct", "DSL Direct", (), True),
        ),
        choices=FilterChoices(
            regions=("Utrecht", "Gelderland"),
            technologies=("cable", "fibre", "vdsl"),
            boards=(("de-regenboog", "Stichting De Regenboog"), ("noord", "Scholengroep Noord")),
            providers=(("dsl-direct", "DSL Direct"), ("example-fibre", "Example Fibre"),
                       ("kabelnet", "Kabelnet")),
        ),
        notes=(),
    )


def sample_benchmark(similarity: str = "technology_tier") -> Benchmark:
    own = line("de-regenboog", "De Regenboog", "example-fibre", "Example Fibre", median=0.915)
    none = similarity == "none"
    figures = (
        PeerFigure("median_ratio", own.median_ratio, 0 if none else 7, None if none else 0.74,
                   None if none else 0.83, None if none else 0.9, None if none else 6 / 7, True),
        PeerFigure("latency_seconds", own.latency_seconds, 0 if none else 7, None if none else 0.010,
                   None if none else 0.014, None if none else 0.02, None if none else 4 / 7, False),
        PeerFigure("cost_per_pupil", Estimate.none("no_pupils"), 0 if none else 7, None if none else 1.5,
                   None if none else 1.9, None if none else 2.4, None, False),
    )
    return Benchmark(
        board="de-regenboog",
        school="de-regenboog",
        school_name="De Regenboog",
        filters=FILTERS,
        generated_at=1774605600.0,
        line=own,
        similarity=similarity,  # type: ignore[arg-type]
        peers=0 if none else 7,
        figures=figures,
    )


def many_providers_report(count: int) -> Report:
    """``sample_report`` with ``count`` measured providers, each with a distribution of six
    lines and a school-day profile: the charts' height grows with the providers."""
    base = sample_report()
    names = [(f"provider-{i:02d}", f"Provider {i:02d}") for i in range(count)]
    groups = tuple(group(pid, name) for pid, name in names)
    profiles = tuple(
        HourProfile(pid, name, {h: ratio(0.6 + 0.01 * i + 0.02 * (h - 8)) for h in range(8, 16)})
        for i, (pid, name) in enumerate(names)
    )
    distributions = tuple(
        Distribution(pid, name, tuple(sorted(0.5 + 0.01 * i + 0.07 * k for k in range(6))), False)
        for i, (pid, name) in enumerate(names)
    )
    return replace(base, by_provider=groups, hour_profiles=profiles, distributions=distributions,
                   choices=replace(base.choices, providers=tuple(names)))
