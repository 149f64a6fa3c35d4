"""The active ARP census against a LAN of 60 real kernels in network namespaces.

40 hosts answer, 10 answer only every second request for their address (nft ``numgen inc
mod 2``, deterministic) and 10 never answer (support/test_lan.py). The census runs as the
agent would, in a process of its own in the agent's namespace (its MAC hashes with a key the
test knows, so the test can name every device it must and must not find): it finds exactly
the 50 responsive hosts, the silent ten and the agent itself never; later rounds ask only who
has not answered; the pace holds; a too-large subnet and a missing CAP_NET_RAW are refused
with a message an ICT coordinator can act on.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from typing import NamedTuple

import psutil
import pytest
from support.census_lan import CensusLan, in_namespace
from support.netns import require_netns
from support.test_lan import AGENT_MAC, KEY, TestLan, mac_bytes, run_census, spread
from support.tools import require_tool

from agent.config import ArpCensusConfig
from agent.probes.users.arp import NO_CAPABILITY, ArpSource, _Census, plan_census
from agent.probes.users.census import DIGEST_BYTES, CensusUnavailable, DeviceKeys

pytestmark = pytest.mark.e2e

NETWORK = "10.203.176.0/24"
ASKED = 253  # a /24's 254 host addresses but the agent's own
# Fast settings for a LAN of namespaces, where an answer takes well under a millisecond.
FAST = {"rounds": 3, "rate": 2000, "wait": 0.3}


@pytest.fixture(scope="module")
def lan() -> Iterator[TestLan]:
    require_netns()
    require_tool("nft")
    require_tool("setpriv")
    require_tool("time")
    hosts = spread(NETWORK, 60, lossy=10, silent=10)
    with TestLan(NETWORK, hosts, prefix="ac") as network:
        # A default route via one of the hosts: how the census finds its interface unconfigured.
        gateway = next(host.ip for host in network.hosts if host.behaviour == "answering")
        result = network.run("agent", "ip", "route", "add", "default", "via", gateway)
        assert result.returncode == 0, result.stderr
        yield network


@pytest.fixture
def fresh(lan: TestLan) -> TestLan:
    """Every lossy host drops its next request again, whatever an earlier test sent."""
    lan.reset_loss()
    return lan


class Address(NamedTuple):
    """The fields of psutil.net_if_addrs()'s entries that the census reads."""

    family: int
    address: str
    netmask: str | None


def hashes(macs: list[str]) -> set[str]:
    keys = DeviceKeys(random=lambda size: KEY[:size])
    return {keys(mac_bytes(mac)).hex() for mac in macs}


def test_the_lan_is_what_the_census_is_measured_against(lan: TestLan) -> None:
    assert [h.behaviour for h in lan.hosts].count("lossy") == 10
    assert [h.behaviour for h in lan.hosts].count("silent") == 10
    assert len(lan.responsive) == 50
    assert len({host.mac for host in lan.hosts} | {AGENT_MAC}) == 61


def test_finds_exactly_the_responsive_hosts_unconfigured(fresh: TestLan) -> None:
    """Interface from the default route, subnet from the interface: the product's defaults."""
    output, run = run_census(fresh, FAST)
    assert run.returncode == 0, run.stderr
    assert output["source"] == "arp"
    assert output["count"] == 50
    devices = set(output["devices"])
    assert devices == hashes([host.mac for host in fresh.responsive])
    assert not devices & hashes([host.mac for host in fresh.hosts if not host.responsive])
    assert not devices & hashes([AGENT_MAC])
    assert all(len(bytes.fromhex(device)) == DIGEST_BYTES for device in devices)
    # Round 1 asks everyone; round 2 whoever did not answer (the lossy ten answer now); round
    # 3 only the silent ten and the empty addresses.
    assert output["rounds"] == 3
    assert output["requests"] == ASKED + (ASKED - 40) + (ASKED - 50)


