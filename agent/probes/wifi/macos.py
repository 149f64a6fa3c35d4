"""macOS Wi-Fi: ``system_profiler SPAirPortDataType`` (text and ``-json``) and
``wdutil info``, the tools left since macOS 14.4 removed ``airport``.

system_profiler runs without root, takes a few seconds, shows no BSSIDs and, for a caller
without the Location permission, prints the SSID as "<redacted>"; its "Other Local Wi-Fi
Networks" are the scan. ``wdutil info`` needs root and shows the link alone. Both print the
Mac's own MAC ("MAC Address", spairport_wireless_mac_address): never read here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.probes.wifi import radio
from agent.probes.wifi.reading import LinkReading, NotParsable, ScanEntry
from agent.probes.wifi.source import NoWirelessInterface, Unavailable, WifiSource, run_tool

if TYPE_CHECKING:
    from agent.config import WifiProbeConfig

log = logging.getLogger("schoolnet.agent.wifi")

SOURCE_SYSTEM_PROFILER = "system-profiler"
SOURCE_WDUTIL = "wdutil"

SYSTEM_PROFILER_JSON = ("system_profiler", "-json", "SPAirPortDataType")
WDUTIL_INFO = ("wdutil", "info")
MACOS_SOURCES = ("auto", "wdutil", "system_profiler")
# One system_profiler run (2-5 s) serves the link and the scan of the same probe run.
SYSTEM_PROFILER_REUSE_SECONDS = 20.0

Runner = Callable[[Sequence[str]], str]

_REDACTED = "<redacted>"
_SIGNAL_NOISE = re.compile(r"(-?\d+)\s*dBm\s*/\s*(-?\d+)\s*dBm", re.IGNORECASE)
# "149 (5GHz, 80MHz)", "1 (2GHz, 40MHz)", "37 (6GHz, 160MHz)"; older builds: "149" alone.
_CHANNEL = re.compile(r"^\s*(\d+)\s*(?:\(\s*([0-9.]+\s*GHz)\s*(?:,\s*(\d+)\s*MHz)?\s*\))?", re.IGNORECASE)
# wdutil's "5g36/20": band, channel, width in MHz.
_WDUTIL_CHANNEL = re.compile(r"^\s*(2|5|6)g(\d+)(?:/(\d+))?", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


# ---------------------------------------------------------------- system_profiler, text

@dataclass
class _Node:
    """One line of system_profiler's indented outline: "Key: value", or "Key:" with children."""

    key: str
    value: str
    indent: int
    children: list[_Node] = field(default_factory=list)

    def values(self) -> dict[str, str]:
        return {child.key.casefold(): child.value for child in self.children if not child.children}

    def child(self, key: str) -> _Node | None:
        return next((child for child in self.children if child.key.casefold() == key), None)


def is_system_profiler(text: str) -> bool:
    """``system_profiler SPAirPortDataType`` text (in English) rather than its -json form."""
    if text.lstrip("\ufeff \t\r\n").startswith("{"):
        return False
    lines = {line.strip().casefold() for line in _lines(text)}
    return "interfaces:" in lines and bool(lines & {"current network information:",
                                                    "other local wi-fi networks:", "status: connected"})


def parse_system_profiler(text: str) -> tuple[list[LinkReading], list[ScanEntry]]:
    """The Wi-Fi interfaces' links and the networks around, from the text form (the
    network the Mac is on among them, marked associated). No links: a Mac without Wi-Fi."""
    interfaces = _find(_outline(text), "interfaces")
    if interfaces is None:
        raise NotParsable("not `system_profiler SPAirPortDataType` output: no 'Interfaces:' section "
                          "(it is read in English only; on a Mac in another language use "
                          "`system_profiler -json SPAirPortDataType`)")
    links: list[LinkReading] = []
    scans: list[ScanEntry] = []
    for node in interfaces.children:
        props = node.values()
        current = node.child("current network information")
        network = next((child for child in current.children if child.children), None) if current else None
        if "status" not in props and network is None:
            continue  # awdl0, llw0: Apple's peer-to-peer interfaces, not a Wi-Fi link
        connected = props.get("status", "").casefold() == "connected" and network is not None
        if connected and network is not None:
            links.append(_link(SOURCE_SYSTEM_PROFILER, node.key, network.key, network.values()))
            scans.append(_entry(network.key, network.values(), associated=True))
        else:
            links.append(LinkReading(source=SOURCE_SYSTEM_PROFILER, interface=node.key, connected=False))
        others = node.child("other local wi-fi networks")
        for other in others.children if others else []:
            scans.append(_entry(other.key, other.values(), associated=False))
    return links, scans  # none: a Mac without Wi-Fi hardware


