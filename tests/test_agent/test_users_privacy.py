"""Privacy by construction: real inputs full of identities go through every census source,
and neither the record the probe sends, nor a SourceResult's repr, nor the log holds one.

The inputs: the kernel's neighbour tables (/proc/net/arp, an RTM_GETNEIGH dump), frames a
LAN carries (ARP, DHCP with a host name, mDNS naming the device), ARP replies to the active
census, a router's recorded ARP table over SNMP (client IPs in the OID index, MACs in the
values) and a UniFi controller's recorded client list (MACs, host names). The identities
searched for: each MAC in every notation (colons, dashes, Cisco dots, bare 12 hex digits,
the space-separated bytes of snmpwalk), each client IP, each host name; and any MAC- or
IP-shaped text at all in the record.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import logging
import re
import socket
import struct
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from support import census_samples as samples
from support.fake_snmp import FakeSnmpAgent, walk_rows

from agent.config import (
    AgentSettings,
    ArpCensusConfig,
    PassiveCensusConfig,
    SnmpCensusConfig,
    UnifiCensusConfig,
)
from agent.probes import ProbeContext
from agent.probes.users import UsersProbe, arp
from agent.probes.users.census import DeviceKeys, SourceResult
from agent.probes.users.neighbours import NeighbourSource
from agent.probes.users.passive import PassiveSource
from agent.probes.users.snmp import SnmpSource
from agent.probes.users.unifi import UnifiSource

FIXTURES = Path(__file__).parent.parent / "fixtures" / "users"
SNMP_WALK = FIXTURES / "snmpwalk-ipNetToMediaPhysAddress-babar.txt"
UNIFI_CLIENTS = FIXTURES / "unifi-stat-sta.json"

# ---- what must never leave ------------------------------------------------------------------

_HEX_MAC = re.compile(r"(?<![0-9a-f])(?:[0-9a-f]{2}[:\- ]?){5}[0-9a-f]{2}(?![0-9a-f])|"
                      r"(?<![0-9a-f])[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}(?![0-9a-f])", re.I)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9a-f:])[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?![0-9a-f:])", re.I)


def notations(mac: bytes) -> list[str]:
    digits = mac.hex()
    pairs = [digits[i:i + 2] for i in range(0, 12, 2)]
    forms = [":".join(pairs), "-".join(pairs), " ".join(pairs), digits,
             ".".join(digits[i:i + 4] for i in range(0, 12, 4))]
    return [form for text in forms for form in (text, text.upper())]


def identities() -> tuple[set[bytes], set[str], set[str]]:
    """(MACs, client IPs, host names) in every input below."""
    macs = {entry.hw_address for entry in samples.ARP_ENTRIES}
    macs |= {entry.lladdr for entry in samples.NEIGHBOURS if entry.lladdr}
    macs |= samples.SENDERS | {samples.AGENT, samples.ROUTER} | set(ARP_DEVICES.values())
    ips = {entry.ip for entry in samples.ARP_ENTRIES} | {entry.ip for entry in samples.NEIGHBOURS}
    ips |= set(samples.CLIENT_IPS) | {ipaddress.IPv4Address(ip).exploded for ip in ARP_DEVICES}
    for oid, value in walk_rows(SNMP_WALK).items():
        ips.add(".".join(map(str, oid[-4:])))  # ipNetToMediaNetAddress, the index's last arcs
        macs.add(value[2:])  # an OCTET STRING's content after tag and length
    names = set(samples.HOST_NAMES)
    for client in json.loads(UNIFI_CLIENTS.read_text())["data"]:
        macs.add(bytes.fromhex(client["mac"].replace(":", "")))
        names |= {client[key] for key in ("hostname", "name") if key in client}
    return {m for m in macs if any(m)}, ips, names


def leaks(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """Every identity of the inputs, and anything MAC- or IP-shaped, found in ``text``;
    ``allowed``: the school's own infrastructure that an error may name (a configured host)."""
    macs, ips, names = identities()
    found = [form for mac in macs for form in notations(mac) if form in text]
    found += [ip for ip in ips if re.search(rf"(?<![\d.]){re.escape(ip)}(?![\d.])", text)]
    found += [name for name in names if name.lower() in text.lower()]
    found += _HEX_MAC.findall(text) + [ip for ip in _IPV4.findall(text) if ip not in allowed]
    found += [match for match in _IPV6.findall(text) if match.count(":") >= 2 and match.strip(":")]
    return found


