"""The ``connectivity`` probe: is the school online, how well, and where is the fault?

Windows run back to back (aligned to the clock in the daemon, so each record covers one
window exactly): echo probes to the gateway and the internet targets, TTL-limited probes
to the first provider hops, DNS lookups and HTTP(S) time to first byte, all in one
window. Each window becomes one ``connectivity`` record; each outage, when it ends, one
``outage`` record with its own start and end (see outages.py), kept in the outbox like
every record while the line is down.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import ConfigError, ConnectivityProbeConfig
from agent.probes import Event, Probe, ProbeContext, ProbeError
from agent.probes.connectivity.dnsquery import Resolver, resolvers
from agent.probes.connectivity.echo import EchoSampler, EchoUnavailable
from agent.probes.connectivity.outages import OutageTracker
from agent.probes.connectivity.window import Plan, Window
from agent.routes import default_gateway
from agent.scheduler import Planner
from agent.wire import ConnectivityPayload

log = logging.getLogger("schoolnet.agent.connectivity")

KEY = "probes.connectivity"
END_MARGIN_SECONDS = 0.25


def window_end(wall: float, window: float) -> float:
    """The next window boundary after ``wall`` (boundaries are multiples of the window)."""
    return (math.floor(wall / window) + 1) * window


@dataclass
class Memory:
    """What the probe learnt that must outlive one instance: the daemon makes new probes
    when its settings are refreshed (hourly), and a window then must not forget that a
    target's name resolved to this address (DNS may be down now), which gateway the
    school has (a LAN outage can take the default route with it) or that the gateway
    answers pings at all (one that never does must not turn every ISP outage into a
    LAN one). Kept per state directory, in this process."""

    addresses: dict[str, str] = field(default_factory=dict)
    gateway: str | None = None
    gateway_answers: bool = False
    tracker: OutageTracker | None = None


_MEMORY: dict[Path | None, Memory] = {}


class ConnectivityProbe(Probe):
    name = "connectivity"
    default_interval = 60.0
    config_model = ConnectivityProbeConfig

    def __init__(self, context: ProbeContext) -> None:
        super().__init__(context)
        # The daemon's windows share one memory; `measure` and `once` start afresh.
        self.memory = _MEMORY.setdefault(context.state_dir, Memory()) if context.scheduled else Memory()

    @property
    def config(self) -> ConnectivityProbeConfig:
        config: ConnectivityProbeConfig = self.context.settings.probes.connectivity
        return config

    def timing(self) -> Planner:
        window = self.config.window
        return lambda wall: window_end(wall, window)

    # -- start-up check ----------------------------------------------------------------

    def check(self) -> None:
        config = self.config
        for name in config.targets:
            self._resolve_or_refuse(f"{KEY}.targets", name)
        if config.gateway not in ("auto", ""):
            self._resolve_or_refuse(f"{KEY}.gateway", config.gateway)
        for name in config.dns_names:
            if not _is_address(name) and "." not in name:
                raise ConfigError(f"config: {KEY}.dns_names: {name!r} is not a full domain name")
        try:
            resolvers(config.dns_servers)
        except ValueError as exc:
            raise ConfigError(f"config: {KEY}.dns_servers: {exc}") from None

    def _resolve_or_refuse(self, key: str, name: str) -> None:
        try:
            self._resolve(name)
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                raise ConfigError(f"config: {key}: {name!r} does not resolve ({exc.strerror})") from None
            # No answer at all (EAI_AGAIN): the network may be down right now, which is no
            # reason to refuse to start; the window says so.
            log.warning("%s: cannot resolve %r now (%s); will keep trying", key, name, exc.strerror)

    # -- one window --------------------------------------------------------------------

    def run(self) -> ConnectivityPayload:
        config = self.config
        memory = self.memory
        if memory.tracker is None or memory.tracker.outage_after != config.outage_after:
            memory.tracker = OutageTracker(config.outage_after, self._state_dir(),
                                           stale_after=3 * config.window, on_end=self._ended)
        tracker = memory.tracker
        tracker.on_end = self._ended
        ends: float | None = None  # `measure` and `once`: one whole window from now
        if self.context.scheduled:
            now = time.time()
            seconds = window_end(now, config.window) - now
            if seconds < config.window / 2:  # started late: this window and the next in one
                seconds += config.window
            # Done (record kept) before the boundary: a run still going when the next
            # window is due makes the scheduler skip that window, and during an outage,
            # when the last probes wait out their timeout, it would end right on it.
            ends = time.monotonic() + seconds - min(END_MARGIN_SECONDS, config.window * 0.05)
        plan = self._plan()  # name lookups may take a while with DNS down: inside the window
        try:
            sampler = EchoSampler(config.method, config.tcp_port, config.timeout)
        except EchoUnavailable as exc:
            raise ProbeError(str(exc)) from None
        with sampler:
            window = Window(config, plan, sampler, tracker)
            seconds = config.window if ends is None else max(ends - time.monotonic(), config.ping_interval)
            payload = window.run(seconds)
        if window.gateway_answered:
            memory.gateway_answers = True
        return payload

    def _ended(self, event: Event) -> None:
        """An outage ended: to the outbox at once in the daemon, else with the window."""
        if self.context.emit is not None:
            self.context.emit(event)
        else:
            self.events.append(event)

    def _state_dir(self) -> Path | None:
        # Only the daemon carries an outage across windows and restarts: `measure` prints
        # what it saw, and `once` must not close the running daemon's outage a second time.
        return self.context.state_dir if self.context.scheduled else None

    def _plan(self) -> Plan:
        config = self.config
        targets: dict[str, str | None] = {}
        unresolved: dict[str, str] = {}
        for name in config.targets:
            try:
                targets[name] = self._resolve(name)
            except (socket.gaierror, OSError) as exc:
                targets[name] = self.memory.addresses.get(name)
                if targets[name] is None:
                    unresolved[name] = f"cannot resolve {name!r}: {exc.strerror or exc}"
        gateway: str | None = None
        if config.gateway == "auto":
            # A LAN outage may take the default route with it: keep probing the gateway
            # the school had, or that outage would turn into one of another kind.
            gateway = (default_gateway(socket.AF_INET) or default_gateway(socket.AF_INET6)
                       or self.memory.gateway)
        elif config.gateway:
            try:
                gateway = self._resolve(config.gateway)
            except (socket.gaierror, OSError):
                gateway = self.memory.addresses.get(config.gateway)
        if gateway != self.memory.gateway:
            self.memory.gateway, self.memory.gateway_answers = gateway, False
        # TTL-limited probes go the way of the first internet target with an address.
        hop_destination = next((address for address in targets.values() if address), None)
        try:
            chosen: list[Resolver] = resolvers(config.dns_servers)
        except ValueError as exc:
            log.warning("%s.dns_servers: %s", KEY, exc)
            chosen = []
        return Plan(gateway=gateway, gateway_answers=self.memory.gateway_answers,
                    targets=targets, unresolved=unresolved,
                    hop_destination=hop_destination if config.hops else None, resolvers=chosen,
                    dns_names=list(config.dns_names), http_urls=list(config.http_urls),
                    ca_bundle=self.context.settings.collector.ca_bundle)

    def _resolve(self, name: str) -> str:
        if _is_address(name):
            return name
        address = str(socket.getaddrinfo(name, None, type=socket.SOCK_DGRAM)[0][4][0])
        self.memory.addresses[name] = address
        return address


def _is_address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text.split("%", 1)[0])
        return True
    except ValueError:
        return False