def _outline(text: str) -> _Node:
    root = _Node("", "", -1)
    stack = [root]
    for line in _lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.endswith(":"):
            key, value = stripped[:-1], ""  # a section, or a network's name ("Cafe: Free:")
        elif ": " in stripped:
            key, _, value = stripped.partition(": ")
        else:
            continue  # a pasted prompt or other prose
        indent = len(line) - len(line.lstrip())
        while stack[-1].indent >= indent:
            stack.pop()
        node = _Node(key.strip(), value.strip(), indent)
        stack[-1].children.append(node)
        stack.append(node)
    return root


def _find(node: _Node, key: str) -> _Node | None:
    for child in node.children:
        if child.key.casefold() == key and child.children:
            return child
        found = _find(child, key)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------- system_profiler, JSON

def is_system_profiler_json(text: str) -> bool:
    body = _json_body(text)
    return body is not None and '"SPAirPortDataType"' in body


def parse_system_profiler_json(text: str) -> tuple[list[LinkReading], list[ScanEntry]]:
    """The same as parse_system_profiler, from ``system_profiler -json SPAirPortDataType``
    (whose keys do not change with the Mac's language)."""
    body = _json_body(text)
    try:
        document = json.loads(body) if body is not None else None
    except json.JSONDecodeError as exc:
        raise NotParsable(f"not `system_profiler -json SPAirPortDataType` output: bad JSON ({exc.msg} "
                          f"at line {exc.lineno})") from None
    items = document.get("SPAirPortDataType") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise NotParsable("not `system_profiler -json SPAirPortDataType` output: no SPAirPortDataType list")
    links: list[LinkReading] = []
    scans: list[ScanEntry] = []
    for item in items:
        for interface in _dicts(item.get("spairport_airport_interfaces") if isinstance(item, dict) else None):
            name = str(interface.get("_name", ""))
            status = interface.get("spairport_status_information")
            current = interface.get("spairport_current_network_information")
            network = current if isinstance(current, dict) and "_name" in current else None
            if status is None and network is None:
                continue  # awdl0, llw0
            # Some builds leave the status out of a connected interface; its network says it.
            connected = network is not None and status in (None, "spairport_status_connected")
            if connected and network is not None:
                values = _json_values(network)
                links.append(_link(SOURCE_SYSTEM_PROFILER, name, str(network["_name"]), values))
                scans.append(_entry(str(network["_name"]), values, associated=True))
            else:
                links.append(LinkReading(source=SOURCE_SYSTEM_PROFILER, interface=name, connected=False))
            for other in _dicts(interface.get("spairport_airport_other_local_wireless_networks")):
                scans.append(_entry(str(other.get("_name", "")), _json_values(other), associated=False))
    return links, scans  # none: a Mac without Wi-Fi hardware


def _json_body(text: str) -> str | None:
    """The JSON document, after any pasted prompt line."""
    start = text.find("{")
    return text[start:] if start >= 0 else None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def _json_values(network: dict[str, Any]) -> dict[str, str]:
    """A JSON network in the text form's terms, so one reader serves both."""
    names = {"spairport_network_phymode": "phy mode", "spairport_network_channel": "channel",
             "spairport_signal_noise": "signal / noise", "spairport_network_rate": "transmit rate",
             "spairport_network_bssid": "bssid"}
    return {names[key]: str(value) for key, value in network.items() if key in names}


# ---------------------------------------------------------------- both forms

def _link(source: str, interface: str, ssid: str, values: dict[str, str]) -> LinkReading:
    signal, noise = _signal_noise(values.get("signal / noise"))
    channel, band, frequency_mhz, width_mhz = _channel(values.get("channel"))
    rate = _number(values.get("transmit rate"))
    return LinkReading(
        source=source,
        interface=interface,
        connected=True,
        ssid=_ssid(ssid),
        bssid=radio.normalise_bssid(values.get("bssid")),
        signal_dbm=signal,
        noise_dbm=noise,
        frequency_hertz=frequency_mhz * radio.MHZ if frequency_mhz is not None else None,
        channel=channel,
        band=band,
        channel_width_hertz=width_mhz * radio.MHZ if width_mhz is not None else None,
        tx_bitrate_bits_per_second=radio.bits_per_second(rate, "Mbps") if rate else None,
        phy_mode=values.get("phy mode") or None,
    )


