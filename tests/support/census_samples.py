"""What the census sources read, built byte for byte from the formats' definitions.

- ``proc_net_arp``: /proc/net/arp as ``arp_seq_show`` (net/ipv4/arp.c) prints it: the
  header ``"IP address       HW type     Flags       HW address            Mask     Device\\n"``
  and per entry ``"%-16s 0x%-10x0x%-10x%-17s     %-8s %s\\n"``.
- ``neighbour_dump``: an RTM_GETNEIGH answer as rtnetlink sends it (linux/netlink.h,
  linux/rtnetlink.h, linux/neighbour.h): RTM_NEWNEIGH messages (nlmsghdr, ndmsg, NDA_DST,
  NDA_LLADDR, NDA_CACHEINFO) in datagrams, then NLMSG_DONE.
- Frames as a capture on the LAN shows them: an ARP request (RFC 826), a DHCPDISCOVER
  (RFC 2131/2132, with the options a phone sends: client id, host name, parameter list), mDNS
  announcements over IPv4 and IPv6 (RFC 6762) naming the device, and frames that must not
  count.

Every identity here is made up for tests but shaped like the real thing: locally
administered MACs (02:…), addresses in 10.203.x and fd00:203::, device names like a
pupil's phone. The privacy test looks for each of them in what the agent sends.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_BROADCAST = b"\xff" * 6


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def mac_text(address: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in address)


# ---- /proc/net/arp ------------------------------------------------------------------------

ARP_HEADER = "IP address       HW type     Flags       HW address            Mask     Device\n"


@dataclass(frozen=True)
class ArpEntry:
    ip: str
    hw_address: bytes
    flags: int = 0x2  # ATF_COM
    device: str = "eth0"
    hw_type: int = 1  # ARPHRD_ETHER


def proc_net_arp(entries: list[ArpEntry]) -> str:
    lines = [ARP_HEADER]
    for entry in entries:
        hbuffer = mac_text(entry.hw_address)
        # The kernel's own seq_printf format, character for character.
        lines.append("%-16s 0x%-10x0x%-10x%-17s     %-8s %s\n"  # noqa: UP031
                     % (entry.ip, entry.hw_type, entry.flags, hbuffer, "*", entry.device))
    return "".join(lines)


# A school's table as a Pi on eth0 sees it (with a Docker bridge beside it).
ARP_ENTRIES = [
    ArpEntry("10.203.170.1", mac("02:5e:10:00:00:01")),  # the gateway
    ArpEntry("10.203.170.23", mac("02:5e:10:00:00:23")),  # a teacher's laptop
    ArpEntry("10.203.170.44", mac("02:5e:10:00:00:44")),  # a pupil's phone, also on IPv6
    ArpEntry("10.203.170.45", mac("00:00:00:00:00:00"), flags=0x0),  # INCOMPLETE: never answered
    ArpEntry("10.203.170.46", mac("02:5e:10:00:00:46"), flags=0x0),  # FAILED (kept its old address)
    ArpEntry("10.203.170.50", mac("02:5e:10:00:00:50"), flags=0x6),  # static (ip neigh ... permanent)
    ArpEntry("172.17.0.2", mac("02:42:ac:11:00:02"), device="docker0"),  # a container on the Pi
]
ARP_COUNTED_ON_ALL = {mac("02:5e:10:00:00:01"), mac("02:5e:10:00:00:23"), mac("02:5e:10:00:00:44"),
                      mac("02:42:ac:11:00:02")}
ARP_COUNTED_ON_ETH0 = ARP_COUNTED_ON_ALL - {mac("02:42:ac:11:00:02")}


# ---- an RTM_GETNEIGH dump -----------------------------------------------------------------

RTM_NEWNEIGH, NLMSG_DONE, NLMSG_ERROR = 28, 3, 2
NLM_F_MULTI = 0x2
NDA_DST, NDA_LLADDR, NDA_CACHEINFO, NDA_PROBES = 1, 2, 3, 4
NUD = {"INCOMPLETE": 0x01, "REACHABLE": 0x02, "STALE": 0x04, "DELAY": 0x08, "PROBE": 0x10,
       "FAILED": 0x20, "NOARP": 0x40, "PERMANENT": 0x80}
NTF_ROUTER = 0x80


def _attribute(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\x00" * (-length % 4)


def _message(kind: int, payload: bytes, seq: int, flags: int = NLM_F_MULTI, pid: int = 4242) -> bytes:
    length = 16 + len(payload)
    return struct.pack("=IHHII", length, kind, flags, seq, pid) + payload + b"\x00" * (-length % 4)


@dataclass(frozen=True)
class Neighbour:
    ip: str
    lladdr: bytes | None
    state: str
    ifindex: int = 2
    flags: int = 0


def newneigh(entry: Neighbour, seq: int) -> bytes:
    """struct ndmsg {u8 family; u8 pad1; u16 pad2; s32 ifindex; u16 state; u8 flags; u8 type}."""
    address = ipaddress.ip_address(entry.ip)
    family = 10 if address.version == 6 else 2
    body = struct.pack("=BBHiHBB", family, 0, 0, entry.ifindex, NUD[entry.state], entry.flags, 1)
    body += _attribute(NDA_DST, address.packed)
    if entry.lladdr is not None:
        body += _attribute(NDA_LLADDR, entry.lladdr)
    # struct nda_cacheinfo {u32 confirmed, used, updated, refcnt} and NDA_PROBES: the kernel
    # sends both; a parser must step over them.
    body += _attribute(NDA_CACHEINFO, struct.pack("=IIII", 1200, 1200, 800, 1))
    body += _attribute(NDA_PROBES, struct.pack("=I", 0))
    return _message(RTM_NEWNEIGH, body, seq)


def neighbour_dump(entries: list[Neighbour], seq: int, per_datagram: int = 3, error: int = 0) -> list[bytes]:
    """The datagrams of a dump: a few messages each (as the kernel packs them), then DONE."""
    messages = [newneigh(entry, seq) for entry in entries]
    datagrams = [b"".join(messages[i:i + per_datagram]) for i in range(0, len(messages), per_datagram)]
    datagrams.append(_message(NLMSG_DONE, struct.pack("=i", error), seq))
    return datagrams


# ifindex 1 is lo, 2 eth0, 3 docker0.
INTERFACES = [(1, "lo"), (2, "eth0"), (3, "docker0")]
NEIGHBOURS = [
    Neighbour("fe80::5e:10ff:fe00:1", mac("02:5e:10:00:00:01"), "STALE", flags=NTF_ROUTER),  # gateway
    Neighbour("fd00:203:170::44", mac("02:5e:10:00:00:44"), "REACHABLE"),  # the phone, also on IPv4
    Neighbour("fd00:203:170::61", mac("02:5e:10:00:00:61"), "DELAY"),  # an IPv6-only tablet
    Neighbour("fd00:203:170::62", mac("02:5e:10:00:00:62"), "PROBE"),
    Neighbour("fd00:203:170::63", None, "INCOMPLETE"),
    Neighbour("fd00:203:170::64", mac("02:5e:10:00:00:64"), "FAILED"),
    Neighbour("fd00:203:170::65", mac("02:5e:10:00:00:65"), "PERMANENT"),
    Neighbour("ff02::1", mac("33:33:00:00:00:01"), "NOARP"),  # a multicast group
    Neighbour("::1", b"\x00" * 6, "NOARP", ifindex=1),
    Neighbour("fd00:203:171::2", mac("02:42:ac:11:00:03"), "REACHABLE", ifindex=3),
]
NEIGHBOURS_COUNTED_ON_ETH0 = {mac("02:5e:10:00:00:01"), mac("02:5e:10:00:00:44"),
                              mac("02:5e:10:00:00:61"), mac("02:5e:10:00:00:62")}
NEIGHBOURS_COUNTED_ON_ALL = NEIGHBOURS_COUNTED_ON_ETH0 | {mac("02:42:ac:11:00:03")}


# ---- frames -------------------------------------------------------------------------------

def ethernet(destination: bytes, source: bytes, ethertype: int, payload: bytes) -> bytes:
    frame = destination + source + struct.pack("!H", ethertype) + payload
    return frame + b"\x00" * max(0, 60 - len(frame))  # padded to the 60-byte minimum


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(source: str, destination: str, protocol: int, payload: bytes, ttl: int = 64) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1C46, 0x4000, ttl, protocol, 0,
                         ipaddress.IPv4Address(source).packed, ipaddress.IPv4Address(destination).packed)
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def ipv6(source: str, destination: str, next_header: int, payload: bytes, hop_limit: int = 255) -> bytes:
    return (struct.pack("!IHBB", 0x60000000, len(payload), next_header, hop_limit)
            + ipaddress.IPv6Address(source).packed + ipaddress.IPv6Address(destination).packed + payload)


def udp(source_port: int, destination_port: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload


def arp_request(sender_mac: bytes, sender_ip: str, target_ip: str) -> bytes:
    """Who has target_ip? Tell sender_ip (RFC 826: htype 1, ptype 0x0800, op 1)."""
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, sender_mac,
                       ipaddress.IPv4Address(sender_ip).packed, b"\x00" * 6,
                       ipaddress.IPv4Address(target_ip).packed)
    return ethernet(ETH_BROADCAST, sender_mac, 0x0806, body)


def _bootp(op: int, client_mac: bytes, options: bytes, your_ip: str = "0.0.0.0") -> bytes:
    fixed = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, 1, 6, 0, 0x3903F326, 0, 0x8000,
                        b"\x00" * 4, ipaddress.IPv4Address(your_ip).packed, b"\x00" * 4, b"\x00" * 4,
                        client_mac + b"\x00" * 10, b"", b"")
    return fixed + b"\x63\x82\x53\x63" + options + b"\xff"


def dhcp_discover(client_mac: bytes, host_name: str) -> bytes:
    options = (b"\x35\x01\x01"  # DHCP message type: DISCOVER
               + b"\x3d\x07\x01" + client_mac  # client identifier: type 1 + MAC
               + b"\x0c" + bytes([len(host_name)]) + host_name.encode()  # host name
               + b"\x37\x04\x01\x03\x06\x0f")  # parameter request list
    payload = udp(68, 67, _bootp(1, client_mac, options))
    return ethernet(ETH_BROADCAST, client_mac, 0x0800, ipv4("0.0.0.0", "255.255.255.255", 17, payload))


def dhcp_offer(server_mac: bytes, client_mac: bytes, offered_ip: str) -> bytes:
    """A server's answer (67 -> 68): it names the client, but the server sent it."""
    options = b"\x35\x01\x02\x36\x04\x0a\xcb\xaa\x01"
    payload = udp(67, 68, _bootp(2, client_mac, options, your_ip=offered_ip))
    return ethernet(ETH_BROADCAST, server_mac, 0x0800, ipv4("10.203.170.1", "255.255.255.255", 17, payload))


