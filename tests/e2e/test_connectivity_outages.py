"""Outages as a school meets them, seen by one agent daemon and delivered to the collector.

The school network in namespaces (support.school_network) with the collector in
``internet``: the provider's line goes down for ~6 s (the gateway still answers: "isp"),
the school LAN goes down (the gateway too: "lan"), the router drops DNS only ("dns").
Each becomes one ``outage`` record of the right kind whose start and end lie within
1.5 s of when the test broke and mended the network (the probes run every 0.1 s for echo,
every 0.5 s for DNS, an outage declared after 3 failures), stored by the collector with
those original times. The ISP and LAN outages cut the agent off from the collector too, so
their records, and the windows measured during them, reach it only after the link returns.

Last, a target that does not resolve (NXDOMAIN from the test resolver) stops ``run`` at
start-up, exit 2, with one line naming the key and the name.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support.netns import require_netns
from support.processes import wait_until
from support.school_network import UNRESOLVABLE, SchoolNetwork
from support.tools import require_tool

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 6.0
TOLERANCE_SECONDS = 1.5
# Window 4 s + upload every 1 s (backoff capped at 2 s) + slack for a loaded machine.
DELIVERY_SECONDS = 20.0
AGENT = "school-agent"


@dataclass(frozen=True)
class Stored:
    kind: str
    measured_at: float
    received_at: float
    payload: dict[str, Any]


def stored(school: SchoolNetwork, kind: str) -> list[Stored]:
    """The agent's records of ``kind`` in the collector's store: what a restart would find."""
    assert school.collector is not None
    rows = school.collector.query(
        "SELECT r.kind, r.measured_at, r.received_at, r.payload FROM records r"
        " JOIN agents a ON a.id = r.agent_id WHERE a.slug = ? AND r.kind = ? ORDER BY r.seq", AGENT, kind)
    return [Stored(row[0], row[1], row[2], json.loads(row[3]) if isinstance(row[3], str) else row[3])
            for row in rows]


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchoolNetwork]:
    require_netns()
    require_tool("nft")
    with SchoolNetwork(tmp_path_factory.mktemp("outages"), prefix="ou") as network:
        assert network.agent is not None
        network.agent.start("run")
        # The daemon measures and delivers: one window in the store before any fault.
        wait_until(lambda: [r for r in stored(network, "connectivity") if r.payload.get("up")],
                   DELIVERY_SECONDS, f"a first connectivity window (log: {network.agent.log_path})")
        yield network


@dataclass(frozen=True)
class Fault:
    down: float  # wall clock, just before the network broke
    up: float  # wall clock, just after it was mended


def break_for(school: SchoolNetwork, down: Callable[[], None], up: Callable[[], None]) -> Fault:
    assert school.agent is not None and school.agent.process is not None
    log = school.agent.log_path
    assert school.agent.process.poll() is None, f"the daemon died: {log.read_text()[-2000:]}"
    time.sleep(1.0)  # a clean second first: the last fault's end is behind us
    began = time.time()
    down()
    try:
        time.sleep(OUTAGE_SECONDS)
    finally:
        up()
    return Fault(began, time.time())


def the_outage(school: SchoolNetwork, fault: Fault) -> Stored:
    """The one outage record that overlaps the fault, once delivered."""
    def overlapping() -> list[Stored]:
        return [r for r in stored(school, "outage")
                if r.payload["start_seconds"] < fault.up and r.payload["end_seconds"] > fault.down]

    found = wait_until(overlapping, DELIVERY_SECONDS, "the outage record in the collector's store")
    time.sleep(1.5)  # a second record for the same fault (flapping) would arrive by now
    found = overlapping()
    assert len(found) == 1, [r.payload for r in found]
    return found[0]


def assert_times(outage: Stored, fault: Fault, kind: str) -> None:
    payload = outage.payload
    assert payload["outage_kind"] == kind, payload
    assert abs(payload["start_seconds"] - fault.down) <= TOLERANCE_SECONDS, (payload, fault)
    assert abs(payload["end_seconds"] - fault.up) <= TOLERANCE_SECONDS, (payload, fault)
    assert payload["duration_seconds"] == pytest.approx(
        payload["end_seconds"] - payload["start_seconds"], abs=0.5), payload
    assert not payload["interrupted"]
    # The record's clock is the outage's end, kept as measured, not when it arrived.
    assert outage.measured_at == pytest.approx(payload["end_seconds"], abs=0.5)


def windows_ending_inside(school: SchoolNetwork, outage: Stored, declared_after: float) -> list[Stored]:
    """The windows that ended inside the outage once it had been declared (``outage_after``
    failed rounds, each known a timeout after it was sent: ``declared_after`` seconds past
    its start) and before it was over."""
    start, end = outage.payload["start_seconds"], outage.payload["end_seconds"]
    return [r for r in stored(school, "connectivity")
            if start + declared_after < r.measured_at + r.payload["window_seconds"] < end - 0.3]


# Echo: 3 rounds 0.1 s apart, the last one known lost 0.5 s after it was sent; DNS: 3 rounds
# 0.5 s apart, each waiting 0.5 s for an answer. Plus slack for a busy machine.
ECHO_DECLARED_AFTER = 3 * 0.1 + 0.5 + 0.3
DNS_DECLARED_AFTER = 3 * 0.5 + 0.5


def assert_delivered_late(school: SchoolNetwork, outage: Stored, fault: Fault, kind: str) -> None:
    """Cut off from the collector during the outage: the outage record and the windows that
    ended inside it arrive after the link came back, with the times they were measured."""
    assert outage.received_at >= fault.up, (outage.received_at, fault)
    # The outage lasts > 6 s: a 4 s window ends inside it after it was declared.
    during = windows_ending_inside(school, outage, ECHO_DECLARED_AFTER)
    assert during, "no window ended inside the outage"
    for window in during:
        assert window.received_at >= fault.up, "a window from the outage arrived while the line was down"
        assert window.payload["up"] is False and window.payload["outage_kind"] == kind, window.payload
        assert window.payload["outage_start_seconds"] == pytest.approx(outage.payload["start_seconds"])


def test_an_isp_outage_is_recorded_with_its_times_and_delivered_after(school: SchoolNetwork) -> None:
    fault = break_for(school, school.isp_down, school.isp_up)
    outage = the_outage(school, fault)
    assert_times(outage, fault, "isp")
    assert_delivered_late(school, outage, fault, "isp")


def test_a_lan_outage_is_recorded_with_its_times_and_delivered_after(school: SchoolNetwork) -> None:
    fault = break_for(school, school.lan_down, school.lan_up)
    outage = the_outage(school, fault)
    assert_times(outage, fault, "lan")
    assert_delivered_late(school, outage, fault, "lan")


def test_dns_dropped_at_the_router_is_a_dns_outage(school: SchoolNetwork) -> None:
    fault = break_for(school, school.dns_drop, school.dns_allow)
    outage = the_outage(school, fault)
    assert_times(outage, fault, "dns")
    # Echo went on all along: the line was there, DNS was not. (At most one echo of a window
    # may come back after its timeout: on a 2-core machine running the whole suite, one did.)
    overlapping = [r for r in stored(school, "connectivity")
                   if r.measured_at < fault.up and r.measured_at + r.payload["window_seconds"] > fault.down]
    for window in overlapping:
        assert all(target["received"] >= target["sent"] - 1 and target["received"] > 0
                   for target in window.payload["targets"]), window.payload["targets"]
    # (A window may or may not end in the ~4 s between the declaration and the end.)
    for window in windows_ending_inside(school, outage, DNS_DECLARED_AFTER):
        assert window.payload["up"] is False and window.payload["outage_kind"] == "dns", window.payload


def test_a_target_that_does_not_resolve_stops_run_at_start_up(school: SchoolNetwork) -> None:
    agent = school.enroll_agent("misconfigured", targets=[UNRESOLVABLE])
    result = agent.cli("run", check=False, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "probes.connectivity.targets" in lines[0] and UNRESOLVABLE in lines[0], lines[0]
