"""Echo probes on real sockets: loopback here, and namespaces with a router between two.

What the kernel decides is the ground truth: which socket a process may open (by
``net.ipv4.ping_group_range`` and CAP_NET_RAW), what a router answers a probe whose TTL runs
out, what nft drops, and how late a reply comes from a responder that waits on purpose.
Traffic goes to loopback or to addresses inside the namespaces made here (10.203.41.0/24 and
10.203.42.0/24, unique local fd03:203:41::/64 and fd03:203:42::/64 assigned on their own veth
pairs, and link-local addresses there), and nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.netns import require_netns
from support.tools import free_port, require_tool, unavailable

from agent.probes.connectivity.echo import EchoSampler, EchoUnavailable, Outcome

PYTHON = sys.executable
WIDE_OPEN = "0 2147483647"  # every group may open datagram ICMP sockets
CLOSED = "1 0"  # nobody may (the kernel's default)


@dataclasses.dataclass(frozen=True)
class Addresses:
    """One family's addresses inside the namespaces A - R - B (R forwards)."""

    a: str
    r_a: str  # R on A's link
    r_b: str  # R on B's link
    b: str
    prefix: int
    nobody_there: str  # on A's link, assigned to nobody: no neighbour answers, no reply
    no_route: str  # R has no route there
    no_route_words: str  # how the reason begins when R says so


V4 = Addresses("10.203.41.2", "10.203.41.1", "10.203.42.1", "10.203.42.2", 24, "10.203.41.9",
               "10.203.99.1", "network unreachable")
# Unique local addresses (RFC 4193), assigned only on these namespaces' own veth pairs.
V6 = Addresses("fd03:203:41::2", "fd03:203:41::1", "fd03:203:42::1", "fd03:203:42::2", 64,
               "fd03:203:41::9", "fd03:203:99::1", "no route to destination")
FAMILIES = pytest.mark.parametrize("addresses", [V4, V6], ids=["IPv4", "IPv6"])

_names = itertools.count()


# -- in this process, on loopback ------------------------------------------------------------


def icmp_sampler(timeout: float = 1.0) -> EchoSampler:
    try:
        return EchoSampler("icmp", 9, timeout)
    except EchoUnavailable as exc:  # neither a datagram socket nor CAP_NET_RAW here
        unavailable(f"no ICMP echo here: {exc}")


def run_probes(sampler: EchoSampler, sends: list[tuple[str, int | None]],
               gap: float = 0.0) -> dict[int, Outcome]:
    """Send each, collecting in between; every id must come out exactly once."""
    ids: list[int] = []
    outcomes: list[Outcome] = []
    for address, ttl in sends:
        ids.append(sampler.send(address, ttl))
        outcomes += sampler.collect(until=time.monotonic() + gap)
    outcomes += sampler.finish()
    assert sorted(outcome.probe_id for outcome in outcomes) == sorted(ids), "each probe ends exactly once"
    return {outcome.probe_id: outcome for outcome in outcomes}


@pytest.fixture
def tcp_servers() -> Iterator[int]:
    """A port listening on 127.0.0.1 and ::1 (the same number on both)."""
    port = free_port()
    servers = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        server = socket.socket(family, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, port))
        server.listen(64)
        servers.append(server)
    yield port
    for server in servers:
        server.close()


@pytest.mark.parametrize("method", ["icmp", "tcp"])
def test_loopback_answers_with_small_round_trips(method: str, tcp_servers: int) -> None:
    sampler = icmp_sampler() if method == "icmp" else EchoSampler("tcp", tcp_servers, 1.0)
    with sampler:
        assert sampler.method in (("icmp", "icmp-raw") if method == "icmp" else ("tcp",))
        outcomes = run_probes(sampler, [("127.0.0.1", None), ("::1", None)] * 20)
    for outcome in outcomes.values():
        assert outcome.reached and outcome.error is None, outcome
        assert outcome.responder == outcome.address
        assert outcome.rtt_seconds is not None and 0 < outcome.rtt_seconds < 0.5, outcome


