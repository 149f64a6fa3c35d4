"""Run a collector and one agent on this machine until Ctrl-C (called by scripts/demo).

Everything the demo sends stays on this machine: the agent's bandwidth test runs
against the collector's own speed endpoints on 127.0.0.1, its connectivity probes go to
loopback and the collector, and no public target is used.
Re-running reuses the board, school, enrolled agent and metrics token kept in .demo/.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
BIN = Path(sys.executable).parent

AGENT_CONFIG = """\
# The demo agent: every target is the local collector, intervals are short so that
# something shows up within a minute.
state_dir = "{state_dir}"
# The demo's agent stands in this room: where the machine has Wi-Fi, its readings show
# up as the room's coverage grade.
room = "Demo room"

[collector]
# The agent kept in .demo/ may have been enrolled by a demo on another port.
url = "{url}"


[probes.system]
interval = "15s"

[probes.bandwidth]
# A fixed cadence instead of a few random times a day, so that tests show up soon.
interval = "5m"
# The product's default is M-Lab's public servers; the demo tests against the local
# collector's own speed endpoints (http backend, empty server = the collector).
backend = "http"
server = ""
duration = "3s"
max_bytes = "200MB"

[probes.connectivity]
# The product's defaults are public resolvers, anycast addresses, well-known sites and
# this machine's own router; the demo probes loopback and the collector only. No DNS
# rounds: the demo has no resolver of its own, and the machine's is not loopback.
window = "30s"
targets = ["127.0.0.1", "::1"]
gateway = ""
hops = 0
dns_servers = []
http_urls = ["{url}/healthz"]

[probes.wifi]
# On a laptop with Wi-Fi the demo shows its link (reading it sends nothing) and the
# grade of the room above; it never asks for a fresh scan, which would send
# probe requests over the air: only the system's own cached scan results are used.
trigger_scan = false

[probes.users]
# Only the kernel's neighbour table: the demo never asks the machine's real LAN (no ARP
# census, no listening); the count is all that is recorded.
interval = "1m"
sources = ["neighbours"]

