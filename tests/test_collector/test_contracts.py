"""The registry: the contracts CSV (import, validation, export), reads for verdicts and
/metrics, school details, board policy, the CLI and the admin API."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from test_collector.conftest import run_sql

from collector.cli import main
from collector.contracts import (
    all_connections,
    board_policy,
    connections_document,
    contract_settings,
    export_contracts,
    import_contracts,
    school_connections,
    set_board_policy,
    set_school_details,
)
from collector.contracts_csv import COLUMNS, ContractImportError
from collector.db.engine import open_engine
from collector.db.migrate import upgrade
from collector.registry import RegistryError, create_admin_token, resolve_school
from collector.terms import terms_on

pytestmark = pytest.mark.both_stores

FIXTURES = Path(__file__).parent.parent / "fixtures" / "contracts"
HEADER = ",".join(COLUMNS)
MBIT = 125_000


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = open_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def row(**cells: str) -> str:
    """A full-width row: a valid main line of board b / school s, with ``cells`` changed."""
    values = {name: "" for name in COLUMNS}
    values.update(board="b", school="s", connection="main", provider="KPN", technology="fibre",
                  contract_start="2025-01-01", download_advertised_mbps="100",
                  upload_advertised_mbps="100")
    values.update(cells)
    return ",".join(values[name] for name in COLUMNS)


def csv_text(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every registry table's rows: to prove that a refused import wrote nothing."""
    return {table: run_sql(engine, f"SELECT * FROM {table} ORDER BY id")
            for table in ("boards", "schools", "connections", "contracts")}


def school_pk(engine: Engine, ref: str) -> int:
    with engine.connect() as conn:
        return resolve_school(conn, ref)[0]


# --- import and export ------------------------------------------------------------------------


def test_a_board_sheet_imports_and_exports_and_round_trips(
        engine: Engine, new_store_url: Callable[[str], str]) -> None:
    report = import_contracts(engine, fixture("board.csv"), source_name="board.csv")
    assert (report.boards_created, report.schools_created, report.connections_created,
            report.terms_created) == (1, 2, 3, 4)
    exported = export_contracts(engine)
    lines = exported.splitlines()
    assert lines[0] == HEADER and len(lines) == 5
    # Stored in bytes per second, shown in Mbit/s; the backup's bare address became a /32,
    # the empty school name the school's id, the empty currency the default.
    assert ",glas,KPN Zakelijk,fibre,main,192.0.2.0/28 2001:db8::/48,servicedesk@kpn.example," \
           "2025-08-01,,1000,1000,500,500,900,900,1000,1000,179.95,EUR,4h,8h" in exported
    assert ",mobiel,Odido,4g,backup,198.51.100.7/32,,2024-08-01,,50,10,,,,,150,50,25,EUR,1d," in exported
    assert "zonnebloem,zonnebloem,,95,,,,zuid,,,,08:15-14:45,\"mon,tue,thu,fri\"" in exported
    assert ",250.5,25,,,,,,,,EUR,," in exported

    other = open_engine(new_store_url("other"))
    upgrade(other)
    import_contracts(other, exported, source_name="exported.csv")
    assert export_contracts(other) == exported
    other.dispose()


