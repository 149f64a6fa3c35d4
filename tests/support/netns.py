"""A kernel-shaped link between two network namespaces: the ground truth for bandwidth tests.

``ShapedLink`` makes two namespaces (server side and client side) joined by a veth pair,
10.203.N.1 (server) and 10.203.N.2 (client), and — given a rate — a ``tbf`` qdisc on
BOTH ends: the server's egress shapes the download, the client's egress the upload. The
kernel enforces the rate, so a measured goodput above it is a bug in the measurement.
tbf counts whole frames: TCP's payload is at most 1448 of every 1514 bytes (95.6 % of the
rate); iperf3 with 4 streams measured 0.93-0.97 of the rate from 2 to 1000 Mbit/s here.

Traffic stays inside namespaces this code created; they are deleted by name afterwards
(also when the body raises), and every process started in them is killed first (a process
left inside keeps a deleted namespace alive).

Usable outside pytest (benchmarks): only ``require_netns`` touches pytest, and only when
called. Needs root and iproute2 (``ip``, ``tc``).
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

Side = Literal["server", "client"]
SIDES: tuple[Side, ...] = ("server", "client")

BIN = Path(sys.executable).parent  # the virtual environment's console scripts
MTU_FRAME_BYTES = 1514  # a full Ethernet frame as tbf counts it (payload + 14 bytes header)
# tbf refills its bucket per timer tick in the worst case (HZ=250 kernels: every 4 ms), so a
# bucket smaller than one tick's worth of bytes cannot reach the rate; it must also hold a
# few full frames or every packet waits for tokens.
TICK_SECONDS = 1 / 250
MIN_BURST_FRAMES = 10
# The queue behind the bucket: 50 ms of traffic, but at least this many full frames, so a
# slow link (2 Mbit/s: 40 frames = 240 ms) does not drop four streams' slow start to death.
# Why not more: a receiver counts bytes in order, so after a loss the bytes behind the hole
# arrive in one lump a round trip later; with the queue as the round trip, a window that
# starts at such a hole reads up to queue/window too high (measured at 10 Mbit/s: 200 ms
# gave 1.00 of the wire rate, above what the payload can reach). A bloated line to model
# in a benchmark: pass queue_seconds.
QUEUE_SECONDS = 0.050
MIN_QUEUE_FRAMES = 40

_counter = itertools.count()


class NetnsError(RuntimeError):
    """A namespace, link or qdisc could not be set up; the message has ip's/tc's reason."""


def _ip(*argv: str) -> None:
    _checked(["ip", *argv])


def _checked(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed: {(result.stderr or result.stdout).strip()}")


def tbf_parameters(rate_mbit: float, queue_seconds: float = QUEUE_SECONDS) -> tuple[int, float]:
    """(burst bytes, latency seconds) for ``tc … tbf`` at this rate (see the constants)."""
    rate_bytes = rate_mbit * 1e6 / 8
    burst = max(int(rate_bytes * TICK_SECONDS), MIN_BURST_FRAMES * MTU_FRAME_BYTES)
    latency = max(queue_seconds, MIN_QUEUE_FRAMES * MTU_FRAME_BYTES / rate_bytes)
    return burst, latency


class InNamespaces(abc.ABC):
    """Running programs inside one of this object's namespaces (by role: "server",
    "school", ...); what ``popen`` starts is killed when the namespaces go."""

    namespaces: Mapping[Any, str]
    _children: list[subprocess.Popen[Any]]

    def command(self, where: str, *argv: str | os.PathLike[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[where], *map(str, argv)]

    def run(self, where: str, *argv: str | os.PathLike[str], **kwargs: Any
            ) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` inside one namespace (capture_output, text and a 60 s timeout
        unless given)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("check", False)
        return subprocess.run(self.command(where, *argv), **kwargs)

    def popen(self, where: str, *argv: str | os.PathLike[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen`` inside one namespace; killed when the namespaces go."""
        child: subprocess.Popen[Any] = subprocess.Popen(self.command(where, *argv), **kwargs)
        self._children.append(child)
        return child

    def _stop_children(self) -> None:
        """Kill what ``popen`` started, and close its pipe (the first thing every ``close``
        does)."""
        for child in self._children:
            if child.poll() is None:
                child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
            if child.stdout is not None:
                child.stdout.close()
        self._children.clear()

    @abc.abstractmethod
    def close(self) -> None:
        """Kill what runs inside, then delete the namespaces: each network knows what it made."""

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class ShapedLink(InNamespaces):
    """Two namespaces joined by a veth pair, optionally shaped to ``rate_mbit`` both ways."""

    def __init__(self, rate_mbit: float | None = None, prefix: str = "sn",
                 queue_seconds: float = QUEUE_SECONDS) -> None:
        number = next(_counter)
        self.subnet = number % 254 + 1  # the N of 10.203.N.0/24
        # Short names (an interface name is at most 15 characters), unique across processes
        # (the dash keeps pid 12 link 34 apart from pid 123 link 4).
        base = f"{prefix}{os.getpid()}-{number}"
        self.namespaces: dict[Side, str] = {"server": f"{base}s", "client": f"{base}c"}
        self.interfaces: dict[Side, str] = {"server": f"{base}sv", "client": f"{base}cv"}
        if len(self.interfaces["server"]) > 15:
            raise NetnsError(f"prefix {prefix!r} makes interface names longer than 15 characters")
        self.server_ip = f"10.203.{self.subnet}.1"
        self.client_ip = f"10.203.{self.subnet}.2"
        self.rate_mbit = rate_mbit
        self.queue_seconds = queue_seconds
        self._children: list[subprocess.Popen[Any]] = []
        self._created: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> ShapedLink:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        for namespace in self.namespaces.values():
            _ip("netns", "add", namespace)
            self._created.append(namespace)
        _ip("link", "add", self.interfaces["server"], "netns", self.namespaces["server"], "type", "veth",
            "peer", "name", self.interfaces["client"], "netns", self.namespaces["client"])
        sides: tuple[tuple[Side, str], ...] = (("server", self.server_ip), ("client", self.client_ip))
        for side, address in sides:
            namespace, interface = self.namespaces[side], self.interfaces[side]
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", interface)
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", namespace, "link", "set", interface, "up")
        if self.rate_mbit is not None:
            self._shape("add", self.rate_mbit)

    def close(self) -> None:
        """Kill what runs inside, then delete the namespaces by name. Safe to call twice."""
        self._stop_children()
        for namespace in self._created:
            # Anything else left inside (a grandchild) runs in a namespace we made: ours.
            pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                                  text=True, timeout=30, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30,
                           check=False)
        self._created.clear()

    # -- shaping ---------------------------------------------------------------------------

    def set_rate(self, rate_mbit: float | None) -> None:
        """Change the shaping on both ends; ``None`` removes it."""
        if rate_mbit is None:
            if self.rate_mbit is not None:
                for side in SIDES:
                    _checked(["tc", "-n", self.namespaces[side], "qdisc", "del", "dev",
                              self.interfaces[side], "root"])
        else:
            self._shape("add" if self.rate_mbit is None else "change", rate_mbit)
        self.rate_mbit = rate_mbit

    def _shape(self, verb: str, rate_mbit: float) -> None:
        if not 0 < rate_mbit <= 100_000:
            raise NetnsError(f"rate {rate_mbit} Mbit/s is outside what tbf can shape here")
        burst, latency = tbf_parameters(rate_mbit, self.queue_seconds)
        for side in SIDES:
            _checked(["tc", "-n", self.namespaces[side], "qdisc", verb, "dev", self.interfaces[side],
                      "root", "tbf", "rate", f"{rate_mbit}mbit", "burst", str(burst),
                      "latency", f"{latency * 1000:.1f}ms"])

    @property
    def rate_bytes_per_second(self) -> float | None:
        """The shaped rate in bytes per second on the wire (frames, headers included)."""
        return None if self.rate_mbit is None else self.rate_mbit * 1e6 / 8

    # -- running things inside -------------------------------------------------------------

    def wrapper(self, side: Side, program: str, directory: Path) -> Path:
        """An executable that runs ``program`` (with its arguments) inside one namespace.

        For code under test that starts a program itself (the iperf3 backend): point its
        configured binary here, and the program runs in the namespace while the test stays
        outside. ``exec`` all the way (``ip netns exec`` execs too): the pid the caller sees
        is the program's, so its signals and ``/proc/PID`` reach the program itself.
        """
        target = shutil.which(program) or program
        path = directory / f"{Path(program).name}-in-{self.namespaces[side]}"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {self.namespaces[side]} {shlex.quote(target)} "$@"\n')
        path.chmod(0o755)
        return path

    @staticmethod
    def console_script(name: str) -> Path:
        """A console script of this project (``schoolnet-agent``) from the running venv."""
        path = BIN / name
        if not path.exists():
            raise NetnsError(f"{path} is missing: install the project (pip install -e '.[collector]')")
        return path

    def run_script(self, side: Side, name: str, *args: str, **kwargs: Any
                   ) -> subprocess.CompletedProcess[Any]:
        """Run a console script of this project inside one namespace (the client, usually)."""
        return self.run(side, self.console_script(name), *args, **kwargs)

    def popen_script(self, side: Side, name: str, *args: str, **kwargs: Any) -> subprocess.Popen[Any]:
        return self.popen(side, self.console_script(name), *args, **kwargs)


