"""The evidence pack's words in Dutch and English, and numbers and times per language.

One dict of strings per language (no gettext: two languages, one page), number formats
("12,5 Mbit/s" in Dutch, "12.5 Mbit/s" in English), local times ("di 3 mrt 2026 10:15
(CET)") and ``summary_paragraph``: the plain paragraph a provider's helpdesk reads first.
Everything reads the language-neutral document of collector/incidents/evidence.py; a value
the document does not have is "niet gemeten" / "not measured", never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, get_args

Lang = Literal["nl", "en"]
LANGS: tuple[Lang, ...] = get_args(Lang)
MBIT = 125_000.0

STRINGS: dict[Lang, dict[str, str]] = {
    "en": {
        "title": "Evidence pack",
        "incident": "Incident",
        "summary": "Summary",
        "not_measured": "not measured",
        "none": "none",
        "yes": "yes",
        "no": "no",
        "unknown": "unknown",
        "other_language": "Nederlands",
        "downloads": "Download",
        "pdf": "PDF",
        "json": "JSON",
        "csv_measurements": "CSV: measurements",
        "csv_windows": "CSV: connectivity windows",
        "csv_outages": "CSV: outages",
        "csv_devices": "CSV: devices",
        "csv_readings": "CSV: Wi-Fi readings",
        "sec_readings": "Wi-Fi readings",
        "col_room": "Room",
        "col_signal": "Signal",
        "col_source": "Source",
        "col_in_session": "School hours",
        "action.opened": "opened",
        "action.reassessed": "reassessed",
        "action.merged": "merged",
        "action.note": "note",
        "action.ticket": "ticket",
        "action.acknowledged": "acknowledged",
        "action.escalated": "escalated",
        "action.resolved": "resolved",
        "action.dismissed": "dismissed",
        "generated": "Generated",
        "period": "Period shown",
        "timezone": "Time zone",
        "sec_incident": "The incident",
        "sec_school": "School",
        "sec_line": "Line and contract",
        "sec_rule": "The rule that was broken",
        "sec_measurements": "Bandwidth measurements",
        "sec_lan": "School network (LAN) against the provider",
        "sec_outages": "Outages",
        "sec_devices": "Concurrent devices",
        "sec_events": "Timeline",
        "sec_children": "Schools affected",
        "sec_charts": "Charts",
        "chart_ratio": "Measured speed as a share of the advertised speed",
        "chart_outages": "Outages over the period",
        "id": "Number",
        "kind": "Kind",
        "state": "State",
        "started": "Started",
        "detected": "Detected",
        "acknowledged": "Acknowledged",
        "escalated": "Escalated",
        "restored": "Restored",
        "closed": "Closed",
        "responsible": "Responsible",
        "supplier": "Supplier",
        "contact": "Escalation contact",
        "impact": "Impact",
        "urgency": "Urgency",
        "reasons": "Why",
        "ticket": "Provider's ticket",
        "resolution": "Resolution",
        "sla_allowed": "Time to restore allowed (SLA)",
        "sla_clock": "SLA clock",
        "sla_deadline": "SLA deadline",
        "ttr_wall": "Time to restore",
        "ttr_sla": "Time to restore on the SLA clock",
        "sla_result": "SLA",
        "sla_met": "met",
        "sla_missed": "missed",
        "sla_open": "not yet known (still open)",
        "sla_none": "none applies",
        "no_contact": "no escalation contact known (set one: board set / school set)",
        "board": "Board",
        "school_name": "School",
        "school_id": "School id",
        "external_id": "BRIN / external id",
        "address": "Address",
        "provider": "Provider",
        "technology": "Technology",
        "role": "Role",
        "support": "Provider's support",
        "terms_from": "Contract terms in force from",
        "direction": "Direction",
        "download": "download",
        "upload": "upload",
        "advertised": "advertised",
        "normal": "normally available",
        "minimum": "minimum",
        "maximum": "maximum",
        "monthly_cost": "Monthly cost",
        "sla_response": "Response time (SLA)",
        "networks": "Line's networks",
        "threshold": "Rule",
        "measured": "Measured",
        "tests_counted": "Tests decided on",
        "servers": "Servers",
        "corroboration": "Corroboration",
        "col_time": "Time",
        "col_agent": "Agent",
        "col_backend": "Method",
        "col_server": "Server",
        "col_streams": "Streams",
        "col_valid": "Valid",
        "col_down": "Download",
        "col_up": "Upload",
        "col_ratio": "of advertised",
        "col_retest": "Retest (second server)",
        "col_devices": "Devices",
        "col_cross": "Cross-traffic",
        "col_gateway": "Gateway at the time",
        "col_counted": "Counted",
        "col_why_invalid": "why not",
        "col_loss": "loss",
        "col_rtt": "round trip",
        "col_windows": "Windows",
        "col_gw": "Gateway",
        "col_targets": "Internet targets",
        "col_segment": "Segment",
        "col_down_s": "Down",
        "col_kind": "Kind",
        "col_start": "Start",
        "col_end": "End",
        "col_duration": "Duration",
        "col_detail": "Detail",
        "col_actor": "Who",
        "col_action": "What",
        "col_note": "Note",
        "col_state": "State",
        "col_school": "School",
        "col_figure": "Key figure",
        "ongoing": "ongoing",
        "no_rows": "none in the period",
        "peak": "Peak",
        "median": "Median",
        "counts": "Counts",
        "list_title": "Incidents",
        "list_school_title": "Incidents of {school}",
        "filter": "Filter",
        "all": "all",
        "active": "active",
        "print_note": "Printed from schoolnet. All figures come from the collector's store.",
        "page": "Page",
        "kind.bandwidth": "bandwidth below contract",
        "kind.outage": "outage",
        "kind.loss": "packet loss",
        "kind.latency": "high latency",
        "kind.wifi": "Wi-Fi room degraded",
        "kind.silent": "agent silent",
        "kind.provider": "provider-wide",
        "state.open": "open",
        "state.acknowledged": "acknowledged",
        "state.escalated": "escalated",
        "state.resolved": "resolved",
        "state.dismissed": "dismissed",
        "impact.teaching": "teaching",
        "impact.administration": "administration only",
        "urgency.high": "high",
        "urgency.normal": "normal",
        "urgency.low": "low",
        "responsible.provider": "the provider",
        "responsible.school": "the school (its own network)",
        "resolution.recovered": "recovered (the measurements show it)",
        "resolution.manual": "resolved by hand",
        "resolution.dismissed": "dismissed",
        "counted_24x7": "counted around the clock",
        "counted_business": "counted in business hours (Mon-Fri 08:00-18:00, public holidays off)",
        "clock.24x7": "24x7 (every hour)",
        "clock.business": "business hours (Mon-Fri 08:00-18:00)",
        "outage.isp": "provider's side",
        "outage.lan": "school network",
        "outage.dns": "name resolution",
        "outage.internet": "internet (side unknown)",
        "conclusion.lan_fine": "The school's gateway was fine in every window: the school network is not "
        "the cause.",
        "conclusion.lan_trouble": "The school's gateway was not fine in {bad} of {total} windows: the school "
        "network may be part of the cause.",
        "conclusion.no_windows": "No connectivity measurements cover the period: they cannot rule out the "
        "school network.",
        "conclusion.no_gateway": "No gateway was probed: the school network is not ruled out.",
    },
    "nl": {
        "title": "Bewijsdossier",
        "incident": "Storing",
        "summary": "Samenvatting",
        "not_measured": "niet gemeten",
        "none": "geen",
        "yes": "ja",
        "no": "nee",
        "unknown": "onbekend",
        "other_language": "English",
        "downloads": "Downloaden",
        "pdf": "PDF",
        "json": "JSON",
        "csv_measurements": "CSV: metingen",
        "csv_windows": "CSV: verbindingsvensters",
        "csv_outages": "CSV: onderbrekingen",
        "csv_devices": "CSV: apparaten",
        "csv_readings": "CSV: wifi-metingen",
        "sec_readings": "Wifi-metingen",
        "col_room": "Lokaal",
        "col_signal": "Signaal",
        "col_source": "Bron",
        "col_in_session": "Schooltijd",
        "action.opened": "geopend",
        "action.reassessed": "opnieuw beoordeeld",
        "action.merged": "samengevoegd",
        "action.note": "notitie",
        "action.ticket": "ticketnummer",
        "action.acknowledged": "in behandeling genomen",
        "action.escalated": "gemeld bij de provider",
        "action.resolved": "opgelost",
        "action.dismissed": "afgewezen",
        "generated": "Gemaakt",
        "period": "Getoonde periode",
        "timezone": "Tijdzone",
        "sec_incident": "De storing",
        "sec_school": "School",
        "sec_line": "Verbinding en contract",
        "sec_rule": "De overschreden norm",
        "sec_measurements": "Snelheidsmetingen",
        "sec_lan": "Schoolnetwerk (LAN) tegenover de provider",
        "sec_outages": "Onderbrekingen",
        "sec_devices": "Gelijktijdige apparaten",
        "sec_events": "Tijdlijn",
        "sec_children": "Getroffen scholen",
        "sec_charts": "Grafieken",
        "chart_ratio": "Gemeten snelheid als deel van de geadverteerde snelheid",
        "chart_outages": "Onderbrekingen in de periode",
        "id": "Nummer",
        "kind": "Soort",
        "state": "Status",
        "started": "Begonnen",
        "detected": "Gedetecteerd",
        "acknowledged": "In behandeling genomen",
        "escalated": "Gemeld bij de provider",
        "restored": "Hersteld",
        "closed": "Afgesloten",
        "responsible": "Verantwoordelijk",
        "supplier": "Leverancier",
        "contact": "Contactpersoon voor escalatie",
        "impact": "Impact",
        "urgency": "Urgentie",
        "reasons": "Waarom",
        "ticket": "Ticketnummer van de provider",
        "resolution": "Afhandeling",
        "sla_allowed": "Toegestane hersteltijd (SLA)",
        "sla_clock": "SLA-klok",
        "sla_deadline": "SLA-deadline",
        "ttr_wall": "Hersteltijd",
        "ttr_sla": "Hersteltijd op de SLA-klok",
        "sla_result": "SLA",
        "sla_met": "gehaald",
        "sla_missed": "niet gehaald",
        "sla_open": "nog niet bekend (loopt nog)",
        "sla_none": "niet van toepassing",
        "no_contact": "geen contactpersoon bekend (stel er een in: board set / school set)",
        "board": "Bestuur",
        "school_name": "School",
        "school_id": "School-id",
        "external_id": "BRIN / extern id",
        "address": "Adres",
        "provider": "Provider",
        "technology": "Techniek",
        "role": "Rol",
        "support": "Helpdesk van de provider",
        "terms_from": "Contractvoorwaarden geldig vanaf",
        "direction": "Richting",
        "download": "download",
        "upload": "upload",
        "advertised": "geadverteerd",
        "normal": "normaal beschikbaar",
        "minimum": "minimum",
        "maximum": "maximum",
        "monthly_cost": "Kosten per maand",
        "sla_response": "Reactietijd (SLA)",
        "networks": "Netwerken van de verbinding",
        "threshold": "Norm",
        "measured": "Gemeten",
        "tests_counted": "Metingen waarop besloten is",
        "servers": "Servers",
        "corroboration": "Onderbouwing",
        "col_time": "Tijd",
        "col_agent": "Agent",
        "col_backend": "Methode",
        "col_server": "Server",
        "col_streams": "Stromen",
        "col_valid": "Geldig",
        "col_down": "Download",
        "col_up": "Upload",
        "col_ratio": "van geadverteerd",
        "col_retest": "Hertest (tweede server)",
        "col_devices": "Apparaten",
        "col_cross": "Ander verkeer",
        "col_gateway": "Gateway op dat moment",
        "col_counted": "Meegeteld",
        "col_why_invalid": "waarom niet",
        "col_loss": "verlies",
        "col_rtt": "rondetijd",
        "col_windows": "Vensters",
        "col_gw": "Gateway",
        "col_targets": "Internetadressen",
        "col_segment": "Segment",
        "col_down_s": "Onderbroken",
        "col_kind": "Soort",
        "col_start": "Begin",
        "col_end": "Einde",
        "col_duration": "Duur",
        "col_detail": "Details",
        "col_actor": "Wie",
        "col_action": "Wat",
        "col_note": "Notitie",
        "col_state": "Status",
        "col_school": "School",
        "col_figure": "Kerncijfer",
        "ongoing": "loopt nog",
        "no_rows": "geen in deze periode",
        "peak": "Hoogste",
        "median": "Mediaan",
        "counts": "Tellingen",
        "list_title": "Storingen",
        "list_school_title": "Storingen van {school}",
        "filter": "Filter",
        "all": "alle",
        "active": "actief",
        "print_note": "Afgedrukt uit schoolnet. Alle cijfers komen uit de opslag van de collector.",
        "page": "Pagina",
        "kind.bandwidth": "snelheid onder contract",
        "kind.outage": "onderbreking",
        "kind.loss": "pakketverlies",
        "kind.latency": "hoge vertraging",
        "kind.wifi": "slechte wifi in lokaal",
        "kind.silent": "agent zwijgt",
        "kind.provider": "bij meerdere scholen van één provider",
        "state.open": "open",
        "state.acknowledged": "in behandeling",
        "state.escalated": "gemeld bij provider",
        "state.resolved": "opgelost",
        "state.dismissed": "afgewezen",
        "impact.teaching": "onderwijs",
        "impact.administration": "alleen administratie",
        "urgency.high": "hoog",
        "urgency.normal": "normaal",
        "urgency.low": "laag",
        "responsible.provider": "de provider",
        "responsible.school": "de school (het eigen netwerk)",
        "resolution.recovered": "hersteld (de metingen laten het zien)",
        "resolution.manual": "met de hand opgelost",
        "resolution.dismissed": "afgewezen",
        "counted_24x7": "de klok rond",
        "counted_business": "geteld in kantooruren (ma-vr 08:00-18:00, feestdagen niet)",
        "clock.24x7": "24x7 (elk uur)",
        "clock.business": "kantooruren (ma-vr 08:00-18:00)",
        "outage.isp": "kant van de provider",
        "outage.lan": "schoolnetwerk",
        "outage.dns": "naamomzetting (DNS)",
        "outage.internet": "internet (kant onbekend)",
        "conclusion.lan_fine": "De gateway van de school was in elk venster in orde: het schoolnetwerk is "
        "niet de oorzaak.",
        "conclusion.lan_trouble": "De gateway van de school was in {bad} van de {total} vensters niet "
        "in orde: "
        "het schoolnetwerk kan een deel van de oorzaak zijn.",
        "conclusion.no_windows": "Geen verbindingsmetingen in deze periode: die kunnen het schoolnetwerk "
        "niet "
        "uitsluiten.",
        "conclusion.no_gateway": "Er is geen gateway gemeten: het schoolnetwerk is niet uitgesloten.",
    },
}

_WEEKDAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "nl": ("ma", "di", "wo", "do", "vr", "za", "zo"),
}
_WEEKDAYS_LONG = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
}
_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "nl": ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
}
_MONTHS_LONG = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
}


def lang_of(value: str | None) -> Lang:
    return "nl" if value == "nl" else "en"


def t(lang: Lang, key: str, **params: Any) -> str:
    text = STRINGS[lang].get(key, STRINGS["en"].get(key, key))
    return text.format(**params) if params else text


def label(lang: Lang, group: str, value: str | None) -> str:
    """A stored code (kind, state, urgency …) in words; an unknown code as itself."""
    if value is None:
        return t(lang, "unknown")
    return STRINGS[lang].get(f"{group}.{value}", value)


# --- numbers ---------------------------------------------------------------------------------


def decimal(value: float, lang: Lang, places: int = 1) -> str:
    """A number with at most ``places`` decimals, trailing zeros dropped, the language's
    decimal sign ("12,5" / "12.5")."""
    text = f"{value:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text.replace(".", ",") if lang == "nl" else text


def rate(bytes_per_second: float | None, lang: Lang) -> str:
    if bytes_per_second is None:
        return t(lang, "not_measured")
    mbit = bytes_per_second / MBIT
    return f"{decimal(mbit, lang, 1 if mbit < 100 else 0)} Mbit/s"


def mbit(bytes_per_second: float | None, lang: Lang) -> str:
    """The number of Mbit/s alone (for "100/100 Mbit/s")."""
    if bytes_per_second is None:
        return "?"
    return decimal(bytes_per_second / MBIT, lang, 1)


def percent(ratio: float | None, lang: Lang, places: int = 0) -> str:
    if ratio is None:
        return t(lang, "not_measured")
    return f"{decimal(ratio * 100, lang, places)} %"


def milliseconds(seconds: float | None, lang: Lang) -> str:
    if seconds is None:
        return t(lang, "not_measured")
    return f"{decimal(seconds * 1000, lang, 1)} ms"


def megabytes(count: float | None, lang: Lang) -> str:
    if count is None:
        return t(lang, "not_measured")
    return f"{decimal(count / 1e6, lang, 1)} MB"


def dbm(value: float | None, lang: Lang) -> str:
    return t(lang, "not_measured") if value is None else f"{decimal(value, lang, 0)} dBm"


def money(amount: float | None, currency: str | None, lang: Lang) -> str:
    if amount is None:
        return t(lang, "not_measured")
    text = f"{amount:,.2f}"
    if lang == "nl":
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    symbol = "€" if (currency or "EUR") == "EUR" else (currency or "")
    return f"{symbol} {text}"


def duration(seconds: float | None, lang: Lang) -> str:
    """'47 min 30 s', '2 h 5 min' ('2 u 5 min' in Dutch), '3 d 4 h'."""
    if seconds is None:
        return t(lang, "not_measured")
    hour = "u" if lang == "nl" else "h"
    s = round(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} {hour}" if hours else f"{days} d"
    if hours:
        return f"{hours} {hour} {minutes} min" if minutes else f"{hours} {hour}"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


# --- times -----------------------------------------------------------------------------------


def _local(stamp: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(stamp["local"]))


def zone_name(when: datetime, zone: str | None) -> str:
    """The zone's abbreviation (CET, CEST) where it has one, else the UTC offset."""
    if zone:
        from zoneinfo import ZoneInfo

        name = when.astimezone(ZoneInfo(zone)).tzname() or ""
        if name and name[0] not in "+-":
            return name
    return when.strftime("UTC%z")


