"""A school's verdicts end to end: contracts imported from CSV, bandwidth results through
the real ingest route, judged by `schoolnet-collector verdicts`, the admin API and /metrics."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support.records import at, deliver, new_stream, page_samples, record
from test_collector.conftest import Site, make_site

from agent.wire import AGENT_SETTINGS_PATH
from collector.cli import main
from collector.registry import create_admin_token
from collector.verdict_metrics import VerdictFamilies

pytestmark = pytest.mark.both_stores

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MBIT = 125_000.0
HEADER = ("board,school,connection,provider,technology,role,contract_start,"
          "download_advertised_mbps,upload_advertised_mbps,download_minimum_mbps,upload_minimum_mbps,"
          "download_normal_mbps,upload_normal_mbps,download_maximum_mbps,upload_maximum_mbps")
CONTRACT = (f"{HEADER}\n"
            "test-board,test-school,glas,KPN Zakelijk,fibre,main,2020-01-01,100,100,50,50,80,80,100,100\n")


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Site]:
    # /metrics judges anew at every scrape here: the test looks right after delivering.
    with make_site(tmp_path, db_url, verdict_refresh=0) as result:
        yield result


def school_days() -> list[dt.date]:
    """Monday, Wednesday and Friday of the last full week: inside a 30-day window."""
    today = dt.datetime.now(AMSTERDAM).date()
    monday = today - dt.timedelta(days=today.weekday() + 7)
    return [monday, monday + dt.timedelta(days=2), monday + dt.timedelta(days=4)]


def local(day: dt.date, hour: int, minute: int = 45) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute), AMSTERDAM).timestamp()


def bandwidth(seq: int, stream: str, when: float, mbit: float, **payload: Any) -> dict[str, Any]:
    rec = record(seq, stream, "bandwidth")
    rec["payload"].update(download_bytes_per_second=mbit * MBIT, upload_bytes_per_second=mbit * MBIT,
                          **payload)
    return at(rec, when)


def history(site: Site) -> None:
    """Per day 7 tests in school hours (08:45 … 14:45): 88 Mbit/s, but 96 at 08:45; an
    invalid test the agent itself limited (20 Mbit/s); and one evening test at 16 Mbit/s."""
    stream = new_stream()
    records = []
    for day in school_days():
        for hour in range(8, 15):
            records.append(bandwidth(len(records) + 1, stream, local(day, hour), 96 if hour == 8 else 88))
    records.append(bandwidth(len(records) + 1, stream, local(school_days()[0], 11, 50), 20,
                             invalid_reasons=["the agent's CPU was the limit"]))
    records.append(bandwidth(len(records) + 1, stream, local(school_days()[1], 20, 0), 16))
    assert set(deliver(site, *records)) == {"accepted"}


def verdicts(site: Site, capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, Any]:
    assert main(["verdicts", "--school", "test-school", "--db", site.db_url, "--json", *options]) == 0
    return json.loads(capsys.readouterr().out)


def import_contract(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "contracts.csv"
    path.write_text(CONTRACT)
    assert main(["import", "contracts", str(path), "--db", site.db_url]) == 0


def test_results_are_judged_by_the_imported_contract(site: Site, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    history(site)  # before the contract: attributed when it is imported
    import_contract(site, tmp_path)
    capsys.readouterr()
    document = verdicts(site, capsys, "--rule-set", "all")
    [line] = document["connections"]
    assert (line["connection"], line["provider_id"], line["technology"]) == ("glas", "kpn-zakelijk", "fibre")
    assert line["terms_now"]["download_advertised_bytes_per_second"] == 100 * MBIT
    assert line["results"] == {"total": 23, "valid": 22, "invalid": 1, "without_terms": 0, "days": 3}
    school = line["download"]["school"]
    # 21 valid tests in school hours: 18 at 0.88, 3 at 0.96; nearest rank: the 11th and the 5th.
    assert school["n"] == 21
    assert school["median_ratio"] == pytest.approx(0.88)
    assert school["ratio_80_80"] == pytest.approx(0.88)
    assert school["share_at_least_95"] == pytest.approx(3 / 21)
    assert line["download"]["all"]["n"] == 22  # and the evening test; never the invalid one
    outcomes = {v["rule_set"]: v for v in line["verdicts"]}
    # ACM counts every hour: the evening's 16 Mbit/s undercuts the minimum of 50.
    assert outcomes["acm"]["outcome"] == "fail"
    # FCC-style and Giga want a school week (5 days) in school hours: three days are too few.
    assert outcomes["fcc"]["outcome"] == outcomes["giga"]["outcome"] == "not_enough_data"
    assert "day" in outcomes["giga"]["reason"]
    assert outcomes["bnetza"]["outcome"] == "not_enough_data"
    assert document["unattributed_results"]["count"] == 0

    # Judged in school hours only, the same history passes the ACM's rules.
    in_school = verdicts(site, capsys, "--rule-set", "acm", "--hours", "school")
    [acm] = in_school["connections"][0]["verdicts"]
    assert acm["rule_set"] == "acm" and acm["outcome"] == "pass", acm


def test_without_a_contract_results_are_counted_not_judged(site: Site,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    history(site)
    document = verdicts(site, capsys)
    assert document["connections"] == []
    assert document["unattributed_results"]["count"] == 23
    assert "import contracts" in document["unattributed_results"]["why"]
    assert main(["verdicts", "--school", "test-school", "--db", site.db_url]) == 0
    assert "no connections registered" in capsys.readouterr().out


def test_metrics_api_and_agent_settings_carry_the_contract(site: Site, tmp_path: Path) -> None:
    import_contract(site, tmp_path)
    history(site)
    samples = page_samples(site.metrics().text)
    line = (("board", "test-board"), ("connection", "glas"), ("school", "test-school"))
    assert samples[("schoolnet_contract_download_bytes_per_second", line)] == 100 * MBIT
    assert samples[("schoolnet_contract_upload_minimum_bytes_per_second", line)] == 50 * MBIT
    assert samples[("schoolnet_connection_info", tuple(sorted(
        (*line, ("provider", "kpn-zakelijk"), ("technology", "fibre"), ("role", "main")))))] == 1
    ratio = tuple(sorted((*line, ("direction", "download"), ("hours", "school"))))
    assert samples[("schoolnet_bandwidth_median_ratio", ratio)] == pytest.approx(0.88)
    assert samples[("schoolnet_verdict_pass", tuple(sorted((*line, ("rule_set", "acm")))))] == 0
    assert samples[("schoolnet_verdict_enough_data", tuple(sorted((*line, ("rule_set", "giga")))))] == 0
    assert ("schoolnet_verdict_pass", tuple(sorted((*line, ("rule_set", "giga"))))) not in samples
    assert samples[("schoolnet_board_rule_set_info", (("board", "test-board"), ("rule_set", "acm")))] == 1
    session = samples[("schoolnet_school_in_session", (("board", "test-board"), ("school", "test-school")))]
    assert session in (0, 1)

    # Every family on the page is in the metric reference.
    reference = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    undocumented = {name for name, _ in samples if name.removesuffix("_total") not in reference}
    assert undocumented == set()

    token = create_admin_token(site.engine)
    answer = site.client.get("/api/v1/admin/schools/test-board/test-school/verdicts",
                             params={"rule-set": "acm", "hours": "school"},
                             headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["connections"][0]["verdicts"][0]["outcome"] == "pass"
    for params, code in (({"window": "soon"}, 422), ({"hours": "night"}, 422)):
        bad = site.client.get("/api/v1/admin/schools/test-board/test-school/verdicts", params=params,
                              headers={"Authorization": f"Bearer {token}"})
        assert bad.status_code == code, bad.text
    missing = site.client.get("/api/v1/admin/schools/test-board/nowhere/verdicts",
                              headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 404
    assert site.client.get("/api/v1/admin/schools/test-board/test-school/verdicts").status_code == 401

    fetched = site.client.get(AGENT_SETTINGS_PATH, headers=site.auth).json()["settings"]
    assert fetched["contract"] == {"download_bytes_per_second": 100 * MBIT,
                                   "upload_bytes_per_second": 100 * MBIT}


def test_bad_options_are_one_line_errors(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verdicts", "--school", "nowhere", "--db", site.db_url]) == 1
    assert capsys.readouterr().err.strip().startswith("schoolnet-collector: error: no school")
    assert main(["verdicts", "--school", "test-school", "--window", "0d", "--db", site.db_url]) == 2
    assert "--window" in capsys.readouterr().err


def test_metrics_judge_in_the_background_once_the_verdicts_are_old(site: Site, tmp_path: Path) -> None:
    import_contract(site, tmp_path)
    clock = [time.time()]
    families = VerdictFamilies(site.engine, window=30 * 86400, default_timezone="Europe/Amsterdam",
                               ttl=300, clock=lambda: clock[0])

    def tests_in_window() -> float:
        [family] = [f for f in families.families() if f.name == "schoolnet_bandwidth_window_tests"]
        return sum(value for _, labels, value in family.rows if labels[-1] == "all")

    assert tests_in_window() == 0  # the first scrape judges at once: there is nothing to show
    history(site)
    clock[0] += 299
    assert tests_in_window() == 0  # younger than the ttl: served from memory
    clock[0] += 2
    assert tests_in_window() == 0  # old: answered with the previous ones, judged anew behind
    refreshing = families._refreshing
    assert refreshing is not None
    refreshing.join(timeout=30)
    assert tests_in_window() == 22


def test_pinning_an_agent_to_a_line_moves_its_results_and_a_wrong_line_is_refused(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import_contract(site, tmp_path)
    history(site)

    def attributions() -> set[str]:
        return {row[0] for row in site.sql("SELECT attribution FROM bandwidth_results")}

    assert attributions() == {"only-connection"}
    pin = ["agent-settings", "set", "--school", "test-school", "--agent", "pi", "--db", site.db_url]
    assert main([*pin, "connection=glas"]) == 0
    assert attributions() == {"agent-setting"}
    capsys.readouterr()
    assert main([*pin, "connection=kabel"]) == 2
    assert "connection: 'kabel' is not one of the school's lines (glas)" in capsys.readouterr().err
    assert attributions() == {"agent-setting"}, "a refused pin changes nothing"
    assert main([*pin, "connection=null"]) == 0
    assert attributions() == {"only-connection"}


def test_a_contract_without_the_speed_a_rule_needs_has_data_enough_but_no_verdict(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "contracts.csv"
    path.write_text("board,school,connection,provider,technology,role,contract_start,"
                    "download_advertised_mbps,upload_advertised_mbps\n"
                    "test-board,test-school,glas,KPN Zakelijk,fibre,main,2020-01-01,100,100\n")
    assert main(["import", "contracts", str(path), "--db", site.db_url]) == 0
    history(site)
    capsys.readouterr()
    [acm] = verdicts(site, capsys, "--rule-set", "acm", "--hours", "school")["connections"][0]["verdicts"]
    assert acm["outcome"] == "not_enough_data" and acm["enough_data"] is True
    assert "normally available" in acm["reason"]
    samples = page_samples(site.metrics().text)
    line = (("board", "test-board"), ("connection", "glas"), ("rule_set", "acm"), ("school", "test-school"))
    assert samples[("schoolnet_verdict_enough_data", line)] == 1
    assert ("schoolnet_verdict_pass", line) not in samples
