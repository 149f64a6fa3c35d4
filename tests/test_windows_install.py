"""The Windows install (deploy/windows/): PowerShell is not installable here (in none of the
reachable registries; npm's `pwsh` package downloads it from GitHub at install time), so the
script is parsed with tree-sitter's PowerShell grammar and checked against the agent's own
paths, config model and version, and the task definition is checked as Task Scheduler reads it."""

from __future__ import annotations

import os
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path, PureWindowsPath
from typing import Any

import pytest
from support.tools import unavailable

import agent
from agent.config import AgentSettings
from agent.credential import FILE_NAME as CREDENTIAL_FILE
from agent.paths import default_config_path, default_state_dir

ROOT = Path(__file__).resolve().parents[1]
WINDOWS = ROOT / "deploy" / "windows"
SCRIPT = WINDOWS / "install-agent.ps1"
UNINSTALL = WINDOWS / "uninstall-agent.ps1"
TASK = WINDOWS / "schoolnet-agent.task.xml"
RUNNER = WINDOWS / "run-agent.cmd"
DOCS = ROOT / "docs" / "windows.md"
NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
# A Windows whose folders are not on C: catches a path hard-coded instead of derived.
ENV = {"ProgramData": r"D:\ProgramData", "ProgramFiles": r"D:\Program Files", "SystemRoot": r"D:\Windows"}


def _parser() -> Any:
    try:
        import tree_sitter
        import tree_sitter_powershell
    except ImportError:
        unavailable("tree-sitter and tree-sitter-powershell are not installed (pip install -e '.[dev]')")
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def _errors(node: Any) -> list[str]:
    if node.type == "ERROR" or node.is_missing:
        return [f"line {node.start_point[0] + 1}: {node.text.decode()[:60]!r}"]
    if not node.has_error:
        return []
    return [error for child in node.children for error in _errors(child)]


def _walk(node: Any) -> Any:
    yield node
    for child in node.children:
        yield from _walk(child)


@pytest.mark.parametrize("script", [SCRIPT, UNINSTALL], ids=lambda p: p.name)
def test_scripts_parse_as_powershell(script: Path) -> None:
    tree = _parser().parse(script.read_bytes())
    assert _errors(tree.root_node) == []


def test_the_parser_does_find_syntax_errors() -> None:
    # Guards the test above: a grammar that accepted anything would prove nothing.
    good = b"function Fail([string] $Message) {"
    assert good in SCRIPT.read_bytes()
    broken = SCRIPT.read_bytes().replace(good, b"function Fail([string] $Message {", 1)
    assert _errors(_parser().parse(broken).root_node) != []


def _parameters(script: Path) -> list[str]:
    tree = _parser().parse(script.read_bytes())
    blocks = [node for node in tree.root_node.children if node.type == "param_block"]
    assert len(blocks) == 1, "one param() block at the top of the script"
    names = []
    for node in _walk(blocks[0]):
        if node.type == "script_parameter":
            variable = next(child for child in node.children if child.type == "variable")
            names.append(variable.text.decode().lstrip("$"))
    return names


def test_every_parameter_is_documented() -> None:
    names = _parameters(SCRIPT)
    assert {"Collector", "Code", "Version", "From", "Uninstall", "Purge"} <= set(names)
    text = SCRIPT.read_text()
    docs = DOCS.read_text()
    for name in names:
        assert f".PARAMETER {name}\n" in text, f"-{name} has no .PARAMETER help in the script"
        assert re.search(rf"`-{name}\b", docs), f"-{name} is not described in docs/windows.md"
    assert _parameters(UNINSTALL) == ["Purge"]


def _script_paths() -> dict[str, str]:
    """Every `$Name = Join-Path $env:X 'a'` or `Join-Path $Other 'b'` of the script, worked out
    for ENV, as Windows' Join-Path would."""
    paths = {"PSScriptRoot": r"E:\schoolnet\deploy\windows"}  # where the script was started from
    pattern = re.compile(r"^\$(\w+) = Join-Path \$(env:)?(\w+) '([^']+)'$", re.M)
    for name, env, base, child in pattern.findall(SCRIPT.read_text()):
        parent = ENV[base] if env else paths[base]
        paths[name] = str(PureWindowsPath(parent) / child)
    return paths


def test_script_paths_are_the_agents_windows_defaults() -> None:
    paths = _script_paths()
    assert paths["StateDir"] == str(default_state_dir("win32", ENV))
    assert paths["ConfigFile"] == str(default_config_path("win32", ENV))
    # Enrolment is skipped when this file exists: it must be where the agent writes it.
    state_dir = PureWindowsPath(str(default_state_dir("win32", ENV)))
    assert paths["CredentialFile"] == str(state_dir / CREDENTIAL_FILE)
    assert paths["InstallDir"] == r"D:\Program Files\schoolnet-agent"
    assert paths["AgentExe"] == r"D:\Program Files\schoolnet-agent\Scripts\schoolnet-agent.exe"


def _expand(text: str) -> str:
    return re.sub(r"%(\w+)%", lambda m: ENV.get(m.group(1), m.group(0)), text)


