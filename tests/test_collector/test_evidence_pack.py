"""The evidence pack's document, texts, CSV and JSON, from records ingested through the real
ingest route and an incident row as detection writes it (tests/support/incidents.py)."""

from __future__ import annotations

import copy
import csv
import io
import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Connection, event
from support import incidents as si
from test_collector.conftest import Site, make_site

from collector.calendar import load_calendar
from collector.incidents.evidence import (
    GATEWAY_MATCH_SECONDS,
    IncidentNotFound,
    WindowsByAgent,
    _window_near,
    evidence_document,
    stamp,
)
from collector.incidents.export import UnknownTable, evidence_csv, evidence_json
from collector.incidents.history import Window, load_history
from collector.incidents.pdf import evidence_pdf
from collector.incidents.render import evidence_html
from collector.incidents.text import duration, percent, rate, summary_paragraph, when
from collector.registry import resolve_school

TZ = "Europe/Amsterdam"


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[tuple[Site, dict[str, Any]]]:
    with make_site(tmp_path) as site:
        si.register_line(site.engine)
        si.slow_line_day(site)
        pk = si.slow_line_incident(site, si.result_ids(site))
        with site.engine.connect() as conn:
            yield site, evidence_document(conn, pk, si.local(16), TZ)


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[Site, dict[str, Any]]]:
    with make_site(tmp_path) as site:
        si.register_line(site.engine)
        si.outage_day(site)
        pk = si.outage_incident(site)
        with site.engine.connect() as conn:
            yield site, evidence_document(conn, pk, si.local(16), TZ)


def test_bandwidth_document_has_the_contract_the_rule_and_every_measurement(slow: Any) -> None:
    _, doc = slow
    line = doc["line"]
    assert line["provider"] == "Example Fibre"
    assert line["terms"]["download"]["advertised_bytes_per_second"] == 100 * si.MBIT
    assert line["terms"]["download"]["minimum_bytes_per_second"] == 50 * si.MBIT
    assert line["terms"]["monthly_cost"] == 89.5
    rule = doc["rule"]
    assert rule["threshold"] == 0.8 and rule["measured"] == pytest.approx(0.41)
    assert rule["tests"] == 4 and rule["servers"] == [si.SERVER_A, si.SERVER_B]
    assert rule["median_bytes_per_second"] == pytest.approx(41 * si.MBIT)
    assert rule["in_session"] is True
    # Every test of the period, the invalid one too, with why it is invalid.
    rows = doc["measurements"]
    assert len(rows) == 5
    invalid = [m for m in rows if not m["valid"]]
    assert len(invalid) == 1 and "CPU" in invalid[0]["invalid_reasons"][0] and not invalid[0]["counted"]
    first = rows[0]
    assert first["measured_at"]["local"] == "2026-03-03T09:12:30+01:00"
    assert first["download_ratio"] == pytest.approx(0.41) and first["retest_server"] == si.SERVER_B
    assert first["retest_download_ratio"] == pytest.approx(0.40)
    assert first["concurrent_devices"] == 182 and first["download_cross_traffic_bytes"] == 1_200_000
    assert first["backend"] == "http" and first["streams"] == 4 and first["counted"]
    assert first["gateway_loss_ratio"] == 0.0 and first["gateway_latency_p50_seconds"] == pytest.approx(
        0.0006
    )
    lan = doc["lan_evidence"]
    assert lan["conclusion"] == "lan_fine" and lan["bucket_seconds"] == 300
    assert lan["summary"]["windows"] == lan["summary"]["gateway_fine_windows"] > 400
    assert lan["summary"]["access_hop_addresses"] == [si.ACCESS_HOP]
    assert doc["devices"]["peak"] is not None and doc["devices"]["counts"]
    assert doc["events"][0]["action"] == "opened"
    assert doc["incident"]["sla"]["restore_seconds"] == 8 * 3600 and doc["incident"]["sla"]["met"] is None


