"""Where the trouble is, and latency under load, across the school network in namespaces.

The topology itself first (routes both ways, TTL expiry at each router, the school's
resolver, the faults doing what they say), checked with a raw echo of the test's own, not
with the agent. Then the agent's ``measure connectivity``: random loss put at the gateway,
at the provider's first router or beyond it is blamed on "lan", "access" or "beyond"
(none anywhere: "none"); TTL-limited probes are answered by the gateway at TTL 1 and the
provider's router at TTL 2; and on a 10 Mbit/s line with a 300 ms queue, a bulk download
raises the median round trip to an internet target by most of that queue.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.netns import require_netns, wait_listening
from support.school_network import (
    DNS_NAMES,
    GATEWAY_LAN_IP,
    HTTP_URL,
    ISP_ACCESS_IP,
    SERVICES_IP,
    TARGETS,
    UNRESOLVABLE,
    SchoolNetwork,
)
from support.tools import require_tool

pytestmark = pytest.mark.e2e

IPERF3_PORT = 5201
LOSS = 0.3  # well above the 2 % threshold, and plenty of probes to see it at every hop


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchoolNetwork]:
    require_netns()
    require_tool("nft")
    with SchoolNetwork(tmp_path_factory.mktemp("segments"), prefix="sg", collector=False) as network:
        yield network


@pytest.fixture
def clean(school: SchoolNetwork) -> Iterator[SchoolNetwork]:
    """The network as built, and put back so after the test whatever it broke."""
    yield school
    school.no_loss()
    school.unshape()
    school.isp_up()
    school.lan_up()
    school.dns_allow()


def resolve(school: SchoolNetwork, name: str) -> str:
    """What the school's own resolver (its resolv.conf) says about ``name``."""
    result = school.python("school", (
        "import socket, sys\n"
        f"try: print(socket.getaddrinfo({name!r}, None, type=socket.SOCK_DGRAM)[0][4][0])\n"
        "except socket.gaierror as exc: print('error', exc.errno)"))
    return result.stdout.strip() or result.stderr.strip()


def http_status(school: SchoolNetwork) -> str:
    result = school.python("school", (
        "import urllib.request\n"
        f"try: print(urllib.request.urlopen({HTTP_URL!r}, timeout=1).status)\n"
        "except OSError as exc: print('error')"))
    return result.stdout.strip() or result.stderr.strip()


def test_the_school_network_routes_resolves_and_breaks_as_told(clean: SchoolNetwork) -> None:
    school = clean
    for address in (GATEWAY_LAN_IP, ISP_ACCESS_IP, *TARGETS, SERVICES_IP):
        assert school.echo("school", address) == (address, "reply")
    assert school.echo("school", TARGETS[0], ttl=1) == (GATEWAY_LAN_IP, "exceeded")
    assert school.echo("school", TARGETS[0], ttl=2) == (ISP_ACCESS_IP, "exceeded")
    assert resolve(school, DNS_NAMES[0]) == SERVICES_IP
    assert resolve(school, UNRESOLVABLE) == "error -2", "NXDOMAIN: EAI_NONAME"
    assert http_status(school) == "200"

    school.isp_down()
    assert school.echo("school", GATEWAY_LAN_IP) == (GATEWAY_LAN_IP, "reply"), "the gateway still answers"
    assert school.echo("school", TARGETS[0], timeout=0.5) is None
    school.isp_down()  # idempotent
    school.isp_up()
    school.isp_up()
    assert school.echo("school", TARGETS[0]) == (TARGETS[0], "reply")

    school.lan_down()
    assert school.echo("school", GATEWAY_LAN_IP, timeout=0.5) is None
    school.lan_up()
    assert school.echo("school", TARGETS[0]) == (TARGETS[0], "reply")

    school.dns_drop()
    school.dns_drop()
    assert resolve(school, DNS_NAMES[0]) == "error -3", "no answer: EAI_AGAIN"
    assert school.echo("school", TARGETS[0]) == (TARGETS[0], "reply"), "only DNS is dropped"
    assert http_status(school) == "200"
    school.dns_allow()
    school.dns_allow()
    assert resolve(school, DNS_NAMES[0]) == SERVICES_IP


def measure(school: SchoolNetwork, window: float, **connectivity: Any) -> dict[str, Any]:
    school.configure(window=f"{window:g}s", **connectivity)
    result = school.measure()
    assert result.returncode == 0, f"{result.document.get('error')} {result.stderr[-2000:]}"
    # The probes are spread over the window asked for, not fired in one burst.
    assert result.document["window_seconds"] == pytest.approx(window, rel=0.1), result.document
    return result.document