def test_no_address_of_a_client_in_the_result(fresh: TestLan) -> None:
    output, _ = run_census(fresh, FAST)
    text = output["repr"]
    assert output["count"] == 50
    for host in fresh.hosts:
        raw = mac_bytes(host.mac)
        for form in (host.mac, host.mac.replace(":", ""), host.mac.upper(), repr(raw)[2:-1], raw.hex()):
            assert form not in text
        assert host.ip not in text
        assert ipaddress.IPv4Address(host.ip).packed.hex() not in text
    assert fresh.agent_ip not in text


def test_one_round_misses_the_lossy_hosts_and_keeps_the_pace(fresh: TestLan) -> None:
    output, _ = run_census(fresh, {"interface": "lan0", "rounds": 1, "rate": 500, "wait": 0.2})
    assert output["count"] == 40
    assert output["devices"] == sorted(hashes([h.mac for h in fresh.hosts if h.behaviour == "answering"]))
    assert (output["rounds"], output["requests"]) == (1, ASKED)
    # 253 requests at 500 a second: the first goes at once, the last after 252 intervals,
    # then 0.2 s for late answers. Not much longer either: the schedule does not drift.
    assert ASKED / 500 - 0.002 + 0.2 <= output["duration_seconds"] < ASKED / 500 + 0.2 + 0.25


def test_configured_subnet_asks_only_its_addresses(fresh: TestLan) -> None:
    subnet = ipaddress.IPv4Network("10.203.176.0/25")
    inside = [host for host in fresh.hosts if ipaddress.IPv4Address(host.ip) in subnet]
    output, _ = run_census(fresh, {**FAST, "interface": "lan0", "subnets": [str(subnet)]})
    assert output["count"] == len([host for host in inside if host.responsive])
    assert set(output["devices"]) == hashes([host.mac for host in inside if host.responsive])
    assert output["requests"] >= 125  # 126 host addresses but the agent's own, at least once


def test_without_cap_net_raw_says_so(fresh: TestLan) -> None:
    output, run = run_census(fresh, FAST, without_net_raw=True)
    assert run.returncode == 3
    assert output == {"unavailable": NO_CAPABILITY}


def test_too_large_a_subnet_is_refused_before_sending() -> None:
    interfaces = {"eth0": [Address(psutil.AF_LINK, "02:cb:00:00:00:01", None),
                           Address(socket.AF_INET, "10.203.176.1", "255.255.252.0")]}
    config = ArpCensusConfig(interface="eth0", max_addresses=1000)
    with pytest.raises(CensusUnavailable) as refused:
        plan_census(config, interfaces, lambda: None)
    message = str(refused.value)
    assert "10.203.176.0/22 hold 1022 addresses" in message and "max_addresses (1000)" in message
    # The same through the source: it refuses before it opens a socket (no root needed here).
    source = ArpSource(config, DeviceKeys(), interfaces=lambda: interfaces, gateway=lambda: None)
    with pytest.raises(CensusUnavailable, match="max_addresses"):
        source.census()
    # Within the limit, every host address but the agent's own, in order.
    plan = plan_census(ArpCensusConfig(interface="eth0"), interfaces, lambda: None)
    assert len(plan.frames) == 1021
    assert ipaddress.IPv4Address("10.203.176.1").packed not in plan.frames
    assert next(iter(plan.frames)) == ipaddress.IPv4Address("10.203.176.2").packed


def on_eth0(*cidrs: str) -> dict[str, list[Address]]:
    """psutil's view of an interface eth0 with these IPv4 addresses (a test's own MAC)."""
    entries = [Address(psutil.AF_LINK, "02:cb:00:00:00:01", None)]
    for cidr in cidrs:
        address = ipaddress.IPv4Interface(cidr)
        entries.append(Address(socket.AF_INET, str(address.ip), str(address.netmask)))
    return {"eth0": entries}


