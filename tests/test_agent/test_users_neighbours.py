"""The neighbour-table source: /proc/net/arp and rtnetlink fixtures, then a real kernel table."""

from __future__ import annotations

import datetime
import logging
import socket
import subprocess
from pathlib import Path

import pytest
from support import census_samples as samples
from support.census_lan import CensusLan, in_namespace
from support.netns import require_netns
from support.tools import require_tool

from agent.config import ArpCensusConfig, UsersProbeConfig
from agent.probes.users.census import CensusUnavailable, DeviceKeys
from agent.probes.users.neighbours import NeighbourSource, arp_table_devices, neighbour_dump_devices


def fixed_keys() -> DeviceKeys:
    return DeviceKeys(today=lambda: datetime.date(2025, 3, 10), random=lambda n: b"k" * n)


class ReplayedSocket:
    """A netlink socket that answers the dump request with recorded datagrams."""

    def __init__(self, datagrams: list[bytes]) -> None:
        self.datagrams = list(datagrams)
        self.sent: list[bytes] = []
        self.closed = False

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)

    def recv(self, size: int) -> bytes:
        if not self.datagrams:
            raise TimeoutError("timed out")
        return self.datagrams.pop(0)

    def close(self) -> None:
        self.closed = True


def source(tmp_path: Path, interface: str = "", datagrams: list[bytes] | None = None,
           entries: list[samples.ArpEntry] = samples.ARP_ENTRIES) -> tuple[NeighbourSource, ReplayedSocket]:
    arp = tmp_path / "arp"
    arp.write_text(samples.proc_net_arp(entries))
    if datagrams is None:
        datagrams = samples.neighbour_dump(samples.NEIGHBOURS, seq=1)
    replay = ReplayedSocket(datagrams)
    config = UsersProbeConfig(arp=ArpCensusConfig(interface=interface))
    return NeighbourSource(config, fixed_keys(), proc_arp=arp, route_socket=lambda: replay,
                           interfaces=lambda: samples.INTERFACES), replay


def hashes(addresses: set[bytes]) -> frozenset[bytes]:
    keys = fixed_keys()
    return frozenset(keys(address) for address in addresses)


def test_the_kernels_arp_format_counts_complete_learnt_entries_only() -> None:
    text = samples.proc_net_arp(samples.ARP_ENTRIES)
    assert text.splitlines()[1].startswith("10.203.170.1     0x1         0x2         02:5e:10:00:00:01     *")
    found = arp_table_devices(text, fixed_keys(), lambda name: name != "lo")
    assert found == hashes(samples.ARP_COUNTED_ON_ALL)
    on_eth0 = arp_table_devices(text, fixed_keys(), lambda name: name == "eth0")
    assert on_eth0 == hashes(samples.ARP_COUNTED_ON_ETH0)


def test_a_non_ethernet_or_garbled_line_is_skipped() -> None:
    text = samples.proc_net_arp([samples.ArpEntry("10.203.170.9", bytes(range(1, 7)), hw_type=32)])
    text += "garbage line\n10.203.170.8 0x1 0xzz 02:5e:10:00:00:08 * eth0\n"
    assert arp_table_devices(text, fixed_keys(), lambda name: True) == set()


def test_a_neighbour_dump_counts_reachable_stale_delay_probe() -> None:
    datagrams = samples.neighbour_dump(samples.NEIGHBOURS, seq=7)
    assert len(datagrams) > 2  # the parser reads across datagrams
    found = neighbour_dump_devices(datagrams, fixed_keys(), lambda index: index == 2)
    assert found == hashes(samples.NEIGHBOURS_COUNTED_ON_ETH0)


def test_the_source_dedups_ipv4_and_ipv6_by_mac_on_every_interface_but_loopback(tmp_path: Path) -> None:
    census_source, replay = source(tmp_path)
    result = census_source.census()
    expected = samples.ARP_COUNTED_ON_ALL | samples.NEIGHBOURS_COUNTED_ON_ALL
    assert result.source == "neighbours"
    assert result.devices == hashes(expected)
    assert result.count == len(expected) == 7  # the gateway and the phone are in both tables
    assert replay.closed
    # The request is an RTM_GETNEIGH dump for AF_INET6.
    length, kind, flags = (int.from_bytes(replay.sent[0][a:b], "little") for a, b in ((0, 4), (4, 6), (6, 8)))
    assert (length, kind, flags, replay.sent[0][16]) == (28, 30, 0x301, socket.AF_INET6)


