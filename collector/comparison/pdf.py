"""The comparison report as an A4 (landscape) PDF with reportlab: the same header, tables and
charts as the web page, a page number on every page, text that pdftotext reads back.

The text is set in DejaVu Sans where one of collector/incidents/pdf.py's FONT_CANDIDATES is
installed (school and provider names may hold any Latin letter), else in Helvetica. The
charts are the web page's shapes (collector/comparison/charts.py) drawn with
reportlab.graphics, so paper and screen show the same picture. Landscape, because the
group tables have seventeen columns.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics import shapes as rl
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from collector.comparison import charts, render, text
from collector.comparison.model import Report
from collector.comparison.text import Lang
from collector.incidents.pdf import FONT_CANDIDATES, find_font_files

PAGE = landscape(A4)
MARGIN = 12 * mm
BOTTOM_MARGIN = 14 * mm
WIDTH = PAGE[0] - 2 * MARGIN
# What a flowable may fill: the page less its margins and the frame's padding (6 pt a side,
# reportlab's default). A drawing taller than this is a LayoutError, so charts are scaled
# down to it, less room for the chart's title and its "not drawn" line kept beside it.
FRAME_WIDTH = WIDTH - 12
FRAME_HEIGHT = PAGE[1] - MARGIN - BOTTOM_MARGIN - 12
CHART_MAX_HEIGHT = FRAME_HEIGHT - 60
_REGULAR, _BOLD = "ReportSans", "ReportSans-Bold"
_font_lock = threading.Lock()


@functools.cache
def report_fonts() -> str:
    """Registers _REGULAR/_BOLD once a process: DejaVu Sans when installed, else Helvetica;
    returns the regular face's name."""
    with _font_lock:
        files = find_font_files(FONT_CANDIDATES)
        faces = None
        if files is not None:
            try:
                faces = TTFont(_REGULAR, files[0]), TTFont(_BOLD, files[1])
            except Exception:  # a damaged font file: reportlab raises TTFError, OSError, struct.error
                faces = None
        if faces is not None:
            for face in faces:
                pdfmetrics.registerFont(face)
            chosen = faces[0].face.name.decode()
        else:
            pdfmetrics.registerFont(pdfmetrics.Font(_REGULAR, "Helvetica", "WinAnsiEncoding"))
            pdfmetrics.registerFont(pdfmetrics.Font(_BOLD, "Helvetica-Bold", "WinAnsiEncoding"))
            chosen = "Helvetica"
        pdfmetrics.registerFontFamily(_REGULAR, normal=_REGULAR, bold=_BOLD, italic=_REGULAR,
                                      boldItalic=_BOLD)
        return chosen


_styles = getSampleStyleSheet()
_BODY = ParagraphStyle("rbody", parent=_styles["BodyText"], fontName=_REGULAR, fontSize=9, leading=11.5)
_NOTE = ParagraphStyle("rnote", parent=_BODY, backColor=colors.HexColor("#f3f6fb"), borderPadding=5,
                       spaceBefore=4, spaceAfter=8)
_H1 = ParagraphStyle("rh1", parent=_styles["Heading1"], fontName=_BOLD, fontSize=16, leading=19)
_H2 = ParagraphStyle("rh2", parent=_styles["Heading2"], fontName=_BOLD, fontSize=12, leading=15,
                     spaceBefore=10, spaceAfter=4, textColor=colors.HexColor("#1f3f7a"), keepWithNext=1)
_H3 = ParagraphStyle("rh3", parent=_BODY, fontName=_BOLD, fontSize=9.5, spaceBefore=6, spaceAfter=3,
                     keepWithNext=1)
_CELL = ParagraphStyle("rcell", parent=_BODY, fontSize=6.6, leading=8)
_CELL_HEAD = ParagraphStyle("rcellhead", parent=_CELL, fontName=_BOLD, fontSize=6.2, leading=7.5)
_MUTED = ParagraphStyle("rmuted", parent=_BODY, fontSize=8, textColor=colors.HexColor("#555555"))
_GRID = [
    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bbbbbb")),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f5")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 2),
    ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ("TOPPADDING", (0, 0), (-1, -1), 1.5),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
]