def test_outage_document_has_the_timeline_and_the_sla(outage: Any) -> None:
    _, doc = outage
    assert [(o["kind"], o["duration_seconds"]) for o in doc["outages"]] == [("isp", 47 * 60 + 30)]
    assert doc["rule"]["measured"] == 47 * 60 + 30 and doc["rule"]["threshold"] == 300
    sla = doc["incident"]["sla"]
    assert sla["time_to_restore_seconds"] == 47 * 60 + 30 and sla["met"] is True
    assert doc["incident"]["ticket"] == "EF-2026-0412"
    down = [b for b in doc["lan_evidence"]["buckets"] if b["segment"] == "access"]
    # The gateway answered every probe while the internet targets answered none.
    assert all(b["gateway_loss_ratio"] == 0 for b in down)
    assert sum(1 for b in down if b["targets_loss_ratio"] == 1) >= 8
    assert [e["action"] for e in doc["events"]] == ["opened", "escalated", "resolved"]


def test_unknown_incident(slow: Any) -> None:
    site, _ = slow
    with site.engine.connect() as conn, pytest.raises(IncidentNotFound):
        evidence_document(conn, 999, si.local(16), TZ)


def test_numbers_and_times_per_language() -> None:
    assert rate(12.5 * si.MBIT, "nl") == "12,5 Mbit/s" and rate(12.5 * si.MBIT, "en") == "12.5 Mbit/s"
    assert rate(None, "nl") == "niet gemeten" and rate(None, "en") == "not measured"
    assert percent(0.41, "nl") == "41 %"
    stamp = {"seconds": si.local(10, 15), "local": "2026-03-03T10:15:00+01:00"}
    assert when(stamp, "nl", TZ) == "di 3 mrt 2026 10:15 (CET)"
    assert when(stamp, "en", TZ) == "Tue 3 Mar 2026 10:15 (CET)"
    assert duration(2850, "en") == "47 min 30 s" and duration(8 * 3600, "nl") == "8 u"


def test_summary_in_both_languages(slow: Any) -> None:
    _, doc = slow
    en = summary_paragraph(doc, "en")
    assert en.startswith(
        "On Tuesday 3 March 2026 from 09:12 the line of De Regenboog (provider Example Fibre, "
        "contract 100/100 Mbit/s) delivered a median of 41 Mbit/s download, 41 % of the "
        "advertised speed, in 4 valid tests on 2 servers during school hours; the school's "
        "gateway answered without loss throughout, so the school network is not the cause."
    )
    nl = summary_paragraph(doc, "nl")
    assert nl.startswith(
        "Op dinsdag 3 maart 2026 leverde de verbinding van De Regenboog (provider Example "
        "Fibre, contract 100/100 Mbit/s) vanaf 09:12 een mediaan van 41 Mbit/s download, 41 % "
        "van de geadverteerde snelheid, in 4 geldige metingen op 2 servers tijdens schooltijd"
    )
    assert "het schoolnetwerk is niet de oorzaak" in nl and "8 u voor herstel" in nl


def test_outage_summary(outage: Any) -> None:
    _, doc = outage
    en = summary_paragraph(doc, "en")
    assert "was down from 10:02 to 10:49 (47 min 30 s" in en and "SLA met" in en and "EF-2026-0412" in en
    nl = summary_paragraph(doc, "nl")
    assert "van 10:02 tot 10:49 (47 min 30 s) onderbroken" in nl and "SLA gehaald" in nl


def test_csv_tables_have_headers_with_units_and_the_rows(slow: Any) -> None:
    site, doc = slow
    rows = list(csv.DictReader(io.StringIO(evidence_csv(doc, "measurements"))))
    assert len(rows) == 5
    assert rows[0]["download_bytes_per_second"] == str(41 * si.MBIT)
    assert rows[0]["measured_at_local"] == "2026-03-03T09:12:30+01:00" and rows[0]["valid"] == "true"
    assert rows[0]["retest_server"] == si.SERVER_B
    with site.engine.connect() as conn:
        windows = list(csv.DictReader(io.StringIO(evidence_csv(doc, "windows", conn, TZ))))
    assert len(windows) == doc["lan_evidence"]["summary"]["windows"]
    assert windows[0]["gateway_address"] == si.GATEWAY and windows[0]["targets_sent"] == "240"
    assert evidence_csv(doc, "outages").splitlines() == [
        "agent,kind,start_unix_seconds,start_local,end_unix_seconds,end_local,duration_seconds,ongoing,detail"
    ]
    with pytest.raises(UnknownTable):
        evidence_csv(doc, "secrets")


def test_json_round_trip(slow: Any) -> None:
    _, doc = slow
    assert json.loads(evidence_json(doc)) == json.loads(json.dumps(doc))


