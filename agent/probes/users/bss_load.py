"""Census source: the station counts the school's access points announce (BSS Load).

Access points put the number of stations associated with them into the BSS Load element
of their beacons; the Wi-Fi probe's scans read it for the school's own access points
(issue on Wi-Fi) and leave the total here. It counts the Wi-Fi users of the access points
this agent hears, not of the whole school, and it tells no devices apart: a count-only
source.
"""

from __future__ import annotations

from pathlib import Path

from agent.probes.users.census import CensusUnavailable, SourceResult
from agent.probes.users.latest import WIFI_STATIONS, read_counts


class BssLoadSource:
    name = "bss_load"

    def __init__(self, state_dir: Path, max_age_seconds: float) -> None:
        self.path = state_dir / WIFI_STATIONS
        self.max_age_seconds = max_age_seconds

    def census(self) -> SourceResult:
        counts = read_counts(self.path, self.max_age_seconds)
        if counts is None:
            raise CensusUnavailable(
                "no recent Wi-Fi scan of the school's access points (the wifi probe scans every "
                "scan_interval; it needs a wireless interface and probes.wifi.scan = true)")
        stations, reporting = counts.get("station_count"), counts.get("access_points_reporting")
        if not isinstance(stations, int) or not reporting:
            raise CensusUnavailable("the school's access points this agent hears send no BSS Load "
                                    "element (no station counts in their beacons)")
        return SourceResult(source=self.name, count=stations)
