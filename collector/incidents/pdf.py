"""The evidence pack as an A4 PDF (reportlab): the summary first, then the same sections as
the web page, measurements as tables, a page number on every page.

The text is set in DejaVu Sans, embedded from the system's font files (Debian's
fonts-dejavu-core, which the Dockerfile installs): names of schools and contacts can hold
any Latin letter (ł, ş, Ő), and Helvetica's WinAnsi encoding, the PDF standard font that
needs no file, prints those as black boxes. Where none of FONT_CANDIDATES is installed the
PDF is still made, in Helvetica at the same sizes: € and the letters Dutch needs are in
WinAnsi, other letters are lost, which beats no evidence pack at all. Arrows are written
as words or ">" either way, so both fonts print the same text.
"""

from __future__ import annotations

import functools
import io
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from collector.incidents import sentences, text
from collector.incidents.text import Lang

# (regular, bold) TrueType files; the first pair present wins. Debian and Ubuntu
# (fonts-dejavu-core: the container image, this project's CI), Fedora, Alpine and Arch.
# No setting: a school's name prints right wherever one of these is installed.
_DEJAVU_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu-sans-fonts",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
)
FONT_CANDIDATES: tuple[tuple[str, str], ...] = tuple(
    (f"{folder}/DejaVuSans.ttf", f"{folder}/DejaVuSans-Bold.ttf") for folder in _DEJAVU_DIRS
)
# The names the styles below use; pdf_fonts() registers them as DejaVu Sans or as Helvetica.
_REGULAR, _BOLD = "EvidenceSans", "EvidenceSans-Bold"


class PdfFonts(NamedTuple):
    """The faces behind _REGULAR and _BOLD: ("DejaVuSans", "DejaVuSans-Bold") or Helvetica's."""

    regular: str
    bold: str


