"""The comparison report and a school's benchmark as web pages (jinja2, autoescaped).

The page stands alone: no script, no external CSS, font or image; the charts are inline SVG
(collector/comparison/charts.py). It prints on A4 landscape (@media print: no form, no links
bar, rows never split, charts kept whole). The tables' cells are made here, once, as text:
the PDF (collector/comparison/pdf.py) prints the same cells.
"""

# The en dash is the range sign readers expect ("78–90 %"), not a typo for a hyphen.
# ruff: noqa: RUF003
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape

from collector.accounts.roles import AGGREGATE_MINIMUM
from collector.comparison import charts, text
from collector.comparison.model import Benchmark, Estimate, GroupFigures, LineFigures, PeerFigure, Report
from collector.comparison.text import Kind, Lang

TEMPLATES = Path(__file__).parent / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Column:
    header: str  # a text.py key
    field: str  # the attribute of GroupFigures / LineFigures
    kind: Kind | None  # None: a count, said as a whole number


# The figure columns of every group table, in order (the label columns come first).
GROUP_FIGURES: tuple[Column, ...] = (
    Column("col_median", "median_ratio", "ratio"),
    Column("col_8080", "ratio_80_80", "ratio"),
    Column("col_below", "share_below_80", "share"),
    Column("col_upload", "upload_median_ratio", "ratio"),
    Column("col_normalised", "normalised_ratio", "ratio"),
    Column("col_availability", "availability", "availability"),
    Column("col_latency", "latency_seconds", "latency"),
    Column("col_loss", "loss_ratio", "loss"),
    Column("col_incidents", "incidents", None),
    Column("col_restore", "median_restore_seconds", "duration"),
    Column("col_cost", "monthly_cost", "money"),
    Column("col_cost_mbps", "cost_per_mbps", "money"),
    Column("col_cost_pupil", "cost_per_pupil", "money"),
)
GROUP_COUNTS: tuple[Column, ...] = (
    Column("col_schools", "schools", None),
    Column("col_lines", "lines", None),
    Column("col_measured", "measured_lines", None),
    Column("col_tests", "tests", None),
)
LINE_FIGURES: tuple[Column, ...] = (
    Column("col_tests", "tests", None),
    Column("col_median", "median_ratio", "ratio"),
    Column("col_8080", "ratio_80_80", "ratio"),
    Column("col_upload", "upload_median_ratio", "ratio"),
    Column("col_speed", "median_download_bytes_per_second", "rate"),
    Column("col_normalised", "normalised_ratio", "ratio"),
    Column("col_availability", "availability", "availability"),
    Column("col_latency", "latency_seconds", "latency"),
    Column("col_loss", "loss_ratio", "loss"),
    Column("col_incidents", "incidents", None),
    Column("col_restore", "median_restore_seconds", "duration"),
    Column("col_cost", "monthly_cost", "money"),
    Column("col_cost_mbps", "cost_per_mbps", "money"),
    Column("col_cost_pupil", "cost_per_pupil", "money"),
)


def cell(row: GroupFigures | LineFigures, column: Column, lang: Lang) -> str:
    value = getattr(row, column.field)
    if isinstance(value, Estimate):
        assert column.kind is not None
        return text.figure(value, column.kind, lang, row.currency)
    if value is None:  # a count withheld (GroupFigures.incidents of a hidden group)
        return text.missing_text(Estimate.none("hidden", n=getattr(row, "lines", 0)), lang)
    return str(value)


@dataclass(frozen=True)
class GroupRow:
    labels: tuple[str, ...]
    counts: tuple[str, ...]
    figures: tuple[str, ...]  # empty when hidden
    hidden_reason: str | None  # said once across the figure columns


@dataclass(frozen=True)
class GroupTable:
    key: str  # sec_provider, sec_technology, sec_like, sec_overall
    title: str
    label_headers: tuple[str, ...]
    headers: tuple[str, ...]  # counts then figures
    rows: tuple[GroupRow, ...]


def _group_labels(group: GroupFigures, key: str, lang: Lang) -> tuple[str, ...]:
    if key == "sec_provider":
        return (group.provider or group.provider_id or text.t(lang, "every_provider"),)
    if key == "sec_technology":
        return (text.technology(group.technology, lang),)
    if key == "sec_like":
        return (group.provider or group.provider_id or text.t(lang, "every_provider"),
                text.technology(group.technology, lang), text.tier(group.tier, lang))
    return (text.t(lang, "overall"),)


