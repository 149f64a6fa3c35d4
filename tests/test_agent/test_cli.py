"""schoolnet-agent as a user runs it: real processes, JSON out, one-line errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from support.fake_collector import FakeCollector, serve
from support.tools import agent_env, console_script, free_port


def run(tmp_path: Path, *args: str, config: str = "") -> subprocess.CompletedProcess[str]:
    path = tmp_path / "agent.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n{config}')
    return subprocess.run([console_script("schoolnet-agent"), *args], env=agent_env(path),
                          capture_output=True, text=True, timeout=60, check=False)


def test_help_explains_every_command(tmp_path: Path) -> None:
    top = run(tmp_path, "--help")
    assert top.returncode == 0
    for command in ("enroll", "run", "once", "measure", "status"):
        assert command in top.stdout
        sub = run(tmp_path, command, "--help")
        assert sub.returncode == 0 and "usage:" in sub.stdout


def test_measure_system_prints_one_json_object_and_stores_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, "measure", "system", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["probe"] == "system" and document["ok"] is True
    assert document["memory_total_bytes"] > 0
    assert not (tmp_path / "state" / "outbox.sqlite").exists()


def test_measure_bandwidth_that_cannot_measure_exits_non_zero_with_json(tmp_path: Path) -> None:
    result = run(tmp_path, "measure", "bandwidth", "--backend", "http",
                 "--server", f"http://127.0.0.1:{free_port()}",
                 "--duration", "2s", "--json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and "cannot connect" in document["error"]
    assert document["download_bytes_per_second"] is None
    assert document["upload_bytes_per_second"] is None
    assert "cannot connect" in document["download_error"]


def test_measure_bandwidth_without_a_server_or_enrolment_says_so(tmp_path: Path) -> None:
    result = run(tmp_path, "measure", "bandwidth", "--backend", "http", "--json")
    assert result.returncode == 1
    assert "no test server" in json.loads(result.stdout)["error"]


@pytest.mark.parametrize("config, args, message", [
    ('[probes.system]\ninterval = "often"\n', ["status"], "probes.system.interval"),
    ('[outbox]\nmax_bites = 5\n', ["once"], "outbox.max_bites"),
    ("", ["measure", "bandwidth", "--duration", "forever"], "--duration"),
    ("", ["measure", "teleport"], "unknown probe 'teleport'"),
    ("", ["once"], "not enrolled"),
    ("", ["run"], "not enrolled"),
    ("", ["enroll", "--collector", "ftp://x", "--code", "C"], "must start with https://"),
    ("", ["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_non_zero(tmp_path: Path, config: str, args: list[str],
                                            message: str) -> None:
    result = run(tmp_path, *args, config=config)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("schoolnet-agent") and ": error: " in lines[0]
    assert message in lines[0], lines[0]


def test_enrol_against_an_unreachable_collector(tmp_path: Path) -> None:
    result = run(tmp_path, "enroll", "--collector", f"http://127.0.0.1:{free_port()}", "--code", "X")
    assert result.returncode == 1 and "cannot reach the collector" in result.stderr


def test_enrol_stores_the_credential_readable_by_the_agent_alone(tmp_path: Path) -> None:
    def enrol(batch: dict) -> tuple[int, dict[str, str], dict[str, str]]:  # type: ignore[type-arg]
        assert batch == {"code": "ABCD", "name": "lokaal-12", "version": "0.1.0"}
        return 200, {}, {"board": "b", "school": "s", "agent": "lokaal-12", "credential": "sna_x"}

    with serve(FakeCollector(enrol)) as url:
        result = run(tmp_path, "enroll", "--collector", url, "--code", "ABCD", "--name", "lokaal-12")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"enrolled as b/s/lokaal-12 with {url}"
    credential = tmp_path / "state" / "credential.json"
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600
    assert stat.S_IMODE(credential.parent.stat().st_mode) == 0o700
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    assert status["enrolled"] is True and status["agent"] == "b/s/lokaal-12"
    assert status["outbox_records"] == 0 and status["last_upload_at"] is None


def test_the_credential_goes_to_our_collector_only(tmp_path: Path) -> None:
    from agent.config import AgentSettings
    from agent.credential import Credential
    from agent.probes import ProbeContext
    from agent.probes.bandwidth import BandwidthProbe

    credential = Credential("https://collector.example:443", "sna_secret", "b", "s", "a")

    def probe_for(server: str) -> BandwidthProbe:
        settings = AgentSettings(state_dir=tmp_path, probes={"bandwidth": {
            "backend": "http", "server": server}})
        return BandwidthProbe(ProbeContext(settings, credential, tmp_path))

    default = probe_for("")
    servers = default._servers(default._backend_class())
    assert servers == ["https://collector.example:443"], "http tests the collector by default"
    assert default._options(servers[0]).credential == "sna_secret"
    assert probe_for("")._options("https://collector.example").credential == "sna_secret"
    other = probe_for("https://speed.example.net")
    assert other._options("https://speed.example.net").credential is None
    assert other._options("http://collector.example:443").credential is None, "not over plain http"


def test_run_measures_uploads_caches_settings_and_stops_on_sigterm(tmp_path: Path) -> None:
    import signal
    import time

    from agent.credential import Credential, save_credential

    fake = FakeCollector(settings={"probes": {"system": {"interval": "1s"}},
                                   "a_setting_from_a_newer_collector": 1})
    with serve(fake) as url:
        save_credential(tmp_path / "state", Credential(url, "sna_run", "b", "s", "pi"))
        config = tmp_path / "agent.toml"
        config.write_text(f'state_dir = "{tmp_path / "state"}"\n'
                          '[upload]\ninterval = "1s"\n[probes.bandwidth]\nenabled = false\n')
        daemon = subprocess.Popen([console_script("schoolnet-agent"), "--config", str(config), "run"],
                                  env=agent_env(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            deadline = time.monotonic() + 20
            while len(fake.delivered_seqs) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            daemon.send_signal(signal.SIGTERM)
            _, stderr = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, stderr
    assert len(fake.delivered_seqs) >= 2, "the collector's 1 s interval applied: " + stderr
    assert fake.headers[0]["Authorization"] == "Bearer sna_run"
    assert all(r["kind"] == "system" and r["ok"] for b in fake.batches for r in b["records"])
    cached = json.loads((tmp_path / "state" / "central-settings.json").read_text())
    assert cached["settings"]["probes"]["system"]["interval"] == "1s"
    assert "a_setting_from_a_newer_collector" in stderr, "an unknown central key is a warning"
    assert "Traceback" not in stderr
    after = json.loads(run(tmp_path, "status", "--json").stdout)
    assert after["last_upload_at"] is not None and after["last_error"] is None
    assert after["agent"] == "b/s/pi" and after["stream_id"]
    (tmp_path / "fresh").mkdir()
    fresh = json.loads(run(tmp_path / "fresh", "status", "--json").stdout)
    assert fresh["last_upload_at"] is None and fresh["outbox_records"] == 0
    assert set(fresh) == set(after), "status has the same keys before the first record"


def test_help_stays_light() -> None:
    """--help on a Pi must not pay for httpx, pydantic or psutil."""
    import sys

    probe = subprocess.run([sys.executable, "-c", (
        "import sys\n"
        "from agent.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('httpx', 'pydantic', 'psutil', 'sqlite3') if m in sys.modules),"
        " file=sys.stderr)")], capture_output=True, text=True, timeout=60, check=True)
    assert probe.stderr.strip() == "[]"


@pytest.mark.parametrize("command", [["status"], ["measure", "system", "--json"], ["once"], ["run"]])
def test_a_bad_config_value_is_exit_2_naming_the_key(tmp_path: Path, command: list[str]) -> None:
    result = run(tmp_path, *command, config='[probes.system]\ninterval = "often"\n')
    assert result.returncode == 2
    assert result.stderr.startswith("schoolnet-agent: error: config: probes.system.interval: ")
    assert result.stderr.count("\n") == 1 and result.stdout == ""


@pytest.mark.parametrize("config, key", [
    ('[probes.connectivity]\nenabled = true\nhttp_urls = ["elo.school.example"]\n',
     "probes.connectivity.http_urls.0"),
    ('[probes.connectivity]\nenabled = true\nping_interval = "0s"\n', "probes.connectivity.ping_interval"),
    ('[probes.connectivity]\nenabled = true\ntargets = ["bad host"]\n', "probes.connectivity.targets.0"),
])
def test_a_connectivity_config_that_cannot_work_stops_run_at_start(tmp_path: Path, config: str,
                                                                   key: str) -> None:
    result = run(tmp_path, "run", config=config)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"schoolnet-agent: error: config: {key}: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_config_file_named_but_missing_is_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLNET_")}
    result = subprocess.run([console_script("schoolnet-agent"), "--config", str(tmp_path / "nope.toml"),
                             "status"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_refused_enrolment_code_prints_the_collectors_reason(tmp_path: Path) -> None:
    fake = FakeCollector(lambda b: (403, {}, {"detail": "enrolment code expired"}))
    with serve(fake) as url:
        result = run(tmp_path, "enroll", "--collector", url, "--code", "OLD")
    assert result.returncode == 1
    assert result.stderr == "schoolnet-agent: error: enrolment refused (403): enrolment code expired\n"
    assert not (tmp_path / "state" / "credential.json").exists()
