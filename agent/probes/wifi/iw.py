"""Readers of `iw` output: ``iw dev IF link``, ``station dump``, ``scan`` and ``survey dump``.

iw prints what nl80211 hands it (iw's link.c, station.c, scan.c and survey.c are the
format references quoted below); its authors warn that the text is not a stable interface
("Do NOT screenscrape this tool"), so every reader here looks for labels, not for line
numbers or columns, accepts TABs or spaces (issue trackers turn iw's TABs into spaces),
CRLF, a UTF-8 BOM and the prompt/command line a teacher pastes along with the output.

Privacy: a station dump names stations by MAC address. On a client the one station is the
access point (its BSSID, which we may keep); on an access point the stations are pupils'
devices, so such a dump is refused rather than read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.probes.wifi import radio
from agent.probes.wifi.ies import decode_ssid
from agent.probes.wifi.reading import LinkReading, NotParsable, ScanEntry

_MAC = r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}"
# "Connected to 64:d1:54:68:93:ae (on wlp0s20f3)"; posters redact the address ("xx:xx").
_CONNECTED = re.compile(r"^\s*Connected to\s+(?P<address>\S+)\s+\(on\s+(?P<interface>[^)\s]+)\)")
# link.c prints these instead when there is no association: no radio values follow.
_NOT_CONNECTED = re.compile(r"^\s*(?:Not connected\.|Authenticated with\s)")
# A multi-link (Wi-Fi 7) association: "Connected to <MLD address>", then one line per link.
_MLO_LINK = re.compile(rf"^\s*Link\s+\d+\s+BSSID\s+(?P<bssid>{_MAC})")
_STATION = re.compile(rf"^\s*Station\s+(?P<mac>{_MAC})\s+\(on\s+(?P<interface>[^)\s]+)\)")
# scan.c: printf("BSS %s(on %s)", ...) then " -- associated" / " -- authenticated" / " -- joined".
_BSS = re.compile(rf"^\s*BSS\s+(?P<bssid>{_MAC})\s*(?:\(on\s+(?P<interface>[^)\s]+)\))?(?P<rest>.*)$")
_SURVEY = re.compile(r"^\s*Survey data from\s+(?P<interface>\S+)")
_LABEL = re.compile(r"^\s*(?:\*\s+)?(?P<label>[^:]+?)\s*:\s*(?P<value>.*?)\s*$")
_NUMBER = r"-?\d+(?:\.\d+)?"
# iw's rate text (station.c parse_bitrate): "866.7 MBit/s VHT-MCS 9 80MHz short GI VHT-NSS 2".
_RATE = re.compile(r"^(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>[kKMG]?Bit/s)")
_WIDTH = re.compile(r"\b(?P<mhz>\d+)(?P<p80>P80)?MHz\b")
# Newest generation first: a rate names one of these, HT's being the bare "MCS n".
_PHY_MODES = (("EHT-MCS", "EHT"), ("HE-MCS", "HE"), ("VHT-MCS", "VHT"), ("MCS", "HT"))
_GENERATION = {"HT": 1, "VHT": 2, "HE": 3, "EHT": 4}
# A station dump's entry that only the client side has: mac80211 fills BEACON_LOSS only
# on a station-mode interface (net/mac80211/sta_info.c, sta_set_sinfo), and iw prints it
# with the beacon counters below it.
_CLIENT_ONLY_LABELS = ("beacon loss", "beacon rx", "beacon signal avg")


@dataclass(frozen=True)
class Rate:
    """One of iw's "tx bitrate:"/"rx bitrate:" values, in base units."""

    bits_per_second: float | None
    phy_mode: str | None
    width_hertz: int | None


def _lines(text: str) -> list[str]:
    return text.lstrip("\ufeff").splitlines()


def _label(line: str) -> tuple[str, str] | None:
    """("signal", "-60 [-60, -60] dBm") from "\\tsignal:  \\t-60 [-60, -60] dBm"; the
    "* " iw puts before nested items is dropped, labels are lowercased."""
    match = _LABEL.match(line)
    if match is None:
        return None
    return match.group("label").strip().lower(), match.group("value")


