"""Rooms: created on first use, observed at ingest, graded with the collector's thresholds
on /metrics and in the `rooms` command; all through the real ingest path and store."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from prometheus_client import CollectorRegistry
from sqlalchemy import event, text, update
from support.records import batch, deliver, new_stream, record
from support.store import alembic_config, tables_and_indexes
from support.tools import console_script

from collector.cli import main
from collector.db.engine import open_engine, writer
from collector.db.migrate import upgrade
from collector.db.schema import holidays, schools
from collector.metrics import StoreCollector
from collector.registry import add_board, add_school, create_enrolment_code, enroll
from collector.rooms import DEFAULT_THRESHOLDS, Thresholds, median_nearest_rank
from collector.settings import CollectorSettings

pytestmark = pytest.mark.both_stores

SCHOOL = {"board": "test-board", "school": "test-school"}
DAY = 86400.0
GRADE_VALUE = {"video": 3, "browsing": 2, "poor": 1, "none": 0}
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def wifi(seq: int, stream: str, measured_at: float, signal: float | None = -60.0, *,
         room: str | None = "lokaal-1", room_name: str | None = None, connected: bool = True,
         **changes: Any) -> dict[str, Any]:
    """A `wifi` record of an agent placed in ``room`` (the agent setting `room`)."""
    payload: dict[str, Any] = {"source": "iw", "connected": connected, "interface": "wlan0",
                               "signal_dbm": signal if connected else None, "room": room,
                               "room_name": room_name}
    if "own_network" in changes:
        payload["own_network"] = changes.pop("own_network")
    rec = record(seq, stream, "wifi", payload=payload, **changes)
    rec["clock"]["wall_time_seconds"] = measured_at
    return rec


def survey(seq: int, stream: str, measured_at: float, signal: float | None, room: str,
           room_name: str, **extra: Any) -> dict[str, Any]:
    """One room of a survey walk: the median of its samples, as the agent uploads it."""
    payload: dict[str, Any] = {"source": "netsh", "connected": signal is not None,
                               "signal_dbm": signal, "room": room, "room_name": room_name,
                               "method": "walk", "samples": 5}
    payload.update(extra)
    rec = record(seq, stream, "survey", payload=payload)
    rec["clock"]["wall_time_seconds"] = measured_at
    return rec



def values(site, thresholds: Thresholds = DEFAULT_THRESHOLDS, room_expiry: float = 400 * DAY,  # type: ignore[no-untyped-def]
           now: float | None = None) -> Any:
    registry = CollectorRegistry()
    registry.register(StoreCollector(site.engine, 3600, (lambda: now) if now else time.time,
                                     thresholds=thresholds, room_expiry_seconds=room_expiry))
    return registry.get_sample_value


def room(name: str, **labels: str) -> dict[str, str]:
    return {**SCHOOL, "room": name, **labels}


def rooms_json(site, *args: str, capsys) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert main(["--db", site.db_url, "rooms", "--school", "test-school", "--json", *args]) == 0
    return dict(json.loads(capsys.readouterr().out))


# --- created on first use, named by the newest record ----------------------------------


def test_an_agents_wifi_record_creates_its_room(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    assert site.sql("SELECT count(*) FROM rooms") == [(0,)]
    # No room set: the agent is nowhere, and no room appears.
    deliver(site, wifi(1, stream, now - 120, room=None))
    assert site.sql("SELECT count(*) FROM rooms") == [(0,)]
    deliver(site, wifi(2, stream, now - 60, -61.0, room_name="Lokaal 1"))
    assert site.sql("SELECT slug, name FROM rooms") == [("lokaal-1", "Lokaal 1")]
    value = values(site)
    assert value("schoolnet_wifi_room_coverage_grade", room("lokaal-1")) == 3
    assert value("schoolnet_wifi_room_coverage_info", room("lokaal-1", grade="video", source="agent")) == 1
    assert value("schoolnet_wifi_room_signal_dbm", room("lokaal-1", source="agent")) == -61.0
    assert value("schoolnet_wifi_room_observation_timestamp_seconds",
                 room("lokaal-1", source="agent")) == now - 60
    assert value("schoolnet_wifi_room_observations_total", room("lokaal-1", source="agent")) == 1
    assert value("schoolnet_wifi_room_observations_total", room("lokaal-1", source="survey")) is None
    # A scan names the room too (and creates it) but grades nothing.
    scan = record(3, stream, "wifi_scan", payload={"interface": "wlan0", "source": "iw",
                                                  "triggered": True, "room": "lokaal-2"})
    deliver(site, scan)
    assert site.sql("SELECT slug, name FROM rooms ORDER BY slug") == [
        ("lokaal-1", "Lokaal 1"), ("lokaal-2", "lokaal-2")]
    assert values(site)("schoolnet_wifi_room_coverage_grade", room("lokaal-2")) is None


def test_a_survey_creates_its_room_and_a_room_belongs_to_its_school(site) -> None:  # type: ignore[no-untyped-def]
    laptop = site.enroll("laptop")
    add_school(site.engine, "test-board", "Other School")
    other = site.enroll("pi-other", "test-board/other-school")
    now = time.time()
    assert deliver(site, survey(1, new_stream(), now - 30, -70.5, "aula", "Aula"),
                   credential=laptop) == ["accepted"]
    # The same id at another school is another room.
    deliver(site, survey(1, new_stream(), now - 20, -50.0, "aula", "De aula"), credential=other)
    assert site.sql("SELECT s.slug, r.slug, r.name FROM rooms r JOIN schools s ON s.id = r.school_id "
                    "ORDER BY s.slug") == [("other-school", "aula", "De aula"),
                                           ("test-school", "aula", "Aula")]
    value = values(site)
    assert value("schoolnet_wifi_room_coverage_grade", room("aula")) == 2
    assert value("schoolnet_wifi_room_coverage_info", room("aula", grade="browsing", source="survey")) == 1
    assert value("schoolnet_wifi_room_signal_dbm", room("aula", source="survey")) == -70.5
    assert value("schoolnet_wifi_room_coverage_grade",
                 {"board": "test-board", "school": "other-school", "room": "aula"}) == 3
    # A survey is made by a person, not a scheduled probe: no probe series for it.
    assert value("schoolnet_probe_runs_total", {**SCHOOL, "agent": "laptop", "probe": "survey"}) is None


def test_only_the_schools_own_network_grades_a_room_and_a_bare_scan_survey_does(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    # An agent on a neighbour's network says nothing about the school's coverage.
    deliver(site, wifi(1, stream, now - 60, -50.0, own_network=False))
    assert values(site)("schoolnet_wifi_room_coverage_grade", room("lokaal-1")) is None
    # A survey from a bare scan has no connection but the strongest school access point's
    # signal: that is the room's coverage, not "none".
    deliver(site, survey(2, stream, now - 30, -70.0, "aula", "Aula", connected=False, scanned=True))
    assert values(site)("schoolnet_wifi_room_coverage_grade", room("aula")) == 2


def test_the_newest_record_names_the_room(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    # First named by nothing but its id; then an older record delivered late names it.
    deliver(site, wifi(1, stream, now - 500))
    assert site.sql("SELECT name FROM rooms") == [("lokaal-1",)]
    deliver(site, wifi(2, stream, now - 900, room_name="Lokaal 1"))
    assert site.sql("SELECT name FROM rooms") == [("Lokaal 1",)]
    # A newer name wins; one record without a name, or with a blank one, renames nothing.
    deliver(site, wifi(3, stream, now - 400, room_name="Lokaal 1 (Bèta)"), wifi(4, stream, now - 300),
            wifi(5, stream, now - 200, room_name="   "))
    assert site.sql("SELECT name FROM rooms") == [("Lokaal 1 (Bèta)",)]
    # Inside a batch the newest name wins, whatever the order of the records.
    deliver(site, survey(6, stream, now - 100, -60.0, "lokaal-1", "Lokaal 1B"),
            wifi(7, stream, now - 150, room_name="Tussendoor"))
    assert site.sql("SELECT name FROM rooms") == [("Lokaal 1B",)]
    # An older record delivered late does not rename it back.
    deliver(site, wifi(8, stream, now - 450, room_name="Oud lokaal"))
    assert site.sql("SELECT name FROM rooms") == [("Lokaal 1B",)]
    assert site.sql("SELECT count(*) FROM rooms") == [(1,)]


# --- observations: accepted records only, once each ------------------------------------


def test_a_duplicate_never_counts_twice_and_failed_records_observe_nothing(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    first = [wifi(1, stream, now - 300, -60.0), wifi(2, stream, now - 240, -62.0)]
    assert deliver(site, *first) == ["accepted"] * 2
    assert deliver(site, *first) == ["duplicate"] * 2  # the agent never heard the answer
    again = wifi(3, stream, now - 180, -64.0)
    assert deliver(site, again, again) == ["accepted", "duplicate"]
    failed = wifi(4, stream, now - 120, ok=False, error="iw: command failed: No such device (-19)")
    failed_bare = record(5, stream, "wifi", ok=False, error="no wireless interface", payload={})
    assert deliver(site, failed, failed_bare) == ["accepted"] * 2
    # Connected, but the tool gave no signal: no grade can be made, so no observation.
    assert deliver(site, wifi(6, stream, now - 90, None)) == ["accepted"]
    assert site.sql("SELECT count(*) FROM room_observations") == [(3,)]
    value = values(site)
    assert value("schoolnet_wifi_room_observations_total", room("lokaal-1", source="agent")) == 3
    assert value("schoolnet_wifi_room_signal_dbm", room("lokaal-1", source="agent")) == -64.0


def test_a_late_observation_counts_but_replaces_nothing_newer(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    deliver(site, wifi(1, stream, now - 60, -75.0))
    deliver(site, wifi(2, stream, now - 3 * DAY, -50.0))  # after an outage, with its own clock
    value = values(site)
    assert value("schoolnet_wifi_room_signal_dbm", room("lokaal-1", source="agent")) == -75.0
    assert value("schoolnet_wifi_room_coverage_grade", room("lokaal-1")) == 1
    assert value("schoolnet_wifi_room_observations_total", room("lokaal-1", source="agent")) == 2
    assert value("schoolnet_wifi_room_observation_timestamp_seconds",
                 room("lokaal-1", source="agent")) == now - 60


def test_the_grade_comes_from_the_newest_observation_of_any_source(site) -> None:  # type: ignore[no-untyped-def]
    laptop = site.enroll("laptop")
    stream = new_stream()
    now = time.time()
    deliver(site, wifi(1, stream, now - 600, -80.0))
    laptop_stream = new_stream()
    deliver(site, survey(1, laptop_stream, now - 300, -55.0, "lokaal-1", "Lokaal 1"), credential=laptop)
    value = values(site)
    assert value("schoolnet_wifi_room_coverage_grade", room("lokaal-1")) == 3
    assert value("schoolnet_wifi_room_coverage_info", room("lokaal-1", grade="video", source="survey")) == 1
    assert value("schoolnet_wifi_room_coverage_info", room("lokaal-1", grade="poor", source="agent")) is None
    assert value("schoolnet_wifi_room_signal_dbm", room("lokaal-1", source="agent")) == -80.0
    assert value("schoolnet_wifi_room_signal_dbm", room("lokaal-1", source="survey")) == -55.0
    # The agent's next reading is newer still: it grades the room again.
    deliver(site, wifi(2, stream, now - 120, -70.0))
    assert values(site)("schoolnet_wifi_room_coverage_grade", room("lokaal-1")) == 2
    # Its Wi-Fi disconnected (a wired Pi's idle radio): no observation, the grade stands.
    deliver(site, wifi(3, stream, now - 90, connected=False))
    value = values(site)
    assert value("schoolnet_wifi_room_coverage_grade", room("lokaal-1")) == 2
    assert value("schoolnet_wifi_room_observations_total", room("lokaal-1", source="agent")) == 2
    # A survey that found no Wi-Fi at all: none, and no signal series for that source (not a
    # made-up number).
    deliver(site, survey(2, laptop_stream, now - 60, None, "lokaal-1", "Lokaal 1"), credential=laptop)
    value = values(site)
    assert value("schoolnet_wifi_room_coverage_grade", room("lokaal-1")) == 0
    assert value("schoolnet_wifi_room_coverage_info", room("lokaal-1", grade="none", source="survey")) == 1
    assert value("schoolnet_wifi_room_signal_dbm", room("lokaal-1", source="survey")) is None
    assert value("schoolnet_wifi_room_observations_total", room("lokaal-1", source="survey")) == 2


def test_an_agent_clock_ahead_counts_as_now(site) -> None:  # type: ignore[no-untyped-def]
    """A laptop whose clock says 2035 must not keep the room's grade on its survey for years."""
    laptop = site.enroll("laptop")
    stream = new_stream()
    now = time.time()
    deliver(site, survey(1, new_stream(), now + 10 * 365 * DAY, -55.0, "lokaal-1", "Lokaal 1"),
            credential=laptop)
    value = values(site)
    assert value("schoolnet_wifi_room_observation_timestamp_seconds", room("lokaal-1", source="survey")) <= (
        time.time())
    time.sleep(0.01)
    deliver(site, wifi(1, stream, time.time(), -80.0))
    assert values(site)("schoolnet_wifi_room_coverage_grade", room("lokaal-1")) == 1


