"""What every census source hands back, and the keyed hash that stands in for a device.

Privacy by construction: a source turns each hardware address into a keyed hash the
moment it reads it (``DeviceKeys``), and returns only those and counts. The key is random,
lives only in this process's memory and changes every day, so a hash can neither be
reversed nor linked across days, and it never leaves the agent either: records carry
counts alone.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

# 8 bytes: collisions are negligible among a school's few thousand devices a day.
KEY_BYTES = 32
DIGEST_BYTES = 8


class CensusUnavailable(Exception):
    """This source cannot count here; the message says why in one line (no CAP_NET_RAW,
    the SNMP host does not answer, the controller refused the login)."""


@dataclass(frozen=True)
class SourceResult:
    """One source's census: the devices it told apart (keyed hashes) or, for sources that
    only report totals (SNMP, a controller, BSS Load), just the count."""

    source: str
    count: int
    devices: frozenset[bytes] | None = None  # None: a count-only source
    duration_seconds: float | None = None
    rounds: int | None = None
    requests: int | None = None


class DeviceKeys:
    """Keyed hashes of device identities (a MAC address's 6 bytes), with a key that is
    made at random in memory and replaced at local midnight."""

    def __init__(self, today: Callable[[], datetime.date] = datetime.date.today,
                 random: Callable[[int], bytes] = os.urandom) -> None:
        self._today = today
        self._random = random
        self._lock = threading.Lock()
        self._day: datetime.date | None = None
        self._key = b""

    @property
    def day(self) -> datetime.date:
        """The day the current key belongs to (a new one is made if the day changed)."""
        with self._lock:
            self._rotate()
            assert self._day is not None
            return self._day

    def __call__(self, identity: bytes) -> bytes:
        with self._lock:
            self._rotate()
            key = self._key
        return hmac.new(key, identity, hashlib.sha256).digest()[:DIGEST_BYTES]

    def _rotate(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self._key = today, self._random(KEY_BYTES)


def is_device_address(mac: bytes) -> bool:
    """A unicast hardware address of a device: not broadcast, multicast or all zeros."""
    return len(mac) == 6 and mac != b"\x00" * 6 and not mac[0] & 0x01
