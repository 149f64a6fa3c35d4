"""Captures a teacher can make on a classroom laptop, recognised and read.

``schoolnet-agent survey import FILE`` takes the output of whichever tool the laptop has:
each format here says how to recognise its output and how to read it into a link reading
and/or scan entries. Recognisers are tried most specific first; the first that claims the
text reads it, and a text no format claims gets an error naming every format accepted.
Teachers paste two captures into one file (the link, then the scan): what the first format
lacks, the next one that claims the text may give.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import agent.probes.wifi.iw as iw
import agent.probes.wifi.macos as macos
import agent.probes.wifi.netsh as netsh
import agent.probes.wifi.nmcli as nmcli
import agent.probes.wifi.proc as proc
from agent.probes.wifi.reading import LinkReading, NotParsable, ScanEntry, fill_missing


@dataclass(frozen=True)
class Capture:
    """What one capture holds: the laptop's link (None for a bare scan) and the access
    points it listed (empty when the tool lists none)."""

    format: str
    link: LinkReading | None
    scan: list[ScanEntry] = field(default_factory=list)


@dataclass(frozen=True)
class Format:
    command: str  # how the teacher makes the capture, shown in errors and help
    recognises: Callable[[str], bool]
    read: Callable[[str], Capture]


def _first_connected(links: list[LinkReading]) -> LinkReading | None:
    """Of several interfaces, the one connected (a laptop with a second, idle adapter)."""
    return next((link for link in links if link.connected), links[0] if links else None)


def _netsh_interfaces(text: str) -> Capture:
    return Capture("netsh wlan show interfaces", _first_connected(netsh.parse_netsh_interfaces(text)))


def _netsh_networks(text: str) -> Capture:
    return Capture("netsh wlan show networks mode=bssid", None, netsh.parse_netsh_networks(text))


def _wdutil(text: str) -> Capture:
    return Capture("sudo wdutil info", macos.parse_wdutil_info(text))


def _system_profiler_json(text: str) -> Capture:
    links, scan = macos.parse_system_profiler_json(text)
    return Capture("system_profiler -json SPAirPortDataType", _first_connected(links), scan)


def _system_profiler(text: str) -> Capture:
    links, scan = macos.parse_system_profiler(text)
    return Capture("system_profiler SPAirPortDataType", _first_connected(links), scan)


def _iw_station(text: str) -> Capture:
    # Pasted below its `iw dev IF link`, the dump is read for that access point's entry only.
    link = iw.parse_iw_link(text) if iw.is_iw_link(text) else None
    access_point = link.bssid if link is not None and link.connected else None
    return Capture("iw dev IF station dump", iw.parse_iw_station_dump(text, access_point=access_point))


def _iw_link(text: str) -> Capture:
    return Capture("iw dev IF link", iw.parse_iw_link(text))


def _iw_scan(text: str) -> Capture:
    return Capture("iw dev IF scan", None, iw.parse_iw_scan(text))


def _nmcli(text: str) -> Capture:
    entries = nmcli.parse_nmcli_wifi_list(text)
    try:
        link: LinkReading | None = nmcli.nmcli_link(entries)
    except NotParsable:
        link = None  # an older NetworkManager's list without IN-USE: a scan only
    return Capture("nmcli dev wifi list", link, entries)


def _proc(text: str) -> Capture:
    return Capture("cat /proc/net/wireless", _first_connected(proc.parse_proc_net_wireless(text)))


FORMATS: tuple[Format, ...] = (
    Format("netsh wlan show interfaces", netsh.is_netsh_interfaces, _netsh_interfaces),
    Format("netsh wlan show networks mode=bssid", netsh.is_netsh_networks, _netsh_networks),
    Format("sudo wdutil info", macos.is_wdutil_info, _wdutil),
    Format("system_profiler -json SPAirPortDataType", macos.is_system_profiler_json, _system_profiler_json),
    Format("system_profiler SPAirPortDataType", macos.is_system_profiler, _system_profiler),
    Format("iw dev IF link", iw.is_iw_link, _iw_link),
    Format("iw dev IF station dump", iw.is_iw_station_dump, _iw_station),
    Format("iw dev IF scan", iw.is_iw_scan, _iw_scan),
    Format("nmcli dev wifi list", nmcli.is_nmcli_wifi_list, _nmcli),
    Format("cat /proc/net/wireless", proc.is_proc_net_wireless, _proc),
)

ACCEPTED = ", ".join(f"'{fmt.command}'" for fmt in FORMATS)


def read_capture(text: str) -> Capture:
    """Recognise and read one capture; NotParsable names what was wrong, or every format
    accepted when none recognises the text."""
    text = text.lstrip("\ufeff")
    claimed = [fmt for fmt in FORMATS if fmt.recognises(text)]
    if not claimed:
        raise NotParsable(f"not the output of a Wi-Fi tool this reads; accepted: {ACCEPTED}")
    first, *others = claimed
    try:
        capture = first.read(text)
    except NotParsable as exc:
        raise NotParsable(f"looks like '{first.command}' output, but {exc}") from None
    for fmt in others:
        try:
            capture = _together(capture, fmt.read(text))
        except NotParsable:
            continue  # the first capture stands on its own
    return capture


def _together(capture: Capture, other: Capture) -> Capture:
    """Two captures of one file as one: the link of the first completed with the other's
    (when both are of the same access point), the scan of whichever has one."""
    link, scan = capture.link, capture.scan
    if link is None:
        link = other.link
    elif other.link is not None and _same_association(link, other.link):
        link = fill_missing(link, other.link)
    if not scan:
        scan = other.scan
    if (link, scan) == (capture.link, capture.scan):
        return capture
    return Capture(f"{capture.format} + {other.format}", link, scan)


def _same_association(link: LinkReading, other: LinkReading) -> bool:
    return (link.connected and other.connected
            and (link.bssid is None or other.bssid is None or link.bssid == other.bssid))
