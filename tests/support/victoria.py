"""A real VictoriaMetrics (Debian's single-node `victoria-metrics`) as a child process on
127.0.0.1, and vmalert beside it, for the remote_write tests.

Traps (shared/COMPONENTS.md): without -httpListenAddr it listens on every interface;
fresh samples stay invisible to queries for 30 s unless -search.latencyOffset=0s and a
/internal/force_flush; samples older than -retentionPeriod are refused (the tests write
hours in the past, so the retention is long). The response cache is off: the tests query
the same range again after more data arrives late, which is what that cache gets wrong.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from support.processes import stop_child
from support.tools import free_port, require_tool


def wait_healthy(process: subprocess.Popen[bytes], health_url: str, name: str,
                 log: Callable[[], str], timeout: float = 30) -> None:
    """Until ``health_url`` answers 200; fail with the log's end if the child exits first
    or takes longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited: " + log()[-3000:])
        try:
            if httpx.get(health_url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} did not start: " + log()[-2000:])
        time.sleep(0.05)


class VictoriaMetrics:
    def __init__(self, data_dir: Path | None = None) -> None:
        self.binary = require_tool("victoria-metrics")
        self.root = Path(tempfile.mkdtemp(prefix="schoolnet-vm-"))
        self.data_dir = data_dir or self.root / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def start(self) -> VictoriaMetrics:
        log = (self.root / "victoria-metrics.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, f"-storageDataPath={self.data_dir}",
             f"-httpListenAddr=127.0.0.1:{self.port}", "-retentionPeriod=10y",
             "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=WARN"],
            stdout=log, stderr=log)
        wait_healthy(self.process, f"{self.url}/health", "victoria-metrics", self.log)
        return self

    def stop(self) -> None:
        """Stop it by its pid (SIGINT: it flushes to disk, as a clean shutdown does)."""
        stop_child(self.process, signal.SIGINT, timeout=30)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "victoria-metrics.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def flush(self) -> None:
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()

    def export(self, match: str, start: float, end: float) -> list[dict[str, Any]]:
        """Raw samples of the series ``match`` selects: [{"metric", "values", "timestamps"}]."""
        self.flush()
        answer = httpx.get(f"{self.url}/api/v1/export",
                           params={"match[]": match, "start": start, "end": end}, timeout=30)
        answer.raise_for_status()

        return [json.loads(line) for line in answer.text.splitlines() if line.strip()]

    def query(self, expr: str, at: float | None = None) -> dict[str, Any]:
        """An instant query, the whole answer (status, data or error)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        answer = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=30)
        return dict(answer.json())

    def query_range(self, expr: str, start: float, end: float, step: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/api/v1/query_range",
                           params={"query": expr, "start": start, "end": end, "step": step},
                           timeout=30)
        return dict(answer.json())


class VmAlert:
    """vmalert evaluating rule files against a VictoriaMetrics, writing recorded series and
    alert states back into it. Notifications go to a closed local port (nothing listens:
    the test reads the alerts from vmalert's API)."""

    def __init__(self, vm: VictoriaMetrics, rule_files: list[Path]) -> None:
        self.binary = require_tool("vmalert")
        self.vm = vm
        self.rule_files = rule_files
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="schoolnet-vmalert-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VmAlert:
        log = (self.root / "vmalert.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, *(f"-rule={path}" for path in self.rule_files),
             f"-datasource.url={self.vm.url}", f"-remoteWrite.url={self.vm.url}",
             f"-notifier.url=http://127.0.0.1:{free_port()}", "-evaluationInterval=1s",
             "-remoteWrite.flushInterval=100ms", f"-httpListenAddr=127.0.0.1:{self.port}",
             "-external.label=collector_url=http://127.0.0.1", "-loggerLevel=ERROR"],
            stdout=log, stderr=log)
        wait_healthy(self.process, f"{self.url}/health", "vmalert", self.log)
        return self

    def log(self) -> str:
        path = self.root / "vmalert.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alerts(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/alerts", timeout=10)
        answer.raise_for_status()
        return list(answer.json()["data"]["alerts"] or [])

    def groups(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/rules", timeout=10)
        answer.raise_for_status()
        return list(answer.json()["data"]["groups"] or [])

    def stop(self) -> None:
        stop_child(self.process)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)
