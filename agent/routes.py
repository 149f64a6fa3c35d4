"""The default route, read from the kernel's routing tables in /proc (Linux): its gateway
and its interface.

The gateway is the school LAN's end: when it answers while the internet targets do not, the
fault is past the school (the provider's side). Reading /proc costs no process and no traffic;
the paths are arguments so tests can hand in captured tables.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path

# linux/route.h
RTF_UP = 0x0001
RTF_GATEWAY = 0x0002
RTF_REJECT = 0x0200


def default_gateway(family: int = socket.AF_INET, route_table: Path = Path("/proc/net/route"),
                    ipv6_route_table: Path = Path("/proc/net/ipv6_route")) -> str | None:
    """The gateway of the default route with the lowest metric, or None when there is none.

    None as well when that route has no gateway (a point-to-point link such as PPP): the
    traffic leaves through it, so another default route's gateway would not be the way out.
    A link-local IPv6 next hop carries its interface (``fe80::1%eth0``), without which it
    cannot be reached. A table that cannot be read (not Linux) means no gateway is known.
    """
    if family == socket.AF_INET:
        return _ipv4_gateway(route_table)
    if family == socket.AF_INET6:
        return _ipv6_gateway(ipv6_route_table)
    raise ValueError(f"address family {family} is neither AF_INET nor AF_INET6")


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def default_route_interface(route_table: Path = Path("/proc/net/route")) -> str | None:
    """The interface of the IPv4 default route with the lowest metric (the machine's way out:
    what the system probe calls the uplink and the census listens on); None when there is none."""
    best = _ipv4_default_route(route_table)
    return None if best is None else best[0]


def _ipv4_gateway(path: Path) -> str | None:
    best = _ipv4_default_route(path)
    return None if best is None else best[1]


def _ipv4_default_route(path: Path) -> tuple[str, str | None] | None:
    """(interface, gateway) of the usable IPv4 default route with the lowest metric.

    /proc/net/route: a header line, then one route per line. An address is the kernel's
    32-bit value (network byte order) printed as a native number: on a little-endian Pi
    0100A8C0 is 192.168.0.1. Packed natively again it gives the address bytes on any CPU."""
    lines = _read_lines(path)
    if not lines:
        return None
    columns = {name: index for index, name in enumerate(lines[0].split())}
    needed = ("Iface", "Destination", "Gateway", "Flags", "Metric", "Mask")
    if any(name not in columns for name in needed):
        return None
    best: tuple[int, str, str | None] | None = None
    for line in lines[1:]:
        fields = line.split()
        try:
            interface, destination, gateway, flags, metric, mask = (
                fields[columns[name]] for name in needed)
            flag_bits = int(flags, 16)
            if int(destination, 16) or int(mask, 16) or not flag_bits & RTF_UP or flag_bits & RTF_REJECT:
                continue
            address = (socket.inet_ntoa(struct.pack("=I", int(gateway, 16)))
                       if flag_bits & RTF_GATEWAY else None)
            candidate = (int(metric), interface, address)
        except (IndexError, ValueError, struct.error):
            continue  # a line we cannot read is not a route we can use
        if best is None or candidate[0] < best[0]:
            best = candidate
    return None if best is None else (best[1], best[2])


def _ipv6_gateway(path: Path) -> str | None:
    """/proc/net/ipv6_route: no header; per line destination, its prefix length, source, its
    prefix length, next hop (32 hex digits each, prefix lengths 2), metric, refcount, use,
    flags (8 hex digits each) and the device."""
    best: tuple[int, str | None] | None = None
    for line in _read_lines(path):
        fields = line.split()
        if len(fields) < 10:
            continue
        destination, prefix, _src, _src_prefix, next_hop, metric, _refs, _use, flags, device = fields[:10]
        try:
            flag_bits = int(flags, 16)
            if int(destination, 16) or int(prefix, 16) or not flag_bits & RTF_UP or flag_bits & RTF_REJECT:
                continue
            address: str | None = None
            if flag_bits & RTF_GATEWAY and int(next_hop, 16):
                hop = ipaddress.IPv6Address(bytes.fromhex(next_hop))
                # A link-local address is only meaningful on its link: say which.
                address = f"{hop}%{device}" if hop.is_link_local else str(hop)
            candidate = (int(metric, 16), address)
        except ValueError:
            continue  # a line we cannot read is not a route we can use
        if best is None or candidate[0] < best[0]:
            best = candidate
    return None if best is None else best[1]