def test_a_subnet_the_interface_is_not_on_is_refused_not_sent() -> None:
    """ARP reaches only the link: off it, nobody answers (or a router's proxy ARP answers
    for devices elsewhere), so the census refuses before it opens a socket."""
    interfaces = on_eth0("10.203.192.1/24")
    for subnets in (["10.203.193.0/24"], ["10.203.192.0/22"], ["10.203.192.0/25", "10.203.200.0/30"]):
        config = ArpCensusConfig(interface="eth0", subnets=subnets)
        with pytest.raises(CensusUnavailable, match=r"is not on interface 'eth0', which is on "
                                                     r"10\.203\.192\.0/24: ARP reaches only"):
            plan_census(config, interfaces, lambda: None)
        source = ArpSource(config, DeviceKeys(), interfaces=lambda: interfaces, gateway=lambda: None)
        with pytest.raises(CensusUnavailable, match="is not on interface"):
            source.census()
    # Inside the interface's subnet: asked from the interface's own address.
    inside = ArpCensusConfig(interface="eth0", subnets=["10.203.192.0/30"])
    plan = plan_census(inside, interfaces, lambda: None)
    assert list(plan.frames) == [ipaddress.IPv4Address("10.203.192.2").packed]
    assert plan.frames[ipaddress.IPv4Address("10.203.192.2").packed][28:32] == bytes([10, 203, 192, 1])
    with pytest.raises(CensusUnavailable, match="has no IPv4 address"):
        plan_census(ArpCensusConfig(interface="eth0", subnets=["10.203.192.0/24"]), on_eth0(), lambda: None)


def test_a_31_asks_its_other_address_and_a_32_is_refused_not_counted_as_empty() -> None:
    plan = plan_census(ArpCensusConfig(interface="eth0"), on_eth0("10.203.192.0/31"), lambda: None)
    assert list(plan.frames) == [ipaddress.IPv4Address("10.203.192.1").packed]
    with pytest.raises(CensusUnavailable, match=r"10\.203\.192\.7/32 on 'eth0' hold no address but"):
        plan_census(ArpCensusConfig(interface="eth0"), on_eth0("10.203.192.7/32"), lambda: None)


def test_a_flood_of_frames_does_not_keep_the_census_listening_past_its_deadline() -> None:
    """A broadcast storm (or a kernel that refused the filter on a busy LAN) never leaves the
    socket empty. A stream at its end stands in for it: recv answers at once, forever."""
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    writer.close()
    reader.setblocking(False)
    interfaces = on_eth0("10.203.192.1/30")
    config = ArpCensusConfig(interface="eth0")
    census = _Census(ArpSource(config, DeviceKeys(), interfaces=lambda: interfaces),
                     plan_census(config, interfaces, lambda: None), reader)
    listening = threading.Thread(target=lambda: census.listen_until(time.monotonic() + 0.05), daemon=True)
    try:
        listening.start()
        listening.join(5)
        assert not listening.is_alive(), "still reading 5 s after a deadline of 50 ms"
    finally:
        reader.close()  # a loop still reading gets EBADF and ends
        listening.join(5)


def test_an_interface_that_goes_away_mid_census_makes_the_source_unavailable() -> None:
    require_netns()
    with CensusLan(prefix="ag") as lan:
        lan.agent_address("10.203.196.1/24")
        # 10 requests a second for 253 addresses: the census is still asking when the link goes.
        config = ArpCensusConfig(interface=lan.agent_interface, rounds=1, rate=10)
        source = ArpSource(config, DeviceKeys())
        outcome: dict[str, BaseException] = {}

        def census() -> None:
            try:
                in_namespace(lan.namespaces["agent"], source.census)
            except BaseException as error:  # handed to the test below
                outcome["error"] = error

        running = threading.Thread(target=census)
        running.start()
        time.sleep(0.5)
        lan.run("agent", "ip", "link", "del", lan.agent_interface)
        running.join(10)
        assert not running.is_alive()
    error = outcome.get("error")
    assert isinstance(error, CensusUnavailable), repr(error)
    assert str(error) == f"listening for ARP on {lan.agent_interface!r} failed: Network is down"