def test_html_and_pdf_carry_the_figures_in_both_languages(slow: Any, tmp_path: Path) -> None:
    _, doc = slow
    html = evidence_html(doc, "nl")
    assert '<html lang="nl">' in html and "41 %" in html and "Example Fibre" in html and "<svg" in html
    assert "http://" not in html.replace(si.SERVER_A, "").replace(si.SERVER_B, "")
    for lang, words in (
        ("nl", ("Samenvatting", "geadverteerde snelheid", "Snelheidsmetingen")),
        ("en", ("Summary", "advertised speed", "Bandwidth measurements")),
    ):
        reader = PdfReader(io.BytesIO(evidence_pdf(doc, lang)))
        pdf_text = " ".join(page.extract_text() for page in reader.pages)
        for word in words:
            assert word in pdf_text, (lang, word)
        assert "De Regenboog" in pdf_text and "127.0.0.1:9101" in pdf_text


# --- packs of incidents the real detector opened (run_detection on ingested records) ----------


def _scenario(site: Site, tmp_path: Path, kind: str) -> float:
    """Records of one of the scenario histories, ingested; the time to detect at."""
    from test_collector import incident_histories as h

    if kind == "bandwidth":
        return h.slow_line(site, tmp_path)
    if kind == "provider":
        from test_collector.incident_fixtures import CONTRACTS

        h.import_contract(site, tmp_path, CONTRACTS)
        for slug in ("test-school", "de-regenboog", "het-kompas"):
            agent = h.Agent(site, site.enroll("pi", f"test-board/{slug}"))
            agent.send([
                *h.around(agent, h.local(10, 0)), *h.around(agent, h.local(13, 0)),
                agent.bandwidth(h.local(10, 0), 5.1, retest_server=h.SECOND_SERVER, retest_down_mbit=5.0),
                agent.bandwidth(h.local(13, 0), 5.1, retest_server=h.SECOND_SERVER, retest_down_mbit=5.3),
            ])
        return h.local(14, 0)
    h.import_contract(site, tmp_path)
    if kind == "outage":
        return h.provider_outage(site)
    if kind == "loss":
        return h.lossy_line(site)
    if kind == "latency":
        pi = h.first_agent(site)
        pi.send([pi.bandwidth(h.local(9, 0), 12.0), *pi.windows(h.local(10, 0), h.local(10, 45)),
                 *pi.windows(h.local(10, 45), h.local(11, 0), targets_p50=0.25)])
        return h.local(11, 0)
    if kind == "wifi":
        return h.poor_room(site)
    assert kind == "silent"
    pi = h.first_agent(site)
    pi.send(pi.windows(h.local(9, 0), h.local(9, 10)))
    site.sql("UPDATE agents SET last_report_at = ?", h.local(9, 10))
    return h.local(11, 0)


def _detected_packs(site: Site, now: float) -> dict[str, dict[str, Any]]:
    """run_detection as the collector runs it; every incident's document, rendered to HTML,
    PDF (its text), CSV and JSON in both languages, by kind."""
    from collector.incidents.export import TABLES
    from collector.incidents.run import run_detection
    from collector.settings import CollectorSettings

    report = run_detection(site.engine, CollectorSettings(db=site.db_url), now)
    assert report.errors == []
    packs: dict[str, dict[str, Any]] = {}
    for pk, kind in site.sql("SELECT id, kind FROM incidents ORDER BY id"):
        with site.engine.connect() as conn:
            doc = evidence_document(conn, pk, now + 60, TZ)
            csvs = {table: evidence_csv(doc, table, conn, TZ) for table in TABLES}
        pack: dict[str, Any] = {"doc": doc, "csv": csvs, "json": json.loads(evidence_json(doc))}
        for lang in ("nl", "en"):
            pack[f"html_{lang}"] = evidence_html(doc, lang)
            reader = PdfReader(io.BytesIO(evidence_pdf(doc, lang)))
            pack[f"pdf_{lang}"] = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
            pack[f"summary_{lang}"] = summary_paragraph(doc, lang)
        packs.setdefault(kind, pack)
    return packs


