"""The comparison report's renderings from hand-built reports (tests/support/report_samples.py):
the web page, the charts, the PDF (read back with pypdf), the CSV and the JSON, in Dutch and
English."""

# The en dash is the range sign readers expect ("78–90 %"), not a typo for a hyphen.
# ruff: noqa: RUF001, RUF003
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace

import pytest
from pypdf import PdfReader
from support.report_samples import many_providers_report, sample_benchmark, sample_report

from collector.comparison import charts, export, pdf, render, text
from collector.comparison.model import Estimate, Report

LANGS = ("nl", "en")
HIDDEN_EN = "hidden: rests on fewer than 5 schools of boards that have not shared"
HIDDEN_NL = "verborgen: rust op minder dan 5 scholen van besturen die niet gedeeld hebben"


def visible(html: str) -> str:
    """The page's words, tags dropped and whitespace folded (what a reader sees)."""
    without_style = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    without_tags = re.sub(r"<[^>]+>", " ", without_style)
    return " ".join(without_tags.replace("&#39;", "'").replace("&amp;", "&").replace("&#34;", '"').split())


@pytest.mark.parametrize("lang", LANGS)
def test_page_has_no_none_nan_or_bare_dash(lang: str) -> None:
    page = render.report_html(sample_report(), lang)  # type: ignore[arg-type]
    words = visible(page)
    for bad in ("None", "nan", "NaN", "inf", "null", "undefined"):
        assert not re.search(rf"\b{bad}\b", words), bad
    # no placeholder left unfilled ("{n}", "{{ x }}"): the page has no braces of its own
    assert "{" not in words and "}" not in words
    # no cell that is only a dash
    assert not re.search(r"<td[^>]*>\s*[-–—]?\s*</td>", page)


def test_numbers_in_each_language_format() -> None:
    nl = visible(render.report_html(sample_report(), "nl"))
    en = visible(render.report_html(sample_report(), "en"))
    assert "84 % (78–90 %)" in nl and "84% (78–90%)" in en
    assert "12,5 ms" in nl and "12.5 ms" in en
    assert "99,87 %" in nl and "99.87%" in en
    assert "€ 2,50 (€ 2,10–€ 3,25)" in nl and "€ 2.50 (€ 2.10–€ 3.25)" in en
    assert "1 u 30 min" in nl and "1 h 30 min" in en


@pytest.mark.parametrize(
    ("lang", "phrases"),
    [
        ("nl", ("Vergelijking van providers", "Per provider", "Per techniek", "Gelijk met gelijk",
                "Wat de cijfers betekenen", "te weinig metingen (3 verbindingen)",
                HIDDEN_NL, "geen kosten in de contracten",
                "te weinig metingen (3 metingen)", "analist coöperatie",
                "4 scholen van besturen die niet gedeeld hebben, tellen alleen mee in groepen van minstens "
                "5 scholen.", "minstens 5 metingen in schooltijd", "5 jan 2026 – 27 mrt 2026")),
        ("en", ("Provider comparison", "Per provider", "Per technology", "Like for like",
                "What the figures mean", "too few measurements (3 lines)", HIDDEN_EN,
                "no cost in the contracts", "too few measurements (3 tests)", "cooperative analyst",
                "4 schools of boards that have not shared are counted only in groups of at least 5 schools.",
                "at least 5 tests in school hours", "5 Jan 2026 – 27 Mar 2026")),
    ],
)
def test_page_words_and_reasons(lang: str, phrases: tuple[str, ...]) -> None:
    words = visible(render.report_html(sample_report(), lang))  # type: ignore[arg-type]
    for phrase in phrases:
        assert phrase in words, phrase


def test_privacy_note_only_when_schools_are_hidden() -> None:
    assert "counted only in groups" not in visible(render.report_html(sample_report(hidden_schools=0), "en"))


def test_page_loads_nothing_and_has_the_form_and_links() -> None:
    page = render.report_html(sample_report(), "en")
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing absolute, nothing elsewhere
    assert '<form class="filters" method="get" action="/report">' in page
    assert 'href="/report.pdf?from=2026-01-05&amp;to=2026-03-27&amp;lang=en"' in page
    assert 'href="/report.csv?from=2026-01-05&amp;to=2026-03-27"' in page
    assert ('href="/schools/de-regenboog/het-kompas/benchmark?from=2026-01-05&amp;to=2026-03-27'
            '&amp;lang=en"') in page
    assert page.count("<svg") == 3