def _dns_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\x00"


def mdns_announcement(host_name: str, address: str) -> bytes:
    """An unsolicited response (RFC 6762 §8.3): host_name.local A/AAAA address, cache-flush."""
    packed = ipaddress.ip_address(address).packed
    record_type = 1 if len(packed) == 4 else 28
    answer = (_dns_name(host_name + ".local") + struct.pack("!HHIH", record_type, 0x8001, 120, len(packed))
              + packed)
    return struct.pack("!HHHHHH", 0, 0x8400, 0, 1, 0, 0) + answer


def mdns_v4(source_mac: bytes, source_ip: str, host_name: str) -> bytes:
    payload = udp(5353, 5353, mdns_announcement(host_name, source_ip))
    packet = ipv4(source_ip, "224.0.0.251", 17, payload, 255)
    return ethernet(mac("01:00:5e:00:00:fb"), source_mac, 0x0800, packet)


def mdns_v6(source_mac: bytes, source_ip: str, host_name: str) -> bytes:
    payload = udp(5353, 5353, mdns_announcement(host_name, source_ip))
    return ethernet(mac("33:33:00:00:00:fb"), source_mac, 0x86DD, ipv6(source_ip, "ff02::fb", 17, payload))


def tcp_segment(source_mac: bytes, destination_mac: bytes, source_ip: str, destination_ip: str) -> bytes:
    """A TCP SYN to port 5353 (mDNS's port, on TCP: not mDNS)."""
    segment = struct.pack("!HHIIBBHHH", 50514, 5353, 1, 0, 0x50, 0x02, 64240, 0, 0)
    return ethernet(destination_mac, source_mac, 0x0800, ipv4(source_ip, destination_ip, 6, segment))


