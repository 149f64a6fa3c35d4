"""The systemd units: systemd's own checker accepts them, the privileges are exactly the ones
the probes need, and the agent's hardening scores no worse than measured.

``systemd-analyze verify`` fails when ExecStart's program does not exist, so each test builds
a throw-away root with the units, systemd's own unit files (for the targets they name) and
an executable at the venv paths, and passes ``--root=``: systemd then resolves every path
inside it, as it would on an installed machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from support.tools import require_tool

UNITS = Path(__file__).resolve().parent.parent / "deploy" / "systemd"
AGENT = "schoolnet-agent.service"
COLLECTOR = "schoolnet-collector.service"
# The programs the units start, made to exist inside the test root.
PROGRAMS = ("/opt/schoolnet-agent/bin/schoolnet-agent", "/opt/schoolnet/bin/schoolnet-collector")
SYSTEM_UNITS = Path("/lib/systemd/system")
# systemd-analyze security --offline=yes, systemd 252: the agent measured 2.2 (PrivateNetwork,
# its address families, CAP_NET_RAW/CAP_NET_ADMIN and the clock query are what it needs),
# the collector 1.1. A change that loosens either fails here.
AGENT_EXPOSURE_MAX = 2.2
COLLECTOR_EXPOSURE_MAX = 1.1


@pytest.fixture
def root(tmp_path: Path) -> Path:
    require_tool("systemd-analyze")
    if not (SYSTEM_UNITS / "sysinit.target").exists():
        pytest.fail(f"{SYSTEM_UNITS} has no sysinit.target: is systemd installed?")
    shutil.copytree(SYSTEM_UNITS, tmp_path / "usr/lib/systemd/system", symlinks=True)
    units = tmp_path / "etc/systemd/system"
    units.mkdir(parents=True)
    for name in (AGENT, COLLECTOR):
        shutil.copy(UNITS / name, units / name)
    for program in PROGRAMS:
        path = tmp_path / program.lstrip("/")
        path.parent.mkdir(parents=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return tmp_path


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "--no-pager", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def settings(name: str) -> dict[str, list[str]]:
    """Every assignment in the unit, in order (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_both_units_verify_cleanly(root: Path) -> None:
    result = analyze("verify", f"--root={root}", AGENT, COLLECTOR)
    # verify only warns (exit 0) on an unknown or misplaced key: those fail here too.
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_verify_fails_when_the_program_is_missing(root: Path) -> None:
    # The check above can fail: without the venv, the unit does not verify.
    (root / PROGRAMS[0].lstrip("/")).unlink()
    result = analyze("verify", f"--root={root}", AGENT)
    assert result.returncode != 0
    assert "schoolnet-agent" in result.stderr


def test_agent_privileges_are_exactly_what_the_probes_need() -> None:
    unit = settings(AGENT)
    assert unit["CapabilityBoundingSet"] == ["CAP_NET_RAW CAP_NET_ADMIN"]
    assert unit["AmbientCapabilities"] == ["CAP_NET_RAW CAP_NET_ADMIN"]
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET"]
    assert unit["User"] == ["schoolnet"] and unit["DynamicUser"] == ["no"]
    assert unit["Environment"] == ["SCHOOLNET_AGENT_CONFIG=/etc/schoolnet/agent.toml"]
    assert unit["ExecStart"] == ["/opt/schoolnet-agent/bin/schoolnet-agent run"]
    assert unit["StateDirectory"] == ["schoolnet-agent"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                "ProtectControlGroups", "ProtectHostname", "RestrictNamespaces", "RestrictRealtime",
                "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute"):
        assert unit[key] == ["yes"], key
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["SystemCallArchitectures"] == ["native"]
    # The allow list first; the clock-sync query is added back after @privileged leaves.
    assert unit["SystemCallFilter"] == ["@system-service", "~@privileged @resources", "adjtimex"]
    assert unit["MemoryMax"] == ["150M"] and unit["Nice"] == ["10"]


def test_collector_has_no_privileges() -> None:
    unit = settings(COLLECTOR)
    assert unit["CapabilityBoundingSet"] == [""]
    assert unit["AmbientCapabilities"] == [""]
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert unit["User"] == ["schoolnet-collector"]
    assert unit["StateDirectory"] == ["schoolnet"]
    assert "SCHOOLNET_DB=sqlite:////var/lib/schoolnet/collector.db" in unit["Environment"]
    assert unit["EnvironmentFile"] == ["-/etc/schoolnet/collector.env"]
    assert unit["ProtectClock"] == ["yes"] and unit["MemoryDenyWriteExecute"] == ["yes"]


def exposure(root: Path, name: str) -> tuple[float, list[str]]:
    result = analyze("security", "--offline=yes", f"--root={root}", name)
    assert result.returncode == 0, result.stderr
    overall = [line for line in result.stdout.splitlines() if "Overall exposure level" in line]
    assert overall, result.stdout
    score = float(overall[0].split(":")[1].split()[0])
    table = json.loads(analyze("security", "--offline=yes", f"--root={root}", "--json=short",
                               name).stdout)
    open_items = [row["name"] for row in table if row.get("exposure")]
    return score, open_items


def test_agent_exposure_stays_at_the_measured_level(root: Path) -> None:
    score, open_items = exposure(root, AGENT)
    print(f"{AGENT}: exposure {score}; open: {', '.join(open_items)}")
    assert score <= AGENT_EXPOSURE_MAX
    # What is open is what the probes need, and nothing else.
    assert "User=/DynamicUser=" not in open_items
    assert "NoNewPrivileges=" not in open_items
    assert "CapabilityBoundingSet=~CAP_SYS_ADMIN" not in open_items


def test_collector_exposure_stays_at_the_measured_level(root: Path) -> None:
    score, open_items = exposure(root, COLLECTOR)
    print(f"{COLLECTOR}: exposure {score}; open: {', '.join(open_items)}")
    assert score <= COLLECTOR_EXPOSURE_MAX


def test_a_looser_agent_scores_worse(root: Path) -> None:
    # The threshold can fail: the same unit without its sandbox is far above it.
    unit = root / "etc/systemd/system" / AGENT
    text = unit.read_text()
    for key in ("ProtectSystem=strict", "PrivateDevices=yes", "NoNewPrivileges=yes"):
        text = text.replace(key, key.split("=")[0] + "=no")
    unit.write_text(text)
    score, _ = exposure(root, AGENT)
    assert score > AGENT_EXPOSURE_MAX


def test_sysusers_files_make_the_system_users(tmp_path: Path) -> None:
    require_tool("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    files = [str(UNITS / "schoolnet-agent.sysusers"), str(UNITS / "schoolnet-collector.sysusers")]
    result = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", *files],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "etc/passwd").read_text().splitlines()
    users = {line.split(":")[0]: line.split(":") for line in passwd}
    assert users["schoolnet"][5:] == ["/var/lib/schoolnet-agent", "/usr/sbin/nologin"]
    assert users["schoolnet-collector"][5:] == ["/var/lib/schoolnet", "/usr/sbin/nologin"]
    assert int(users["schoolnet"][2]) < 1000  # a system user
