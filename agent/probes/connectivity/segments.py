"""Where a bad window's trouble is: the school LAN, the provider's access, or further away.

The gateway probe covers the school's own network; TTL-limited probes to the first hops
past the gateway cover the provider's access (the first routers of the line); the internet
targets cover everything. A segment is blamed when it is bad itself and the trouble carries
on to the targets: routers answer TTL-limited probes at a low priority and rate-limit them,
so loss seen at a hop but not at the targets is the router's habit, not the line's (the
rule every reader of mtr output learns).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.probes.connectivity.stats import Summary
from agent.wire import Segment


@dataclass(frozen=True)
class Thresholds:
    loss_ratio: float
    latency_seconds: float


def _bad(summary: Summary | None, limits: Thresholds) -> bool:
    if summary is None or summary.loss_ratio is None:
        return False
    return summary.loss_ratio > limits.loss_ratio or (
        summary.p50 is not None and summary.p50 > limits.latency_seconds)


def _describe(name: str, summary: Summary) -> str:
    loss = f"{summary.loss_ratio:.1%} loss" if summary.loss_ratio is not None else "nothing sent"
    median = f", median {summary.p50 * 1000:.1f} ms" if summary.p50 is not None else ""
    return f"{name}: {loss}{median}"


def locate(gateway: Summary | None, access: list[Summary], targets: dict[str, Summary],
           limits: Thresholds) -> tuple[Segment, str]:
    """The segment to blame and a one-line reason naming the figures."""
    bad_targets = {name: s for name, s in targets.items() if _bad(s, limits)}
    if not bad_targets:
        # A gateway slow or lossy at answering pings itself, with the way through it fine,
        # is a router that puts pings last (as the hops do), not a LAN problem.
        return "none", "every target within the thresholds" if targets else "no internet target probed"
    if _bad(gateway, limits):
        assert gateway is not None
        return "lan", _describe("gateway", gateway)
    worst_name, worst = max(bad_targets.items(), key=lambda item: (item[1].loss_ratio or 0.0,
                                                                   item[1].p50 or 0.0))
    gateway_note = "gateway fine" if gateway is not None else "gateway not probed"
    answering = [hop for hop in access if hop.received]
    if not answering:
        if gateway is not None and access and all(s.received == 0 for s in targets.values()):
            # Nothing past the gateway answers, not even the provider's first router.
            return "access", f"no reply from the provider's first hops or any target; {gateway_note}"
        # Hops not probed, or the provider's routers never answer them: the access line and
        # the rest of the way cannot be told apart.
        return "unknown", f"{_describe(worst_name, worst)}; {gateway_note}; no provider hop answered"
    worst_hop = max(answering, key=lambda hop: (hop.loss_ratio or 0.0, hop.p50 or 0.0))
    target_loss = worst.loss_ratio or 0.0
    hop_loss = worst_hop.loss_ratio or 0.0
    lossy_access = (hop_loss > limits.loss_ratio and target_loss > limits.loss_ratio
                    and hop_loss >= 0.5 * target_loss)
    slow_access = (worst_hop.p50 is not None and worst_hop.p50 > limits.latency_seconds
                   and (worst.p50 is None or worst_hop.p50 >= 0.5 * worst.p50))
    figures = f"{_describe('provider hop', worst_hop)}; {_describe(worst_name, worst)}; {gateway_note}"
    return ("access" if lossy_access or slow_access else "beyond"), figures
