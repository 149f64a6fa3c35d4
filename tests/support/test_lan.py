"""A school LAN of many devices for the ARP census: macvlan hosts, each in its own namespace.

::

    agent namespace   lan0 (macvlan, bridge mode) ──┐
    host namespace 1  eth0 (macvlan, bridge mode) ──┤
    ...                                             ├── parent "lan": a veth end in the lan namespace
    host namespace N  eth0 (macvlan, bridge mode) ──┘   (its peer is up so the parent has carrier)

In bridge mode the macvlan ports of one parent form a switch: a broadcast from one reaches
all others, a unicast goes to its owner. Every host is a real kernel answering ARP, with a
fixed locally administered MAC (02:cb:…) so a test knows the truth. A host is

- ``answering``: its kernel answers every ARP request for its address;
- ``lossy``: an nft rule in its namespace drops every second request for its address,
  starting with the first (``numgen inc mod 2 0 drop``: deterministic, so a test cannot
  flake); ``reset_loss`` starts the count again so each tool of a benchmark meets the same;
- ``silent``: its namespace drops all ARP input, so it never answers (nor learns anyone).

Building 200 hosts takes one ``ip -batch`` for the namespaces, one for the links, and one
short ``ip``/``nft`` process per host run in parallel (``setup_seconds`` says how long).

Traffic stays inside namespaces this code created; they are deleted by name afterwards (also
when the body raises), and every process started in them is killed first. Usable outside
pytest (the benchmark). Needs root, iproute2 and nft.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from support.netns import InNamespaces, NetnsError

Behaviour = Literal["answering", "lossy", "silent"]
REPO = Path(__file__).resolve().parents[2]
AGENT_MAC = "02:cb:ff:ff:00:01"
AGENT_INTERFACE = "lan0"
HOST_INTERFACE = "eth0"
# Parallel set-up processes: enough to keep a few cores busy, few enough not to thrash.
SETUP_WORKERS = 16
TIME = "/usr/bin/time"  # GNU time (Debian package "time"): a program's rusage
KEY = bytes(range(32))  # the census's DeviceKeys key in a LanCensus: tests recompute hashes

_counter = itertools.count()


@dataclass(frozen=True)
class Host:
    ip: str
    behaviour: Behaviour
    mac: str = ""  # given by TestLan
    namespace: str = ""

    @property
    def responsive(self) -> bool:
        return self.behaviour != "silent"


def spread(network: str, count: int, lossy: int = 0, silent: int = 0, skip: int = 1) -> list[Host]:
    """``count`` hosts spread evenly over ``network``'s addresses after the first ``skip`` (the
    agent's), every ``count/lossy``-th lossy and every ``count/silent``-th silent (offset, so
    the two kinds interleave with answering hosts)."""
    subnet = ipaddress.IPv4Network(network)
    usable = [*subnet.hosts()][skip:]
    if count > len(usable):
        raise NetnsError(f"{count} hosts do not fit in {network}")
    step = len(usable) / count
    kinds: list[Behaviour] = ["answering"] * count
    for index in range(lossy):
        kinds[int(index * count / lossy)] = "lossy"
    for index in range(silent):
        kinds[int(index * count / silent + count / silent / 2)] = "silent"
    if kinds.count("lossy") != lossy or kinds.count("silent") != silent:
        raise NetnsError("lossy and silent hosts overlap: choose other counts")
    return [Host(str(usable[int(i * step)]), kinds[i]) for i in range(count)]


def host_mac(index: int) -> str:
    """A locally administered unicast MAC for host ``index`` (02:cb:…: never a vendor's)."""
    return f"02:cb:{index >> 16 & 255:02x}:{index >> 8 & 255:02x}:{index & 255:02x}:01"


def _run(argv: Sequence[str], stdin: str = "") -> None:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed: {(result.stderr or result.stdout).strip()[:500]}")


def _nft_rules(host: Host) -> str | None:
    if host.behaviour == "lossy":
        # Only requests for its own address advance the count: the broadcasts for the other
        # hosts it hears must not decide which of its own requests get through.
        rule = f"arp operation request arp daddr ip {host.ip} numgen inc mod 2 0 drop"
        policy = "accept"
    elif host.behaviour == "silent":
        rule, policy = "", "drop"
    else:
        return None
    return (f"flush ruleset\ntable arp census {{\n  chain input {{\n    type filter hook input priority 0; "
            f"policy {policy};\n    {rule}\n  }}\n}}\n")


class TestLan(InNamespaces):
    """The agent's namespace and ``hosts`` on one macvlan switch (see the module docstring)."""

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, network: str, hosts: Iterable[Host], agent_ip: str | None = None,
                 prefix: str = "al") -> None:
        self.network = ipaddress.IPv4Network(network)
        self.agent_ip = agent_ip or str(next(self.network.hosts()))
        base = f"{prefix}{os.getpid()}-{next(_counter)}"
        self.hosts = [Host(h.ip, h.behaviour, host_mac(i), f"{base}h{i}") for i, h in enumerate(hosts)]
        if any(ipaddress.IPv4Address(h.ip) not in self.network or h.ip == self.agent_ip for h in self.hosts):
            raise NetnsError(f"every host needs its own address in {network}, apart from the agent's")
        self.namespaces: dict[str, str] = {"agent": f"{base}a", "lan": f"{base}l"}
        self.namespaces.update({host.ip: host.namespace for host in self.hosts})
        self._children: list[subprocess.Popen[Any]] = []
        self._created: list[str] = []
        self.setup_seconds = 0.0

    @property
    def responsive(self) -> list[Host]:
        return [host for host in self.hosts if host.responsive]

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> TestLan:
        started = time.monotonic()
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - started
        return self

    def _create(self) -> None:
        names = list(self.namespaces.values())
        # Recorded before they exist: close() deletes whatever of them was made.
        self._created = names
        _run(["ip", "-batch", "-"], "".join(f"netns add {name}\n" for name in names))
        lan, agent = self.namespaces["lan"], self.namespaces["agent"]
        links = ["link add lan type veth peer name lanpeer", "link set lanpeer up", "link set lan up",
                 f"link add link lan name {AGENT_INTERFACE} netns {agent} address {AGENT_MAC} "
                 "type macvlan mode bridge"]
        links += [f"link add link lan name {HOST_INTERFACE} netns {host.namespace} address {host.mac} "
                  "type macvlan mode bridge" for host in self.hosts]
        _run(["ip", "-n", lan, "-batch", "-"], "\n".join(links) + "\n")
        jobs: list[tuple[str, str, str, str | None]] = [(agent, AGENT_INTERFACE, self.agent_ip, None)]
        jobs += [(host.namespace, HOST_INTERFACE, host.ip, _nft_rules(host)) for host in self.hosts]
        with ThreadPoolExecutor(SETUP_WORKERS) as pool:
            for done in pool.map(lambda job: self._configure(*job), jobs):
                del done  # map re-raises a job's NetnsError here

    def _configure(self, namespace: str, interface: str, ip: str, rules: str | None) -> None:
        # The firewall first: the host is never reachable without its behaviour in place.
        if rules is not None:
            _run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], rules)
        # No IPv6 link-local address: 200 hosts' duplicate address detection and multicast
        # reports would flood every port of the switch for nothing.
        _run(["ip", "-n", namespace, "-batch", "-"],
             f"link set lo up\nlink set {interface} addrgenmode none\n"
             f"addr add {ip}/{self.network.prefixlen} dev {interface}\nlink set {interface} up\n")

    def reset_loss(self) -> None:
        """Restart every lossy host's count: its next request for itself is dropped again."""
        lossy = [host for host in self.hosts if host.behaviour == "lossy"]
        with ThreadPoolExecutor(SETUP_WORKERS) as pool:
            for done in pool.map(lambda h: _run(["ip", "netns", "exec", h.namespace, "nft", "-f", "-"],
                                                _nft_rules(h) or ""), lossy):
                del done

    def close(self) -> None:
        """Kill what runs inside, then delete the namespaces by name. Safe to call twice."""
        self._stop_children()
        if not self._created:
            return
        # Only the agent's namespace ever runs anything long-lived (hosts only get short ip and
        # nft commands, finished before we get here); anything left there is ours.
        pids = subprocess.run(["ip", "netns", "pids", self.namespaces["agent"]], capture_output=True,
                              text=True, timeout=30, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        # -force: go on past a name that was never made (set-up failed half way).
        deletions = "".join(f"netns del {name}\n" for name in self._created)
        subprocess.run(["ip", "-force", "-batch", "-"], input=deletions, capture_output=True, text=True,
                       timeout=60, check=False)
        self._created = []


# -- measuring a process -------------------------------------------------------------------

@dataclass(frozen=True)
class Measured:
    """A program's own cost, from the kernel (its rusage, as GNU time reads it)."""

    returncode: int
    stdout: str
    stderr: str
    wall_seconds: float
    user_seconds: float
    system_seconds: float
    peak_rss_bytes: int

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.system_seconds


def measured(lan: TestLan, argv: Sequence[str], timeout: float = 120.0, cwd: Path | None = None) -> Measured:
    """Run ``argv`` in the agent's namespace to its end and measure it: wall time from start
    to exit, CPU seconds (user, system) and peak RSS of the program itself.

    Through GNU time inside the namespace, not our own wait4: a child forked from this
    (large) Python process inherits its resident pages in its peak RSS, one forked from the
    small ``time`` does not."""
    with tempfile.NamedTemporaryFile("w+") as usage:
        started = time.monotonic()
        run = subprocess.run(lan.command("agent", TIME, "-q", "-f", "%U %S %M", "-o", usage.name, *argv),
                             capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
        wall = time.monotonic() - started
        fields = usage.read().split()
    try:
        user, system, peak_kib = float(fields[-3]), float(fields[-2]), int(fields[-1])
    except (IndexError, ValueError):
        raise NetnsError(f"{TIME} wrote no usage for {argv[0]} (exit {run.returncode}): "
                         f"{run.stderr[-500:]}") from None
    return Measured(run.returncode, run.stdout, run.stderr, wall, user, system, peak_kib * 1024)


# The census in a process of its own, as the agent runs it; prints what a test checks as JSON.
CENSUS_SCRIPT = """
import json, resource, sys
arguments = json.loads(sys.argv[1])
from agent.config import ArpCensusConfig
from agent.probes.users.arp import ArpSource
from agent.probes.users.census import CensusUnavailable, DeviceKeys
key = bytes.fromhex(arguments["key"])
source = ArpSource(ArpCensusConfig(**arguments["config"]), DeviceKeys(random=lambda size: key[:size]))
before = resource.getrusage(resource.RUSAGE_SELF)
try:
    result = source.census()
except CensusUnavailable as exc:
    print(json.dumps({"unavailable": str(exc)}))
    sys.exit(3)
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "count": result.count, "devices": sorted(device.hex() for device in result.devices or ()),
    "rounds": result.rounds, "requests": result.requests, "duration_seconds": result.duration_seconds,
    "source": result.source, "repr": repr(result),
    "census_user_seconds": after.ru_utime - before.ru_utime,
    "census_system_seconds": after.ru_stime - before.ru_stime,
}))
"""


def run_census(lan: TestLan, config: dict[str, Any], without_net_raw: bool = False,
               timeout: float = 120.0) -> tuple[dict[str, Any], Measured]:
    """ArpSource(config).census() in a fresh process in the agent's namespace: its JSON
    output (or ``{"unavailable": reason}``) and the process's measured cost. With
    ``without_net_raw`` the process runs as root minus CAP_NET_RAW (bounding and inheritable
    sets), the one capability a packet socket needs."""
    arguments = json.dumps({"config": config, "key": KEY.hex()})
    prefix = ["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw"] if without_net_raw else []
    python = [sys.executable, "-c", CENSUS_SCRIPT, arguments]
    run = measured(lan, [*prefix, *python], timeout=timeout, cwd=REPO)
    try:
        output = json.loads(run.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"the census printed no JSON (exit {run.returncode}): "
                             f"{run.stderr[-2000:]}") from None
    return output, run


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))
