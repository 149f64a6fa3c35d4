"""The agent's default state directory and config path per platform (agent/paths.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.config import AgentSettings
from agent.paths import default_config_path, default_state_dir


def test_linux_keeps_var_lib_and_etc() -> None:
    assert default_state_dir("linux", {}) == Path("/var/lib/schoolnet-agent")
    assert default_config_path("linux", {}) == Path("/etc/schoolnet/agent.toml")
    # Other Unix systems get the same layout, not the Windows one.
    windows_env = {"ProgramData": r"C:\ProgramData"}
    assert default_state_dir("freebsd14", windows_env) == Path("/var/lib/schoolnet-agent")


def test_macos_uses_library_application_support() -> None:
    assert default_state_dir("darwin", {}) == Path("/Library/Application Support/schoolnet-agent")
    assert default_config_path("darwin", {}) == Path("/Library/Application Support/schoolnet/agent.toml")


def test_windows_follows_program_data() -> None:
    env = {"ProgramData": r"D:\Data"}
    assert str(default_state_dir("win32", env)) == r"D:\Data\schoolnet-agent"
    assert str(default_config_path("win32", env)) == r"D:\Data\schoolnet\agent.toml"


def test_windows_variable_names_ignore_case() -> None:
    # Python on Windows upper-cases os.environ's keys; a mapping from elsewhere may not.
    assert str(default_state_dir("win32", {"PROGRAMDATA": r"E:\PD"})) == r"E:\PD\schoolnet-agent"
    assert str(default_state_dir("win32", {"programdata": r"E:\PD"})) == r"E:\PD\schoolnet-agent"


@pytest.mark.parametrize(("env", "expected"), [
    ({}, r"C:\ProgramData\schoolnet-agent"),
    ({"ProgramData": ""}, r"C:\ProgramData\schoolnet-agent"),
    ({"ALLUSERSPROFILE": r"F:\AllUsers"}, r"F:\AllUsers\schoolnet-agent"),
    ({"SystemDrive": "G:"}, r"G:\ProgramData\schoolnet-agent"),
    # Relative: it would resolve against the task's working directory (System32).
    ({"ProgramData": "ProgramData", "SystemDrive": "H:"}, r"H:\ProgramData\schoolnet-agent"),
    ({"ProgramData": r"\NoDrive"}, r"C:\ProgramData\schoolnet-agent"),
    ({"SystemDrive": "nonsense"}, r"C:\ProgramData\schoolnet-agent"),
])
def test_windows_without_program_data_falls_back(env: dict[str, str], expected: str) -> None:
    assert str(default_state_dir("win32", env)) == expected


def test_windows_unc_program_data_is_absolute() -> None:
    env = {"ProgramData": r"\\server\share\pd"}
    assert str(default_state_dir("win32", env)) == r"\\server\share\pd\schoolnet-agent"


def test_platform_and_environment_are_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("ProgramData", r"D:\Data")
    assert str(default_state_dir()) == r"D:\Data\schoolnet-agent"
    assert str(default_config_path()) == r"D:\Data\schoolnet\agent.toml"


def test_agent_settings_default_follows_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHOOLNET_STATE_DIR", raising=False)
    monkeypatch.setenv("ProgramData", r"D:\Data")
    monkeypatch.setattr(sys, "platform", "win32")
    assert str(AgentSettings().state_dir) == r"D:\Data\schoolnet-agent"
    monkeypatch.setattr(sys, "platform", "linux")
    assert AgentSettings().state_dir == Path("/var/lib/schoolnet-agent")


def test_state_dir_setting_still_beats_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("SCHOOLNET_STATE_DIR", str(tmp_path / "env"))
    assert AgentSettings().state_dir == tmp_path / "env"
    monkeypatch.delenv("SCHOOLNET_STATE_DIR")
    assert AgentSettings(state_dir=tmp_path / "file").state_dir == tmp_path / "file"
