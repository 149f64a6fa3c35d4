"""The real collector, agent and Prometheus as child processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from support.tools import agent_env, console_script, free_port, require_tool


def wait_until(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def stop_child(process: subprocess.Popen[bytes] | None, first: int = signal.SIGTERM,
               timeout: float = 15) -> None:
    """Stop a child politely with ``first`` (SIGTERM, or SIGINT where that is the
    program's clean shutdown), then with SIGKILL after ``timeout`` seconds."""
    if process is not None and process.poll() is None:
        process.send_signal(first)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ChildProcess:
    """A child we can stop politely (SIGTERM, then SIGKILL) or kill outright."""

    process: subprocess.Popen[bytes] | None = None

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_child(self.process)


class CollectorProcess(ChildProcess):
    """``schoolnet-collector serve`` on its own SQLite file, or on ``db_url`` (a PostgreSQL
    database that replicas share); restartable on the same port."""

    def __init__(self, workdir: Path, mode: str = "production", host: str = "127.0.0.1",
                 db_url: str | None = None) -> None:
        self.db_path = workdir / "collector.db"
        self.db_url = db_url or f"sqlite:///{self.db_path}"
        self.host = host
        self.port = free_port()
        self.url = f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
        self.log_path = workdir / "collector.log"
        self.env = dict(os.environ, SCHOOLNET_DB=self.db_url, SCHOOLNET_MODE=mode)
        self.process: subprocess.Popen[bytes] | None = None
        self.serve_args: list[str] = []
        self.verify: ssl.SSLContext | bool = True
        self.metrics_token_path = workdir / "metrics.token"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [console_script("schoolnet-collector"), *args],
            env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"schoolnet-collector {' '.join(args)} failed: {result.stderr}")
        return result

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [console_script("schoolnet-collector"), "serve", "--host", self.host,
             "--port", str(self.port), *self.serve_args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, 30, f"the collector on {self.url} (log: {self.log_path})")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"collector exited: {self.log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify).status_code == 200
        except httpx.HTTPError:
            return False

    def metrics_token_file(self) -> Path:
        """A file (mode 0600) with a metrics token made by ``metrics-token create``, as a
        deployment gives Prometheus; made once, on first use."""
        if not self.metrics_token_path.exists():
            token = self.cli("metrics-token", "create").stdout.strip()
            assert token, "metrics-token create printed no token"
            descriptor = os.open(self.metrics_token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(token + "\n")
        return self.metrics_token_path

    def metrics(self, timeout: float = 10) -> httpx.Response:
        """GET /metrics with the metrics token, as Prometheus scrapes it."""
        token = self.metrics_token_file().read_text().strip()
        return httpx.get(f"{self.url}/metrics", headers={"Authorization": f"Bearer {token}"},
                         timeout=timeout, verify=self.verify)

    def enroll_code(self, board: str = "test-board", school: str = "test-school") -> str:
        """Make the board and school when needed, and return a one-use code."""
        if board not in self.cli("board", "list").stdout.split():
            self.cli("board", "add", board.replace("-", " ").title(), "--id", board)
        if school not in self.cli("school", "list").stdout.split():
            self.cli("school", "add", "--board", board, school.title(), "--id", school)
        return self.cli("enroll-code", "--school", f"{board}/{school}").stdout.strip()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the collector's store directly: what a restart would find."""
        with sqlite3.connect(self.db_path, timeout=30) as db:
            return db.execute(sql, params).fetchall()


# An agent that measures its connectivity only, to loopback, in 2-second windows: records
# within seconds, and never a speed test (the machine running the tests is busy; its own
# tests would rightly come out invalid).
LOOPBACK_CONNECTIVITY = """
[probes.bandwidth]
enabled = false

[probes.connectivity]
enabled = true
window = "2s"
ping_interval = "0.05s"
timeout = "0.5s"
targets = ["127.0.0.1", "::1"]
gateway = ""
hops = 0
dns_servers = []
http_urls = []
"""


class AgentProcess(ChildProcess):
    """``schoolnet-agent`` with its own config file and state directory."""

    def __init__(self, workdir: Path, config: str = "") -> None:
        self.state_dir = workdir / "agent-state"
        self.config_path = workdir / "agent.toml"
        self.config_path.write_text(f'state_dir = "{self.state_dir}"\n{config}')
        self.log_path = workdir / "agent.log"
        self.env = agent_env(self.config_path)
        self.process: subprocess.Popen[bytes] | None = None

    def cli_command(self, *args: str) -> list[str]:
        return [console_script("schoolnet-agent"), *args]

    def cli(self, *args: str, check: bool = True, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.cli_command(*args),
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"schoolnet-agent {' '.join(args)} exited {result.returncode}: "
                f"{result.stderr}{result.stdout}"
            )
        return result

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``schoolnet-agent ARGS`` (default ``run``) in the background."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [console_script("schoolnet-agent"), *(args or ("run",))],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        return self.process

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.cli("status", "--json").stdout))

    def outbox_seqs(self) -> set[int]:
        """The seqs still waiting in the outbox, read the way a restarted agent would."""
        path = self.state_dir / "outbox.sqlite"
        if not path.exists():
            return set()
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            try:
                return {row[0] for row in db.execute("SELECT seq FROM records")}
            except sqlite3.OperationalError:  # created, tables not yet
                return set()


class PrometheusProcess(ChildProcess):
    """Debian's Prometheus scraping the collector once a second.

    ``token_file`` (e.g. ``CollectorProcess.metrics_token_file()``) goes into the scrape
    config as ``authorization: {credentials_file: …}``, as in
    deploy/prometheus/prometheus.example.yml; the collector answers 401 without it.
    """

    def __init__(self, workdir: Path, target: str, metrics_path: str = "/metrics",
                 token_file: Path | None = None) -> None:
        self.binary = require_tool("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.config_path = workdir / "prometheus.yml"
        authorization = ("    authorization:\n      type: Bearer\n"
                         f"      credentials_file: {json.dumps(str(token_file))}\n") if token_file else ""
        self.config_path.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: schoolnet\n"
            f"    metrics_path: {metrics_path}\n{authorization}"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        self.log_path = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_args: list[str] = []

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={self.config_path}",
             f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, 20, f"Prometheus ready (log: {self.log_path})")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        assert self.process is not None and self.process.poll() is None, "prometheus died"
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        answer.raise_for_status()
        return list(answer.json()["data"]["result"])

