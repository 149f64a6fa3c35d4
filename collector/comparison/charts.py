"""The report's three charts, drawn once as plain shapes and written out as inline SVG (the
web page) or as reportlab graphics (the PDF, collector/comparison/pdf.py), so both show the
same picture.

Charts print in black and white: series differ by marker shape and dash pattern, not by
colour alone. A provider whose figure is hidden or rests on too few measurements is not
drawn: ``Chart.omitted`` names it with the reason, and every chart carries a text
alternative and the table of the figures it draws.
"""

# The en dash is the range sign readers expect ("78–90 %"), not a typo for a hyphen.
# ruff: noqa: RUF002, RUF003
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from markupsafe import Markup, escape

from collector.comparison import text
from collector.comparison.model import Distribution, Estimate, GroupFigures, Report
from collector.comparison.text import Lang

Anchor = Literal["start", "middle", "end"]
Marker = Literal["circle", "square", "triangle", "diamond", "cross"]
MARKERS: tuple[Marker, ...] = ("circle", "square", "triangle", "diamond", "cross")
# Dash patterns for the profile's lines (SVG stroke-dasharray; "" = solid).
DASHES: tuple[str, ...] = ("", "6 3", "2 2", "8 3 2 3", "1 3")
# Greys and one dark blue: distinct on screen, still distinct in grey on paper.
INKS: tuple[str, ...] = ("#1f3f7a", "#222222", "#5a5a5a", "#1f5fa8", "#7a7a7a")

WIDTH = 720.0
LEFT, RIGHT, TOP, BOTTOM = 150.0, 20.0, 16.0, 44.0


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = "#000"
    width: float = 1.0
    dash: str = ""


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str = "none"
    stroke: str = "#000"


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    marker: Marker
    size: float = 4.0
    ink: str = "#000"
    filled: bool = True


@dataclass(frozen=True)
class Path:
    points: tuple[tuple[float, float], ...]
    stroke: str = "#000"
    width: float = 1.5
    dash: str = ""


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # the baseline
    value: str
    size: float = 11.0
    anchor: Anchor = "start"
    bold: bool = False


Shape = Line | Rect | Dot | Path | Text


@dataclass
class Chart:
    """One chart: its shapes on a ``width`` × ``height`` canvas (y grows downward), the
    words beside it, and its figures as a table (the fallback and the text alternative)."""

    key: str
    title: str
    alt: str
    width: float
    height: float
    shapes: list[Shape] = field(default_factory=list)
    table_header: tuple[str, ...] = ()
    table_rows: list[tuple[str, ...]] = field(default_factory=list)
    omitted: list[tuple[str, str]] = field(default_factory=list)  # (provider, reason)

    @property
    def empty(self) -> bool:
        return not any(isinstance(s, (Dot, Path, Rect)) for s in self.shapes)


def _nice_top(value: float, step: float) -> float:
    return max(step, math.ceil(value / step) * step)


def _group(report: Report, provider_id: str) -> GroupFigures | None:
    return next((g for g in report.by_provider if g.provider_id == provider_id), None)


def _why_not(estimate: Estimate, lang: Lang) -> str:
    return text.missing_text(estimate, lang)


# --- distribution of line medians per provider ----------------------------------------------