def _entry(ssid: str, values: dict[str, str], associated: bool) -> ScanEntry:
    signal, _noise = _signal_noise(values.get("signal / noise"))
    channel, band, frequency_mhz, _width = _channel(values.get("channel"))
    return ScanEntry(
        source=SOURCE_SYSTEM_PROFILER,
        bssid=radio.normalise_bssid(values.get("bssid")),  # older macOS only
        ssid=_ssid(ssid),
        signal_dbm=signal,
        frequency_hertz=frequency_mhz * radio.MHZ if frequency_mhz is not None else None,
        channel=channel,
        band=band,
        associated=associated,
    )


def _ssid(name: str) -> str | None:
    """None where macOS hides the name from a caller without the Location permission."""
    return None if name.strip().casefold() == _REDACTED else name


def _signal_noise(value: str | None) -> tuple[float | None, float | None]:
    match = _SIGNAL_NOISE.search(value or "")
    if match is None:
        return None, None
    signal, noise = float(match.group(1)), float(match.group(2))
    # 0 dBm is what macOS prints for a value it does not have, not a measurement.
    return (signal if signal < 0 else None), (noise if noise < 0 else None)


def _channel(value: str | None) -> tuple[int | None, str | None, int | None, int | None]:
    """(channel, band, centre frequency MHz, width MHz) of "149 (5GHz, 80MHz)"."""
    match = _CHANNEL.match(value or "")
    if match is None:
        return None, None, None, None
    channel = int(match.group(1))
    band = radio.parse_band(match.group(2)) if match.group(2) else None
    frequency = radio.frequency_of(channel, band)
    if band is None and frequency is not None:
        band = radio.band_of(frequency)
    return channel, band, frequency, int(match.group(3)) if match.group(3) else None


def _number(value: str | None) -> float | None:
    match = _NUMBER.match(value or "")
    return float(match.group(1)) if match else None


def _lines(text: str) -> list[str]:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").expandtabs(4).split("\n")


# ---------------------------------------------------------------- wdutil

def is_wdutil_info(text: str) -> bool:
    values = _wdutil_values(text)
    return "rssi" in values and bool({"noise", "tx rate", "phy mode", "channel"} & values.keys())


def parse_wdutil_info(text: str) -> LinkReading:
    """The link from ``sudo wdutil info``: its WIFI section where the output has sections."""
    values = _wdutil_values(text)
    if "rssi" not in values and "channel" not in values:
        raise NotParsable("not `wdutil info` output: no 'RSSI : … dBm' or 'Channel : …' line in "
                          "a WIFI section")
    interface = values.get("interface name") or None
    signal = _number(values.get("rssi"))
    noise = _number(values.get("noise"))
    channel_match = _WDUTIL_CHANNEL.match(values.get("channel", ""))
    powered = not values.get("power", "on").casefold().startswith("off")
    # Not associated, wdutil prints "None" for the channel and 0 for the radio values.
    if not powered or channel_match is None or signal is None or signal >= 0:
        return LinkReading(source=SOURCE_WDUTIL, interface=interface, connected=False)
    band = radio.parse_band(channel_match.group(1) + "g")
    channel = int(channel_match.group(2))
    frequency = radio.frequency_of(channel, band)
    width = int(channel_match.group(3)) if channel_match.group(3) else None
    rate = _number(values.get("tx rate"))
    return LinkReading(
        source=SOURCE_WDUTIL,
        interface=interface,
        connected=True,
        ssid=_wdutil_name(values.get("ssid")),
        bssid=radio.normalise_bssid(values.get("bssid")),
        signal_dbm=signal,
        noise_dbm=noise if noise is not None and noise < 0 else None,
        frequency_hertz=frequency * radio.MHZ if frequency is not None else None,
        channel=channel,
        band=band,
        channel_width_hertz=width * radio.MHZ if width else None,
        tx_bitrate_bits_per_second=radio.bits_per_second(rate, "Mbps") if rate else None,
        phy_mode=values.get("phy mode") or None,
    )


def _wdutil_name(value: str | None) -> str | None:
    if not value or value.casefold() == "none":
        return None
    return _ssid(value)


def _wdutil_values(text: str) -> dict[str, str]:
    """"Key : value" lines of the WIFI section. wdutil separates its sections (NETWORK,
    WIFI, BLUETOOTH, ...) with rules of em dashes; an excerpt without them is all Wi-Fi."""
    values: dict[str, str] = {}
    section: str | None = None
    after_rule = False
    for line in _lines(text):
        stripped = line.strip()
        if stripped and set(stripped) <= {"\u2014", "-", "\u2500"} and len(stripped) >= 8:
            after_rule = True
            continue
        if after_rule and stripped and " : " not in stripped:
            section = stripped.upper()  # "WIFI", "NETWORK", "WiFi FAULTS LAST HOUR", ...
            after_rule = False
            continue
        after_rule = False
        if section not in (None, "WIFI") or " : " not in stripped:
            continue
        key, _, value = stripped.partition(" : ")
        key = " ".join(key.split()).casefold()
        if key and key != "mac address":  # the Mac's own address is never kept
            values.setdefault(key, value.strip())
    return values


