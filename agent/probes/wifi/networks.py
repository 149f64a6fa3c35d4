"""The school's own networks versus everyone else's: what a record may say about each.

Privacy by construction: the access points of the school's own networks are recorded in
full (their BSSIDs are the one MAC-shaped value the wire allows). Every other network, a
neighbour's router or a pupil's phone hotspot whose name may be the pupil's own, is only
counted per channel: no name, no address ever leaves the agent.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from agent.probes import one_line_reason
from agent.probes.wifi.reading import LinkReading, ScanEntry
from agent.wire import (
    WifiAccessPoint,
    WifiChannel,
    WifiPayload,
    WifiRadio,
    WifiScan,
    hide_mac_shaped,
    is_mac_shaped,
)

# The wire's limits (WifiScan): the strongest are kept when a scan sees more.
MAX_ACCESS_POINTS = 256
MAX_CHANNELS = 128
MAX_INTERFACE_CHARS = 64  # WifiPayload.interface

# systemd names a USB Wi-Fi adapter "wlx" and its own MAC address in hex (73-usb-net-by-mac.link):
# the machine's own address, which no record carries.
_MAC_NAMED_INTERFACE = re.compile(r"\bwlx[0-9A-Fa-f]{12}\b")
MAC_NAMED_INTERFACE = "wlx<mac>"


def recordable_interface(name: str) -> str:
    """An interface name fit for a record: without a MAC address in it, and short enough
    for the wire (a Windows adapter's description can be longer than 64 characters)."""
    return _MAC_NAMED_INTERFACE.sub(MAC_NAMED_INTERFACE, name)[:MAX_INTERFACE_CHARS]


def recordable_reason(text: str) -> str:
    """A failure reason fit for a record: one bounded line, addresses hidden."""
    text = _MAC_NAMED_INTERFACE.sub(MAC_NAMED_INTERFACE, text)
    return one_line_reason(hide_mac_shaped(text))


def _refused(model: type[BaseModel], name: str, value: object) -> bool:
    """Whether the wire's ``model`` refuses ``value`` for its field ``name``: out of its
    bounds (a driver's positive dBm, a channel above 255), too long, or not finite."""
    if value is None:
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return True
    for bound in model.model_fields[name].metadata:
        low, high, length = (getattr(bound, key, None) for key in ("ge", "le", "max_length"))
        if (low is not None and value < low) or (high is not None and value > high):
            return True
        if length is not None and len(value) > length:  # type: ignore[arg-type]
            return True
    return False


# LinkReading fields that WifiPayload names differently (its counters end in _total).
_PAYLOAD_NAMES = {"tx_retries": "tx_retries_total", "tx_failed": "tx_failed_total",
                  "beacon_loss": "beacon_loss_total"}
_LINK_CHECKED = tuple(name for name in LinkReading.__dataclass_fields__
                      if _PAYLOAD_NAMES.get(name, name) in WifiPayload.model_fields
                      and name not in ("source", "interface", "connected", "signal_converted", "band"))
_ENTRY_CHECKED = tuple(name for name in ScanEntry.__dataclass_fields__
                       if name in WifiAccessPoint.model_fields
                       and name not in ("associated", "signal_converted", "band"))


def fit_reading(reading: LinkReading) -> LinkReading:
    """The reading with each value the wire would refuse dropped: an odd driver's value
    becomes "not said", and the record with the rest of the reading is still valid."""
    refused = {name: None for name in _LINK_CHECKED
               if _refused(WifiPayload, _PAYLOAD_NAMES.get(name, name), getattr(reading, name))}
    return dataclasses.replace(reading, **refused) if refused else reading  # type: ignore[arg-type]


def fit_entry(entry: ScanEntry) -> ScanEntry:
    """A scan entry with each value WifiAccessPoint would refuse dropped (see fit_reading)."""
    refused = {name: None for name in _ENTRY_CHECKED
               if _refused(WifiAccessPoint, name, getattr(entry, name))}
    return dataclasses.replace(entry, **refused) if refused else entry  # type: ignore[arg-type]


def own_networks(configured: Sequence[str], connected_ssid: str | None) -> frozenset[str]:
    """The school's network names: the configured ones, or, when none are configured, the
    one this machine is connected to."""
    if configured:
        return frozenset(configured)
    return frozenset({connected_ssid}) if connected_ssid else frozenset()


def safe_ssid(ssid: str | None) -> str | None:
    """An SSID fit for a record: a hidden (empty) name or one that spells a MAC address is
    none (the collector would refuse the whole record for the latter)."""
    if not ssid or is_mac_shaped(ssid):
        return None
    return ssid


def radio_fields(reading: LinkReading, own: frozenset[str]) -> dict[str, object]:
    """The WifiRadio fields of a reading; the SSID and BSSID only for one of the school's
    own networks (a laptop on a phone's hotspot must not send the phone's name and address).
    Values the wire would refuse are dropped (fit_reading)."""
    reading = fit_reading(reading)
    is_own = reading.connected and reading.ssid is not None and reading.ssid in own
    fields = {name: getattr(reading, name) for name in WifiRadio.model_fields
              if name not in ("ssid", "bssid")}
    fields["ssid"] = safe_ssid(reading.ssid) if is_own else None
    fields["bssid"] = reading.bssid if is_own else None
    return fields


def is_own_network(reading: LinkReading, own: frozenset[str]) -> bool | None:
    if not reading.connected:
        return None
    return reading.ssid is not None and reading.ssid in own


def summarise_scan(entries: Iterable[ScanEntry], own: frozenset[str]) -> WifiScan:
    """Own access points in full (strongest first, one per BSSID); the rest counted per
    channel, with the strongest signal there (how loud the neighbours are)."""
    points: dict[str, WifiAccessPoint] = {}
    unnamed_points: list[WifiAccessPoint] = []
    others: dict[tuple[str | None, int], list[float | None]] = {}
    other_count = 0
    for entry in map(fit_entry, entries):
        ssid = safe_ssid(entry.ssid)
        if ssid is not None and ssid in own:
            point = WifiAccessPoint(
                bssid=entry.bssid, ssid=ssid, signal_dbm=entry.signal_dbm,
                signal_converted=entry.signal_converted, frequency_hertz=entry.frequency_hertz,
                channel=entry.channel, band=entry.band,
                station_count=entry.station_count,
                channel_utilization_ratio=entry.channel_utilization_ratio,
                associated=entry.associated)
            if entry.bssid is None:
                unnamed_points.append(point)  # macOS lists networks without BSSIDs
            elif entry.bssid not in points or _louder(point, points[entry.bssid]):
                points[entry.bssid] = point
            continue
        other_count += 1
        if entry.channel is not None:
            others.setdefault((entry.band, entry.channel), []).append(entry.signal_dbm)
    own_points = sorted([*points.values(), *unnamed_points], key=_strength, reverse=True)
    channels = [WifiChannel(band=band, channel=channel, networks=len(signals),
                            strongest_signal_dbm=max((s for s in signals if s is not None), default=None))
                for (band, channel), signals in others.items()]
    channels.sort(key=lambda c: (-c.networks, c.band or "", c.channel))
    return WifiScan(access_points=own_points[:MAX_ACCESS_POINTS], channels=channels[:MAX_CHANNELS],
                    other_networks=other_count)


def _strength(point: WifiAccessPoint) -> float:
    return point.signal_dbm if point.signal_dbm is not None else -1000.0


def _louder(point: WifiAccessPoint, than: WifiAccessPoint) -> bool:
    return _strength(point) > _strength(than)