def test_filters_are_kept_in_the_links_and_the_form() -> None:
    report = sample_report()
    report = replace(report, filters=replace(report.filters, regions=("Utrecht",), providers=("kabelnet",)))
    page = render.report_html(report, "nl")
    assert "region=Utrecht" in page and "provider=kabelnet" in page
    assert '<option value="Utrecht" selected>' in page and '<option value="kabelnet" selected>' in page
    assert "Regio: Utrecht; Provider: Kabelnet" in visible(page)


def test_hidden_group_says_why_once_and_no_figure() -> None:
    tables = render.group_tables(sample_report(), "en")
    row = next(r for r in tables[0].rows if r.labels == ("DSL Direct",))
    assert row.figures == () and row.hidden_reason == HIDDEN_EN
    assert row.counts == ("4", "4", "4", "160")


def test_distribution_chart_draws_measured_providers_and_names_the_rest() -> None:
    chart = charts.distribution_chart(sample_report(), "en")
    assert chart.omitted == [("Kabelnet", "too few measurements (3 lines)"),
                             ("DSL Direct", HIDDEN_EN)]
    dots = [s for s in chart.shapes if isinstance(s, charts.Dot)]
    assert len(dots) == 6  # Example Fibre's six lines
    assert chart.table_rows == [("Example Fibre", "6", "84%", "62%", "102%", "none: every line is shown")]
    # the 80 % and 100 % reference lines, at their place on the axis
    refs = [s for s in chart.shapes if isinstance(s, charts.Line) and s.stroke == "#444"]
    xs = sorted(round(r.x1, 1) for r in refs)
    span = charts.WIDTH - charts.LEFT - charts.RIGHT
    assert xs == [round(charts.LEFT + 0.8 / 1.2 * span, 1), round(charts.LEFT + 1.0 / 1.2 * span, 1)]
    assert "Example Fibre: 6 lines, median 84%, from 62% to 102%" in chart.alt
    assert "Kabelnet (too few measurements (3 lines))" in chart.alt


def test_profile_series_differ_without_colour() -> None:
    chart = charts.profile_chart(sample_report(), "nl")
    paths = [s for s in chart.shapes if isinstance(s, charts.Path)]
    assert len(paths) == 2 and paths[0].dash != paths[1].dash
    markers = {s.marker for s in chart.shapes if isinstance(s, charts.Dot)}
    assert markers == {"circle", "square"}
    assert chart.omitted == [("DSL Direct", HIDDEN_NL)]
    assert chart.table_rows[0][:2] == ("Example Fibre", "95 %")
    assert chart.table_header[1:] == ("08:00", "09:00", "10:00", "11:00", "12:00", "13:00")
    assert chart.table_rows[0][-1] == "te weinig metingen (2 metingen)"
    assert chart.table_rows[1] == ("Kabelnet", "niets gemeten", "70 %", "65 %") + ("niets gemeten",) * 3


def test_cost_chart_whiskers_and_missing_costs() -> None:
    chart = charts.cost_chart(sample_report(), "en")
    bars = [s for s in chart.shapes if isinstance(s, charts.Rect)]
    assert len(bars) == 1
    assert chart.omitted == [("Kabelnet", "no cost in the contracts"),
                             ("DSL Direct", HIDDEN_EN)]
    assert chart.table_rows == [("Example Fibre", "€ 2.50 (€ 2.10–€ 3.25)", "6 lines")]
    # the bar ends at 2.50 on an axis to 3.50, the whisker spans 2.10-3.25
    span = charts.WIDTH - charts.LEFT - charts.RIGHT
    assert bars[0].w == pytest.approx(2.5 / 3.5 * span)


def test_svg_is_escaped_and_titled() -> None:
    report = sample_report()
    dist = report.distributions[0]
    odd = replace(dist, provider="A<b>&Co")
    report = replace(report, distributions=(odd, *report.distributions[1:]),
                     by_provider=(replace(report.by_provider[0], provider_id=odd.provider_id),
                                  *report.by_provider[1:]))
    drawing = charts.svg(charts.distribution_chart(report, "en"))
    assert "A&lt;b&gt;&amp;Co" in drawing and "<b>" not in drawing
    assert '<title id="distribution-title">' in drawing and "<desc" in drawing


def test_empty_report_renders_with_words() -> None:
    report = sample_report()
    report = replace(report, by_provider=(), by_technology=(), by_provider_technology_tier=(), lines=(),
                     hour_profiles=(), distributions=(), hidden_schools=0)
    words = visible(render.report_html(report, "en"))
    assert "No lines match these filters." in words and "No schools to show one by one." in words
    assert "Nothing to draw for these filters." in words
    assert pdf.report_pdf(report, "en").startswith(b"%PDF")


