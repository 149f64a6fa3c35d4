"""The Wi-Fi probe: the agent's own link every run, a scan of the school's access points
every ``scan_interval``.

One ``wifi`` record per run (signal, noise, bitrates, channel, retries); a scan is a
``wifi_scan`` record of its own, so the latest scan stays visible between scans. The room
the agent stands in (setting ``room``) goes with both, for the room's coverage grade.
Readings come from the best source the platform has (see ``source.open_source``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from agent.clock import now as clock_now
from agent.config import WifiProbeConfig
from agent.probes import Event, Probe, ProbeContext, ProbeError
from agent.probes.users.latest import WIFI_STATIONS, write_counts
from agent.probes.wifi.networks import (
    fit_reading,
    is_own_network,
    own_networks,
    radio_fields,
    recordable_interface,
    recordable_reason,
    summarise_scan,
)
from agent.probes.wifi.reading import LinkReading
from agent.probes.wifi.source import NoWirelessInterface, Unavailable, WifiSource, open_source
from agent.units import slugify
from agent.wire import WifiPayload, WifiScanPayload

log = logging.getLogger(__name__)


def room_of(setting: str) -> tuple[str | None, str | None]:
    """(id, display name) of the configured room; (None, None) when there is none."""
    if not setting:
        return None, None
    return slugify(setting), setting


class WifiProbe(Probe):
    name: ClassVar[str] = "wifi"
    default_interval: ClassVar[float] = 60.0
    config_model: ClassVar[type[WifiProbeConfig]] = WifiProbeConfig

    def __init__(self, context: ProbeContext, opener: Any = None) -> None:
        super().__init__(context)
        # Replaceable so tests drive the probe with recorded readings.
        self._open = opener if opener is not None else open_source
        self._last_scan: float | None = None

    def not_applicable(self) -> str | None:
        try:
            self._open(self.config)
        except NoWirelessInterface as exc:
            return str(exc)
        except Unavailable:
            return None  # a wireless interface exists; the runs will say what is missing
        except Exception:
            # Asked at start-up: a source's bug must not stop the agent starting; each run
            # then records it as a failed measurement.
            log.exception("the Wi-Fi probe could not tell whether this machine has Wi-Fi")
            return None
        return None

    def run(self) -> WifiPayload:
        config: WifiProbeConfig = self.config
        source = self._source()
        try:
            reading = source.link()
        except Unavailable as exc:
            raise ProbeError(recordable_reason(str(exc))) from None
        own = own_networks(config.ssids, reading.ssid if reading.connected else None)
        room, room_name = room_of(self.context.settings.room)
        scan_error = self._scan_if_due(source, own, room, room_name)
        return link_payload(reading, source.interface, own, room, room_name, scan_error)

    def _source(self) -> WifiSource:
        # Opened each run: a USB dongle replugged or renamed is found again, and finding
        # it is a directory listing and one netlink round trip.
        try:
            source: WifiSource = self._open(self.config)
        except Unavailable as exc:
            raise ProbeError(recordable_reason(str(exc))) from None
        return source

    def _scan_if_due(self, source: WifiSource, own: frozenset[str], room: str | None,
                     room_name: str | None) -> str | None:
        """Scan when one is due; a scan is its own record (an event), and a failed one is
        said in the link record (its reason) without costing the link reading."""
        config: WifiProbeConfig = self.config
        now = time.monotonic()
        # The scheduler jitters runs a little: a scan due within half a run from now is made
        # now rather than one whole interval late.
        due = (self._last_scan is None
               or now - self._last_scan >= config.scan_interval - config.interval / 2)
        if not config.scan or not due:
            return None
        self._last_scan = now
        stamp = clock_now()
        try:
            entries = source.scan(trigger=config.trigger_scan)
            triggered = bool(getattr(source, "last_scan_triggered", config.trigger_scan))
            summary = summarise_scan(entries, own)
            scan = WifiScanPayload(interface=recordable_interface(source.interface), source=source.name,
                                   triggered=triggered, room=room, room_name=room_name,
                                   **summary.model_dump())
        except Unavailable as exc:
            return recordable_reason(str(exc))
        except Exception as exc:  # a bug in a source or its parser: the link reading still counts
            log.exception("Wi-Fi scan on %s", source.interface)
            return recordable_reason(f"{type(exc).__name__}: {exc}")
        self._emit(Event("wifi_scan", stamp, scan.model_dump(mode="json")))
        if self.context.scheduled:
            # For the census's bss_load source: how many stations the school's access
            # points here say they have (a count, nothing else).
            reporting = [p.station_count for p in summary.access_points if p.station_count is not None]
            write_counts(self.context.state_dir / WIFI_STATIONS, station_count=sum(reporting),
                         access_points_reporting=len(reporting))
        return None

    def _emit(self, event: Event) -> None:
        if self.context.emit is not None:
            self.context.emit(event)
        else:
            self.events.append(event)


def link_payload(reading: LinkReading, interface: str, own: frozenset[str], room: str | None,
                 room_name: str | None, scan_error: str | None = None) -> WifiPayload:
    reading = fit_reading(reading)
    return WifiPayload(
        interface=recordable_interface(reading.interface or interface), room=room, room_name=room_name,
        own_network=is_own_network(reading, own),
        tx_retries_total=reading.tx_retries, tx_failed_total=reading.tx_failed,
        beacon_loss_total=reading.beacon_loss, connected_seconds=reading.connected_seconds,
        scan_error=scan_error, **radio_fields(reading, own))