def test_a_closed_tcp_port_counts_as_reached() -> None:
    """A reset proves the host is there: that is what a TCP probe asks."""
    with EchoSampler("tcp", free_port(), 1.0) as sampler:
        assert sampler.method == "tcp"
        outcomes = run_probes(sampler, [("127.0.0.1", None), ("::1", None)])
    for outcome in outcomes.values():
        assert outcome.reached and outcome.error is None, outcome
        assert outcome.rtt_seconds is not None and 0 < outcome.rtt_seconds < 0.5


def test_tcp_cannot_send_ttl_limited_probes() -> None:
    with EchoSampler("tcp", free_port(), 1.0) as sampler:
        (outcome,) = run_probes(sampler, [("127.0.0.1", 1)]).values()
    assert outcome.error == "TTL-limited probes need ICMP"
    assert not outcome.reached and outcome.rtt_seconds is None and outcome.ttl == 1


@pytest.mark.parametrize("method", ["icmp", "tcp"])
def test_a_bad_address_fails_its_probe_without_a_lookup(method: str) -> None:
    """send() takes addresses; a name (even one that resolves) is the caller's mistake."""
    sampler = icmp_sampler() if method == "icmp" else EchoSampler("tcp", free_port(), 1.0)
    with sampler:
        outcomes = run_probes(sampler, [("localhost", None), ("fe80::1%no-such-if0", None),
                                        ("127.0.0.1", None)])
    bad_name, bad_scope, good = (outcomes[probe_id] for probe_id in sorted(outcomes))
    assert bad_name.error == "not an IP address: 'localhost'" and not bad_name.reached
    assert bad_scope.error is not None and "unknown interface" in bad_scope.error
    assert good.reached


def test_raw_or_datagram_ignores_another_samplers_replies() -> None:
    """Two samplers ping the same address at once; a raw socket sees both's replies, and
    each must count only its own: even when they share id and sequence numbers."""
    with icmp_sampler() as first, icmp_sampler() as second:
        ours, theirs = first._channels[socket.AF_INET], second._channels[socket.AF_INET]
        assert ours is not None and theirs is not None
        theirs.ident, theirs.next_sequence = ours.ident, ours.next_sequence  # the worst case
        ids: dict[EchoSampler, list[int]] = {first: [], second: []}
        outcomes: dict[EchoSampler, list[Outcome]] = {first: [], second: []}
        for _ in range(50):
            for sampler in (first, second):
                ids[sampler].append(sampler.send("127.0.0.1"))
        for sampler in (first, second):
            outcomes[sampler] += sampler.finish()
    for sampler in (first, second):
        assert sorted(o.probe_id for o in outcomes[sampler]) == ids[sampler]
        assert all(o.reached for o in outcomes[sampler])


def test_sequence_numbers_wrap_and_one_socket_serves_them_all() -> None:
    """More probes than there are sequence numbers, through one socket, all answered."""
    with icmp_sampler() as sampler:
        started = time.process_time()
        ids, outcomes = [], []
        for index in range(66_000):
            ids.append(sampler.send("127.0.0.1"))
            if index % 200 == 199:
                outcomes += sampler.collect(until=time.monotonic())
        outcomes += sampler.finish()
        cpu = time.process_time() - started
        assert len(sampler._channels) == 1  # one IPv4 socket, reused
    assert sorted(o.probe_id for o in outcomes) == ids
    assert all(o.reached for o in outcomes)
    assert cpu < 20, f"{cpu / len(ids) * 1e6:.0f} µs of CPU per probe"


@pytest.mark.parametrize("method", ["icmp", "tcp"])
def test_a_busy_caller_still_gets_true_round_trips(method: str, tcp_servers: int) -> None:
    """Answers that came in time but were read late count, timed by the kernel."""
    sampler = icmp_sampler(timeout=0.2) if method == "icmp" else EchoSampler("tcp", tcp_servers, 0.2)
    with sampler:
        ids = [sampler.send(address) for address in ("127.0.0.1", "::1") * 3]
        time.sleep(0.3)  # past the timeout, answers unread
        outcomes = sampler.collect(until=time.monotonic())
    assert sorted(o.probe_id for o in outcomes) == ids
    for outcome in outcomes:
        assert outcome.reached and outcome.rtt_seconds is not None and outcome.rtt_seconds < 0.01, outcome


