"""When a record was measured, with what is needed to repair a wrong wall clock."""

from __future__ import annotations

import ctypes
import functools
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.wire import ClockStamp

_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
# Outside Linux there is no boot id: one per process still ties its records together.
_PROCESS_BOOT_ID = f"process-{uuid.uuid4()}"
_TIME_ERROR = 5  # adjtimex(): the clock is not synchronised
_STA_UNSYNC = 0x0040


class _Timex(ctypes.Structure):
    # The head of struct timex (linux/timex.h); the tail is room the kernel may write to.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


def boot_id(source: Path = _BOOT_ID_FILE) -> str:
    try:
        return source.read_text().strip() or _PROCESS_BOOT_ID
    except OSError:
        return _PROCESS_BOOT_ID


def since_boot() -> float:
    """CLOCK_BOOTTIME: keeps counting through suspend, unlike CLOCK_MONOTONIC."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else time.monotonic()


def clock_synchronized() -> bool | None:
    """The kernel's NTP state (what ``timedatectl`` shows); None where it cannot be read."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        timex = _Timex()
        state = _libc().adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not timex.status & _STA_UNSYNC


@functools.cache
def _libc() -> ctypes.CDLL:
    # The symbols already loaded into this process, libc among them; find_library would
    # run ldconfig in a subprocess, which is slow on a Pi.
    return ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Clock:
    """Makes ClockStamps. Each source can be replaced, so tests choose the time."""

    wall: Callable[[], float] = time.time
    since_boot: Callable[[], float] = since_boot
    boot_id: Callable[[], str] = boot_id
    synchronized: Callable[[], bool | None] = clock_synchronized

    def __call__(self) -> ClockStamp:
        return ClockStamp(wall_time_seconds=self.wall(), boot_id=self.boot_id(),
                          since_boot_seconds=self.since_boot(),
                          clock_synchronized=self.synchronized())


# The real clock; ``now()`` is what probes and the outbox use.
now = Clock()