def _first_number(value: str) -> float | None:
    match = re.match(rf"\s*({_NUMBER})", value)
    return float(match.group(1)) if match else None


def _int(value: str) -> int | None:
    match = re.match(r"\s*(\d+)", value)
    return int(match.group(1)) if match else None


def _dbm(value: str) -> float | None:
    """"-44 dBm", "-60 [-60, -60] dBm" (the chains in brackets), scan's "-64.00 dBm". iw
    prints mBm as "%d.%.2d" of s/100 and s%100 (scan.c), so -64.5 dBm comes out as
    "-64.-50": the sign may sit on either part."""
    match = re.match(r"\s*(?P<sign>-?)(?P<whole>\d+)(?:\.(?P<fsign>-?)(?P<fraction>\d+))?", value)
    if match is None or "dbm" not in value.lower():
        return None
    number = int(match.group("whole"))
    if match.group("fraction"):
        number += int(match.group("fraction")) / 10 ** len(match.group("fraction"))
    negative = bool(match.group("sign") or match.group("fsign"))
    return -float(number) if negative else float(number)


def parse_rate(value: str) -> Rate:
    """An iw rate ("702.0 MBit/s VHT-MCS 8 80MHz VHT-NSS 2") in bit/s, with the PHY it names
    and the width it was sent at. A rate with no width flag was sent at 20 MHz (nl80211
    sets a flag only for wider), but the channel may still be wider, so it says None; an
    80P80MHz rate spans 160 MHz."""
    match = _RATE.match(value.strip())
    bps = radio.bits_per_second(float(match.group("value")), match.group("unit")) if match else None
    tokens = value.split()
    phy_mode = next((mode for label, mode in _PHY_MODES if label in tokens), None)
    width = _WIDTH.search(value)
    width_hertz = None
    if width is not None:
        width_hertz = (160 if width.group("p80") else int(width.group("mhz"))) * radio.MHZ
    return Rate(bps, phy_mode, width_hertz)


def _newest(*modes: str | None) -> str | None:
    known = [mode for mode in modes if mode is not None]
    return max(known, key=lambda mode: _GENERATION[mode]) if known else None


def _widest(*widths: int | None) -> int | None:
    known = [width for width in widths if width is not None]
    return max(known) if known else None


def _frequency_fields(value: str) -> dict[str, object]:
    """freq: "5280", or "5280.0" from iw builds that print the frequency offset."""
    mhz = _first_number(value)
    if mhz is None:
        return {}
    return {"frequency_hertz": round(mhz * radio.MHZ), "channel": radio.channel_of(mhz),
            "band": radio.band_of(mhz)}


def unescape_ssid(value: str) -> str:
    """An SSID as iw prints it (util.c print_ssid_escaped): printable ASCII as is, every
    other byte, a backslash and a leading or trailing space as "\\xHH"; back to bytes, then
    to text the way every SSID here is decoded."""
    raw = bytearray()
    index = 0
    while index < len(value):
        escape = re.match(r"\\x([0-9a-fA-F]{2})", value[index:])
        if escape:
            raw.append(int(escape.group(1), 16))
            index += 4
        else:
            raw.extend(value[index].encode("utf-8"))
            index += 1
    return decode_ssid(bytes(raw))


# ---- iw dev IF link ---------------------------------------------------------------------

def is_iw_link(text: str) -> bool:
    return any(_CONNECTED.match(line) or _NOT_CONNECTED.match(line) for line in _lines(text))


