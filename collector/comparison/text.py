"""The comparison report's words in Dutch and English, and its figures said in either.

One dict of strings per language, as the evidence pack does (collector/incidents/text.py,
whose number formats are reused here). Percentages follow each language's custom: "84 %"
in Dutch, "84%" in English; decimals "12,5" / "12.5". An ``Estimate`` without a value is
said as its reason ("too few measurements (3 lines)"), never as 0, a dash or "None".
"""

# The en dash is the range sign readers expect ("78–90 %"), not a typo for a hyphen.
# ruff: noqa: RUF001, RUF002, RUF003
from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Literal

from collector.accounts.roles import AGGREGATE_MINIMUM, ROLE_NAMES
from collector.comparison.model import (
    CONFIDENCE,
    MIN_LINES_PER_GROUP,
    MIN_TESTS_PER_LINE,
    TIER_BOUNDS_MBPS,
    Estimate,
    Filters,
)
from collector.incidents import text as itext
from collector.incidents.text import LANGS, Lang

__all__ = ["LANGS", "STRINGS", "Lang", "figure", "interval_percent", "missing_text", "percent", "t"]

STRINGS: dict[Lang, dict[str, str]] = {
    "en": {
        "title": "Provider comparison",
        "benchmark_title": "Your line compared with similar schools",
        "other_language": "Nederlands",
        "downloads": "Download",
        "pdf": "PDF",
        "csv": "CSV",
        "json": "JSON",
        "period": "Period",
        "generated": "Generated",
        "timezone": "Time zone",
        "for_whom": "For",
        "role": "Role",
        "board": "Board",
        "all_boards": "every board the viewer may count",
        "filters": "Filters",
        "no_filters": "none (everything the viewer may see)",
        "region": "Region",
        "technology": "Technology",
        "provider": "Provider",
        "language": "Language",
        "from": "From",
        "to": "To",
        "apply": "Show",
        "all": "all",
        "counted": "Counted",
        "counted_text": "{schools} schools, {lines} lines ({measured} measured), {tests} tests in school "
        "hours",
        "what_title": "What the figures mean",
        "what_ratio": "Download speeds are measured in school hours (school days, lesson times of each "
        "school's calendar) and compared with the speed advertised in the line's contract: 100 % means the "
        "line delivered what was advertised.",
        "what_8080": "The 80/80 figure is the share of the advertised speed a line reaches in 80 % of its "
        "tests (the 20th percentile of its tests).",
        "what_rule": "A line counts as measured with at least {min_tests} tests in school hours; a group's "
        "figure needs at least {min_lines} measured lines. With fewer the report says \"too few "
        "measurements\" instead of a number.",
        "what_interval": "Figures in brackets are {confidence} % confidence intervals (distribution-free for "
        "medians, Wilson for shares).",
        "what_normalised": "Normalised: a line's median divided by the median of all lines of the same "
        "technology and advertised tier (100 % = typical for its kind).",
        "what_cost": "Cost per delivered Mbit/s divides the monthly cost by the measured (not the "
        "advertised) median download speed.",
        "privacy_note": "{n} schools of boards that have not shared are counted only in groups of at least "
        "{minimum} schools.",
        "sec_provider": "Per provider",
        "sec_technology": "Per technology",
        "sec_like": "Like for like: provider within technology and advertised tier",
        "sec_overall": "All lines",
        "sec_lines": "Per school",
        "sec_charts": "Charts",
        "no_groups": "No lines match these filters.",
        "no_lines": "No schools to show one by one.",
        "col_group": "Group",
        "col_tier": "Tier",
        "col_schools": "Schools",
        "col_lines": "Lines",
        "col_measured": "Measured lines",
        "col_tests": "Tests",
        "col_median": "Median of advertised",
        "col_8080": "80/80",
        "col_below": "Share below 80 %",
        "col_upload": "Upload median",
        "col_normalised": "Normalised",
        "col_availability": "Availability",
        "col_latency": "Latency",
        "col_loss": "Loss",
        "col_incidents": "Incidents",
        "col_restore": "Median time to restore",
        "col_cost": "Monthly cost",
        "col_cost_mbps": "Cost per delivered Mbit/s",
        "col_cost_pupil": "Cost per pupil",
        "col_school": "School",
        "col_pupils": "Pupils",
        "col_advertised": "Advertised",
        "col_speed": "Median download",
        "col_benchmark": "Benchmark",
        "benchmark_link": "compare",
        "every_provider": "every provider",
        "every_technology": "every technology",
        "every_tier": "every tier",
        "overall": "all lines",
        "per_month": "per month",
        "missing.too_few_tests": "too few measurements ({n})",
        "missing.too_few_lines": "too few measurements ({n})",
        "missing.hidden": "hidden: rests on fewer than {minimum} schools of boards that have not shared",
        "missing.no_cost": "no cost in the contracts",
        "missing.no_pupils": "no pupil count in the registry",
        "missing.mixed_currency": "costs in more than one currency",
        "missing.no_data": "nothing measured",
        "missing.no_incidents": "no restored incident",
        "missing.unknown": "not measured",
        "not_in_contract": "not in the contract",
        "unit.tests": "{n} test|{n} tests",
        "unit.lines": "{n} line|{n} lines",
        "unit.seconds": "{n} second|{n} seconds",
        "unit.incidents": "{n} incident|{n} incidents",
        "note.no_contracts": "No line in the report has a contract: ratios to advertised cannot be computed.",
        "note.mixed_currency": "Costs are in more than one currency; they are not added up.",
        "note.no_lines": "No line matches these filters: there is nothing to compare.",
        "note.no_measured_lines": "No line has enough tests in school hours in this period: every figure "
        "about speed says \"too few measurements\".",
        "chart_distribution": "Download speed as a share of the advertised speed, per line (median of its "
        "tests in school hours)",
        "chart_distribution_axis": "share of advertised speed",
        "chart_profile": "Median download as a share of the advertised speed, by hour of the school day",
        "chart_profile_x": "hour of the day (local time)",
        "chart_profile_y": "share of advertised",
        "chart_cost": "Monthly cost per delivered Mbit/s, per provider (median, with its interval)",
        "chart_cost_axis": "per delivered Mbit/s",
        "chart_not_drawn": "Not drawn",
        "chart_table": "The chart's figures",
        "chart_alt_distribution": "{provider}: {n} lines, median {median}, from {low} to {high}",
        "chart_alt_profile": "{provider}: {points}",
        "chart_alt_cost": "{provider}: {value}",
        "chart_empty": "Nothing to draw for these filters.",
        "chart_col_not_shown": "Lines not shown one by one (lower quarter · median · upper quarter)",
        "chart_all_shown": "none: every line is shown",
        "chart_none_shown": "no line shown one by one",
        "chart_hidden_count": "{lines} of boards that have not shared",
        "chart_hidden_box": "{lines} of boards that have not shared: {p25} · {median} · {p75}",
        "chart_hidden_label": "{lines} of boards that have not shared (quarters, median)",
        "lowest_shown": "Lowest line shown",
        "highest_shown": "Highest line shown",
        "hour": "{h}:00",
        "median": "Median",
        "interval": "Interval",
        "yes": "yes",
        "no": "no",
        "page": "Page",
        "print_note": "Printed from schoolnet. All figures come from the collector's store.",
        "error_title": "The report cannot be shown",
        "back": "Back to the report",
        # refusals (compute.ReportError codes and the route's own), with their params
        "error.bad_filters": "These filters cannot make a report.",
        "error.unknown_board": "No board with id '{board}'.",
        "error.unknown_region": "No school in region '{region}'.",
        "error.unknown_technology": "Unknown technology '{technology}': one of {technologies}.",
        "error.unknown_provider": "No line of a provider with id '{provider}'.",
        "error.period_reversed": "The period starts ({start}) after it ends ({end}).",
        "error.period_too_long": "The period is {days} days; a report covers at most {maximum} days.",
        "error.date_out_of_range": "The date {date} is outside the years a report may cover ({first} to "
        "{last}).",
        "error.unknown_school": "No school '{board}/{school}'.",
        "error.not_a_date": "{name}: not a date (YYYY-MM-DD): '{value}'.",
        "error.bad_lang": "lang: nl or en, not '{value}'.",
        # the benchmark
        "bm_school": "School",
        "bm_line": "Line",
        "bm_similar": "Similar schools",
        "bm_similarity.technology_tier": "Lines of the same technology ({technology}) and advertised tier "
        "({tier}): {peers} other schools.",
        "bm_similarity.technology": "Fewer than {minimum} schools share the technology and the tier, so "
        "every line of the same technology ({technology}) is compared: {peers} other schools.",
        "bm_similarity.none": "Too few similar schools: fewer than {minimum} other schools have a line of "
        "the same technology, so no comparison is shown.",
        "bm_no_line": "This school has no main line with a contract in the period: there is nothing to "
        "compare.",
        "bm_col_figure": "Figure",
        "bm_col_school": "This school",
        "bm_col_p25": "Similar schools: lower quarter",
        "bm_col_median": "Similar schools: median",
        "bm_col_p75": "Similar schools: upper quarter",
        "bm_col_better": "Compared",
        "bm_better": "better than {share} of similar schools",
        "bm_no_compare": "no comparison",
        "bm_anonymous": "No other school is named: peers are shown only as quarters of {minimum} or more "
        "schools.",
        "bm_report": "The whole report",
        "figure.median_ratio": "Median download of advertised",
        "figure.ratio_80_80": "80/80 download of advertised",
        "figure.upload_median_ratio": "Median upload of advertised",
        "figure.normalised_ratio": "Normalised",
        "figure.availability": "Availability in school hours",
        "figure.latency_seconds": "Latency",
        "figure.loss_ratio": "Packet loss",
        "figure.median_restore_seconds": "Median time to restore",
        "figure.monthly_cost": "Monthly cost",
        "figure.cost_per_mbps": "Cost per delivered Mbit/s",
        "figure.cost_per_pupil": "Cost per pupil",
        "figure.median_download_bytes_per_second": "Median download",
    },
    "nl": {
        "title": "Vergelijking van providers",
        "benchmark_title": "Uw verbinding vergeleken met vergelijkbare scholen",
        "other_language": "English",
        "downloads": "Downloaden",
        "pdf": "PDF",
        "csv": "CSV",
        "json": "JSON",
        "period": "Periode",
        "generated": "Gemaakt",
        "timezone": "Tijdzone",
        "for_whom": "Voor",
        "role": "Rol",
        "board": "Bestuur",
        "all_boards": "elk bestuur dat de lezer mag meetellen",
        "filters": "Filters",
        "no_filters": "geen (alles wat de lezer mag zien)",
        "region": "Regio",
        "technology": "Techniek",
        "provider": "Provider",
        "language": "Taal",
        "from": "Van",
        "to": "Tot en met",
        "apply": "Toon",
        "all": "alle",
        "counted": "Geteld",
        "counted_text": "{schools} scholen, {lines} verbindingen ({measured} gemeten), {tests} metingen in "
        "schooltijd",
        "what_title": "Wat de cijfers betekenen",
        "what_ratio": "Downloadsnelheden worden gemeten in schooltijd (schooldagen, lestijden volgens de "
        "kalender van elke school) en vergeleken met de snelheid die in het contract van de verbinding "
        "geadverteerd is: 100 % betekent dat de verbinding leverde wat geadverteerd werd.",
        "what_8080": "Het 80/80-cijfer is het deel van de geadverteerde snelheid dat een verbinding in 80 % "
        "van haar metingen haalt (het 20e percentiel van haar metingen).",
        "what_rule": "Een verbinding telt als gemeten met minstens {min_tests} metingen in schooltijd; een "
        "cijfer van een groep vraagt minstens {min_lines} gemeten verbindingen. Met minder staat er \"te "
        "weinig metingen\" in plaats van een getal.",
        "what_interval": "Cijfers tussen haakjes zijn {confidence} %-betrouwbaarheidsintervallen "
        "(verdelingsvrij voor medianen, Wilson voor aandelen).",
        "what_normalised": "Genormaliseerd: de mediaan van een verbinding gedeeld door de mediaan van alle "
        "verbindingen van dezelfde techniek en geadverteerde klasse (100 % = gewoon voor haar soort).",
        "what_cost": "Kosten per geleverde Mbit/s: de maandkosten gedeeld door de gemeten (niet de "
        "geadverteerde) mediane downloadsnelheid.",
        "privacy_note": "{n} scholen van besturen die niet gedeeld hebben, tellen alleen mee in groepen van "
        "minstens {minimum} scholen.",
        "sec_provider": "Per provider",
        "sec_technology": "Per techniek",
        "sec_like": "Gelijk met gelijk: provider binnen techniek en geadverteerde klasse",
        "sec_overall": "Alle verbindingen",
        "sec_lines": "Per school",
        "sec_charts": "Grafieken",
        "no_groups": "Geen verbindingen voldoen aan deze filters.",
        "no_lines": "Geen scholen om afzonderlijk te tonen.",
        "col_group": "Groep",
        "col_tier": "Klasse",
        "col_schools": "Scholen",
        "col_lines": "Verbindingen",
        "col_measured": "Gemeten verbindingen",
        "col_tests": "Metingen",
        "col_median": "Mediaan van geadverteerd",
        "col_8080": "80/80",
        "col_below": "Aandeel onder 80 %",
        "col_upload": "Mediaan upload",
        "col_normalised": "Genormaliseerd",
        "col_availability": "Beschikbaarheid",
        "col_latency": "Vertraging",
        "col_loss": "Verlies",
        "col_incidents": "Storingen",
        "col_restore": "Mediane hersteltijd",
        "col_cost": "Kosten per maand",
        "col_cost_mbps": "Kosten per geleverde Mbit/s",
        "col_cost_pupil": "Kosten per leerling",
        "col_school": "School",
        "col_pupils": "Leerlingen",
        "col_advertised": "Geadverteerd",
        "col_speed": "Mediane download",
        "col_benchmark": "Vergelijking",
        "benchmark_link": "vergelijk",
        "every_provider": "elke provider",
        "every_technology": "elke techniek",
        "every_tier": "elke klasse",
        "overall": "alle verbindingen",
        "per_month": "per maand",
        "missing.too_few_tests": "te weinig metingen ({n})",
        "missing.too_few_lines": "te weinig metingen ({n})",
        "missing.hidden": "verborgen: rust op minder dan {minimum} scholen van besturen die niet gedeeld "
        "hebben",
        "missing.no_cost": "geen kosten in de contracten",
        "missing.no_pupils": "geen leerlingenaantal in het register",
        "missing.mixed_currency": "kosten in meer dan één valuta",
        "missing.no_data": "niets gemeten",
        "missing.no_incidents": "geen herstelde storing",
        "missing.unknown": "niet gemeten",
        "not_in_contract": "niet in het contract",
        "unit.tests": "{n} meting|{n} metingen",
        "unit.lines": "{n} verbinding|{n} verbindingen",
        "unit.seconds": "{n} seconde|{n} seconden",
        "unit.incidents": "{n} storing|{n} storingen",
        "note.no_contracts": "Geen verbinding in het rapport heeft een contract: verhoudingen tot "
        "geadverteerd zijn niet te berekenen.",
        "note.mixed_currency": "Kosten staan in meer dan één valuta; ze worden niet opgeteld.",
        "note.no_lines": "Geen verbinding voldoet aan deze filters: er valt niets te vergelijken.",
        "note.no_measured_lines": "Geen verbinding heeft in deze periode genoeg metingen in schooltijd: elk "
        "cijfer over snelheid zegt \"te weinig metingen\".",
        "chart_distribution": "Downloadsnelheid als deel van de geadverteerde snelheid, per verbinding "
        "(mediaan van haar metingen in schooltijd)",
        "chart_distribution_axis": "deel van de geadverteerde snelheid",
        "chart_profile": "Mediane download als deel van de geadverteerde snelheid, per uur van de schooldag",
        "chart_profile_x": "uur van de dag (lokale tijd)",
        "chart_profile_y": "deel van geadverteerd",
        "chart_cost": "Maandkosten per geleverde Mbit/s, per provider (mediaan, met interval)",
        "chart_cost_axis": "per geleverde Mbit/s",
        "chart_not_drawn": "Niet getekend",
        "chart_table": "De cijfers van de grafiek",
        "chart_alt_distribution": "{provider}: {n} verbindingen, mediaan {median}, van {low} tot {high}",
        "chart_alt_profile": "{provider}: {points}",
        "chart_alt_cost": "{provider}: {value}",
        "chart_empty": "Niets te tekenen voor deze filters.",
        "chart_col_not_shown": "Verbindingen niet afzonderlijk getoond (onderste kwart · mediaan · bovenste "
        "kwart)",
        "chart_all_shown": "geen: elke verbinding staat erin",
        "chart_none_shown": "geen verbinding afzonderlijk getoond",
        "chart_hidden_count": "{lines} van besturen die niet gedeeld hebben",
        "chart_hidden_box": "{lines} van besturen die niet gedeeld hebben: {p25} · {median} · {p75}",
        "chart_hidden_label": "{lines} van besturen die niet gedeeld hebben (kwartielen, mediaan)",
        "lowest_shown": "Laagste getoonde verbinding",
        "highest_shown": "Hoogste getoonde verbinding",
        "hour": "{h}:00",
        "median": "Mediaan",
        "interval": "Interval",
        "yes": "ja",
        "no": "nee",
        "page": "Pagina",
        "print_note": "Afgedrukt uit schoolnet. Alle cijfers komen uit de opslag van de collector.",
        "error_title": "Het rapport kan niet getoond worden",
        "back": "Terug naar het rapport",
        "error.bad_filters": "Met deze filters valt geen rapport te maken.",
        "error.unknown_board": "Geen bestuur met id '{board}'.",
        "error.unknown_region": "Geen school in regio '{region}'.",
        "error.unknown_technology": "Onbekende techniek '{technology}': een van {technologies}.",
        "error.unknown_provider": "Geen verbinding van een provider met id '{provider}'.",
        "error.period_reversed": "De periode begint ({start}) na haar einde ({end}).",
        "error.period_too_long": "De periode is {days} dagen; een rapport beslaat hoogstens {maximum} dagen.",
        "error.date_out_of_range": "De datum {date} valt buiten de jaren die een rapport mag beslaan "
        "({first} tot en met {last}).",
        "error.unknown_school": "Geen school '{board}/{school}'.",
        "error.not_a_date": "{name}: geen datum (JJJJ-MM-DD): '{value}'.",
        "error.bad_lang": "lang: nl of en, niet '{value}'.",
        "bm_school": "School",
        "bm_line": "Verbinding",
        "bm_similar": "Vergelijkbare scholen",
        "bm_similarity.technology_tier": "Verbindingen van dezelfde techniek ({technology}) en "
        "geadverteerde klasse ({tier}): {peers} andere scholen.",
        "bm_similarity.technology": "Minder dan {minimum} scholen delen techniek en klasse, dus wordt elke "
        "verbinding van dezelfde techniek ({technology}) vergeleken: {peers} andere scholen.",
        "bm_similarity.none": "Te weinig vergelijkbare scholen: minder dan {minimum} andere scholen hebben "
        "een verbinding van dezelfde techniek, dus er is geen vergelijking.",
        "bm_no_line": "Deze school heeft in de periode geen hoofdverbinding met een contract: er valt niets "
        "te vergelijken.",
        "bm_col_figure": "Cijfer",
        "bm_col_school": "Deze school",
        "bm_col_p25": "Vergelijkbare scholen: onderste kwart",
        "bm_col_median": "Vergelijkbare scholen: mediaan",
        "bm_col_p75": "Vergelijkbare scholen: bovenste kwart",
        "bm_col_better": "Vergeleken",
        "bm_better": "beter dan {share} van de vergelijkbare scholen",
        "bm_no_compare": "geen vergelijking",
        "bm_anonymous": "Geen andere school wordt genoemd: vergelijkbare scholen staan er alleen als "
        "kwartielen van {minimum} of meer scholen.",
        "bm_report": "Het hele rapport",
        "figure.median_ratio": "Mediane download van geadverteerd",
        "figure.ratio_80_80": "80/80-download van geadverteerd",
        "figure.upload_median_ratio": "Mediane upload van geadverteerd",
        "figure.normalised_ratio": "Genormaliseerd",
        "figure.availability": "Beschikbaarheid in schooltijd",
        "figure.latency_seconds": "Vertraging",
        "figure.loss_ratio": "Pakketverlies",
        "figure.median_restore_seconds": "Mediane hersteltijd",
        "figure.monthly_cost": "Kosten per maand",
        "figure.cost_per_mbps": "Kosten per geleverde Mbit/s",
        "figure.cost_per_pupil": "Kosten per leerling",
        "figure.median_download_bytes_per_second": "Mediane download",
    },
}

