"""The evidence pack as a web page (jinja2, autoescaped), and the incident lists.

The page stands alone: no external CSS, script, font or image; the two charts (each
measurement's speed as a share of the advertised one against the rule's line, and the
outage timeline) are inline SVG drawn here, on the server. It prints on A4 (@media print:
no navigation, page breaks between sections, tables that repeat their header).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from collector.incidents import sentences, text
from collector.incidents.text import Lang

TEMPLATES = Path(__file__).parent / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _formatters(lang: Lang, zone: str | None) -> dict[str, Any]:
    """What the templates call to say a value in ``lang``."""
    return {
        "t": partial(text.t, lang),
        "label": partial(text.label, lang),
        "rate": lambda v: text.rate(v, lang),
        "percent": lambda v, places=0: text.percent(v, lang, places),
        "ms": lambda v: text.milliseconds(v, lang),
        "mb": lambda v: text.megabytes(v, lang),
        "dbm": lambda v: text.dbm(v, lang),
        "money": lambda v, c: text.money(v, c, lang),
        "duration": lambda v: text.duration(v, lang),
        "when": lambda s: text.when(s, lang, zone),
        "short": lambda s: text.short_time(s, lang),
        "clock": text.clock_seconds,
        "reason": lambda r: text.reason_text(r, lang),
        "yesno": lambda v: text.t(lang, "unknown") if v is None else text.t(lang, "yes" if v else "no"),
    }


def links(incident_pk: int, lang: Lang, share: str | None) -> dict[str, str]:
    """Relative links of the pack (they carry the share secret where the page was opened
    with one, so a helpdesk without a token can download what it sees)."""

    def url(path: str, **query: str) -> str:
        params = dict(query)
        if share:
            params["share"] = share
        return f"{path}?{urlencode(params)}" if params else path

    base = f"/incidents/{incident_pk}"
    other: Lang = "en" if lang == "nl" else "nl"
    return {
        "other_language": url(base, lang=other),
        "pdf": url(f"{base}/evidence.pdf", lang=lang),
        "json": url(f"{base}/evidence.json"),
        **{
            f"csv_{table}": url(f"{base}/evidence.csv", table=table)
            for table in ("measurements", "windows", "outages", "devices", "readings")
        },
    }


def evidence_html(document: Mapping[str, Any], lang: Lang, share: str | None = None) -> str:
    # What detection and the lifecycle said, in the page's language (the JSON keeps both).
    document = sentences.in_language(document, lang)
    zone = document.get("timezone")
    incident = document["incident"]
    return _env.get_template("evidence.html").render(
        d=document,
        lang=lang,
        summary=text.summary_paragraph(document, lang),
        links=links(incident["id"], lang, share),
        ratio_chart=ratio_chart(document, lang),
        outage_chart=outage_chart(document, lang),
        **_formatters(lang, zone),
    )


def list_html(
    items: Sequence[Mapping[str, Any]],
    lang: Lang,
    title: str,
    filters: Mapping[str, str | None],
    zone: str | None = None,
) -> str:
    return _env.get_template("list.html").render(
        items=items, lang=lang, title=title, filters=filters, **_formatters(lang, zone)
    )


# --- charts (inline SVG) ---------------------------------------------------------------------

_W, _H = 720.0, 240.0
_LEFT, _RIGHT, _TOP, _BOTTOM = 56.0, 16.0, 16.0, 36.0


def _x(t: float, start: float, end: float) -> float:
    span = max(end - start, 1.0)
    return _LEFT + (t - start) / span * (_W - _LEFT - _RIGHT)


def _ticks(start: float, end: float, document: Mapping[str, Any]) -> list[tuple[float, str]]:
    """Hour marks along the period (every 1, 2, 3, 6, 12 or 24 h: at most ~12 of them)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(str(document.get("timezone") or "UTC"))
    hours = max((end - start) / 3600, 1)
    step = next((s for s in (1, 2, 3, 6, 12, 24, 48, 168) if hours / s <= 12), 168)
    first = datetime.fromtimestamp(start, zone).replace(minute=0, second=0, microsecond=0)
    marks, t = [], first.timestamp()
    while t <= end:
        local = datetime.fromtimestamp(t, zone)
        if t >= start and local.hour % step == 0:
            marks.append((t, f"{local:%H:%M}" if step < 24 else f"{local:%d-%m}"))
        t += 3600
    return marks


def _axis(start: float, end: float, document: Mapping[str, Any], height: float) -> list[str]:
    parts = [
        f'<line x1="{_LEFT}" y1="{height - _BOTTOM}" x2="{_W - _RIGHT}" y2="{height - _BOTTOM}" '
        'stroke="#444"/>'
    ]
    for t, name in _ticks(start, end, document):
        x = _x(t, start, end)
        parts.append(
            f'<line x1="{x:.1f}" y1="{height - _BOTTOM}" x2="{x:.1f}" y2="{height - _BOTTOM + 5}" '
            'stroke="#444"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{height - _BOTTOM + 18}" font-size="12" text-anchor="middle">'
            f"{escape(name)}</text>"
        )
    return parts


