"""The default gateway from the kernel's routing tables: fixture tables, then a real namespace.

The fixtures are /proc/net/route and /proc/net/ipv6_route in the kernel's format: the
container's own tables as captured (Linux 6.18), and tables composed in that format for the
cases a school meets (two uplinks, PPPoE, a router found by router advertisement). The last
test reads what the kernel prints inside a namespace with default routes of its own.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.netns import ShapedLink, require_netns

from agent.routes import default_gateway

V4_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
PAD = " " * 60  # the kernel pads the lines of /proc/net/route with spaces (to 127 characters)

# A container: one default route via 192.0.2.1 and its link's own route.
V4_ONE_DEFAULT = (f"{V4_HEADER}{PAD}\n"
                  f"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0{PAD}\n"
                  f"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0{PAD}\n")

# A laptop-like agent on Wi-Fi (metric 600) and wired (metric 100): the wired one wins,
# whichever comes first. Also a down route (flags 0) and a reject route with metric 0.
V4_TWO_DEFAULTS = (f"{V4_HEADER}\n"
                   "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
                   "eth0\t00000000\t010010AC\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
                   "eth1\t00000000\t010011AC\t0002\t0\t0\t50\t00000000\t0\t0\t0\n"
                   "lo\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0\n"
                   "eth0\t000010AC\t00000000\t0001\t0\t0\t100\t0000FFFF\t0\t0\t0\n")

# PPPoE: the default route goes out through the point-to-point link, with no gateway; a
# backup default route with a higher metric has one, but traffic does not take it.
V4_POINT_TO_POINT = (f"{V4_HEADER}\n"
                     "ppp0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"
                     "eth0\t00000000\t0101A8C0\t0003\t0\t0\t1000\t00000000\t0\t0\t0\n")

V4_NO_DEFAULT = (f"{V4_HEADER}\n"
                 "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")



def v6_line(destination: str, prefix: int, next_hop: str, metric: int, flags: int, device: str) -> str:
    """One line of /proc/net/ipv6_route, in the kernel's own format (net/ipv6/route.c:
    "%pi6 %02x %pi6 %02x %pi6 %08x %08x %08x %08x %8s"), the source prefix left empty."""
    def hex_address(text: str) -> str:
        return ipaddress.IPv6Address(text).packed.hex()

    return (f"{hex_address(destination)} {prefix:02x} {hex_address('::')} 00 {hex_address(next_hop)} "
            f"{metric:08x} {1:08x} {0:08x} {flags:08x} {device:>8}\n")


# The container's IPv6 table as captured (less two host routes): a default via fd00::1, and
# the kernel's own "unreachable" default on lo (flags 00200200: RTF_REJECT), highest metric.
V6_CONTAINER = "".join([
    v6_line("fd00::", 64, "::", 0x100, 0x00000001, "eth0"),
    v6_line("fe80::", 64, "::", 0x100, 0x00000001, "eth0"),
    v6_line("::", 0, "fd00::1", 0x400, 0x00000003, "eth0"),
    v6_line("::1", 128, "::", 0, 0x80200001, "lo"),
    v6_line("ff00::", 8, "::", 0x100, 0x00000001, "eth0"),
    v6_line("::", 0, "::", 0xFFFFFFFF, 0x00200200, "lo"),
])

# A school router announcing itself by router advertisement: the default route's next hop
# is its link-local address (flags 00450003: RTF_UP, RTF_GATEWAY, RTF_ADDRCONF, RTF_EXPIRES),
# metric 1024, listed after a second router on the Wi-Fi with a higher metric.
V6_ROUTER_ADVERTISEMENT = "".join([
    v6_line("::", 0, "fe80::2", 0x800, 0x00450003, "wlan0"),
    v6_line("::", 0, "fe80::1", 0x400, 0x00450003, "eth0"),
    v6_line("fe80::", 64, "::", 0x100, 0x00000001, "eth0"),
    v6_line("::", 0, "::", 0xFFFFFFFF, 0x00200200, "lo"),
])


def table(tmp_path: Path, text: str, name: str = "route") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "expected"), [
    (V4_ONE_DEFAULT, "192.0.2.1"),
    (V4_TWO_DEFAULTS, "172.16.0.1"),
    (V4_POINT_TO_POINT, None),
    (V4_NO_DEFAULT, None),
    (V4_HEADER + "\n", None),
    ("", None),
    (V4_HEADER + "\neth0\tnot-hex\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
     + V4_ONE_DEFAULT.split("\n", 1)[1], "192.0.2.1"),
], ids=["one", "lowest-metric", "point-to-point", "none", "header-only", "empty", "bad-line-skipped"])
def test_ipv4_gateway_from_a_captured_table(tmp_path: Path, text: str, expected: str | None) -> None:
    assert default_gateway(socket.AF_INET, route_table=table(tmp_path, text)) == expected


@pytest.mark.parametrize(("text", "expected"), [
    (V6_CONTAINER, "fd00::1"),
    (V6_ROUTER_ADVERTISEMENT, "fe80::1%eth0"),
    (V6_CONTAINER.splitlines(keepends=True)[-1], None),  # only the kernel's unreachable default
    ("", None),
], ids=["global-next-hop", "link-local-next-hop", "reject-only", "empty"])
def test_ipv6_gateway_from_a_captured_table(tmp_path: Path, text: str, expected: str | None) -> None:
    path = table(tmp_path, text, "ipv6_route")
    assert default_gateway(socket.AF_INET6, ipv6_route_table=path) == expected


def test_a_missing_table_means_no_gateway(tmp_path: Path) -> None:
    """Not Linux, or /proc not mounted: no gateway is known, and the probe goes on without."""
    assert default_gateway(socket.AF_INET, route_table=tmp_path / "absent") is None
    assert default_gateway(socket.AF_INET6, ipv6_route_table=tmp_path / "absent") is None


def test_other_families_are_refused() -> None:
    with pytest.raises(ValueError, match="neither AF_INET nor AF_INET6"):
        default_gateway(socket.AF_UNIX)


def test_the_gateway_of_a_real_namespace() -> None:
    """What the kernel itself prints, read where the agent reads it: inside the namespace."""
    require_netns()
    with ShapedLink(prefix="sr") as link:
        client, interface = link.namespaces["client"], link.interfaces["client"]
        route = ["ip", "-n", client, "route", "add", "default", "via"]
        for argv in ([*route, link.server_ip, "metric", "200"],
                     ["ip", "-n", client, "-6", "route", "add", "default", "via", "fe80::1", "dev",
                      interface, "metric", "512"],
                     ["ip", "-n", client, "-6", "route", "add", "default", "via", "fe80::2", "dev",
                      interface, "metric", "2048"]):
            subprocess.run(argv, check=True, capture_output=True, timeout=30)
        script = ("import socket; from agent.routes import default_gateway; "
                  "print(default_gateway(socket.AF_INET), default_gateway(socket.AF_INET6))")
        shown = link.run("client", sys.executable, "-c", script, check=True).stdout.split()
        assert shown == [link.server_ip, f"fe80::1%{interface}"]
        # Its peer has no default route at all.
        shown = link.run("server", sys.executable, "-c", script, check=True).stdout.split()
        assert shown == ["None", "None"]