def group_tables(report: Report, lang: Lang) -> list[GroupTable]:
    """The four group tables as text cells (the web page and the PDF print these)."""
    sections: tuple[tuple[str, Sequence[GroupFigures], tuple[str, ...]], ...] = (
        ("sec_provider", report.by_provider, ("provider",)),
        ("sec_technology", report.by_technology, ("technology",)),
        ("sec_like", report.by_provider_technology_tier, ("provider", "technology", "col_tier")),
        ("sec_overall", (report.overall,), ("col_group",)),
    )
    headers = tuple(text.t(lang, c.header) for c in GROUP_COUNTS + GROUP_FIGURES)
    tables = []
    for key, groups, labels in sections:
        rows = []
        for group in groups:
            counts = tuple(str(getattr(group, c.field)) for c in GROUP_COUNTS)
            if group.hidden:
                reason = text.missing_text(Estimate.none("hidden", n=group.lines), lang)
                rows.append(GroupRow(_group_labels(group, key, lang), counts, (), reason))
            else:
                figures = tuple(cell(group, c, lang) for c in GROUP_FIGURES)
                rows.append(GroupRow(_group_labels(group, key, lang), counts, figures, None))
        tables.append(GroupTable(key, text.t(lang, key), tuple(text.t(lang, h) for h in labels), headers,
                                 tuple(rows)))
    return tables


LINE_LABELS = ("col_school", "board", "provider", "technology", "col_advertised")


def line_cells(line: LineFigures, lang: Lang) -> tuple[str, ...]:
    advertised = (
        f"{text.number((line.advertised_download_bytes_per_second or 0) / 125_000, lang, 0)}/"
        f"{text.number((line.advertised_upload_bytes_per_second or 0) / 125_000, lang, 0)} Mbit/s"
        if line.advertised_download_bytes_per_second is not None
        and line.advertised_upload_bytes_per_second is not None
        else text.t(lang, "not_in_contract")
    )
    figures = (cell(line, c, lang) for c in LINE_FIGURES)
    return (line.school_name, line.board, line.provider, text.technology(line.technology, lang), advertised,
            *figures)


def line_headers(lang: Lang) -> tuple[str, ...]:
    return tuple(text.t(lang, h) for h in LINE_LABELS) + tuple(text.t(lang, c.header) for c in LINE_FIGURES)


def header_facts(report: Report, lang: Lang) -> list[tuple[str, str]]:
    """The header's key-value lines: period, filters, for whom, what was counted."""
    filters = report.filters
    names = dict(report.choices.providers)
    boards = dict(report.choices.boards)
    chosen = [
        (text.t(lang, "region"), ", ".join(filters.regions)),
        (text.t(lang, "technology"), ", ".join(text.technology(v, lang) for v in filters.technologies)),
        (text.t(lang, "board"), ", ".join(boards.get(b, b) for b in filters.boards)),
        (text.t(lang, "provider"), ", ".join(names.get(p, p) for p in filters.providers)),
    ]
    said = "; ".join(f"{k}: {v}" for k, v in chosen if v) or text.t(lang, "no_filters")
    whom = text.role_name(report.viewer_role, lang)
    if report.viewer_board:
        whom += f" ({text.t(lang, 'board').lower()} {boards.get(report.viewer_board, report.viewer_board)})"
    overall = report.overall
    return [
        (text.t(lang, "period"), text.period(filters, lang)),
        (text.t(lang, "filters"), said),
        (text.t(lang, "for_whom"), whom),
        (text.t(lang, "counted"), text.t(lang, "counted_text", schools=overall.schools, lines=overall.lines,
                                          measured=overall.measured_lines, tests=overall.tests)),
        (text.t(lang, "generated"), _generated(report.generated_at, report.timezone, lang)),
    ]


def _generated(stamp: float, zone: str, lang: Lang) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(stamp, ZoneInfo(zone))
    return f"{text.day(local.date(), lang)} {local:%H:%M} ({zone})"


def privacy_note(report: Report, lang: Lang) -> str | None:
    if report.hidden_schools <= 0:
        return None
    return text.t(lang, "privacy_note", n=report.hidden_schools, minimum=AGGREGATE_MINIMUM)


def query_of(report: Report, lang: Lang) -> list[tuple[str, str]]:
    """The report's filters as a query string's pairs (the links keep what is shown)."""
    f = report.filters
    pairs = [("from", f.start.isoformat()), ("to", f.end.isoformat())]
    pairs += [("region", v) for v in f.regions] + [("technology", v) for v in f.technologies]
    pairs += [("board", v) for v in f.boards] + [("provider", v) for v in f.providers]
    return [*pairs, ("lang", lang)]


def report_links(report: Report, lang: Lang) -> dict[str, str]:
    pairs = query_of(report, lang)
    other: Lang = "en" if lang == "nl" else "nl"
    no_lang = [p for p in pairs if p[0] != "lang"]
    return {
        "other_language": "/report?" + urlencode([*no_lang, ("lang", other)]),
        "pdf": "/report.pdf?" + urlencode(pairs),
        "csv": "/report.csv?" + urlencode(no_lang),
        "json": "/report.json?" + urlencode(no_lang),
    }


def benchmark_url(line: LineFigures, report: Report, lang: Lang) -> str:
    f = report.filters
    query = urlencode([("from", f.start.isoformat()), ("to", f.end.isoformat()), ("lang", lang)])
    return f"/schools/{line.board}/{line.school}/benchmark?{query}"