def when(stamp: Mapping[str, Any] | None, lang: Lang, zone: str | None = None) -> str:
    """'di 3 mrt 2026 10:15 (CET)' / 'Tue 3 Mar 2026 10:15 (CET)'. ``zone``: the school's
    IANA zone (else the stamp's own "zone", else the offset: "UTC+0100")."""
    if not stamp:
        return "-"
    d = _local(stamp)
    zone = zone or (str(stamp["zone"]) if stamp.get("zone") else None)
    return (
        f"{_WEEKDAYS[lang][d.weekday()]} {d.day} {_MONTHS[lang][d.month - 1]} {d.year} "
        f"{d:%H:%M} ({zone_name(d, zone)})"
    )


def clock(stamp: Mapping[str, Any] | None) -> str:
    return "-" if not stamp else f"{_local(stamp):%H:%M}"


def clock_seconds(stamp: Mapping[str, Any] | None) -> str:
    return "-" if not stamp else f"{_local(stamp):%H:%M:%S}"


def day_long(stamp: Mapping[str, Any], lang: Lang) -> str:
    """'Tuesday 3 March 2026' / 'dinsdag 3 maart 2026'."""
    d = _local(stamp)
    return f"{_WEEKDAYS_LONG[lang][d.weekday()]} {d.day} {_MONTHS_LONG[lang][d.month - 1]} {d.year}"


