"""What a Wi-Fi tool said, in base units: the link of one interface, and one scan entry.

Every parser and every live source (nl80211, iw, /proc/net/wireless, nmcli, netsh, the
Windows WLAN API, system_profiler, wdutil) returns these, so the probe, the survey and the
import never care where a value came from. ``None`` always means "this tool does not say":
never a made-up zero.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


class NotParsable(ValueError):
    """The text is not output of the tool a parser reads; the message says what was
    expected and what was found, in one line."""


@dataclass(frozen=True)
class LinkReading:
    """The link of one wireless interface to its access point, as one tool reports it."""

    # The format or API the values came from, e.g. "nl80211", "iw-link", "netsh-interfaces".
    source: str
    interface: str | None = None
    # False: the interface exists but is associated with no access point (then the radio
    # values are None; the reading itself is still a fact worth recording).
    connected: bool = True
    ssid: str | None = None
    # The access point's BSSID, lowercase and colon-separated; None when the tool hides it
    # (macOS without Location permission prints "<redacted>", posters write "xx:xx:...").
    bssid: str | None = None
    signal_dbm: float | None = None
    # The percentage the tool printed, when it printed one instead of dBm; signal_dbm is then
    # converted from it with the platform's documented mapping and signal_converted is True.
    signal_percent: float | None = None
    signal_converted: bool = False
    noise_dbm: float | None = None
    frequency_hertz: int | None = None
    channel: int | None = None
    band: str | None = None  # "2.4GHz", "5GHz", "6GHz" or "60GHz" (see radio.BANDS)
    channel_width_hertz: int | None = None
    rx_bitrate_bits_per_second: float | None = None
    tx_bitrate_bits_per_second: float | None = None
    # Counters since the association, where the driver keeps them (iw station dump, nl80211).
    tx_retries: int | None = None
    tx_failed: int | None = None
    beacon_loss: int | None = None
    connected_seconds: float | None = None
    phy_mode: str | None = None  # e.g. "802.11ax", "VHT", as the tool names it


@dataclass(frozen=True)
class ScanEntry:
    """One access point (BSS) seen in a scan."""

    source: str
    bssid: str | None
    # "" for a hidden network; None when the tool does not show names at all.
    ssid: str | None
    signal_dbm: float | None = None
    signal_percent: float | None = None
    signal_converted: bool = False
    frequency_hertz: int | None = None
    channel: int | None = None
    band: str | None = None
    # From the access point's BSS Load element (802.11 §9.4.2.27): how many stations it has
    # associated, and how busy it finds the channel (its x/255, as a ratio). No personal data.
    station_count: int | None = None
    channel_utilization_ratio: float | None = None
    # The entry the machine is associated with (nmcli's IN-USE '*', nl80211's BSS status).
    associated: bool = False


def fill_missing(base: LinkReading, extra: LinkReading) -> LinkReading:
    """``base`` with the values it lacks taken from ``extra`` (iw's link gives the SSID and
    frequency, its station dump the retries; survey dump the noise): ``base`` wins where both
    say something, and its source names the reading."""
    values = {name: getattr(extra, name) for name in base.__dataclass_fields__
              if getattr(base, name) is None and getattr(extra, name) is not None}
    return dataclasses.replace(base, **values) if values else base
