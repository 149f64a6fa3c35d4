"""Imports with bounds: the contracts CSV written set-based and checked before the write
lock, row limits that say to split the file, measurements written in chunks, overlapping
terms refused, and iCalendar rules that can never occur refused in bounded time.

A reviewer found a 400 000-row contracts file holding the store's write lock for 11
minutes (a query per row), and an impossible RRULE costing seconds of CPU per event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from collector import contracts_csv, measurements_csv
from collector.contracts import import_contracts
from collector.contracts_csv import MAX_ROWS, ContractImportError, parse_contracts, text_lines
from collector.db.engine import open_engine, writer
from collector.db.migrate import upgrade
from collector.db.schema import bandwidth_results, connections, contracts, schools
from collector.ical import IcalError, parse_holidays
from collector.measurements_csv import CsvErrors, import_measurements
from collector.registry import create_admin_token

HEADER = ("board,school,school_name,connection,provider,technology,networks,contract_start,"
          "contract_end,download_advertised_mbps,upload_advertised_mbps")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = open_engine(f"sqlite:///{tmp_path}/c.db")
    upgrade(engine)
    return engine


def sheet(schools_count: int, boards_count: int = 3, *, name: str = "School", speed: int = 100) -> str:
    """Two lines of two terms per school: 4 rows a school."""
    rows = [HEADER]
    for number in range(schools_count):
        board = f"board-{number % boards_count}"
        for line, network in (("glas", f"10.{number // 256}.{number % 256}.0/28"), ("lte", "")):
            rows.append(f"{board},s{number},{name} {number},{line},KPN,fibre,{network},"
                        f"2024-08-01,2025-07-31,{speed},{speed}")
            rows.append(f"{board},s{number},{name} {number},{line},KPN,fibre,{network},"
                        f"2025-08-01,,{speed * 2},{speed}")
    return "\n".join(rows) + "\n"


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def table_count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


# --- contracts: set-based, validated before the lock ----------------------------------------------


def test_the_number_of_statements_does_not_grow_with_the_rows(engine: Engine) -> None:
    with statements(engine) as small:
        import_contracts(engine, sheet(10), source_name="small.csv")
    with statements(engine) as large:
        report = import_contracts(engine, sheet(600), source_name="large.csv")
    # 600 schools, 1 200 lines, 2 400 terms: a query per row would be thousands.
    assert report.schools_created == 590 and report.terms_created == 2360
    assert len(large) < 40, len(large)
    assert len(large) <= len(small) + 10


def test_set_based_upserts_create_update_and_leave_alone(engine: Engine) -> None:
    first = import_contracts(engine, sheet(20), source_name="a.csv")
    assert (first.boards_created, first.schools_created, first.connections_created,
            first.terms_created) == (3, 20, 40, 80)
    again = import_contracts(engine, sheet(20), source_name="a.csv")
    assert again.unchanged

    # Five more schools, new names for all, a faster second term everywhere.
    changed = import_contracts(engine, sheet(25, name="Basisschool", speed=150), source_name="b.csv")
    assert (changed.schools_created, changed.schools_updated) == (5, 20)
    assert (changed.connections_created, changed.connections_updated) == (10, 0)
    assert (changed.terms_created, changed.terms_updated) == (20, 80)
    with engine.connect() as conn:
        names = set(conn.scalars(select(schools.c.name)))
        speeds = set(conn.scalars(select(contracts.c.download_advertised)))
        networks = conn.scalar(select(connections.c.networks).where(connections.c.slug == "glas")
                               .order_by(connections.c.id))
    assert names == {f"Basisschool {n}" for n in range(25)}
    assert speeds == {150 * 125_000, 300 * 125_000}
    assert networks == ["10.0.0.0/28"]
    assert table_count(engine, contracts) == 100


def test_twenty_thousand_rows_import_in_seconds(engine: Engine) -> None:
    text = sheet(5000, boards_count=50)
    started = time.perf_counter()
    report = import_contracts(engine, text, source_name="big.csv")
    elapsed = time.perf_counter() - started
    assert report.rows == 20_000 and report.terms_created == 20_000
    # Here about 3 s (half of it validation); a query per row took 23 s.
    assert elapsed < 15, elapsed


def test_a_bad_file_is_refused_without_waiting_for_the_write_lock(engine: Engine) -> None:
    bad = sheet(3).replace("2025-08-01", "soon", 1)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            import_contracts(engine, bad, source_name="bad.csv")
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    with writer(engine) as conn, conn.begin():  # another writer holds the lock
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "the import waited for the lock before validating"
    assert len(outcome) == 1 and isinstance(outcome[0], ContractImportError)
    assert "bad.csv:3: contract_start:" in str(outcome[0])


def test_new_lines_move_the_results_of_a_school_that_had_none(engine: Engine, tmp_path: Path) -> None:
    import_contracts(engine, f"{HEADER}\nb,s,S,glas,KPN,fibre,,2025-01-01,,100,100\n", source_name="a.csv")
    with engine.begin() as conn:
        conn.execute(contracts.delete())
        conn.execute(connections.delete())
    path = tmp_path / "m.csv"
    path.write_text("measured_at,download_mbps,upload_mbps\n2025-03-03T10:00:00+01:00,80,20\n")
    import_measurements(engine, path, "b/s", now=2e9)
    with engine.connect() as conn:
        assert conn.scalar(select(bandwidth_results.c.connection_id)) is None
    import_contracts(engine, f"{HEADER}\nb,s,S,glas,KPN,fibre,,2025-01-01,,100,100\n", source_name="a.csv")
    with engine.connect() as conn:
        line = conn.scalar(select(connections.c.id))
        assert conn.scalar(select(bandwidth_results.c.connection_id)) == line


# --- row limits -----------------------------------------------------------------------------------


def big_sheet(rows: int) -> str:
    line = "b,s,S,glas,KPN,fibre,,{},,100,100"
    return HEADER + "\n" + "\n".join(line.format(f"{2000 + n // 365:04d}-01-01") for n in range(rows)) + "\n"


def test_a_contracts_file_over_the_row_limit_says_to_split_it(engine: Engine) -> None:
    assert MAX_ROWS == 50_000
    started = time.perf_counter()
    with pytest.raises(ContractImportError) as refused:
        parse_contracts(big_sheet(MAX_ROWS + 1), "huge.csv")
    assert time.perf_counter() - started < 5
    assert refused.value.errors == [
        "huge.csv: more than 50000 rows, the most one file may have: split it (by board, for "
        "instance) and import the parts one by one"]
    assert "\n" not in str(refused.value)


def test_the_row_limit_counts_rows_not_blank_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contracts_csv, "MAX_ROWS", 2)
    text = (f"{HEADER}\nb,s,S,glas,KPN,fibre,,2025-01-01,,100,100\n\n,,,\n"
            "b,s,S,glas,KPN,fibre,,2026-01-01,,100,100\n")
    assert len(parse_contracts(text, "ok.csv")) == 2
    with pytest.raises(ContractImportError, match="more than 2 rows"):
        parse_contracts(text + "b,s,S,glas,KPN,fibre,,2027-01-01,,100,100\n", "three.csv")


def test_the_admin_api_applies_the_row_limit(site: Any) -> None:
    admin = {"Authorization": f"Bearer {create_admin_token(site.engine)}"}
    answer = site.client.post("/api/v1/admin/contracts.csv", content=big_sheet(MAX_ROWS + 1),
                              headers={**admin, "Content-Type": "text/csv"})
    assert answer.status_code == 422
    assert answer.json()["detail"]["errors"][0].startswith("contracts.csv: more than 50000 rows")


def test_text_lines_split_like_csv_universal_newlines() -> None:
    text = 'a,b\r\nc,"d\ne"\rf,g\nlast'
    assert list(text_lines(text)) == ["a,b\r\n", 'c,"d\n', 'e"\r', "f,g\n", "last"]
    assert list(text_lines("")) == []


def measurements_file(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "m.csv"
    lines = ["measured_at,download_mbps,upload_mbps,server"]
    lines += [f"2025-03-{1 + n // 1440:02d}T{n // 60 % 24:02d}:{n % 60:02d}:00+01:00,{80 + n % 5},20,srv"
              for n in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_measurements_file_over_the_row_limit_says_to_split_it(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert measurements_csv.MAX_ROWS == 500_000
    import_contracts(engine, f"{HEADER}\nb,s,S,glas,KPN,fibre,,2025-01-01,,100,100\n", source_name="a.csv")
    monkeypatch.setattr(measurements_csv, "MAX_ROWS", 10)
    with pytest.raises(CsvErrors) as refused:
        import_measurements(engine, measurements_file(tmp_path, 11), "b/s", now=2e9)
    assert refused.value.errors == [
        "m.csv: more than 10 rows, the most one file may have: split it (by year, for instance) "
        "and import the parts one by one"]
    assert table_count(engine, bandwidth_results) == 0
    assert import_measurements(engine, measurements_file(tmp_path, 10), "b/s", now=2e9).imported == 10


def test_measurements_are_written_in_chunks_in_one_transaction(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import_contracts(engine, f"{HEADER}\nb,s,S,glas,KPN,fibre,,2025-01-01,,100,100\n", source_name="a.csv")
    monkeypatch.setattr(measurements_csv, "WRITE_CHUNK", 4)
    with statements(engine) as seen:
        report = import_measurements(engine, measurements_file(tmp_path, 10), "b/s", now=2e9)
    assert report.imported == 10
    inserts = [s for s in seen if s.startswith("INSERT INTO bandwidth_results")]
    assert len(inserts) == 3  # 4 + 4 + 2
    # One write transaction (the writer's BEGIN IMMEDIATE), every chunk inside it.
    begins = [n for n, s in enumerate(seen) if s.startswith("BEGIN IMMEDIATE")]
    assert len(begins) == 1
    assert all(seen.index(s) > begins[0] for s in inserts)
    again = import_measurements(engine, measurements_file(tmp_path, 10), "b/s", now=2e9)
    assert (again.imported, again.already_there) == (0, 10)
    assert table_count(engine, bandwidth_results) == 10


def test_a_bad_measurements_file_is_refused_without_waiting_for_the_write_lock(
        engine: Engine, tmp_path: Path) -> None:
    import_contracts(engine, f"{HEADER}\nb,s,S,glas,KPN,fibre,,2025-01-01,,100,100\n", source_name="a.csv")
    path = tmp_path / "bad.csv"
    path.write_text("measured_at,download_mbps\nyesterday,80\n")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            import_measurements(engine, path, "b/s", now=2e9)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    with writer(engine) as conn, conn.begin():
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "the import waited for the lock before validating"
    assert isinstance(outcome[0], CsvErrors) and "bad.csv:2: measured_at:" in str(outcome[0])


# --- overlapping terms ----------------------------------------------------------------------------


def test_a_term_ending_after_the_next_one_starts_is_refused_naming_both_lines() -> None:
    text = (f"{HEADER}\n"
            "b,s,S,glas,KPN,fibre,,2025-01-01,2025-12-31,100,100\n"
            "b,s,S,lte,KPN,4g,,2025-01-01,2025-12-31,50,10\n"  # another line: its own terms
            "b,s,S,glas,KPN,fibre,,2026-01-01,,200,100\n"
            "b,s,S,glas,KPN,fibre,,2025-06-01,2025-12-31,150,100\n")
    with pytest.raises(ContractImportError) as refused:
        parse_contracts(text, "o.csv")
    assert refused.value.errors == [
        "o.csv:2: contract_end: connection 'glas' of b/s: contract_end 2025-12-31 runs past the next "
        "term, which starts 2025-06-01 on line 5"]


def test_an_end_on_the_next_start_is_an_overlap_and_the_day_before_is_not() -> None:
    touching = (f"{HEADER}\nb,s,S,glas,KPN,fibre,,2025-01-01,2025-06-01,100,100\n"
                "b,s,S,glas,KPN,fibre,,2025-06-01,,200,100\n")
    with pytest.raises(ContractImportError, match=r"o\.csv:2: contract_end: .* on line 3"):
        parse_contracts(touching, "o.csv")
    assert len(parse_contracts(touching.replace("2025-06-01,100", "2025-05-31,100"), "o.csv")) == 2


def test_an_open_ended_term_followed_by_a_later_one_is_accepted(engine: Engine) -> None:
    text = f"{HEADER}\nb,s,S,glas,KPN,fibre,,2026-01-01,,200,100\nb,s,S,glas,KPN,fibre,,2025-01-01,,100,100\n"
    assert import_contracts(engine, text, source_name="o.csv").terms_created == 2


# --- iCalendar: rules that never occur --------------------------------------------------------------


def calendar(rules: list[str], start: str = "DTSTART;VALUE=DATE:20250101") -> str:
    events = "".join(f"BEGIN:VEVENT\nUID:{n}@test\nSUMMARY:Holiday {n}\n{start}\nRRULE:{rule}\nEND:VEVENT\n"
                     for n, rule in enumerate(rules, start=1))
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{events}END:VCALENDAR\n"


@pytest.mark.parametrize("rule", [
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;UNTIL=20251231",  # UNTIL did not stop dateutil
    "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31;COUNT=3",
    "FREQ=YEARLY;BYYEARDAY=100;BYMONTH=1",
    "FREQ=DAILY;INTERVAL=7;BYDAY=TU",  # DTSTART is a Wednesday: every 7th day is one
])
def test_a_rule_that_never_occurs_is_refused_quickly_naming_the_event(rule: str) -> None:
    started = time.perf_counter()
    with pytest.raises(IcalError) as refused:
        parse_holidays(calendar([rule]), source_name="bad.ics")
    assert time.perf_counter() - started < 0.5
    message = str(refused.value)
    assert message.startswith("bad.ics: event 1 (Holiday 1): its RRULE ") and "\n" not in message
    assert "gives no occurrence in the 5 years after DTSTART" in message


def test_fifty_impossible_events_are_refused_in_well_under_two_seconds() -> None:
    text = calendar(["FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30"] * 25)
    started = time.perf_counter()
    with pytest.raises(IcalError, match="event 1 "):
        parse_holidays(text, source_name="bad.ics")
    assert time.perf_counter() - started < 2


def test_the_impossible_event_is_named_when_it_comes_after_good_ones() -> None:
    text = calendar(["FREQ=YEARLY;COUNT=2"] * 3 + ["FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"])
    with pytest.raises(IcalError, match=r"^bad.ics: event 4 \(Holiday 4\): its RRULE"):
        parse_holidays(text, source_name="bad.ics")


def test_the_default_day_of_a_monthly_rule_counts() -> None:
    # dateutil fills in DTSTART's day: the 30th of February, never.
    with pytest.raises(IcalError, match="gives no occurrence"):
        parse_holidays(calendar(["FREQ=MONTHLY;BYMONTH=2"], "DTSTART;VALUE=DATE:20250130"),
                       source_name="x.ics")
    found, _ = parse_holidays(calendar(["FREQ=MONTHLY;BYMONTH=2;COUNT=2"], "DTSTART;VALUE=DATE:20250101"),
                              source_name="x.ics")
    assert sorted(first.isoformat() for first, _, _ in found) == ["2025-02-01", "2026-02-01"]


@pytest.mark.parametrize(("rule", "expected"), [
    ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;COUNT=2", ["2028-02-29", "2032-02-29"]),  # rare, not never
    ("FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=-1;COUNT=2", ["2025-12-31", "2026-12-31"]),
    ("FREQ=YEARLY;BYWEEKNO=53;BYDAY=MO;COUNT=2", ["2026-12-28", "2032-12-27"]),
    ("FREQ=YEARLY;BYYEARDAY=-1;COUNT=2", ["2025-12-31", "2026-12-31"]),
    ("FREQ=MONTHLY;BYMONTH=2;BYDAY=-1MO;COUNT=2", ["2025-02-24", "2026-02-23"]),
    ("FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=27;UNTIL=20261231", ["2025-04-27", "2026-04-27"]),
])
def test_rules_that_do_occur_are_expanded_as_before(rule: str, expected: list[str]) -> None:
    found, _ = parse_holidays(calendar([rule]), source_name="ok.ics")
    assert sorted(first.isoformat() for first, _, _ in found) == expected
