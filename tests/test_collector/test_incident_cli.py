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
    capsys.readouterr()
    assert run(site, "incident", "list", "--board", "nowhere") == 1
    assert capsys.readouterr().err == "schoolnet-collector: error: no board 'nowhere' (see: board list)\n"
    with pytest.raises(SystemExit) as usage:
        run(site, "incident", "list", "--state", "closed")
    assert usage.value.code == 2


def test_detect_runs_over_every_school(setup: Any, capsys: pytest.CaptureFixture[str]) -> None:
    site, _ = setup
    assert run(site, "incidents", "detect", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schools"] == 5 and report["errors"] == []
    assert report["notifications"] == {"sent": 0, "retrying": 0, "failed": 0, "deferred": 0}


def _usage_line(capsys: pytest.CaptureFixture[str], code: int | None, expected: int = 2) -> str:
    err = capsys.readouterr().err
    assert code == expected and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("number", ["99999999999999999999", "0", "-3", "abc", "1.5"])
def test_an_id_that_is_no_id_is_a_usage_error(setup: Any, capsys: pytest.CaptureFixture[str],
                                              number: str) -> None:
    site, _ = setup
    capsys.readouterr()
    for argv in (["incident", "show", number], ["incident", "ack", number]):
        with pytest.raises(SystemExit) as usage:
            run(site, *argv)
        assert "is not an incident id" in _usage_line(capsys, usage.value.code)


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--note", "clear\x1b[2Jscreen", "control character (U+001B) at character 6"),
    ("--note", "nul\x00", "U+0000"),
    ("--note", "x" * 4001, "at most 4000 characters"),
    ("--by", "Eve\nMallory", "it is one line"),
    ("--by", "E" * 101, "at most 100 characters"),
    ("--ticket", "TZ-1\r\nBcc: x", "it is one line"),
])
def test_notes_names_and_tickets_are_checked(setup: Any, capsys: pytest.CaptureFixture[str], option: str,
                                            value: str, says: str) -> None:
    site, incident_id = setup
    capsys.readouterr()
    action = "ticket" if option == "--ticket" else "note"
    argv = ["incident", action, str(incident_id), option, value]
    if action == "note" and option != "--note":
        argv += ["--note", "fine"]
    assert says in _usage_line(capsys, run(site, *argv))
    assert site.sql("SELECT count(*) FROM incident_events WHERE action IN ('note', 'ticket')") == [(0,)]


def test_a_note_may_have_line_breaks_and_the_actor_is_recorded(setup: Any) -> None:
    site, incident_id = setup
    assert run(site, "incident", "note", str(incident_id), "--note", "called\r\n\tno answer",
               "--by", " Anne ") == 0
    assert site.sql("SELECT actor, note FROM incident_events WHERE action = 'note'") == [
        ("Anne (command line)", "called\n\tno answer")]


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("SCHOOLNET_INCIDENT_WEBHOOK_URL", "http://127.0.0.1:99999/hook", "no valid port"),
    ("SCHOOLNET_INCIDENT_WEBHOOK_URL", "https://user:pw@hooks.example/x", "is not sent"),
    ("SCHOOLNET_INCIDENT_WEBHOOK_URL", "ftp://hooks.example/x", "is not an http:// or https:// URL"),
    ("SCHOOLNET_SMTP_HOST", "mail.example", "SCHOOLNET_MAIL_FROM is not"),
    ("SCHOOLNET_INCIDENT_MAIL_TO", "noc@board", "is not an e-mail address"),
    ("SCHOOLNET_INCIDENT_INTERVAL", "soon", "is not a duration"),
    ("SCHOOLNET_SMTP_PORT", "0", "smtp_port"),
    ("SCHOOLNET_INCIDENT_WEBHOOK_SECRET_FILE", "EMPTY", "is empty"),
])
def test_serve_with_a_bad_incident_setting_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], variable: str,
                                                      value: str, says: str) -> None:
    import collector.server

    def started(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("serve started with a bad setting")

    # Should the check let it through, the test fails instead of serving for ever.
    monkeypatch.setattr(collector.server, "serve", started)
    if value == "EMPTY":  # a secret file made but never filled: calls would go unsigned
        (tmp_path / "secret").write_text("\n")
        value = str(tmp_path / "secret")
    monkeypatch.setenv(variable, value)
    code = main(["serve", "--db", f"sqlite:///{tmp_path / 'c.db'}"])
    err = _usage_line(capsys, code)
    assert says in err and "pw" not in err