def distribution_chart(report: Report, lang: Lang) -> Chart:
    """A strip plot: one row per provider, one marker per measured line's median ratio that
    the viewer may see one by one, the other lines as a box (their p25, median, p75) labelled
    with their count, or only the count where their quartiles are withheld (fewer than
    AGGREGATE_MINIMUM schools); a bar at the provider's median; reference lines at 80 % and
    100 %."""
    drawn: list[tuple[Distribution, Estimate]] = []
    omitted: list[tuple[str, str]] = []
    for dist in report.distributions:
        group = _group(report, dist.provider_id)
        median = group.median_ratio if group else Estimate.none("no_data")
        if dist.hidden:
            omitted.append((dist.provider, _why_not(Estimate.none("hidden"), lang)))
        elif median.value is None or not (dist.ratios or dist.hidden_lines):
            omitted.append((dist.provider, _why_not(median, lang)))
        else:
            drawn.append((dist, median))
    # A row with lines not shown one by one has a second strip, under the markers, for them.
    row = 46.0 if any(d.hidden_lines for d, _ in drawn) else 34.0
    height = TOP + row * max(len(drawn), 1) + BOTTOM
    highest = [max(d.ratios) for d, _ in drawn if d.ratios]
    highest += [d.hidden_quartiles[2] for d, _ in drawn if d.hidden_quartiles]
    top_ratio = _nice_top(max([1.2, *highest]), 0.2)
    plot_w = WIDTH - LEFT - RIGHT

    def x(ratio: float) -> float:
        return LEFT + min(max(ratio, 0.0), top_ratio) / top_ratio * plot_w

    chart = Chart("distribution", text.t(lang, "chart_distribution"), "", WIDTH, height, omitted=omitted)
    shapes = chart.shapes
    bottom = TOP + row * max(len(drawn), 1)
    _x_axis(shapes, bottom, top_ratio, 0.2, x, lambda v: text.percent(v, lang))
    for ref, dash in ((0.8, "5 3"), (1.0, "")):
        shapes.append(Line(x(ref), TOP, x(ref), bottom, "#444", 1.2, dash))
    shapes.append(Text(WIDTH - RIGHT, height - 6, text.t(lang, "chart_distribution_axis"), 11, "end"))
    alts = []
    for i, (dist, median) in enumerate(drawn):
        split = dist.hidden_lines > 0
        centre = TOP + row * i + (15.0 if split else row / 2)
        shapes.append(Text(LEFT - 8, centre + 4, dist.provider, 11, "end"))
        shapes.append(Line(LEFT, centre, WIDTH - RIGHT, centre, "#dddddd", 0.6))
        for j, ratio in enumerate(dist.ratios):
            # Lines with nearly the same median sit on three offsets, so they stay countable.
            offset = ((j % 3) - 1) * 6.0
            shapes.append(Dot(x(ratio), centre + offset, "circle", 3.5, "#1f3f7a", filled=False))
        if split:
            _hidden_strip(shapes, dist, TOP + row * i + 32.0, x, lang)
        assert median.value is not None
        shapes.append(Line(x(median.value), centre - 12, x(median.value), centre + 12, "#000", 2.5))
        shown = text.percent(median.value, lang)
        if dist.ratios:
            low, high = text.percent(dist.ratios[0], lang), text.percent(dist.ratios[-1], lang)
        else:
            low = high = text.t(lang, "chart_none_shown")
        measured = len(dist.ratios) + dist.hidden_lines
        not_shown = _hidden_words(dist, lang)
        chart.table_rows.append((dist.provider, str(measured), shown, low, high, not_shown))
        alt = text.t(lang, "chart_alt_distribution", provider=dist.provider, n=measured, median=shown,
                     low=low, high=high)
        alts.append(f"{alt} ({not_shown})" if split else alt)
    chart.table_header = (
        text.t(lang, "provider"), text.t(lang, "col_measured"), text.t(lang, "median"),
        text.t(lang, "lowest_shown"), text.t(lang, "highest_shown"), text.t(lang, "chart_col_not_shown"),
    )
    chart.alt = _alt(chart.title, alts, omitted, lang)
    return chart


def _hidden_words(dist: Distribution, lang: Lang) -> str:
    """The lines not shown one by one, in words: "7 lines: 70% · 82% · 90%" or the count alone."""
    if dist.hidden_lines == 0:
        return text.t(lang, "chart_all_shown")
    lines = text.counted(lang, dist.hidden_lines, "lines")
    if dist.hidden_quartiles is None:
        return text.t(lang, "chart_hidden_count", lines=lines)
    p25, mid, p75 = (text.percent(v, lang) for v in dist.hidden_quartiles)
    return text.t(lang, "chart_hidden_box", lines=lines, p25=p25, median=mid, p75=p75)


def _hidden_strip(shapes: list[Shape], dist: Distribution, centre: float, x: Callable[[float], float],
                  lang: Lang) -> None:
    """The lines the viewer may not see one by one: a box from p25 to p75 with a tick at their
    median and their count beside it; without quartiles, the count alone."""
    lines = text.counted(lang, dist.hidden_lines, "lines")
    if dist.hidden_quartiles is None:
        shapes.append(Text(LEFT + 4, centre + 4, text.t(lang, "chart_hidden_count", lines=lines), 9))
        return
    p25, mid, p75 = dist.hidden_quartiles
    shapes.append(Rect(x(p25), centre - 5, max(x(p75) - x(p25), 1.0), 10, "#e4e4e4", "#333333"))
    shapes.append(Line(x(mid), centre - 5, x(mid), centre + 5, "#000", 1.6))
    label = text.t(lang, "chart_hidden_label", lines=lines)
    # Beside the box: right of it, or left where only that side has room (about 5.5 pt a
    # character at 9 pt); the provider's name is left of the plot, so never over it.
    wide = 5.5 * len(label)
    if x(p75) + 6 + wide > WIDTH - RIGHT and x(p25) - 6 - wide >= LEFT:
        shapes.append(Text(x(p25) - 6, centre + 3.5, label, 9, "end"))
    else:
        shapes.append(Text(x(p75) + 6, centre + 3.5, label, 9, "start"))