def test_collect_returns_when_nothing_is_pending() -> None:
    with icmp_sampler(timeout=2.0) as sampler:
        started = time.monotonic()
        assert sampler.collect(until=started + 5) == []
        sampler.send("127.0.0.1")
        (outcome,) = sampler.collect(until=started + 5)
        assert outcome.reached
        assert time.monotonic() - started < 1, "collect() waited although nothing was pending"


# -- in namespaces ---------------------------------------------------------------------------

# Runs inside a namespace: probes as `spec` says, prints what happened as JSON. Between sends
# it collects for `gap` seconds, or with `pause` it sleeps instead (a caller busy elsewhere);
# with `busy` it sleeps after the last send before collecting.
DRIVER = textwrap.dedent("""
    import dataclasses, json, sys, time
    from agent.probes.connectivity.echo import EchoSampler, EchoUnavailable
    spec = json.loads(sys.argv[1])
    try:
        sampler = EchoSampler(spec["method"], spec.get("port", 9), spec["timeout"])
    except EchoUnavailable as exc:
        print(json.dumps({"unavailable": str(exc)}))
        sys.exit(0)
    ids, outcomes = [], []
    with sampler:
        for address, ttl in spec["sends"]:
            ids.append(sampler.send(address, ttl))
            if spec.get("pause"):
                time.sleep(spec["pause"])
            else:
                outcomes += sampler.collect(until=time.monotonic() + spec.get("gap", 0))
        time.sleep(spec.get("busy", 0))
        outcomes += sampler.finish()
        outcomes += sampler.collect(until=time.monotonic() + spec.get("linger", 0))
    print(json.dumps({"method": sampler.method, "ids": ids,
                      "outcomes": [dataclasses.asdict(o) for o in outcomes]}))
""")

# Runs inside a namespace whose kernel does not answer echo requests: answers each one itself,
# `delay` seconds late (the ground truth for round trips), for at most `lifetime` seconds.
SLOW_RESPONDER = textwrap.dedent("""
    import heapq, select, socket, struct, sys, time
    delay, lifetime = float(sys.argv[1]), float(sys.argv[2])
    def checksum(data):
        total = sum(struct.unpack(f"!{len(data) // 2}H", data + b"\\0" * (len(data) % 2)))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        return ~total & 0xFFFF
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    due = []
    print("ready", flush=True)
    end = time.monotonic() + lifetime
    while time.monotonic() < end:
        wait = min(end, due[0][0] if due else end) - time.monotonic()
        if select.select([sock], [], [], max(0, wait))[0]:
            packet, (source, _) = sock.recvfrom(2048)
            icmp = packet[(packet[0] & 0x0F) * 4:]
            if icmp[0] == 8:
                reply = b"\\0\\0\\0\\0" + icmp[4:]
                reply = reply[:2] + struct.pack("!H", checksum(reply)) + reply[4:]
                heapq.heappush(due, (time.monotonic() + delay, reply, source))
        while due and due[0][0] <= time.monotonic():
            _, reply, source = heapq.heappop(due)
            sock.sendto(reply, (source, 0))
""")

