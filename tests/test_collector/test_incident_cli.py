"""`incident list|show|ack|escalate|resolve|dismiss|note|ticket` and `incidents detect`:
exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_collector.conftest import make_site
from test_collector.incident_fixtures import bandwidth_finding, found, set_up_schools
from test_collector.incident_histories import local

from collector.cli import main


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    with make_site(tmp_path) as site:
        set_up_schools(site, tmp_path)
        [change] = found(site, bandwidth_finding(site), local(10, 30))
        yield site, change.incident_id


def run(site: Any, *argv: str) -> int:
    return main([*argv, "--db", site.db_url])


def test_list_show_and_moves(setup: Any, capsys: pytest.CaptureFixture[str]) -> None:
    site, incident_id = setup
    assert run(site, "incident", "list") == 0
    assert f"{incident_id}\topen\tbandwidth\ttest-board/test-school" in capsys.readouterr().out
    assert run(site, "incident", "ack", str(incident_id), "--by", "Anne", "--note", "on it") == 0
    assert capsys.readouterr().out.strip() == f"incident {incident_id}: acknowledged"
    assert run(site, "incident", "escalate", str(incident_id), "--ticket", "TZ-5") == 0
    assert run(site, "incident", "show", str(incident_id), "--json") == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert shown["state"] == "escalated" and shown["ticket"] == "TZ-5"
    assert [e["actor"] for e in shown["events"]] == ["detector", "Anne (command line)", "command line"]
    assert run(site, "incident", "show", str(incident_id)) == 0
    text = capsys.readouterr().out
    assert "time to restore so far" in text and "provider's ticket TZ-5" in text


def test_refusals_are_one_line_and_exit_1(setup: Any, capsys: pytest.CaptureFixture[str]) -> None:
    site, incident_id = setup
    assert run(site, "incident", "resolve", str(incident_id)) == 1
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert run(site, "incident", "resolve", str(incident_id), "--note", "fixed") == 0
    capsys.readouterr()
    assert run(site, "incident", "ack", str(incident_id)) == 1
    err = capsys.readouterr().err
    assert err.startswith("schoolnet-collector: error: incident") and "resolved" in err
    assert err.count("\n") == 1
    assert run(site, "incident", "show", "999") == 1
    assert "no incident 999" in capsys.readouterr().err
    assert run(site, "incident", "list", "--school", "nowhere") == 1
    with pytest.raises(SystemExit) as usage:
        run(site, "incident", "list", "--state", "closed")
    assert usage.value.code == 2


def test_detect_runs_over_every_school(setup: Any, capsys: pytest.CaptureFixture[str]) -> None:
    site, _ = setup
    assert run(site, "incidents", "detect", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schools"] == 5 and report["errors"] == []
    assert report["notifications"] == {"sent": 0, "retrying": 0, "failed": 0}
