"""What every bandwidth backend offers (http now; ndt7, speedtest and iperf3 later)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class TransferError(Exception):
    """One direction could not be measured; the message says why, in one line."""


@dataclass(frozen=True)
class Transfer:
    """Bytes moved in one direction over the measured time."""

    bytes: int
    seconds: float

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds


class Backend(Protocol):
    name: str
    server: str
    streams: int

    def download(self, duration: float, max_bytes: int) -> Transfer: ...

    def upload(self, duration: float, max_bytes: int) -> Transfer: ...

    def ping(self) -> float: ...

    def close(self) -> None: ...
