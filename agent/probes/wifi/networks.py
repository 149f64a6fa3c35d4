"""The school's own networks versus everyone else's: what a record may say about each.

Privacy by construction: the access points of the school's own networks are recorded in
full (their BSSIDs are the one MAC-shaped value the wire allows). Every other network, a
neighbour's router or a pupil's phone hotspot whose name may be the pupil's own, is only
counted per channel: no name, no address ever leaves the agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from agent.probes.wifi.reading import LinkReading, ScanEntry
from agent.wire import WifiAccessPoint, WifiChannel, WifiRadio, WifiScan, is_mac_shaped

# The wire's limits (WifiScan): the strongest are kept when a scan sees more.
MAX_ACCESS_POINTS = 256
MAX_CHANNELS = 128


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
    own networks (a laptop on a phone's hotspot must not send the phone's name and address)."""
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
    for entry in entries:
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
