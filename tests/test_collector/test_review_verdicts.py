"""Review of the verdicts: the maths against hand computation, and the glue from the store
(contracts imported by the real CLI, results and outages written straight into a real
SQLite store, judged by `school_verdicts`, the `verdicts` text and the admin API)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from collector.app import create_app
from collector.cli import main
from collector.cli_verdicts import verdicts_text
from collector.db.engine import open_engine, writer
from collector.db.migrate import upgrade
from collector.db.schema import (
    agents,
    bandwidth_results,
    connections,
    connectivity_first_windows,
    holidays,
    records,
)
from collector.registry import add_board, add_school, create_admin_token
from collector.school_verdicts import school_verdicts
from collector.settings import CollectorSettings
from collector.verdicts.stats import median_interval_ranks, nearest_rank

pytestmark = pytest.mark.both_stores

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MBIT = 125_000.0
DAY = 86400.0
HEADER = ("board,school,connection,provider,technology,role,contract_start,contract_end,"
          "download_advertised_mbps,upload_advertised_mbps,download_minimum_mbps,upload_minimum_mbps,"
          "download_normal_mbps,upload_normal_mbps,download_maximum_mbps,upload_maximum_mbps")
FULL = "2026-01-01,,100,100,50,50,80,80,100,100"


@dataclass
class Store:
    engine: Engine
    url: str
    tmp: Path

    def contracts(self, *terms: str) -> None:
        """Import contract rows (everything after `role`) for the line `glas` of b/s."""
        path = self.tmp / "contracts.csv"
        path.write_text(HEADER + "\n" + "".join(f"b,s,glas,KPN,fibre,main,{t}\n" for t in terms))
        assert main(["import", "contracts", str(path), "--db", self.url]) == 0

    @property
    def line(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(connections.c.id)).scalar_one())

    def results(self, *rows: tuple[float, float | None, float | None, int | None]) -> None:
        """(measured_at, download Mbit/s, upload Mbit/s, concurrent devices), on `glas`."""
        line = self.line
        with writer(self.engine) as conn, conn.begin():
            for t, down, up, devices in rows:
                conn.execute(insert(bandwidth_results).values(
                    school_id=1, source="import", connection_id=line, attribution="import",
                    measured_at=t, download_bytes_per_second=None if down is None else down * MBIT,
                    upload_bytes_per_second=None if up is None else up * MBIT, valid=True,
                    invalid_reasons=[], backend="http", server="http://127.0.0.1",
                    concurrent_devices=devices))

    def holiday(self, first: str, last: str) -> None:
        with writer(self.engine) as conn, conn.begin():
            conn.execute(insert(holidays).values(calendar="all", starts_on=first, ends_on=last,
                                                 name="Herfstvakantie", created_at=0.0))

    def verdicts(self, now: float, **options: Any) -> dict[str, Any]:
        return school_verdicts(self.engine, "b/s", now=now, **{"window": 30 * DAY, **options})


@pytest.fixture
def store(tmp_path: Path, db_url: str) -> Iterator[Store]:
    url = db_url
    engine = open_engine(url)
    upgrade(engine)
    add_board(engine, "B")
    add_school(engine, "b", "S")
    yield Store(engine, url, tmp_path)
    engine.dispose()


def local(day: dt.date, hour: int, minute: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute), AMSTERDAM).timestamp()


def weekdays(first: dt.date, count: int) -> list[dt.date]:
    out, d = [], first
    while len(out) < count:
        if d.isoweekday() <= 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


# --- the maths against hand computation --------------------------------------------------------


def test_median_interval_ranks_match_the_binomial_by_hand() -> None:
    """The narrowest symmetric (j, n+1-j) with P(j <= B < n+1-j) >= 95 %, B ~ Bin(n, 1/2),
    summed term by term; and the textbook values (n = 6: 1-6, 10: 2-9, 20: 6-15, 30: 10-21)."""
    def by_hand(n: int) -> tuple[int, int] | None:
        found = None
        for j in range(1, n // 2 + 2):
            k = n + 1 - j
            if k < j:
                break
            if sum(math.comb(n, i) for i in range(j, k)) * 100 >= 95 * 2 ** n:
                found = (j, k)
        return found
    for n in range(0, 80):
        assert median_interval_ranks(n) == by_hand(n), n
    assert [median_interval_ranks(n) for n in (5, 6, 10, 20, 30)] == [None, (1, 6), (2, 9), (6, 15), (10, 21)]


def test_nearest_rank_by_hand() -> None:
    values = [float(v) for v in (7, 1, 9, 3, 5, 2, 8, 4, 10, 6)]
    assert nearest_rank(values, 20) == 2.0  # ceil(0.2 * 10) = 2nd smallest
    assert nearest_rank(values, 50) == 5.0  # 5th: the lower middle
    assert nearest_rank(values, 21) == 3.0  # ceil(2.1) = 3rd
    assert nearest_rank(values[:7], 20) == 2.0  # ceil(1.4) = 2nd of 1, 3, 5, 7, 8, 9, 2 -> 2
    assert nearest_rank([4.0], 20) == 4.0


# --- the glue: calendar, hours, terms --------------------------------------------------------------


def test_a_result_on_a_holiday_is_not_in_school_hours(store: Store) -> None:
    store.contracts(FULL)
    store.holiday("2026-10-19", "2026-10-23")
    store.results((local(dt.date(2026, 10, 21), 10), 90, 90, None),  # Wednesday, autumn holiday
                  (local(dt.date(2026, 10, 28), 10), 90, 90, None))  # Wednesday, school
    line = store.verdicts(local(dt.date(2026, 10, 30), 12))["connections"][0]
    assert line["download"]["school"]["n"] == 1
    assert line["download"]["outside"]["n"] == 1
    assert line["download"]["all"]["n"] == 2


def test_the_repeated_autumn_hour_counts_twice_for_the_acm(store: Store) -> None:
    store.contracts(FULL)
    first = dt.datetime(2026, 10, 25, 2, 15, tzinfo=AMSTERDAM).timestamp()
    second = dt.datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=AMSTERDAM).timestamp()
    assert second - first == 3600
    store.results((first, 90, 90, None), (second, 90, 90, None), (first + 600, 90, 90, None))
    [acm] = store.verdicts(local(dt.date(2026, 10, 26), 12), rule_set="acm")["connections"][0]["verdicts"]
    # Two real hours (+02:00 and +01:00); the third test shares the first one's hour.
    assert acm["counts"]["download"]["judged"] == 3
    assert acm["counts"]["download"]["counted"] == 2


def test_a_contract_changed_mid_window_judges_each_result_by_its_own_terms(store: Store) -> None:
    store.contracts("2026-01-01,2026-03-15,100,100,50,50,80,80,100,100",
                    "2026-03-16,,200,200,100,100,160,160,200,200")
    store.results((local(dt.date(2026, 3, 13), 10), 90, 90, 10),
                  (local(dt.date(2026, 3, 16), 10), 90, 90, 10))
    line = store.verdicts(local(dt.date(2026, 3, 18), 12))["connections"][0]
    assert line["terms_in_window"] == 2
    assert line["terms_now"]["download_advertised_bytes_per_second"] == 200 * MBIT
    assert line["download"]["all"]["median_ratio"] == pytest.approx(0.45)  # 0.9 (old) and 0.45 (new)
    assert line["download"]["all"]["mean_ratio"] == pytest.approx((0.9 + 0.45) / 2)
    assert line["capacity"]["advertised_download_bytes_per_second"] == 200 * MBIT


def test_capacity_has_no_contract_verdict_once_the_contract_ended(store: Store) -> None:
    """terms_now is null: the capacity must not quietly use the expired contract."""
    store.contracts("2026-01-01,2026-03-15,100,100,50,50,80,80,100,100")
    store.results((local(dt.date(2026, 3, 12), 10), 90, 90, 20))  # needs 13 / 26 / 52 Mbit/s
    line = store.verdicts(local(dt.date(2026, 3, 20), 12))["connections"][0]
    assert line["terms_now"] is None
    capacity = line["capacity"]
    assert capacity["advertised_download_bytes_per_second"] is None
    assert {p["contract_sufficient"] for p in capacity["profiles"].values()} == {None}
    assert {p["measured_sufficient"] for p in capacity["profiles"].values()} == {True}


def test_capacity_keeps_to_school_hours_whatever_hours_the_rule_sets_judge(store: Store) -> None:
    store.contracts(FULL)
    store.results((local(dt.date(2026, 3, 12), 10), 90, 90, 40),  # Thursday, in school hours
                  (local(dt.date(2026, 3, 12), 20), 10, 10, 2))
    now = local(dt.date(2026, 3, 20), 12)
    for hours in ("all", "outside", "school"):
        capacity = store.verdicts(now, hours=hours)["connections"][0]["capacity"]
        assert capacity["peak_concurrent_devices"] == 40, hours
        assert capacity["median_download_bytes_per_second"] == 90 * MBIT, hours


def test_results_without_terms_and_unattributed_results_are_counted(store: Store) -> None:
    store.contracts("2026-03-10,,100,100,50,50,80,80,100,100")
    store.results((local(dt.date(2026, 3, 5), 10), 90, 90, None),  # before the contract
                  (local(dt.date(2026, 3, 11), 10), 90, None, None))
    with writer(store.engine) as conn, conn.begin():
        conn.execute(insert(bandwidth_results).values(
            school_id=1, source="import", connection_id=None, attribution="none",
            measured_at=local(dt.date(2026, 3, 11), 11), download_bytes_per_second=1.0,
            upload_bytes_per_second=1.0, valid=True, invalid_reasons=[], backend="http", server="s"))
    document = store.verdicts(local(dt.date(2026, 3, 20), 12), all_rule_sets=True)
    line = document["connections"][0]
    assert line["results"]["without_terms"] == 1
    assert line["download"]["all"]["without_terms"] == 1 and line["download"]["all"]["n"] == 1
    assert line["upload"]["all"]["without_value"] == 1 and line["upload"]["all"]["n"] == 0
    assert document["unattributed_results"]["count"] == 1
    assert {v["outcome"] for v in line["verdicts"]} == {"not_enough_data"}
    json.dumps(document, allow_nan=False)


def test_a_half_day_window_and_a_window_longer_than_the_data(store: Store) -> None:
    store.contracts(FULL)
    store.results((local(dt.date(2026, 3, 12), 10), 90, 90, None))
    now = local(dt.date(2026, 3, 12), 15)
    half = store.verdicts(now, window=0.5 * DAY)
    assert half["window"]["seconds"] == 0.5 * DAY
    assert half["connections"][0]["results"]["total"] == 1
    long = store.verdicts(now, window=3650 * DAY)
    assert long["connections"][0]["results"]["total"] == 1
    assert long["window"]["start"].startswith("2016-03-")


# --- availability in school hours -------------------------------------------------------------------


def test_provider_availability_holds_only_isp_outages_against_the_provider(store: Store) -> None:
    """An "internet" outage (no gateway probed: the side is unknown) counts in all outages,
    not against the provider: as schoolnet_connectivity_availability_ratio{outages="isp"}."""
    store.contracts(FULL)
    monday = dt.date(2026, 3, 9)
    with writer(store.engine) as conn, conn.begin():
        conn.execute(insert(agents).values(id=1, school_id=1, slug="pi", name="pi", credential_hash="x" * 64,
                                           created_at=local(monday, 0)))
        conn.execute(insert(connectivity_first_windows).values(agent_id=1, first_window_at=local(monday, 0)))
        for seq, (kind, start, end) in enumerate([("internet", local(monday, 9), local(monday, 10)),
                                                  ("isp", local(monday, 11), local(monday, 11, 30))]):
            conn.execute(insert(records).values(
                agent_id=1, stream_id="s", seq=seq, kind="outage", ok=True, measured_at=end, boot_id="b",
                since_boot_seconds=1.0, received_at=end,
                payload={"outage_kind": kind, "start_seconds": start, "end_seconds": end}))
    availability = store.verdicts(local(monday, 16), window=DAY)["availability_school_hours"]
    assert availability["school_seconds_observed"] == 7 * 3600
    assert availability["all_outages"] == pytest.approx(1 - 1.5 / 7)
    assert availability["provider_outages"] == pytest.approx(1 - 0.5 / 7)


# --- what a person and a program read ---------------------------------------------------------------


def test_the_text_names_why_there_is_no_capacity_verdict(store: Store) -> None:
    store.contracts("2026-01-01,2026-03-15,100,100,,,,,,")
    store.results((local(dt.date(2026, 3, 12), 10), 90, None, None))
    text = verdicts_text(store.verdicts(local(dt.date(2026, 3, 20), 12), all_rule_sets=True))
    assert "no contract in force today" in text
    assert "None" not in text
    assert "capacity: no verdict (no test in school hours counted the concurrent devices)" in text


def test_the_text_shows_the_capacity_per_profile(store: Store) -> None:
    store.contracts(FULL)
    store.results((local(dt.date(2026, 3, 12), 10), 90, 90, 40))
    text = verdicts_text(store.verdicts(local(dt.date(2026, 3, 20), 12)))
    # 40 devices x 0.5 / 1 / 2 Mbit/s + 30 %: 26, 52 and 104 Mbit/s against a median of 90.
    assert ("capacity: peak 40 devices in school hours, median download 90 Mbit/s: basis enough "
            "(needs 26 Mbit/s), digitaal enough (needs 52 Mbit/s), experimenteel too little "
            "(needs 104 Mbit/s)") in text


def test_the_command_prints_text_and_json_without_data(store: Store,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    store.contracts(FULL)
    capsys.readouterr()
    assert main(["verdicts", "--school", "s", "--window", "0.5d", "--rule-set", "all",
                 "--db", store.url]) == 0
    assert "not_enough_data" in capsys.readouterr().out
    assert main(["verdicts", "--school", "b/s", "--hours", "school", "--json", "--db", store.url]) == 0
    json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))


def test_an_absurd_contract_speed_never_reaches_the_verdicts(store: Store) -> None:
    huge = "1" + "0" * 400
    path = store.tmp / "absurd.csv"
    path.write_text(HEADER + f"\nb,s,glas,KPN,fibre,main,2026-01-01,,{huge},100,,,,,,\n")
    accepted = main(["import", "contracts", str(path), "--db", store.url]) == 0
    if accepted:
        app = create_app(CollectorSettings(db=store.url))
        token = create_admin_token(app.state.engine)
        with TestClient(app) as client:
            answer = client.get("/api/v1/admin/schools/b/s/verdicts",
                                headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
    assert not accepted