def short_time(stamp: Mapping[str, Any] | None, lang: Lang) -> str:
    """'3 mrt 10:15': a table's time column (the day matters when the period spans days)."""
    if not stamp:
        return "-"
    d = _local(stamp)
    return f"{d.day} {_MONTHS[lang][d.month - 1]} {d:%H:%M}"


# --- the summary paragraph -------------------------------------------------------------------


def summary_paragraph(document: Mapping[str, Any], lang: Lang) -> str:
    """A plain paragraph for the provider's helpdesk: what, when, how bad, why it is not the
    school's own network, and where it stands now."""
    incident = document["incident"]
    kind = incident["kind"]
    parts = [_first_sentence(document, lang)]
    # An SLA binds a provider: the school's own network (Wi-Fi, a silent agent) has none.
    if kind != "provider" and incident.get("responsible") != "school":
        parts.append(_sla_sentence(document, lang))
    parts.append(_state_sentence(document, lang))
    return " ".join(p for p in parts if p)


def _school_name(document: Mapping[str, Any]) -> str:
    school = document.get("school") or {}
    return str(school.get("name") or school.get("id") or "?")


def _provider(document: Mapping[str, Any]) -> str:
    line = document.get("line") or {}
    return str(line.get("provider") or document["incident"].get("provider") or "?")


