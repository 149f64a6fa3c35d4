"""802.11 information elements: the parts of a beacon or probe response the scans need.

nl80211 (NL80211_BSS_INFORMATION_ELEMENTS), the Windows WLAN API (WLAN_BSS_ENTRY's IE
blob) and captured beacons all hand over the same byte layout (IEEE 802.11-2020 §9.4.2):
one byte element id, one byte length, then that many bytes. Only a handful of elements
matter here, so this reads those and skips the rest without dissecting them.
"""

from __future__ import annotations

from dataclasses import dataclass

SSID = 0
DS_PARAMETER_SET = 3
BSS_LOAD = 11
HT_OPERATION = 61

MAX_SSID_BYTES = 32


@dataclass(frozen=True)
class Elements:
    """What the elements of one BSS said; None = the element was absent (or malformed)."""

    ssid: str | None = None
    # The DS Parameter Set's channel (2.4 GHz), or the HT Operation's primary channel.
    channel: int | None = None
    station_count: int | None = None
    # The BSS Load's channel utilisation: the share of time the access point sensed the
    # medium busy, sent as x/255.
    channel_utilization_ratio: float | None = None


def decode_ssid(raw: bytes) -> str:
    """An SSID as text: 0-32 arbitrary bytes, in practice UTF-8. Undecodable bytes become
    U+FFFD rather than failing the whole scan; NUL bytes (some hidden networks send a
    run of them instead of an empty SSID) make it the empty, hidden name."""
    raw = raw[:MAX_SSID_BYTES]
    if raw.strip(b"\x00") == b"":
        return ""
    return raw.decode("utf-8", errors="replace")


def parse_elements(blob: bytes) -> Elements:
    """Read SSID, channel and BSS Load from a run of elements; a truncated tail (drivers
    do cut them) is ignored, never an error."""
    ssid: str | None = None
    ds_channel: int | None = None
    ht_channel: int | None = None
    stations: int | None = None
    utilization: float | None = None
    offset = 0
    while offset + 2 <= len(blob):
        element_id, length = blob[offset], blob[offset + 1]
        body = blob[offset + 2: offset + 2 + length]
        offset += 2 + length
        if len(body) < length:
            break  # truncated: the rest is not trustworthy
        if element_id == SSID and ssid is None:
            ssid = decode_ssid(body)
        elif element_id == DS_PARAMETER_SET and length >= 1:
            ds_channel = body[0]
        elif element_id == HT_OPERATION and length >= 1:
            ht_channel = body[0]
        elif element_id == BSS_LOAD and length >= 3:
            # Station count (2 bytes, little-endian), channel utilisation (1 byte), then
            # the available admission capacity, which nothing here needs.
            stations = int.from_bytes(body[0:2], "little")
            utilization = body[2] / 255
    return Elements(ssid=ssid, channel=ds_channel if ds_channel is not None else ht_channel,
                    station_count=stations, channel_utilization_ratio=utilization)
