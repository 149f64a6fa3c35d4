"""Was the agent itself the limit? The checks that keep a false breach from reaching a provider.

A result is marked invalid, with the reason, when the measuring machine rather than
the line may explain it: its CPU was saturated, its network card is slower than the
contract, it tested over Wi-Fi where wired was required, or its interface carried
other traffic during the test (psutil counters versus the bytes the test moved).
Whether the *server* was the limit is settled by the retest on a second server
(``__init__``), since only another server can tell.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

SYS_NET = Path("/sys/class/net")
# Busy share of all cores above which the host may have throttled the test.
CPU_SATURATED = 0.90
# The test threads share one interpreter lock: one core's worth of CPU time for the
# test itself means the agent, not the line, set the pace.
AGENT_CPU_SATURATED = 0.90
# Other traffic on the interface, as a share of what the test moved, above which the
# line was shared with something else during the test. Headers and ACKs are ~5 %.
CROSS_TRAFFIC_SHARE = 0.10
HEADER_OVERHEAD = 0.06
LOOPBACK = "lo"


def local_interface(server: str) -> str | None:
    """The agent's interface towards ``server`` (a URL or host[:port]): the kernel's
    route choice, learnt by connecting a UDP socket, which sends nothing."""
    # A URL, or iperf3's host, host:port or [v6]:port: the same after a "//".
    host = urlsplit(server if "//" in server else "//" + server).hostname
    if not host:
        return None
    try:
        family, _, _, _, address = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(address)
            local_ip = probe.getsockname()[0]
    except OSError:
        return None
    for name, addresses in psutil.net_if_addrs().items():
        if any(entry.address.split("%")[0] == local_ip for entry in addresses):
            return name
    return None


def is_wireless(interface: str, sys_net: Path = SYS_NET) -> bool | None:
    """Linux marks Wi-Fi interfaces with ``wireless`` or ``phy80211`` in sysfs."""
    base = sys_net / interface
    if not base.exists():
        return None
    return (base / "wireless").exists() or (base / "phy80211").exists()


def link_speed(interface: str) -> int | None:
    """Negotiated speed in bytes per second; None where the driver does not say."""
    stats = psutil.net_if_stats().get(interface)
    return stats.speed * 1_000_000 // 8 if stats and stats.speed > 0 else None


@dataclass(frozen=True)
class Snapshot:
    """Counters read at one moment, to compare a direction's start and end."""

    at: float
    host_cpu: float  # busy CPU seconds of the host, all cores
    host_total: float
    agent_cpu: float
    received: int | None
    sent: int | None

    @classmethod
    def take(cls, interface: str | None) -> Snapshot:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        total = sum(times)
        agent = psutil.Process().cpu_times()
        counters = psutil.net_io_counters(pernic=True).get(interface) if interface else None
        return cls(time.monotonic(), total - idle, total, agent.user + agent.system,
                   counters.bytes_recv if counters else None, counters.bytes_sent if counters else None)


@dataclass
class Observed:
    """What the checks saw over a whole test."""

    interface: str | None = None
    wireless: bool | None = None
    speed: int | None = None
    cpu_usage_ratio: float | None = None
    agent_cpu_seconds: float = 0.0
    agent_cpu_share: float = 0.0  # the test's CPU time per second of the busiest direction
    cross_traffic: dict[str, int | None] = field(default_factory=dict)
    moved: dict[str, int] = field(default_factory=dict)

    def direction(self, name: str, before: Snapshot, after: Snapshot, moved: int) -> None:
        """Account one direction: ``moved`` is what the test itself moved."""
        busy, total = after.host_cpu - before.host_cpu, after.host_total - before.host_total
        if total > 0:
            share = min(1.0, max(0.0, busy / total))
            self.cpu_usage_ratio = max(self.cpu_usage_ratio or 0.0, share)
        spent = after.agent_cpu - before.agent_cpu
        self.agent_cpu_seconds += spent
        if after.at > before.at:
            self.agent_cpu_share = max(self.agent_cpu_share, spent / (after.at - before.at))
        start, end = (before.received, after.received) if name == "download" else (before.sent, after.sent)
        self.moved[name] = moved
        if start is None or end is None or self.interface == LOOPBACK:
            # On loopback both ends are this machine: every byte is counted going out
            # and coming in, so the counters cannot tell other traffic apart.
            self.cross_traffic[name] = None
        else:
            self.cross_traffic[name] = max(0, int(end - start - moved * (1 + HEADER_OVERHEAD)))


def invalid_reasons(observed: Observed, contract: dict[str, float | None], require_wired: bool
                    ) -> list[str]:
    """Why this test must not be judged against the contract; empty when it may be."""
    reasons = []
    if observed.cpu_usage_ratio is not None and observed.cpu_usage_ratio >= CPU_SATURATED:
        reasons.append(f"the agent's CPU was saturated ({observed.cpu_usage_ratio:.0%} busy)")
    elif observed.agent_cpu_share >= AGENT_CPU_SATURATED:
        reasons.append(f"the test used a whole CPU core ({observed.agent_cpu_share:.0%}): the "
                       "agent may have been the limit")
    fastest = max((rate for rate in contract.values() if rate), default=None)
    if observed.speed is not None and fastest is not None and observed.speed < fastest:
        reasons.append(f"the agent's network link ({observed.speed * 8 / 1e6:.0f} Mbit/s on "
                       f"{observed.interface}) is slower than the contract "
                       f"({fastest * 8 / 1e6:.0f} Mbit/s)")
    if require_wired and observed.wireless:
        reasons.append(f"measured over Wi-Fi ({observed.interface}) where a wired test is configured")
    for name, other in observed.cross_traffic.items():
        moved = observed.moved.get(name, 0)
        if other is not None and moved > 0 and other > CROSS_TRAFFIC_SHARE * moved:
            reasons.append(f"{name}: other traffic on {observed.interface} during the test "
                           f"({other / 1e6:.1f} MB beside the test's {moved / 1e6:.1f} MB)")
    return reasons
