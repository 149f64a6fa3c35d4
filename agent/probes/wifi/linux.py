"""The Linux source: which wireless interface, and which way of reading it.

Best first: nl80211 straight from the kernel (no tool needed, and a scan the agent can
trigger itself); else the ``iw`` tool; else ``/proc/net/wireless`` for the signal, with
NetworkManager's ``nmcli`` for the network's name and for scans; else ``nmcli`` alone. The
configured ``source`` picks one of them instead, and then only that one. Tools run with
LC_ALL=C: iw and nmcli translate their output, and the readers know the English labels.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

from agent.config import WifiProbeConfig
from agent.probes.wifi import iw, nl80211, nmcli
from agent.probes.wifi.proc import parse_proc_net_wireless
from agent.probes.wifi.reading import LinkReading, NotParsable, ScanEntry, fill_missing
from agent.probes.wifi.source import (
    COMMAND_TIMEOUT_SECONDS,
    SCAN_TIMEOUT_SECONDS,
    NoWirelessInterface,
    Unavailable,
    WifiSource,
    run_tool,
)

log = logging.getLogger(__name__)

SYSFS_NET = Path("/sys/class/net")
PROC_NET_WIRELESS = Path("/proc/net/wireless")
LINUX_SOURCES = ("auto", "nl80211", "iw", "proc", "nmcli")
CACHED = "these are the cached results"
_LOGGED_FALLBACKS: dict[str, str] = {}


def wireless_interfaces(sysfs: Path = SYSFS_NET) -> list[str]:
    """The wireless network interfaces, sorted: those the kernel gives a ``wireless``
    (wireless extensions) or ``phy80211`` (cfg80211) entry in sysfs."""
    try:
        entries = list(sysfs.iterdir())
    except OSError:
        return []
    return sorted(entry.name for entry in entries
                  if (entry / "wireless").exists() or (entry / "phy80211").exists())


def _unreadable(command: str, problem: NotParsable) -> Unavailable:
    return Unavailable(f"{command} printed what this cannot read: {problem}")


def _tool_env() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C"}


def _run(argv: list[str], timeout: float = COMMAND_TIMEOUT_SECONDS) -> str:
    return run_tool(argv, timeout=timeout, env=_tool_env())


class _Scanning:
    """What every source says about its latest scan, for the probe's record and log."""

    interface: str

    def __init__(self) -> None:
        # False: the latest scan() returned the system's cached results, not a fresh scan.
        self.last_scan_triggered = False
        # Why a fresh scan that was asked for was not made; None when it was (or was not asked).
        self.last_scan_fallback: str | None = None

    def _scanned(self, triggered: bool, fallback: str | None) -> None:
        self.last_scan_triggered = triggered
        self.last_scan_fallback = fallback
        # Said once per interface and reason, not at every scan: the probe opens its
        # source anew each run, so the memory is the module's.
        if fallback is not None and _LOGGED_FALLBACKS.get(self.interface) != fallback:
            log.warning("Wi-Fi scan on %s: %s", self.interface, fallback)
        _LOGGED_FALLBACKS[self.interface] = fallback or ""


class Nl80211Source(_Scanning):
    name = "nl80211"

    def __init__(self, interface: str, socket_factory: nl80211.SocketFactory = nl80211.kernel_socket) -> None:
        super().__init__()
        self.interface = interface
        self._socket_factory = socket_factory

    def link(self) -> LinkReading:
        return nl80211.read_link(self.interface, self._socket_factory)

    def scan(self, trigger: bool) -> list[ScanEntry]:
        outcome = nl80211.read_scan(self.interface, trigger, self._socket_factory)
        self._scanned(outcome.triggered, outcome.not_triggered_reason)
        return outcome.entries


