"""Radio arithmetic every Wi-Fi parser needs: channels and frequencies, bands, the
platforms' percentage-to-dBm mappings, and BSSIDs in one spelling.
"""

from __future__ import annotations

import re

BAND_2_4 = "2.4GHz"
BAND_5 = "5GHz"
BAND_6 = "6GHz"
BAND_60 = "60GHz"
BANDS = (BAND_2_4, BAND_5, BAND_6, BAND_60)

MHZ = 1_000_000


def band_of(frequency_mhz: float) -> str | None:
    """The band a centre frequency lies in (None outside the Wi-Fi bands)."""
    if 2400 <= frequency_mhz < 2500:
        return BAND_2_4
    if 4900 <= frequency_mhz < 5925:
        return BAND_5
    if 5925 <= frequency_mhz <= 7125:
        return BAND_6
    if 57000 <= frequency_mhz <= 71000:
        return BAND_60
    return None


def channel_of(frequency_mhz: float) -> int | None:
    """The 802.11 channel number of a centre frequency (IEEE 802.11 Annex E)."""
    mhz = round(frequency_mhz)
    band = band_of(mhz)
    if band == BAND_2_4:
        return 14 if mhz == 2484 else (mhz - 2407) // 5 if (mhz - 2407) % 5 == 0 else None
    if band == BAND_5:
        # 4.9 GHz (Japan) channels count from 4000 MHz, the rest from 5000 MHz.
        base = 4000 if mhz < 5000 else 5000
        return (mhz - base) // 5 if (mhz - base) % 5 == 0 else None
    if band == BAND_6:
        if mhz == 5935:
            return 2  # the one 6 GHz channel off the 5950 + 5n grid
        return (mhz - 5950) // 5 if (mhz - 5950) % 5 == 0 else None
    if band == BAND_60:
        return (mhz - 56160) // 2160 if (mhz - 56160) % 2160 == 0 else None
    return None


def frequency_of(channel: int, band: str | None = None) -> int | None:
    """The centre frequency in MHz of a channel. Without a band, channels 1-14 are taken
    as 2.4 GHz and 32-177 as 5 GHz; 6 GHz channel numbers overlap both, so a 6 GHz channel
    needs its band said (netsh's "Band", wdutil's "6g"), except for the numbers only 6 GHz
    uses (see _only_6ghz)."""
    if band is None and _only_6ghz(channel):
        band = BAND_6
    if band is None:
        band = BAND_2_4 if 1 <= channel <= 14 else BAND_5 if 32 <= channel <= 177 else None
    if band == BAND_2_4 and 1 <= channel <= 14:
        return 2484 if channel == 14 else 2407 + 5 * channel
    if band == BAND_5 and 32 <= channel <= 177:
        return 5000 + 5 * channel
    if band == BAND_5 and 183 <= channel <= 196:
        return 4000 + 5 * channel
    if band == BAND_6 and 1 <= channel <= 233:
        return 5935 if channel == 2 else 5950 + 5 * channel
    if band == BAND_60 and 1 <= channel <= 6:
        return 56160 + 2160 * channel
    return None


def _only_6ghz(channel: int) -> bool:
    """6 GHz primaries are 1, 5, 9, ... 233 (5950 + 5n MHz, n = 4k + 1); 5 GHz's below 149
    are all even (36, 40, ... 144), and 4.9 GHz (Japan) numbers run 183-196."""
    return channel % 4 == 1 and (33 <= channel <= 145 or 181 <= channel <= 233) and not 183 <= channel <= 196


def parse_band(text: str) -> str | None:
    """"2.4 GHz", "5GHz", "2g", "6 GHz", wdutil's "5g36/20" (any case and spacing) -> a
    BANDS value, or None."""
    match = re.match(r"^\s*(2\.4|2|5|6|60)\s*(?:ghz|g)(?![a-z])", text.strip().lower())
    if match is None:
        return None
    return {"2.4": BAND_2_4, "2": BAND_2_4, "5": BAND_5, "6": BAND_6, "60": BAND_60}[match.group(1)]


def dbm_from_windows_percent(percent: float) -> float:
    """Windows' signal quality (WLAN_SIGNAL_QUALITY, netsh's "Signal"): 0 % is -100 dBm,
    100 % is -50 dBm, linear between (Microsoft's wlanapi documentation)."""
    return -100.0 + min(max(percent, 0.0), 100.0) / 2


def dbm_from_networkmanager_percent(percent: float) -> float:
    """NetworkManager's SIGNAL (nl80211_xbm_to_percent): dBm clamped to -90..-20 and mapped
    linearly onto 30..100 %, so dBm = percent - 120. Below 30 % the value did not come
    from nl80211 (older wireless-extensions drivers); the same line is used, clamped at
    -100 dBm rather than extrapolated further."""
    return max(min(percent, 100.0) - 120.0, -100.0)


# Six hex pairs with ":" or "-" between them, or Cisco's three dotted quads.
_BSSID = re.compile(r"^(?:[0-9a-f]{2}[:-]){5}[0-9a-f]{2}$|^(?:[0-9a-f]{4}\.){2}[0-9a-f]{4}$")


def normalise_bssid(text: str | None) -> str | None:
    """A BSSID as ``aa:bb:cc:dd:ee:ff``; None for what is not one (``<redacted>``, the
    ``xx:xx:…`` posters write, the all-zero address some drivers report when not associated)."""
    if text is None:
        return None
    candidate = text.strip().lower()
    if not _BSSID.match(candidate):
        return None
    digits = re.sub(r"[^0-9a-f]", "", candidate)
    if digits == "0" * 12 or digits == "f" * 12:
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def bits_per_second(value: float, unit: str) -> float:
    """A rate as tools print it ("866.7", "MBit/s"; "72", "Mbps"; "300", "kbps") in bit/s."""
    scale = {"bit/s": 1, "bps": 1, "kbit/s": 1e3, "kbps": 1e3, "kb/s": 1e3, "mbit/s": 1e6,
             "mbps": 1e6, "mb/s": 1e6, "gbit/s": 1e9, "gbps": 1e9}.get(unit.strip().lower())
    if scale is None:
        raise ValueError(f"unknown rate unit {unit!r}")
    return value * scale
