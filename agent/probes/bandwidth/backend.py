"""What every bandwidth backend offers, and the registry of backends by name.

A backend knows one protocol (LibreSpeed-style HTTP, M-Lab's ndt7, Ookla's legacy HTTP
through speedtest-cli's server discovery, iperf3). The probe around it (``__init__``)
does what is the same for all of them: the lease, the budget, validity and the retest.

To add a backend: a module here with a class satisfying ``Backend`` (constructed as
``Class(BackendOptions)``) and a ``discover(options)`` class method, named in
``BACKENDS``; its option section in ``agent/config.py`` and the example config; a test
against a local server that speaks the protocol; a line in docs/metrics.md.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class TransferError(Exception):
    """One direction (or the ping) could not be measured; the message says why, in one line."""


@dataclass(frozen=True)
class Limits:
    """Bounds of one direction of one test."""

    duration: float  # seconds the transfer may run, slow start included
    max_bytes: int  # the most it may move
    min_streams: int = 4  # parallel TCP streams to start with
    max_streams: int = 16  # the cap while throughput still rises


@dataclass(frozen=True)
class DirectionResult:
    """One direction, measured.

    ``bytes_per_second`` is goodput (application payload) over the stable window: the TCP
    slow-start phase at the beginning is left out. ``bytes`` and ``seconds`` cover the
    whole transfer, for the traffic budget and for the record.
    """

    bytes_per_second: float
    bytes: int
    seconds: float
    window_seconds: float
    streams: int
    loaded_latency_seconds: float | None = None  # median RTT while the transfer ran
    retransmits: int | None = None  # TCP segments retransmitted, where the OS or server says
    # Per-backend facts worth keeping (e.g. ndt7's server-side TCP info), small and flat.
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendOptions:
    """What a backend is built from."""

    server: str  # a base URL, a host[:port] (iperf3), or a server id (speedtest); never empty
    credential: str | None = None  # our collector's bearer credential, only for our collector
    ca_bundle: Path | None = None
    config: Any = None  # the BandwidthProbeConfig, for the backend's own option section
    stall_seconds: float = 5.0  # no progress for this long means the server stalled


class Backend(Protocol):
    name: str
    server: str  # what was actually tested against, as recorded in the payload

    def ping(self) -> float:
        """Median idle round trip to the server, seconds; TransferError when none answered."""
        ...

    def download(self, limits: Limits) -> DirectionResult: ...

    def upload(self, limits: Limits) -> DirectionResult: ...

    def close(self) -> None: ...


class BackendClass(Protocol):
    name: str

    def __call__(self, options: BackendOptions) -> Backend: ...

    def discover(self, options: BackendOptions) -> list[str]:
        """The servers to test against, best first (the second one is for the retest).

        ``options.server`` is the configured server or ``""``; a backend with a locate
        service (ndt7) or a server list (speedtest) finds servers itself when it is empty.
        Raises TransferError when there is none.
        """
        ...


# name -> "module:Class", imported only when chosen (speedtest-cli and websockets stay
# out of the agent's memory unless the backend is used).
BACKENDS = {
    "http": "agent.probes.bandwidth.http:HttpBackend",
    "ndt7": "agent.probes.bandwidth.ndt7:Ndt7Backend",
    "speedtest": "agent.probes.bandwidth.speedtest:SpeedtestBackend",
    "iperf3": "agent.probes.bandwidth.iperf3:Iperf3Backend",
}


def backend_class(name: str) -> BackendClass:
    if name not in BACKENDS:
        raise ValueError(f"unknown bandwidth backend {name!r} (known: {', '.join(BACKENDS)})")
    module, _, attribute = BACKENDS[name].partition(":")
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        if (exc.name or "").startswith("agent"):
            raise  # our own module is missing: a broken install, not a missing extra
        raise ValueError(f"bandwidth backend {name!r} needs {exc.name or exc}: install it "
                         f"with pip install 'schoolnet[{name}]'") from None
    factory: BackendClass = getattr(loaded, attribute)
    return factory