def parse_iw_link(text: str) -> LinkReading:
    """``iw dev IF link``: the interface's association (source "iw-link")."""
    lines = _lines(text)
    start = next((i for i, line in enumerate(lines) if _CONNECTED.match(line)), None)
    if start is None:
        if any(_NOT_CONNECTED.match(line) for line in lines):
            return LinkReading(source="iw-link", connected=False)
        raise NotParsable("not `iw dev IF link` output: no 'Connected to <BSSID> (on IF)' "
                          "or 'Not connected.' line")
    header = _CONNECTED.match(lines[start])
    assert header is not None
    fields: dict[str, object] = {"interface": header.group("interface"),
                                 "bssid": radio.normalise_bssid(header.group("address"))}
    rates: dict[str, Rate] = {}
    for line in lines[start + 1:]:
        link = _MLO_LINK.match(line)
        if link is not None:
            # The MLD address is not a radio's BSSID; the first link's is.
            fields.setdefault("link_bssid", radio.normalise_bssid(link.group("bssid")))
            continue
        labelled = _label(line)
        if labelled is None:
            continue
        label, value = labelled
        if label == "ssid" and "ssid" not in fields:
            fields["ssid"] = unescape_ssid(value)
        elif label == "freq" and "frequency_hertz" not in fields:
            fields.update(_frequency_fields(value))
        elif label == "signal" and "signal_dbm" not in fields:
            fields["signal_dbm"] = _dbm(value)
        elif label in ("rx bitrate", "tx bitrate") and label not in rates:
            rates[label] = parse_rate(value)
    link_bssid = fields.pop("link_bssid", None)
    if link_bssid is not None:
        fields["bssid"] = link_bssid
    return LinkReading(source="iw-link", **_with_rates(fields, rates))  # type: ignore[arg-type]


def _with_rates(fields: dict[str, object], rates: dict[str, Rate]) -> dict[str, object]:
    rx, tx = rates.get("rx bitrate"), rates.get("tx bitrate")
    fields["rx_bitrate_bits_per_second"] = rx.bits_per_second if rx else None
    fields["tx_bitrate_bits_per_second"] = tx.bits_per_second if tx else None
    fields["phy_mode"] = _newest(*(rate.phy_mode for rate in rates.values()))
    fields["channel_width_hertz"] = _widest(*(rate.width_hertz for rate in rates.values()))
    return fields


# ---- iw dev IF station dump -------------------------------------------------------------

def is_iw_station_dump(text: str) -> bool:
    return any(_STATION.match(line) for line in _lines(text))


@dataclass
class _Station:
    mac: str
    interface: str
    labels: dict[str, str]


def _stations(lines: list[str]) -> list[_Station]:
    stations: list[_Station] = []
    for line in lines:
        header = _STATION.match(line)
        if header is not None:
            stations.append(_Station(header.group("mac"), header.group("interface"), {}))
            continue
        labelled = _label(line)
        if stations and labelled is not None:
            # First wins: a multi-link station repeats the labels per link, indented deeper.
            stations[-1].labels.setdefault(*labelled)
    return stations


def parse_iw_station_dump(text: str, access_point: str | None = None) -> LinkReading:
    """``iw dev IF station dump`` on a client, whose one station is its access point
    (source "iw-station"). ``access_point``, the BSSID ``iw dev IF link`` reported, picks
    that station whatever else the driver lists or leaves out (brcmfmac, the Raspberry Pi's
    driver, reports no beacon counters); without it an access point's list of clients
    (several stations, or one without the client-only beacon counters) is refused."""
    stations = [station for station in _stations(_lines(text))
                if station.labels.get("tdls peer", "no").lower() != "yes"]
    if not stations:
        raise NotParsable("not `iw dev IF station dump` output: no 'Station <MAC> (on IF)' line")
    wanted = radio.normalise_bssid(access_point)
    if wanted is not None:
        chosen = [station for station in stations if radio.normalise_bssid(station.mac) == wanted]
        if not chosen:
            raise NotParsable(f"the station dump has no entry for the access point {wanted}")
        station = chosen[0]
    else:
        client_side = len(stations) == 1 and any(label in stations[0].labels
                                                 for label in _CLIENT_ONLY_LABELS)
        if not client_side:
            what = (f"{len(stations)} stations" if len(stations) > 1
                    else "one station without the beacon counters a client's dump has")
            raise NotParsable(
                f"this looks like an access point's list of its clients ({what}); the agent "
                "reads only its own link: run `iw dev IF link` on the classroom laptop itself")
        station = stations[0]
    labels = station.labels
    signal = labels.get("signal")
    signal_dbm = _dbm(signal) if signal is not None else None
    if signal_dbm is None and "signal avg" in labels:
        signal_dbm = _dbm(labels["signal avg"])
    rates = {label: parse_rate(labels[label]) for label in ("rx bitrate", "tx bitrate") if label in labels}
    connected_time = labels.get("connected time")
    fields: dict[str, object] = {
        "interface": station.interface,
        # On the client side this station is the access point: its address is the BSSID.
        "bssid": radio.normalise_bssid(station.mac),
        "signal_dbm": signal_dbm,
        "tx_retries": _int(labels["tx retries"]) if "tx retries" in labels else None,
        "tx_failed": _int(labels["tx failed"]) if "tx failed" in labels else None,
        "beacon_loss": _int(labels["beacon loss"]) if "beacon loss" in labels else None,
        "connected_seconds": _first_number(connected_time) if connected_time is not None else None,
    }
    return LinkReading(source="iw-station", **_with_rates(fields, rates))  # type: ignore[arg-type]


