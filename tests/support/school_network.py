"""A school's path to the internet in four network namespaces, for the connectivity tests.

::

    school ──lan── gateway ──access── isp ──core── internet
    (agent)        (school router)    (provider's    (targets, resolvers, HTTP server,
                                       first router)  the collector "in the cloud")

Addresses (10.203.0.0/16, inside our own namespaces only, so the same numbers in another
test's namespaces do not clash):

- lan 10.203.10.0/24: school .2, gateway .1 (the school's default route: "gateway auto")
- access 10.203.20.0/24: gateway .2, isp .1
- core 10.203.30.0/24: isp .1, internet .2
- on the internet's loopback: echo targets 10.203.40.1-3, resolvers 10.203.53.1-2, and
  10.203.80.1 for the HTTP server and the collector.

Plain routing both ways (no NAT), forwarding on gateway and isp. The faults a school
meets are methods, each bounded and idempotent: the ISP's line down, the school LAN
down, DNS dropped at the router, random loss of echo requests (``nft … numgen random``)
at the gateway, the provider's first router or beyond it, and a ``tbf``-shaped,
bufferbloated line (the access link). Ground truth comes from the kernel, as in ``support.netns``.

Traffic stays inside namespaces this code created; they are deleted by name afterwards
(also when the body raises), every process started in them is killed first, and the
``/etc/netns/<name>/`` entries (a resolv.conf naming the test resolvers) go too.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from support.netns import InNamespaces, NetnsError, tbf_parameters, wait_listening
from support.processes import AgentProcess, CollectorProcess
from support.tools import agent_env, console_script

Role = Literal["school", "gateway", "isp", "internet"]
ROLES: tuple[Role, ...] = ("school", "gateway", "isp", "internet")
LossPoint = Literal["gateway", "isp", "internet"]

SCHOOL_IP = "10.203.10.2"
GATEWAY_LAN_IP = "10.203.10.1"
GATEWAY_WAN_IP = "10.203.20.2"
ISP_ACCESS_IP = "10.203.20.1"
ISP_CORE_IP = "10.203.30.1"
INTERNET_CORE_IP = "10.203.30.2"
LAN_PREFIX = "10.203.10.0/24"
ACCESS_PREFIX = "10.203.20.0/24"

TARGETS = ("10.203.40.1", "10.203.40.2", "10.203.40.3")
RESOLVERS = ("10.203.53.1", "10.203.53.2")
SERVICES_IP = "10.203.80.1"
HTTP_PORT = 8080
HTTP_URL = f"http://{SERVICES_IP}:{HTTP_PORT}/"
COLLECTOR_PORT = 8470
INTERNET_PREFIXES = ("10.203.40.0/24", "10.203.53.0/24", "10.203.80.0/24")

# What the test resolvers answer; any other name gets NXDOMAIN (an unresolvable target).
DNS_ANSWERS = {"learning.school.test": SERVICES_IP, "admin.school.test": SERVICES_IP}
DNS_NAMES = ("learning.school.test", "admin.school.test")
UNRESOLVABLE = "nowhere.school.test"

# Short windows and intervals: a test sees a window, an outage or its end in seconds.
# `hops = 1`: TTL 1 (the gateway, "lan") and TTL 2 (the isp router, "access").
CONNECTIVITY_DEFAULTS: dict[str, Any] = {
    "enabled": True, "window": "4s", "ping_interval": "0.1s", "timeout": "0.5s", "outage_after": 3,
    "targets": list(TARGETS), "gateway": "auto", "hops": 1, "hop_interval": "0.5s",
    "dns_servers": list(RESOLVERS), "dns_names": list(DNS_NAMES), "dns_interval": "0.5s",
    "http_urls": [HTTP_URL], "http_interval": "1s",
}

LOSS_TABLE = "schoolnet_loss"
DNS_TABLE = "schoolnet_dns"
# numgen's modulus: a ratio is dropped as k out of every 10 000 echo requests, on average.
LOSS_MODULUS = 10_000
STEP_TIMEOUT_SECONDS = 30

_counter = itertools.count()


def toml_value(value: Any) -> str:
    """A Python value as TOML (the few types a config here needs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string of printable text is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def agent_config(**connectivity: Any) -> str:
    """The agent's config (all but ``state_dir``): the connectivity probe against the local
    targets with short windows, ``connectivity`` overriding them; bandwidth off (its default
    server is public); uploads every second, retried within seconds after an outage."""
    values = {**CONNECTIVITY_DEFAULTS, **connectivity}
    lines = ["[collector]", 'timeout = "5s"', "", "[upload]", 'interval = "1s"', 'max_backoff = "2s"', "",
             "[probes.bandwidth]", "enabled = false", "", "[probes.connectivity]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Measured:
    """One ``schoolnet-agent measure connectivity --json`` run."""

    returncode: int
    document: dict[str, Any]
    stderr: str


class SchoolNetwork(InNamespaces):
    """The four namespaces, their servers and (optionally) a collector in ``internet`` with
    an agent enrolled from ``school``. A context manager: everything goes on exit."""

    def __init__(self, workdir: Path, prefix: str = "sc", collector: bool = True) -> None:
        number = next(_counter)
        # Short names (an interface name is at most 15 characters), unique across processes.
        base = f"{prefix}{os.getpid()}-{number}"
        self.namespaces: dict[Role, str] = {role: f"{base}{letter}" for role, letter in
                                            zip(ROLES, ("s", "g", "p", "n"), strict=True)}
        # Two veth ends per link: lan (school-gateway), access (gateway-isp), core (isp-internet).
        self.lan: dict[Role, str] = {"school": f"{base}ls", "gateway": f"{base}lg"}
        self.access: dict[Role, str] = {"gateway": f"{base}ag", "isp": f"{base}ai"}
        self.core: dict[Role, str] = {"isp": f"{base}ci", "internet": f"{base}cn"}
        if len(f"{base}ls") > 15:
            raise NetnsError(f"prefix {prefix!r} makes interface names longer than 15 characters")
        self.workdir = workdir
        # Each namespace's /etc/netns entry (ip netns exec mounts its files over /etc): a
        # resolv.conf naming the test resolvers, so that no lookup, wanted or not (a server
        # looking up its own name), leaves for the machine's resolver.
        self.netns_etc = [Path("/etc/netns") / name for name in self.namespaces.values()]
        self.with_collector = collector
        self.collector: InternetCollector | None = None
        self.agent: SchoolAgent | None = None
        self._children: list[subprocess.Popen[Any]] = []
        self._agents: list[SchoolAgent] = []
        self._created: list[str] = []
        self.shaped: tuple[float, float] | None = None
        self._loss: dict[LossPoint, dict[str | None, float]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> SchoolNetwork:
        try:
            self._create()
            self._start_servers()
            if self.with_collector:
                self._start_collector_and_enroll()
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        for role in ROLES:
            _run(["ip", "netns", "add", self.namespaces[role]])
            self._created.append(self.namespaces[role])
            self.ip(role, "link", "set", "lo", "up")
        links: tuple[tuple[dict[Role, str], tuple[Role, str], tuple[Role, str]], ...] = (
            (self.lan, ("school", SCHOOL_IP), ("gateway", GATEWAY_LAN_IP)),
            (self.access, ("gateway", GATEWAY_WAN_IP), ("isp", ISP_ACCESS_IP)),
            (self.core, ("isp", ISP_CORE_IP), ("internet", INTERNET_CORE_IP)),
        )
        for ends, (left, left_ip), (right, right_ip) in links:
            _run(["ip", "link", "add", ends[left], "netns", self.namespaces[left], "type", "veth",
                  "peer", "name", ends[right], "netns", self.namespaces[right]])
            for role, address in ((left, left_ip), (right, right_ip)):
                self.ip(role, "addr", "add", f"{address}/24", "dev", ends[role])
                self.ip(role, "link", "set", ends[role], "up")
        for address in (*TARGETS, *RESOLVERS, SERVICES_IP):
            self.ip("internet", "addr", "add", f"{address}/32", "dev", "lo")
        for role in ("gateway", "isp"):
            self.sysctl(role, "net.ipv4.ip_forward", "1")
            # Linux rate-limits the Time Exceeded and Unreachable it sends (1/s per peer
            # after a burst of 6): at the hop probes' pace that is loss of our own making, and
            # the segmentation tests must see only the loss they put there.
            self.sysctl(role, "net.ipv4.icmp_ratelimit", "0")
        self._routes()
        for directory in self.netns_etc:
            directory.mkdir(parents=True, exist_ok=True)
            servers = "".join(f"nameserver {address}\n" for address in RESOLVERS)
            (directory / "resolv.conf").write_text(f"{servers}options timeout:1 attempts:1\n")

    def _routes(self) -> None:
        """Every route, with ``replace`` (idempotent): a link taken down loses the routes
        through it, and bringing it up puts them back."""
        self.ip("school", "route", "replace", "default", "via", GATEWAY_LAN_IP)
        self.ip("gateway", "route", "replace", "default", "via", ISP_ACCESS_IP)
        # Past the gateway, only our own prefixes are routed: a packet to any other address
        # dies at once (unreachable) instead of looping between isp and internet.
        self.ip("isp", "route", "replace", LAN_PREFIX, "via", GATEWAY_WAN_IP)
        for prefix in INTERNET_PREFIXES:
            self.ip("isp", "route", "replace", prefix, "via", INTERNET_CORE_IP)
        for prefix in (LAN_PREFIX, ACCESS_PREFIX):
            self.ip("internet", "route", "replace", prefix, "via", ISP_CORE_IP)

    def _start_servers(self) -> None:
        dns_server = Path(__file__).with_name("dns_server.py")
        answers = [f"{name}={address}" for name, address in DNS_ANSWERS.items()]
        dns_log = self.workdir / "dns.log"
        for resolver in RESOLVERS:
            # Its own process per resolver: one failing (in a test) leaves the other.
            with dns_log.open("ab") as log:
                child = self.popen("internet", sys.executable, dns_server, "--listen", f"{resolver}:53",
                                   *itertools.chain.from_iterable(("--answer", a) for a in answers),
                                   stdout=subprocess.PIPE, stderr=log, text=True)
            _wait_for_ready(child, f"the DNS server on {resolver} (log: {dns_log})")
        with (self.workdir / "http.log").open("ab") as log:
            http = self.popen("internet", sys.executable, "-c", _HTTP_SCRIPT, SERVICES_IP, str(HTTP_PORT),
                              stdout=subprocess.DEVNULL, stderr=log)
        wait_listening(http, HTTP_PORT)

    def _start_collector_and_enroll(self) -> None:
        collector_dir = self.workdir / "collector"
        collector_dir.mkdir(exist_ok=True)
        self.collector = InternetCollector(self, collector_dir)
        self.collector.start()
        code = self.collector.enroll_code()
        agent_dir = self.workdir / "agent"
        agent_dir.mkdir(exist_ok=True)
        self.agent = SchoolAgent(self, agent_dir, agent_config())
        self.agent.cli("enroll", "--collector", self.collector.url, "--code", code, "--name", "school-agent")

    def enroll_agent(self, name: str, **connectivity: Any) -> SchoolAgent:
        """Another agent in the school, enrolled with its own state and config (``agent``
        is the first); stopped when the network closes."""
        assert self.collector is not None, "a network without a collector enrols no agent"
        workdir = self.workdir / name
        workdir.mkdir()
        agent = SchoolAgent(self, workdir, agent_config(**connectivity))
        agent.cli("enroll", "--collector", self.collector.url, "--code", self.collector.enroll_code(),
                  "--name", name)
        self._agents.append(agent)
        return agent

    def close(self) -> None:
        """Stop the agent and the collector, kill what else runs inside, delete the
        namespaces by name and their /etc/netns entries. Safe to call twice."""
        for process in (*self._agents, self.agent, self.collector):
            if process is not None:
                process.stop()
        self._stop_children()
        for namespace in self._created:
            # Anything else left inside (a grandchild) runs in a namespace we made: ours.
            pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True,
                                  timeout=30, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30, check=False)
        self._created.clear()
        for directory in self.netns_etc:
            shutil.rmtree(directory, ignore_errors=True)

    # -- running things inside -------------------------------------------------------------

    def ip(self, role: Role, *argv: str) -> None:
        _run(["ip", "-n", self.namespaces[role], *argv])

    def sysctl(self, role: Role, key: str, value: str) -> None:
        _run(self.command(role, "sysctl", "-q", "-w", f"{key}={value}"))

    def nft(self, role: Role, script: str) -> None:
        """Apply an nft script in one namespace, atomically (``nft -f -``)."""
        _run(self.command(role, "nft", "-f", "-"), script)

    def python(self, role: Role, code: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """A few lines of Python inside one namespace (a client the test needs there)."""
        return self.run(role, sys.executable, "-c", code, timeout=timeout)

    def echo(self, role: Role, address: str, ttl: int = 64, timeout: float = 1.0) -> tuple[str, str] | None:
        """One ICMP echo request from ``role`` (a raw socket, as root: independent of the
        agent's code): (who answered, "reply" or "exceeded"), or None when nobody did."""
        result = self.run(role, sys.executable, "-c", _ECHO_SCRIPT, address, str(ttl), str(timeout),
                          timeout=timeout + 10)
        if result.returncode != 0:
            if result.stderr.strip():
                raise NetnsError(f"echo from {role} failed: {result.stderr.strip()[-500:]}")
            return None
        responder, answer = result.stdout.split()
        return responder, answer

    def measure(self, *options: str, timeout: float = 120) -> Measured:
        """``schoolnet-agent measure connectivity --json OPTIONS`` in the school namespace,
        with the agent's config (``configure`` it first)."""
        agent = self.agent or self._unenrolled_agent()
        result = agent.cli("measure", "connectivity", "--json", *options, check=False, timeout=timeout)
        try:
            document = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"measure printed no JSON (exit {result.returncode}): "
                                 f"{result.stdout[-2000:]}{result.stderr[-2000:]}") from None
        if not isinstance(document, dict):
            raise AssertionError(f"measure printed {document!r}, not an object")
        return Measured(result.returncode, document, result.stderr)

    def _unenrolled_agent(self) -> SchoolAgent:
        agent_dir = self.workdir / "agent"
        agent_dir.mkdir(exist_ok=True)
        self.agent = SchoolAgent(self, agent_dir, agent_config())
        return self.agent

    def configure(self, **connectivity: Any) -> SchoolAgent:
        """(Re)write the agent's config: ``agent_config(**connectivity)``. Returns the agent
        (made here, unenrolled, when the network has no collector)."""
        agent = self.agent or self._unenrolled_agent()
        agent.write_config(agent_config(**connectivity))
        return agent

    # -- faults ----------------------------------------------------------------------------

    def isp_down(self) -> None:
        """The provider's line fails: the link between gateway and isp goes down at the
        provider's end (the router's WAN port loses its carrier, as when a line drops).
        The gateway still answers the school."""
        self.ip("isp", "link", "set", self.access["isp"], "down")

    def isp_up(self) -> None:
        self.ip("isp", "link", "set", self.access["isp"], "up")
        self._routes()

    def lan_down(self) -> None:
        """The school LAN fails: the gateway's school-facing port goes down; the gateway
        no longer answers, nor does anything behind it."""
        self.ip("gateway", "link", "set", self.lan["gateway"], "down")

    def lan_up(self) -> None:
        self.ip("gateway", "link", "set", self.lan["gateway"], "up")
        self._routes()

    def dns_drop(self) -> None:
        """The school router drops DNS it forwards (udp and tcp port 53), nothing else."""
        self.nft("gateway", _replace_table(DNS_TABLE, "forward", "forward",
                                           ["udp dport 53 drop", "tcp dport 53 drop"]))

    def dns_allow(self) -> None:
        self.nft("gateway", _drop_table(DNS_TABLE))

    def loss(self, where: LossPoint, ratio: float, target: str | None = None) -> None:
        """Drop this ratio of the ICMP echo requests coming from the school side at
        ``where``, at random (``numgen random``): those to ``target`` only, when given.
        Loss set elsewhere, or for another target, stays (each rule drops on its own); a
        ratio of 0 takes this one away.

        - ``gateway``: those arriving from the school LAN, for the gateway itself or to be
          forwarded: the loss is seen at the gateway (LAN), and on everything behind it;
        - ``isp``: those arriving at the provider's first router from the gateway, for the
          router itself (TTL-limited probes that expire there) or forwarded: the gateway
          answers in full, the provider's access does not;
        - ``internet``: those arriving beyond the provider's first router: the gateway and
          the first hops are clean.
        """
        if not 0 <= ratio < 1:
            raise ValueError(f"loss ratio {ratio} is not in [0, 1)")
        rules = self._loss.setdefault(where, {})
        if ratio:
            rules[target] = ratio
        else:
            rules.pop(target, None)
        self._apply_loss(where)

    def no_loss(self) -> None:
        self._loss.clear()
        for where in ("gateway", "isp", "internet"):
            self.nft(where, _drop_table(LOSS_TABLE))

    def _apply_loss(self, where: LossPoint) -> None:
        interface = {"gateway": self.lan["gateway"], "isp": self.access["isp"],
                     "internet": self.core["internet"]}[where]
        rules = [f'iifname "{interface}" icmp type echo-request {f"ip daddr {target} " if target else ""}'
                 f"numgen random mod {LOSS_MODULUS} < {round(ratio * LOSS_MODULUS)} drop"
                 for target, ratio in self._loss.get(where, {}).items()]
        # Prerouting: before the routing decision, so the requests for the router itself
        # and those it forwards are dropped alike.
        self.nft(where, _replace_table(LOSS_TABLE, "prerouting", "prerouting", rules, priority=-150)
                 if rules else _drop_table(LOSS_TABLE))

    def shape(self, rate_mbit: float, queue_seconds: float) -> None:
        """The school's line (the access link, gateway-isp) shaped with tbf both ways to
        ``rate_mbit``, with a queue of ``queue_seconds``: a bloated line, where a bulk
        download fills the provider's queue and every packet behind it waits that long.

        Why the access link and not isp-internet: that is where a school's bottleneck and
        its queues are (the provider's towards the school, the router's towards the
        provider), and the queue must be in a router that forwards the download. A qdisc on
        the sender's own interface (the internet namespace) is kept shorter by the sender's
        TCP Small Queues: 3 s into a CUBIC download, ~100 ms of queue there, ~180 ms here."""
        burst, latency = tbf_parameters(rate_mbit, queue_seconds)
        verb = "change" if self.shaped else "add"
        for role, interface in self.access.items():
            _run(["tc", "-n", self.namespaces[role], "qdisc", verb, "dev", interface, "root", "tbf",
                  "rate", f"{rate_mbit}mbit", "burst", str(burst), "latency", f"{latency * 1000:.1f}ms"])
        self.shaped = (rate_mbit, queue_seconds)

    def unshape(self) -> None:
        if self.shaped:
            for role, interface in self.access.items():
                _run(["tc", "-n", self.namespaces[role], "qdisc", "del", "dev", interface, "root"])
        self.shaped = None


class InternetCollector(CollectorProcess):
    """``schoolnet-collector serve`` inside the ``internet`` namespace, like a collector in
    the cloud. Its admin commands and store are files on this machine, used from outside."""

    def __init__(self, network: SchoolNetwork, workdir: Path) -> None:
        super().__init__(workdir, host=SERVICES_IP)
        self.network = network
        self.port = COLLECTOR_PORT
        self.url = f"http://{SERVICES_IP}:{COLLECTOR_PORT}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.network.command("internet", console_script("schoolnet-collector"), "serve", "--host",
                                 self.host, "--port", str(self.port), *self.serve_args),
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_listening(self.process, self.port, timeout=30)
        except NetnsError as exc:
            raise AssertionError(f"{exc} (log: {self.log_path.read_text()[-2000:]})") from None


class SchoolAgent(AgentProcess):
    """``schoolnet-agent`` inside the ``school`` namespace (its resolv.conf: the test resolvers)."""

    def __init__(self, network: SchoolNetwork, workdir: Path, config: str = "") -> None:
        super().__init__(workdir, config)
        self.network = network

    def write_config(self, config: str) -> None:
        self.config_path.write_text(f'state_dir = "{self.state_dir}"\n{config}')
        self.env = agent_env(self.config_path)  # the safety net steps aside where the file speaks

    def cli_command(self, *args: str) -> list[str]:
        return self.network.command("school", console_script("schoolnet-agent"), *args)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``schoolnet-agent ARGS`` (default ``run``) in the school, in the background."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.cli_command(*(args or ("run",))), env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        return self.process


# A page for the time-to-first-byte probe. Not http.server's HTTPServer: it looks up its own
# name when it binds (getfqdn), a DNS query at start-up.
_HTTP_SCRIPT = r"""
import http.server, socketserver, sys
BODY = b"<!doctype html><title>learning platform</title>\n"
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
Server((sys.argv[1], int(sys.argv[2])), Page).serve_forever()
"""

# Sends one echo request and waits for the echo reply or for an ICMP error about it (Time
# Exceeded, Unreachable) carrying our identifier; prints "ADDRESS reply|exceeded|unreachable".
_ECHO_SCRIPT = r"""
import os, select, socket, struct, sys, time
address, ttl, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def checksum(data):
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
ident, payload = os.getpid() & 0xFFFF, b"schoolnet-echo"
header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
packet = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, 1) + payload
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
sock.sendto(packet, (address, 0))
deadline = time.monotonic() + timeout
while (left := deadline - time.monotonic()) > 0 and select.select([sock], [], [], left)[0]:
    data, (peer, _) = sock.recvfrom(2048)
    icmp = data[(data[0] & 0x0F) * 4:]
    if icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
        print(peer, "reply"); sys.exit(0)
    if icmp[0] in (3, 11):
        inner = icmp[8:]
        quoted = inner[(inner[0] & 0x0F) * 4:]
        if quoted[:1] == b"\x08" and struct.unpack("!H", quoted[4:6])[0] == ident:
            print(peer, "exceeded" if icmp[0] == 11 else "unreachable"); sys.exit(0)
sys.exit(1)
"""


def _run(argv: list[str], stdin: str | None = None) -> None:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                            timeout=STEP_TIMEOUT_SECONDS, check=False)
    if result.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed: {(result.stderr or result.stdout).strip()}")