def test_excel_with_semicolons_a_bom_crlf_and_decimal_commas(engine: Engine) -> None:
    raw = (FIXTURES / "excel-nl.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b";" in raw and b"\r\n" in raw
    import_contracts(engine, raw.decode("utf-8"), source_name="excel-nl.csv")
    with engine.connect() as conn:
        [line] = school_connections(conn, school_pk(engine, "kompas"))
    assert (line.slug, line.provider_id, line.technology, line.role) == ("vdsl", "kpn", "vdsl", "main")
    first = line.terms[0]
    assert first.download_advertised == 100.5 * MBIT and first.download_normal == 80.25 * MBIT
    assert first.monthly_cost == 59.95 and first.currency == "EUR"
    assert first.upload_minimum is None


def test_a_contract_change_is_two_terms_and_the_newer_one_rules(engine: Engine) -> None:
    import_contracts(engine, fixture("board.csv"), source_name="board.csv")
    pk = school_pk(engine, "regenboog")
    with engine.connect() as conn:
        glas = next(c for c in school_connections(conn, pk) if c.slug == "glas")
        # 2025-08-01 00:30 in Amsterdam is still July 31st in UTC: the school's date counts.
        just_after = dt.datetime(2025, 8, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        before = just_after - dt.timedelta(hours=1)
        assert contract_settings(conn, pk, now=before.timestamp()) == {"contract": {
            "download_bytes_per_second": 500 * MBIT, "upload_bytes_per_second": 500 * MBIT}}
        assert contract_settings(conn, pk, now=just_after.timestamp())["contract"][
            "download_bytes_per_second"] == 1000 * MBIT
        # Before any contract: nothing to send.
        assert contract_settings(conn, pk, now=dt.datetime(2020, 1, 1).timestamp()) == {}
        by_school = all_connections(conn)
    assert [t.starts_on for t in glas.terms] == [dt.date(2024, 8, 1), dt.date(2025, 8, 1)]
    assert terms_on(glas.terms, dt.date(2025, 7, 31)) == glas.terms[0]
    assert glas.terms[0].sla_response_seconds == 4 * 3600
    assert glas.networks == ("192.0.2.0/28", "2001:db8::/48")
    assert sorted(c.slug for c in by_school[pk]) == ["glas", "mobiel"]


def test_re_import_updates_what_changed_and_nothing_else(engine: Engine) -> None:
    text = fixture("board.csv")
    import_contracts(engine, text, source_name="board.csv")
    again = import_contracts(engine, text, source_name="board.csv")
    assert again.unchanged and again.as_dict()["terms_created"] == 0
    assert "unchanged" in again.summary()

    changed = (text.replace("179.95", "189.95")
               .replace("Odido,4g,backup", "Odido,5g,backup")
               .replace("De Regenboog", "Basisschool De Regenboog"))
    report = import_contracts(engine, changed, source_name="board.csv")
    assert (report.boards_updated, report.schools_updated, report.connections_updated,
            report.terms_updated, report.terms_created) == (0, 1, 1, 1, 0)
    assert "189.95" in export_contracts(engine) and "179.95" not in export_contracts(engine)


def test_a_column_the_file_leaves_out_leaves_the_stored_value_alone(engine: Engine) -> None:
    import_contracts(engine, fixture("board.csv"), source_name="board.csv")
    narrow = ("board,school,connection,provider,technology,contract_start,"
              "download_advertised_mbps,upload_advertised_mbps\n"
              "stichting-primo,regenboog,glas,KPN Zakelijk,fibre,2026-08-01,2000,2000\n")
    report = import_contracts(engine, narrow, source_name="narrow.csv")
    assert (report.schools_updated, report.connections_updated, report.terms_created) == (0, 0, 1)
    exported = export_contracts(engine, "stichting-primo")
    assert "De Regenboog,12AB00,412" in exported and "servicedesk@kpn.example,2026-08-01" in exported


def test_every_bad_row_is_reported_by_line_and_column_and_nothing_is_written(engine: Engine) -> None:
    import_contracts(engine, fixture("board.csv"), source_name="board.csv")
    before = dump(engine)
    text = csv_text(
        row(school="Bad School", technology="glasvezel"),                                    # 2
        row(download_minimum_mbps="60", download_normal_mbps="50"),                           # 3
        row(connection="b2", download_advertised_mbps="120", download_maximum_mbps="110"),   # 4
        row(connection="b3", contract_end="2024-12-31", contract_start="2025-01-01"),         # 5
        row(connection="b4", contract_start="1-8-2025", upload_advertised_mbps="snel"),       # 6
        "",                                                                                   # 7
        row(connection="b5", timezone="Europe/Utrecht", school_hours="15:00-08:00"),          # 8
        row(connection="b6", school_days="maandag", networks="192.0.2.1/24", currency="euro"),
        row(connection="b7", sla_response="soon", pupils="-3", download_advertised_mbps=""),  # 10
        row(school="t", school_name="T", pupils="10"),                                        # 11
        row(school="t", school_name="T", pupils="12", connection="other"),                    # 12
        row(school="t", school_name="T", pupils="10"),                                        # 13
        row(role="primary") + ",extra",                                                       # 14
    )
    with pytest.raises(ContractImportError) as caught:
        import_contracts(engine, text, source_name="sheet.csv")
    assert caught.value.errors == [
        "sheet.csv:2: school: school id 'Bad School' must be lowercase letters, digits and "
        "dashes (at most 63, not starting or ending with a dash)",
        "sheet.csv:2: technology: 'glasvezel' is not one of fibre, cable, vdsl, adsl, 4g, 5g, "
        "satellite, other",
        "sheet.csv:3: download_minimum_mbps: 60 Mbit/s is more than download_normal_mbps 50",
        "sheet.csv:4: download_advertised_mbps: 120 Mbit/s is more than download_maximum_mbps 110",
        "sheet.csv:5: contract_end: 2024-12-31 is before contract_start 2025-01-01",
        "sheet.csv:6: contract_start: '1-8-2025' is not a date (write it as YYYY-MM-DD, e.g. "
        "2025-08-01)",
        "sheet.csv:6: upload_advertised_mbps: 'snel' is not a number of at least 0 (write it like "
        "100 or 100,5; no thousands separator)",
        "sheet.csv:8: timezone: 'Europe/Utrecht' is not a time zone name (like Europe/Amsterdam)",
        "sheet.csv:8: school_hours: '15:00-08:00': the school day must end after it starts",
        "sheet.csv:9: school_days: 'maandag' is not a list of weekdays (write it like mon-fri or "
        "mon,tue,thu)",
        "sheet.csv:9: networks: '192.0.2.1/24' has host bits set; did you mean 192.0.2.0/24?",
        "sheet.csv:9: currency: 'euro' is not an ISO 4217 currency code (like EUR)",
        "sheet.csv:10: pupils: '-3' is not a whole number of at least 0",
        "sheet.csv:10: download_advertised_mbps: required, but empty",
        "sheet.csv:10: sla_response: 'soon' is not a duration (write it like 30s, 30m, 24h or 7d)",
        "sheet.csv:14: row: 38 cells, but the header names 37 columns",
        "sheet.csv:12: pupils: school b/t is given as 12 here but 10 on line 11",
        "sheet.csv:13: contract_start: connection 'main' of b/t has a term from 2025-01-01 on "
        "line 11 already",
    ]
    assert dump(engine) == before


def test_a_missing_required_column_or_an_unknown_one_is_a_header_error(engine: Engine) -> None:
    with pytest.raises(ContractImportError) as caught:
        import_contracts(engine, "board;school;connection;provider;technology;contract_start;"
                         "download_mbps\nb;s;c;KPN;fibre;2025-01-01;100\n", source_name="x.csv")
    assert caught.value.errors == [
        "x.csv:1: download_mbps: unknown column (see docs/contracts-csv.md)",
        "x.csv:1: download_advertised_mbps: required column is missing",
        "x.csv:1: upload_advertised_mbps: required column is missing"]
    with pytest.raises(ContractImportError, match="no header row"):
        import_contracts(engine, "", source_name="empty.csv")


def test_many_errors_are_listed_up_to_twenty_then_counted(engine: Engine) -> None:
    text = csv_text(*(row(connection=f"c{i}", technology="copper") for i in range(25)))
    with pytest.raises(ContractImportError) as caught:
        import_contracts(engine, text, source_name="x.csv")
    assert len(caught.value.errors) == 25
    lines = str(caught.value).splitlines()
    assert len(lines) == 21 and lines[-1] == "and 5 more"
    assert lines[0] == "x.csv:2: technology: 'copper' is not one of fibre, cable, vdsl, adsl, 4g, " \
                       "5g, satellite, other"


def test_the_law_allows_an_advertised_speed_below_the_minimum(engine: Engine) -> None:
    # BEREC: only minimum <= normal <= maximum and advertised <= maximum are binding.
    import_contracts(engine, csv_text(row(download_advertised_mbps="40", download_minimum_mbps="50",
                                          download_maximum_mbps="100")), source_name="x.csv")
    with engine.connect() as conn:
        [line] = school_connections(conn, school_pk(engine, "b/s"))
    assert line.terms[0].download_minimum == 50 * MBIT


# --- school details and board policy --------------------------------------------------------------


def test_school_details_are_validated_like_the_csv(engine: Engine) -> None:
    import_contracts(engine, fixture("board.csv"), source_name="board.csv")
    details = set_school_details(engine, "regenboog", {"school_hours": "08:15-14:45",
                                                      "school_days": "mon,tue,wed,thu,fri",
                                                      "pupils": "", "region": "noord"})
    assert (details["school_hours"], details["school_days"], details["pupils"],
            details["region"]) == ("08:15-14:45", "mon-fri", "", "noord")
    with pytest.raises(RegistryError, match=r"^latitude: '95' is not a latitude"):
        set_school_details(engine, "regenboog", {"latitude": "95"})
    with pytest.raises(RegistryError, match="unknown school detail 'colour'"):
        set_school_details(engine, "regenboog", {"colour": "blue"})


def test_board_policy_keeps_defaults_for_what_the_board_did_not_set(engine: Engine) -> None:
    import_contracts(engine, fixture("board.csv"), source_name="board.csv")
    with engine.connect() as conn:
        board_pk = conn.exec_driver_sql("SELECT id FROM boards").scalar_one()
        assert board_policy(conn, board_pk).rule_set == "acm"
    set_board_policy(engine, "stichting-primo", {
        "rule_set": "bnetza", "capacity": {"per_device_bytes_per_second": {"basis": 93750}}})
    with engine.connect() as conn:
        policy = board_policy(conn, board_pk)
    assert policy.rule_set == "bnetza"
    assert policy.capacity.per_device_bytes_per_second == {
        "basis": 93750, "digitaal": 125000, "experimenteel": 250000}
    with pytest.raises(RegistryError, match="rule_set"):
        set_board_policy(engine, "stichting-primo", {"rule_set": "ofcom"})
    with engine.connect() as conn:
        assert board_policy(conn, board_pk).rule_set == "bnetza"


# --- the command line ----------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str) -> int:
    return main([*args, "--db", f"sqlite:///{tmp_path}/cli.db"])


def test_cli_import_export_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(tmp_path, "import", "contracts", str(FIXTURES / "board.csv")) == 0
    assert "terms 4 created" in capsys.readouterr().err
    assert cli(tmp_path, "export", "contracts", "--output", str(tmp_path / "out.csv")) == 0
    assert (tmp_path / "out.csv").read_text().startswith(HEADER)
    assert cli(tmp_path, "export", "contracts", "--board", "stichting-primo") == 0
    assert capsys.readouterr().out == (tmp_path / "out.csv").read_text()
    assert cli(tmp_path, "connection", "list", "--school", "regenboog") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split("\t")[:5] == ["glas", "KPN Zakelijk", "fibre", "main", "1000"]
    assert cli(tmp_path, "connection", "list", "--school", "stichting-primo/zonnebloem", "--json") == 0
    [line] = json.loads(capsys.readouterr().out)["connections"]
    assert line["current"]["download_advertised_mbps"] == 250.5


def test_cli_refuses_bad_files_in_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(tmp_path, "import", "contracts", str(tmp_path / "missing.csv")) == 2
    assert capsys.readouterr().err == f"schoolnet-collector: error: {tmp_path}/missing.csv: no such file\n"
    (tmp_path / "latin1.csv").write_bytes(HEADER.encode() + b"\nb,s,caf\xe9\n")
    assert cli(tmp_path, "import", "contracts", str(tmp_path / "latin1.csv")) == 2
    assert "not UTF-8 text" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text(csv_text(row(technology="dsl"), row(connection="x", pupils="many")))
    assert cli(tmp_path, "import", "contracts", str(tmp_path / "bad.csv")) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"schoolnet-collector: error: {tmp_path}/bad.csv:2: technology: 'dsl' is not one of "
                   "fibre, cable, vdsl, adsl, 4g, 5g, satellite, other",
                   f"schoolnet-collector: error: {tmp_path}/bad.csv:3: pupils: 'many' is not a whole "
                   "number of at least 0",
                   "schoolnet-collector: nothing was imported (2 problems)"]
    assert cli(tmp_path, "export", "contracts") == 0
    assert capsys.readouterr().out == HEADER + "\n"


def test_cli_board_and_school_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(tmp_path, "import", "contracts", str(FIXTURES / "board.csv")) == 0
    capsys.readouterr()
    assert cli(tmp_path, "board", "set", "stichting-primo", "rule_set=bnetza", "capacity.profile=basis",
               "capacity.margin_ratio=0,5", "capacity.per_device_mbps.basis=0.75",
               "capacity.per_video_participant_mbps=1.5") == 0
    policy = json.loads(capsys.readouterr().out)
    assert policy["rule_set"] == "bnetza" and policy["capacity"] == {
        "per_device_bytes_per_second": {"basis": 93750, "digitaal": 125000, "experimenteel": 250000},
        "per_video_participant_bytes_per_second": 187500, "margin_ratio": 0.5, "profile": "basis"}
    assert cli(tmp_path, "board", "show", "stichting-primo") == 0
    assert json.loads(capsys.readouterr().out) == policy
    for bad, message in ((["rule_set=ofcom"], "policy: rule_set"),
                         (["capacity.margin_ratio=lots"], "capacity.margin_ratio: 'lots'"),
                         (["capacity.per_device_mbps.max=3"], "unknown policy key")):
        assert cli(tmp_path, "board", "set", "stichting-primo", *bad) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert cli(tmp_path, "board", "show", "nope") == 2
    assert "no board with id 'nope'" in capsys.readouterr().err

    assert cli(tmp_path, "school", "set", "regenboog", "school_hours=08:00-14:00",
               "timezone=Europe/Brussels") == 0
    assert json.loads(capsys.readouterr().out)["timezone"] == "Europe/Brussels"
    assert cli(tmp_path, "school", "set", "regenboog", "school_days=weekdays") == 2
    assert capsys.readouterr().err.startswith("schoolnet-collector: error: school_days: 'weekdays'")
    assert cli(tmp_path, "school", "show", "regenboog") == 0
    assert json.loads(capsys.readouterr().out)["school_hours"] == "08:00-14:00"


# --- the admin API (collector/routes/registry.py, included by collector/app.py) -------------------


def test_admin_api_imports_exports_and_sets_policy(site) -> None:  # type: ignore[no-untyped-def]
    admin = {"Authorization": f"Bearer {create_admin_token(site.engine)}"}
    assert site.client.get("/api/v1/admin/contracts.csv").status_code == 401

    answer = site.client.post("/api/v1/admin/contracts.csv", content=fixture("board.csv"),
                              headers={**admin, "Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["terms_created"] == 4 and answer.json()["unchanged"] is False

    bad = csv_text(row(technology="dsl"), row(connection="x", contract_start="soon"))
    answer = site.client.post("/api/v1/admin/contracts.csv", content=bad, headers=admin)
    assert answer.status_code == 422
    assert [e.split(":")[:3] for e in answer.json()["detail"]["errors"]] == [
        ["contracts.csv", "2", " technology"], ["contracts.csv", "3", " contract_start"]]
    answer = site.client.post("/api/v1/admin/contracts.csv", content=b"\xff\xfe", headers=admin)
    assert answer.status_code == 422 and "UTF-8" in answer.json()["detail"]["errors"][0]

    answer = site.client.get("/api/v1/admin/contracts.csv?board=stichting-primo", headers=admin)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.text == export_contracts(site.engine, "stichting-primo")
    assert site.client.get("/api/v1/admin/contracts.csv?board=nope", headers=admin).status_code == 404

    answer = site.client.get("/api/v1/admin/schools/stichting-primo/regenboog/connections", headers=admin)
    assert answer.status_code == 200
    assert [c["connection"] for c in answer.json()["connections"]] == ["glas", "mobiel"]
    assert site.client.get("/api/v1/admin/schools/stichting-primo/nope/connections",
                           headers=admin).status_code == 404

    answer = site.client.put("/api/v1/admin/boards/stichting-primo/policy", headers=admin,
                             json={"rule_set": "fcc", "capacity": {"margin_ratio": 0.4}})
    assert answer.status_code == 200
    assert answer.json()["rule_set"] == "fcc" and answer.json()["capacity"]["margin_ratio"] == 0.4
    assert site.client.put("/api/v1/admin/boards/stichting-primo/policy", headers=admin,
                           json={"capacity": {"margin_ratio": -1}}).status_code == 422
    assert site.client.put("/api/v1/admin/boards/stichting-primo/policy", headers=admin,
                           json={"colour": "blue"}).status_code == 422
    assert site.client.put("/api/v1/admin/boards/nope/policy", headers=admin,
                           json={}).status_code == 404


# --- the SLA clock (issue 9) ----------------------------------------------------------------------


def test_the_sla_clock_column_imports_exports_and_is_checked(
        engine: Engine, new_store_url: Callable[[str], str]) -> None:
    text = csv_text(row(sla_restore="8h", sla_clock="Business"), row(connection="b", sla_clock=""),
                    row(connection="c", sla_clock="24x7"))
    import_contracts(engine, text, source_name="x.csv")
    with engine.connect() as conn:
        lines = {line.slug: line for line in school_connections(conn, school_pk(engine, "b/s"))}
    assert [lines[slug].terms[0].sla_clock for slug in ("main", "b", "c")] == ["business", None, "24x7"]
    exported = export_contracts(engine)
    assert exported.splitlines()[0].endswith(",sla_restore,sla_clock")
    assert exported.splitlines()[3].endswith(",EUR,,8h,business")  # sorted: b, c, main
    other = open_engine(new_store_url("other"))
    upgrade(other)
    import_contracts(other, exported, source_name="exported.csv")
    assert export_contracts(other) == exported
    other.dispose()
    document = connections_document(engine, "b/s")
    assert [line["current"]["sla_clock"] for line in document["connections"]] == ["24x7", "24x7", "business"]

    with pytest.raises(ContractImportError) as caught:
        import_contracts(engine, csv_text(row(connection="d", sla_clock="office hours")), source_name="y.csv")
    assert caught.value.errors == ["y.csv:2: sla_clock: 'office hours' is not one of 24x7, business "
                                   "(empty = 24x7)"]