def _template_words(lang: Lang) -> dict[str, Callable[..., str]]:
    return {"t": partial(text.t, lang), "technology": partial(_technology_word, lang=lang)}


def _technology_word(code: str, lang: Lang) -> str:
    return text.technology(code, lang)


def report_html(report: Report, lang: Lang) -> str:
    drawn = charts.report_charts(report, lang)
    return _env.get_template("report.html").render(
        r=report,
        lang=lang,
        facts=header_facts(report, lang),
        explanations=text.explanations(lang),
        privacy=privacy_note(report, lang),
        notes=text.notes(report.notes, lang),
        tables=group_tables(report, lang),
        line_headers=line_headers(lang),
        lines=[(line_cells(line, lang), benchmark_url(line, report, lang)) for line in report.lines],
        charts=[(chart, charts.svg(chart)) for chart in drawn],
        links=report_links(report, lang),
        **_template_words(lang),
    )


# --- the benchmark -----------------------------------------------------------------------------

# How each benchmark figure is said (PeerFigure.name → kind).
FIGURE_KINDS: dict[str, Kind] = {
    "median_ratio": "ratio",
    "ratio_80_80": "ratio",
    "upload_median_ratio": "ratio",
    "normalised_ratio": "ratio",
    "availability": "availability",
    "latency_seconds": "latency",
    "loss_ratio": "loss",
    "median_restore_seconds": "duration",
    "monthly_cost": "money",
    "cost_per_mbps": "money",
    "cost_per_pupil": "money",
    "median_download_bytes_per_second": "rate",
}


def peer_cells(figure: PeerFigure, currency: str | None, lang: Lang) -> tuple[str, ...]:
    kind = FIGURE_KINDS.get(figure.name, "plain")
    peer = Estimate(None, figure.peers_n, "lines", missing="too_few_lines")

    def said(value: float | None) -> str:
        return text.value_only(Estimate(value, figure.peers_n, "lines") if value is not None else peer,
                               kind, lang, currency)

    if figure.better_than is None:
        compared = text.t(lang, "bm_no_compare")
    else:
        compared = text.t(lang, "bm_better", share=text.percent(figure.better_than, lang))
    return (
        text.t(lang, f"figure.{figure.name}"),
        text.figure(figure.school, kind, lang, currency),
        said(figure.peers_p25),
        said(figure.peers_median),
        said(figure.peers_p75),
        compared,
    )


def benchmark_parts(benchmark: Benchmark, lang: Lang) -> dict[str, Any]:
    """What the benchmark page says, as text (the template lays it out)."""
    line = benchmark.line
    if line is None:
        similarity = text.t(lang, "bm_no_line")
    else:
        similarity = text.t(lang, f"bm_similarity.{benchmark.similarity}",
                            technology=text.technology(line.technology, lang),
                            tier=text.tier(line.tier, lang), peers=benchmark.peers, minimum=AGGREGATE_MINIMUM)
    currency = line.currency if line else None
    compared = benchmark.similarity != "none"
    rows = [peer_cells(f, currency, lang) for f in benchmark.figures] if compared else []
    facts = [
        (text.t(lang, "bm_school"), benchmark.school_name),
        (text.t(lang, "period"), text.period(benchmark.filters, lang)),
    ]
    if line is not None:
        kind = f"{line.provider} · {text.technology(line.technology, lang)} · {text.tier(line.tier, lang)}"
        facts.append((text.t(lang, "bm_line"), kind))
    f = benchmark.filters
    query = [("from", f.start.isoformat()), ("to", f.end.isoformat())]
    other: Lang = "en" if lang == "nl" else "nl"
    base = f"/schools/{benchmark.board}/{benchmark.school}/benchmark"
    return {
        "facts": facts,
        "similarity": similarity,
        "anonymous": text.t(lang, "bm_anonymous", minimum=AGGREGATE_MINIMUM),
        "headers": tuple(text.t(lang, k) for k in ("bm_col_figure", "bm_col_school", "bm_col_p25",
                                                   "bm_col_median", "bm_col_p75", "bm_col_better")),
        "rows": rows,
        "links": {
            "other_language": f"{base}?{urlencode([*query, ('lang', other)])}",
            "json": f"{base}.json?{urlencode(query)}",
            "report": f"/report?{urlencode([*query, ('lang', lang)])}",
        },
    }


def benchmark_html(benchmark: Benchmark, lang: Lang) -> str:
    return _env.get_template("benchmark.html").render(
        b=benchmark, lang=lang, **benchmark_parts(benchmark, lang), **_template_words(lang)
    )


def error_html(message: str, lang: Lang) -> str:
    """The page for a request the report cannot answer (a bad filter, a forbidden board)."""
    return _env.get_template("error.html").render(message=message, lang=lang, **_template_words(lang))
