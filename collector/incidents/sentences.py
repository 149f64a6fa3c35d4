"""What detection and the lifecycle say, as codes with params, in English and Dutch.

The detector's corroboration ("its retest on a second server was below too"), its reasons
for a recovery, and the notes the store writes on an incident's events ("resolved itself:
…", "part of provider-wide incident 7") are each a ``Sentence``: a stable ``code`` and
JSON-able ``params``. They are stored that way (in incidents.findings and
incident_events.data) with the English beside them, so the evidence pack can say them in
Dutch and a reader of the JSON still sees a sentence. ``say`` words a stored one in either
language; SENTENCE_CODES lists every code and its params (a test words each in both).

Params: times are ``moment``s ({"seconds": unix, "local": ISO with offset, "zone": the
school's IANA zone}, written as the pack writes times: "Tue 3 Mar 2026 10:15 (CET)"),
durations seconds, rates bytes per second, ratios 1 = 100 %, signals dBm; a nested
sentence is its document ({"code", "params"}) or, from older rows, plain English.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector.incidents import text
from collector.incidents.text import Lang

# code -> its params.
SENTENCE_CODES: Mapping[str, tuple[str, ...]] = {
    # Corroboration of a finding.
    "bw_retest": ("at", "rate", "server", "retest_server", "retest_rate", "retest_ratio"),
    "bw_gateway_fine": ("at", "loss_max", "windows"),
    "bw_servers": ("servers",),
    "bw_wired": (),
    "bw_valid": (),
    "outage_lan_up": (),
    "outage_every_agent": ("agents",),
    "quality_lan_fine": ("windows", "gateway_loss_max", "gateway_latency_max_seconds"),
    "quality_wired": ("agent",),
    "wifi_readings": ("readings", "poor", "threshold_dbm"),
    "silent_in_session": ("agent", "since", "never", "seconds"),
    # Why a problem is over.
    "bw_recovered": ("direction", "ratios", "threshold"),
    "outage_ended": ("end", "seconds"),
    "quality_recovered": ("kind", "agent", "windows", "threshold", "max"),
    "wifi_recovered": ("room_name", "median_dbm", "readings", "threshold_dbm"),
    "silent_reported": ("agent", "at"),
    "agent_revoked": ("agent", "at"),
    # Event notes: what broke and by how much, when an incident opens.
    "opened_bandwidth": ("direction", "ratio", "advertised_bytes_per_second", "threshold", "tests",
                         "servers"),
    "opened_outage": ("start", "seconds", "ongoing", "threshold_seconds", "agents"),
    "opened_loss": ("agent", "median", "max", "windows", "threshold"),
    "opened_latency": ("agent", "median", "max", "windows", "threshold"),
    "opened_wifi": ("room_name", "median_dbm", "readings", "threshold_dbm"),
    "opened_silent": ("agent", "since", "never", "seconds", "threshold_seconds"),
    "opened": ("kind",),
    # Event notes of the lifecycle.
    "resolved_itself": ("reason",),
    "urgency_changed": ("from", "to"),
    "urgency_followed": ("from", "to"),
    "part_of_provider": ("parent",),
    "joined": ("schools", "after_end"),
    "provider_opened": ("count", "provider", "kind", "schools", "suspected_parent", "over", "start", "end"),
    "provider_over": ("provider", "kind", "count", "start", "end"),
    "silence_opened": ("schools", "count", "provider", "window_seconds"),
    "silence_over_proven": ("count", "revoked", "provider", "wide_count", "wide_id", "start", "end"),
    "silence_over_partial": ("count", "revoked", "schools", "incidents"),
    "silence_over_unproven": ("count", "revoked"),
    "children_closed": ("count",),
    "via_provider": ("parent", "note"),
    "ticket_set": ("ticket", "was"),
    "ticket_with_note": ("ticket", "note"),
}


@dataclass(frozen=True)
class Sentence:
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def english(self) -> str:
        return say(self.as_data(), "en")

    def as_data(self) -> dict[str, Any]:
        """{"code", "params"}: what incident_events.data holds."""
        return {"code": self.code, "params": dict(self.params)}

    def as_document(self) -> dict[str, Any]:
        """{"code", "params", "text"}: what incidents.findings holds (the English beside it)."""
        return {**self.as_data(), "text": self.english()}


def moment(t: float, calendar: Any) -> dict[str, Any]:
    """A time as a param: Unix seconds, the school's local ISO time and its zone."""
    return {"seconds": t, "local": calendar.local_datetime(t).isoformat(timespec="seconds"),
            "zone": str(calendar.zone)}