MONTHS_SHORT: dict[Lang, tuple[str, ...]] = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "nl": ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
}


def t(lang: Lang, key: str, **params: Any) -> str:
    words = STRINGS[lang].get(key, STRINGS["en"].get(key, key))
    return words.format(**params) if params else words


def counted(lang: Lang, n: int, unit: str) -> str:
    """"3 lines" / "1 line", "3 verbindingen"; an unknown unit as "3 unit"."""
    forms = STRINGS[lang].get(f"unit.{unit}")
    if forms is None:
        return f"{n} {unit}"
    one, many = forms.split("|")
    return (one if n == 1 else many).format(n=n)


def day(value: date, lang: Lang) -> str:
    return f"{value.day} {MONTHS_SHORT[lang][value.month - 1]} {value.year}"


def period(filters: Filters, lang: Lang) -> str:
    return f"{day(filters.start, lang)} – {day(filters.end, lang)}"


def tier(index: int | None, lang: Lang) -> str:
    """A tier by its advertised download range: "100–250 Mbit/s", "≥ 1000 Mbit/s"."""
    if index is None or not 0 <= index < len(TIER_BOUNDS_MBPS):
        return t(lang, "every_tier")
    low = TIER_BOUNDS_MBPS[index]
    if index + 1 < len(TIER_BOUNDS_MBPS):
        return f"{low}–{TIER_BOUNDS_MBPS[index + 1]} Mbit/s"
    return f"≥ {low} Mbit/s"


