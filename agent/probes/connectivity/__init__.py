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
from pathlib import Path

from agent.config import ConfigError, ConnectivityProbeConfig
from agent.probes import Probe, ProbeContext, ProbeError
from agent.probes.connectivity.dnsquery import Resolver, resolvers
from agent.probes.connectivity.echo import EchoSampler, EchoUnavailable
from agent.probes.connectivity.outages import OutageTracker
from agent.probes.connectivity.route import default_gateway
from agent.probes.connectivity.window import Plan, Window
from agent.scheduler import Planner
from agent.wire import ConnectivityPayload

log = logging.getLogger("schoolnet.agent.connectivity")

KEY = "probes.connectivity"
END_MARGIN_SECONDS = 0.25


def window_end(wall: float, window: float) -> float:
    """The next window boundary after ``wall`` (boundaries are multiples of the window)."""
    return (math.floor(wall / window) + 1) * window


class ConnectivityProbe(Probe):
    name = "connectivity"
    default_interval = 60.0
    config_model = ConnectivityProbeConfig

    def __init__(self, context: ProbeContext) -> None:
        super().__init__(context)
        # Addresses found earlier: a target named by host name stays probed while DNS is down.
        self.known_addresses: dict[str, str] = {}
        self.tracker: OutageTracker | None = None

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
        import time

        config = self.config
        if self.tracker is None:
            self.tracker = OutageTracker(config.outage_after, self._state_dir(),
                                         stale_after=3 * config.window)
        now = time.time()
        if self.context.scheduled:
            seconds = window_end(now, config.window) - now
            if seconds < config.window / 2:  # started late: this window and the next in one
                seconds += config.window
            # Done (record kept) before the boundary: a run still going when the next
            # window is due makes the scheduler skip that window, and during an outage,
            # when the last probes wait out their timeout, it would end right on it.
            seconds -= min(END_MARGIN_SECONDS, config.window * 0.05)
        else:
            seconds = config.window
        plan = self._plan()
        try:
            sampler = EchoSampler(config.method, config.tcp_port, config.timeout)
        except EchoUnavailable as exc:
            raise ProbeError(str(exc)) from None
        with sampler:
            payload = Window(config, plan, sampler, self.tracker).run(seconds)
        self.events.extend(self.tracker.take_ended())
        return payload

    def _state_dir(self) -> Path | None:
        # `measure` keeps nothing: an outage it saw is printed, not carried into the daemon.
        return None if self.context.interactive else self.context.state_dir

    def _plan(self) -> Plan:
        config = self.config
        targets: dict[str, str | None] = {}
        unresolved: dict[str, str] = {}
        for name in config.targets:
            try:
                targets[name] = self._resolve(name)
            except (socket.gaierror, OSError) as exc:
                targets[name] = self.known_addresses.get(name)
                if targets[name] is None:
                    unresolved[name] = f"cannot resolve {name!r}: {exc.strerror or exc}"
        gateway: str | None = None
        if config.gateway == "auto":
            gateway = default_gateway(socket.AF_INET) or default_gateway(socket.AF_INET6)
        elif config.gateway:
            try:
                gateway = self._resolve(config.gateway)
            except (socket.gaierror, OSError):
                gateway = self.known_addresses.get(config.gateway)
        # TTL-limited probes go the way of the first internet target with an address.
        hop_destination = next((address for address in targets.values() if address), None)
        try:
            chosen: list[Resolver] = resolvers(config.dns_servers)
        except ValueError as exc:
            log.warning("%s.dns_servers: %s", KEY, exc)
            chosen = []
        return Plan(gateway=gateway, targets=targets, unresolved=unresolved,
                    hop_destination=hop_destination if config.hops else None, resolvers=chosen,
                    dns_names=list(config.dns_names), http_urls=list(config.http_urls),
                    ca_bundle=self.context.settings.collector.ca_bundle)

    def _resolve(self, name: str) -> str:
        if _is_address(name):
            return name
        address = str(socket.getaddrinfo(name, None, type=socket.SOCK_DGRAM)[0][4][0])
        self.known_addresses[name] = address
        return address


def _is_address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text.split("%", 1)[0])
        return True
    except ValueError:
        return False