def ratio_chart(document: Mapping[str, Any], lang: Lang) -> Markup:
    """Each measurement's speed / advertised over the period, the rule's threshold dashed."""
    rule = document["rule"]
    direction = rule.get("direction") or "download"
    start, end = document["period"]["start"]["seconds"], document["period"]["end"]["seconds"]
    points = [
        (m["measured_at"]["seconds"], m[f"{direction}_ratio"], m["valid"], m["counted"])
        for m in document["measurements"]
        if m[f"{direction}_ratio"] is not None
    ]
    retests = [
        (m["measured_at"]["seconds"], m[f"retest_{direction}_ratio"])
        for m in document["measurements"]
        if m[f"retest_{direction}_ratio"] is not None
    ]
    if not points:
        return Markup("")
    top = max(1.2, *(r for _, r, _, _ in points), *(r for _, r in retests))

    def y(ratio: float) -> float:
        return _TOP + (1 - ratio / top) * (_H - _TOP - _BOTTOM)

    parts = [
        f'<svg viewBox="0 0 {_W:.0f} {_H:.0f}" role="img" '
        f'aria-label="{escape(text.t(lang, "chart_ratio"))}" class="chart">'
    ]
    for level in (0.0, 0.5, 1.0):
        parts.append(
            f'<line x1="{_LEFT}" y1="{y(level):.1f}" x2="{_W - _RIGHT}" y2="{y(level):.1f}" stroke="#ccc"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y(level) + 4:.1f}" font-size="12" text-anchor="end">'
            f"{escape(text.percent(level, lang))}</text>"
        )
    threshold = rule.get("threshold")
    if rule.get("kind") == "bandwidth" and threshold is not None:
        parts.append(
            f'<line x1="{_LEFT}" y1="{y(threshold):.1f}" x2="{_W - _RIGHT}" y2="{y(threshold):.1f}" '
            'stroke="#b00" stroke-dasharray="6 4"/>'
        )
        parts.append(
            f'<text x="{_W - _RIGHT}" y="{y(threshold) - 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="#b00">{escape(text.t(lang, "threshold"))} {escape(text.percent(threshold, lang))}'
            "</text>"
        )
    parts.extend(_axis(start, end, document, _H))
    for t, ratio, valid, counted in points:
        fill = "#1f5fa8" if valid else "none"
        size = 5 if counted else 4
        parts.append(
            f'<circle cx="{_x(t, start, end):.1f}" cy="{y(ratio):.1f}" r="{size}" fill="{fill}" '
            'stroke="#1f5fa8" stroke-width="1.5"/>'
        )
    for t, ratio in retests:
        x, yy = _x(t, start, end), y(ratio)
        parts.append(
            f'<rect x="{x - 3.5:.1f}" y="{yy - 3.5:.1f}" width="7" height="7" fill="#e08a00" '
            f'transform="rotate(45 {x:.1f} {yy:.1f})"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


_OUTAGE_COLOURS = {"isp": "#b00", "lan": "#7a4fb0", "dns": "#e08a00", "internet": "#666"}


def outage_chart(document: Mapping[str, Any], lang: Lang) -> Markup:
    """One row per agent: the period, school hours shaded by nothing (plain), outages as bars."""
    outages = document["outages"]
    if not outages:
        return Markup("")
    start, end = document["period"]["start"]["seconds"], document["period"]["end"]["seconds"]
    agents = sorted({o["agent"] for o in outages})
    row = 28.0
    height = _TOP + row * len(agents) + _BOTTOM
    parts = [
        f'<svg viewBox="0 0 {_W:.0f} {height:.0f}" role="img" '
        f'aria-label="{escape(text.t(lang, "chart_outages"))}" class="chart">'
    ]
    for i, agent in enumerate(agents):
        top = _TOP + i * row
        parts.append(
            f'<text x="{_LEFT - 6}" y="{top + row / 2 + 4:.1f}" font-size="12" text-anchor="end">'
            f"{escape(agent)}</text>"
        )
        parts.append(
            f'<rect x="{_LEFT}" y="{top + 4:.1f}" width="{_W - _LEFT - _RIGHT:.1f}" '
            f'height="{row - 8:.1f}" fill="#e8f1e8"/>'
        )
        for o in outages:
            if o["agent"] != agent:
                continue
            a = _x(max(o["start"]["seconds"], start), start, end)
            b = _x(min(o["end"]["seconds"], end), start, end)
            colour = _OUTAGE_COLOURS.get(o["kind"], "#666")
            parts.append(
                f'<rect x="{a:.1f}" y="{top + 4:.1f}" width="{max(b - a, 2):.1f}" '
                f'height="{row - 8:.1f}" fill="{colour}"><title>'
                f"{escape(text.label(lang, 'outage', o['kind']))}: "
                f"{escape(text.duration(o['duration_seconds'], lang))}</title></rect>"
            )
    parts.extend(_axis(start, end, document, height))
    parts.append("</svg>")
    return Markup("".join(parts))
