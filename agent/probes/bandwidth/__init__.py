"""The ``bandwidth`` probe: what the school's line delivers, in both directions.

What is the same for every backend happens here, in this order: the traffic budget
(``budget.py``), the school's turn (``lease.py``), this agent's own lock
(``exclusive.py``), the test on the first server with the host's counters watched
(``validity.py``), and — when a direction comes out below the contract — a retest on a
second server, because only another server can tell a slow line from a slow server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from agent.config import BandwidthProbeConfig
from agent.probes import Probe, ProbeError, one_line_reason
from agent.probes.bandwidth.backend import (
    Backend,
    BackendClass,
    BackendOptions,
    DirectionResult,
    Limits,
    TransferError,
    backend_class,
)
from agent.probes.bandwidth.budget import Budget, BudgetExhausted
from agent.probes.bandwidth.exclusive import Busy, exclusive_test
from agent.probes.bandwidth.lease import LeaseClient, SchoolBusy, Turn
from agent.probes.bandwidth.planner import next_test
from agent.probes.bandwidth.validity import (
    Observed,
    Snapshot,
    invalid_reasons,
    is_wireless,
    link_speed,
    local_interface,
)
from agent.probes.users.latest import USERS_LATEST, read_counts
from agent.transport import same_origin
from agent.wire import SKIPPED_PREFIX, BandwidthPayload

log = logging.getLogger("schoolnet.agent.bandwidth")

DIRECTIONS = ("download", "upload")
# Goodput is payload over a link whose rate counts headers too: a line that delivers
# fully shows about 95 % of its rate. Below this share of the contract, retest.
RETEST_BELOW_RATIO = 0.90
# The second server disagrees when it measures this much more: the first was the limit.
SERVER_LIMIT_MARGIN = 1.25
# Besides the transfers: pings, connection set-up, discovery.
LEASE_SLACK_SECONDS = 30.0
MAX_LEASE_SECONDS = 600.0


@dataclass
class Tested:
    """One server's test: the payload values and what the validity checks saw."""

    values: dict[str, Any]
    observed: Observed

    def rate(self, direction: str) -> float | None:
        rate: float | None = self.values.get(f"{direction}_bytes_per_second")
        return rate

    def moved(self) -> int:
        return sum(int(self.values.get(f"{direction}_bytes", 0)) for direction in DIRECTIONS)