def say(entry: Any, lang: Lang) -> str:
    """A stored sentence in ``lang``: a document {"code", "params"[, "text"]}, a Sentence, or
    (older rows) plain English, which stays as it is. A code this version does not know,
    or params it cannot word, fall back to the stored English."""
    if isinstance(entry, Sentence):
        entry = entry.as_data()
    if entry is None:
        return ""
    if not isinstance(entry, Mapping):
        return str(entry)
    code = entry.get("code")
    words = _WORDS.get(code) if isinstance(code, str) else None
    if words is not None:
        try:
            return words[0 if lang == "en" else 1](entry.get("params") or {}, lang)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return str(entry.get("text") or code or "")


# --- helpers ------------------------------------------------------------------------------------


def _at(p: Mapping[str, Any], name: str, lang: Lang) -> str:
    stamp = p.get(name)
    return text.when(stamp, lang) if isinstance(stamp, Mapping) else text.t(lang, "unknown")


def _span(p: Mapping[str, Any], lang: Lang) -> str:
    """"from Tue 3 Mar 2026 10:00 to 10:41 (CET)" (the date again when it differs)."""
    start, end = p.get("start"), p.get("end")
    if not isinstance(start, Mapping):
        return ""
    first = datetime.fromisoformat(str(start["local"]))
    zone = text.zone_name(first, start.get("zone"))
    day = text.when(start, lang).rsplit(" (", 1)[0]
    nl = lang == "nl"
    if not isinstance(end, Mapping):
        return f"{'vanaf' if nl else 'from'} {day} ({zone})"
    last = datetime.fromisoformat(str(end["local"]))
    until = (f"{last:%H:%M}" if last.date() == first.date()
             else text.when(end, lang).rsplit(" (", 1)[0])
    return f"{'van' if nl else 'from'} {day} {'tot' if nl else 'to'} {until} ({zone})"


def _names(values: Sequence[Any] | None) -> str:
    return ", ".join(str(v) for v in values or ())