# --- grades: thresholds at their edges, and changed ------------------------------------


EDGES = [("at-video", -67.0, "video"), ("below-video", -67.1, "browsing"),
         ("at-browsing", -72.0, "browsing"), ("below-browsing", -72.1, "poor"),
         ("disconnected", None, "none")]


def edge_records(stream: str, now: float) -> list[dict[str, Any]]:
    """One record per edge: an agent's reading, or for "no Wi-Fi" a survey that found none."""
    return [wifi(seq, stream, now - 60, signal, room=name) if signal is not None
            else survey(seq, stream, now - 60, None, name, name)
            for seq, (name, signal, _) in enumerate(EDGES, start=1)]


def test_grades_at_the_threshold_edges(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    deliver(site, *edge_records(stream, now))
    value = values(site)
    for name, signal, expected in EDGES:
        source = "agent" if signal is not None else "survey"
        assert value("schoolnet_wifi_room_coverage_grade", room(name)) == GRADE_VALUE[expected], name
        assert value("schoolnet_wifi_room_coverage_info", room(name, grade=expected, source=source)) == 1
    assert value("schoolnet_wifi_coverage_threshold_dbm", {"grade": "video"}) == -67.0
    assert value("schoolnet_wifi_coverage_threshold_dbm", {"grade": "browsing"}) == -72.0


def test_changed_thresholds_regrade_what_is_stored(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    deliver(site, *edge_records(stream, now))
    stricter = values(site, Thresholds(video_dbm=-60.0, browsing_dbm=-67.0))
    expected = {"at-video": "browsing", "below-video": "poor", "at-browsing": "poor",
                "below-browsing": "poor", "disconnected": "none"}
    for name, grade in expected.items():
        assert stricter("schoolnet_wifi_room_coverage_grade", room(name)) == GRADE_VALUE[grade], name
    # From the settings, as `serve` builds the page: environment names and all.
    from collector.app import create_app

    settings = CollectorSettings(db=site.db_url, wifi_video_dbm=-60, wifi_browsing_dbm=-67)
    app = create_app(settings)
    try:
        registry = app.state.metrics.registry
        assert registry.get_sample_value("schoolnet_wifi_room_coverage_grade", room("at-video")) == 2
        assert registry.get_sample_value("schoolnet_wifi_coverage_threshold_dbm", {"grade": "video"}) == -60
    finally:
        app.state.committer.close()
        app.state.engine.dispose()


def test_settings_refuse_thresholds_the_wrong_way_round(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("SCHOOLNET_WIFI_VIDEO_DBM", "-70")
    monkeypatch.setenv("SCHOOLNET_WIFI_BROWSING_DBM", "-65")
    with pytest.raises(ValidationError, match="must be below wifi_video_dbm"):
        CollectorSettings()
    monkeypatch.setenv("SCHOOLNET_WIFI_BROWSING_DBM", "-70")  # equal: no browsing band at all
    with pytest.raises(ValidationError, match="must be below wifi_video_dbm"):
        CollectorSettings()
    monkeypatch.setenv("SCHOOLNET_WIFI_BROWSING_DBM", "-75")
    monkeypatch.setenv("SCHOOLNET_ROOM_EXPIRY", "90d")
    settings = CollectorSettings()
    assert (settings.wifi_video_dbm, settings.wifi_browsing_dbm, settings.room_expiry) == (
        -70, -75, 90 * DAY)


# --- expiry, privacy, cost ---------------------------------------------------------------


def test_a_room_leaves_the_page_when_its_newest_observation_is_old(site) -> None:  # type: ignore[no-untyped-def]
    laptop = site.enroll("laptop")
    now = time.time()
    deliver(site, survey(1, new_stream(), now - 100 * DAY, -60.0, "gym", "Gym"),
            survey(2, new_stream(), now - 20 * DAY, -70.0, "aula", "Aula"), credential=laptop)
    deliver(site, wifi(1, new_stream(), now - 60, -65.0, room="aula"))
    value = values(site, room_expiry=30 * DAY)
    assert value("schoolnet_wifi_room_coverage_grade", room("gym")) is None
    assert value("schoolnet_wifi_room_observations_total", room("gym", source="survey")) is None
    # A room on the page shows every source, an older one too.
    assert value("schoolnet_wifi_room_coverage_grade", room("aula")) == 3
    assert value("schoolnet_wifi_room_signal_dbm", room("aula", source="survey")) == -70.0
    # The default keeps a room surveyed once a year.
    assert values(site)("schoolnet_wifi_room_coverage_grade", room("gym")) == 3
    # Rooms belong to the school, not to an agent: the laptop's silence takes nothing away.
    assert values(site, now=now + 2 * 3600)("schoolnet_wifi_room_coverage_grade", room("gym")) == 3


def test_a_survey_may_name_the_schools_access_point_but_no_other_mac(site) -> None:  # type: ignore[no-untyped-def]
    laptop = site.enroll("laptop")
    stream = new_stream()
    now = time.time()
    named_ap = survey(1, stream, now - 60, -58.0, "aula", "Aula", bssid="02:11:22:33:44:55",
                      ssid="SchoolNet", scanned=True,
                      access_points=[{"bssid": "02:11:22:33:44:66", "ssid": "SchoolNet",
                                      "signal_dbm": -66.0}],
                      channels=[{"band": "2.4GHz", "channel": 6, "networks": 3}], other_networks=3)
    leaky = survey(2, stream, now - 50, -58.0, "gym", "Gym", ssid="DIRECT-02:aa:bb:cc:dd:ee")
    answer = site.client.post("/api/v1/ingest", json=batch(named_ap, leaky),
                              headers={"Authorization": f"Bearer {laptop}"})
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert "MAC-shaped" in results[1]["reason"] and "payload.ssid" in results[1]["reason"]
    # The rejected record made no room.
    assert site.sql("SELECT slug FROM rooms") == [("aula",)]
    assert "02:aa:bb" not in site.metrics().text


def test_a_scrape_reads_no_history(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    deliver(site, *[wifi(seq, stream, now - seq * 60, -60.0 - seq) for seq in range(1, 40)])
    statements: list[str] = []

    def keep(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement != "BEGIN":  # the store's own, where a transaction starts
            statements.append(statement)

    event.listen(site.engine, "before_cursor_execute", keep)
    try:
        assert values(site)("schoolnet_wifi_room_observations_total", room("lokaal-1", source="agent")) == 39
    finally:
        event.remove(site.engine, "before_cursor_execute", keep)
    # Eight before rooms, one for them, two for the active incidents.
    assert len(statements) == 11, statements
    assert not [s for s in statements if "room_observations" in s]


def test_median_by_nearest_rank() -> None:
    assert median_nearest_rank([]) is None
    assert median_nearest_rank([(-60.0, 1)]) == -60.0
    # Four readings: rank ceil(4 / 2) = 2 from the bottom, a reading that was made.
    assert median_nearest_rank([(-60.0, 1), (-65.0, 1), (-70.0, 1), (-80.0, 1)]) == -70.0
    assert median_nearest_rank([(-50.0, 3), (-90.0, 2)]) == -50.0
    assert median_nearest_rank([(-50.0, 2), (-90.0, 2)]) == -90.0


# --- the `rooms` command -------------------------------------------------------------------


def _history(site) -> float:  # type: ignore[no-untyped-def]
    """Lokaal 1: an agent's readings this week and one 40 days ago, and a survey that found no
    Wi-Fi there; Aula: one survey."""
    laptop = site.enroll("laptop")
    stream = new_stream()
    now = time.time()
    deliver(site, wifi(1, stream, now - 40 * DAY, -90.0, room_name="Lokaal 1"),
            wifi(2, stream, now - 5 * DAY, -80.0), wifi(3, stream, now - 4 * DAY, -65.0),
            wifi(5, stream, now - 2 * DAY, -70.0), wifi(6, stream, now - 600, -60.0))
    surveys = new_stream()
    deliver(site, survey(1, surveys, now - DAY, -71.0, "aula", "Aula (oud gebouw)"),
            survey(2, surveys, now - 3 * DAY, None, "lokaal-1", "Lokaal 1"), credential=laptop)
    return now


def test_rooms_as_json(site, capsys) -> None:  # type: ignore[no-untyped-def]
    now = _history(site)
    report = rooms_json(site, capsys=capsys)
    assert (report["board"], report["school"]) == ("test-board", "test-school")
    assert report["thresholds_dbm"] == {"video": -67.0, "browsing": -72.0}
    assert abs(report["until_seconds"] - report["since_seconds"] - 30 * DAY) < 1e-6
    aula, lokaal = report["rooms"]
    assert aula == {"id": "aula", "name": "Aula (oud gebouw)", "grade": "browsing", "signal_dbm": -71.0,
                    "source": "survey", "measured_at_seconds": now - DAY, "observations": 1,
                    "signal_median_dbm": -71.0,
                    "grade_shares": {"video": 0.0, "browsing": 1.0, "poor": 0.0, "none": 0.0}}
    assert lokaal["name"] == "Lokaal 1" and lokaal["grade"] == "video"
    assert (lokaal["signal_dbm"], lokaal["source"]) == (-60.0, "agent")
    # Within 30 days: -80, -65, none, -70, -60; the median of the four signals by nearest rank.
    assert lokaal["observations"] == 5
    assert lokaal["signal_median_dbm"] == -70.0
    assert lokaal["grade_shares"] == {"video": 0.4, "browsing": 0.2, "poor": 0.2, "none": 0.2}
    # A longer period takes the old reading in; a school given as BOARD/SCHOOL is the same one.
    assert main(["--db", site.db_url, "rooms", "--school", "test-board/test-school", "--since", "60d",
                 "--json"]) == 0
    longer = json.loads(capsys.readouterr().out)["rooms"][1]
    # -90, -80, -70, -65, -60: rank 3.
    assert (longer["observations"], longer["signal_median_dbm"]) == (6, -70.0)
    assert longer["grade_shares"]["poor"] == 2 / 6


def test_rooms_regrades_with_the_thresholds_set(site, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    _history(site)
    monkeypatch.setenv("SCHOOLNET_WIFI_VIDEO_DBM", "-70")
    monkeypatch.setenv("SCHOOLNET_WIFI_BROWSING_DBM", "-75")
    report = rooms_json(site, capsys=capsys)
    aula, lokaal = report["rooms"]
    assert aula["grade"] == "browsing"  # -71 is below -70, above -75
    assert lokaal["grade_shares"] == {"video": 0.6, "browsing": 0.0, "poor": 0.2, "none": 0.2}


def test_rooms_as_a_table(site, capsys) -> None:  # type: ignore[no-untyped-def]
    _history(site)
    add_school(site.engine, "test-board", "Empty School")
    assert main(["--db", site.db_url, "rooms", "--school", "test-school"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("test-board/test-school: 2 room(s);")
    assert "last 30 days" in lines[0] and "video >= -67 dBm, browsing >= -72 dBm" in lines[0]
    assert lines[1].split() == ["ROOM", "NAME", "GRADE", "SIGNAL", "SOURCE", "NEWEST",
                                "OBSERVATIONS", "MEDIAN", "VIDEO", "BROWSING", "POOR", "NONE"]
    aula, lokaal = lines[2], lines[3]
    assert aula.startswith("aula ") and "Aula (oud gebouw)" in aula and " browsing " in aula
    assert "-71 dBm" in aula and " survey " in aula and aula.split()[-4:] == ["0%", "100%", "0%", "0%"]
    assert lokaal.split()[:4] == ["lokaal-1", "Lokaal", "1", "video"]
    assert lokaal.split()[-4:] == ["40%", "20%", "20%", "20%"]
    # The columns line up: every row's grade starts where the header's does.
    column = lines[1].index("GRADE")
    assert aula[column:].startswith("browsing") and lokaal[column:].startswith("video")
    assert main(["--db", site.db_url, "rooms", "--school", "empty-school"]) == 0
    assert "no rooms yet" in capsys.readouterr().out


def test_rooms_without_observations_in_the_period_say_so(site, capsys) -> None:  # type: ignore[no-untyped-def]
    """A room only a scan named, and one observed before the period: no shares made up."""
    stream = new_stream()
    now = time.time()
    deliver(site, record(1, stream, "wifi_scan", payload={"interface": "wlan0", "source": "iw",
                                                         "triggered": True, "room": "gang"}),
            wifi(2, stream, now - 40 * DAY, -60.0, room="kelder"))
    gang, kelder = rooms_json(site, capsys=capsys)["rooms"]
    assert gang == {"id": "gang", "name": "gang", "grade": None, "signal_dbm": None, "source": None,
                    "measured_at_seconds": None, "observations": 0, "signal_median_dbm": None,
                    "grade_shares": None}
    # Its grade now is its newest observation, older than the period; the period has none.
    assert (kelder["grade"], kelder["observations"], kelder["grade_shares"]) == ("video", 0, None)
    assert main(["--db", site.db_url, "rooms", "--school", "test-school"]) == 0
    gang_line, kelder_line = capsys.readouterr().out.splitlines()[2:]
    assert gang_line.split() == ["gang", "gang", "-", "-", "-", "-", "0", "-", "-", "-", "-", "-"]
    assert kelder_line.split()[-6:] == ["0", "-", "-", "-", "-", "-"]


def test_rooms_survives_any_clock_an_agent_reported(site, capsys) -> None:  # type: ignore[no-untyped-def]
    """A record the collector accepted never makes the command fail: a wall clock far
    outside the calendar (-1e12 s is long before year 1) is shown in seconds; a period longer
    than the epoch is all of it, and the JSON stays JSON."""
    stream = new_stream()
    deliver(site, wifi(1, stream, 1e12, -60.0), wifi(2, stream, -1e12, -61.0, room="lokaal-2"))
    assert main(["--db", site.db_url, "rooms", "--school", "test-school"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The clock ahead counts as the time it arrived; the one far behind is shown as it is.
    assert lines[2].startswith("lokaal-1 ") and " 1000000000000 s " not in lines[2]
    assert lines[3].startswith("lokaal-2 ") and " -1000000000000 s " in lines[3]

    def strict_json(text: str) -> Any:
        return json.loads(text, parse_constant=lambda constant: pytest.fail(f"not JSON: {constant}"))

    for since in ("99999999d", "9" * 400 + "d"):
        assert main(["--db", site.db_url, "rooms", "--school", "test-school", "--since", since,
                     "--json"]) == 0
        report = strict_json(capsys.readouterr().out)
        assert report["since_seconds"] == 0.0
        assert [room["observations"] for room in report["rooms"]] == [1, 0]
        assert main(["--db", site.db_url, "rooms", "--school", "test-school", "--since", since]) == 0
        assert "(since 1970-01-01 00:00 UTC)" in capsys.readouterr().out


def test_rooms_table_prints_no_control_characters_of_a_name(site, capsys) -> None:  # type: ignore[no-untyped-def]
    """A room's name is what an agent or a person typed: an escape sequence or a line
    break in it must neither drive the admin's terminal nor break the table."""
    deliver(site, wifi(1, new_stream(), time.time() - 60, -60.0, room_name="Lokaal\x1b[2J 1\nB\u009b"))
    assert main(["--db", site.db_url, "rooms", "--school", "test-school"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u009b" not in out
    lines = out.splitlines()
    assert len(lines) == 3 and lines[2].split()[:3] == ["lokaal-1", "Lokaal?[2J", "1?B?"]
    # The JSON keeps the name as it was sent (escaped by JSON itself).
    assert rooms_json(site, capsys=capsys)["rooms"][0]["name"] == "Lokaal\x1b[2J 1\nB\u009b"


def _a_recent(weekday: int) -> date:
    """The local date (Europe/Amsterdam, the collector's default zone) of the last ISO
    ``weekday`` at least 3 days ago: inside the default 30-day period, and in the past."""
    day = datetime.now(AMSTERDAM).date() - timedelta(days=3)
    while day.isoweekday() != weekday:
        day -= timedelta(days=1)
    return day


def _local(day: date, clock: str) -> float:
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime.combine(day, dt_time(hours, minutes), AMSTERDAM).timestamp()


def _school_day_readings(site, start: str) -> date:  # type: ignore[no-untyped-def]
    """Lokaal 1 on a Wednesday around school hours ``start``-15:30, and on a Saturday midday."""
    wednesday = _a_recent(3)
    saturday = wednesday - timedelta(days=4)
    minute_before = f"{start[:3]}{int(start[3:]) - 1:02d}"
    stream = new_stream()
    # The same signal a minute before the start: one group of readings with 08:40 (below).
    deliver(site, wifi(1, stream, _local(wednesday, minute_before), -60.0),  # outside
            wifi(2, stream, _local(wednesday, start), -60.0),                # school: the start is in
            wifi(3, stream, _local(wednesday, "12:00"), -65.0),              # school
            wifi(4, stream, _local(wednesday, "15:29"), -70.0),              # school
            wifi(5, stream, _local(wednesday, "15:30"), -75.0),              # outside: the end is not
            wifi(6, stream, _local(saturday, "12:00"), -50.0),               # outside: no school day
            wifi(7, stream, _local(wednesday, "20:00"), -90.0))              # outside, the newest
    return wednesday


@pytest.mark.parametrize("start", ["08:30", "08:40"])
def test_rooms_in_school_hours_and_outside(site, capsys, start: str) -> None:  # type: ignore[no-untyped-def]
    """08:30 local is a quarter hour in UTC: every group of readings lies on one side. 08:40
    is not: 08:39 and 08:40 (the same signal) share a group, which is then read reading by
    reading."""
    if start != "08:30":
        with writer(site.engine) as conn, conn.begin():
            conn.execute(update(schools).values(hours_start=start))
    _school_day_readings(site, start)
    everything = rooms_json(site, capsys=capsys)
    assert everything["hours"] == "all" and everything["rooms"][0]["observations"] == 7
    school = rooms_json(site, "--hours", "school", capsys=capsys)
    assert school["hours"] == "school"
    lokaal = school["rooms"][0]
    # The grade now is the newest reading of any hour (20:00, -90 dBm), not of the hours asked.
    assert (lokaal["grade"], lokaal["signal_dbm"]) == ("poor", -90.0)
    # -60, -65, -70: the median by nearest rank is rank 2.
    assert (lokaal["observations"], lokaal["signal_median_dbm"]) == (3, -65.0)
    assert lokaal["grade_shares"] == {"video": 2 / 3, "browsing": 1 / 3, "poor": 0.0, "none": 0.0}
    outside = rooms_json(site, "--hours", "outside", capsys=capsys)["rooms"][0]
    # -90, -75, -60, -50: rank 2.
    assert (outside["observations"], outside["signal_median_dbm"]) == (4, -75.0)
    assert outside["grade_shares"] == {"video": 0.5, "browsing": 0.0, "poor": 0.5, "none": 0.0}
    assert main(["--db", site.db_url, "rooms", "--school", "test-school", "--hours", "outside"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "(since " in lines[0] and ") outside school hours;" in lines[0]
    assert lines[2].split()[-7:] == ["4", "-75", "dBm", "50%", "0%", "50%", "0%"]


def test_rooms_on_a_holiday_have_no_school_hours(site, capsys) -> None:  # type: ignore[no-untyped-def]
    wednesday = _school_day_readings(site, "08:30")
    with writer(site.engine) as conn, conn.begin():
        conn.execute(holidays.insert().values(calendar="all", starts_on=wednesday.isoformat(),
                                              ends_on=wednesday.isoformat(), name="Studiedag",
                                              created_at=0.0))
    lokaal = rooms_json(site, "--hours", "school", capsys=capsys)["rooms"][0]
    assert (lokaal["grade"], lokaal["observations"], lokaal["grade_shares"]) == ("poor", 0, None)
    assert rooms_json(site, "--hours", "outside", capsys=capsys)["rooms"][0]["observations"] == 7


def test_rooms_hours_follow_the_schools_time_zone(site, capsys) -> None:  # type: ignore[no-untyped-def]
    """10:00 on a Wednesday in Tokyo is 02:00 or 03:00 in Amsterdam (the collector's zone)."""
    tokyo = ZoneInfo("Asia/Tokyo")
    wednesday = _a_recent(3)
    stream = new_stream()
    deliver(site, wifi(1, stream, datetime.combine(wednesday, dt_time(10, 0), tokyo).timestamp(), -60.0),
            wifi(2, stream, datetime.combine(wednesday, dt_time(8, 29), tokyo).timestamp(), -61.0))
    assert rooms_json(site, "--hours", "school", capsys=capsys)["rooms"][0]["observations"] == 0
    with writer(site.engine) as conn, conn.begin():
        conn.execute(update(schools).values(timezone="Asia/Tokyo"))
    in_tokyo = rooms_json(site, "--hours", "school", capsys=capsys)["rooms"][0]
    assert (in_tokyo["observations"], in_tokyo["signal_median_dbm"]) == (1, -60.0)


def test_rooms_refuses_an_unknown_school_and_bad_input_in_one_line(tmp_path: Path) -> None:
    env = {"SCHOOLNET_DB": f"sqlite:///{tmp_path / 'c.db'}", "PATH": "/usr/bin:/bin"}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([console_script("schoolnet-collector"), *args], env={**env, **extra},
                              capture_output=True, text=True, timeout=60, check=False)

    for result, code, message in (
            (run("rooms", "--school", "nowhere"), 1, "no school 'nowhere'"),
            (run("rooms", "--school", "nowhere", "--since", "soon"), 2, "--since"),
            (run("rooms", "--school", "nowhere", "--since", "0d"), 2, "--since must be longer"),
            (run("rooms", "--school", "nowhere", SCHOOLNET_WIFI_VIDEO_DBM="-80"), 2,
             "wifi_browsing_dbm: -72 dBm must be below wifi_video_dbm (-80 dBm"),
            (run("serve", SCHOOLNET_WIFI_BROWSING_DBM="-60"), 2, "must be below wifi_video_dbm"),
            (run("rooms"), 2, "--school")):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == code, (result.args, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("schoolnet-collector") and message in lines[0], lines
        assert result.stdout == ""
    assert "--since" in run("rooms", "--help").stdout


# --- the migration from 0003 ---------------------------------------------------------------




def test_a_store_upgraded_from_0003_keeps_its_records_takes_rooms_and_downgrades(
        empty_store_url: str) -> None:
    engine = open_engine(empty_store_url)
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), "0003")  # the store as the previous release left it
        connection.commit()
    add_board(engine, "Test Board")
    add_school(engine, "test-board", "Test School")
    enroll(engine, create_enrolment_code(engine, "test-school", 1, 60), "pi", "0.1.0")
    stream = new_stream()
    now = time.time()
    old = record(1, stream)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO records (agent_id, stream_id, seq, kind, ok, error, measured_at, "
            "boot_id, since_boot_seconds, received_at, payload) "
            "VALUES (1, :stream, :seq, :kind, :ok, :error, :at, 'b', 0, :now, :payload)"),
            {"stream": old["stream_id"], "seq": old["seq"], "kind": old["kind"], "ok": old["ok"],
             "error": old["error"], "at": old["clock"]["wall_time_seconds"], "now": now,
             "payload": json.dumps(old["payload"])})
    upgrade(engine)

    def count(sql: str) -> int:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql(sql).scalar() or 0)

    # Before 0004 the kinds naming rooms were refused as unknown: nothing to start from.
    assert count("SELECT count(*) FROM rooms") == 0
    assert count("SELECT count(*) FROM records") == 1
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), "0003")
        connection.commit()
        tables = tables_and_indexes(connection)
    assert not {"rooms", "room_observations", "room_latest", "ix_room_observations_room_time"} & tables
    assert {"connectivity_outage_totals", "ix_records_outage_end"} <= tables
    assert count("SELECT count(*) FROM records") == 1
    upgrade(engine)  # and up again
    assert count("SELECT count(*) FROM rooms") == 0
    engine.dispose()