class BandwidthProbe(Probe):
    name = "bandwidth"
    default_interval = 6 * 3600.0
    config_model = BandwidthProbeConfig

    def timing(self) -> Any:
        """A fixed interval when one is configured; otherwise the planner's random times
        inside the windows (seeded by this agent, so each agent of a school differs)."""
        config: BandwidthProbeConfig = self.config
        if config.interval is not None:
            return config.interval
        credential = self.context.credential
        seed = credential.identity if credential else str(self.context.state_dir)
        return lambda after: next_test(config, after, seed)

    # --- the run ---------------------------------------------------------------------

    def run(self) -> BandwidthPayload:
        config: BandwidthProbeConfig = self.config
        scheduled = not self.context.interactive
        budget = Budget(self.context.state_dir, config.daily_budget, config.monthly_budget)
        max_bytes = config.max_bytes
        if scheduled:
            try:
                # Both directions, and maybe a retest, must fit in what is left.
                max_bytes = min(max_bytes, budget.allowance() // 4)
            except BudgetExhausted as exc:
                raise ProbeError(f"{SKIPPED_PREFIX}{exc}") from None
        limits = Limits(config.duration, max(max_bytes, 1), config.min_streams,
                        max(config.min_streams, config.max_streams))
        factory = self._backend_class()
        lease = self._lease_client() if scheduled else None
        turn: Turn | None = None
        tested: list[Tested] = []
        try:
            if lease is not None:
                seconds = min(MAX_LEASE_SECONDS, 4 * config.duration + LEASE_SLACK_SECONDS)
                try:
                    turn = lease.take(seconds, config.lease_wait)
                except SchoolBusy as exc:
                    raise ProbeError(f"{SKIPPED_PREFIX}{exc}") from None
                if not turn.leased:
                    log.warning("testing without the school's turn: %s", turn.reason)
            with exclusive_test(self.context.state_dir):
                # Found once the turn has come: a locate service's access tokens are
                # short-lived, and the wait for the turn may be long.
                servers = self._servers(factory)
                payload = self._test_and_confirm(factory, servers, limits, tested)
        except Busy as exc:
            raise ProbeError(str(exc)) from None
        finally:
            if lease is not None:
                if turn is not None:
                    lease.release(turn)
                lease.close()
            if scheduled:
                budget.spend(sum(test.moved() for test in tested))
        payload["leased"] = turn.leased if turn is not None else None
        payload["lease_wait_seconds"] = turn.waited if turn is not None else None
        payload["concurrent_devices"] = self._devices_now()
        result = BandwidthPayload.model_validate(payload)
        if result.download_bytes_per_second is None and result.upload_bytes_per_second is None:
            errors = [e for e in (result.download_error, result.upload_error) if e]
            raise ProbeError("; ".join(errors), result)
        return result

    def _devices_now(self) -> int | None:
        """The devices on the network as the census last counted them, when that count is
        recent (at most two census windows old); None without one."""
        users = self.context.settings.probes.users
        if not users.enabled:
            return None
        counts = read_counts(self.context.state_dir / USERS_LATEST, 2 * users.interval)
        value = counts.get("concurrent_devices") if counts else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    def _test_and_confirm(self, factory: BackendClass, servers: list[str], limits: Limits,
                          tested: list[Tested]) -> dict[str, Any]:
        config: BandwidthProbeConfig = self.config
        contract = {"download": self.context.settings.contract.download_bytes_per_second,
                    "upload": self.context.settings.contract.upload_bytes_per_second}
        first = self._test(factory, servers[0], limits)
        tested.append(first)
        values = first.values
        values["contract_download_bytes_per_second"] = contract["download"]
        values["contract_upload_bytes_per_second"] = contract["upload"]
        reasons = invalid_reasons(first.observed, contract, config.require_wired)
        below = [d for d in DIRECTIONS if _below(first.rate(d), contract[d])]
        if below and not reasons:
            if len(servers) < 2:
                reasons.append(f"{' and '.join(below)} below the contract on one server, with no "
                               "second server to confirm it (set probes.bandwidth.retest_server)")
            else:
                try:
                    retest = self._test(factory, servers[1], limits, directions=below)
                except ProbeError as exc:
                    values["retest_server"] = servers[1][:500]
                    values["retest_error"] = one_line_reason(str(exc))
                    reasons.append("below the contract, and the retest on a second server failed")
                    values["invalid_reasons"] = reasons
                    return values
                tested.append(retest)
                values["retest_server"] = retest.values["server"]
                errors = []
                for direction in below:
                    rate = retest.rate(direction)
                    values[f"retest_{direction}_bytes_per_second"] = rate
                    first_rate = first.rate(direction) or 0.0
                    if rate is None:
                        errors.append(f"{direction}: {retest.values.get(f'{direction}_error')}")
                    elif rate >= first_rate * SERVER_LIMIT_MARGIN:
                        reasons.append(
                            f"the server was the limit: {direction} measured "
                            f"{first_rate * 8 / 1e6:.1f} Mbit/s on {servers[0]} but "
                            f"{rate * 8 / 1e6:.1f} Mbit/s on {retest.values['server']}")
                if errors:
                    values["retest_error"] = one_line_reason("; ".join(errors))
                    reasons.append("below the contract, and the retest on a second server failed")
        values["invalid_reasons"] = reasons
        return values

    def _test(self, factory: BackendClass, server: str, limits: Limits,
              directions: tuple[str, ...] | list[str] = DIRECTIONS) -> Tested:
        """Ping, then each direction, with the host's counters read around each."""
        try:
            backend = factory(self._options(server))
        except TransferError as exc:
            raise ProbeError(f"{server}: {exc}") from None
        interface = local_interface(backend.server)
        observed = Observed(interface, is_wireless(interface) if interface else None,
                            link_speed(interface) if interface else None)
        values: dict[str, Any] = {"backend": backend.name, "server": backend.server,
                                  "interface": interface, "interface_wireless": observed.wireless,
                                  "interface_speed_bytes_per_second": observed.speed}
        streams = 1
        try:
            values["idle_latency_seconds"] = _ping(backend)
            for direction in DIRECTIONS:
                if direction not in directions:
                    values[f"{direction}_error"] = "not retested"
                    continue
                before = Snapshot.take(interface)
                try:
                    result: DirectionResult = getattr(backend, direction)(limits)
                except TransferError as exc:
                    values[f"{direction}_error"] = one_line_reason(str(exc) or f"{direction} failed")
                    continue
                observed.direction(direction, before, Snapshot.take(interface), result.bytes)
                streams = max(streams, result.streams)
                values.update({
                    f"{direction}_bytes_per_second": result.bytes_per_second,
                    f"{direction}_bytes": result.bytes, f"{direction}_seconds": result.seconds,
                    f"{direction}_window_seconds": result.window_seconds,
                    f"{direction}_streams": result.streams,
                    f"{direction}_loaded_latency_seconds": result.loaded_latency_seconds,
                    f"{direction}_retransmits": result.retransmits,
                    f"{direction}_cross_traffic_bytes": observed.cross_traffic.get(direction),
                })
        finally:
            backend.close()
        values["streams"] = streams
        values["cpu_usage_ratio"] = observed.cpu_usage_ratio
        values["agent_cpu_seconds"] = observed.agent_cpu_seconds
        return Tested(values, observed)

    # --- where to test ---------------------------------------------------------------

    def _backend_class(self) -> BackendClass:
        try:
            return backend_class(self.config.backend)
        except ValueError as exc:
            raise ProbeError(str(exc)) from None

    def _collector_url(self) -> str | None:
        credential = self.context.credential
        return self.context.settings.collector.url or (credential.collector_url if credential else None)

    def _servers(self, factory: BackendClass) -> list[str]:
        """The first server and, when there is one, the second for a retest."""
        config: BandwidthProbeConfig = self.config
        server = config.server
        if not server and config.backend == "http":
            # The http backend's default server is our own collector's speed endpoints.
            server = self._collector_url() or ""
            if not server:
                raise ProbeError("no test server: set probes.bandwidth.server or enrol the "
                                 "agent to test against its collector")
        try:
            servers = factory.discover(self._options(server))
        except TransferError as exc:
            raise ProbeError(f"{config.backend}: {exc}") from None
        if not servers:
            raise ProbeError(f"{config.backend}: no test server found")
        if config.retest_server:
            servers = [servers[0], config.retest_server]
        return servers

    def _options(self, server: str) -> BackendOptions:
        collector = self._collector_url()
        credential = self.context.credential
        # The credential goes to our own collector only, never to another server.
        secret = credential.credential if credential and collector and server and same_origin(
            server, collector) else None
        return BackendOptions(server=server, credential=secret,
                              ca_bundle=self.context.settings.collector.ca_bundle,
                              config=self.config)

    def _lease_client(self) -> LeaseClient | None:
        credential = self.context.credential
        collector = self._collector_url()
        if credential is None or not collector:
            return None
        try:
            return LeaseClient(collector, credential.credential, self.context.settings.collector.ca_bundle)
        except ValueError as exc:  # an unusable CA bundle: the uploader reports it too
            log.warning("cannot ask for the school's turn: %s", exc)
            return None


def _below(rate: float | None, contract: float | None) -> bool:
    return rate is not None and contract is not None and rate < contract * RETEST_BELOW_RATIO


def _ping(backend: Backend) -> float | None:
    try:
        return backend.ping()
    except TransferError:
        # Latency is context, not the measurement: its failure does not void one.
        return None
