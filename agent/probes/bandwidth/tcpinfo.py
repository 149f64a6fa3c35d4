"""What the kernel knows about one TCP connection (Linux ``TCP_INFO``).

Upload goodput must count bytes the server acknowledged, not bytes written into the
socket: the send buffer holds megabytes, and counting them is how speedtest-cli reports
uploads above what the link can carry. ``tcpi_bytes_acked`` (Linux 4.1+) is exact.
"""

from __future__ import annotations

import socket
import struct
import sys
from dataclasses import dataclass

# struct tcp_info (include/uapi/linux/tcp.h): 8 one-byte fields, then 24 u32, then u64s.
_LAYOUT = struct.Struct("=8B24I4Q")
_RTT = 8 + 15  # index of tcpi_rtt (microseconds) in the unpacked tuple
_TOTAL_RETRANS = 8 + 23
_BYTES_ACKED = 8 + 24 + 2
_BYTES_RECEIVED = 8 + 24 + 3
TCP_INFO = getattr(socket, "TCP_INFO", 11)


@dataclass(frozen=True)
class TcpInfo:
    rtt_seconds: float
    total_retransmits: int
    bytes_acked: int
    bytes_received: int


def tcp_info(sock: socket.socket) -> TcpInfo | None:
    """The connection's TCP info, or None where the OS does not offer it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, _LAYOUT.size)
    except OSError:
        return None
    if len(raw) < _LAYOUT.size:  # a kernel older than 4.1 has no byte counters
        return None
    fields = _LAYOUT.unpack(raw)
    return TcpInfo(rtt_seconds=fields[_RTT] / 1e6, total_retransmits=fields[_TOTAL_RETRANS],
                   bytes_acked=fields[_BYTES_ACKED], bytes_received=fields[_BYTES_RECEIVED])