def _contract(document: Mapping[str, Any], lang: Lang) -> str:
    terms = (document.get("line") or {}).get("terms")
    if not terms:
        return ""
    down = terms["download"]["advertised_bytes_per_second"]
    up = terms["upload"]["advertised_bytes_per_second"]
    return f"{mbit(down, lang)}/{mbit(up, lang)} Mbit/s"


def _lan_clause(document: Mapping[str, Any], lang: Lang) -> str:
    lan = document["lan_evidence"]
    summary = lan["summary"]
    conclusion = lan["conclusion"]
    nl = lang == "nl"
    if conclusion == "lan_fine":
        worst = summary.get("gateway_loss_ratio_max") or 0.0
        if worst == 0:
            how = "zonder verlies" if nl else "without loss"
        else:
            how = (
                f"met hoogstens {percent(worst, lang, 1)} verlies"
                if nl
                else f"with at most {percent(worst, lang, 1)} loss"
            )
        return (
            f"de gateway van de school antwoordde de hele tijd {how}, dus het schoolnetwerk is niet "
            "de oorzaak"
            if nl
            else f"the school's gateway answered {how} throughout, so the school network is not the cause"
        )
    if conclusion == "lan_trouble":
        bad = summary["windows_with_gateway"] - summary["gateway_fine_windows"]
        total = summary["windows_with_gateway"]
        return (
            f"de gateway van de school was in {bad} van de {total} meetvensters niet in orde, dus het "
            "schoolnetwerk kan een deel van de oorzaak zijn"
            if nl
            else f"the school's gateway was not fine in {bad} of {total} measurement windows, so the school "
            "network may be part of the cause"
        )
    if conclusion == "no_gateway":
        return "de gateway van de school is niet gemeten" if nl else "the school's gateway was not measured"
    return (
        "er zijn geen verbindingsmetingen die het schoolnetwerk uitsluiten"
        if nl
        else "no connectivity measurements rule out the school network"
    )