@pytest.mark.parametrize("lang", LANGS)
def test_pdf_text_is_extractable(lang: str) -> None:
    reader = PdfReader(io.BytesIO(pdf.report_pdf(sample_report(), lang)))  # type: ignore[arg-type]
    assert reader.pages[0].mediabox.width > reader.pages[0].mediabox.height  # A4 landscape
    assert round(float(reader.pages[0].mediabox.width)) == 842
    words = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    expected = {
        "nl": ("Vergelijking van providers", "Example Fibre", "84 %", "te weinig metingen", "Pagina 1 /",
               "Grafieken"),
        "en": ("Provider comparison", "Example Fibre", "84%", "too few measurements", "Page 1 /", "Charts"),
    }[lang]
    for phrase in expected:
        assert phrase in words, phrase
    assert not re.search(r"\bNone\b|\bnan\b", words) and "{" not in words


def test_pdf_draws_the_charts() -> None:
    drawing = pdf.drawing(charts.distribution_chart(sample_report(), "en"))
    assert drawing.width == pytest.approx(charts.WIDTH) or drawing.width <= pdf.WIDTH
    strings = [s.text for s in drawing.getContents()[0].contents if hasattr(s, "text")]
    assert "Example Fibre" in strings and "80%" in strings


def test_csv_columns_and_rows_exact() -> None:
    body = export.report_csv(sample_report())
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0]) == list(export.CSV_COLUMNS)
    kinds = [r["row_kind"] for r in rows]
    assert kinds == (["provider"] * 3 + ["technology"] * 2 + ["provider_technology_tier"] * 2 + ["overall"]
                     + ["line"] * 3)
    fibre = rows[0]
    assert fibre["provider_id"] == "example-fibre" and fibre["schools"] == "6" and fibre["hidden"] == "false"
    figures = (fibre["median_ratio"], fibre["median_ratio_low"], fibre["median_ratio_high"])
    assert figures == ("0.84", "0.78", "0.9")
    assert fibre["median_ratio_n"] == "6" and fibre["median_ratio_unit"] == "lines"
    assert fibre["median_ratio_missing"] == "" and fibre["school"] == ""
    kabel = rows[1]
    assert kabel["median_ratio"] == "" and kabel["median_ratio_missing"] == "too_few_lines"
    assert kabel["median_ratio_n"] == "3" and kabel["cost_per_mbps_missing"] == "no_cost"
    hidden = rows[2]
    assert hidden["hidden"] == "true" and hidden["availability_missing"] == "hidden"
    tier = rows[5]
    assert tier["tier"] == "2" and tier["tier_mbps"] == "100"
    wilg = rows[-1]
    assert wilg["school"] == "de-wilg" and wilg["below_80"] == "" and wilg["tests"] == "3"
    assert wilg["median_ratio_missing"] == "too_few_tests" and wilg["share_below_80"] == ""
    assert rows[-3]["below_80"] == "false" and rows[-2]["below_80"] == "true"
    assert rows[-3]["advertised_download_bytes_per_second"] == "12500000.0"
    assert "None" not in body and "nan" not in body.lower()


def test_json_equals_as_dict() -> None:
    report = sample_report()
    assert json.loads(export.report_json(report)) == report.as_dict()
    benchmark = sample_benchmark()
    assert json.loads(export.benchmark_json(benchmark)) == benchmark.as_dict()


@pytest.mark.parametrize("lang", LANGS)
def test_benchmark_page(lang: str) -> None:
    words = visible(render.benchmark_html(sample_benchmark(), lang))  # type: ignore[arg-type]
    if lang == "en":
        assert "Your line compared with similar schools" in words
        assert "same technology (fibre) and advertised tier (100–250 Mbit/s): 7 other schools" in words
        assert "better than 86% of similar schools" in words
        assert "no pupil count in the registry" in words and "no comparison" in words
    else:
        assert "Uw verbinding vergeleken met vergelijkbare scholen" in words
        assert "beter dan 86 % van de vergelijkbare scholen" in words
        assert "11,8 ms" in words
    assert "Het Kompas" not in words and not re.search(r"\bNone\b", words) and "{" not in words


def test_benchmark_with_too_few_peers_says_so_and_shows_no_quartiles() -> None:
    words = visible(render.benchmark_html(sample_benchmark("none"), "en"))
    assert "Too few similar schools" in words
    assert "lower quarter" not in words