def _p(value: Any, style: ParagraphStyle = _CELL) -> Paragraph:
    return Paragraph(escape(str(value)), style)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float],
           spans: Sequence[tuple[int, int, int]] = ()) -> LongTable:
    """``spans``: (row, first column, last column) of cells joined into one (row 0 = header)."""
    total = sum(widths)
    columns = [w / total * WIDTH for w in widths]
    data = [[_p(h, _CELL_HEAD) for h in header]] + [[_p(c) for c in row] for row in rows]
    table = LongTable(data, colWidths=columns, repeatRows=1)
    style = list(_GRID) + [("SPAN", (a, r), (b, r)) for r, a, b in spans]
    table.setStyle(TableStyle(style))
    return table


def _kv(rows: Sequence[tuple[str, str]]) -> LongTable:
    table = LongTable([[_p(k, _CELL_HEAD), _p(v, _BODY)] for k, v in rows],
                      colWidths=[0.16 * WIDTH, 0.84 * WIDTH])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bbbbbb")),
                               ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef1f5")),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


# --- charts ----------------------------------------------------------------------------------


def _dash(pattern: str) -> list[float] | None:
    return [float(p) for p in pattern.split()] if pattern else None


def _marker(dot: charts.Dot, height: float) -> list[rl.Shape]:
    x, y, s = dot.x, height - dot.y, dot.size
    ink = colors.HexColor(dot.ink)
    fill = ink if dot.filled else colors.white
    if dot.marker == "circle":
        return [rl.Circle(x, y, s, fillColor=fill, strokeColor=ink, strokeWidth=1.2)]
    if dot.marker == "square":
        return [rl.Rect(x - s, y - s, 2 * s, 2 * s, fillColor=fill, strokeColor=ink, strokeWidth=1.2)]
    if dot.marker == "triangle":
        return [rl.Polygon([x, y + s * 1.2, x - s * 1.1, y - s, x + s * 1.1, y - s], fillColor=fill,
                           strokeColor=ink, strokeWidth=1.2)]
    if dot.marker == "diamond":
        return [rl.Polygon([x, y + s * 1.3, x + s, y, x, y - s * 1.3, x - s, y], fillColor=fill,
                           strokeColor=ink, strokeWidth=1.2)]
    return [rl.Line(x - s, y - s, x + s, y + s, strokeColor=ink, strokeWidth=2),
            rl.Line(x - s, y + s, x + s, y - s, strokeColor=ink, strokeWidth=2)]


def drawing(chart: charts.Chart, max_height: float = CHART_MAX_HEIGHT) -> rl.Drawing:
    """The chart's shapes as a reportlab Drawing (its y axis grows upward: flipped here),
    scaled down, never up, to fit the frame's width and ``max_height`` (a chart of many
    providers is tall: smaller on paper, whole, and its table below says every figure)."""
    scale = min(1.0, FRAME_WIDTH / chart.width, max_height / chart.height)
    h = chart.height
    out = rl.Drawing(chart.width * scale, h * scale)
    group = rl.Group()
    for shape in chart.shapes:
        if isinstance(shape, charts.Line):
            group.add(rl.Line(shape.x1, h - shape.y1, shape.x2, h - shape.y2,
                              strokeColor=colors.HexColor(shape.stroke), strokeWidth=shape.width,
                              strokeDashArray=_dash(shape.dash)))
        elif isinstance(shape, charts.Rect):
            fill = None if shape.fill == "none" else colors.HexColor(shape.fill)
            group.add(rl.Rect(shape.x, h - shape.y - shape.h, max(shape.w, 0), shape.h, fillColor=fill,
                              strokeColor=colors.HexColor(shape.stroke), strokeWidth=0.8))
        elif isinstance(shape, charts.Dot):
            for part in _marker(shape, h):
                group.add(part)
        elif isinstance(shape, charts.Path):
            points = [c for x, y in shape.points for c in (x, h - y)]
            group.add(rl.PolyLine(points, strokeColor=colors.HexColor(shape.stroke), strokeWidth=shape.width,
                                  strokeDashArray=_dash(shape.dash)))
        else:
            group.add(rl.String(shape.x, h - shape.y, shape.value, fontName=_BOLD if shape.bold else _REGULAR,
                                fontSize=shape.size, textAnchor=shape.anchor))
    group.scale(scale, scale)
    out.add(group)
    return out