# --- numbers ---------------------------------------------------------------------------------


def number(value: float, lang: Lang, places: int = 1) -> str:
    return itext.decimal(value, lang, places)


def _percent_number(ratio: float, lang: Lang, places: int) -> str:
    return itext.decimal(ratio * 100, lang, places)


def percent(ratio: float, lang: Lang, places: int = 0) -> str:
    """"84 %" in Dutch, "84%" in English."""
    return _percent_number(ratio, lang, places) + (" %" if lang == "nl" else "%")


def interval_percent(low: float, high: float, lang: Lang, places: int = 0) -> str:
    """"(78–90 %)" / "(78–90%)"."""
    return f"({_percent_number(low, lang, places)}–{percent(high, lang, places)})"


def money(amount: float, currency: str | None, lang: Lang) -> str:
    return itext.money(amount, currency, lang)


def missing_text(estimate: Estimate, lang: Lang) -> str:
    """Why ``estimate`` has no value, in words, with the sample it lacked."""
    why = estimate.missing or "unknown"
    return t(lang, f"missing.{why}", n=counted(lang, estimate.n, estimate.unit), minimum=AGGREGATE_MINIMUM)


# How each figure is said: (value formatter, interval formatter or None).
Kind = Literal["ratio", "share", "availability", "loss", "latency", "duration", "money", "rate", "plain"]


