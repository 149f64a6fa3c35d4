"""deploy/install-agent.sh run for real, against a temporary prefix and a real collector.

With ``--prefix`` every path (/opt, /etc, /var/lib, the unit directory) moves under a
temporary directory, and the script creates no user and runs no systemctl; everything else
is what a Raspberry Pi gets: Debian's Python makes the venv, pip installs this checkout
with its pinned dependencies, the agent enrols with a code from the collector. The install
is the slow part (one per module, measured below), so one fixture runs the sequence a
coordinator would — a mistyped code, the right one, the same command again — and the tests
read what each step left behind.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.processes import CollectorProcess
from support.tools import LOCAL_ONLY_ENV, unavailable

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "deploy" / "install-agent.sh"
PYTHON = Path("/usr/bin/python3")

pytestmark = pytest.mark.e2e


@dataclass
class Install:
    root: Path
    collector: CollectorProcess
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    snapshot: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    credential_after_wrong_code: bool = False

    @property
    def venv(self) -> Path:
        return self.root / "opt/schoolnet-agent"

    @property
    def config(self) -> Path:
        return self.root / "etc/schoolnet/agent.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / "var/lib/schoolnet-agent"

    @property
    def unit(self) -> Path:
        return self.root / "etc/systemd/system/schoolnet-agent.service"


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # The caller's SCHOOLNET_* settings must not matter to the script: give it a stray one.
    environment = dict(os.environ, SCHOOLNET_STATE_DIR="/nonexistent/stray", **(env or {}))
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=600, check=False, env=environment)


def snapshot(install: Install) -> dict[str, tuple[int, bytes]]:
    """Modification time and content of what a second run must leave alone."""
    files = [install.config, install.state_dir / "credential.json", install.unit,
             install.venv / "bin/schoolnet-agent"]
    files += sorted((install.venv / "lib").glob("python3*/site-packages/schoolnet-*.dist-info/RECORD"))
    return {str(path): (path.stat().st_mtime_ns, path.read_bytes()) for path in files}


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not PYTHON.exists():
        unavailable(f"{PYTHON} is missing (Debian's python3, the one a Pi has)")
    work = tmp_path_factory.mktemp("install")
    collector = CollectorProcess(work)
    collector.start()
    try:
        result = Install(root=work / "root", collector=collector)
        common = ("--prefix", str(result.root), "--from", str(REPO), "--collector", collector.url)
        collector.enroll_code()  # makes the board and school; this first code goes unused
        started = time.monotonic()
        result.runs["wrong code"] = run_script(*common, "--code", "not-a-real-code")
        result.seconds["first run (venv, pip install, enrol fails)"] = time.monotonic() - started
        result.credential_after_wrong_code = (result.state_dir / "credential.json").exists()
        code = collector.enroll_code()
        started = time.monotonic()
        result.runs["install"] = run_script(*common, "--code", code)
        result.seconds["second run (enrol)"] = time.monotonic() - started
        result.snapshot = snapshot(result)
        started = time.monotonic()
        # The same command again: the code is used up, so it must not be used.
        result.runs["again"] = run_script(*common, "--code", code)
        result.seconds["third run (nothing to do)"] = time.monotonic() - started
        print("\ninstall-agent.sh timings:", {k: round(v, 1) for k, v in result.seconds.items()})
        yield result
    finally:
        collector.stop()


def installed_agent(install: Install, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed agent, as the unit starts it, with its probes kept on this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLNET_")}
    # The written config is the product's example (public targets): the tests' local values
    # instead, with connectivity on (to loopback, in short windows) and no speed test.
    env.update({
        **LOCAL_ONLY_ENV,
        "SCHOOLNET_AGENT_CONFIG": str(install.config),
        "SCHOOLNET_PROBES__BANDWIDTH__ENABLED": "false",
        "SCHOOLNET_PROBES__CONNECTIVITY__ENABLED": "true",
        "SCHOOLNET_PROBES__CONNECTIVITY__WINDOW": "2s",
        "SCHOOLNET_PROBES__CONNECTIVITY__PING_INTERVAL": "0.05s",
        "SCHOOLNET_PROBES__CONNECTIVITY__TIMEOUT": "0.5s",
    })
    return subprocess.run([str(install.venv / "bin/schoolnet-agent"), *args], env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def test_a_wrong_code_fails_in_one_line(install: Install) -> None:
    run = install.runs["wrong code"]
    assert run.returncode != 0
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 1, run.stderr
    assert errors[0].startswith("install-agent.sh: error: enrolment failed:")
    assert "enrolment code" in errors[0]  # the collector's reason, passed on
    assert "Traceback" not in run.stdout + run.stderr
    assert not install.credential_after_wrong_code


def test_the_install_enrols_and_lays_out_every_path(install: Install) -> None:
    run = install.runs["install"]
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert "enrolled as test-board/test-school/" in run.stdout
    assert (install.venv / "bin/python").exists()
    credential = install.state_dir / "credential.json"
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600
    assert stat.S_IMODE(install.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(install.config.stat().st_mode) == 0o640
    assert json.loads(credential.read_text())["collector_url"] == install.collector.url
    # The config is the commented example, with state_dir moved under the prefix (not the
    # stray SCHOOLNET_STATE_DIR the script was given).
    config = tomllib.loads(install.config.read_text())
    assert config["state_dir"] == str(install.state_dir)
    assert "# How much the agent logs" in install.config.read_text()
    assert install.unit.read_bytes() == (REPO / "deploy/systemd/schoolnet-agent.service").read_bytes()
    assert (install.root / "etc/sysusers.d/schoolnet-agent.conf").exists()
    # The checkout was built from a copy: no build/ left in it by this run.
    assert not (REPO / "build").exists()


def test_the_installed_agent_reports_its_status(install: Install) -> None:
    result = installed_agent(install, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["enrolled"] is True
    assert status["collector_url"] == install.collector.url
    assert status["state_dir"] == str(install.state_dir)


def test_the_installed_agent_measures_and_delivers(install: Install) -> None:
    result = installed_agent(install, "once")
    assert result.returncode == 0, result.stderr + result.stdout
    agent = json.loads(installed_agent(install, "status", "--json").stdout)["agent"].split("/")[-1]
    kinds = {row[0] for row in install.collector.query(
        "SELECT r.kind FROM records r JOIN agents a ON a.id = r.agent_id WHERE a.slug = ?", agent)}
    assert {"system", "connectivity"} <= kinds, kinds


def test_a_second_run_changes_nothing(install: Install) -> None:
    run = install.runs["again"]
    assert run.returncode == 0, run.stderr
    assert "already installed" in run.stdout
    assert "already enrolled as test-board/test-school/" in run.stdout
    assert "kept the existing" in run.stdout
    assert snapshot(install) == install.snapshot


def test_an_edited_config_is_never_overwritten(install: Install) -> None:
    original = install.config.read_text()
    install.config.write_text('room = "B 204"\n' + original.replace('\nroom = ""\n', "\n"))
    try:
        # No --from: the checkout the script is in, the same one: nothing to reinstall.
        run = run_script("--prefix", str(install.root))
        assert run.returncode == 0, run.stderr
        assert "already installed" in run.stdout
        assert 'room = "B 204"' in install.config.read_text()
    finally:
        install.config.write_text(original)


def test_enrolled_elsewhere_is_refused(install: Install) -> None:
    run = run_script("--prefix", str(install.root), "--from", str(REPO),
                     "--collector", "https://other.example.org", "--code", "x")
    assert run.returncode != 0
    assert len(run.stderr.strip().splitlines()) == 1
    assert "already enrolled" in run.stderr and "credential.json" in run.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--collector", "collector.example.org", "--code", "x"), "must start with https://"),
    (("--bogus",), "unknown argument '--bogus'"),
    (("--code",), "--code needs a value"),
    (("--purge",), "--purge goes with --uninstall"),
    (("--from", "/nonexistent/checkout"), "does not exist"),
    (("--python", "/nonexistent/python3"), "cannot make a venv"),
])
def test_bad_arguments_fail_in_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    run = run_script("--prefix", str(tmp_path / "root"), *args)
    assert run.returncode != 0
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert message in run.stderr


def test_a_real_root_needs_root() -> None:
    if os.getuid() == 0:
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 "bash", str(SCRIPT), "--collector", "https://c.example.org", "--code", "x"],
                                capture_output=True, text=True, timeout=60, check=False,
                                env=dict(os.environ, SCHOOLNET_INSTALL_ROOT="/"))
    else:
        result = run_script("--prefix", "/")
    assert result.returncode != 0
    assert "run it as root: sudo" in result.stderr


def test_the_script_installs_the_release_it_belongs_to() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f'SCHOOLNET_VERSION="{project["version"]}"' in SCRIPT.read_text()


def test_uninstall_removes_the_venv_and_keeps_config_and_state(install: Install) -> None:
    # Last in this module: it takes the installation away.
    run = run_script("--prefix", str(install.root), "--uninstall")
    assert run.returncode == 0, run.stderr
    assert not install.venv.exists()
    assert not install.unit.exists()
    assert install.config.exists() and (install.state_dir / "credential.json").exists()
    again = run_script("--prefix", str(install.root), "--uninstall")
    assert again.returncode == 0, again.stderr
    purged = run_script("--prefix", str(install.root), "--uninstall", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not install.config.exists() and not install.state_dir.exists()
