"""The device census of each agent on /metrics: how many devices are on the school's network.

Built at scrape time from the `latest` rows of kind `users` (one census window, default
every 5 minutes), so no query of its own. Per source of that window (`source` = `arp`,
`passive`, `neighbours`, `bss_load`, `snmp`, `unifi`) and, with `source="all"`, the
agent's combined figures (distinct devices over the sources, see agent/WIRE.md). Only
counts ever reach the collector: the agent hashes every address it reads and sends none.

A value the window does not give is an absent series, never 0: a source that failed has
no device count (its `schoolnet_census_source_up` is 0), and a count-only source (BSS
Load, a controller) has no daily figure, since it cannot tell one day's devices apart.

Labels: `board`, `school`, `agent`, then `source` where the figure is per source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from collector.exposition import Family, FirstSeries, LabelValues

IDENTITY = ("board", "school", "agent")
PER_SOURCE = (*IDENTITY, "source")
# The label value of the agent's combined figures; no census source is called that.
ALL_SOURCES = "all"
WINDOW = ("latest census window of the agent (every users interval, default 5 min), updated "
          "when the agent reports")

# (field of a source's stats, metric, help) of the per-window values of each source.
SOURCE_METRICS = (
    ("duration_seconds", "schoolnet_census_duration_seconds",
     "How long the source took to count in the window, seconds"),
    ("rounds", "schoolnet_census_rounds",
     "ARP rounds the source sent in the window (a device that did not answer is asked again), "
     "a count for that window alone"),
    ("requests", "schoolnet_census_requests",
     "Requests the source sent in the window (ARP requests, SNMP or controller queries), a "
     "count for that window alone"),
)


def users_families(latest_rows: Sequence[Any], labels: dict[int, LabelValues]) -> list[Family]:
    """Every per-agent census family, from the latest `users` payload of each agent."""
    census = _CensusFamilies()
    for row in latest_rows:
        identity = labels.get(row.agent_id)
        if identity is None or row.kind != "users" or not row.payload:
            continue
        census.add(identity, row.payload)
    return census.families()


def _series(name: str, help_text: str, labelnames: tuple[str, ...]) -> FirstSeries:
    # FirstSeries reads stored values as validated ("12" passed for a count) and leaves
    # absent ones absent.
    return FirstSeries(Family(name, f"{help_text}; {WINDOW}", "gauge", labelnames))


class _CensusFamilies:
    def __init__(self) -> None:
        self.concurrent = _series(
            "schoolnet_concurrent_devices",
            "Devices on the school's network in the census window, a count: per source the "
            "distinct devices it saw, and with source=\"all\" the agent's distinct devices over "
            "all its sources (the primary figure)", PER_SOURCE)
        self.daily = _series(
            "schoolnet_daily_devices",
            "Distinct devices seen today so far (the agent's local day), a count, per source "
            "that tells devices apart and with source=\"all\" over them; phones that randomise "
            "their MAC address count again with each new address, so this overstates the "
            "devices: read the window count (schoolnet_concurrent_devices) first", PER_SOURCE)
        self.hour_peak = _series(
            "schoolnet_concurrent_devices_hour_peak",
            "The most devices of one census window in the current hour so far on this agent "
            "(the largest schoolnet_concurrent_devices{source=\"all\"} of its windows this hour), "
            "a count", IDENTITY)
        self.values = [(field, _series(name, help_text, PER_SOURCE))
                       for field, name, help_text in SOURCE_METRICS]
        self.up = _series(
            "schoolnet_census_source_up",
            "Whether the source counted in the window (1) or failed (0: the agent's record says "
            "why)", PER_SOURCE)

    def add(self, identity: LabelValues, payload: Mapping[str, Any]) -> None:
        every_source = (*identity, ALL_SOURCES)
        self.concurrent.add(every_source, payload.get("concurrent_devices"))
        self.daily.add(every_source, payload.get("daily_devices"))
        self.hour_peak.add(identity, payload.get("hour_peak_devices"))
        seen: set[str] = set()
        for stats in _items(payload.get("sources")):
            source = stats.get("source")
            # The wire allows only the census sources' names, each once; a twin adds nothing
            # at all, so no source shows the count of one entry beside the state of another.
            if not isinstance(source, str) or source == ALL_SOURCES or source in seen:
                continue
            seen.add(source)
            labels = (*identity, source)
            self.concurrent.add(labels, stats.get("devices"))
            self.daily.add(labels, stats.get("daily_devices"))
            for field, family in self.values:
                family.add(labels, stats.get(field))
            if stats.get("error"):
                self.up.add(labels, 0)
            elif stats.get("devices") is not None:
                self.up.add(labels, 1)

    def families(self) -> list[Family]:
        return [self.concurrent.family, self.daily.family, self.hour_peak.family,
                *(family.family for _, family in self.values), self.up.family]


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