def _formatter(kind: Kind, lang: Lang, currency: str | None) -> Callable[[float], str]:
    if kind in ("ratio", "share"):
        return lambda v: percent(v, lang)
    if kind == "availability":
        return lambda v: percent(v, lang, 2)
    if kind == "loss":
        return lambda v: percent(v, lang, 2)
    if kind == "latency":
        return lambda v: f"{number(v * 1000, lang, 1)} ms"
    if kind == "duration":
        return lambda v: itext.duration(v, lang)
    if kind == "money":
        return lambda v: money(v, currency, lang)
    if kind == "rate":
        return lambda v: itext.rate(v, lang)
    return lambda v: number(v, lang, 2)


def value_only(estimate: Estimate, kind: Kind, lang: Lang, currency: str | None = None) -> str:
    """The value alone, or the reason it has none."""
    if estimate.value is None:
        return missing_text(estimate, lang)
    return _formatter(kind, lang, currency)(estimate.value)


def figure(estimate: Estimate, kind: Kind, lang: Lang, currency: str | None = None) -> str:
    """The value with its interval where one is given ("84 % (78–90 %)"), or the reason."""
    if estimate.value is None:
        return missing_text(estimate, lang)
    say = _formatter(kind, lang, currency)
    shown = say(estimate.value)
    if estimate.low is None or estimate.high is None:
        return shown
    if kind in ("ratio", "share"):
        return f"{shown} {interval_percent(estimate.low, estimate.high, lang)}"
    if kind in ("availability", "loss"):
        return f"{shown} {interval_percent(estimate.low, estimate.high, lang, 2)}"
    return f"{shown} ({say(estimate.low)}–{say(estimate.high)})"


