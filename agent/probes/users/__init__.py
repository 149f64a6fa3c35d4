"""The ``users`` probe: how many devices are on the school's network, privately.

Every ``interval`` (5 minutes) one census window: each configured source counts, the
devices the sources tell apart are united by their keyed hashes (a phone seen by ARP and
by the neighbour table is one), and one ``users`` record goes out with counts only. The
probe keeps, in memory, today's distinct devices (the keys rotate at midnight, and so do
the sets) and this hour's peak. Sources are plugins (``SOURCES``), imported when used.
"""

from __future__ import annotations

import datetime
import importlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import ValidationError

from agent.config import UsersProbeConfig
from agent.probes import Probe, ProbeContext, ProbeError, one_line_reason
from agent.probes.users.census import CensusUnavailable, DeviceKeys, SourceResult
from agent.probes.users.latest import USERS_LATEST, write_counts
from agent.wire import UsersPayload, UsersSourceStats, hide_mac_shaped

log = logging.getLogger("schoolnet.agent.users")

# name -> "module:Class", each built as Class(section, keys) (see ``_make_source``).
SOURCES = {
    "arp": "agent.probes.users.arp:ArpSource",
    "passive": "agent.probes.users.passive:PassiveSource",
    "neighbours": "agent.probes.users.neighbours:NeighbourSource",
    "snmp": "agent.probes.users.snmp:SnmpSource",
    "unifi": "agent.probes.users.unifi:UnifiSource",
    "bss_load": "agent.probes.users.bss_load:BssLoadSource",
}


@dataclass
class Tally:
    """What the probe remembers between windows: today's devices and this hour's peak."""

    day: datetime.date | None = None
    daily: dict[str, set[bytes]] = field(default_factory=dict)  # source (and "all") -> hashes
    hour: tuple[datetime.date, int] | None = None
    hour_peak: int = 0

    def add(self, day: datetime.date, results: list[SourceResult]) -> None:
        if day != self.day:  # the keys rotated: yesterday's hashes mean nothing now
            self.day, self.daily = day, {}
        for result in results:
            if result.devices is not None:
                self.daily.setdefault(result.source, set()).update(result.devices)
                self.daily.setdefault("all", set()).update(result.devices)

    def peak(self, now: datetime.datetime, concurrent: int) -> int:
        hour = (now.date(), now.hour)
        if hour != self.hour:
            self.hour, self.hour_peak = hour, 0
        self.hour_peak = max(self.hour_peak, concurrent)
        return self.hour_peak


class UsersProbe(Probe):
    name: ClassVar[str] = "users"
    default_interval: ClassVar[float] = 300.0
    config_model: ClassVar[type[UsersProbeConfig]] = UsersProbeConfig

    def __init__(self, context: ProbeContext, sources: dict[str, Any] | None = None) -> None:
        super().__init__(context)
        self.keys = DeviceKeys()
        self.tally = Tally()
        # Replaceable so tests drive the probe with sources of their own.
        self._sources = sources

    def run(self) -> UsersPayload:
        config: UsersProbeConfig = self.config
        results: list[SourceResult] = []
        stats: list[UsersSourceStats] = []
        for name in config.sources:
            began = time.monotonic()
            try:
                result = self._source(name).census()
            except CensusUnavailable as exc:
                stats.append(UsersSourceStats(source=name, error=_reason(str(exc))))
                continue
            except Exception as exc:  # a source's bug costs that source, not the window
                log.exception("census source %s failed", name)
                stats.append(UsersSourceStats(source=name, error=_reason(f"{type(exc).__name__}: {exc}")))
                continue
            try:
                stat = UsersSourceStats(
                    source=name, devices=result.count, rounds=result.rounds, requests=result.requests,
                    duration_seconds=(result.duration_seconds if result.duration_seconds is not None
                                      else time.monotonic() - began))
            except ValidationError:
                # A count the wire refuses (an SNMP Counter64 near 2**64, a negative number)
                # is no count: it costs that source, not the whole window.
                stats.append(UsersSourceStats(source=name, error=_reason(
                    f"reported numbers no census can have (devices {result.count}, rounds "
                    f"{result.rounds}, requests {result.requests}): a wrong OID, or a bug")))
                continue
            results.append(result)
            stats.append(stat)
        if not results:
            raise ProbeError("no census source could count: " + "; ".join(
                f"{s.source}: {s.error}" for s in stats))
        self.tally.add(self.keys.day, results)
        concurrent = combined(results)
        daily = self.tally.daily.get("all")
        for stat in stats:
            seen = self.tally.daily.get(stat.source)
            if stat.error is None and seen is not None:
                stat.daily_devices = len(seen)
        payload = UsersPayload(
            window_seconds=config.interval, concurrent_devices=concurrent,
            daily_devices=len(daily) if daily is not None else None,
            hour_peak_devices=self.tally.peak(datetime.datetime.now(), concurrent), sources=stats)
        if self.context.scheduled:
            write_counts(self.context.state_dir / USERS_LATEST, concurrent_devices=concurrent)
        return payload

    def _source(self, name: str) -> Any:
        if self._sources is not None:
            return self._sources[name]
        return _make_source(name, self.config, self.keys, self.context)


def combined(results: list[SourceResult]) -> int:
    """Distinct devices over all sources: the union of the keyed hashes of the sources that
    tell devices apart, or the largest count of one source when that is larger (a
    controller sees the clients of every VLAN, where ARP sees one; SNMP adds an access
    point's client count to the router's ARP table it hashed)."""
    hashed = [r.devices for r in results if r.devices is not None]
    union = len(set().union(*hashed)) if hashed else 0
    return max(union, *(r.count for r in results), 0)


def _make_source(name: str, config: UsersProbeConfig, keys: DeviceKeys, context: ProbeContext) -> Any:
    module, _, cls = SOURCES[name].partition(":")
    source_class = getattr(importlib.import_module(module), cls)
    if name == "bss_load":
        wifi = context.settings.probes.wifi
        return source_class(context.state_dir, max_age_seconds=2 * wifi.scan_interval)
    if name == "neighbours":
        return source_class(config, keys)
    return source_class(getattr(config, name), keys)


def _reason(text: str) -> str:
    # A tool's complaint may quote an address; a record with one would be refused whole.
    return one_line_reason(hide_mac_shaped(text))
