"""Where Wi-Fi readings come from on this machine: one interface for every platform.

A source reads the link of one wireless interface and, where the platform lets it, the
access points around. Each platform module (``linux``, ``windows``, ``macos``) picks the
best source it has (an API first, tools as fallbacks) and says clearly when there is none.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from agent.probes.wifi.reading import LinkReading, ScanEntry

if TYPE_CHECKING:
    from agent.config import WifiProbeConfig

# A tool that has not answered in this long is hung (a wedged driver), not slow.
COMMAND_TIMEOUT_SECONDS = 15.0
# A triggered scan visits every channel; 2.4 + 5 GHz take a few seconds, with DFS more.
SCAN_TIMEOUT_SECONDS = 30.0


class Unavailable(Exception):
    """This source (or every source) cannot read Wi-Fi on this machine; the message says
    why in one line an ICT coordinator can act on (no wireless interface, no permission).
    ``output`` keeps everything a failed tool printed, for callers that recognise a
    particular complaint further down than its first line (netsh's location refusal)."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class NoWirelessInterface(Unavailable):
    """The machine has no wireless interface at all (a wired Pi, a container, CI)."""


class WifiSource(Protocol):
    name: str  # e.g. "nl80211", "iw", "netsh"; goes into the record's `source`
    interface: str

    def link(self) -> LinkReading:
        """The interface's link now; raises Unavailable when it cannot be read."""
        ...

    def scan(self, trigger: bool) -> list[ScanEntry]:
        """The access points around: a fresh scan when ``trigger`` and the platform allows
        it, else the system's latest cached results; raises Unavailable when none."""
        ...


def run_tool(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT_SECONDS,
             encoding: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run one tool and return its standard output; every failure is Unavailable with the
    tool's own complaint (its first line of stderr), never a traceback."""
    try:
        done = subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False,
                              encoding=encoding, errors="replace", text=True, env=env)
    except FileNotFoundError:
        raise Unavailable(f"{argv[0]} is not installed") from None
    except PermissionError:
        raise Unavailable(f"{argv[0]} may not be run by this user") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{' '.join(argv)} did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise Unavailable(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        output = f"{done.stdout or ''}\n{done.stderr or ''}"
        complaint = (done.stderr or done.stdout or "").strip().splitlines()
        detail = complaint[0] if complaint else f"exit status {done.returncode}"
        raise Unavailable(f"{' '.join(argv)} failed: {detail}", output=output)
    return done.stdout


def open_source(config: WifiProbeConfig, platform: str = sys.platform) -> WifiSource:
    """The best source this platform has for the configured interface and source."""
    if platform.startswith("linux"):
        from agent.probes.wifi.linux import open_linux_source

        return open_linux_source(config)
    if platform == "win32":
        from agent.probes.wifi.windows import open_windows_source

        return open_windows_source(config)
    if platform == "darwin":
        from agent.probes.wifi.macos import open_macos_source

        return open_macos_source(config)
    raise Unavailable(f"Wi-Fi readings are not supported on {platform}")
