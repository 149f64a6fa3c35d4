"""Netlink framing (linux/netlink.h), shared by the agent's two netlink clients: nl80211
for Wi-Fi and rtnetlink's neighbour dump for the census. ``struct nlmsghdr`` {u32 len; u16
type; u16 flags; u32 seq; u32 pid} and ``struct nlattr`` {u16 len; u16 type}, each padded
to 4 bytes (NLMSG_ALIGN, NLA_ALIGN), in host byte order. Hand-written with struct: pyroute2
would cost the agent 8.5 MB of resident memory.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF

_NLMSGHDR = struct.Struct("=IHHII")
_NLATTR = struct.Struct("=HH")


class MalformedMessage(ValueError):
    """Bytes that are not the netlink messages the headers describe (a truncated header,
    a length running past the data)."""



def align(length: int) -> int:
    """NLMSG_ALIGN / NLA_ALIGN: lengths rounded up to 4 bytes."""
    return (length + 3) & ~3


@dataclass(frozen=True)
class Message:
    """One netlink message: its header fields and the bytes after the header."""

    type: int
    flags: int
    seq: int
    port: int
    payload: bytes


def parse_messages(data: bytes) -> list[Message]:
    """The messages of one datagram (the kernel packs several into one recv())."""
    messages = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, flags, seq, port = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            raise MalformedMessage(f"a netlink message at byte {offset} claims {length} bytes; "
                                   f"{len(data) - offset} are left")
        messages.append(Message(kind, flags, seq, port, bytes(data[offset + _NLMSGHDR.size:offset + length])))
        offset += align(length)
    if offset < len(data) and any(data[offset:]):
        raise MalformedMessage(f"{len(data) - offset} stray bytes after the last netlink message")
    return messages


@dataclass(frozen=True)
class Attribute:
    type: int  # with the flag bits masked off
    nested: bool  # NLA_F_NESTED was set (the kernel does not always set it on nests)
    payload: bytes


def attributes(data: bytes) -> list[Attribute]:
    """A run of attributes, each padded to 4 bytes; repeated types are all kept (the
    members of a nested list carry their index as type)."""
    found = []
    offset = 0
    while offset + _NLATTR.size <= len(data):
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < _NLATTR.size or offset + length > len(data):
            raise MalformedMessage(f"an attribute at byte {offset} claims {length} bytes; "
                                   f"{len(data) - offset} are left")
        found.append(Attribute(kind & NLA_TYPE_MASK, bool(kind & NLA_F_NESTED),
                               bytes(data[offset + _NLATTR.size:offset + length])))
        offset += align(length)
    return found


def attribute_map(data: bytes) -> dict[int, bytes]:
    """Attributes by type; the last of a repeated type wins, as libnl's nla_parse does."""
    return {attribute.type: attribute.payload for attribute in attributes(data)}


def encode_message(kind: int, flags: int, seq: int, body: bytes, port: int = 0) -> bytes:
    """One netlink message: its header and ``body``."""
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, port) + body