def lossy_window(school: SchoolNetwork) -> dict[str, Any]:
    # 4 s at 20 ms: ~175 probes per target and per hop, so a 30 % loss is seen at every one
    # of them (the "access" rule wants the hop's loss at least half the worst target's).
    return measure(school, 4, ping_interval="0.02s", hop_interval="0.02s", hops=1,
                   dns_interval="1s", http_interval="2s")


@pytest.mark.parametrize(("where", "segment"), [(None, "none"), ("gateway", "lan"), ("isp", "access"),
                                                ("internet", "beyond")])
def test_loss_is_blamed_on_the_segment_where_it_happens(clean: SchoolNetwork, where: Any,
                                                        segment: str) -> None:
    if where is not None:
        clean.loss(where, LOSS)
    document = lossy_window(clean)
    reason = document["segment_reason"]
    assert document["segment"] == segment, reason
    gateway_loss = document["gateway"]["loss_ratio"]
    hop_loss = {hop["ttl"]: hop["loss_ratio"] for hop in document["hops"]}
    target_loss = [target["loss_ratio"] for target in document["targets"]]
    assert all(target["sent"] >= 100 for target in document["targets"]), document["targets"]
    if where is None:
        assert gateway_loss == 0 and max(target_loss) < 0.02, reason
        # Beside the echoes, in the same window: the resolvers and the school's web service.
        assert all(dns["queries"] >= 2 and dns["answered"] == dns["queries"] for dns in document["dns"]), (
            document["dns"])
        (http,) = document["http"]
        assert http["requests"] >= 1 and http["succeeded"] == http["requests"] and http["status"] == 200, http
        assert 0 < http["ttfb_p50_seconds"] < 0.5, http
    if where == "gateway":
        assert 0.15 < gateway_loss < 0.45, reason
    if where in ("isp", "internet"):
        assert gateway_loss == 0 and hop_loss[1] == 0, reason
        assert all(0.15 < loss < 0.45 for loss in target_loss), reason
    if where == "isp":
        assert 0.15 < hop_loss[2] < 0.45, reason
    if where == "internet":
        assert hop_loss[2] == 0, reason


def test_ttl_limited_probes_answer_from_the_gateway_then_the_providers_router(clean: SchoolNetwork) -> None:
    document = measure(clean, 2, hops=1, hop_interval="0.1s")
    hops = {hop["ttl"]: hop for hop in document["hops"]}
    assert sorted(hops) == [1, 2]
    assert hops[1]["address"] == GATEWAY_LAN_IP and hops[1]["segment"] == "lan"
    assert hops[2]["address"] == ISP_ACCESS_IP and hops[2]["segment"] == "access"
    for hop in hops.values():
        assert hop["sent"] >= 10 and hop["received"] == hop["sent"], hop
    assert document["gateway"]["address"] == GATEWAY_LAN_IP, "gateway auto: the default route's"


def test_a_bulk_download_on_a_bloated_line_raises_the_latency(clean: SchoolNetwork, tmp_path: Path) -> None:
    require_tool("iperf3")
    school = clean
    rate_mbit, queue_seconds = 10, 0.3
    school.shape(rate_mbit, queue_seconds)
    window = {"ping_interval": "0.05s", "timeout": "1s", "targets": [TARGETS[0]], "hops": 0,
              "dns_servers": [], "http_urls": []}
    idle = measure(school, 3, **window)["targets"][0]
    server = school.popen("internet", "iperf3", "-s", "-B", SERVICES_IP, "-p", str(IPERF3_PORT),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(server, IPERF3_PORT)
    # A download (-R: the server sends) fills the provider's queue towards the school. With
    # CUBIC, the loss-based congestion control most senders use: this machine's default,
    # BBR, keeps the queue nearly empty by design (measured: +15 ms).
    download = school.popen("school", "iperf3", "-c", SERVICES_IP, "-p", str(IPERF3_PORT), "-R",
                            "-C", "cubic", "-t", "8", stdout=(tmp_path / "iperf3.log").open("w"),
                            stderr=subprocess.STDOUT)
    try:
        time.sleep(1.5)  # out of slow start; the queue grows with CUBIC's window from here
        loaded = measure(school, 3, **window)["targets"][0]
    finally:
        download.kill()
        server.kill()
    idle_p50, loaded_p50 = idle["latency_p50_seconds"], loaded["latency_p50_seconds"]
    assert idle_p50 < 0.01, idle
    assert loaded_p50 > idle_p50 + 0.1, f"idle {idle_p50 * 1000:.1f} ms, loaded {loaded_p50 * 1000:.1f} ms"
    # No more than the queue can hold (plus a bucket's worth): a longer wait is not the line's.
    assert loaded_p50 < idle_p50 + queue_seconds + 0.05, loaded
