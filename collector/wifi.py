"""Wi-Fi of each agent on /metrics: its own link and its latest scan.

Built at scrape time from the `latest` rows of kinds `wifi` (the agent's interface and its
link, one record per run) and `wifi_scan` (a scan of the school's own access points, made
every `scan_interval`), so no query of its own. Metric names follow node_exporter's wifi
collector. A value the payload does not give is an absent series, never 0.

Labels: `board`, `school`, `agent`, then `room` (the room the agent is in, empty when it
has none). BSSIDs appear only for the school's own access points: the agent sends other
networks as counts per channel, never their names or addresses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from collector.exposition import Family, FirstSeries, LabelValues, stored_number

WIFI_IDENTITY = ("board", "school", "agent", "room")
LINK = "latest wifi run of the agent, updated when the agent reports"
SCAN = "latest scan of the agent (every scan_interval), updated when the agent reports"
ACCESS_POINT = ("bssid", "ssid", "band", "channel")

Kind = Literal["gauge", "counter"]

# The link's bitrates (the payload's bits per second) in the base unit of the metric
# conventions, bytes per second: node_exporter's `_bits_per_second` fails `promtool check
# metrics` ("use base unit bytes"), and the rest of the page is lint-clean.
BITRATE_METRICS = (
    ("rx_bitrate_bits_per_second", "schoolnet_wifi_receive_bitrate_bytes_per_second",
     "Bitrate of the last frames the agent received (the PHY rate, not traffic), bytes per "
     "second (the tool's bits per second / 8)"),
    ("tx_bitrate_bits_per_second", "schoolnet_wifi_transmit_bitrate_bytes_per_second",
     "Bitrate of the last frames the agent sent (the PHY rate, not traffic), bytes per "
     "second (the tool's bits per second / 8)"),
)

# (payload field, metric, help, type) of the link's plain values.
LINK_METRICS: tuple[tuple[str, str, str, Kind], ...] = (
    ("signal_dbm", "schoolnet_wifi_signal_dbm",
     "Signal of the agent's link to its access point, dBm (converted from a percentage where "
     "the tool printed one: see signal_converted in schoolnet_wifi_info)", "gauge"),
    ("noise_dbm", "schoolnet_wifi_noise_dbm", "Noise level the agent's interface reports, dBm",
     "gauge"),
    ("frequency_hertz", "schoolnet_wifi_frequency_hertz",
     "Centre frequency of the agent's link, hertz", "gauge"),
    ("tx_retries_total", "schoolnet_wifi_transmit_retries",
     "Frames the agent sent again, a count since the association (it resets at a "
     "re-association)", "counter"),
    ("tx_failed_total", "schoolnet_wifi_transmit_failed",
     "Frames the agent gave up sending, a count since the association (it resets at a "
     "re-association)", "counter"),
    ("beacon_loss_total", "schoolnet_wifi_beacon_loss",
     "Beacons of its access point the agent missed, a count since the association (it "
     "resets at a re-association)", "counter"),
)


def wifi_families(latest_rows: Sequence[Any], labels: dict[int, LabelValues]) -> list[Family]:
    """Every per-agent Wi-Fi family, from the latest `wifi` and `wifi_scan` payloads."""
    link = _LinkFamilies()
    scan = _ScanFamilies()
    for row in latest_rows:
        identity = labels.get(row.agent_id)
        if identity is None or not row.payload:
            continue
        with_room = (*identity, _text(row.payload.get("room")))
        if row.kind == "wifi":
            link.add(with_room, row.payload)
        elif row.kind == "wifi_scan":
            scan.add(with_room, row.payload, row.measured_at)
    return [*link.families(), *scan.families()]


def _series(name: str, help_text: str, kind: Kind, labelnames: tuple[str, ...]) -> FirstSeries:
    """Two access points a scan cannot tell apart (redacted BSSIDs on one channel) must not
    put one series on the page twice: the first listed is shown."""
    return FirstSeries(Family(name, help_text, kind, labelnames))


class _LinkFamilies:
    def __init__(self) -> None:
        self.connected = _series("schoolnet_wifi_connected",
                                 "Whether the agent's wireless interface was associated with an "
                                 f"access point (1) or not (0); {LINK}", "gauge", WIFI_IDENTITY)
        self.values = [(field, _series(name, f"{help_text}; {LINK}", kind, WIFI_IDENTITY))
                       for field, name, help_text, kind in LINK_METRICS]
        self.bitrates = [(field, _series(name, f"{help_text}; {LINK}", "gauge", WIFI_IDENTITY))
                         for field, name, help_text in BITRATE_METRICS]
        self.info = _series("schoolnet_wifi_info",
            "The agent's wireless link: interface, network (ssid: empty when not one of the "
            "school's own), the access point's bssid, band, channel, phy_mode, the tool it was "
            f"read with (source) and whether the signal was converted from a percentage, value 1; {LINK}",
            "gauge", (*WIFI_IDENTITY, "interface", "ssid", "bssid", "band", "channel", "phy_mode",
                      "source", "signal_converted"))

    def add(self, identity: LabelValues, payload: Mapping[str, Any]) -> None:
        connected = _flag(payload.get("connected"))
        if connected is not None:
            self.connected.add(identity, 1 if connected else 0)
        for field, family in self.values:
            family.add(identity, payload.get(field))
        for field, family in self.bitrates:
            bits = stored_number(payload.get(field))
            if bits is not None:
                family.add(identity, bits / 8)
        converted = "true" if _flag(payload.get("signal_converted")) else "false"
        self.info.add((*identity, *(_text(payload.get(name)) for name in (
            "interface", "ssid", "bssid", "band")), _channel(payload.get("channel")),
            _text(payload.get("phy_mode")), _text(payload.get("source")), converted), 1)

    def families(self) -> list[Family]:
        return [self.connected.family, *(family.family for _, family in self.values),
                *(family.family for _, family in self.bitrates), self.info.family]


class _ScanFamilies:
    def __init__(self) -> None:
        per_ap = (*WIFI_IDENTITY, *ACCESS_POINT)
        self.signal = _series("schoolnet_wifi_access_point_signal_dbm",
                              "Signal of one of the school's own access points as the agent's "
                              f"scan saw it, dBm; {SCAN}", "gauge", per_ap)
        self.stations = _series("schoolnet_wifi_access_point_stations",
                                "Stations the access point says it has (its BSS Load element), "
                                f"a count of Wi-Fi users; absent when it does not say; {SCAN}",
                                "gauge", per_ap)
        self.utilization = _series("schoolnet_wifi_access_point_channel_utilization_ratio",
                                   "How busy the access point finds its channel (its BSS Load "
                                   f"element), a ratio (1 = always busy); {SCAN}", "gauge", per_ap)
        self.channel_networks = _series("schoolnet_wifi_channel_networks",
            "Access points of other networks (not the school's own) on the channel, a count; "
            f"never their names; {SCAN}", "gauge", (*WIFI_IDENTITY, "band", "channel"))
        self.other = _series("schoolnet_wifi_other_networks",
                             "Access points of other networks the scan saw, on every channel, "
                             f"a count; {SCAN}", "gauge", WIFI_IDENTITY)
        self.when = _series("schoolnet_wifi_scan_timestamp_seconds",
                            f"When the agent's latest scan was made, Unix seconds (agent clock); {SCAN}",
                            "gauge", WIFI_IDENTITY)
        # Access points already on the page: a twin (same labels) adds nothing at all, so
        # its station count never stands beside the signal of the one listed first.
        self.access_points: set[LabelValues] = set()

    def add(self, identity: LabelValues, payload: Mapping[str, Any], measured_at: Any) -> None:
        self.when.add(identity, measured_at)
        self.other.add(identity, payload.get("other_networks"))
        for ap in _items(payload.get("access_points")):
            labels = (*identity, _text(ap.get("bssid")), _text(ap.get("ssid")), _text(ap.get("band")),
                      _channel(ap.get("channel")))
            if labels in self.access_points:
                continue
            self.access_points.add(labels)
            self.signal.add(labels, ap.get("signal_dbm"))
            self.stations.add(labels, ap.get("station_count"))
            self.utilization.add(labels, ap.get("channel_utilization_ratio"))
        for channel in _items(payload.get("channels")):
            self.channel_networks.add(
                (*identity, _text(channel.get("band")), _channel(channel.get("channel"))),
                channel.get("networks"))

    def families(self) -> list[Family]:
        return [self.signal.family, self.stations.family, self.utilization.family,
                self.channel_networks.family, self.other.family, self.when.family]


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    """A label value as the payload says it; empty when it says nothing."""
    return "" if value is None else str(value)


# The store keeps a payload as the agent sent it, and validation is lax: "true" passed for
# a flag, "36" or 36.0 for a channel. Read with the same rules, one access point keeps one
# label set whatever JSON its agent wrote (and the room grades, which re-validate, agree).
_OPTIONAL_FLAG: TypeAdapter[bool | None] = TypeAdapter(bool | None)
_OPTIONAL_INT: TypeAdapter[int | None] = TypeAdapter(int | None)


def _flag(value: Any) -> bool | None:
    try:
        return _OPTIONAL_FLAG.validate_python(value)
    except ValidationError:
        return None


def _channel(value: Any) -> str:
    """A channel number as a label value: "36" however it was sent; empty when absent."""
    try:
        number = _OPTIONAL_INT.validate_python(value)
    except ValidationError:
        return ""
    return "" if number is None else str(number)
