"""A school's line in miniature, for accuracy tests and the bandwidth benchmark.

The collector (our http speed endpoints) and an iperf3 server run in the server
namespace of a ``ShapedLink``; an enrolled agent runs in the client namespace. Every
tool is run as a child process so that its CPU time and peak memory can be read from
the kernel (``wait4``), the same way for ours and for the anchors.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.netns import ShapedLink
from support.tools import agent_env

COLLECTOR_PORT = 8470
IPERF3_PORT = 5201


@dataclass(frozen=True)
class Run:
    """One child process's result: what it printed, and what it cost."""

    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float
    peak_rss_bytes: int
    wall_seconds: float

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.stdout)
        return document


def measured(command: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    """Run ``command`` to its end and read its own CPU time and peak RSS with ``wait4``
    (``ip netns exec`` execs the command in place, so the child is the tool itself)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
            time.sleep(0.05)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Run(child.returncode, out.read(), err.read(), usage.ru_utime + usage.ru_stime,
                   usage.ru_maxrss * 1024, wall)


class LineSite:
    """Collector + iperf3 server behind a shaped link, an agent enrolled from the client side."""

    def __init__(self, link: ShapedLink, workdir: Path) -> None:
        self.link = link
        self.workdir = workdir
        self.url = f"http://{link.server_ip}:{COLLECTOR_PORT}"
        db = workdir / "collector.db"
        self.collector_env = dict(os.environ, SCHOOLNET_DB=f"sqlite:///{db}",
                                  SCHOOLNET_MODE="production")
        self.agent_config = workdir / "agent.toml"
        self.agent_config.write_text(f'state_dir = "{workdir / "agent"}"\n')
        self.agent_env = agent_env(self.agent_config)

    def start(self) -> LineSite:
        collector = self.link.console_script("schoolnet-collector")
        for args in (["board", "add", "Line", "--id", "line"],
                     ["school", "add", "--board", "line", "School", "--id", "school"]):
            subprocess.run([str(collector), *args], env=self.collector_env, check=True,
                           capture_output=True, timeout=60)
        log = (self.workdir / "collector.log").open("ab")
        self.link.popen_script("server", "schoolnet-collector", "serve", "--host", self.link.server_ip,
                               "--port", str(COLLECTOR_PORT), env=self.collector_env, stdout=log,
                               stderr=subprocess.STDOUT)
        self.link.popen("server", "iperf3", "-s", "-B", self.link.server_ip, "-p", str(IPERF3_PORT),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_for_collector()
        code = subprocess.run([str(collector), "enroll-code", "--school", "line/school"],
                              env=self.collector_env, check=True, capture_output=True, text=True,
                              timeout=60).stdout.strip()
        enrolled = self.link.run_script("client", "schoolnet-agent", "enroll", "--collector", self.url,
                                        "--code", code, "--name", "probe", env=self.agent_env)
        if enrolled.returncode != 0:
            raise RuntimeError(f"enrolment failed: {enrolled.stderr}")
        return self

    def _wait_for_collector(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = self.link.run("client", "python3", "-c", (
                "import urllib.request,sys\n"
                f"urllib.request.urlopen('{self.url}/healthz', timeout=1)"), timeout=10)
            if answer.returncode == 0:
                return
            time.sleep(0.3)
        log = (self.workdir / "collector.log").read_text()[-2000:]
        raise RuntimeError(f"the collector in the server namespace did not answer: {log}")

    # --- the tools, each a measured child process in the client namespace -----------------

    def agent_measure(self, *options: str, timeout: float = 120) -> Run:
        """``schoolnet-agent measure bandwidth --json`` (default: the http backend against
        the collector)."""
        command = self.link.command("client", self.link.console_script("schoolnet-agent"), "measure",
                                    "bandwidth", "--json", *options)
        return measured(command, self.agent_env, timeout)

    def iperf3(self, reverse: bool, streams: int = 4, seconds: float = 4.0) -> Run:
        """iperf3 -P ``streams`` in the client namespace. (Not ``-O``: with its omitted
        seconds iperf3 reported 19.7 Mbit/s of payload on a 20 Mbit/s link, above what
        the link can carry.)"""
        command = self.link.command("client", "iperf3", "-c", self.link.server_ip, "-p", str(IPERF3_PORT),
                                    "-P", str(streams), "-t", f"{seconds:g}", "-J",
                                    *(("-R",) if reverse else ()))
        return measured(command, timeout=seconds + 30)


def iperf3_goodput(run: Run) -> float:
    """Bytes per second received, over the whole test, as iperf3 reports it."""
    document = run.json()
    if "error" in document:
        raise RuntimeError(f"iperf3: {document['error']}")
    return float(document["end"]["sum_received"]["bits_per_second"]) / 8