def test_the_scanner_finds_what_it_looks_for() -> None:
    """The scan must be able to fail: each kind of leak it looks for, planted, is found."""
    assert leaks("peer 02-5E-10-00-00-23 seen") == ["02-5E-10-00-00-23", "02-5E-10-00-00-23"]
    assert leaks("x 025e.1000.0044 y")
    assert leaks('{"id": "025e10000101"}')
    assert leaks("08 00 20 12 CC 3F")
    assert leaks("from 130.59.4.11") and leaks("addr fd00:203:170::44,")
    assert leaks("by lisa-ipad") and leaks("Wireless client")
    assert leaks("other 10.9.8.7 and fe80::1") and leaks("aa:bb:cc:dd:ee:ff")
    assert leaks('{"concurrent_devices": 12, "duration_seconds": 0.25, "requests": 5}') == []


# ---- the sources, fed their real inputs -----------------------------------------------------

def neighbour_source(tmp_path: Path, keys: DeviceKeys) -> NeighbourSource:
    table = tmp_path / "arp"
    table.write_text(samples.proc_net_arp(samples.ARP_ENTRIES))

    class Replay:  # a fresh netlink socket per census, answering with the recorded dump
        def __init__(self) -> None:
            self.datagrams = samples.neighbour_dump(samples.NEIGHBOURS, seq=1)

        def send(self, data: bytes) -> int:
            return len(data)

        def recv(self, size: int) -> bytes:
            return self.datagrams.pop(0)

        def close(self) -> None:
            pass

    return NeighbourSource(AgentSettings().probes.users, keys, proc_arp=table, route_socket=Replay,
                           interfaces=lambda: samples.INTERFACES)


class CapturedFrames:
    """The passive source's capture: frames through a real datagram socketpair."""

    def __init__(self, frames: list[bytes]) -> None:
        self._reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with writer:
            for frame in frames:
                writer.send(frame)

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int, int, int, bytes]]:
        return self._reader.recv(size), ("eth0", 3, 1, 1, samples.AGENT)

    def getsockname(self) -> tuple[str, int, int, int, bytes]:
        return ("eth0", 3, 0, 1, samples.AGENT)

    def fileno(self) -> int:
        return self._reader.fileno()

    def close(self) -> None:
        self._reader.close()


def passive_source(keys: DeviceKeys) -> PassiveSource:
    frames = samples.COUNTED_FRAMES + samples.PASSED_NOT_COUNTED + samples.FILTERED_FRAMES
    return PassiveSource(PassiveCensusConfig(interface="eth0", listen=0.1), keys,
                         capture=lambda interface: CapturedFrames(frames))


# The active census asks 10.203.170.0/29 from .2; three devices answer.
ARP_DEVICES = {"10.203.170.1": samples.ROUTER, "10.203.170.3": samples.mac("02:5e:10:00:02:03"),
               "10.203.170.5": samples.mac("02:5e:10:00:02:05")}
Address = collections.namedtuple("Address", "family address netmask broadcast ptp")


def arp_reply(device: bytes, ip: str) -> bytes:
    """RFC 826 reply (op 2) from ``device`` at ``ip`` to the agent at 10.203.170.2."""
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, device, ipaddress.IPv4Address(ip).packed,
                       samples.AGENT, ipaddress.IPv4Address("10.203.170.2").packed)
    return samples.ethernet(samples.AGENT, device, 0x0806, body)