@pytest.mark.parametrize("kind", ["bandwidth", "outage", "loss", "latency", "wifi", "silent", "provider"])
def test_the_pack_of_an_incident_the_detector_opened(tmp_path: Path, kind: str) -> None:
    with make_site(tmp_path) as site:
        packs = _detected_packs(site, _scenario(site, tmp_path, kind))
    assert kind in packs, sorted(packs)
    pack = packs[kind]
    doc, rule = pack["doc"], pack["doc"]["rule"]
    for lang in ("nl", "en"):
        assert pack[f"summary_{lang}"][:60] in pack[f"pdf_{lang}"], lang
        assert "not measured" not in pack[f"summary_{lang}"] and "niet gemeten" not in pack[f"summary_{lang}"]
    nl, en = pack["html_nl"], pack["html_en"]
    if kind == "bandwidth":
        assert rule["measured"] == pytest.approx(5.1 / 12.5) and rule["tests"] == 2
        assert len(rule["servers"]) == 2 and doc["lan_evidence"]["conclusion"] == "lan_fine"
        assert "41 %" in nl and "5,1 Mbit/s" in nl and "5.1 Mbit/s" in pack["pdf_en"]
        assert len(list(csv.DictReader(io.StringIO(pack["csv"]["measurements"])))) == 2
    elif kind == "outage":
        assert rule["measured"] == 25 * 60 and doc["incident"]["state"] == "resolved"
        assert "25 min" in pack["summary_nl"] and "resolved itself" not in pack["summary_nl"]
        # No SLA in this contract: a resolved incident is not "still open" against one.
        assert "niet van toepassing" in nl and "nog niet bekend" not in nl
        assert len(list(csv.DictReader(io.StringIO(pack["csv"]["outages"])))) == 1
    elif kind == "loss":
        assert rule["measured"] == pytest.approx(0.3) and "30 %" in nl and "30 %" in pack["pdf_nl"]
    elif kind == "latency":
        # Milliseconds, not a duration rounded to "0 s".
        assert rule["measured"] == pytest.approx(0.275) and rule["threshold"] == pytest.approx(0.15)
        assert "275 ms" in en and "150 ms" in en and " 0 s</div>" not in en and "<td>0 s</td>" not in en
        assert "275 ms" in pack["pdf_en"]
    elif kind == "wifi":
        # The readings the incident was decided on, in every form of the pack.
        assert [r["signal_dbm"] for r in doc["readings"]] == [-80, -79, -70, -77, -82, -81]
        assert len(list(csv.DictReader(io.StringIO(pack["csv"]["readings"])))) == 6
        assert "Wifi-metingen" in nl and "-82 dBm" in nl and "-82 dBm" in pack["pdf_nl"]
        assert "wifi in Lokaal 2.11 van" in pack["summary_nl"]
        # The school's own network: no provider's SLA in the summary.
        assert "hersteltijd" not in pack["summary_nl"] and "restore" not in pack["summary_en"]
    elif kind == "silent":
        from test_collector.incident_histories import local

        assert rule["measured"] == pytest.approx(doc["generated_at"]["seconds"] - local(9, 10))
        assert rule["threshold"] == 1800 and "1 u 51 min" in pack["summary_nl"]
    else:
        assert rule["measured"] == 3 and len(doc["children"]) == 3
        # The provider-wide reason in Dutch on the Dutch pages.
        assert "3 scholen op verbindingen van dezelfde provider" in nl
        assert "have a bandwidth incident" not in nl and "have a bandwidth incident" in en
    assert pack["json"] == json.loads(json.dumps(doc))


def test_a_long_note_and_reason_still_make_a_pdf(slow: Any) -> None:
    """A note and a reason as long as the admin API takes (4,000 characters, or 2,000 line
    breaks) do not stop the PDF: the cell is cut and says so; the JSON has all of it."""
    site, _ = slow
    [(pk,)] = site.sql("SELECT id FROM incidents")
    note = ("word " * 800)[:4000]
    reason = "x\n" * 2000
    site.sql("INSERT INTO incident_events (incident_id, at, actor, action, note) VALUES (?, ?, ?, ?, ?)",
             pk, si.local(12), "Anna de Vries (admin token 1)", "note", note)
    site.sql("UPDATE incidents SET state = 'dismissed', closed_at = ?, resolution = 'dismissed', "
             "resolution_note = ? WHERE id = ?", si.local(13), reason, pk)
    with site.engine.connect() as conn:
        doc = evidence_document(conn, pk, si.local(16), TZ)
    assert doc["events"][-1]["note"] == note and doc["incident"]["resolution_note"] == reason
    for lang in ("nl", "en"):
        text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(evidence_pdf(doc, lang))).pages)
        assert "[...]" in text and "word word" in text