def test_estimate_words() -> None:
    assert text.figure(Estimate(0.846, 9, "lines"), "ratio", "nl") == "85 %"
    assert text.figure(Estimate.none("too_few_tests", n=1, unit="tests"), "ratio", "en") == \
        "too few measurements (1 test)"
    assert text.figure(Estimate.none("mixed_currency"), "money", "nl") == "kosten in meer dan één valuta"
    assert text.figure(Estimate(0.0123, 4, "lines", 0.01, 0.02), "latency", "en") == "12.3 ms (10 ms–20 ms)"
    assert text.tier(5, "en") == "≥ 1000 Mbit/s" and text.tier(0, "nl") == "0–30 Mbit/s"


# --- the review's defects (f4) ---------------------------------------------------------------


def test_pdf_with_twenty_providers_fits_its_charts_on_the_page() -> None:
    report = many_providers_report(20)
    tall = [c for c in charts.report_charts(report, "en") if c.height > pdf.CHART_MAX_HEIGHT]
    assert {c.key for c in tall} == {"distribution", "profile", "cost"}  # each was a LayoutError
    for chart in tall:
        drawn = pdf.drawing(chart)
        assert drawn.height <= pdf.CHART_MAX_HEIGHT + 0.01 and drawn.width <= pdf.FRAME_WIDTH
    reader = PdfReader(io.BytesIO(pdf.report_pdf(report, "en")))
    words = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Provider 00" in words and "Provider 19" in words


def test_profile_series_stay_distinct_past_five_providers() -> None:
    chart = charts.profile_chart(many_providers_report(6), "en")
    paths = [s for s in chart.shapes if isinstance(s, charts.Path)]
    assert len(paths) == 6
    # each provider's markers, in drawing order: 8 hours each, then the legend's marker
    markers = [s.marker for s in chart.shapes if isinstance(s, charts.Dot)]
    per_series = [markers[k * 9] for k in range(6)]
    pairs = set(zip((p.dash for p in paths), per_series, strict=True))
    assert len(pairs) == 6
    styles = {charts.series_style(i)[1:] for i in range(25)}
    assert len({(dash, marker) for dash, marker, _ in styles}) == 25


@pytest.mark.parametrize(
    ("lang", "fibre", "cable"),
    [("nl", "glasvezel", "kabel"), ("en", "fibre", "cable")],
)
def test_technologies_in_words(lang: str, fibre: str, cable: str) -> None:
    report = sample_report()
    report = replace(report, filters=replace(report.filters, technologies=("fibre",)))
    page = render.report_html(report, lang)  # type: ignore[arg-type]
    tables = render.group_tables(report, lang)  # type: ignore[arg-type]
    assert [r.labels[0] for r in tables[1].rows] == [fibre, "VDSL"]
    assert [r.labels[1] for r in tables[2].rows] == [fibre, cable]
    assert f'<option value="cable">{cable}</option>' in page
    assert f'<option value="fibre" selected>{fibre}</option>' in page
    assert render.line_cells(report.lines[0], lang)[3] == fibre  # type: ignore[arg-type]
    words = visible(page)
    assert (f"Techniek: {fibre}" if lang == "nl" else f"Technology: {fibre}") in words
    bench = visible(render.benchmark_html(sample_benchmark(), lang))  # type: ignore[arg-type]
    assert f"({fibre})" in bench and f"· {fibre} ·" in bench
    if lang == "nl":
        assert not re.search(r"\b(fibre|cable|vdsl)\b", words + bench)


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    report = sample_report()
    first = replace(report.by_provider[0], provider="=1+2 Glasnet")
    school = replace(report.lines[0], school_name="@SUM(A1) school", provider="+31 net", region="-2")
    report = replace(report, by_provider=(first, *report.by_provider[1:]), lines=(school, *report.lines[1:]))
    rows = list(csv.DictReader(io.StringIO(export.report_csv(report))))
    assert rows[0]["provider"] == "'=1+2 Glasnet"
    line = next(r for r in rows if r["row_kind"] == "line")
    assert (line["school_name"], line["provider"], line["region"]) == ("'@SUM(A1) school", "'+31 net", "'-2")
    for start in ("\t", "\r"):
        assert export._plain(start + "x") == "'" + start + "x"
    # numbers are never text: a negative figure stays a number
    assert export._plain(-0.5) == "-0.5" and export._plain("Glasnet") == "Glasnet"


def test_hidden_reason_is_worded_alike_everywhere() -> None:
    report = sample_report()
    for lang, words in (("en", HIDDEN_EN), ("nl", HIDDEN_NL)):
        tables = render.group_tables(report, lang)  # type: ignore[arg-type]
        hidden = [r.hidden_reason for t in tables for r in t.rows if r.hidden_reason]
        assert hidden == [words, words]
        omitted = [why for c in charts.report_charts(report, lang) for _, why in c.omitted  # type: ignore[arg-type]
                   if why.startswith(words[:8])]
        assert omitted == [words] * 3