def test_a_configured_interface_limits_both_tables(tmp_path: Path) -> None:
    result = source(tmp_path, interface="eth0")[0].census()
    assert result.devices == hashes(samples.ARP_COUNTED_ON_ETH0 | samples.NEIGHBOURS_COUNTED_ON_ETH0)


def test_a_missing_interface_is_named(tmp_path: Path) -> None:
    with pytest.raises(CensusUnavailable, match=r"'wlan9' .* does not exist here; it has docker0, eth0, lo"):
        source(tmp_path, interface="wlan9")[0].census()


def test_an_unreadable_arp_table_makes_the_source_unavailable(tmp_path: Path) -> None:
    config = UsersProbeConfig()
    with pytest.raises(CensusUnavailable, match="cannot read the kernel's neighbour table"):
        NeighbourSource(config, fixed_keys(), proc_arp=tmp_path / "missing").census()


def test_a_failed_ipv6_dump_keeps_the_ipv4_count_and_warns(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    failed = samples.neighbour_dump([], seq=1, error=-1)  # EPERM
    with caplog.at_level(logging.WARNING):
        result = source(tmp_path, datagrams=failed)[0].census()
    assert result.devices == hashes(samples.ARP_COUNTED_ON_ALL)
    assert ("IPv6 neighbours not counted: the neighbour dump ended with: Operation not permitted"
            in caplog.text)
    cut = samples.neighbour_dump(samples.NEIGHBOURS, seq=1)[:-1]  # no NLMSG_DONE, then a timeout
    assert source(tmp_path, datagrams=cut)[0].census().devices == hashes(samples.ARP_COUNTED_ON_ALL)


def test_the_real_kernel_table_after_pings_in_a_namespace() -> None:
    require_netns()
    require_tool("ping")
    keys = DeviceKeys()
    devices = {"02:cb:a1:00:00:11": ("10.203.161.11/24", "fd00:203:161::11/64"),  # both families
               "02:cb:a1:00:00:12": ("10.203.161.12/24",),
               "02:cb:a1:00:00:13": ("fd00:203:161::13/64",)}  # IPv6 only
    with CensusLan() as lan:
        lan.agent_address("10.203.161.1/24", "fd00:203:161::1/64")
        for address, cidrs in devices.items():
            lan.add_device(address, *cidrs)
        agent = lan.namespaces["agent"]
        # A static entry (nobody answered it) and a silent address (INCOMPLETE, then FAILED).
        subprocess.run(["ip", "-n", agent, "neigh", "add", "10.203.161.50", "lladdr", "02:cb:a1:00:00:50",
                        "dev", lan.agent_interface, "nud", "permanent"], check=True, timeout=10)
        targets = ["10.203.161.11", "10.203.161.12", "fd00:203:161::11", "fd00:203:161::13",
                   "10.203.161.99", "fd00:203:161::99"]
        pings = [lan.popen("agent", "ping", "-c", "1", "-W", "1", target, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) for target in targets]
        codes = [ping.wait(timeout=10) for ping in pings]
        assert codes == [0, 0, 0, 0, 1, 1], dict(zip(targets, codes, strict=True))
        table = lan.run("agent", "ip", "neigh", "show").stdout

        config = UsersProbeConfig()
        own = Path("/proc/thread-self/net/arp")  # the thread's namespace, not the process's
        result = in_namespace(agent, lambda: NeighbourSource(config, keys, proc_arp=own).census())
        only_other = UsersProbeConfig(arp=ArpCensusConfig(interface="lo"))
        on_lo = in_namespace(agent, lambda: NeighbourSource(only_other, keys, proc_arp=own).census())

    expected = frozenset(keys(samples.mac(address)) for address in devices)
    assert result.devices == expected, table
    assert result.count == 3
    assert on_lo.count == 0
