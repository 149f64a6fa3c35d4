"""The users probe: sources combined by their keyed hashes, today's devices and the hour's
peak kept in memory, failures said per source, and the counts other probes read."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentSettings
from agent.probes import ProbeContext
from agent.probes.users import UsersProbe, combined
from agent.probes.users.bss_load import BssLoadSource
from agent.probes.users.census import CensusUnavailable, DeviceKeys, SourceResult, is_device_address
from agent.probes.users.latest import USERS_LATEST, WIFI_STATIONS, read_counts, write_counts


@pytest.fixture(autouse=True)
def own_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests name their sources in the settings: the safety net's must not apply."""
    monkeypatch.delenv("SCHOOLNET_PROBES__USERS__SOURCES", raising=False)


class Fixed:
    """A source that counts what it is given, in turn."""

    def __init__(self, name: str, *answers: SourceResult | Exception) -> None:
        self.name = name
        self.answers = list(answers)

    def census(self) -> SourceResult:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def hashed(*names: str) -> frozenset[bytes]:
    return frozenset(name.encode() for name in names)


def probe(tmp_path: Path, sources: dict[str, Any], scheduled: bool = False) -> UsersProbe:
    settings = AgentSettings(state_dir=tmp_path, probes={"users": {"sources": list(sources)}})
    return UsersProbe(ProbeContext(settings, None, tmp_path, scheduled=scheduled), sources=sources)


def test_devices_seen_by_several_sources_count_once(tmp_path: Path) -> None:
    sources = {
        "arp": Fixed("arp", SourceResult("arp", 3, hashed("a", "b", "c"), 2.5, rounds=3, requests=700)),
        "neighbours": Fixed("neighbours", SourceResult("neighbours", 2, hashed("b", "d"))),
    }
    measurement = probe(tmp_path, sources).measure()
    assert measurement.ok, measurement.error
    payload = measurement.payload or {}
    assert payload["concurrent_devices"] == 4  # a, b, c, d
    assert payload["daily_devices"] == 4 and payload["hour_peak_devices"] == 4
    arp, neighbours = payload["sources"]
    assert (arp["source"], arp["devices"], arp["rounds"], arp["requests"]) == ("arp", 3, 3, 700)
    assert arp["duration_seconds"] == 2.5 and arp["daily_devices"] == 3
    assert (neighbours["devices"], neighbours["daily_devices"]) == (2, 2)
    assert neighbours["duration_seconds"] >= 0


def test_a_count_only_source_counts_when_it_sees_more() -> None:
    # A controller sees the Wi-Fi clients of every VLAN; ARP sees only the agent's own.
    arp = SourceResult("arp", 2, hashed("a", "b"))
    assert combined([arp, SourceResult("unifi", 40)]) == 40
    assert combined([arp, SourceResult("bss_load", 1)]) == 2
    assert combined([SourceResult("snmp", 0)]) == 0


