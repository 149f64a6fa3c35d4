"""Classic BPF socket filters (linux/filter.h): the census's packet sockets drop every
frame they do not count in the kernel, so Python never sees the rest of the LAN's traffic."""

from __future__ import annotations

import array
import socket
import struct

SO_ATTACH_FILTER = 26  # asm-generic/socket.h
_INSTRUCTION = struct.Struct("=HBBI")  # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k;}


def instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    """One struct sock_filter, in host byte order."""
    return _INSTRUCTION.pack(code, jt, jf, k)


def attach(sock: socket.socket, program: bytes) -> None:
    """Attach ``program`` (packed instructions) to ``sock``; OSError when the kernel refuses.

    struct sock_fprog {unsigned short len; struct sock_filter *filter;}: the kernel copies
    the program during the call, so the array (not ctypes: no extra import) need live only
    until it returns."""
    buffer = array.array("B", program)
    address, _ = buffer.buffer_info()
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                    struct.pack("HP", len(program) // _INSTRUCTION.size, address))