# Runs inside a namespace whose kernel does not answer echo requests: a sampler pings
# 127.0.0.1 and another socket forges the reply, with the sampler's id and sequence number
# (what another program's ping could carry by chance) but a payload that is not the
# sampler's, then (the control) with the sampler's own payload. Prints which counted.
FORGED_REPLY = textwrap.dedent("""
    import json, socket, struct
    from agent.probes.connectivity.echo import EchoSampler
    def checksum(data):
        total = sum(struct.unpack(f"!{len(data) // 2}H", data + b"\\0" * (len(data) % 2)))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        return ~total & 0xFFFF
    forger = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    counted = {}
    with EchoSampler("icmp", 9, 0.3) as sampler:
        channel = sampler._channels[socket.AF_INET]
        for label, payload in (("foreign", bytes(range(100, 156))), ("own", channel.payload)):
            sequence = channel.next_sequence
            sampler.send("127.0.0.1")
            # A datagram socket's id is the one the kernel gave it (its "port").
            ident = channel.ident if channel.raw else channel.sock.getsockname()[1]
            reply = struct.pack("!BBHHH", 0, 0, 0, ident, sequence) + payload
            forger.sendto(reply[:2] + struct.pack("!H", checksum(reply)) + reply[4:], ("127.0.0.1", 0))
            (outcome,) = sampler.finish()
            counted[label] = outcome.reached
        counted["method"] = sampler.method
    print(json.dumps(counted))
""")


class Namespaces:
    """Namespaces made for one test, deleted by name afterwards (their processes first)."""

    def __init__(self) -> None:
        self.base = f"se{os.getpid()}-{next(_names)}"
        self.created: list[str] = []
        self.children: list[subprocess.Popen[str]] = []

    def add(self, suffix: str, ping_group_range: str = CLOSED) -> str:
        name = f"{self.base}{suffix}"
        ip("netns", "add", name)
        self.created.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        # No duplicate address detection: link-local addresses are usable at once.
        sysctl(name, "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
        self.set_ping_group_range(name, ping_group_range)
        return name

    @staticmethod
    def set_ping_group_range(name: str, value: str) -> None:
        sysctl(name, f"net.ipv4.ping_group_range={value}")

    def link(self, left: str, right: str, left_addresses: tuple[str, ...] = (),
             right_addresses: tuple[str, ...] = ()) -> tuple[str, str]:
        """A veth pair between two namespaces, with addresses (written with their prefix)."""
        left_if, right_if = f"{left}{right[-1]}", f"{right}{left[-1]}"
        assert len(left_if) <= 15, f"interface name {left_if!r} is too long"
        ip("link", "add", left_if, "netns", left, "type", "veth", "peer", "name", right_if, "netns", right)
        for name, interface, addresses in ((left, left_if, left_addresses),
                                           (right, right_if, right_addresses)):
            for address in addresses:
                no_dad = ["nodad"] if ":" in address else []  # usable at once
                ip("-n", name, "addr", "add", address, "dev", interface, *no_dad)
            ip("-n", name, "link", "set", interface, "up")
        return left_if, right_if

    def run(self, name: str, *argv: str, unprivileged: bool = False, timeout: float = 30) -> str:
        prefix = ["ip", "netns", "exec", name]
        if unprivileged:
            prefix += [require_tool("setpriv"), "--reuid", "65534", "--regid", "65534", "--clear-groups",
                       "--inh-caps=-all", "--bounding-set=-all"]
        result = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout,
                                check=False)
        assert result.returncode == 0, f"{argv[:3]} in {name}: {result.stderr.strip()}"
        return result.stdout

    def probe(self, name: str, unprivileged: bool = False, **spec: Any) -> dict[str, Any]:
        """Run the driver in a namespace; its outcomes, checked to be exactly one per probe."""
        report: dict[str, Any] = json.loads(self.run(name, PYTHON, "-c", DRIVER, json.dumps(spec),
                                                     unprivileged=unprivileged))
        if "outcomes" in report:
            ended = sorted(outcome["probe_id"] for outcome in report["outcomes"])
            assert ended == sorted(report["ids"]), "each probe ends exactly once"
            by_id = {outcome["probe_id"]: Outcome(**outcome) for outcome in report["outcomes"]}
            report["outcomes"] = [by_id[probe_id] for probe_id in report["ids"]]  # in send order
        return report

    def popen(self, name: str, *argv: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(["ip", "netns", "exec", name, *argv], stdout=subprocess.PIPE, text=True)
        self.children.append(child)
        return child

    def close(self) -> None:
        for child in self.children:
            child.kill()
            child.wait(timeout=10)
        for name in self.created:
            for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                                      timeout=30, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30, check=False)