def test_today_and_this_hour_are_remembered_and_start_again(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    windows = [SourceResult("arp", 2, hashed("a", "b")), SourceResult("arp", 1, hashed("c")),
               SourceResult("arp", 1, hashed("a"))]
    users = probe(tmp_path, {"arp": Fixed("arp", *windows)})
    days = iter([datetime.date(2026, 12, 1)] * 2 + [datetime.date(2026, 12, 2)])
    users.keys = DeviceKeys(today=lambda: next(days))
    first, second, third = (users.measure().payload or {} for _ in range(3))
    assert (first["daily_devices"], second["daily_devices"]) == (2, 3)  # a, b, then c
    assert second["concurrent_devices"] == 1 and second["hour_peak_devices"] == 2
    assert third["daily_devices"] == 1  # a new day: a new key, a new set


def test_a_failed_source_is_said_and_the_others_still_count(tmp_path: Path) -> None:
    sources = {
        "arp": Fixed("arp", CensusUnavailable("the ARP census needs CAP_NET_RAW (run as root or "
                                              "grant the capability)")),
        "snmp": Fixed("snmp", RuntimeError("bug quoting 8c:be:be:f5:8f:59")),
        "neighbours": Fixed("neighbours", SourceResult("neighbours", 1, hashed("a"))),
    }
    payload = probe(tmp_path, sources).measure().payload or {}
    errors = {s["source"]: s["error"] for s in payload["sources"]}
    assert errors["arp"].startswith("the ARP census needs CAP_NET_RAW")
    assert errors["snmp"] == "RuntimeError: bug quoting <address>"
    assert errors["neighbours"] is None and payload["concurrent_devices"] == 1
    assert [s["devices"] for s in payload["sources"]] == [None, None, 1]


def test_no_source_counting_is_a_failed_run_with_every_reason(tmp_path: Path) -> None:
    measurement = probe(tmp_path, {"arp": Fixed("arp", CensusUnavailable("no CAP_NET_RAW"))}).measure()
    assert not measurement.ok
    assert measurement.error == "no census source could count: arp: no CAP_NET_RAW"


def test_the_daemons_count_is_left_for_the_bandwidth_probe(tmp_path: Path) -> None:
    sources = {"neighbours": Fixed("neighbours", SourceResult("neighbours", 2, hashed("a", "b")))}
    probe(tmp_path, sources).measure()
    assert not (tmp_path / USERS_LATEST).exists()  # `measure` leaves nothing behind
    probe(tmp_path, sources, scheduled=True).measure()
    counts = read_counts(tmp_path / USERS_LATEST, 600)
    assert counts is not None and counts["concurrent_devices"] == 2
    assert read_counts(tmp_path / USERS_LATEST, 600, now=time.time() + 601) is None


def test_bss_load_reads_the_wifi_scans_station_total(tmp_path: Path) -> None:
    source = BssLoadSource(tmp_path, max_age_seconds=1800)
    with pytest.raises(CensusUnavailable, match="no recent Wi-Fi scan"):
        source.census()
    write_counts(tmp_path / WIFI_STATIONS, station_count=0, access_points_reporting=0)
    with pytest.raises(CensusUnavailable, match="send no BSS Load"):
        source.census()
    write_counts(tmp_path / WIFI_STATIONS, station_count=23, access_points_reporting=3)
    result = source.census()
    assert (result.source, result.count, result.devices) == ("bss_load", 23, None)
    stale = json.loads((tmp_path / WIFI_STATIONS).read_text())
    stale["measured_at"] -= 3600
    (tmp_path / WIFI_STATIONS).write_text(json.dumps(stale))
    with pytest.raises(CensusUnavailable):
        source.census()


def test_keyed_hashes_are_stable_within_a_day_and_unlinkable_across_days() -> None:
    days = [datetime.date(2026, 12, 1)]
    keys = DeviceKeys(today=lambda: days[0])
    mac = bytes.fromhex("8cbebef58f59")
    first = keys(mac)
    assert keys(mac) == first and len(first) == 8 and keys(bytes.fromhex("8cbebef58f5a")) != first
    days[0] = datetime.date(2026, 12, 2)
    assert keys(mac) != first
    assert DeviceKeys(today=lambda: days[0])(mac) != keys(mac)  # another process, another key


def test_only_unicast_device_addresses_count() -> None:
    assert is_device_address(bytes.fromhex("8cbebef58f59"))
    assert not is_device_address(b"\xff" * 6)
    assert not is_device_address(bytes.fromhex("01005e0000fb"))  # mDNS multicast
    assert not is_device_address(b"\x00" * 6)
    assert not is_device_address(b"\x01\x02")


def test_a_bandwidth_test_records_the_census_count_when_it_is_recent(tmp_path: Path) -> None:
    from agent.probes.bandwidth import BandwidthProbe

    settings = AgentSettings(state_dir=tmp_path)
    bandwidth = BandwidthProbe(ProbeContext(settings, None, tmp_path))
    assert bandwidth._devices_now() is None  # no census yet
    write_counts(tmp_path / USERS_LATEST, concurrent_devices=37)
    assert bandwidth._devices_now() == 37
    old = json.loads((tmp_path / USERS_LATEST).read_text())
    old["measured_at"] -= 2 * settings.probes.users.interval + 1
    (tmp_path / USERS_LATEST).write_text(json.dumps(old))
    assert bandwidth._devices_now() is None  # older than two windows: not "now"
    off = AgentSettings(state_dir=tmp_path, probes={"users": {"enabled": False}})
    write_counts(tmp_path / USERS_LATEST, concurrent_devices=37)
    assert BandwidthProbe(ProbeContext(off, None, tmp_path))._devices_now() is None


@pytest.mark.parametrize("count", [2**64 - 1, -1])
def test_a_count_the_wire_refuses_costs_that_source_not_the_window(tmp_path: Path, count: int) -> None:
    # An SNMP value OID that is really a Counter64 of octets, or a negative INTEGER: the record
    # must still carry the other sources' counts, not fail validation as a whole.
    sources = {"snmp": Fixed("snmp", SourceResult("snmp", count)),
               "neighbours": Fixed("neighbours", SourceResult("neighbours", 2, hashed("a", "b")))}
    measurement = probe(tmp_path, sources).measure()
    assert measurement.ok, measurement.error
    payload = measurement.payload or {}
    assert payload["concurrent_devices"] == 2 and payload["hour_peak_devices"] == 2
    snmp_stats, neighbours = payload["sources"]
    assert snmp_stats["devices"] is None and f"devices {count}" in snmp_stats["error"]
    assert neighbours["devices"] == 2 and neighbours["error"] is None