def arp_source(keys: DeviceKeys, monkeypatch: pytest.MonkeyPatch) -> arp.ArpSource:
    def replies(interface: str) -> socket.socket:
        own, lan = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for ip, device in ARP_DEVICES.items():
            lan.send(arp_reply(device, ip))
        own.setblocking(False)
        replies.lan = lan  # type: ignore[attr-defined]  # kept open: the requests go there
        return own

    monkeypatch.setattr(arp, "open_arp_socket", replies)
    interfaces = {"eth0": [Address(psutil.AF_LINK, samples.mac_text(samples.AGENT), None, None, None),
                           Address(socket.AF_INET, "10.203.170.2", "255.255.255.248", None, None)]}
    return arp.ArpSource(ArpCensusConfig(interface="eth0", rounds=1, wait=0.05, rate=1000), keys,
                         interfaces=lambda: interfaces)


def unifi_transport() -> httpx.MockTransport:
    """A UniFi OS console answering with the recorded client list."""
    clients = UNIFI_CLIENTS.read_bytes()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/auth/login":
            return httpx.Response(200, json={"username": "census"}, headers={"x-csrf-token": "t0k3n"})
        if request.url.path == "/proxy/network/api/s/default/stat/sta":
            return httpx.Response(200, content=clients, headers={"content-type": "application/json"})
        return httpx.Response(200, json={})

    return httpx.MockTransport(answer)


# ---- the record ------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def own_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHOOLNET_PROBES__USERS__SOURCES", raising=False)


def test_no_identity_leaves_through_the_record_the_results_or_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    keys = DeviceKeys()
    with FakeSnmpAgent(walk_rows(SNMP_WALK)) as snmp_agent:
        sources: dict[str, Any] = {
            "neighbours": neighbour_source(tmp_path, keys),
            "passive": passive_source(keys),
            "arp": arp_source(keys, monkeypatch),
            "snmp": SnmpSource(SnmpCensusConfig(hosts=[snmp_agent.address], timeout=1), keys),
            "unifi": UnifiSource(UnifiCensusConfig(url="https://unifi.school.test", username="census",
                                                   password="pw"), keys, transport=unifi_transport()),
        }
        results: list[SourceResult] = [source.census() for source in sources.values()]
        settings = AgentSettings(state_dir=tmp_path, probes={"users": {"sources": list(sources)}})
        # Each source counts once more inside the probe, which builds the record it sends.
        payload = UsersProbe(ProbeContext(settings, None, tmp_path), sources=sources).run()

    # The inputs were read: every source counted its devices (so the scan is of real work).
    counts = {result.source: result.count for result in results}
    assert counts == {"neighbours": 7, "passive": 4, "arp": 3, "snmp": 9, "unifi": 2}
    assert [stat.devices for stat in payload.sources] == list(counts.values())
    assert payload.concurrent_devices >= 9

    record = payload.model_dump_json()
    assert leaks(record) == [], record
    for result in results:
        assert leaks(repr(result)) == [] and leaks(str(result)) == []
    assert leaks(caplog.text) == [], caplog.text


def test_a_failing_source_says_why_without_an_identity(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Errors go into the record too: an unreachable SNMP host and a controller that refuses."""
    caplog.set_level(logging.DEBUG)
    keys = DeviceKeys()

    def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"meta": {"rc": "error", "msg": "api.err.Invalid"}})

    with FakeSnmpAgent(walk_rows(SNMP_WALK), silent=True) as silent:
        sources: dict[str, Any] = {
            "neighbours": neighbour_source(tmp_path, keys),
            "snmp": SnmpSource(SnmpCensusConfig(hosts=[silent.address], timeout=0.2), keys,
                               overall_timeout=1),
            "unifi": UnifiSource(UnifiCensusConfig(url="https://unifi.school.test"), keys,
                                 transport=httpx.MockTransport(refused)),
        }
        settings = AgentSettings(state_dir=tmp_path, probes={"users": {"sources": list(sources)}})
        payload = UsersProbe(ProbeContext(settings, None, tmp_path), sources=sources).run()
    errors = [stat.error for stat in payload.sources]
    assert errors[0] is None and errors[1] and errors[2]
    # The SNMP error names the router it asked (configured, not a client): that may stay.
    router = frozenset({silent.address.split(":")[0]})
    assert router <= set(re.findall(r"[\d.]+", errors[1] or ""))
    assert leaks(payload.model_dump_json(), router) == []
    assert leaks(caplog.text, router) == []