def ip(*argv: str) -> None:
    result = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, f"ip {' '.join(argv)}: {result.stderr.strip()}"


def sysctl(name: str, *settings: str) -> None:
    result = subprocess.run(["ip", "netns", "exec", name, "sysctl", "-q", "-w", *settings],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, f"sysctl {settings} in {name}: {result.stderr.strip()}"


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    require_netns()
    made = Namespaces()
    try:
        yield made
    finally:
        made.close()


@dataclasses.dataclass
class Chain:
    """A - R - B: R routes between A's and B's links and answers TTL-limited probes."""

    a: str
    r: str
    b: str
    a_interface: str  # A's end of the A-R link


def link_local_address(namespaces: Namespaces, name: str, interface: str) -> str:
    """The interface's link-local address; the kernel adds it once the link's carrier is up,
    which it learns asynchronously (linkwatch), so wait for it a little."""
    deadline = time.monotonic() + 5
    while True:
        shown = namespaces.run(name, "ip", "-6", "-o", "addr", "show", "dev", interface, "scope", "link")
        if shown.split():
            return shown.split()[3].split("/")[0]
        assert time.monotonic() < deadline, f"{interface} in {name} got no link-local address"
        time.sleep(0.05)


@pytest.fixture
def chain(namespaces: Namespaces) -> Chain:
    a, r, b = namespaces.add("a"), namespaces.add("r"), namespaces.add("b")
    a_if, r_a_if = namespaces.link(a, r, tuple(f"{f.a}/{f.prefix}" for f in (V4, V6)),
                                   tuple(f"{f.r_a}/{f.prefix}" for f in (V4, V6)))
    r_b_if, b_if = namespaces.link(r, b, tuple(f"{f.r_b}/{f.prefix}" for f in (V4, V6)),
                                   tuple(f"{f.b}/{f.prefix}" for f in (V4, V6)))
    # IPv6 neighbour discovery speaks from link-local addresses: until the kernel has added
    # them, the first IPv6 probes would vanish.
    for name, interface in ((a, a_if), (r, r_a_if), (r, r_b_if), (b, b_if)):
        link_local_address(namespaces, name, interface)
    for family in (V4, V6):
        ip("-n", a, "route", "add", "default", "via", family.r_a)
        ip("-n", b, "route", "add", "default", "via", family.r_b)
    # A router that forwards, and answers every expired probe: the kernel's ICMP rate limit
    # (one per second per host after a burst) would make hop probes look lost.
    sysctl(r, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.icmp_ratelimit=0",
           "net.ipv6.icmp.ratelimit=0")
    return Chain(a, r, b, a_if)


def test_the_method_follows_what_the_kernel_allows(namespaces: Namespaces) -> None:
    """Datagram ICMP when the group may, raw with CAP_NET_RAW, else TCP; and each works."""
    name = namespaces.add("m")
    port = 9  # nothing listens: TCP probes are answered by a reset
    sends = [["127.0.0.1", None], ["::1", None]]
    cases = [(WIDE_OPEN, False, "icmp"), (CLOSED, False, "icmp-raw"), (WIDE_OPEN, True, "icmp"),
             (CLOSED, True, "tcp")]
    for group_range, unprivileged, expected in cases:
        namespaces.set_ping_group_range(name, group_range)
        report = namespaces.probe(name, unprivileged, method="auto", port=port, timeout=1.0, sends=sends)
        who = f"{'nobody' if unprivileged else 'root'} with ping_group_range {group_range!r}"
        assert report["method"] == expected, who
        for outcome in report["outcomes"]:
            assert outcome.reached and outcome.responder == outcome.address, (who, outcome)
            assert outcome.rtt_seconds is not None and 0 < outcome.rtt_seconds < 0.5, (who, outcome)
    # Asked for ICMP where neither socket is allowed: say what was tried and what to change.
    report = namespaces.probe(name, True, method="icmp", timeout=1.0, sends=sends)
    reason = report["unavailable"]
    assert "ping_group_range is '1 0'" in reason, reason
    assert "CAP_NET_RAW" in reason and "group 65534" in reason, reason


@FAMILIES
@pytest.mark.parametrize("group_range", [WIDE_OPEN, CLOSED], ids=["datagram", "raw"])
def test_ttl_limited_probes_name_the_router(chain: Chain, namespaces: Namespaces, group_range: str,
                                            addresses: Addresses) -> None:
    namespaces.set_ping_group_range(chain.a, group_range)
    sends = [[addresses.b, 1], [addresses.b, 2], [addresses.b, None]] * 5
    # Collecting between sends; then busy between sends, so the router's Time Exceeded waits
    # unread when the next probe goes (a datagram socket fails that send with the old error).
    report = namespaces.probe(chain.a, method="icmp", timeout=1.0, sends=sends)
    busy = namespaces.probe(chain.a, method="icmp", timeout=1.0, sends=sends, pause=0.01)
    assert report["method"] == busy["method"] == ("icmp" if group_range == WIDE_OPEN else "icmp-raw")
    for outcome in report["outcomes"] + busy["outcomes"]:
        assert outcome.error is None, outcome
        assert outcome.rtt_seconds is not None and 0 < outcome.rtt_seconds < 0.5, outcome
        if outcome.ttl == 1:
            assert outcome.responder == addresses.r_a and not outcome.reached, outcome
        else:
            assert outcome.responder == addresses.b and outcome.reached, outcome


@FAMILIES
@pytest.mark.parametrize("group_range", [WIDE_OPEN, CLOSED], ids=["datagram", "raw"])
def test_failures_say_what_failed(chain: Chain, namespaces: Namespaces, group_range: str,
                                  addresses: Addresses) -> None:
    namespaces.set_ping_group_range(chain.a, group_range)
    sends = [[addresses.no_route, None], [addresses.nobody_there, None], [addresses.b, None]]
    report = namespaces.probe(chain.a, method="icmp", timeout=0.5, sends=sends)
    no_route, nobody, fine = report["outcomes"]
    # R has no route: it says so, and the reason names R.
    assert no_route.error == f"{addresses.no_route_words} (ICMP from {addresses.r_a})", no_route
    assert no_route.responder == addresses.r_a and not no_route.reached and no_route.rtt_seconds is None
    # Nobody has the address: no answer at all, lost after the timeout.
    assert nobody.error == "timeout after 0.5 s" and nobody.responder is None and nobody.rtt_seconds is None
    assert fine.reached


def test_no_route_on_this_host_fails_at_once(namespaces: Namespaces) -> None:
    name = namespaces.add("n", WIDE_OPEN)  # only loopback: no route to anything else
    for method in ("icmp", "tcp"):
        started = time.monotonic()
        report = namespaces.probe(name, method=method, timeout=2.0, sends=[[V4.no_route, None]])
        (outcome,) = report["outcomes"]
        assert outcome.error is not None and outcome.error.startswith("network unreachable"), outcome
        assert outcome.rtt_seconds is None and not outcome.reached
        assert time.monotonic() - started < 1.5, "a send that failed at once waited for the timeout"


@pytest.mark.parametrize("group_range", [WIDE_OPEN, CLOSED], ids=["datagram", "raw"])
def test_random_loss_is_counted_once_per_probe(chain: Chain, namespaces: Namespaces,
                                               group_range: str) -> None:
    require_tool("nft")
    rules = ("add table inet t\n"
             "add chain inet t f { type filter hook forward priority 0; }\n"
             "add rule inet t f icmp type echo-request numgen random mod 2 0 drop\n")
    result = subprocess.run(["ip", "netns", "exec", chain.r, "nft", "-f", "-"], input=rules, text=True,
                            capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    namespaces.set_ping_group_range(chain.a, group_range)
    probes = 200
    report = namespaces.probe(chain.a, method="icmp", timeout=0.5, gap=0.002,
                              sends=[[V4.b, None]] * probes)
    lost = [o for o in report["outcomes"] if not o.reached]
    assert all(o.error == "timeout after 0.5 s" and o.rtt_seconds is None for o in lost)
    assert all(o.rtt_seconds is not None and o.error is None for o in report["outcomes"] if o.reached)
    # Binomial(200, 0.5): a standard deviation of 7 probes; 0.35-0.65 is over four of them.
    assert 0.35 <= len(lost) / probes <= 0.65, f"{len(lost)} of {probes} lost where half were dropped"


@pytest.mark.parametrize("group_range", [WIDE_OPEN, CLOSED], ids=["datagram", "raw"])
def test_round_trips_are_true_and_late_replies_are_lost(namespaces: Namespaces, group_range: str) -> None:
    """A responder that answers 0.3 s late: the round trip says 0.3 s, even when the caller
    reads it late; with a 0.15 s timeout every probe is lost, whether the late reply comes
    while the sampler waits or while its caller is busy."""
    name = namespaces.add("d", group_range)
    sysctl(name, "net.ipv4.icmp_echo_ignore_all=1")  # only the slow responder answers
    responder = namespaces.popen(name, PYTHON, "-c", SLOW_RESPONDER, "0.3", "30")
    assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
    sends = [["127.0.0.1", None]] * 3
    waiting = namespaces.probe(name, method="icmp", timeout=1.0, gap=0.05, sends=sends)
    busy = namespaces.probe(name, method="icmp", timeout=1.0, sends=sends, busy=0.6)
    for outcome in waiting["outcomes"] + busy["outcomes"]:
        assert outcome.reached and outcome.rtt_seconds is not None, outcome
        assert 0.3 <= outcome.rtt_seconds < 0.36, outcome
    waiting = namespaces.probe(name, method="icmp", timeout=0.15, sends=sends, linger=0.4)
    busy = namespaces.probe(name, method="icmp", timeout=0.15, sends=sends, busy=0.5)
    for outcome in waiting["outcomes"] + busy["outcomes"]:
        assert not outcome.reached and outcome.error == "timeout after 0.15 s", outcome
    # Asked 127.0.0.2, answered by 127.0.0.1 (the responder replies from the address the
    # kernel picks): the right sequence from the wrong host is not an answer.
    report = namespaces.probe(name, method="icmp", timeout=0.5, sends=[["127.0.0.2", None]])
    (outcome,) = report["outcomes"]
    assert not outcome.reached and outcome.error == "timeout after 0.5 s", outcome


@pytest.mark.parametrize("group_range", [WIDE_OPEN, CLOSED], ids=["datagram", "raw"])
def test_a_reply_with_our_numbers_but_not_our_payload_is_not_ours(namespaces: Namespaces,
                                                                   group_range: str) -> None:
    name = namespaces.add("f", group_range)
    sysctl(name, "net.ipv4.icmp_echo_ignore_all=1")  # only the forged replies answer
    counted = json.loads(namespaces.run(name, PYTHON, "-c", FORGED_REPLY))
    assert counted == {"method": "icmp" if group_range == WIDE_OPEN else "icmp-raw",
                       "foreign": False, "own": True}


def test_link_local_ipv6_with_its_interface(chain: Chain, namespaces: Namespaces) -> None:
    """A link-local gateway (fe80::…%eth0, as route.py gives it) is probed on its link."""
    namespaces.set_ping_group_range(chain.a, WIDE_OPEN)
    peer = link_local_address(namespaces, chain.r, f"{chain.r}a")
    address = f"{peer}%{chain.a_interface}"
    report = namespaces.probe(chain.a, method="icmp", timeout=1.0, sends=[[address, None], [address, 1]])
    for outcome in report["outcomes"]:
        assert outcome.reached and outcome.error is None, outcome
        assert outcome.responder is not None and outcome.responder.split("%")[0] == peer


def test_without_poll_the_sampler_says_to_switch_the_probe_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no poll(): one line that says what to do, not an AttributeError per window."""
    import select

    from agent.probes.connectivity.echo import EchoSampler, EchoUnavailable

    monkeypatch.delattr(select, "poll")
    with pytest.raises(EchoUnavailable, match=r"needs poll\(\).*probes.connectivity.enabled = false"):
        EchoSampler("tcp", 80, 1.0)
