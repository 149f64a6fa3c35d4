"""schoolnet-collector as a user runs it: real processes, one-line errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.tools import console_script


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
    for command in ("serve", "board", "school", "enroll-code", "admin-token", "agent",
                    "agent-settings", "migrate"):
        assert command in top
    for command in (["serve"], ["board", "add"], ["school", "add"], ["enroll-code"],
                    ["admin-token", "create"], ["agent", "revoke"], ["agent-settings", "set"]):
        result = run(tmp_path, *command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout
