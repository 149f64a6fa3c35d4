"""What detection and the lifecycle say, in Dutch and English: every sentence code in both
languages, stored as codes with the English beside them, the evidence pack's Dutch from
them, one time format, a readable `incident show`, and the store's own input checks."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_collector.conftest import make_site
from test_collector.incident_fixtures import bandwidth_finding, events, found, set_up_schools
from test_collector.incident_histories import ZONE, first_agent, local, slow_line

from collector.cli import main
from collector.db.engine import writer
from collector.incidents import lifecycle
from collector.incidents.errors import IncidentError, UnknownIncident
from collector.incidents.evidence import evidence_document
from collector.incidents.impact import REASON_CODES
from collector.incidents.render import evidence_html
from collector.incidents.run import run_detection
from collector.incidents.sentences import SENTENCE_CODES, Sentence, in_language, say
from collector.incidents.text import _DUTCH_REASONS, reason_text, summary_paragraph
from collector.settings import CollectorSettings

TZ = "Europe/Amsterdam"


def _moment(hour: int, minute: int = 0) -> dict[str, Any]:
    t = local(hour, minute)
    return {"seconds": t, "local": dt.datetime.fromtimestamp(t, ZONE).isoformat(), "zone": TZ}


def _abbreviation(t: float) -> str:
    return dt.datetime.fromtimestamp(t, ZONE).tzname() or "?"


# One example of every code's params: a new code without one fails the walk below.
EXAMPLES: dict[str, dict[str, Any]] = {
    "bw_retest": {"at": _moment(10), "rate": 5.1 * 125_000, "server": "a", "retest_server": "b",
                  "retest_rate": 5e5, "retest_ratio": 0.32},
    "bw_gateway_fine": {"at": _moment(10), "loss_max": 0.0, "windows": 3},
    "bw_servers": {"servers": ["a", "b"]},
    "bw_wired": {}, "bw_valid": {}, "outage_lan_up": {},
    "outage_every_agent": {"agents": ["laptop", "pi"]},
    "quality_lan_fine": {"windows": 10, "gateway_loss_max": 0.02, "gateway_latency_max_seconds": 0.03},
    "quality_wired": {"agent": "pi"},
    "wifi_readings": {"readings": 6, "poor": 5, "threshold_dbm": -75},
    "silent_in_session": {"agent": "pi", "since": _moment(9), "never": False, "seconds": 3600},
    "bw_recovered": {"direction": "download", "ratios": [0.96, 1.01], "threshold": 0.8},
    "outage_ended": {"end": _moment(10, 25), "seconds": 1500},
    "quality_recovered": {"kind": "loss", "agent": "pi", "windows": 10, "threshold": 0.05, "max": 0.01},
    "wifi_recovered": {"room_name": "Lokaal 2.11", "median_dbm": -60, "readings": 6, "threshold_dbm": -75},
    "silent_reported": {"agent": "pi", "at": _moment(11)},
    "agent_revoked": {"agent": "pi", "at": _moment(11)},
    "opened_bandwidth": {"direction": "download", "ratio": 0.41, "advertised_bytes_per_second": 1.5625e6,
                         "threshold": 0.8, "tests": 2, "servers": 2},
    "opened_outage": {"start": _moment(10), "seconds": 1500, "ongoing": True, "threshold_seconds": 300,
                      "agents": ["pi"]},
    "opened_loss": {"agent": "pi", "median": 0.3, "max": 0.35, "windows": 10, "threshold": 0.05},
    "opened_latency": {"agent": "pi", "median": 0.2, "max": 0.3, "windows": 10, "threshold": 0.15},
    "opened_wifi": {"room_name": "Gym", "median_dbm": -80, "readings": 6, "threshold_dbm": -75},
    "opened_silent": {"agent": "pi", "since": _moment(9), "never": True, "seconds": 3600,
                      "threshold_seconds": 1800},
    "opened": {"kind": "wifi"},
    "resolved_itself": {"reason": {"code": "silent_reported", "params": {"agent": "pi", "at": _moment(11)}}},
    "urgency_changed": {"from": "normal", "to": "high"},
    "urgency_followed": {"from": "low", "to": "high"},
    "part_of_provider": {"parent": 7},
    "joined": {"schools": ["De Regenboog"], "after_end": True},
    "provider_opened": {"count": 3, "provider": "Example Fibre", "kind": "outage", "schools": ["A", "B", "C"],
                        "suspected_parent": 4, "over": True, "start": _moment(10), "end": _moment(10, 41)},
    "provider_over": {"provider": "Example Fibre", "kind": "outage", "count": 3, "start": _moment(10),
                      "end": _moment(10, 41)},
    "silence_opened": {"schools": ["A", "B", "C"], "count": 3, "provider": "Example Fibre",
                       "window_seconds": 7200},
    "silence_over_proven": {"count": 3, "revoked": False, "provider": "Example Fibre", "wide_count": 3,
                            "wide_id": 9, "start": _moment(10), "end": _moment(10, 40)},
    "silence_over_partial": {"count": 3, "revoked": True, "schools": ["A"], "incidents": [5]},
    "silence_over_unproven": {"count": 3, "revoked": False},
    "children_closed": {"count": 3},
    "via_provider": {"parent": 7, "note": "called the helpdesk"},
    "ticket_set": {"ticket": "TZ-1", "was": "TZ-0"},
    "ticket_with_note": {"ticket": "TZ-1", "note": {"code": "via_provider", "params": {"parent": 7,
                                                                                    "note": None}}},
}


@pytest.mark.parametrize("code", sorted(SENTENCE_CODES))
def test_every_code_is_worded_in_both_languages(code: str) -> None:
    params = EXAMPLES[code]
    assert sorted(params) == sorted(SENTENCE_CODES[code])
    entry = {"code": code, "params": params, "text": "FALLBACK"}
    english, dutch = say(entry, "en"), say(entry, "nl")
    # Worded from the code, not the stored fallback; nothing left unformatted.
    assert "FALLBACK" not in english and "FALLBACK" not in dutch
    assert english != dutch and not re.search(r"[{}]|None|\bunknown\b|onbekend", english + dutch)
    assert Sentence(code, params).english() == english
    for stamp in [v for v in params.values() if isinstance(v, dict) and "local" in v]:
        # One time format, the pack's: "(CET)", never "(UTC+0100)".
        assert f"({_abbreviation(stamp['seconds'])})" in english + dutch and "UTC" not in english + dutch


def test_examples_cover_exactly_the_codes() -> None:
    assert sorted(EXAMPLES) == sorted(SENTENCE_CODES)


def test_every_reason_of_the_assessment_has_dutch() -> None:
    # h1's codes and the two of provider-wide incidents (the suspected one from silence too).
    assert set(REASON_CODES) | {"provider_wide", "provider_silence"} <= set(_DUTCH_REASONS)
    silence = {"code": "provider_silence", "params": {"schools": 3, "window_seconds": 7200},
               "text": "Every agent of 3 schools went silent"}
    dutch = reason_text(silence, "nl")
    assert "vermoed" in dutch and "niet bewezen" in dutch and "Every" not in dutch


def test_reason_times_read_the_zone_abbreviation_as_the_rest_of_the_pack() -> None:
    deadline = _moment(17, 12)
    reason = {"code": "sla_running", "params": {"restore_seconds": 28800, "clock": "24x7",
                                                "remaining_seconds": 3600, "deadline_at": deadline["seconds"],
                                                "deadline_local": deadline["local"]}, "zone": TZ}
    dutch = reason_text(reason, "nl")
    assert f"17:12 ({_abbreviation(deadline['seconds'])})" in dutch and "UTC" not in dutch


def test_old_rows_with_english_alone_still_read() -> None:
    assert say("the gateway answered without loss", "nl") == "the gateway answered without loss"
    assert say({"code": "no_such_code_yet", "params": {}, "text": "as stored"}, "nl") == "as stored"
    # Params that do not fit the words: the stored English, not a crash.
    assert say({"code": "bw_servers", "params": {}, "text": "2 servers"}, "nl") == "2 servers"


@pytest.fixture
def slow(tmp_path: Path) -> Any:
    with make_site(tmp_path) as site:
        now = slow_line(site, tmp_path)
        settings = CollectorSettings(db=site.db_url, timezone=TZ)
        report = run_detection(site.engine, settings, now)
        [opened] = [c for c in report.changes if c.action == "opened"]
        yield site, settings, opened.incident_id, now


def test_detection_stores_codes_with_the_english_beside_them(slow: Any) -> None:
    site, _, incident_id, _ = slow
    [(findings,)] = site.sql("SELECT findings FROM incidents WHERE id = ?", incident_id)
    corroboration = json.loads(findings)["corroboration"]
    assert {c["code"] for c in corroboration} >= {"bw_retest", "bw_gateway_fine", "bw_wired", "bw_valid"}
    assert all(c["text"] == say(c, "en") and c["params"] is not None for c in corroboration)
    [(note, data)] = site.sql("SELECT note, data FROM incident_events WHERE incident_id = ? "
                              "AND action = 'opened'", incident_id)
    # One plain sentence of what broke and by how much, not the corroboration joined by "; ".
    assert note == "download 41 % of the advertised 12.5 Mbit/s (rule ≥ 80 %) in 2 valid tests on 2 servers"
    assert json.loads(data)["code"] == "opened_bandwidth"


def test_the_dutch_pack_says_the_detectors_words_in_dutch(slow: Any) -> None:
    site, settings, incident_id, _ = slow
    pi = first_agent(site)
    pi.send([pi.bandwidth(local(14, 30), 12.4), pi.bandwidth(local(15, 0), 12.3)])
    run_detection(site.engine, settings, local(15, 10))
    with site.engine.connect() as conn:
        document = evidence_document(conn, incident_id, local(16), TZ)
    english = in_language(document, "en")
    assert english["corroboration"] == document["corroboration"]
    assert any("its retest on http://127.0.0.2:8080" in c for c in english["corroboration"])
    dutch = in_language(document, "nl")
    assert any("de hertest op http://127.0.0.2:8080" in c for c in dutch["corroboration"])
    assert not any("retest" in c or "gateway with" in c for c in dutch["corroboration"])
    notes = [e["note"] for e in dutch["events"]]
    assert notes[0].startswith("download 41 % van de geadverteerde 12,5 Mbit/s (norm ≥ 80 %)")
    assert notes[-1].startswith("vanzelf opgelost: 2 geldige metingen op 99 % en 98 %")
    assert dutch["incident"]["resolution_note"] == notes[-1]
    # The summary's last sentence says it too, in Dutch; the JSON keeps the English.
    summary = summary_paragraph(document, "nl")
    assert "Afgesloten als opgelost: vanzelf opgelost: 2 geldige metingen" in summary
    assert document["incident"]["resolution_note"].startswith("resolved itself: 2 valid tests")
    # The page drawn from it (render.py takes the document in its language) has no English left.
    page = evidence_html(dutch, "nl")
    assert "de hertest op" in page and "resolved itself" not in page and "its retest" not in page


def test_a_suspected_provider_wide_incident_says_it_is_suspected(slow: Any) -> None:
    site, _, incident_id, _ = slow
    with site.engine.connect() as conn:
        document = copy.deepcopy(evidence_document(conn, incident_id, local(16), TZ))
    document["incident"]["kind"] = "provider"
    document["rule"] = {"kind": "provider", "child_kind": "silent"}
    document["figures"] = {"kind": "silent", "suspected": True}
    document["children"] = [{"school": s} for s in ("a", "b", "c")]
    for lang, words in (("en", ("suspected", "not proven")), ("nl", ("vermoed", "niet bewezen"))):
        first = summary_paragraph(document, lang).split(". ")[0:2]
        assert all(w in " ".join(first) for w in words), first
    # Not suspected: the line of many schools, said as proven.
    document["figures"] = {"kind": "outage"}
    assert "suspected" not in summary_paragraph(document, "en")


def test_incident_show_uses_the_schools_zone_and_reads_plainly(slow: Any,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    site, _, incident_id, _ = slow
    assert main(["incident", "show", str(incident_id), "--db", site.db_url]) == 0
    out = capsys.readouterr().out
    zone = _abbreviation(local(10))
    assert f"times in {TZ}" in out and out.count(f"times in {TZ}") == 1
    started = dt.datetime.fromtimestamp(local(10), ZONE)
    assert f"started {started:%a} {started.day} {started:%b %Y} 10:00 ({zone})" in out
    assert not re.search(r"\d\d:\d\d:\d\dZ", out) and "None" not in out
    assert "detector: opened → open: download 41 % of the advertised 12.5 Mbit/s" in out
    assert "evidence: The test of" in out
    # The contract has no restore time: no SLA clock to speak of.
    assert "time to restore so far: " in out and "SLA clock" not in out
    assert main(["incident", "list", "--db", site.db_url]) == 0
    listed = capsys.readouterr()
    assert f"started {started:%a} {started.day} {started:%b %Y} 10:00 ({zone})" in listed.out
    assert f"times in {TZ}" in listed.err


@pytest.fixture
def opened_incident(tmp_path: Path) -> Any:
    with make_site(tmp_path) as site:
        set_up_schools(site, tmp_path)
        [change] = found(site, bandwidth_finding(site), local(10, 30))
        yield site, change.incident_id


@pytest.mark.parametrize(("call", "message"), [
    (lambda c, i: lifecycle.add_note(c, i, "Anne", "clear\x1b[2Jscreen", local(11)), "U+001B"),
    (lambda c, i: lifecycle.add_note(c, i, "Anne", "x" * 4001, local(11)), "at most 4000"),
    (lambda c, i: lifecycle.add_note(c, i, "Eve\r\nMallory", "ok", local(11)), "one line"),
    (lambda c, i: lifecycle.acknowledge(c, i, "Anne", "nul\x00", local(11)), "U+0000"),
    (lambda c, i: lifecycle.escalate(c, i, "Anne", "TZ\n1", None, local(11)), "one line"),
    (lambda c, i: lifecycle.set_ticket(c, i, "Anne", "T" * 101, local(11)), "at most 100"),
    (lambda c, i: lifecycle.dismiss(c, i, "Anne", "why\x07", local(11)), "U+0007"),
    (lambda c, i: lifecycle.resolve(c, i, "", "fixed", local(11)), "who does it"),
])
def test_the_store_checks_what_people_type_on_every_path(opened_incident: Any, call: Any,
                                                         message: str) -> None:
    site, incident_id = opened_incident
    before = events(site, incident_id)
    refused = pytest.raises(IncidentError, match=re.escape(message))
    with writer(site.engine) as conn, conn.begin(), refused:
        call(conn, incident_id)
    assert events(site, incident_id) == before
    assert site.sql("SELECT state, ticket FROM incidents WHERE id = ?", incident_id) == [("open", None)]


def test_an_id_beyond_sql_integers_is_no_incident(opened_incident: Any) -> None:
    site, _ = opened_incident
    with writer(site.engine) as conn, conn.begin(), pytest.raises(UnknownIncident):
        lifecycle.add_note(conn, 2**63, "Anne", "hello", local(11))