def _chart_flowables(chart: charts.Chart, lang: Lang) -> list[Any]:
    parts: list[Any] = [Paragraph(escape(chart.title), _H3)]
    if chart.table_rows:
        parts.append(drawing(chart))
    else:
        parts.append(_p(text.t(lang, "chart_empty"), _BODY))
    if chart.omitted:
        parts.append(_p(text.t(lang, "chart_not_drawn") + ": "
                        + "; ".join(f"{name}: {why}" for name, why in chart.omitted), _MUTED))
    story: list[Any] = [KeepTogether(parts)]
    if chart.table_rows:
        story.append(Spacer(1, 3))
        widths = [3] + [1.4] * (len(chart.table_header) - 1)
        story.append(_table(chart.table_header, chart.table_rows, widths))
    return story


# --- the document ----------------------------------------------------------------------------


class _NumberedCanvas(Canvas):
    """"Page n / N" on each page, once the number of pages is known."""

    label = "Page"
    title = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(_REGULAR, 7.5)
            self.setFillColor(colors.HexColor("#555555"))
            self.drawString(MARGIN, 7 * mm, self.title)
            number = f"{self.label} {self._pageNumber} / {len(self._pages)}"
            self.drawRightString(PAGE[0] - MARGIN, 7 * mm, number)
            super().showPage()
        super().save()


def _group_section(table: render.GroupTable, lang: Lang) -> list[Any]:
    out: list[Any] = [Paragraph(escape(table.title), _H2)]
    if not table.rows:
        return [*out, _p(text.t(lang, "no_groups"), _BODY)]
    header = table.label_headers + table.headers
    labels, counts = len(table.label_headers), len(render.GROUP_COUNTS)
    rows, spans = [], []
    for index, row in enumerate(table.rows, start=1):
        if row.hidden_reason is not None:
            figures = (row.hidden_reason,) + ("",) * (len(render.GROUP_FIGURES) - 1)
            spans.append((index, labels + counts, len(header) - 1))
        else:
            figures = row.figures
        rows.append(row.labels + row.counts + figures)
    widths = [2.0] * labels + [1.3] * counts + [1.7] * len(render.GROUP_FIGURES)
    out.append(_table(header, rows, widths, spans))
    return out


def report_pdf(report: Report, lang: Lang) -> bytes:
    report_fonts()

    def tr(key: str, **params: Any) -> str:
        return text.t(lang, key, **params)

    title = f"{tr('title')} · {text.period(report.filters, lang)}"
    story: list[Any] = [Paragraph(escape(title), _H1), _kv(render.header_facts(report, lang))]
    privacy = render.privacy_note(report, lang)
    if privacy:
        story.append(Paragraph(escape(privacy), _NOTE))
    for words in text.notes(report.notes, lang):
        story.append(Paragraph(escape(words), _NOTE))
    story.append(Paragraph(escape(tr("what_title")), _H2))
    story += [Paragraph("• " + escape(words), _BODY) for words in text.explanations(lang)]
    for table in render.group_tables(report, lang):
        story += _group_section(table, lang)
    story.append(Paragraph(escape(tr("sec_charts")), _H2))
    for chart in charts.report_charts(report, lang):
        story += _chart_flowables(chart, lang)
    story.append(Paragraph(escape(tr("sec_lines")), _H2))
    if report.lines:
        header = render.line_headers(lang)
        widths = [2.4, 1.6, 1.8, 1.2, 1.6] + [1.4] * (len(header) - 5)
        story.append(_table(header, [render.line_cells(line, lang) for line in report.lines], widths))
    else:
        story.append(_p(tr("no_lines"), _BODY))
    story += [Spacer(1, 8), _p(tr("print_note"), _MUTED)]

    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN,
                                 topMargin=MARGIN, bottomMargin=BOTTOM_MARGIN, title=title,
                                 author="schoolnet", lang=lang)

    class Numbered(_NumberedCanvas):
        pass

    Numbered.label = tr("page")
    Numbered.title = title
    document.build(story, canvasmaker=Numbered)
    return buffer.getvalue()