def _first_sentence(document: Mapping[str, Any], lang: Lang) -> str:
    incident, rule = document["incident"], document["rule"]
    kind = incident["kind"]
    nl = lang == "nl"
    started = incident["started_at"]
    day, start = day_long(started, lang), clock(started)
    school, provider = _school_name(document), _provider(document)
    contract = _contract(document, lang)
    if kind == "bandwidth":
        direction = t(lang, rule.get("direction") or "download")
        servers = len(rule.get("servers") or ())
        tests = rule.get("tests") or 0
        hours = rule.get("in_session")
        when_clause = (" tijdens schooltijd" if nl else " during school hours") if hours else ""
        contract_clause = f", contract {contract}" if contract else ""
        server_word = "server" if servers == 1 else "servers"
        test_word = (
            ("geldige meting" if tests == 1 else "geldige metingen")
            if nl
            else ("valid test" if tests == 1 else "valid tests")
        )
        threshold = percent(rule.get("threshold"), lang)
        if nl:
            return (
                f"Op {day} leverde de verbinding van {school} (provider {provider}{contract_clause}) vanaf "
                f"{start} een mediaan van {rate(rule.get('median_bytes_per_second'), lang)} {direction}, "
                f"{percent(rule.get('measured'), lang)} van de geadverteerde snelheid, in {tests} "
                f"{test_word} op {servers} {server_word}{when_clause}; {_lan_clause(document, lang)}. "
                "De norm is ten minste "
                f"{threshold} van de geadverteerde snelheid."
            )
        return (
            f"On {day} from {start} the line of {school} (provider {provider}{contract_clause}) delivered "
            f"a median of {rate(rule.get('median_bytes_per_second'), lang)} {direction}, "
            f"{percent(rule.get('measured'), lang)} of the advertised speed, in {tests} {test_word} on "
            f"{servers} {server_word}{when_clause}; {_lan_clause(document, lang)}. The rule is at least "
            f"{threshold} of the advertised speed."
        )
    if kind == "outage":
        restored = incident.get("restored_at")
        span = f"from {start} to {clock(restored)}" if restored else start
        length = duration(rule.get("measured"), lang)
        side = label(lang, "outage", rule.get("outage_kind"))
        if nl:
            until = f"van {start} tot {clock(restored)}" if restored else f"vanaf {start}"
            return (
                f"Op {day} was de internetverbinding van {school} (provider {provider}) {until} ({length}) "
                f"onderbroken ({side}); {_lan_clause(document, lang)}."
            )
        return (
            f"On {day} the internet line of {school} (provider {provider}) was down {span} ({length}; "
            f"{side}); {_lan_clause(document, lang)}."
        )
    if kind in ("loss", "latency"):
        measured = (
            percent(rule.get("measured"), lang, 1)
            if kind == "loss"
            else milliseconds(rule.get("measured"), lang)
        )
        threshold = (
            percent(rule.get("threshold"), lang, 1)
            if kind == "loss"
            else milliseconds(rule.get("threshold"), lang)
        )
        what = (
            ("pakketverlies" if kind == "loss" else "vertraging (mediane rondetijd)")
            if nl
            else ("packet loss" if kind == "loss" else "latency (median round trip)")
        )
        if nl:
            return (
                f"Op {day} had de verbinding van {school} (provider {provider}) vanaf {start} een {what} van "
                f"{measured} naar internetadressen (norm: onder {threshold}); {_lan_clause(document, lang)}."
            )
        return (
            f"On {day} from {start} the line of {school} (provider {provider}) had {what} of {measured} "
            f"to internet targets (rule: below {threshold}); {_lan_clause(document, lang)}."
        )
    if kind == "wifi":
        name = str(rule.get("room_name") or rule.get("room") or "?")
        if nl:
            # "in Lokaal 2.11", "in lokaal Gym": the room's own name, "lokaal" once.
            room = name if name.lower().startswith("lokaal") else f"lokaal {name}"
            return (
                f"Vanaf {day} {start} was de wifi in {room} van {school} zwak: mediaan "
                f"{dbm(rule.get('measured'), lang)}, onder de {dbm(rule.get('threshold'), lang)} die "
                "nodig is om te browsen. Dit is het eigen netwerk van de school."
            )
        room = name if name.lower().startswith("room") else f"room {name}"
        return (
            f"From {day} {start} the Wi-Fi in {room} of {school} was weak: median "
            f"{dbm(rule.get('measured'), lang)}, below the {dbm(rule.get('threshold'), lang)} browsing "
            "needs. This is the school's own network."
        )
    if kind == "silent":
        agent = rule.get("agent") or "?"
        if nl:
            return (
                f"Vanaf {day} {start} stuurde meetpunt {agent} van {school} tijdens schooltijd niets meer "
                f"({duration(rule.get('measured'), lang)} stil)."
            )
        return (
            f"From {day} {start} the agent {agent} of {school} sent nothing during school hours "
            f"({duration(rule.get('measured'), lang)} silent)."
        )
    children = document.get("children") or []
    what = label(lang, "kind", rule.get("child_kind"))
    if (document.get("figures") or {}).get("suspected"):
        # Schools gone silent together: the line is suspected, not proven (the agents'
        # outage records, once they can send them, will say).
        schools = len({c.get("school") for c in children}) or len(children)
        if nl:
            return (
                f"Vanaf {day} {start} zwegen alle agents van {schools} scholen op verbindingen van "
                f"{provider} tegelijk, tijdens schooltijd. Een onderbreking van de verbinding wordt "
                "vermoed uit dit gelijktijdige zwijgen, maar is niet bewezen: de agents melden hun eigen "
                "onderbrekingsgegevens zodra ze weer verbinding hebben. Dit is één melding voor alle scholen."
            )
        return (
            f"From {day} {start} every agent of {schools} schools on lines of {provider} went silent at "
            "once, during school hours. An outage of the line is suspected from this simultaneous "
            "silence, not proven: the agents send their own outage records once they are connected "
            "again. This is one escalation for all of them."
        )
    if nl:
        return (
            f"Vanaf {day} {start} hadden {len(children)} scholen op verbindingen van {provider} tegelijk "
            f"dezelfde storing ({what}); dit is één melding voor alle scholen."
        )
    return (
        f"From {day} {start}, {len(children)} schools on lines of {provider} had the same problem at "
        f"once ({what}); this is one escalation for all of them."
    )