def test_a_school_incident_is_not_held_to_the_lines_sla(tmp_path: Path) -> None:
    """A Wi-Fi incident on a line with an 8 h restore time: the room is the school's own
    network, so the pack states no SLA for it (the line's is the provider's)."""
    from test_collector import incident_histories as h

    with make_site(tmp_path) as site:
        si.register_line(site.engine)  # 8 h restore, 24x7
        packs = _detected_packs(site, h.poor_room(site))
    doc = packs["wifi"]["doc"]
    assert doc["line"]["terms"]["sla_restore_seconds"] == 8 * 3600  # the line has one
    assert doc["incident"]["sla"]["restore_seconds"] is None
    assert "8 u" not in packs["wifi"]["summary_nl"] and "8 h" not in packs["wifi"]["summary_en"]


def test_the_provider_wide_pack_names_the_boards_central_contact(tmp_path: Path) -> None:
    with make_site(tmp_path) as site:
        now = _scenario(site, tmp_path, "provider")
        site.sql("UPDATE boards SET escalation = ?",
                 json.dumps({"mode": "central", "name": "Jan Smit", "email": "ict@bestuur.test"}))
        packs = _detected_packs(site, now)
    contact = packs["provider"]["doc"]["incident"]["escalation_contact"]
    assert contact == {"name": "Jan Smit", "email": "ict@bestuur.test", "phone": None, "role": "central"}
    assert "Jan Smit" in packs["provider"]["html_nl"] and "Jan Smit" in packs["provider"]["pdf_nl"]


# --- the two shortcuts of the pack's build: same results as the scans they replaced ----------


def _window_near_by_scan(windows: Sequence[Window], agent_pk: int | None, t: float) -> Window | None:
    """The reference: every window looked at, as the pack matched a test before it bisected."""
    best: tuple[float, Window] | None = None
    for w in windows:
        if w.agent_pk != agent_pk:
            continue
        distance = (
            0.0 if w.start <= t < w.start + w.seconds else min(abs(t - w.start), abs(t - w.start - w.seconds))
        )
        if distance <= GATEWAY_MATCH_SECONDS and (best is None or distance < best[0]):
            best = (distance, w)
    return best[1] if best else None


def _window(agent_pk: int, start: float, seconds: float, n: int) -> Window:
    return Window(
        agent_pk=agent_pk, agent_slug=f"pi-{agent_pk}", start=start, seconds=seconds, up=True,
        down_seconds=None, outage_kind=None, segment=None, segment_reason=None, gateway_address=None,
        gateway_loss_ratio=n / 1000, gateway_latency_p50_seconds=None, targets_sent=0, targets_received=0,
        targets_loss_ratio=None, targets_latency_p50_seconds=None, access_hop_address=None,
    )


def test_a_test_is_matched_with_the_window_a_scan_of_every_window_finds() -> None:
    """Windows of three agents with gaps, equal starts, overlaps, a long window and lengths of
    zero and below: for times all over the period and on every edge of a match, the bisected
    match is the very window (identity) the scan of every window picks, ties included."""
    rng = random.Random(9)
    t0 = si.local(8)
    windows: list[Window] = []
    for agent_pk in (1, 2, 3):
        t = t0 + agent_pk * 7.0
        for n in range(400):
            seconds = rng.choice((60.0, 60.0, 60.0, 300.0, 1800.0, 0.0, -30.0))
            windows.append(_window(agent_pk, t, seconds, len(windows)))
            if n % 37 == 0:  # a second window with the same start
                windows.append(_window(agent_pk, t, 60.0, len(windows)))
            t += rng.choice((60.0, 60.0, 45.0, 120.0, 900.0))
    windows.sort(key=lambda w: w.start)  # the history's order: oldest first
    edges = {
        edge + offset
        for w in windows
        for edge in (w.start, w.start + w.seconds)
        for offset in (-GATEWAY_MATCH_SECONDS - 0.5, -GATEWAY_MATCH_SECONDS, 0.0, GATEWAY_MATCH_SECONDS,
                       GATEWAY_MATCH_SECONDS + 0.5)
    }
    last = windows[-1].start
    times = sorted(edges | {t0 - 3600 + 61.25 * k for k in range(int((last - t0 + 7200) / 61.25))})
    shuffled = windows[:]
    rng.shuffle(shuffled)
    for order in (windows, shuffled):
        nearby = WindowsByAgent(order)
        found = 0
        for tester in (1, 2, 3, 4, None):  # 4 has no windows, None is an imported test
            for t in times:
                expected = _window_near_by_scan(order, tester, t)
                assert _window_near(nearby, tester, t) is expected, (tester, t)
                found += expected is not None
        assert found > len(times)  # most times are near a window of some agent