def _x_axis(shapes: list[Shape], bottom: float, top: float, step: float, x: Callable[[float], float],
            label: Callable[[float], str]) -> None:
    shapes.append(Line(LEFT, bottom, WIDTH - RIGHT, bottom, "#000", 1.0))
    ticks = round(top / step)
    for k in range(ticks + 1):
        value = k * step
        shapes.append(Line(x(value), bottom, x(value), bottom + 4, "#000", 1.0))
        shapes.append(Text(x(value), bottom + 16, label(value), 10, "middle"))


def _alt(title: str, parts: list[str], omitted: list[tuple[str, str]], lang: Lang) -> str:
    words = [title + "."]
    words += [p + "." for p in parts]
    if omitted:
        words.append(text.t(lang, "chart_not_drawn") + ": "
                     + "; ".join(f"{name} ({why})" for name, why in omitted) + ".")
    if not parts:
        words.append(text.t(lang, "chart_empty"))
    return " ".join(words)


# --- school-hours profile ---------------------------------------------------------------------


def series_style(index: int) -> tuple[str, str, Marker, bool]:
    """The ``index``-th provider's (ink, dash, marker, filled). Dash and marker are what tell
    the series apart on grey paper, so their pair is distinct for the first
    len(DASHES) × len(MARKERS) = 25 providers: the dash cycles every provider, the marker
    shifts by one more each round of five (i + i // 5), so two providers sharing a dash never
    share a marker. Past 25 the pairs come round again with hollow markers (distinct but for
    the cross, which has no inside); the chart's table names every series anyway."""
    dashes, markers = len(DASHES), len(MARKERS)
    dash = DASHES[index % dashes]
    marker = MARKERS[(index + index // dashes) % markers]
    filled = (index // (dashes * markers)) % 2 == 0
    return INKS[index % len(INKS)], dash, marker, filled



def profile_chart(report: Report, lang: Lang) -> Chart:
    """Median ratio per local hour, one line per provider, each with its marker and dash."""
    series: list[tuple[str, list[tuple[int, float]]]] = []
    omitted: list[tuple[str, str]] = []
    for profile in report.hour_profiles:
        group = _group(report, profile.provider_id)
        points = sorted((h, e.value) for h, e in profile.hours.items() if e.value is not None)
        if group is not None and group.hidden:
            omitted.append((profile.provider, _why_not(Estimate.none("hidden"), lang)))
        elif not points:
            reasons = [e for e in profile.hours.values() if e.missing]
            why = reasons[0] if reasons else Estimate.none("no_data", unit="tests")
            omitted.append((profile.provider, _why_not(why, lang)))
        else:
            series.append((profile.provider, points))
    drawn_names = {name for name, _ in series}
    # Every hour any drawn provider has an entry for, measured or not (the table says why not).
    hours = sorted({h for p in report.hour_profiles if p.provider in drawn_names for h in p.hours}) or [8, 15]
    first, last = min(hours), max(max(hours), min(hours) + 1)
    legend_h = 18.0 * len(series)
    plot_h = 200.0
    height = TOP + plot_h + BOTTOM + legend_h
    bottom = TOP + plot_h
    top_ratio = _nice_top(max([1.2] + [v for _, pts in series for _, v in pts]), 0.2)
    left = 70.0

    def x(hour: float) -> float:
        return left + (hour - first) / (last - first) * (WIDTH - left - RIGHT)

    def y(ratio: float) -> float:
        return bottom - min(max(ratio, 0.0), top_ratio) / top_ratio * plot_h

    chart = Chart("profile", text.t(lang, "chart_profile"), "", WIDTH, height, omitted=omitted)
    shapes = chart.shapes
    shapes.append(Line(left, bottom, WIDTH - RIGHT, bottom, "#000", 1.0))
    shapes.append(Line(left, TOP, left, bottom, "#000", 1.0))
    for k in range(round(top_ratio / 0.2) + 1):
        value = k * 0.2
        shapes.append(Line(left - 4, y(value), WIDTH - RIGHT, y(value), "#e2e2e2" if k else "#000", 0.6))
        shapes.append(Text(left - 8, y(value) + 4, text.percent(value, lang), 10, "end"))
    for ref, dash in ((0.8, "5 3"), (1.0, "")):
        shapes.append(Line(left, y(ref), WIDTH - RIGHT, y(ref), "#444", 1.2, dash))
    for hour in range(first, last + 1):
        shapes.append(Line(x(hour), bottom, x(hour), bottom + 4, "#000", 1.0))
        shapes.append(Text(x(hour), bottom + 16, text.t(lang, "hour", h=f"{hour:02d}"), 10, "middle"))
    middle = (left + WIDTH - RIGHT) / 2
    shapes.append(Text(middle, bottom + 34, text.t(lang, "chart_profile_x"), 11, "middle"))
    shapes.append(Text(4, TOP - 4, text.t(lang, "chart_profile_y"), 10, "start"))
    alts = []
    for i, (provider, points) in enumerate(series):
        ink, dash, marker, filled = series_style(i)
        shapes.append(Path(tuple((x(h), y(v)) for h, v in points), ink, 1.8, dash))
        for h, v in points:
            shapes.append(Dot(x(h), y(v), marker, 4.0, ink, filled))
        legend_y = bottom + BOTTOM + 18.0 * i + 8
        shapes.append(Line(left, legend_y - 4, left + 36, legend_y - 4, ink, 1.8, dash))
        shapes.append(Dot(left + 18, legend_y - 4, marker, 4.0, ink, filled))
        shapes.append(Text(left + 44, legend_y, provider, 11))
        said = ", ".join(f"{text.t(lang, 'hour', h=f'{h:02d}')} {text.percent(v, lang)}" for h, v in points)
        alts.append(text.t(lang, "chart_alt_profile", provider=provider, points=said))
    span = range(first, last + 1)
    chart.table_header = (text.t(lang, "provider"), *(text.t(lang, "hour", h=f"{h:02d}") for h in span))
    nothing = Estimate.none("no_data", unit="tests")
    for profile in report.hour_profiles:
        if profile.provider not in drawn_names:
            continue
        cells = (text.value_only(profile.hours.get(h, nothing), "ratio", lang) for h in span)
        chart.table_rows.append((profile.provider, *cells))
    chart.alt = _alt(chart.title, alts, omitted, lang)
    return chart


# --- cost per delivered Mbit/s ------------------------------------------------------------------


def cost_chart(report: Report, lang: Lang) -> Chart:
    """Horizontal bars of each provider's median cost per delivered Mbit/s, whiskers for the
    interval where one is given."""
    drawn: list[GroupFigures] = []
    omitted: list[tuple[str, str]] = []
    for group in report.by_provider:
        name = group.provider or group.provider_id or ""
        if group.cost_per_mbps.value is None:
            omitted.append((name, _why_not(group.cost_per_mbps, lang)))
        else:
            drawn.append(group)
    row = 30.0
    height = TOP + row * max(len(drawn), 1) + BOTTOM
    bottom = TOP + row * max(len(drawn), 1)
    highest = max([1.0] + [max(g.cost_per_mbps.value or 0, g.cost_per_mbps.high or 0) for g in drawn])
    step = _step(highest)
    top = _nice_top(highest, step)
    plot_w = WIDTH - LEFT - RIGHT

    def x(value: float) -> float:
        return LEFT + max(value, 0.0) / top * plot_w

    currencies = {g.currency for g in drawn}
    currency = currencies.pop() if len(currencies) == 1 else None
    chart = Chart("cost", text.t(lang, "chart_cost"), "", WIDTH, height, omitted=omitted)
    shapes = chart.shapes
    _x_axis(shapes, bottom, top, step, x, lambda v: text.money(v, currency, lang))
    shapes.append(Text(WIDTH - RIGHT, height - 6, text.t(lang, "chart_cost_axis"), 11, "end"))
    alts = []
    for i, group in enumerate(drawn):
        estimate = group.cost_per_mbps
        assert estimate.value is not None
        name = group.provider or group.provider_id or ""
        centre = TOP + row * i + row / 2
        shapes.append(Text(LEFT - 8, centre + 4, name, 11, "end"))
        shapes.append(Rect(LEFT, centre - 8, x(estimate.value) - LEFT, 16, "#c9d3e3", "#1f3f7a"))
        if estimate.low is not None and estimate.high is not None:
            shapes.append(Line(x(estimate.low), centre, x(estimate.high), centre, "#000", 1.2))
            for end in (estimate.low, estimate.high):
                shapes.append(Line(x(end), centre - 5, x(end), centre + 5, "#000", 1.2))
        said = text.figure(estimate, "money", lang, group.currency)
        chart.table_rows.append((name, said, text.counted(lang, estimate.n, estimate.unit)))
        alts.append(text.t(lang, "chart_alt_cost", provider=name, value=said))
    chart.table_header = (text.t(lang, "provider"), text.t(lang, "col_cost_mbps"), text.t(lang, "counted"))
    chart.alt = _alt(chart.title, alts, omitted, lang)
    return chart


def _step(highest: float) -> float:
    """A round tick step giving 4 to 10 ticks up to ``highest``."""
    magnitude = 10 ** math.floor(math.log10(highest))
    for factor in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10):
        step = magnitude * factor
        if highest / step <= 8:
            return step
    return magnitude * 10


def report_charts(report: Report, lang: Lang) -> list[Chart]:
    return [distribution_chart(report, lang), profile_chart(report, lang), cost_chart(report, lang)]


# --- SVG --------------------------------------------------------------------------------------


def _marker_svg(dot: Dot) -> str:
    fill = dot.ink if dot.filled else "#fff"
    s, x, y = dot.size, dot.x, dot.y
    style = f'fill="{fill}" stroke="{dot.ink}" stroke-width="1.4"'
    if dot.marker == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s:.1f}" {style}/>'
    if dot.marker == "square":
        return f'<rect x="{x - s:.1f}" y="{y - s:.1f}" width="{2 * s:.1f}" height="{2 * s:.1f}" {style}/>'
    if dot.marker == "triangle":
        pts = f"{x:.1f},{y - s * 1.2:.1f} {x - s * 1.1:.1f},{y + s:.1f} {x + s * 1.1:.1f},{y + s:.1f}"
        return f'<polygon points="{pts}" {style}/>'
    if dot.marker == "diamond":
        pts = f"{x:.1f},{y - s * 1.3:.1f} {x + s:.1f},{y:.1f} {x:.1f},{y + s * 1.3:.1f} {x - s:.1f},{y:.1f}"
        return f'<polygon points="{pts}" {style}/>'
    return (f'<path d="M{x - s:.1f},{y - s:.1f}L{x + s:.1f},{y + s:.1f}M{x - s:.1f},{y + s:.1f}'
            f'L{x + s:.1f},{y - s:.1f}" stroke="{dot.ink}" stroke-width="2" fill="none"/>')


def _shape_svg(shape: Shape) -> str:
    if isinstance(shape, Line):
        dash = f' stroke-dasharray="{shape.dash}"' if shape.dash else ""
        return (f'<line x1="{shape.x1:.1f}" y1="{shape.y1:.1f}" x2="{shape.x2:.1f}" y2="{shape.y2:.1f}" '
                f'stroke="{shape.stroke}" stroke-width="{shape.width}"{dash}/>')
    if isinstance(shape, Rect):
        return (f'<rect x="{shape.x:.1f}" y="{shape.y:.1f}" width="{max(shape.w, 0):.1f}" '
                f'height="{shape.h:.1f}" fill="{shape.fill}" stroke="{shape.stroke}"/>')
    if isinstance(shape, Dot):
        return _marker_svg(shape)
    if isinstance(shape, Path):
        dash = f' stroke-dasharray="{shape.dash}"' if shape.dash else ""
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in shape.points)
        return (f'<polyline points="{pts}" fill="none" stroke="{shape.stroke}" '
                f'stroke-width="{shape.width}"{dash}/>')
    weight = ' font-weight="bold"' if shape.bold else ""
    return (f'<text x="{shape.x:.1f}" y="{shape.y:.1f}" font-size="{shape.size}" '
            f'text-anchor="{shape.anchor}"{weight}>{escape(shape.value)}</text>')


def svg(chart: Chart) -> Markup:
    """The chart as an inline <svg> with its title and description (read by screen readers)."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {chart.width:.0f} {chart.height:.0f}" '
        f'role="img" aria-labelledby="{chart.key}-title {chart.key}-desc" class="chart" '
        f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        f'<title id="{chart.key}-title">{escape(chart.title)}</title>',
        f'<desc id="{chart.key}-desc">{escape(chart.alt)}</desc>',
    ]
    parts += [_shape_svg(s) for s in chart.shapes]
    parts.append("</svg>")
    return Markup("".join(parts))