def _sla_sentence(document: Mapping[str, Any], lang: Lang) -> str:
    sla = document["incident"]["sla"]
    nl = lang == "nl"
    allowed = sla.get("restore_seconds")
    if allowed is None:
        return "Het contract noemt geen hersteltijd." if nl else "The contract states no time to restore."
    clock_word = t(lang, "counted_" + ("business" if sla.get("clock") == "business" else "24x7"))
    taken = sla.get("time_to_restore_sla_seconds")
    if sla.get("met") is None:
        return (
            f"Het contract geeft {duration(allowed, lang)} voor herstel, {clock_word}."
            if nl
            else f"The contract allows {duration(allowed, lang)} to restore, {clock_word}."
        )
    verdict = t(lang, "sla_met") if sla["met"] else t(lang, "sla_missed")
    if nl:
        status = "hersteld na" if sla.get("restored") else "nu al"
        return (
            f"Het contract geeft {duration(allowed, lang)} voor herstel, {clock_word}; {status} "
            f"{duration(taken, lang)}: SLA {verdict}."
        )
    status = "restored after" if sla.get("restored") else "already"
    return (
        f"The contract allows {duration(allowed, lang)} to restore, {clock_word}; {status} "
        f"{duration(taken, lang)}: SLA {verdict}."
    )