class IwSource(_Scanning):
    name = "iw"

    def __init__(self, interface: str, binary: str = "iw") -> None:
        super().__init__()
        self.interface = interface
        self._binary = binary

    def _iw(self, *words: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> str:
        return _run([self._binary, "dev", self.interface, *words], timeout)

    def link(self) -> LinkReading:
        text = self._iw("link")
        try:
            reading = iw.parse_iw_link(text)
        except NotParsable as exc:
            raise _unreadable(f"`iw dev {self.interface} link`", exc) from None
        reading = dataclasses.replace(reading, interface=reading.interface or self.interface)
        if not reading.connected:
            return reading
        try:
            # The client side's one station is the access point: retries, beacon loss, and
            # the bitrates where `link` lacks one (older drivers print no rx bitrate).
            station = iw.parse_iw_station_dump(self._iw("station", "dump"), access_point=reading.bssid)
            reading = fill_missing(reading, station)
        except (Unavailable, NotParsable) as exc:
            log.debug("iw station dump on %s: %s", self.interface, exc)
        try:
            noise = iw.parse_iw_survey_noise(self._iw("survey", "dump"))
        except (Unavailable, NotParsable) as exc:
            log.debug("iw survey dump on %s: %s", self.interface, exc)
            noise = None
        if noise is not None and reading.noise_dbm is None:
            reading = dataclasses.replace(reading, noise_dbm=noise)
        return reading

    def scan(self, trigger: bool) -> list[ScanEntry]:
        fallback = None
        text = None
        if trigger:
            try:
                text = self._iw("scan", timeout=SCAN_TIMEOUT_SECONDS)
            except Unavailable as exc:
                if "Operation not permitted" in str(exc):
                    fallback = (f"`iw dev {self.interface} scan` needs root or CAP_NET_ADMIN (or set "
                                f"trigger_scan = false): {CACHED}")
                else:
                    fallback = f"{exc}: {CACHED}"
        triggered = text is not None
        if text is None:
            text = self._iw("scan", "dump")
        self._scanned(triggered, fallback)
        if not text.strip():
            return []  # no access point in the kernel's cache (yet)
        try:
            return iw.parse_iw_scan(text)
        except NotParsable as exc:
            raise _unreadable(f"`iw dev {self.interface} scan`", exc) from None


class NmcliSource(_Scanning):
    name = "nmcli"

    def __init__(self, interface: str, binary: str = "nmcli") -> None:
        super().__init__()
        self.interface = interface
        self._binary = binary

    def entries(self, rescan: bool) -> nmcli.NmcliEntries:
        argv = [self._binary, "-t", "-e", "yes", "-f", ",".join(nmcli.TERSE_FIELDS), "device", "wifi",
                "list", "--rescan", "yes" if rescan else "no", "ifname", self.interface]
        text = _run(argv, SCAN_TIMEOUT_SECONDS if rescan else COMMAND_TIMEOUT_SECONDS)
        if not text.strip():
            return nmcli.NmcliEntries([], shows_in_use=True)
        try:
            return nmcli.parse_nmcli_wifi_list(text)
        except NotParsable as exc:
            raise _unreadable("`nmcli device wifi list`", exc) from None

    def link(self) -> LinkReading:
        reading = nmcli.nmcli_link(self.entries(rescan=False))
        return dataclasses.replace(reading, interface=self.interface)

    def scan(self, trigger: bool) -> list[ScanEntry]:
        if trigger:
            try:
                found = self.entries(rescan=True)
            except Unavailable as exc:
                # NetworkManager lets only permitted users rescan (polkit).
                found = self.entries(rescan=False)
                self._scanned(False, f"{exc}: {CACHED}")
                return found
            self._scanned(True, None)
            return found
        self._scanned(False, None)
        return self.entries(rescan=False)


class ProcSource(_Scanning):
    """/proc/net/wireless for the signal, and nmcli (when there) for the rest and scans."""

    def __init__(self, interface: str, path: Path = PROC_NET_WIRELESS,
                 nmcli_source: NmcliSource | None = None) -> None:
        super().__init__()
        self.interface = interface
        self._path = path
        self._nmcli = nmcli_source
        self.name = "proc+nmcli" if nmcli_source is not None else "proc"

    def link(self) -> LinkReading:
        try:
            text = self._path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise Unavailable(f"cannot read {self._path}: {exc.strerror or exc}") from None
        try:
            readings = parse_proc_net_wireless(text)
        except NotParsable as exc:
            raise Unavailable(f"{self._path}: {exc}") from None
        reading = next((r for r in readings if r.interface == self.interface), None)
        if reading is None:
            raise Unavailable(f"{self._path} has no line for {self.interface} (its driver keeps no "
                              "wireless statistics)")
        if not reading.connected or self._nmcli is None:
            return reading
        try:
            return with_network(reading, self._nmcli.link())
        except (Unavailable, NotParsable) as exc:
            log.debug("nmcli on %s: %s", self.interface, exc)
            return reading

    def scan(self, trigger: bool) -> list[ScanEntry]:
        if self._nmcli is None:
            raise Unavailable(f"{self._path} lists no access points: install iw or NetworkManager "
                              "(nmcli) for scans")
        found = self._nmcli.scan(trigger)
        self._scanned(self._nmcli.last_scan_triggered, self._nmcli.last_scan_fallback)
        return found


def with_network(signal: LinkReading, network: LinkReading) -> LinkReading:
    """/proc's reading completed with nmcli's network (SSID, BSSID, channel). The kernel's
    dBm beats NetworkManager's percentage; the percentage fills in only with its flag that
    it was converted, never beside a dBm it was not converted to."""
    if not network.connected:
        return signal
    if signal.signal_dbm is not None:
        network = dataclasses.replace(network, signal_dbm=None, signal_percent=None, signal_converted=False)
    elif network.signal_dbm is not None:
        signal = dataclasses.replace(signal, signal_dbm=network.signal_dbm,
                                     signal_percent=network.signal_percent,
                                     signal_converted=network.signal_converted)
    return fill_missing(signal, network)


def _is_up(sysfs: Path, name: str) -> bool:
    """A wireless interface's operstate is "up" once associated (and authorised), "dormant"
    or "down" before."""
    try:
        return (sysfs / name / "operstate").read_text().strip() == "up"
    except OSError:
        return False


def _candidate_interfaces(config: WifiProbeConfig, sysfs: Path) -> list[str]:
    """The configured interface, or the wireless ones, those up first: of two (a built-in
    radio left idle and a USB dongle), the one that carries the link."""
    wireless = wireless_interfaces(sysfs)
    if config.interface:
        name = config.interface
        if not (sysfs / name).exists():
            raise Unavailable(f"the configured Wi-Fi interface {name} does not exist (wireless "
                              f"interfaces here: {', '.join(wireless) or 'none'})")
        if name not in wireless:
            raise Unavailable(f"the configured Wi-Fi interface {name} is not wireless (it has no "
                              f"wireless or phy80211 entry in {sysfs / name})")
        return [name]
    if not wireless:
        raise NoWirelessInterface(f"no wireless interface on this machine (none of the interfaces "
                                  f"in {sysfs} is wireless)")
    return sorted(wireless, key=lambda name: not _is_up(sysfs, name))


def _installed(binary: str) -> bool:
    return shutil.which(binary) is not None


def open_linux_source(config: WifiProbeConfig, sysfs: Path = SYSFS_NET, proc: Path = PROC_NET_WIRELESS,
                      socket_factory: nl80211.SocketFactory = nl80211.kernel_socket) -> WifiSource:
    """The source for the configured (or first) wireless interface: the configured one, or
    with "auto" the best that works here. Unavailable says what is missing, for each."""
    candidates = _candidate_interfaces(config, sysfs)
    interface = candidates[0]
    wanted = config.source
    if wanted not in LINUX_SOURCES:
        raise Unavailable(f"source {wanted!r} is not a Linux source (use one of {', '.join(LINUX_SOURCES)})")
    reasons = []
    if wanted in ("auto", "nl80211"):
        try:
            if len(candidates) == 1:
                nl80211.check_available(socket_factory)
            else:
                # nl80211 says which is a client, and associated: an access point's side is
                # never the link (and its stations are pupils' devices).
                interface = nl80211.choose_interface(candidates, socket_factory)
            return Nl80211Source(interface, socket_factory)
        except Unavailable as exc:
            if wanted == "nl80211":
                raise
            reasons.append(f"nl80211: {exc}")
    if wanted in ("auto", "iw"):
        if _installed(config.iw_binary):
            return IwSource(interface, config.iw_binary)
        if wanted == "iw":
            raise Unavailable(f"{config.iw_binary} is not installed (apt install iw)")
        reasons.append(f"iw: {config.iw_binary} is not installed")
    nmcli_here = _installed(config.nmcli_binary)
    if wanted in ("auto", "proc"):
        if proc.exists():
            return ProcSource(interface, proc,
                              NmcliSource(interface, config.nmcli_binary) if nmcli_here else None)
        if wanted == "proc":
            raise Unavailable(f"{proc} does not exist (the kernel has no wireless extensions)")
        reasons.append(f"{proc} does not exist")
    if nmcli_here:
        return NmcliSource(interface, config.nmcli_binary)
    if wanted == "nmcli":
        raise Unavailable(f"{config.nmcli_binary} is not installed (NetworkManager's command-line tool)")
    reasons.append(f"nmcli: {config.nmcli_binary} is not installed")
    raise Unavailable(f"no way to read Wi-Fi on {interface}: " + "; ".join(reasons))