def _plural(n: Any, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _nested(value: Any, lang: Lang) -> str:
    return say(value, lang) if value is not None else ""


def _kind(lang: Lang, kind: Any) -> str:
    return text.label(lang, "kind", kind)


def _a_kind(kind: Any) -> str:
    kind = str(kind)
    return ("an " if kind[:1] in "aeiou" else "a ") + kind


def _quality_value(kind: Any, value: Any, lang: Lang) -> str:
    return text.percent(value, lang, 1) if kind == "loss" else text.milliseconds(value, lang)


_pc, _rt, _ms, _dur, _dbm = text.percent, text.rate, text.milliseconds, text.duration, text.dbm


def _urg(lang: Lang, urgency: Any) -> str:
    return text.label(lang, "urgency", urgency)


def _again(p: Mapping[str, Any], lang: Lang) -> str:
    if lang == "nl":
        return "meldden zich weer of zijn ingetrokken" if p.get("revoked") else "meldden zich weer"
    return "reported again or were revoked" if p.get("revoked") else "reported again"


Words = Callable[[Mapping[str, Any], Lang], str]

# code -> (English, Dutch); each takes the params and the language (for the formats).
_WORDS: dict[str, tuple[Words, Words]] = {
    "bw_retest": (
        lambda p, lang: f"The test of {_at(p, 'at', lang)} measured {_rt(p['rate'], lang)} on "
                        f"{p['server']}; its retest on {p['retest_server']} measured "
                        f"{_rt(p['retest_rate'], lang)} ({_pc(p['retest_ratio'], lang)}).",
        lambda p, lang: f"De meting van {_at(p, 'at', lang)} haalde {_rt(p['rate'], lang)} op "
                        f"{p['server']}; de hertest op {p['retest_server']} haalde "
                        f"{_rt(p['retest_rate'], lang)} ({_pc(p['retest_ratio'], lang)})."),
    "bw_gateway_fine": (
        lambda p, lang: f"Around the test of {_at(p, 'at', lang)} the agent reached its gateway with at most "
                        f"{_pc(p['loss_max'], lang)} loss in {_plural(p['windows'], 'window', 'windows')}: "
                        "the school's LAN was fine.",
        lambda p, lang: f"Rond de meting van {_at(p, 'at', lang)} bereikte de agent zijn gateway met "
                        "hoogstens "
                        f"{_pc(p['loss_max'], lang)} verlies in "
                        f"{_plural(p['windows'], 'venster', 'vensters')}: het schoolnetwerk was in orde."),
    "bw_servers": (
        lambda p, lang: f"The tests below used {len(p['servers'])} servers: {_names(p['servers'])}.",
        lambda p, lang: f"De te lage metingen gebruikten {len(p['servers'])} servers: "
                        f"{_names(p['servers'])}."),
    "bw_wired": (
        lambda p, lang: "Every test ran over a wired interface.",
        lambda p, lang: "Elke meting liep over een bekabelde aansluiting."),
    "bw_valid": (
        lambda p, lang: "Every test counted was valid: none was limited by the agent itself.",
        lambda p, lang: "Elke meegetelde meting was geldig: geen enkele werd door de agent zelf beperkt."),
    "outage_lan_up": (
        lambda p, lang: "Every internet target went unanswered while the gateway answered: the school's LAN "
                        "was up, the line was not.",
        lambda p, lang: "Geen enkel internetadres antwoordde terwijl de gateway wel antwoordde: het "
                        "schoolnetwerk werkte, de verbinding niet."),
    "outage_every_agent": (
        lambda p, lang: f"Every agent of the school that was measuring saw it: {_names(p['agents'])}.",
        lambda p, lang: f"Elke agent van de school die aan het meten was, zag het: {_names(p['agents'])}."),
    "quality_lan_fine": (
        lambda p, lang: f"In each of the {p['windows']} windows the agent reached its gateway with under "
                        f"{_pc(p['gateway_loss_max'], lang)} loss and a median under "
                        f"{_ms(p['gateway_latency_max_seconds'], lang)}: the school's LAN "
                        "was fine.",
        lambda p, lang: f"In elk van de {p['windows']} vensters bereikte de agent zijn gateway met "
                        "minder dan "
                        f"{_pc(p['gateway_loss_max'], lang)} verlies en een mediane rondetijd onder "
                        f"{_ms(p['gateway_latency_max_seconds'], lang)}: het schoolnetwerk "
                        "was in orde."),
    "quality_wired": (
        lambda p, lang: f"{p['agent']} is wired: no Wi-Fi between it and the gateway.",
        lambda p, lang: f"{p['agent']} is bekabeld: er zit geen wifi tussen de agent en de gateway."),
    "wifi_readings": (
        lambda p, lang: f"{p['readings']} readings in school hours, {p['poor']} of them below "
                        f"{_dbm(p['threshold_dbm'], lang)}: the room's coverage, the school's own network.",
        lambda p, lang: f"{p['readings']} metingen in schooltijd, {p['poor']} daarvan onder "
                        f"{_dbm(p['threshold_dbm'], lang)}: de dekking van het lokaal, het eigen netwerk "
                        "van de school."),
    "silent_in_session": (
        lambda p, lang: (f"{p['agent']} has never reported since it was enrolled at {_at(p, 'since', lang)}"
                         if p.get("never")
                         else f"{p['agent']} has not reported since {_at(p, 'since', lang)}")
                        + f", {_dur(p['seconds'], lang)} while the school is in session.",
        lambda p, lang: (f"{p['agent']} heeft nog nooit iets gemeld sinds de aanmelding op "
                         f"{_at(p, 'since', lang)}" if p.get("never")
                         else f"{p['agent']} heeft sinds {_at(p, 'since', lang)} niets gemeld")
                        + f", {_dur(p['seconds'], lang)} terwijl er les is."),
    "bw_recovered": (
        lambda p, lang: f"{_plural(len(p['ratios']), 'valid test', 'valid tests')} at "
                        + " and ".join(_pc(r, lang) for r in p["ratios"])
                        + f" of the advertised {text.t(lang, p['direction'])} speed (threshold "
                        f"{_pc(p['threshold'], lang)})",
        lambda p, lang: f"{_plural(len(p['ratios']), 'geldige meting', 'geldige metingen')} op "
                        + " en ".join(_pc(r, lang) for r in p["ratios"])
                        + f" van de geadverteerde {text.t(lang, p['direction'])}snelheid (norm "
                        f"{_pc(p['threshold'], lang)})"),
    "outage_ended": (
        lambda p, lang: f"the outage ended at {_at(p, 'end', lang)} after {_dur(p['seconds'], lang)}; "
                        "the latest windows are up",
        lambda p, lang: f"de onderbreking eindigde op {_at(p, 'end', lang)} na "
                        f"{_dur(p['seconds'], lang)}; de laatste vensters zijn weer in orde"),
    "quality_recovered": (
        lambda p, lang: f"the last {p['windows']} windows of {p['agent']} had "
                        + ("loss to the internet targets" if p["kind"] == "loss"
                           else "a median round trip to the internet targets")
                        + f" below {_quality_value(p['kind'], p['threshold'], lang)} (at most "
                        f"{_quality_value(p['kind'], p['max'], lang)})",
        lambda p, lang: f"de laatste {p['windows']} vensters van {p['agent']} hadden "
                        + ("pakketverlies naar internetadressen" if p["kind"] == "loss"
                           else "een mediane rondetijd naar internetadressen")
                        + f" onder {_quality_value(p['kind'], p['threshold'], lang)} (hoogstens "
                        f"{_quality_value(p['kind'], p['max'], lang)})"),
    "wifi_recovered": (
        lambda p, lang: f"{p['room_name']}: median signal {_dbm(p['median_dbm'], lang)} from "
                        f"{p['readings']} readings in school hours, at or above "
                        f"{_dbm(p['threshold_dbm'], lang)}",
        lambda p, lang: f"{p['room_name']}: mediaan signaal {_dbm(p['median_dbm'], lang)} uit "
                        f"{p['readings']} metingen in schooltijd, op of boven "
                        f"{_dbm(p['threshold_dbm'], lang)}"),
    "silent_reported": (
        lambda p, lang: f"{p['agent']} reported at {_at(p, 'at', lang)}",
        lambda p, lang: f"{p['agent']} meldde zich op {_at(p, 'at', lang)}"),
    "agent_revoked": (
        lambda p, lang: f"{p['agent']} was revoked at {_at(p, 'at', lang)}: it no longer measures, so "
                        "what only it watched is no longer followed",
        lambda p, lang: f"{p['agent']} is ingetrokken op {_at(p, 'at', lang)}: deze agent meet niet "
                        "meer, dus wat alleen hij bewaakte, wordt niet meer gevolgd"),
    "opened_bandwidth": (
        lambda p, lang: f"{text.t(lang, p['direction'])} {_pc(p['ratio'], lang)} of the advertised "
                        f"{_rt(p['advertised_bytes_per_second'], lang)} (rule ≥ "
                        f"{_pc(p['threshold'], lang)}) in "
                        f"{_plural(p['tests'], 'valid test', 'valid tests')} on "
                        f"{_plural(p['servers'], 'server', 'servers')}",
        lambda p, lang: f"{text.t(lang, p['direction'])} {_pc(p['ratio'], lang)} van de geadverteerde "
                        f"{_rt(p['advertised_bytes_per_second'], lang)} (norm ≥ "
                        f"{_pc(p['threshold'], lang)}) in "
                        f"{_plural(p['tests'], 'geldige meting', 'geldige metingen')} op "
                        f"{_plural(p['servers'], 'server', 'servers')}"),
    "opened_outage": (
        lambda p, lang: f"the line down on the provider's side for {_dur(p['seconds'], lang)} from "
                        f"{_at(p, 'start', lang)}" + (", still down" if p.get("ongoing") else "")
                        + f" (rule ≥ {_dur(p['threshold_seconds'], lang)}), seen by "
                        f"{_names(p['agents'])}",
        lambda p, lang: f"de verbinding {_dur(p['seconds'], lang)} onderbroken aan de kant van de "
                        f"provider vanaf {_at(p, 'start', lang)}"
                        + (", nog steeds" if p.get("ongoing") else "")
                        + f" (norm ≥ {_dur(p['threshold_seconds'], lang)}), gezien door "
                        f"{_names(p['agents'])}"),
    "opened_loss": (
        lambda p, lang: f"loss to the internet targets {_pc(p['median'], lang, 1)} (median; at most "
                        f"{_pc(p['max'], lang, 1)}) in {p['windows']} windows in a row of {p['agent']} "
                        f"(rule < {_pc(p['threshold'], lang, 1)}), the gateway fine",
        lambda p, lang: f"pakketverlies naar internetadressen {_pc(p['median'], lang, 1)} (mediaan; "
                        f"hoogstens {_pc(p['max'], lang, 1)}) in {p['windows']} vensters op rij van "
                        f"{p['agent']} (norm < {_pc(p['threshold'], lang, 1)}), de gateway in orde"),
    "opened_latency": (
        lambda p, lang: f"median round trip to the internet targets {_ms(p['median'], lang)} "
                        f"(at most {_ms(p['max'], lang)}) in {p['windows']} windows in a row of "
                        f"{p['agent']} (rule < {_ms(p['threshold'], lang)}), the gateway fine",
        lambda p, lang: f"mediane rondetijd naar internetadressen {_ms(p['median'], lang)} "
                        f"(hoogstens {_ms(p['max'], lang)}) in {p['windows']} vensters op rij van "
                        f"{p['agent']} (norm < {_ms(p['threshold'], lang)}), de gateway in orde"),
    "opened_wifi": (
        lambda p, lang: f"{p['room_name']}: median signal {_dbm(p['median_dbm'], lang)} from "
                        f"{p['readings']} readings in school hours (rule ≥ {_dbm(p['threshold_dbm'], lang)})",
        lambda p, lang: f"{p['room_name']}: mediaan signaal {_dbm(p['median_dbm'], lang)} uit "
                        f"{p['readings']} metingen in schooltijd (norm ≥ {_dbm(p['threshold_dbm'], lang)})"),
    "opened_silent": (
        lambda p, lang: f"{p['agent']} silent for {_dur(p['seconds'], lang)} while the school is in "
                        f"session, " + ("never reported since it was enrolled at " if p.get("never") else
                                        "last report ") + _at(p, "since", lang)
                        + f" (rule: a report at least every {_dur(p['threshold_seconds'], lang)})",
        lambda p, lang: f"{p['agent']} zwijgt al {_dur(p['seconds'], lang)} terwijl er les is, "
                        + ("nog nooit gemeld sinds de aanmelding op " if p.get("never") else
                           "laatste melding ") + _at(p, "since", lang)
                        + f" (norm: ten minste elke {_dur(p['threshold_seconds'], lang)} een melding)"),
    "opened": (
        lambda p, lang: f"{_kind(lang, p['kind'])} detected",
        lambda p, lang: f"{_kind(lang, p['kind'])} gedetecteerd"),
    "resolved_itself": (
        lambda p, lang: f"resolved itself: {_nested(p['reason'], lang)}",
        lambda p, lang: f"vanzelf opgelost: {_nested(p['reason'], lang)}"),
    "urgency_changed": (
        lambda p, lang: f"urgency {_urg(lang, p['from'])} → {_urg(lang, p['to'])}",
        lambda p, lang: f"urgentie {_urg(lang, p['from'])} → {_urg(lang, p['to'])}"),
    "urgency_followed": (
        lambda p, lang: f"urgency {_urg(lang, p['from'])} → {_urg(lang, p['to'])}, "
                        "as its most urgent school's",
        lambda p, lang: f"urgentie {_urg(lang, p['from'])} → {_urg(lang, p['to'])}, "
                        "als die van de meest urgente school"),
    "part_of_provider": (
        lambda p, lang: f"part of provider-wide incident {p['parent']}",
        lambda p, lang: f"onderdeel van providerbrede storing {p['parent']}"),
    "joined": (
        lambda p, lang: f"joined by {_names(p['schools'])}" + (" (reported after it ended)"
                                                               if p.get("after_end") else ""),
        lambda p, lang: f"aangevuld met {_names(p['schools'])}" + (" (gemeld nadat de storing voorbij was)"
                                                                   if p.get("after_end") else "")),
    "provider_opened": (
        lambda p, lang: f"{p['count']} schools on {p['provider']} with {_a_kind(p['kind'])} incident: "
                        f"{_names(p['schools'])}"
                        + (f" (suspected from their agents' silence in provider-wide incident "
                           f"{p['suspected_parent']})" if p.get("suspected_parent") is not None else "")
                        + (f"; detected after it ended ({_span(p, lang)}): the agents could report it only "
                           "once the line was back" if p.get("over") else ""),
        lambda p, lang: f"{p['count']} scholen op {p['provider']} met een storing "
                        f"({_kind(lang, p['kind'])}): "
                        f"{_names(p['schools'])}"
                        + (f" (eerst vermoed uit het zwijgen van hun agents in providerbrede storing "
                           f"{p['suspected_parent']})" if p.get("suspected_parent") is not None else "")
                        + (f"; pas gezien toen het al voorbij was ({_span(p, lang)}): de agents konden het "
                           "pas melden toen de verbinding terug was" if p.get("over") else "")),
    "provider_over": (
        lambda p, lang: f"resolved itself: over before it was detected: {p['provider']} {p['kind']} at "
                        f"{p['count']} schools, {_span(p, lang)}; restored when the last school was",
        lambda p, lang: f"vanzelf opgelost: al voorbij voordat het gezien werd: {p['provider']}, "
                        f"{_kind(lang, p['kind'])} bij {p['count']} scholen, {_span(p, lang)}; hersteld toen "
                        "de laatste school hersteld was"),
    "silence_opened": (
        lambda p, lang: f"suspected provider-wide outage at {_names(p['schools'])}: every agent of "
                        f"{p['count']} "
                        f"schools on {p['provider']} went silent within {_dur(p['window_seconds'], lang)} "
                        "of each other while the schools were in session; an outage of the line is suspected "
                        "from this simultaneous silence, not yet proven: the agents' own outage records will "
                        "say what happened once they can report again",
        lambda p, lang: f"vermoedelijke onderbreking bij meerdere scholen van één provider: "
                        f"{_names(p['schools'])}: alle agents van {p['count']} scholen op {p['provider']} "
                        f"zwegen binnen {_dur(p['window_seconds'], lang)} van elkaar, tijdens "
                        "schooltijd; een onderbreking van de verbinding wordt vermoed uit dit gelijktijdige "
                        "zwijgen, maar is nog niet bewezen: de eigen onderbrekingsgegevens van de agents "
                        "laten zien wat er gebeurde zodra ze weer kunnen melden"),
    "silence_over_proven": (
        lambda p, lang: f"resolved itself: the agents of all {p['count']} schools {_again(p, lang)}; their "
                        f"outage records prove it: the line of {p['provider']} was down at {p['wide_count']} "
                        f"schools {_span(p, lang)} (provider-wide incident {p['wide_id']})",
        lambda p, lang: f"vanzelf opgelost: de agents van alle {p['count']} scholen {_again(p, lang)}; hun "
                        f"onderbrekingsgegevens bewijzen het: de verbinding van {p['provider']} was bij "
                        f"{p['wide_count']} scholen onderbroken {_span(p, lang)} (providerbrede storing "
                        f"{p['wide_id']})"),
    "silence_over_partial": (
        lambda p, lang: f"resolved itself: the agents of all {p['count']} schools {_again(p, lang)}; their "
                        f"outage records show the line down at {_names(p['schools'])} only (incidents "
                        f"{_names(p['incidents'])}): not enough schools for a provider-wide outage",
        lambda p, lang: f"vanzelf opgelost: de agents van alle {p['count']} scholen {_again(p, lang)}; hun "
                        f"onderbrekingsgegevens tonen alleen bij {_names(p['schools'])} een onderbreking "
                        f"(storingen {_names(p['incidents'])}): te weinig scholen voor een providerbrede "
                        "onderbreking"),
    "silence_over_unproven": (
        lambda p, lang: f"resolved itself: the agents of all {p['count']} schools {_again(p, lang)}; their "
                        "records show no provider-side outage then: the simultaneous silence is not proven "
                        "to be the provider's",
        lambda p, lang: f"vanzelf opgelost: de agents van alle {p['count']} scholen {_again(p, lang)}; hun "
                        "gegevens tonen toen geen onderbreking aan de kant van de provider: het "
                        "gelijktijdige zwijgen is niet bewezen de schuld van de provider"),
    "children_closed": (
        lambda p, lang: f"resolved itself: the incidents of all {p['count']} schools are closed",
        lambda p, lang: f"vanzelf opgelost: de storingen van alle {p['count']} scholen zijn afgesloten"),
    "via_provider": (
        lambda p, lang: f"via provider-wide incident {p['parent']}"
                        + (f": {_nested(p['note'], lang)}" if p.get("note") else ""),
        lambda p, lang: f"via providerbrede storing {p['parent']}"
                        + (f": {_nested(p['note'], lang)}" if p.get("note") else "")),
    "ticket_set": (
        lambda p, lang: f"provider's ticket {p['ticket']}" + (f" (was {p['was']})" if p.get("was") else ""),
        lambda p, lang: f"ticketnummer van de provider {p['ticket']}"
                        + (f" (was {p['was']})" if p.get("was") else "")),
    "ticket_with_note": (
        lambda p, lang: f"provider's ticket {p['ticket']}" + (f"; {_nested(p['note'], lang)}"
                                                             if p.get("note") else ""),
        lambda p, lang: f"ticketnummer van de provider {p['ticket']}"
                        + (f"; {_nested(p['note'], lang)}" if p.get("note") else "")),
}


def in_language(document: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    """The evidence document with what detection and the lifecycle said (corroboration,
    event notes, the detector's resolution note) in ``lang``; a person's own notes stay as
    typed. The pages and the PDF take this; the JSON export takes the document as is."""
    out = dict(document)
    coded = document.get("corroboration_coded")
    if isinstance(coded, list):
        out["corroboration"] = [say(c, lang) for c in coded]
    out["events"] = [
        {**e, "note": say(e["data"], lang)} if isinstance(e.get("data"), Mapping) else e
        for e in document.get("events") or ()]
    incident = document.get("incident")
    if isinstance(incident, Mapping) and isinstance(incident.get("resolution_data"), Mapping):
        out["incident"] = {**incident, "resolution_note": say(incident["resolution_data"], lang)}
    return out
