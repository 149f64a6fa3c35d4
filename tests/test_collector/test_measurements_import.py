"""`import measurements` / `export measurements`: both formats, bad rows by line, idempotence,
naive times in the school's zone across a DST change, and the round trip."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collector.cli import main
from collector.db.engine import open_engine, writer
from collector.db.migrate import upgrade
from collector.db.schema import connections
from collector.registry import add_board, add_school
from collector.results import load_results

pytestmark = pytest.mark.both_stores

FIXTURES = Path(__file__).parent.parent / "fixtures" / "measurements"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
def store(db_url: str) -> Iterator[Any]:
    url = db_url
    engine = open_engine(url)
    upgrade(engine)
    add_board(engine, "Board")
    school = add_school(engine, "board", "School")
    with writer(engine) as conn, conn.begin():
        for slug, role, networks in (("fibre", "main", ["198.51.100.0/24"]),
                                     ("4g", "backup", ["203.0.113.0/24"])):
            conn.execute(connections.insert().values(
                school_id=1, slug=slug, provider="P", provider_id="p", technology="fibre",
                role=role, networks=networks, created_at=time.time()))
    assert school == "school"
    yield url, engine
    engine.dispose()


def run(url: str, *argv: str) -> int:
    return main([*argv, "--db", url])


def stored(engine: Any) -> list[Any]:
    with engine.connect() as conn:
        return load_results(conn, 1, 0, time.time() + 86_400)


def test_our_format_naive_times_are_the_schools_clock_on_both_sides_of_the_dst_change(
        store: Any, capsys: Any) -> None:
    url, engine = store
    assert run(url, "import", "measurements", str(FIXTURES / "schoolnet.csv"), "--school", "school",
               "--connection", "fibre") == 0
    assert capsys.readouterr().out.strip() == (
        "imported 5, already there 0, skipped 0 [format schoolnet]")
    rows = stored(engine)
    # 10:00 in Amsterdam is 09:00 UTC before 29 March 2026 and 08:00 UTC after it.
    assert [datetime.fromtimestamp(r.measured_at, ZoneInfo("UTC")).strftime("%m-%d %H:%M")
            for r in rows] == ["03-27 09:00", "03-28 09:00", "03-30 08:00", "03-30 10:30", "03-31 08:15"]
    first = rows[0]
    assert first.download_bytes_per_second == pytest.approx(92.5e6 / 8)
    assert first.upload_bytes_per_second == pytest.approx(18.2e6 / 8)
    assert (first.latency_seconds, first.concurrent_devices, first.backend) == (0.0125, 140, "http")
    assert (first.source, first.connection_slug, first.attribution) == ("import", "fibre", "import")
    invalid = rows[3]
    assert (invalid.valid, invalid.upload_bytes_per_second, invalid.backend) == (False, None, "import")
    assert rows[4].backend == "ndt7" and rows[4].valid


def test_importing_the_same_file_again_adds_nothing(store: Any, capsys: Any) -> None:
    url, engine = store
    path = str(FIXTURES / "schoolnet.csv")
    assert run(url, "import", "measurements", path, "--school", "board/school") == 0
    assert run(url, "import", "measurements", path, "--school", "board/school") == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "imported 0, already there 5, skipped 0 [format schoolnet]")
    assert len(stored(engine)) == 5
    # Without a connection named, the two lines in force leave it to the main one.
    assert {(r.connection_slug, r.attribution) for r in stored(engine)} == {("fibre", "main")}


def test_speedtest_tracker_export_is_bits_per_second_and_failed_tests_are_skipped(
        store: Any, capsys: Any) -> None:
    url, engine = store
    assert run(url, "import", "measurements", str(FIXTURES / "speedtest-tracker-default.csv"),
               "--school", "school") == 0
    assert capsys.readouterr().out.strip() == (
        "imported 3, already there 0, skipped 1 (1 without speeds (a failed test)) "
        "[format speedtest-tracker]")
    rows = stored(engine)
    assert [r.download_bytes_per_second for r in rows] == [94213376 / 8, 61882904 / 8, 97031168 / 8]
    assert rows[0].latency_seconds == pytest.approx(0.011874)
    assert rows[0].backend == "speedtest"
    # "Created at" is Speedtest Tracker's clock, UTC by default.
    assert rows[0].measured_at == datetime(2025, 3, 3, 7, 45, 12, tzinfo=ZoneInfo("UTC")).timestamp()


def test_speedtest_tracker_public_address_attributes_each_row_to_its_line(store: Any, capsys: Any) -> None:
    url, engine = store
    assert run(url, "import", "measurements", str(FIXTURES / "speedtest-tracker-all-columns.csv"),
               "--school", "school", "--format", "speedtest-tracker", "--timezone", "Europe/Amsterdam") == 0
    first, second = stored(engine)
    assert (first.connection_slug, first.attribution) == ("fibre", "network 198.51.100.0/24")
    assert (second.connection_slug, second.attribution) == ("4g", "network 203.0.113.0/24")
    assert first.server == "Odido (52365)"
    assert first.measured_at == datetime(2025, 6, 16, 6, 30, 4, tzinfo=AMSTERDAM).timestamp()


def test_a_status_column_skips_what_did_not_complete(store: Any, tmp_path: Path, capsys: Any) -> None:
    url, engine = store
    path = tmp_path / "tracker.csv"
    path.write_text('ID,Service,Download,Upload,Ping,Status,"Created at"\n'
                    "1,ookla,80000000,16000000,10.1,completed,2025-03-03 07:00:00\n"
                    "2,ookla,0,0,,failed,2025-03-03 08:00:00\n"
                    "3,ookla,,,,skipped,2025-03-03 09:00:00\n")
    assert run(url, "import", "measurements", str(path), "--school", "school") == 0
    assert capsys.readouterr().out.strip() == (
        "imported 1, already there 0, skipped 2 (1 status failed, 1 status skipped) "
        "[format speedtest-tracker]")
    assert len(stored(engine)) == 1


def test_every_bad_row_is_reported_by_line_and_column_and_nothing_is_written(
        store: Any, tmp_path: Path, capsys: Any) -> None:
    url, engine = store
    path = tmp_path / "bad.csv"
    path.write_text("measured_at,download_mbps,upload_mbps,latency_ms,valid,concurrent_devices,connection\n"
                    "2026-03-02T10:00:00,90,18,12,true,10,\n"           # line 2: fine
                    "2026-03-02T11:00:00,fast,18,12,true,10,\n"         # 3: not a number
                    "yesterday,90,18,12,true,10,\n"                     # 4: not a time
                    "2026-03-29T02:30:00,90,18,12,true,10,\n"           # 5: skipped by DST
                    "2026-10-25T02:30:00,90,18,12,true,10,\n"           # 6: twice (DST)
                    "2026-03-02T12:00:00,,,12,maybe,-3,\n"              # 7: three errors
                    "2026-03-02T13:00:00,90,18,12,true,10,adsl\n")      # 8: no such line
    assert run(url, "import", "measurements", str(path), "--school", "school") == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors[:3] == [
        "schoolnet-collector: error: bad.csv:3: download_mbps: 'fast' is not a number",
        "schoolnet-collector: error: bad.csv:4: measured_at: 'yesterday' is not an ISO 8601 time "
        "(like 2026-03-02T10:15:00+01:00)",
        "schoolnet-collector: error: bad.csv:5: measured_at: '2026-03-29T02:30:00' does not exist in "
        "Europe/Amsterdam (the clocks went forward then): give the UTC offset"]
    assert errors[3].endswith("bad.csv:6: measured_at: '2026-10-25T02:30:00' happened twice in "
                              "Europe/Amsterdam (the clocks went back then): give the UTC offset")
    assert [e.split(": ", 2)[2] for e in errors[4:7]] == [
        "bad.csv:7: download_mbps: a row needs a download or an upload speed",
        "bad.csv:7: valid: 'maybe' is not true or false",
        "bad.csv:7: concurrent_devices: '-3' is not a whole number of zero or more"]
    assert errors[-1] == "schoolnet-collector: nothing imported (7 errors)"
    assert stored(engine) == []
    # The connection check runs once the rows are sound: the same file with only line 8 wrong.
    path.write_text("measured_at,download_mbps,connection\n2026-03-02T13:00:00,90,adsl\n")
    assert run(url, "import", "measurements", str(path), "--school", "school") == 2
    assert capsys.readouterr().err.splitlines()[0].endswith(
        "bad.csv:2: connection: the school has no connection 'adsl'")
    assert stored(engine) == []


def test_bad_headers_and_files_are_one_line_errors(store: Any, tmp_path: Path, capsys: Any) -> None:
    url, _ = store
    path = tmp_path / "odd.csv"
    path.write_text("when,speed\n2026-03-02,90\n")
    assert run(url, "import", "measurements", str(path), "--school", "school") == 2
    assert "odd.csv:1: header: not a known format" in capsys.readouterr().err
    path.write_text("measured_at,download_mbit\n2026-03-02T10:00:00,90\n")
    assert run(url, "import", "measurements", str(path), "--school", "school") == 2
    assert "odd.csv:1: download_mbit: not a column of this format" in capsys.readouterr().err
    assert run(url, "import", "measurements", str(tmp_path / "missing.csv"), "--school", "school") == 2
    assert run(url, "import", "measurements", str(FIXTURES / "schoolnet.csv"), "--school", "nope") == 2
    assert run(url, "import", "measurements", str(FIXTURES / "schoolnet.csv"), "--school", "school",
               "--timezone", "Mars/Olympus") == 2
    err = capsys.readouterr().err
    assert "no school 'nope'" in err and "--timezone: 'Mars/Olympus' is not a time zone" in err
    assert "Traceback" not in err


def test_export_then_import_is_a_round_trip(store: Any, tmp_path: Path, capsys: Any,
                                            new_store_url: Any) -> None:
    url, engine = store
    assert run(url, "import", "measurements", str(FIXTURES / "schoolnet.csv"), "--school", "school",
               "--connection", "4g") == 0
    out = tmp_path / "out.csv"
    assert run(url, "export", "measurements", "--school", "school", "--output", str(out)) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == ("measured_at,download_mbps,upload_mbps,latency_ms,server,backend,connection,"
                        "valid,concurrent_devices")
    assert lines[1] == "2026-03-27T10:00:00.000+01:00,92.5,18.2,12.5,https://speed.example.nl,http,4g,true,140"
    assert lines[3].startswith("2026-03-30T10:00:00.000+02:00,71.4,")
    # Into this store again: all there already. Into an empty one: the same rows.
    capsys.readouterr()
    assert run(url, "import", "measurements", str(out), "--school", "school") == 0
    assert capsys.readouterr().out.startswith("imported 0, already there 5")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(out, other / "out.csv")
    url2 = new_store_url("other")
    engine2 = open_engine(url2)
    upgrade(engine2)
    add_board(engine2, "Board")
    add_school(engine2, "board", "School")
    with writer(engine2) as conn, conn.begin():
        conn.execute(connections.insert().values(
            school_id=1, slug="4g", provider="P", provider_id="p", technology="4g",
            role="backup", networks=[], created_at=time.time()))
    assert run(url2, "import", "measurements", str(other / "out.csv"), "--school", "school") == 0
    assert [(r.measured_at, r.download_bytes_per_second, r.valid, r.connection_slug)
            for r in stored(engine2)] == [
        (r.measured_at, r.download_bytes_per_second, r.valid, r.connection_slug) for r in stored(engine)]
    engine2.dispose()


def test_export_since_a_date_starts_at_the_schools_midnight(store: Any, capsys: Any) -> None:
    url, _ = store
    assert run(url, "import", "measurements", str(FIXTURES / "schoolnet.csv"), "--school", "school") == 0
    capsys.readouterr()
    assert run(url, "export", "measurements", "--school", "school", "--since", "2026-03-30") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 3 and lines[1].startswith("2026-03-30T10:00:00.000+02:00")
    assert run(url, "export", "measurements", "--school", "school", "--since", "soon") == 2
