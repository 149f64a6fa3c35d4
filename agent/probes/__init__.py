"""Probes: one module per measurement, each a plugin with a name, an interval and ``run()``.

To add one: a module here with a ``Probe`` subclass, its payload model and kind in
``agent/wire.py``, its config section in ``agent/config.py`` and the example config, a
fixture folder with real output, a parser test, and its metrics in docs/metrics.md.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from agent.wire import ClockStamp

if TYPE_CHECKING:
    from agent.config import AgentSettings
    from agent.credential import Credential

# name -> "module:Class": imported only when used, so `--help` and `status` stay light.
PROBES = {
    "system": "agent.probes.system:SystemProbe",
    "bandwidth": "agent.probes.bandwidth:BandwidthProbe",
    "connectivity": "agent.probes.connectivity:ConnectivityProbe",
    "wifi": "agent.probes.wifi:WifiProbe",
    "users": "agent.probes.users:UsersProbe",
}


# wire.Record.error and the payloads' *_error fields hold at most this many characters; a
# longer reason would make the record itself invalid, and the measurement would be lost.
MAX_REASON_CHARS = 1000


def one_line_reason(text: str) -> str:
    """A failure reason as the wire takes it: one line, bounded, never empty."""
    line = " ".join(text.split()) or "failed without a reason"
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 3] + "..."


class ProbeError(Exception):
    """The probe could not measure; the message says why, in one line.

    ``payload`` keeps what was measured anyway (a bandwidth test whose two directions both
    failed still records the server and each direction's reason).
    """

    def __init__(self, reason: str, payload: BaseModel | None = None) -> None:
        super().__init__(reason)
        self.payload = payload


@dataclass(frozen=True)
class Event:
    """A record of another kind that a run produced beside its own, with its own clock: an
    outage the connectivity probe saw end (its clock is the end, not the window's start)."""

    kind: str
    clock: ClockStamp
    payload: dict[str, Any]


@dataclass(frozen=True)
class Measurement:
    """What a run produced: a payload, or the reason there is none (or both, partly), and
    any events seen during the run."""

    ok: bool
    error: str | None
    payload: dict[str, Any] | None
    events: tuple[Event, ...] = ()

    @classmethod
    def of(cls, payload: BaseModel, events: tuple[Event, ...] = ()) -> Measurement:
        return cls(True, None, payload.model_dump(mode="json"), events)

    @classmethod
    def failed(cls, reason: str, payload: BaseModel | None = None) -> Measurement:
        return cls(False, reason, payload.model_dump(mode="json") if payload else None)

    def problems(self) -> list[str]:
        """Why this is not a complete measurement: the failure, or a direction that failed
        while the other measured (the record is kept, but it is not a full success)."""
        if not self.ok:
            return [self.error or "failed"]
        payload = self.payload or {}
        return [f"{key.removesuffix('_error')}: {payload[key]}"
                for key in ("download_error", "upload_error") if payload.get(key)]


@dataclass(frozen=True)
class ProbeContext:
    settings: AgentSettings
    credential: Credential | None
    state_dir: Path
    # `measure`: one measurement for a person or a benchmark, outside any schedule: it
    # takes no lease and spends no budget.
    interactive: bool = False
    # The daemon's scheduler runs it: probes with windows align them to the clock.
    scheduled: bool = False
    # Where events go the moment they happen (the daemon: its outbox), so that a stop
    # before the run ends loses none; without it they come with the run's result.
    emit: Callable[[Event], None] | None = None


class Probe:
    """One kind of measurement. Subclasses set the class attributes and write ``run``."""

    name: ClassVar[str]
    # Used when the config says nothing; the config section model carries the same default.
    default_interval: ClassVar[float]
    config_model: ClassVar[type[BaseModel]]

    def __init__(self, context: ProbeContext) -> None:
        self.context = context
        # Events a run saw (see Event); measure() hands them over with its result.
        self.events: list[Event] = []

    @property
    def config(self) -> Any:
        return getattr(self.context.settings.probes, self.name)

    def timing(self) -> Any:
        """When to run: an interval in seconds (jittered by the scheduler), or a planner
        (see ``agent.scheduler.Planner``) for probes with their own plan."""
        return self.config.interval

    def measure(self) -> Measurement:
        """Run once; every failure becomes a failed measurement with its reason."""
        try:
            measurement = Measurement.of(self.run())
        except ProbeError as exc:
            measurement = Measurement.failed(one_line_reason(str(exc)), exc.payload)
        except Exception as exc:  # a probe's bug must not stop the agent: record it
            measurement = Measurement.failed(one_line_reason(f"{type(exc).__name__}: {exc}"))
        events, self.events = tuple(self.events), []
        return dataclasses.replace(measurement, events=events) if events else measurement

    def check(self) -> None:
        """Refuse, at start-up, a configuration that cannot work (raise ConfigError with a
        one-line reason); most mistakes are caught by the config's own validation."""

    def not_applicable(self) -> str | None:
        """Why this machine has nothing for the probe to measure (None: it has); asked only
        when the probe's ``enabled`` is "auto"."""
        return None

    def run(self) -> BaseModel:
        """Measure once: the payload (a model from agent/wire.py), or ProbeError(reason)."""
        raise ProbeError(f"probe {self.name!r} does not measure anything")


def probe_class(name: str) -> type[Probe]:
    if name not in PROBES:
        raise ValueError(f"unknown probe {name!r} (known: {', '.join(PROBES)})")
    module, _, cls = PROBES[name].partition(":")
    probe: type[Probe] = getattr(importlib.import_module(module), cls)
    return probe