def _state_sentence(document: Mapping[str, Any], lang: Lang) -> str:
    incident = document["incident"]
    nl = lang == "nl"
    ticket = incident.get("ticket")
    ticket_part = (
        (f" Ticketnummer bij de provider: {ticket}." if nl else f" Provider's ticket: {ticket}.")
        if ticket
        else ""
    )
    state = incident["state"]
    if state in ("resolved", "dismissed"):
        note = incident.get("resolution_note")
        if isinstance(incident.get("resolution_data"), Mapping):
            # What the detector said, as a code: in this language.
            from collector.incidents.sentences import say

            note = say(incident["resolution_data"], lang)
        elif nl and incident.get("resolution") == "recovered":
            # An older row: the detector's note is English alone; in Dutch, say what it says.
            restored = incident.get("restored_at")
            note = "de metingen laten herstel zien" + (
                f" vanaf {when(restored, lang, document.get('timezone'))}" if restored else ""
            )
        closed = (
            f"Afgesloten als {label(lang, 'state', state)}"
            if nl
            else f"Closed as {label(lang, 'state', state)}"
        )
        return f"{closed}{': ' + note if note else ''}.{ticket_part}"
    return (
        f"De storing is nog niet opgelost (status: {label(lang, 'state', state)})."
        if nl
        else f"The problem is not resolved yet (state: {label(lang, 'state', state)})."
    ) + ticket_part


# --- the assessment's reasons (codes of collector/incidents/impact.py) --------------------------