def dns_query(source_mac: bytes, destination_mac: bytes, source_ip: str) -> bytes:
    """Unicast DNS to the router: UDP, but neither DHCP nor mDNS."""
    query = (struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + _dns_name("school.test")
             + b"\x00\x01\x00\x01")
    payload = udp(40000, 53, query)
    return ethernet(destination_mac, source_mac, 0x0800, ipv4(source_ip, "10.203.170.1", 17, payload))


# The devices that announce themselves, and what each frame reveals about its owner.
PHONE = mac("02:5e:10:00:01:01")  # ARP
LAPTOP = mac("02:5e:10:00:01:02")  # DHCP (its chaddr)
PRINTER = mac("02:5e:10:00:01:03")  # mDNS over IPv4
TABLET = mac("02:5e:10:00:01:04")  # mDNS over IPv6
ROUTER = mac("02:5e:10:00:01:fe")
AGENT = mac("02:5e:10:00:01:a0")  # the agent's own interface
SENDERS = {PHONE, LAPTOP, PRINTER, TABLET}
HOST_NAMES = ("lisa-ipad", "Lisas-iPhone", "HP-LaserJet-Room-12", "Daans-Galaxy-Tab")
CLIENT_IPS = ("10.203.170.101", "10.203.170.102", "10.203.170.103", "fd00:203:170::104",
              "10.203.170.105")

COUNTED_FRAMES = [
    arp_request(PHONE, "10.203.170.101", "10.203.170.1"),
    dhcp_discover(LAPTOP, HOST_NAMES[0]),
    mdns_v4(PRINTER, "10.203.170.103", HOST_NAMES[2]),
    mdns_v6(TABLET, "fd00:203:170::104", HOST_NAMES[3]),
]
# The filter passes these (they are ARP and mDNS), the parser must not count them.
PASSED_NOT_COUNTED = [
    mdns_v4(ETH_BROADCAST, "10.203.170.105", HOST_NAMES[1]),  # a broadcast source is no device
    arp_request(AGENT, "10.203.170.2", "10.203.170.1"),  # the agent itself
]
# Neither the filter nor the parser lets these through.
FILTERED_FRAMES = [
    tcp_segment(mac("02:5e:10:00:01:05"), AGENT, "10.203.170.105", "10.203.170.2"),
    dns_query(mac("02:5e:10:00:01:06"), ROUTER, "10.203.170.106"),
    dhcp_offer(ROUTER, mac("02:5e:10:00:01:07"), "10.203.170.107"),
]
