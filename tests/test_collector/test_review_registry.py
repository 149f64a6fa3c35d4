"""Review of issue 7's imports: hostile and sloppy contracts CSVs, measurement CSVs and
iCalendar files, the admin API's limits, and attribution moved by the real commands.

Each test names a defect found in review (or guards a behaviour the review checked):
bad input must give a line naming file, row and column, a non-zero exit or a 4xx, and
leave the store as it was.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from support.records import at, deliver, new_stream, record

from collector.cli import main
from collector.ical import IcalError, parse_holidays
from collector.registry import create_admin_token

pytestmark = pytest.mark.both_stores

HEADER = ("board,school,connection,provider,technology,contract_start,"
          "download_advertised_mbps,upload_advertised_mbps")
ROW = "test-board,test-school,glas,KPN,fibre,2025-01-01,100,100"


def run(site: Any, *argv: str) -> int:
    return main([*argv, "--db", site.db_url])


def import_contracts(site: Any, tmp_path: Path, text: str | bytes) -> int:
    path = tmp_path / "contracts.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return run(site, "import", "contracts", str(path))


def count(site: Any, table: str) -> int:
    return int(site.sql(f"SELECT count(*) FROM {table}")[0][0])


# --- the contracts CSV --------------------------------------------------------------------------


@pytest.mark.parametrize(("extra_column", "cell", "column"), [
    ("pupils", "²", "pupils"),  # str.isdigit() took it, int() then failed without a line
    ("pupils", "9" * 30, "pupils"),  # overflowed SQLite's integer: an OverflowError
    ("video_participants", "\u0663\u0660", "video_participants"),  # Arabic-Indic 30
])
def test_a_bad_count_is_reported_by_line_and_column(site: Any, tmp_path: Path, capsys: Any,
                                                    extra_column: str, cell: str, column: str) -> None:
    code = import_contracts(site, tmp_path, f"{HEADER},{extra_column}\n{ROW},{cell}\n")
    err = capsys.readouterr().err
    assert code != 0
    assert f"contracts.csv:2: {column}:" in err, err
    assert count(site, "connections") == 0


def test_a_speed_too_long_to_be_a_float_is_refused_not_stored_as_infinity(
        site: Any, tmp_path: Path, capsys: Any) -> None:
    row = ROW.replace(",100,100", f",{'9' * 400},100")
    assert import_contracts(site, tmp_path, f"{HEADER}\n{row}\n") != 0
    assert "contracts.csv:2: download_advertised_mbps:" in capsys.readouterr().err
    assert count(site, "contracts") == 0


def test_digits_of_other_scripts_are_not_a_speed(site: Any, tmp_path: Path, capsys: Any) -> None:
    row = ROW.replace(",100,100", ",\u0661\u0660\u0660,100")  # Arabic-Indic 100
    assert import_contracts(site, tmp_path, f"{HEADER}\n{row}\n") != 0
    assert "contracts.csv:2: download_advertised_mbps:" in capsys.readouterr().err


def test_a_nul_byte_in_a_text_cell_is_refused(site: Any, tmp_path: Path, capsys: Any) -> None:
    # SQLite keeps it; PostgreSQL refuses text with NUL, so one store would take the file
    # and the other fail half-way with a driver error.
    row = ROW.replace("KPN", "KP\x00N")
    assert import_contracts(site, tmp_path, f"{HEADER}\n{row}\n") != 0
    assert "contracts.csv:2: provider: holds a control character" in capsys.readouterr().err
    assert count(site, "connections") == 0


@pytest.mark.parametrize("written", ["2001:DB8::/48", "2001:0db8:0000::/48", "2001:db8::/48"])
def test_an_ipv6_prefix_in_any_written_form_is_a_network_not_host_bits(
        site: Any, tmp_path: Path, written: str) -> None:
    # Compared as text, "2001:DB8::/48" != "2001:db8::/48" was taken for host bits set.
    assert import_contracts(site, tmp_path, f"{HEADER},networks\n{ROW},{written}\n") == 0
    (networks,), = site.sql("SELECT networks FROM connections")
    assert networks == '["2001:db8::/48"]'


def test_host_bits_are_still_refused(site: Any, tmp_path: Path, capsys: Any) -> None:
    assert import_contracts(site, tmp_path, f"{HEADER},networks\n{ROW},2001:db8::1/48\n") != 0
    assert "has host bits set; did you mean 2001:db8::/48?" in capsys.readouterr().err


def test_networks_separated_by_commas_as_sheets_write_them(site: Any, tmp_path: Path) -> None:
    cell = '"192.0.2.0/28, 2001:db8::/48"'
    assert import_contracts(site, tmp_path, f"{HEADER},networks\n{ROW},{cell}\n") == 0
    (networks,), = site.sql("SELECT networks FROM connections")
    assert networks == '["192.0.2.0/28", "2001:db8::/48"]'


def test_a_windows_1252_sheet_is_refused_with_save_as_utf8(site: Any, tmp_path: Path,
                                                           capsys: Any) -> None:
    text = f"{HEADER},school_name\n{ROW},Caf\xe9 de Regenboog\n".encode("cp1252")
    assert import_contracts(site, tmp_path, text) != 0
    assert "save it as CSV UTF-8" in capsys.readouterr().err


# --- the admin API ------------------------------------------------------------------------------


def test_every_registry_route_needs_the_admin_token(site: Any) -> None:
    client = site.client
    for method, url, body in (
            ("GET", "/api/v1/admin/contracts.csv", None),
            ("POST", "/api/v1/admin/contracts.csv", f"{HEADER}\n{ROW}\n"),
            ("GET", "/api/v1/admin/schools/test-board/test-school/connections", None),
            ("PUT", "/api/v1/admin/boards/test-board/policy", "{}")):
        for headers in ({}, site.auth, {"Authorization": "Bearer not-a-token"}):
            answer = client.request(method, url, content=body, headers=headers)
            assert answer.status_code in (401, 403), (method, url, headers, answer.status_code)
    assert count(site, "connections") == 0


def test_an_oversized_csv_body_is_refused_from_its_content_length(site: Any) -> None:
    admin = {"Authorization": f"Bearer {create_admin_token(site.engine)}"}
    answer = site.client.post("/api/v1/admin/contracts.csv", content=b"x" * 16,
                              headers={**admin, "Content-Length": str(64 * 1024 * 1024)})
    assert answer.status_code == 413, answer.text


def test_a_bad_count_over_the_api_is_a_422_not_a_500(site: Any) -> None:
    admin = {"Authorization": f"Bearer {create_admin_token(site.engine)}"}
    answer = site.client.post("/api/v1/admin/contracts.csv", content=f"{HEADER},pupils\n{ROW},²\n",
                              headers=admin)
    assert answer.status_code == 422, answer.text
    assert any("contracts.csv:2: pupils:" in error for error in answer.json()["detail"]["errors"])


# --- the measurements CSV -----------------------------------------------------------------------


MEASURED = "measured_at,download_mbps,upload_mbps"


def import_measurements(site: Any, tmp_path: Path, text: str | bytes, name: str = "m.csv") -> int:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return run(site, "import", "measurements", str(path), "--school", "test-school")


@pytest.mark.parametrize(("row", "column"), [
    ("2025-03-03T10:00:00+01:00,1e308,10", "download_mbps"),  # x 125 000 is infinity
    ("2025-03-03T10:00:00+01:00,1_000,10", "download_mbps"),  # float() takes underscores
    ("2025-03-03T10:00:00+01:00,-0,10", "download_mbps"),
    ("0001-01-01T00:00:00,5,10", "measured_at"),  # "year 0 is out of range", without a line
    ("1969-12-31T12:00:00+00:00,5,10", "measured_at"),  # export and verdicts read from 1970 on
])
def test_a_bad_measurement_cell_is_reported_by_line_and_column(site: Any, tmp_path: Path, capsys: Any,
                                                               row: str, column: str) -> None:
    assert import_measurements(site, tmp_path, f"{MEASURED}\n{row}\n") != 0
    assert f"m.csv:2: {column}:" in capsys.readouterr().err
    assert count(site, "bandwidth_results") == 0


def test_a_nul_byte_in_a_server_name_is_refused(site: Any, tmp_path: Path, capsys: Any) -> None:
    text = f"{MEASURED},server\n2025-03-03T10:00:00+01:00,5,10,speed\x00test\n"
    assert import_measurements(site, tmp_path, text) != 0
    assert "m.csv:2: server: holds a control character" in capsys.readouterr().err
    assert count(site, "bandwidth_results") == 0


def test_a_windows_1252_measurements_file_says_save_as_utf8(site: Any, tmp_path: Path,
                                                            capsys: Any) -> None:
    text = f"{MEASURED},server\n2025-03-03T10:00:00+01:00,5,10,Caf\xe9\n".encode("cp1252")
    assert import_measurements(site, tmp_path, text) != 0
    assert "save it as CSV UTF-8" in capsys.readouterr().err


TRACKER = "Id,Service,Ping,Download,Upload,Created at,IP address,Server name,Server id,Status"


def test_speedtest_trackers_ip_address_is_evidence_only_and_never_stored(site: Any, tmp_path: Path) -> None:
    lines = (f"{HEADER},networks,role\n{ROW},192.0.2.0/24,main\n"
             "test-board,test-school,lte,Vodafone,4g,2025-01-01,50,10,198.51.100.0/24,backup\n")
    assert import_contracts(site, tmp_path, lines) == 0
    text = (f"{TRACKER}\n1,ookla,10,80000000,8000000,2025-03-03 10:10:00,198.51.100.77,Srv,1,completed\n"
            "2,ookla,10,80000000,8000000,2025-03-03 10:20:00,10.20.30.40,Srv,1,completed\n")
    assert import_measurements(site, tmp_path, text, "tracker.csv") == 0
    assert sorted(row[0] for row in site.sql("SELECT attribution FROM bandwidth_results")) == [
        "main", "network 198.51.100.0/24"]
    for table in inspect(site.engine).get_table_names():
        for row in site.sql(f'SELECT * FROM "{table}"'):
            text_of_row = " ".join(str(value) for value in row)
            assert "198.51.100.77" not in text_of_row and "10.20.30.40" not in text_of_row, table


# --- attribution moved by the real commands ------------------------------------------------------


def connectivity(seq: int, stream: str, when: float, address: str) -> dict[str, Any]:
    hops = [{"ttl": 2, "address": address, "segment": "access", "sent": 3, "received": 3}]
    return at(record(seq, stream, "connectivity", payload={
        "window_seconds": 60.0, "up": True, "down_seconds": 0.0, "hops": hops}), when)


def attributions(site: Any) -> list[tuple[str | None, str]]:
    return [(row[0], row[1]) for row in site.sql(
        "SELECT connections.slug, bandwidth_results.attribution FROM bandwidth_results "
        "LEFT JOIN connections ON connections.id = bandwidth_results.connection_id "
        "ORDER BY bandwidth_results.measured_at")]


def test_the_contract_import_and_a_pin_move_agent_results_through_the_cli(site: Any, tmp_path: Path) -> None:
    stream, now = new_stream(), time.time() - 3600
    bandwidth = at(record(2, stream, "bandwidth"), now)
    assert deliver(site, connectivity(1, stream, now - 60, "198.51.100.1"), bandwidth) == [
        "accepted", "accepted"]
    assert attributions(site) == [(None, "none")]
    lines = (f"{HEADER},networks,role\n{ROW},192.0.2.0/24,main\n"
             "test-board,test-school,lte,Vodafone,4g,2025-01-01,50,10,198.51.100.0/24,backup\n")
    assert import_contracts(site, tmp_path, lines) == 0
    assert attributions(site) == [("lte", "network 198.51.100.0/24")]
    # Someone who knows the wiring pins the agent to the fibre line: its results follow.
    assert run(site, "agent-settings", "set", "--school", "test-school", "--agent", "pi",
               "connection=glas") == 0
    assert attributions(site) == [("glas", "agent-setting")]


# --- iCalendar ------------------------------------------------------------------------------------


def calendar(event: str) -> str:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//review//EN\r\nBEGIN:VEVENT\r\nUID:1\r\n"
            f"{event}END:VEVENT\r\nEND:VCALENDAR\r\n")


def test_a_nul_in_a_holiday_name_is_refused_and_nothing_stored(site: Any, tmp_path: Path,
                                                               capsys: Any) -> None:
    path = tmp_path / "h.ics"
    path.write_text(calendar("SUMMARY:Herfst\x00vakantie\r\nDTSTART;VALUE=DATE:20251018\r\n"))
    assert run(site, "import", "holidays", str(path), "--all") != 0
    assert "its SUMMARY holds a control character" in capsys.readouterr().err
    assert count(site, "holidays") == 0


def test_a_ten_thousand_occurrence_rrule_is_refused_in_one_line() -> None:
    text = calendar("SUMMARY:Every day\r\nDTSTART;VALUE=DATE:20250101\r\nRRULE:FREQ=DAILY;COUNT=10000\r\n")
    with pytest.raises(IcalError, match="more than 1000 occurrences"):
        parse_holidays(text, source_name="h.ics")


def test_an_html_page_saved_as_ics_is_refused(site: Any, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "h.ics"
    path.write_text("<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n")
    assert run(site, "import", "holidays", str(path), "--all") != 0
    err = capsys.readouterr().err
    assert "not an iCalendar file" in err and len(err.strip().splitlines()) == 1
    assert count(site, "holidays") == 0