def _local_text(params: Mapping[str, Any], name: str, lang: Lang) -> str:
    # "_zone": the school's zone, which reason_text adds (the pack's "(CET)", not "(UTC+0100)").
    value = params.get(name)
    return when({"local": value}, lang, params.get("_zone")) if isinstance(value, str) else t(lang, "unknown")


def _sla_words(params: Mapping[str, Any], lang: Lang) -> str:
    counted = t(lang, "counted_" + ("business" if params.get("clock") == "business" else "24x7"))
    return f"{duration(params.get('restore_seconds'), lang)} ({counted})"


_DUTCH_REASONS: dict[str, Any] = {
    "teaching_hours": lambda p: (
        f"De storing viel in schooltijd ({duration(p.get('school_seconds'), 'nl')} "
        "schooltijd tot nu toe): het onderwijs heeft er last van."
        if (p.get("school_seconds") or 0) > 0
        else "De storing begon zojuist, in schooltijd: het onderwijs heeft er last van."
    ),
    "outside_school_hours": lambda p: (
        "De storing viel tot nu toe buiten schooltijd: alleen de administratie "
        "heeft er last van, de lessen niet."
    ),
    "monitoring_only": lambda p: "Alleen de bewaking heeft er last van (een agent meldt zich niet meer).",
    "exam_period": lambda p: (
        f"Vandaag ({p.get('date')}) is een schooldag in de examenperiode "
        f'"{p.get("name")}": een storing is nu urgent.'
    ),
    "outage_in_session": lambda p: "De verbinding ligt eruit terwijl er les is.",
    "sla_passed": lambda p: (
        f"De hersteltijd van het contract, {_sla_words(p, 'nl')}, is verstreken op "
        f"{_local_text(p, 'deadline_local', 'nl')}."
    ),
    "sla_near": lambda p: (
        f"Van de hersteltijd van het contract, {_sla_words(p, 'nl')}, is nog maar "
        f"{duration(p.get('remaining_seconds'), 'nl')} over (tot "
        f"{_local_text(p, 'deadline_local', 'nl')})."
    ),
    "sla_running": lambda p: (
        f"De hersteltijd van het contract, {_sla_words(p, 'nl')}, loopt: nog "
        f"{duration(p.get('remaining_seconds'), 'nl')} (tot "
        f"{_local_text(p, 'deadline_local', 'nl')})."
    ),
    "sla_no_deadline": lambda p: (
        f"De hersteltijd van het contract, {_sla_words(p, 'nl')}, loopt binnen "
        f"{p.get('days')} dagen niet af (geen kantooruren in die tijd)."
    ),
    "no_terms": lambda p: "Er is geen contract bekend voor deze verbinding op die dag.",
    "no_sla": lambda p: "Het contract noemt geen hersteltijd.",
    "school_network": lambda p: "Dit is het eigen netwerk van de school: geen SLA van een provider.",
    "in_session_now": lambda p: "Er is nu les.",
    "session_soon": lambda p: f"De volgende schooltijd begint {_local_text(p, 'next_session_local', 'nl')}.",
    "no_session_soon": lambda p: (
        f"De volgende schooltijd begint pas {_local_text(p, 'next_session_local', 'nl')}."
        if p.get("next_session_local")
        else "Er is nu geen les en het komende jaar ook niet."
    ),
    "provider_wide": lambda p: (
        f"{p.get('schools')} scholen op verbindingen van dezelfde provider hebben een storing "
        "die in dezelfde periode begon."
    ),
    "provider_silence": lambda p: (
        f"Alle agents van {p.get('schools')} scholen op verbindingen van dezelfde provider zwegen binnen "
        f"{duration(p.get('window_seconds'), 'nl')} van elkaar, tijdens schooltijd: een onderbreking van de "
        "verbinding wordt vermoed uit dit gelijktijdige zwijgen, maar is nog niet bewezen."
    ),
    "no_contact": lambda p: "Er is geen contactpersoon voor escalatie bekend.",
}


def reason_text(reason: Mapping[str, Any], lang: Lang) -> str:
    """One reason of the assessment in ``lang``: Dutch from its code and params, English as
    the assessment wrote it (its code's sentence where the text is missing)."""
    code = reason.get("code")
    params = reason.get("params") or {}
    if lang == "nl" and code in _DUTCH_REASONS:
        params = {**params, "_zone": reason.get("zone")}
        try:
            return str(_DUTCH_REASONS[code](params))
        except (KeyError, TypeError, ValueError):
            pass
    if reason.get("text"):
        return str(reason["text"])
    try:
        from collector.incidents.impact import Reason

        return Reason(str(code), params).english()
    except (KeyError, TypeError, ValueError):
        return str(code)