def test_runner_starts_the_installed_agent_with_its_config() -> None:
    raw = RUNNER.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n"), "cmd.exe wants CRLF line ends"
    text = _expand(raw.decode("ascii"))
    paths = _script_paths()
    log = re.search(r'set "SCHOOLNET_LOG=([^"]+)"', text)
    assert log is not None and log.group(1) == paths["LogFile"]
    command = re.search(r'^"([^"]+)" --config "([^"]+)" run >> "%SCHOOLNET_LOG%" 2>&1\r$', text, re.M)
    assert command is not None, "the runner's command line"
    assert command.group(1) == paths["AgentExe"]
    assert command.group(2) == paths["ConfigFile"]
    # The script copies the runner to where the task looks for it.
    assert paths["RunnerSource"].endswith(r"\run-agent.cmd")


def _task() -> ET.Element:
    return ET.parse(TASK).getroot()


def _one(root: ET.Element, path: str) -> str:
    found = root.findall(path, NS)
    assert len(found) == 1, path
    return (found[0].text or "").strip()


def _minutes(duration: str) -> float:
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", duration)
    assert match is not None, duration
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return days * 1440 + hours * 60 + minutes + seconds / 60


def test_task_runs_the_runner_as_system() -> None:
    root = _task()
    assert root.tag == f"{{{NS['t']}}}Task"
    assert _one(root, "t:Principals/t:Principal/t:UserId") == "S-1-5-18"
    # Task Scheduler refuses a task whose actions name a principal it does not define.
    principal = root.find("t:Principals/t:Principal", NS)
    actions = root.find("t:Actions", NS)
    assert principal is not None and actions is not None
    assert actions.get("Context") == principal.get("id")
    execs = root.findall("t:Actions/t:Exec", NS)
    assert len(execs) == 1
    assert _expand(_one(root, "t:Actions/t:Exec/t:Command")) == r"D:\Windows\System32\cmd.exe"
    arguments = _expand(_one(root, "t:Actions/t:Exec/t:Arguments"))
    assert arguments == f'/d /c "{_script_paths()["Runner"]}"'


def test_task_starts_at_boot_and_comes_back() -> None:
    root = _task()
    assert root.find("t:Triggers/t:BootTrigger", NS) is not None
    assert _one(root, "t:Triggers/t:BootTrigger/t:Enabled") == "true"
    # An agent that exited is started again by the repetition; a running one is left alone.
    assert _minutes(_one(root, "t:Triggers/t:BootTrigger/t:Repetition/t:Interval")) <= 10
    assert root.find("t:Triggers/t:BootTrigger/t:Repetition/t:Duration", NS) is None, "repeat forever"
    assert _one(root, "t:Settings/t:MultipleInstancesPolicy") == "IgnoreNew"
    # Task Scheduler's own limits: at least one minute between restarts, at most 999.
    interval = _minutes(_one(root, "t:Settings/t:RestartOnFailure/t:Interval"))
    count = int(_one(root, "t:Settings/t:RestartOnFailure/t:Count"))
    assert 1 <= interval <= 31 * 1440 and 1 <= count <= 999
    # The default limit (PT72H) would end the daemon every three days.
    assert _one(root, "t:Settings/t:ExecutionTimeLimit") == "PT0S"
    # Classroom laptops run on battery.
    assert _one(root, "t:Settings/t:DisallowStartIfOnBatteries") == "false"
    assert _one(root, "t:Settings/t:StopIfGoingOnBatteries") == "false"
    assert _one(root, "t:Settings/t:IdleSettings/t:StopOnIdleEnd") == "false"
    assert int(_one(root, "t:Settings/t:Priority")) >= 7, "below normal: never disturb lessons"


def _written_config() -> str:
    match = re.search(r"^\$AgentConfigText = @'\n(.*?)\n'@$", SCRIPT.read_text(), re.S | re.M)
    assert match is not None, "the config the script writes"
    return match.group(1)


def test_written_config_is_valid_for_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("SCHOOLNET_")]:
        monkeypatch.delenv(name)
    document = tomllib.loads(_written_config())
    settings = AgentSettings(**document)
    # The echo prober needs poll() and recvmsg(), which Python lacks on Windows.
    assert settings.probes.connectivity.enabled is False
    assert settings.probes.users.enabled is False
    # The state directory is left to the agent's default, which the script's paths match.
    assert "state_dir" not in document


def test_config_is_written_without_a_byte_order_mark() -> None:
    text = SCRIPT.read_text()
    # tomllib refuses a file that starts with a BOM; PowerShell 5.1's Set-Content/Out-File
    # -Encoding UTF8 write one.
    code = re.sub(r"#.*", "", text)  # the comment that explains this may name them
    assert not re.search(r"\b(Set-Content|Out-File|Add-Content)\b", code)
    assert "[IO.File]::WriteAllText($ConfigFile" in text and "UTF8Encoding($false)" in text
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads("\ufeff" + _written_config())


def test_default_version_is_this_agents() -> None:
    match = re.search(r"\[string\] \$Version = '([^']+)'", SCRIPT.read_text())
    assert match is not None
    assert match.group(1) == agent.__version__