# ---------------------------------------------------------------- sources

class SystemProfilerSource:
    """The link and the nearby networks from ``system_profiler -json SPAirPortDataType``."""

    name = "system_profiler"
    last_scan_triggered = False  # it reports what macOS last saw; it takes no scan request

    def __init__(self, runner: Runner, interface: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runner = runner
        self.interface = interface
        self.clock = clock
        self._last: tuple[float, list[LinkReading], list[ScanEntry]] | None = None

    def read(self) -> tuple[list[LinkReading], list[ScanEntry]]:
        now = self.clock()
        if self._last is not None and now - self._last[0] < SYSTEM_PROFILER_REUSE_SECONDS:
            return self._last[1], self._last[2]
        try:
            links, scans = parse_system_profiler_json(self.runner(SYSTEM_PROFILER_JSON))
        except NotParsable as exc:
            raise Unavailable(f"system_profiler: {exc}") from None
        self._last = (now, links, scans)
        return links, scans

    def link(self) -> LinkReading:
        links, _scans = self.read()
        for reading in links:
            if reading.interface == self.interface:
                return reading
        raise Unavailable(f"system_profiler no longer lists the Wi-Fi interface {self.interface}")

    def scan(self, trigger: bool) -> list[ScanEntry]:
        return self.read()[1]


class WdutilSource:
    """The link from ``wdutil info`` (root only: it shows the BSSID and noise), the scan from
    system_profiler, which wdutil does not list."""

    name = "wdutil"
    last_scan_triggered = False

    def __init__(self, runner: Runner, profiler: SystemProfilerSource) -> None:
        self.runner = runner
        self.profiler = profiler
        self.interface = profiler.interface

    def link(self) -> LinkReading:
        try:
            reading = parse_wdutil_info(self.runner(WDUTIL_INFO))
        except NotParsable as exc:
            raise Unavailable(f"wdutil info: {exc}") from None
        return reading if reading.interface else dataclasses.replace(reading, interface=self.interface)

    def scan(self, trigger: bool) -> list[ScanEntry]:
        return self.profiler.scan(trigger)


def open_macos_source(config: WifiProbeConfig, *, runner: Runner = run_tool,
                      euid: Callable[[], int] | None = None,
                      clock: Callable[[], float] = time.monotonic) -> WifiSource:
    """wdutil when running as root (config.source auto or wdutil), else system_profiler;
    the interface config.interface names, else the first connected one, else the first."""
    if config.source not in MACOS_SOURCES:
        raise Unavailable(f"Wi-Fi source {config.source!r} does not exist on macOS; use one of "
                          f"{', '.join(MACOS_SOURCES)}")
    # os.geteuid is looked up here, not at import: this module is imported on Windows too
    # (the survey import reads macOS captures there), where it does not exist.
    if euid is None:
        euid = getattr(os, "geteuid", lambda: -1)
    root = euid() == 0
    if config.source == "wdutil" and not root:
        raise Unavailable("wdutil needs root: run the agent as root, or set source = "
                          "\"system_profiler\" (no BSSID, no noise)")
    links, _scans = SystemProfilerSource(runner, "", clock).read()
    if config.interface:
        chosen = next((link for link in links if link.interface == config.interface), None)
        if chosen is None:
            listed = ", ".join(str(link.interface) for link in links) or "none"
            raise Unavailable(f"no Wi-Fi interface named {config.interface!r}; this Mac has: {listed}")
    elif links:
        chosen = next((link for link in links if link.connected), links[0])
    else:
        chosen = None
    if chosen is None or not chosen.interface:
        raise NoWirelessInterface("this Mac has no Wi-Fi interface (system_profiler lists none)")
    profiler = SystemProfilerSource(runner, chosen.interface, clock)
    if not root or config.source == "system_profiler":
        return profiler
    wdutil = WdutilSource(runner, profiler)
    try:
        wdutil.link()
    except Unavailable as exc:
        if config.source == "wdutil":
            raise
        log.warning("wdutil cannot be used, reading Wi-Fi with system_profiler: %s", exc)
        return profiler
    return wdutil