def test_reasons_for_restore_and_advertised_speed() -> None:
    none = Estimate.none("no_incidents", n=0, unit="incidents")  # type: ignore[arg-type]
    assert text.figure(none, "duration", "en") == "no restored incident"
    assert text.figure(none, "duration", "nl") == "geen herstelde storing"
    report = sample_report()
    bare = replace(report.lines[0], advertised_download_bytes_per_second=None,
                   advertised_upload_bytes_per_second=None)
    assert render.line_cells(bare, "en")[4] == "not in the contract"
    assert render.line_cells(bare, "nl")[4] == "niet in het contract"


def test_every_text_key_in_both_languages_and_every_placeholder_filled() -> None:
    assert set(text.STRINGS["nl"]) == set(text.STRINGS["en"])
    for lang in LANGS:
        for key, words in text.STRINGS[lang].items():  # type: ignore[index]
            english = text.STRINGS["en"][key]
            assert set(re.findall(r"{(\w*)}", words)) == set(re.findall(r"{(\w*)}", english)), key
    for lang in LANGS:
        page = render.report_html(many_providers_report(3), lang)  # type: ignore[arg-type]
        words = visible(page)
        assert "{" not in words and "}" not in words


def test_hidden_group_has_no_incident_count_anywhere() -> None:
    report = sample_report()
    assert report.by_provider[2].hidden and report.by_provider[2].incidents is None
    rows = list(csv.DictReader(io.StringIO(export.report_csv(report))))
    assert rows[2]["hidden"] == "true" and rows[2]["incidents"] == ""
    assert rows[0]["incidents"] == "3"
    assert json.loads(export.report_json(report))["by_provider"][2]["incidents"] is None
    # a renderer that printed the count would say "None" or "0" in the hidden row: it says why
    row = render.group_tables(report, "en")[0].rows[2]
    assert row.figures == () and row.hidden_reason == HIDDEN_EN
    column = next(c for c in render.GROUP_FIGURES if c.field == "incidents")
    assert render.cell(report.by_provider[2], column, "nl") == HIDDEN_NL


def _with_hidden_lines(quartiles: tuple[float, float, float] | None, visible: tuple[float, ...]) -> Report:
    report = sample_report()
    dist = replace(report.distributions[0], ratios=visible, hidden_lines=5, hidden_quartiles=quartiles)
    return replace(report, distributions=(dist, *report.distributions[1:]))


def test_distribution_draws_lines_not_shown_as_a_box_with_their_count() -> None:
    chart = charts.distribution_chart(_with_hidden_lines((0.7, 0.82, 0.95), (0.62, 0.915)), "en")
    dots = [s for s in chart.shapes if isinstance(s, charts.Dot)]
    boxes = [s for s in chart.shapes if isinstance(s, charts.Rect)]
    assert len(dots) == 2 and len(boxes) == 1
    span = charts.WIDTH - charts.LEFT - charts.RIGHT
    assert boxes[0].x == pytest.approx(charts.LEFT + 0.7 / 1.2 * span)
    assert boxes[0].w == pytest.approx((0.95 - 0.7) / 1.2 * span)
    labels = [s.value for s in chart.shapes if isinstance(s, charts.Text)]
    assert "5 lines of boards that have not shared (quarters, median)" in labels
    assert chart.table_rows == [("Example Fibre", "7", "84%", "62%", "92%",
                                 "5 lines of boards that have not shared: 70% · 82% · 95%")]
    assert "(5 lines of boards that have not shared: 70% · 82% · 95%)" in chart.alt


def test_distribution_without_quartiles_says_how_many_lines_are_not_shown() -> None:
    chart = charts.distribution_chart(_with_hidden_lines(None, ()), "nl")
    assert not [s for s in chart.shapes if isinstance(s, (charts.Dot, charts.Rect))]
    labels = [s.value for s in chart.shapes if isinstance(s, charts.Text)]
    assert "5 verbindingen van besturen die niet gedeeld hebben" in labels
    assert chart.table_rows == [("Example Fibre", "5", "84 %", "geen verbinding afzonderlijk getoond",
                                 "geen verbinding afzonderlijk getoond",
                                 "5 verbindingen van besturen die niet gedeeld hebben")]
    # the median bar is still drawn, so the chart is not empty and the PDF draws it
    assert chart.table_rows and pdf.drawing(chart).width > 0
