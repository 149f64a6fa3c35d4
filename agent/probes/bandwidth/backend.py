"""What every bandwidth backend offers, and the registry of backends by name.

Only ``http`` exists now; ndt7, speedtest and iperf3 are added by writing a module with a
class that satisfies ``Backend`` and naming it in ``BACKENDS``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
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


class BackendFactory(Protocol):
    def __call__(self, server: str, credential: str | None, ca_bundle: Path | None = None) -> Backend: ...


# name -> "module:Class", imported only when chosen.
BACKENDS = {
    "http": "agent.probes.bandwidth.http:HttpBackend",
}


def backend_class(name: str) -> BackendFactory:
    if name not in BACKENDS:
        raise ValueError(f"unknown bandwidth backend {name!r} (known: {', '.join(BACKENDS)})")
    module, _, attribute = BACKENDS[name].partition(":")
    factory: BackendFactory = getattr(importlib.import_module(module), attribute)
    return factory