def explanations(lang: Lang) -> list[str]:
    """The header's short "what the figures mean", thresholds from model.py."""
    return [
        t(lang, "what_ratio"),
        t(lang, "what_8080"),
        t(lang, "what_rule", min_tests=MIN_TESTS_PER_LINE, min_lines=MIN_LINES_PER_GROUP),
        t(lang, "what_interval", confidence=number(CONFIDENCE * 100, lang, 0)),
        t(lang, "what_normalised"),
        t(lang, "what_cost"),
    ]


# Notes the header already says in its own words (the privacy note).
SAID_ELSEWHERE = frozenset({"hidden_schools"})


def notes(codes: tuple[str, ...], lang: Lang) -> list[str]:
    """A report's coded notes in words (an unknown code as itself: better seen than lost)."""
    return [STRINGS[lang].get(f"note.{code}", code) for code in codes if code not in SAID_ELSEWHERE]


def role_name(role: str, lang: Lang) -> str:
    return ROLE_NAMES[lang].get(role, role)


# The technologies of collector/contracts_csv.TECHNOLOGIES, as each language says them. The
# codes stay in URLs, CSV and JSON; readers see the words.
TECHNOLOGY_NAMES: dict[Lang, dict[str, str]] = {
    "en": {"fibre": "fibre", "cable": "cable", "vdsl": "VDSL", "adsl": "ADSL", "4g": "4G", "5g": "5G",
           "satellite": "satellite", "other": "other"},
    "nl": {"fibre": "glasvezel", "cable": "kabel", "vdsl": "VDSL", "adsl": "ADSL", "4g": "4G", "5g": "5G",
           "satellite": "satelliet", "other": "overig"},
}