[upload]
interval = "10s"
"""


# The demo school's line as a board's spreadsheet would have it (docs/contracts-csv.md),
# so the verdicts and the contract series have something to judge against. The demo tests
# over loopback, so its line beats any contract.
DEMO_CONTRACT = """\
board,board_name,school,school_name,connection,provider,technology,role,contract_start,\
download_advertised_mbps,upload_advertised_mbps,download_minimum_mbps,upload_minimum_mbps,\
download_normal_mbps,upload_normal_mbps,download_maximum_mbps,upload_maximum_mbps,monthly_cost,currency
demo-board,Demo board,demo-school,Demo school,demo-line,Demo provider,fibre,main,2024-01-01,\
100,100,50,50,80,80,100,100,99.00,EUR
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SCHOOLNET_DEMO_PORT", 8470)))
    args = parser.parse_args()
    # SIGTERM (a terminal closing, `timeout`) stops the demo like Ctrl-C: with its
    # collector and agent, not leaving them running.
    signal.signal(signal.SIGTERM, _interrupt)
    DEMO.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{args.port}"
    env = dict(os.environ, SCHOOLNET_DB=f"sqlite:///{DEMO / 'collector.db'}",
               SCHOOLNET_MODE="development")
    agent_config = DEMO / "agent.toml"
    agent_config.write_text(AGENT_CONFIG.format(state_dir=DEMO / "agent", url=url))
    agent_env = dict(os.environ, SCHOOLNET_AGENT_CONFIG=str(agent_config))

    collector = subprocess.Popen(
        [BIN / "schoolnet-collector", "serve", "--host", "127.0.0.1", "--port", str(args.port)],
        env=env,
    )
    agent: subprocess.Popen[bytes] | None = None
    try:
        wait_for_health(url, collector)
        contracts = DEMO / "contracts.csv"
        contracts.write_text(DEMO_CONTRACT)
        # Idempotent: a re-run imports the same rows and changes nothing.
        run([BIN / "schoolnet-collector", "import", "contracts", contracts], env)
        if not (DEMO / "agent" / "credential.json").exists():
            code = set_up_school(env)
            run([BIN / "schoolnet-agent", "enroll", "--collector", url, "--code", code,
                 "--name", "demo-agent"], agent_env)
        token_file = ensure_metrics_token(url, env)
        password_file = ensure_demo_account(env)
        agent = subprocess.Popen([BIN / "schoolnet-agent", "run"], env=agent_env)
        database = DEMO / "collector.db"
        print(f"""
schoolnet demo is running (Ctrl-C stops it). Look here:
  metrics for Prometheus:  {url}/metrics   (values appear after the first upload, ~15 s;
    it needs the metrics token in {token_file.relative_to(ROOT)}):
    curl -H "Authorization: Bearer $(cat {token_file.relative_to(ROOT)})" {url}/metrics
  the web pages:           {url}/   (sign in as "demo", the password is in
    {password_file.relative_to(ROOT)}): the provider comparison at {url}/report, the school's
    benchmark at {url}/schools/demo-board/demo-school/benchmark
  collector health:        {url}/healthz
  API documentation:       {url}/docs
  the agent's outbox:      .venv/bin/schoolnet-agent --config {agent_config} status
  one measurement:         .venv/bin/schoolnet-agent --config {agent_config} measure bandwidth --json
  verdicts (the contract in {contracts}):
    .venv/bin/schoolnet-collector --db sqlite:///{database} verdicts --school demo-board/demo-school
  incidents (checked every 5 minutes; the demo's loopback line beats its contract, so
    expect none unless the agent stops reporting in school hours):
    .venv/bin/schoolnet-collector --db sqlite:///{database} incident list --state all
""", flush=True)
        while collector.poll() is None and agent.poll() is None:
            time.sleep(0.5)
        return 1  # one of them stopped on its own: its own message says why
    except KeyboardInterrupt:
        return 0
    finally:
        for process in (agent, collector):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (agent, collector):
            if process is not None:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def set_up_school(env: dict[str, str]) -> str:
    """Create the demo board and school once, and return a fresh enrolment code."""
    collector = BIN / "schoolnet-collector"
    boards = run([collector, "board", "list"], env)
    if "demo-board" not in boards.split():
        run([collector, "board", "add", "Demo board", "--id", "demo-board"], env)
        run([collector, "school", "add", "--board", "demo-board", "Demo school",
             "--id", "demo-school"], env)
    return run([collector, "enroll-code", "--school", "demo-board/demo-school"], env).strip()


def ensure_metrics_token(url: str, env: dict[str, str]) -> Path:
    """The demo's token for /metrics in .demo/metrics-token (mode 0600): made once, and
    made again when the collector no longer knows it (its database was reset)."""
    path = DEMO / "metrics-token"
    if path.exists() and _reads_metrics(url, path.read_text().strip()):
        return path
    token = run([BIN / "schoolnet-collector", "metrics-token", "create"], env).strip()
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return path


def ensure_demo_account(env: dict[str, str]) -> Path:
    """A collector admin "demo" for the web pages, its password (random, made once) in
    .demo/password (mode 0600); set again when the database was reset without the file."""
    path = DEMO / "password"
    collector = BIN / "schoolnet-collector"
    new_password = not path.exists()
    if new_password:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(12) + "\n")
    users = json.loads(run([collector, "user", "list", "--json"], env))
    if not any(user["username"] == "demo" for user in users):
        run([collector, "user", "add", "demo", "--role", "admin", "--name", "Demo admin",
             "--password-file", path], env)
    elif new_password:
        run([collector, "user", "passwd", "demo", "--password-file", path], env)
    return path


def _reads_metrics(url: str, token: str) -> bool:
    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return False
        sys.exit(f"scripts/demo: {url}/metrics answered {exc.code} {exc.reason}")
    except OSError as exc:
        sys.exit(f"scripts/demo: {url}/metrics did not answer: {exc}")


def run(command: list[object], env: dict[str, str]) -> str:
    result = subprocess.run([str(part) for part in command], env=env, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"scripts/demo: {Path(str(command[0])).name} {command[1]} failed: "
                 f"{result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def wait_for_health(url: str, collector: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if collector.poll() is not None:
            sys.exit("scripts/demo: the collector stopped at start; its message is above")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"scripts/demo: the collector did not answer on {url} within 30 s")


if __name__ == "__main__":
    sys.exit(main())