def _replace_table(table: str, chain: str, hook: str, rules: list[str], priority: int = 0) -> str:
    """An nft script that makes ``table`` exactly this, whatever was there before: declaring
    it first lets the delete succeed when it did not exist, and nft applies the script as
    one transaction."""
    body = "\n".join(f"    {rule}" for rule in rules)
    return (f"{_drop_table(table)}table inet {table} {{\n  chain {chain} {{\n"
            f"    type filter hook {hook} priority {priority}; policy accept;\n{body}\n  }}\n}}\n")


def _drop_table(table: str) -> str:
    return f"table inet {table}\ndelete table inet {table}\n"


def _wait_for_ready(child: subprocess.Popen[str], what: str, timeout: float = 15) -> None:
    """Wait for a server that prints "ready" on stdout once bound."""
    assert child.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([child.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            break
        line = child.stdout.readline()
        if not line:
            raise NetnsError(f"{what} exited with status {child.wait(timeout=5)} before it was ready")
        if line.strip() == "ready":
            # Keep reading what it prints after (a log line per query?): a full pipe would
            # stop the server mid-test.
            threading.Thread(target=_drain, args=(child.stdout,), daemon=True).start()
            return
    raise NetnsError(f"{what} did not print 'ready' within {timeout} s")


def _drain(stream: IO[str]) -> None:
    with contextlib.suppress(ValueError, OSError):  # closed when the network closes
        for _ in stream:
            pass