# ---- iw dev IF scan / scan dump ---------------------------------------------------------

def is_iw_scan(text: str) -> bool:
    return any(_BSS.match(line) for line in _lines(text))


def parse_iw_scan(text: str) -> list[ScanEntry]:
    """``iw dev IF scan`` or ``scan dump``: one entry per "BSS <BSSID>(on IF)" block
    (source "iw-scan"). The first of a label wins: iw repeats the elements of the beacon
    after those of the probe response when they differ."""
    blocks: list[tuple[re.Match[str], dict[str, str]]] = []
    for line in _lines(text):
        header = _BSS.match(line)
        if header is not None:
            blocks.append((header, {}))
            continue
        labelled = _label(line)
        if blocks and labelled is not None:
            # "station count" and "channel utilisation" are printed only under "BSS Load:"
            # (scan.c print_bss_load), so they need no tracking of the section.
            blocks[-1][1].setdefault(*labelled)
    if not blocks:
        raise NotParsable("not `iw dev IF scan` output: no 'BSS <BSSID>(on IF)' line")
    return [_scan_entry(header, fields) for header, fields in blocks]


def _scan_entry(header: re.Match[str], fields: dict[str, str]) -> ScanEntry:
    values: dict[str, object] = {}
    if "freq" in fields:
        values.update(_frequency_fields(fields["freq"]))
    signal = fields.get("signal", "")
    unspecified = re.match(r"\s*(\d+)/100", signal)
    if unspecified:
        # NL80211_BSS_SIGNAL_UNSPEC: a driver-defined 0-100 with no documented dBm mapping.
        values["signal_percent"] = float(unspecified.group(1))
    elif signal:
        values["signal_dbm"] = _dbm(signal)
    ds = re.search(r"channel\s+(\d+)", fields.get("ds parameter set", ""))
    if ds:
        values["channel"] = int(ds.group(1))
    if "station count" in fields:
        values["station_count"] = _int(fields["station count"])
    utilisation = re.match(r"\s*(\d+)\s*/\s*255", fields.get("channel utilisation", ""))
    if utilisation:
        values["channel_utilization_ratio"] = int(utilisation.group(1)) / 255
    return ScanEntry(source="iw-scan", bssid=radio.normalise_bssid(header.group("bssid")),
                     ssid=unescape_ssid(fields["ssid"]) if "ssid" in fields else None,
                     associated="-- associated" in header.group("rest"),
                     **values)  # type: ignore[arg-type]


# ---- iw dev IF survey dump --------------------------------------------------------------

def parse_iw_survey_noise(text: str) -> float | None:
    """``iw dev IF survey dump``: the noise floor (dBm) of the channel marked "[in use]";
    None when no channel in use reports noise (many drivers report none)."""
    in_use = False
    seen_survey = False
    for line in _lines(text):
        if _SURVEY.match(line):
            seen_survey, in_use = True, False
            continue
        labelled = _label(line)
        if labelled is None:
            continue
        label, value = labelled
        if label == "frequency":
            in_use = "[in use]" in value
        elif label == "noise" and in_use:
            noise = _dbm(value)
            if noise is not None:
                return noise
    if not seen_survey and text.strip():
        raise NotParsable("not `iw dev IF survey dump` output: no 'Survey data from IF' line")
    return None
