"""schoolnet-collector as a user runs it: real processes, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from support.tools import console_script, free_port


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SCHOOLNET_DB=f"sqlite:///{tmp_path / 'c.db'}")
    return subprocess.run([console_script("schoolnet-collector"), *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_board_school_code_and_token(tmp_path: Path) -> None:
    assert run(tmp_path, "board", "add", "Stichting Één & Twee").stdout == "stichting-een-twee\n"
    assert run(tmp_path, "school", "add", "--board", "stichting-een-twee", "De Regenboog",
               "--id", "regenboog").stdout == "regenboog\n"
    assert "stichting-een-twee\tregenboog\tDe Regenboog" in run(tmp_path, "school", "list").stdout
    code = run(tmp_path, "enroll-code", "--school", "regenboog", "--uses", "3", "--valid-for", "7d")
    assert code.returncode == 0 and len(code.stdout.strip()) == 19 and code.stderr == ""
    token = run(tmp_path, "admin-token", "create")
    assert token.returncode == 0 and token.stdout.startswith("snadmin_")
    shown = run(tmp_path, "agent-settings", "set", "--school", "regenboog", "probes.system.interval=30s")
    assert shown.returncode == 0 and '"interval": "30s"' in shown.stdout
    assert run(tmp_path, "agent", "list").returncode == 0


@pytest.mark.parametrize("args, message", [
    (["school", "add", "--board", "nope", "X"], "no board with id 'nope'"),
    (["enroll-code", "--school", "nowhere"], "no school 'nowhere'"),
    (["enroll-code", "--school", "s", "--valid-for", "soon"], "--valid-for"),
    (["enroll-code", "--school", "s", "--uses", "many"], "invalid int value"),
    (["board", "add", "X", "--id", "Not_An_Id"], "lowercase"),
    (["agent", "revoke", "just-an-agent"], "SCHOOL/AGENT"),
    (["--db", "mysql://x", "board", "list"], "only sqlite"),
    (["--db", "sqlite:////no/such/dir/x.db", "board", "list"], "does not exist"),
    (["serve", "--tls-cert", "/no/cert.pem", "--tls-key", "/no/key.pem"], "not a readable file"),
    (["bogus"], "invalid choice"),
])
def test_bad_input_gives_one_line_and_a_non_zero_exit(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(tmp_path, *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("schoolnet-collector") and ": error: " in lines[0], lines
    assert message in lines[0], lines


def test_help_explains_every_command(tmp_path: Path) -> None:
    top = run(tmp_path, "--help").stdout
    for command in ("serve", "board", "school", "enroll-code", "admin-token", "metrics-token", "agent",
                    "agent-settings", "migrate", "rooms", "import", "export", "verdicts", "calendar",
                    "connection", "retention", "backup"):
        assert command in top
    for command in (["serve"], ["board", "add"], ["board", "set"], ["school", "add"], ["school", "set"],
                    ["enroll-code"], ["admin-token", "create"], ["metrics-token", "create"],
                    ["agent", "revoke"], ["agent-settings", "set"], ["rooms"], ["import", "contracts"],
                    ["import", "measurements"], ["import", "rooms"], ["import", "holidays"],
                    ["export", "contracts"], ["export", "measurements"], ["export", "rooms"],
                    ["verdicts"], ["calendar", "show"], ["connection", "list"], ["retention", "run"],
                    ["backup"]):
        result = run(tmp_path, *command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout


def test_lists_revocation_and_settings_round_trip(tmp_path: Path) -> None:
    from collector.db.engine import open_engine
    from collector.registry import enroll

    assert run(tmp_path, "migrate").returncode == 0
    run(tmp_path, "board", "add", "North", "--id", "north")
    run(tmp_path, "board", "add", "South", "--id", "south")
    run(tmp_path, "school", "add", "--board", "north", "Oak")
    run(tmp_path, "school", "add", "--board", "south", "Elm")
    assert run(tmp_path, "board", "list").stdout.split() == ["north", "North", "south", "South"]
    assert run(tmp_path, "school", "list", "--board", "south").stdout.split() == ["south", "elm", "Elm"]
    code = run(tmp_path, "enroll-code", "--school", "north/oak").stdout.strip()
    enroll(open_engine(f"sqlite:///{tmp_path / 'c.db'}"), code, "Pi 1", "0.1.0")
    listed = run(tmp_path, "agent", "list", "--school", "oak").stdout
    assert listed.startswith("north/oak/pi-1\tactive\tversion=0.1.0")
    assert run(tmp_path, "agent", "list", "--school", "elm").stdout == ""
    revoked = run(tmp_path, "agent", "revoke", "oak/pi-1")
    assert revoked.returncode == 0 and revoked.stdout == ""
    assert "\trevoked\t" in run(tmp_path, "agent", "list").stdout
    run(tmp_path, "agent-settings", "set", "--school", "oak", "probes.bandwidth.enabled=false",
        "contract.provider=KPN")
    run(tmp_path, "agent-settings", "set", "--school", "oak", "--agent", "pi-1", "probes.system.interval=30s")
    school = json.loads(run(tmp_path, "agent-settings", "show", "--school", "oak").stdout)
    assert school == {"contract": {"provider": "KPN"}, "probes": {"bandwidth": {"enabled": False}}}
    agent = json.loads(run(tmp_path, "agent-settings", "show", "--school", "oak", "--agent", "pi-1").stdout)
    assert agent == {"probes": {"system": {"interval": "30s"}}}


@pytest.mark.parametrize("args, message", [
    (["board", "add", "North", "--id", "north"], "exists already"),
    (["school", "list", "--board"], "expected one argument"),
    (["agent", "list", "--school", "nowhere"], "no school 'nowhere'"),
    (["agent", "revoke", "north/oak/ghost"], "no agent 'ghost'"),
    (["agent-settings", "set", "--school", "oak", "novalue"], "KEY=VALUE"),
    (["agent-settings", "show", "--school", "oak", "--agent", "ghost"], "no agent 'ghost'"),
    (["admin-token"], "required"),
    (["serve", "--port", "70000"], "not a port number"),
    (["serve", "--workers", "0"], "--workers"),
])
def test_every_command_refuses_bad_input_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    run(tmp_path, "board", "add", "North", "--id", "north")
    run(tmp_path, "school", "add", "--board", "north", "Oak")
    result = run(tmp_path, *args)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("schoolnet-collector")
    assert message in result.stderr, result.stderr


def test_serve_says_where_once_listening_and_stops_cleanly(tmp_path: Path) -> None:
    env = dict(os.environ, SCHOOLNET_DB=f"sqlite:///{tmp_path / 'c.db'}")
    port = free_port()
    server = subprocess.Popen([console_script("schoolnet-collector"), "serve", "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line == f"schoolnet-collector: serving on http://127.0.0.1:{port}\n"
        # The line means "connect now": no retry loop needed.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {"status": "ok"}
        # Production mode: no API description for strangers.
        assert httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5).status_code == 404
        taken = run(tmp_path, "serve", "--port", str(port))
        assert taken.returncode == 1
        expected = f"schoolnet-collector: error: could not serve on 127.0.0.1:{port}"
        assert taken.stderr.splitlines()[-1] == expected
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_db_may_follow_the_command_and_wins_over_the_environment(tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert run(tmp_path, "board", "add", "West", "--db", other).stdout == "west\n"
    # Given after the command it names the store; given before, the same.
    assert run(tmp_path, "board", "list", "--db", other).stdout == "west\tWest\n"
    assert run(tmp_path, "--db", other, "board", "list").stdout == "west\tWest\n"
    # SCHOOLNET_DB (c.db here) was left alone.
    assert run(tmp_path, "board", "list").stdout == ""
    assert "--db URL" in run(tmp_path, "agent", "revoke", "--help").stdout


@pytest.mark.parametrize("command", [["migrate"], ["admin-token", "create"], ["board", "list"],
                                     ["school", "list"], ["agent", "list"]])
def test_commands_refuse_a_store_they_cannot_open(tmp_path: Path, command: list[str]) -> None:
    result = run(tmp_path, *command, "--db", f"sqlite:///{tmp_path / 'missing' / 'c.db'}")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr, result.stderr
