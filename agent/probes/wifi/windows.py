"""The Wi-Fi source on Windows: the WLAN API first (dBm, BSS Load), ``netsh wlan`` when
the API cannot be had (a percentage signal, localised text).

Both need the WLAN AutoConfig service, and on Windows 11 24H2 and later both need the
Location permission; a refusal for want of it is passed on as it is, since falling back
from one to the other cannot help.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agent.probes.wifi import netsh
from agent.probes.wifi.netsh import LocationPermissionDenied
from agent.probes.wifi.reading import LinkReading, NotParsable, ScanEntry
from agent.probes.wifi.source import NoWirelessInterface, Unavailable, WifiSource, run_tool
from agent.probes.wifi.wlanapi import (
    WlanApi,
    interface_alias_from_iphlpapi,
    load_wlanapi,
    open_wlanapi_source,
)

if TYPE_CHECKING:
    from agent.config import WifiProbeConfig

Runner = Callable[[Sequence[str]], str]

NETSH_INTERFACES = ("netsh", "wlan", "show", "interfaces")
NETSH_NETWORKS = ("netsh", "wlan", "show", "networks", "mode=bssid")
WINDOWS_SOURCES = ("auto", "wlanapi", "netsh")


def console_encoding() -> str | None:
    """netsh writes in the console's OEM code page (850 in Western Europe, 437 in the US),
    not the ANSI one Python would assume. Python's "oem" codec exists only on Windows;
    elsewhere (tests, a pasted capture) the locale's encoding is the best guess."""
    try:
        codecs.lookup("oem")
    except LookupError:
        return None
    return "oem"


def run_netsh(argv: Sequence[str]) -> str:
    return run_tool(argv, encoding=console_encoding())


class NetshSource:
    """The link and the cached scan list of one interface, from ``netsh wlan``."""

    name = "netsh"
    # netsh has no scan command: it shows the list Windows keeps (refreshed every minute or so).
    last_scan_triggered = False

    def __init__(self, runner: Runner, interface: str, guid: str | None) -> None:
        self.runner = runner
        self.interface = interface
        self.guid = guid

    def link(self) -> LinkReading:
        text = _netsh(self.runner, NETSH_INTERFACES)
        readings, guids = _interfaces(text)
        for reading, guid in zip(readings, guids, strict=True):
            if (self.guid is not None and guid == self.guid) or reading.interface == self.interface:
                return reading
        raise Unavailable(f"netsh no longer lists the Wi-Fi interface {self.interface}")

    def scan(self, trigger: bool) -> list[ScanEntry]:
        text = _netsh(self.runner, NETSH_NETWORKS)
        try:
            return netsh.parse_netsh_networks(text, interface=self.interface)
        except NotParsable as exc:
            raise Unavailable(f"netsh wlan show networks: {exc}") from None


def open_netsh_source(runner: Runner = run_netsh, wanted: str = "") -> NetshSource:
    """The netsh source for the interface ``wanted`` names (name or GUID), else the first
    connected interface, else the first."""
    readings, guids = _interfaces(_netsh(runner, NETSH_INTERFACES))
    if not readings:
        raise NoWirelessInterface("netsh lists no wireless interface on this machine")
    pairs = list(zip(readings, guids, strict=True))
    if wanted:
        key = wanted.strip("{} ").casefold()
        for reading, guid in pairs:
            if key in (guid, (reading.interface or "").casefold()):
                return NetshSource(runner, reading.interface or key, guid)
        listed = ", ".join(f"{reading.interface} ({guid})" for reading, guid in pairs)
        raise Unavailable(f"no Wi-Fi interface named {wanted!r}; netsh lists: {listed}")
    reading, guid = next(((reading, guid) for reading, guid in pairs if reading.connected), pairs[0])
    return NetshSource(runner, reading.interface or guid or "Wi-Fi", guid)


def open_windows_source(config: WifiProbeConfig, *, load_dll: Callable[[], Any] = load_wlanapi,
                        runner: Runner = run_netsh,
                        alias_of: Callable[[str], str | None] = interface_alias_from_iphlpapi,
                        sleep: Callable[[float], None] = time.sleep) -> WifiSource:
    """The WLAN API (config.source auto or wlanapi), else netsh (auto or netsh)."""
    if config.source not in WINDOWS_SOURCES:
        raise Unavailable(f"Wi-Fi source {config.source!r} does not exist on Windows; use one of "
                          f"{', '.join(WINDOWS_SOURCES)}")
    api_failure: Unavailable | None = None
    if config.source in ("auto", "wlanapi"):
        try:
            return open_wlanapi_source(WlanApi(load_dll()), config.interface, alias_of=alias_of,
                                       sleep=sleep)
        except (NoWirelessInterface, LocationPermissionDenied):
            raise  # netsh asks the same service, under the same permission
        except Unavailable as exc:
            if config.source == "wlanapi":
                raise
            api_failure = exc
    try:
        return open_netsh_source(runner, config.interface)
    except (NoWirelessInterface, LocationPermissionDenied):
        raise  # the reason itself, not buried behind the API's
    except Unavailable as exc:
        if api_failure is None:
            raise
        raise Unavailable(f"WLAN API: {api_failure}; netsh: {exc}") from None


def _netsh(runner: Runner, argv: Sequence[str]) -> str:
    """netsh's output, its location refusal turned into the instruction that fixes it."""
    try:
        text = runner(argv)
    except Unavailable as exc:
        # netsh exits 1 with the refusal below a first line about the interfaces.
        message = netsh.location_permission_error(f"{exc}\n{exc.output}")
        if message is not None:
            raise LocationPermissionDenied(message) from None
        raise
    message = netsh.location_permission_error(text)
    if message is not None:
        raise LocationPermissionDenied(message)
    return text


def _interfaces(text: str) -> tuple[list[LinkReading], list[str | None]]:
    if "wireless interface" in text.casefold() and " : " not in text:
        # "There is no wireless interface on the system." (the English wording; other
        # languages fall through to the parser, whose message quotes what netsh said).
        return [], []
    try:
        return netsh.parse_netsh_interfaces(text), netsh.netsh_interface_guids(text)
    except NotParsable as exc:
        said = next((line.strip() for line in text.splitlines() if line.strip()), "nothing")
        raise Unavailable(f"netsh wlan show interfaces said {said[:120]!r}: {exc}") from None
