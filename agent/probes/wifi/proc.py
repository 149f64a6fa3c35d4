"""Reader of ``/proc/net/wireless``: the kernel's wireless-extensions statistics.

The last fallback on Linux (no nl80211 socket, no ``iw``): the file exists when the kernel
has wireless extensions or cfg80211's compatibility layer (CONFIG_CFG80211_WEXT). The kernel
prints one line per wireless interface (net/wireless/wext-proc.c):

    "%6s: %04x  %3d%c  %3d%c  %3d%c  %6d %6d %6d %6d %6d   %6d\\n"
    name, status, link quality, level, noise (each followed by '.' when "updated since the
    last read", else ' '), discarded nwid/crypt/frag/retry/misc, missed beacons

under a two-line header ("Inter-| sta-|   Quality ..." / " face | tus | link level noise ...").
It names no SSID, BSSID or frequency: the Linux source adds those from nmcli when it can.
"""

from __future__ import annotations

import re

from agent.probes.wifi.reading import LinkReading, NotParsable

_HEADER = re.compile(r"^\s*Inter-\|\s*sta-\|")
_LINE = re.compile(
    r"^\s*(?P<interface>[^\s:]+):\s+(?P<status>[0-9a-fA-F]+)\s+"
    r"(?P<link>-?\d+)(?P<link_updated>\.?)\s+(?P<level>-?\d+)(?P<level_updated>\.?)\s+"
    r"(?P<noise>-?\d+)(?P<noise_updated>\.?)\s+"
    r"(?P<nwid>\d+)\s+(?P<crypt>\d+)\s+(?P<frag>\d+)\s+(?P<retry>\d+)\s+(?P<misc>\d+)\s+"
    r"(?P<beacon>\d+)\s*$")
# A level or noise of u8 0 printed with IW_QUAL_DBM set (value - 0x100): "no value".
_DBM_ZERO = -256


def is_proc_net_wireless(text: str) -> bool:
    return any(_HEADER.match(line) for line in text.lstrip("\ufeff").splitlines())


def parse_proc_net_wireless(text: str) -> list[LinkReading]:
    """One reading per interface line (source "proc-net-wireless")."""
    lines = text.lstrip("\ufeff").splitlines()
    if not any(_HEADER.match(line) for line in lines):
        raise NotParsable("not /proc/net/wireless: no 'Inter-| sta-|' header line")
    readings = []
    for line in lines:
        match = _LINE.match(line)
        if match is not None:
            readings.append(_reading(match))
    return readings


def _reading(match: re.Match[str]) -> LinkReading:
    link, level, noise = int(match.group("link")), int(match.group("level")), int(match.group("noise"))
    updated = match.group("link_updated") or match.group("level_updated") or match.group("noise_updated")
    if link == 0 and level == 0 and noise == 0 and not updated:
        # The kernel prints all-zero "nullstats" for a wireless interface that has no
        # statistics: with cfg80211 that is a station that is not associated.
        return LinkReading(source="proc-net-wireless", interface=match.group("interface"),
                           connected=False)
    # The level is dBm when the driver sets IW_QUAL_DBM (the kernel then prints u8 - 0x100,
    # a negative number). A positive level is in the driver's own relative units (older
    # drivers, e.g. a 2013 Raspberry Pi printing "95."): wireless extensions document no
    # mapping from those to dBm, so the signal stays unknown rather than guessed.
    signal_dbm = float(level) if _DBM_ZERO < level < 0 else None
    # Noise -256 (u8 0 in dBm) or 0 is "not available": cfg80211 always marks it invalid.
    noise_dbm = float(noise) if _DBM_ZERO < noise < 0 else None
    # cfg80211's compatibility layer (net/wireless/wext-compat.c, cfg80211_wireless_stats)
    # never fills the missed-beacon count, so on its lines (dBm level, noise -256) the 0 is
    # not a count; only a wireless-extensions driver's own figure is one. The "retry"
    # column is tx_failed there, or 0 when the driver does not say: ambiguous, so dropped,
    # like the link quality, which is no LinkReading field.
    cfg80211_line = signal_dbm is not None and noise == _DBM_ZERO
    beacon_loss = None if cfg80211_line else int(match.group("beacon"))
    return LinkReading(source="proc-net-wireless", interface=match.group("interface"),
                       signal_dbm=signal_dbm, noise_dbm=noise_dbm, beacon_loss=beacon_loss)