def test_each_measurement_carries_the_gateway_of_its_window(slow: Any) -> None:
    site, doc = slow
    period = doc["period"]
    with site.engine.connect() as conn:
        school_pk, _, _ = resolve_school(conn, "test-board/test-school")
        history = load_history(conn, school_pk, period["start"]["seconds"], period["end"]["seconds"], TZ)
    by_id = {t.result_id: t for t in history.tests}
    for m in doc["measurements"]:
        test = by_id[m["result_id"]]
        window = _window_near_by_scan(history.windows, test.agent_pk, test.measured_at)
        assert window is not None
        assert m["gateway_loss_ratio"] == window.gateway_loss_ratio
        assert m["gateway_latency_p50_seconds"] == window.gateway_latency_p50_seconds


def _windows_csv_as_before(conn: Connection, doc: dict[str, Any]) -> str:
    """The reference: the windows table as the export wrote it when it read the school's whole
    history again for the document's period."""
    school = doc["school"]
    school_pk, _, _ = resolve_school(conn, f"{school['board']}/{school['id']}")
    calendar = load_calendar(conn, school_pk, TZ)
    period = doc["period"]
    history = load_history(conn, school_pk, period["start"]["seconds"], period["end"]["seconds"], TZ)

    def cell(value: Any) -> Any:
        return "" if value is None else ("true" if value else "false") if isinstance(value, bool) else value

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([
        "agent", "start_unix_seconds", "start_local", "window_seconds", "up", "down_seconds", "outage_kind",
        "segment", "segment_reason", "gateway_address", "gateway_loss_ratio", "gateway_latency_p50_seconds",
        "targets_sent", "targets_received", "targets_loss_ratio", "targets_latency_p50_seconds",
        "access_hop_address",
    ])
    for w in history.windows:
        local = stamp(w.start, calendar)
        assert local is not None
        writer.writerow([cell(v) for v in (
            w.agent_slug, local["seconds"], local["local"], w.seconds, w.up, w.down_seconds, w.outage_kind,
            w.segment, w.segment_reason, w.gateway_address, w.gateway_loss_ratio,
            w.gateway_latency_p50_seconds, w.targets_sent, w.targets_received, w.targets_loss_ratio,
            w.targets_latency_p50_seconds, w.access_hop_address,
        )])
    return out.getvalue()


@pytest.mark.parametrize("fixture", ["slow", "outage"])
def test_the_windows_csv_is_the_same_from_the_documents_read_and_read_again(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    """The windows CSV of a document just built reuses the windows its build read (no second
    read of the records); a document without them (read back from its JSON) reads those
    windows alone again. Both are byte for byte the table of the whole history read again."""
    site, doc = request.getfixturevalue(fixture)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    def record_reads() -> list[str]:
        return [s for s in statements if "FROM records" in s]

    with site.engine.connect() as conn:
        before = _windows_csv_as_before(conn, doc)
        event.listen(site.engine, "before_cursor_execute", seen)
        try:
            reused = evidence_csv(doc, "windows", conn, TZ)
            reused_reads = record_reads()
            statements.clear()
            copied = evidence_csv(copy.deepcopy(doc), "windows", conn, TZ)
            copied_reads = record_reads()
            statements.clear()
            from_json = evidence_csv(json.loads(evidence_json(doc)), "windows", conn, TZ)
            json_reads = record_reads()
        finally:
            event.remove(site.engine, "before_cursor_execute", seen)
    assert before.count("\n") == 1 + doc["lan_evidence"]["summary"]["windows"] > 100
    assert reused == before and copied == before and from_json == before
    assert reused_reads == [] and copied_reads == []
    assert len(json_reads) == 1 and "connectivity" in json_reads[0]