def technology(code: str | None, lang: Lang) -> str:
    """A technology code in words ("glasvezel"); None is every technology; an unknown code as itself."""
    if code is None:
        return t(lang, "every_technology")
    return TECHNOLOGY_NAMES[lang].get(code, code)


def refusal(code: str | None, params: dict[str, Any], lang: Lang, fallback: str) -> str:
    """A refused request in the reader's language ("error.<code>" with its params); ``fallback``
    (the English one-line message) when the code has no words here or lacks a parameter."""
    words = STRINGS[lang].get(f"error.{code}") if code else None
    if words is None:
        return fallback
    try:
        return words.format(**{k: _param(k, v, lang) for k, v in params.items()})
    except (KeyError, IndexError, ValueError):
        return fallback


# The params that are days (ISO text in compute.ReportError): said as the report says days.
_DAY_PARAMS = frozenset({"start", "end", "date", "first", "last"})


def _param(key: str, value: Any, lang: Lang) -> Any:
    """One param as the reader sees it: a day in the language's words, a list joined, the
    reader's own input cut short (as the English messages do)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if key in _DAY_PARAMS and isinstance(value, str):
        try:
            return day(date.fromisoformat(value), lang)
        except ValueError:
            return value[:60]
    return value[:60] if isinstance(value, str) else value