def find_font_files(candidates: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The first (regular, bold) pair whose files both exist."""
    for regular, bold in candidates:
        if os.path.isfile(regular) and os.path.isfile(bold):
            return regular, bold
    return None


def _truetype(files: tuple[str, str] | None) -> tuple[TTFont, TTFont] | None:
    if files is None:
        return None
    try:
        return TTFont(_REGULAR, files[0]), TTFont(_BOLD, files[1])
    except Exception:  # a damaged or unreadable file: reportlab raises TTFError, OSError, struct.error
        return None


_font_lock = threading.Lock()


@functools.cache
def pdf_fonts() -> PdfFonts:
    """Registers _REGULAR and _BOLD, once a process (reportlab's font registry is global):
    the TrueType pair of FONT_CANDIDATES, else Helvetica; a file reportlab cannot read
    counts as missing."""
    with _font_lock:
        faces = _truetype(find_font_files(FONT_CANDIDATES))
        if faces is not None:
            for face in faces:
                pdfmetrics.registerFont(face)
            chosen = PdfFonts(*(face.face.name.decode() for face in faces))
            # DejaVu Sans runs about 13 % wider than Helvetica: table cells a size smaller
            # keep the tables' line breaks ("3 Mar 09:12" on one line), and its tall
            # lower case reads as large as Helvetica's 7.5 pt.
            for style in (_CELL, _CELL_HEAD):
                style.fontSize, style.leading = TRUETYPE_CELL_SIZE, TRUETYPE_CELL_SIZE + 1.5
        else:
            pdfmetrics.registerFont(pdfmetrics.Font(_REGULAR, "Helvetica", "WinAnsiEncoding"))
            pdfmetrics.registerFont(pdfmetrics.Font(_BOLD, "Helvetica-Bold", "WinAnsiEncoding"))
            chosen = PdfFonts("Helvetica", "Helvetica-Bold")
        pdfmetrics.registerFontFamily(
            _REGULAR, normal=_REGULAR, bold=_BOLD, italic=_REGULAR, boldItalic=_BOLD
        )
        return chosen


_styles = getSampleStyleSheet()
_BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontName=_REGULAR, fontSize=9, leading=11.5)
_SUMMARY = ParagraphStyle(
    "summary",
    parent=_BODY,
    fontSize=10.5,
    leading=14,
    backColor=colors.HexColor("#f3f6fb"),
    borderPadding=6,
    spaceBefore=4,
    spaceAfter=10,
)
_H1 = ParagraphStyle("h1", parent=_styles["Heading1"], fontName=_BOLD, fontSize=16, leading=19)
_H2 = ParagraphStyle(
    "h2",
    parent=_styles["Heading2"],
    fontName=_BOLD,
    fontSize=12,
    leading=15,
    spaceBefore=10,
    spaceAfter=4,
    textColor=colors.HexColor("#1f5fa8"),
)
_CELL = ParagraphStyle("cell", parent=_BODY, fontSize=7.5, leading=9)
TRUETYPE_CELL_SIZE = 6.6
_CELL_HEAD = ParagraphStyle("cellhead", parent=_CELL, fontName=_BOLD)
_MUTED = ParagraphStyle("muted", parent=_BODY, fontSize=8, textColor=colors.HexColor("#555555"))

_TABLE_STYLE = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bbbbbb")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
)
_KV_STYLE = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bbbbbb")),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef1f5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)
_WIDTH = A4[0] - 24 * mm


def _p(value: Any, style: ParagraphStyle = _CELL) -> Paragraph:
    return Paragraph(escape(str(value)).replace("\n", "<br/>"), style)


# A table row cannot break across pages: a cell taller than the page (a 4,000-character
# note in a narrow column, a reason with hundreds of line breaks) would stop the whole PDF
# (reportlab's LayoutError). A cell holds at most this many lines; the rest is cut, and
# says so: the JSON and CSV have every character.
MAX_CELL_LINES = 40
CUT_MARK = " [...]"


def _fit(value: Any, width: float, style: ParagraphStyle = _CELL) -> str:
    """``value`` cut to MAX_CELL_LINES lines of a column ``width`` points wide (counting every
    character as wide as a capital W: no cell is ever taller)."""
    text = str(value)
    per_line = max(int((width - 6) / (style.fontSize * 0.95)), 1)
    lines, kept = 0, []
    for part in text.split("\n"):
        need = max(-(-len(part) // per_line), 1)
        if lines + need > MAX_CELL_LINES:
            room = (MAX_CELL_LINES - lines) * per_line - len(CUT_MARK)
            if room > 0:
                kept.append(part[:room])
            return "\n".join(kept) + CUT_MARK
        kept.append(part)
        lines += need
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float]) -> LongTable:
    total = sum(widths)
    columns = [w / total * _WIDTH for w in widths]
    data = [[_p(h, _CELL_HEAD) for h in header]] + [
        [_p(_fit(c, columns[i])) for i, c in enumerate(row)] for row in rows
    ]
    table = LongTable(data, colWidths=columns, repeatRows=1)
    table.setStyle(_TABLE_STYLE)
    return table


def _kv(rows: Sequence[tuple[str, Any]]) -> LongTable:
    columns = [0.32 * _WIDTH, 0.68 * _WIDTH]
    data = [[_p(_fit(k, columns[0]), _CELL_HEAD), _p(_fit(v, columns[1]))] for k, v in rows]
    table = LongTable(data, colWidths=columns)
    table.setStyle(_KV_STYLE)
    return table


class _NumberedCanvas(Canvas):
    """Draws "Page n of N" on each page once all pages are known."""

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
            self.drawString(12 * mm, 8 * mm, _footer(self.title))
            self.drawRightString(
                A4[0] - 12 * mm, 8 * mm, f"{self.label} {self._pageNumber} / {len(self._pages)}"
            )
            super().showPage()
        super().save()


def _footer(title: str) -> str:
    """The title on one line that leaves room for the page number (a school's name may be long
    or hold line breaks)."""
    line = " ".join(title.split())
    room = A4[0] - 24 * mm - 30 * mm
    if stringWidth(line, _REGULAR, 7.5) <= room:
        return line
    while line and stringWidth(line + "...", _REGULAR, 7.5) > room:
        line = line[:-1]
    return line + "..."


def evidence_pdf(document: Mapping[str, Any], lang: Lang) -> bytes:
    """The pack of ``document`` (collector/incidents/evidence.py) as PDF bytes."""
    pdf_fonts()
    # What detection and the lifecycle said, in the pack's language (the JSON keeps both).
    document = sentences.in_language(document, lang)

    def tr(key: str, **params: Any) -> str:
        return text.t(lang, key, **params)

    zone = document.get("timezone")

    def when(stamp: Any) -> str:
        return text.when(stamp, lang, zone)

    incident, rule, school = document["incident"], document["rule"], document.get("school") or {}
    line = document.get("line")
    title = (
        f"{tr('title')} - {tr('incident')} {incident['id']}: {text.label(lang, 'kind', incident['kind'])}"
        f" - {school.get('name') or incident.get('provider') or ''}"
    )
    story: list[Any] = [
        Paragraph(escape(title), _H1),
        _p(
            f"{tr('generated')}: {when(document['generated_at'])} · {tr('period')}: "
            f"{when(document['period']['start'])} - {when(document['period']['end'])}",
            _MUTED,
        ),
        Paragraph(escape(tr("summary")), _H2),
        Paragraph(escape(text.summary_paragraph(document, lang)), _SUMMARY),
    ]

    sla = incident["sla"]
    sla_result = (
        tr("sla_none")
        if sla["restore_seconds"] is None
        else tr("sla_open")
        if sla["met"] is None
        else tr("sla_met")
        if sla["met"]
        else tr("sla_missed")
    )
    contact = incident.get("escalation_contact")
    contact_text = (
        ", ".join(str(v) for v in (contact.get("name"), contact.get("email"), contact.get("phone")) if v)
        if contact
        else tr("no_contact")
    )
    supplier = incident.get("supplier")
    supplier_text = (
        (supplier.get("name") if isinstance(supplier, Mapping) else supplier)
        or (line["provider"] if line else incident.get("provider"))
        or tr("unknown")
    )
    if isinstance(supplier, Mapping) and supplier.get("support_contact"):
        supplier_text = f"{supplier_text} ({supplier['support_contact']})"
    story += [
        Paragraph(escape(tr("sec_incident")), _H2),
        _kv(
            [
                (tr("id"), incident["id"]),
                (tr("kind"), text.label(lang, "kind", incident["kind"])),
                (tr("state"), text.label(lang, "state", incident["state"])),
                (tr("started"), when(incident["started_at"])),
                (tr("detected"), when(incident["detected_at"])),
                (tr("acknowledged"), when(incident["acknowledged_at"])),
                (tr("escalated"), when(incident["escalated_at"])),
                (tr("restored"), when(incident["restored_at"])),
                (
                    tr("closed"),
                    when(incident["closed_at"])
                    + (f" · {incident['resolution_note']}" if incident.get("resolution_note") else ""),
                ),
                (tr("responsible"), text.label(lang, "responsible", incident["responsible"])),
                (tr("supplier"), supplier_text),
                (tr("contact"), contact_text),
                (tr("impact"), text.label(lang, "impact", incident["impact"])),
                (tr("urgency"), text.label(lang, "urgency", incident["urgency"])),
                (tr("reasons"), "\n".join(text.reason_text(r, lang) for r in incident["reasons"]) or "-"),
                (tr("ticket"), incident.get("ticket") or "-"),
                (
                    tr("sla_allowed"),
                    (
                        text.duration(sla["restore_seconds"], lang)
                        if sla["restore_seconds"] is not None
                        else tr("none")
                    )
                    + f" · {text.label(lang, 'clock', sla['clock'])}",
                ),
                (tr("sla_deadline"), when(sla["deadline"])),
                (tr("ttr_wall"), text.duration(sla["time_to_restore_seconds"], lang)),
                (tr("ttr_sla"), text.duration(sla["time_to_restore_sla_seconds"], lang)),
                (tr("sla_result"), sla_result),
            ]
        ),
    ]

    if school.get("id"):
        address = ", ".join(
            v for v in (school.get("address"), school.get("postcode"), school.get("city")) if v
        )
        story += [
            Paragraph(escape(tr("sec_school")), _H2),
            _kv(
                [
                    (tr("board"), f"{school.get('board_name')} ({school.get('board')})"),
                    (tr("school_name"), f"{school.get('name')} ({school.get('id')})"),
                    (tr("external_id"), school.get("external_id") or "-"),
                    (tr("address"), address or "-"),
                ]
            ),
        ]
    if line:
        story += [
            Paragraph(escape(tr("sec_line")), _H2),
            _kv(
                [
                    (tr("provider"), f"{line['provider']} ({line['provider_id']})"),
                    (
                        f"{tr('technology')} · {tr('role')}",
                        f"{line['technology']} · {line['role']} ({line['id']})",
                    ),
                    (tr("support"), line.get("support_contact") or "-"),
                ]
            ),
        ]
        terms = line.get("terms")
        if terms:
            story.append(Spacer(1, 4))
            story.append(
                _table(
                    [tr("direction"), tr("advertised"), tr("normal"), tr("minimum"), tr("maximum")],
                    [
                        [tr(direction)]
                        + [
                            text.rate(terms[direction][f"{level}_bytes_per_second"], lang)
                            for level in ("advertised", "normal", "minimum", "maximum")
                        ]
                        for direction in ("download", "upload")
                    ],
                    [2, 2, 2, 2, 2],
                )
            )
            story.append(
                _kv(
                    [
                        (
                            tr("terms_from"),
                            terms["starts_on"] + (f" - {terms['ends_on']}" if terms.get("ends_on") else ""),
                        ),
                        (
                            tr("monthly_cost"),
                            text.money(terms.get("monthly_cost"), terms.get("currency"), lang),
                        ),
                        (
                            tr("sla_allowed"),
                            text.duration(terms["sla_restore_seconds"], lang)
                            if terms.get("sla_restore_seconds") is not None
                            else tr("none"),
                        ),
                    ]
                )
            )

    story += [
        Paragraph(escape(tr("sec_rule")), _H2),
        _kv(
            [*_rule_rows(rule, lang),
             (tr("corroboration"), "\n".join(document.get("corroboration") or ()) or "-")]
        ),
    ]

    if school.get("id"):
        story += _measurement_section(document, lang)
        story += _lan_section(document, lang)
        story += _outage_section(document, lang)
        story += _readings_section(document, lang)
        devices = document["devices"]
        story += [
            Paragraph(escape(tr("sec_devices")), _H2),
            _p(
                f"{tr('peak')}: {_or(devices['peak'], lang)} · {tr('median')}: {_or(devices['median'], lang)}"
                f" · {tr('counts')}: {len(devices['counts'])}",
                _BODY,
            ),
        ]
    if document.get("children"):
        story += [
            Paragraph(escape(tr("sec_children")), _H2),
            _table(
                [tr("id"), tr("col_school"), tr("col_state"), tr("started"), tr("col_figure")],
                [
                    [
                        c["id"],
                        f"{c['school_name']} ({c['board']}/{c['school']})",
                        text.label(lang, "state", c["state"]),
                        when(c["started_at"]),
                        text.percent(c["median_ratio"], lang)
                        if c.get("median_ratio") is not None
                        else text.duration(c.get("duration_seconds"), lang),
                    ]
                    for c in document["children"]
                ],
                [1, 4, 2, 3, 2],
            ),
        ]
    story += [
        Paragraph(escape(tr("sec_events")), _H2),
        _table(
            [tr("col_time"), tr("col_actor"), tr("col_action"), tr("col_state"), tr("col_note")],
            [
                [
                    when(e["at"]),
                    e["actor"],
                    text.label(lang, "action", e["action"]),
                    (f"{e['from_state'] or ''} > {e['to_state']}" if e.get("to_state") else ""),
                    e.get("note") or "",
                ]
                for e in document["events"]
            ]
            or [[tr("no_rows"), "", "", "", ""]],
            [3, 3, 2, 2, 4],
        ),
    ]
    story.append(Spacer(1, 6))
    story.append(_p(tr("print_note"), _MUTED))

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=title,
        author="schoolnet",
        lang=lang,
    )

    class Numbered(_NumberedCanvas):
        pass

    Numbered.label, Numbered.title = tr("page"), title
    doc.build(story, canvasmaker=Numbered)
    return buffer.getvalue()


def _or(value: Any, lang: Lang) -> str:
    return text.t(lang, "not_measured") if value is None else str(value)


def _rule_rows(rule: Mapping[str, Any], lang: Lang) -> list[tuple[str, Any]]:
    def tr(key: str) -> str:
        return text.t(lang, key)

    rows: list[tuple[str, Any]] = [
        (
            tr("kind"),
            text.label(lang, "kind", rule["kind"])
            + (f" ({tr(rule['direction'])})" if rule.get("direction") else ""),
        )
    ]
    quantity = rule.get("quantity")
    if rule["kind"] == "bandwidth":
        rows += [
            (tr("threshold"), f">= {text.percent(rule.get('threshold'), lang)} {tr('col_ratio')}"),
            (
                tr("measured"),
                f"{tr('median')} {text.percent(rule.get('measured'), lang)} {tr('col_ratio')} "
                f"({text.rate(rule.get('median_bytes_per_second'), lang)} / "
                f"{text.rate(rule.get('advertised_bytes_per_second'), lang)})",
            ),
            (tr("tests_counted"), rule.get("tests")),
            (tr("servers"), ", ".join(rule.get("servers") or ()) or "-"),
        ]
    elif quantity == "ratio":
        rows += [
            (tr("threshold"), f"< {text.percent(rule.get('threshold'), lang, 1)}"),
            (tr("measured"), text.percent(rule.get("measured"), lang, 1)),
        ]
    elif quantity == "seconds":
        fmt = text.milliseconds if rule["kind"] == "latency" else text.duration
        rows += [
            (tr("threshold"), fmt(rule.get("threshold"), lang)),
            (tr("measured"), fmt(rule.get("measured"), lang)),
        ]
    elif quantity == "dbm":
        rows += [
            (tr("threshold"), f">= {text.dbm(rule.get('threshold'), lang)}"),
            (tr("measured"), text.dbm(rule.get("measured"), lang)),
        ]
    elif quantity == "schools":
        rows += [(tr("threshold"), f">= {rule.get('threshold')}"), (tr("measured"), rule.get("measured"))]
    return rows


def _measurement_section(document: Mapping[str, Any], lang: Lang) -> list[Any]:
    def tr(key: str) -> str:
        return text.t(lang, key)

    out: list[Any] = [Paragraph(escape(tr("sec_measurements")), _H2)]
    if not document["measurements"]:
        return [*out, _p(tr("no_rows"), _BODY)]
    rows = []
    for m in document["measurements"]:
        valid = tr("yes" if m["valid"] else "no") + (
            ": " + "; ".join(m["invalid_reasons"]) if m["invalid_reasons"] else ""
        )
        retest = "-"
        if m.get("retest_server"):
            parts = [m["retest_server"]]
            if m.get("retest_download_bytes_per_second") is not None:
                parts.append(
                    f"down {text.rate(m['retest_download_bytes_per_second'], lang)} "
                    f"({text.percent(m['retest_download_ratio'], lang)})"
                )
            if m.get("retest_upload_bytes_per_second") is not None:
                parts.append(
                    f"up {text.rate(m['retest_upload_bytes_per_second'], lang)} "
                    f"({text.percent(m['retest_upload_ratio'], lang)})"
                )
            if m.get("retest_error"):
                parts.append(m["retest_error"])
            retest = "\n".join(parts)
        rows.append(
            [
                text.short_time(m["measured_at"], lang) + (" *" if m["counted"] else ""),
                m.get("agent") or m["source"],
                m["backend"],
                m["server"],
                _or(m.get("streams"), lang),
                valid,
                f"{text.rate(m['download_bytes_per_second'], lang)}\n{_pct(m['download_ratio'], lang)}",
                f"{text.rate(m['upload_bytes_per_second'], lang)}\n{_pct(m['upload_ratio'], lang)}",
                retest,
                _or(m.get("concurrent_devices"), lang),
                f"down {text.megabytes(m.get('download_cross_traffic_bytes'), lang)}\n"
                f"up {text.megabytes(m.get('upload_cross_traffic_bytes'), lang)}",
                f"{text.percent(m.get('gateway_loss_ratio'), lang, 1)}\n"
                f"{text.milliseconds(m.get('gateway_latency_p50_seconds'), lang)}",
            ]
        )
    out.append(
        _table(
            [
                tr("col_time"),
                tr("col_agent"),
                tr("col_backend"),
                tr("col_server"),
                tr("col_streams"),
                tr("col_valid"),
                tr("col_down"),
                tr("col_up"),
                tr("col_retest"),
                tr("col_devices"),
                tr("col_cross"),
                tr("col_gateway"),
            ],
            rows,
            [2.2, 1.3, 1.1, 3.0, 1.1, 2.4, 2.0, 2.0, 3.1, 1.3, 1.8, 1.8],
        )
    )
    out.append(_p(f"* {tr('tests_counted')}", _MUTED))
    return out


def _pct(ratio: float | None, lang: Lang) -> str:
    return "" if ratio is None else text.percent(ratio, lang)


def _lan_section(document: Mapping[str, Any], lang: Lang) -> list[Any]:
    def tr(key: str, **params: Any) -> str:
        return text.t(lang, key, **params)

    lan = document["lan_evidence"]
    summary = lan["summary"]
    conclusion = tr(
        f"conclusion.{lan['conclusion']}",
        bad=summary["windows_with_gateway"] - summary["gateway_fine_windows"],
        total=summary["windows_with_gateway"],
    )
    out: list[Any] = [Paragraph(escape(tr("sec_lan")), _H2), _p(conclusion, _BODY)]
    if lan["buckets"]:
        out.append(
            _table(
                [
                    tr("col_time"),
                    tr("col_agent"),
                    tr("col_windows"),
                    f"{tr('col_gw')} {tr('col_loss')}",
                    f"{tr('col_gw')} {tr('col_rtt')}",
                    f"{tr('col_targets')} {tr('col_loss')}",
                    f"{tr('col_targets')} {tr('col_rtt')}",
                    tr("col_down_s"),
                    tr("col_segment"),
                ],
                [
                    [
                        text.short_time(b["start"], lang),
                        b["agent"],
                        b["windows"],
                        text.percent(b["gateway_loss_ratio"], lang, 1),
                        text.milliseconds(b["gateway_latency_p50_seconds"], lang),
                        text.percent(b["targets_loss_ratio"], lang, 1),
                        text.milliseconds(b["targets_latency_p50_seconds"], lang),
                        text.duration(b["down_seconds"], lang),
                        (b["segment"] or "-")
                        + (
                            f": {b['segment_reason']}"
                            if b["segment"] not in (None, "none") and b.get("segment_reason")
                            else ""
                        ),
                    ]
                    for b in lan["buckets"]
                ],
                [2, 1.2, 1, 1.4, 1.4, 1.6, 1.6, 1.4, 4],
            )
        )
    return out


def _readings_section(document: Mapping[str, Any], lang: Lang) -> list[Any]:
    readings = document.get("readings") or []
    if not readings:
        return []

    def tr(key: str) -> str:
        return text.t(lang, key)

    return [
        Paragraph(escape(tr("sec_readings")), _H2),
        _table(
            [tr("col_time"), tr("col_room"), tr("col_agent"), tr("col_source"), tr("col_in_session"),
             tr("col_signal")],
            [
                [
                    text.short_time(r["measured_at"], lang),
                    r["room_name"],
                    r.get("agent") or "-",
                    r["source"],
                    tr("yes" if r["in_session"] else "no"),
                    text.dbm(r["signal_dbm"], lang),
                ]
                for r in readings
            ],
            [2, 3, 2, 1.5, 1.5, 1.5],
        ),
    ]


def _outage_section(document: Mapping[str, Any], lang: Lang) -> list[Any]:
    def tr(key: str) -> str:
        return text.t(lang, key)

    out: list[Any] = [Paragraph(escape(tr("sec_outages")), _H2)]
    if not document["outages"]:
        return [*out, _p(tr("no_rows"), _BODY)]
    zone = document.get("timezone")
    out.append(
        _table(
            [
                tr("col_kind"),
                tr("col_start"),
                tr("col_end"),
                tr("col_duration"),
                tr("col_agent"),
                tr("col_detail"),
            ],
            [
                [
                    text.label(lang, "outage", o["kind"]),
                    text.when(o["start"], lang, zone) + " " + text.clock_seconds(o["start"]),
                    text.clock_seconds(o["end"]) + (f" ({tr('ongoing')})" if o["ongoing"] else ""),
                    text.duration(o["duration_seconds"], lang),
                    o["agent"],
                    o.get("detail") or "-",
                ]
                for o in document["outages"]
            ],
            [2, 3.5, 1.6, 1.6, 1.2, 5],
        )
    )
    return out