def listening(pid: int, port: int) -> bool:
    """Whether process ``pid``'s network namespace has a TCP socket listening on ``port``.

    Read from ``/proc/PID/net/tcp*``, which shows the namespace the process lives in: it
    works for a server inside a ShapedLink as for one on loopback. Connecting to find out
    would disturb a server such as iperf3's (it takes any connection for a test).
    """
    if _entering_namespace(pid):
        return False
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _entering_namespace(pid: int) -> bool:
    """Whether ``pid`` is still ``ip netns exec`` on its way into the namespace: until it
    has entered, /proc/PID/net shows the machine's own namespace, where another program
    (a demo collector on the same port) may be listening."""
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name == "ip"
    except OSError:
        return False


def wait_listening(process: subprocess.Popen[Any], port: int, timeout: float = 10.0) -> None:
    """Wait until the server ``process`` listens on ``port``; NetnsError if it exits or not in time."""
    deadline = time.monotonic() + timeout
    while not listening(process.pid, port):
        if process.poll() is not None:
            raise NetnsError(f"{process.args!r} exited with status {process.returncode} before listening")
        if time.monotonic() > deadline:
            raise NetnsError(f"{process.args!r} did not listen on port {port} within {timeout} s")
        time.sleep(0.02)


def netns_problem() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"sn{os.getpid()}probe"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                            timeout=30, check=False)
    if result.returncode != 0:
        return f"ip netns add failed: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30, check=False)
    return None


def require_netns() -> None:
    """Skip the test (fail it in CI, CI=true) when network namespaces cannot be made."""
    # Imported here: the module is also used by benchmark scripts outside pytest.
    from support.tools import unavailable

    problem = netns_problem()
    if problem is not None:
        unavailable(f"needs network namespaces: {problem}")
