"""One window of the connectivity probes: echo rounds, DNS rounds and HTTP rounds side by side.

Echo rounds run on this thread: every ``ping_interval`` one probe to the gateway and to
every internet target, and every ``hop_interval`` TTL-limited probes to the first hops, all
sent without blocking and collected as they come back. DNS and HTTP rounds run on a thread
each, on their own intervals. Every round feeds the outage tracker in the order it was
sent; at the end the window's probes become one payload.

Sending stops one timeout before the window ends, so every probe has its answer (or is
lost) inside the window, and the next window starts on time.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from agent.config import ConnectivityProbeConfig
from agent.probes.connectivity.dnsquery import DnsOutcome, Resolver, query_all
from agent.probes.connectivity.echo import EchoSampler, Outcome
from agent.probes.connectivity.httptiming import HttpOutcome, make_client, time_request
from agent.probes.connectivity.outages import Moment, OutageTracker, moment_now
from agent.probes.connectivity.segments import Thresholds, locate
from agent.probes.connectivity.stats import Summary, percentile, summarise
from agent.wire import ConnectivityPayload, DnsStats, EchoRole, EchoStats, HopStats, HttpStats

log = logging.getLogger("schoolnet.agent.connectivity")

# echo.py's words for a send this machine refused for want of a route.
NO_ROUTE = "this host has no route there"

# A service the school depends on may take longer than an echo to answer its first byte,
# but a request must fit in the window (short windows: tests, `measure --window 5s`).
HTTP_MIN_TIMEOUT = 5.0
HTTP_WINDOW_SHARE = 0.25


@dataclass(frozen=True)
class Plan:
    """What one window probes, resolved: addresses, not names."""

    gateway: str | None  # the address, or None when not probed
    gateway_answers: bool  # the gateway answered an earlier window (see Memory)
    targets: dict[str, str | None]  # as configured -> address (None: could not resolve)
    unresolved: dict[str, str]  # as configured -> why it has no address
    hop_destination: str | None  # the address TTL-limited probes go towards
    resolvers: list[Resolver]
    dns_names: list[str]
    http_urls: list[str]
    # The CA of a TLS-inspecting proxy the school's traffic goes through (collector.ca_bundle).
    ca_bundle: Path | None = None


@dataclass
class _Series:
    """The probes to one destination, in the order they were sent."""

    sent: int = 0
    round_trips: dict[int, float] = field(default_factory=dict)  # probe id -> seconds
    order: list[int] = field(default_factory=list)
    responders: collections.Counter[str] = field(default_factory=collections.Counter)
    error: str | None = None
    no_route: int = 0  # sends this machine refused at once: it has no route there

    @property
    def unroutable(self) -> bool:
        """Every probe refused by this machine for want of a route (an IPv6 target at a
        school without IPv6): not probed, rather than 100 % loss of the line."""
        return self.sent > 0 and self.no_route == self.sent

    def summary(self) -> Summary:
        return summarise(self.sent, [self.round_trips[i] for i in self.order if i in self.round_trips])


@dataclass
class _Round:
    at: Moment
    internet: set[int]
    gateway: int | None
    reached: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)

    def decided(self) -> bool:
        if self.internet & self.reached:
            return True
        waiting = set(self.internet)
        if self.gateway is not None:
            waiting.add(self.gateway)
        return waiting <= self.done


class Window:
    def __init__(self, config: ConnectivityProbeConfig, plan: Plan, sampler: EchoSampler,
                 tracker: OutageTracker, clock: Callable[[], float] = time.monotonic,
                 moment: Callable[[], Moment] | None = None) -> None:
        self.config = config
        self.plan = plan
        self.sampler = sampler
        self.tracker = tracker
        self.clock = clock
        self.moment = moment or moment_now
        self.lock = threading.Lock()  # the tracker hears from the DNS thread too
        self.series: dict[str, _Series] = {}  # "gateway", "target:<name>", "hop:<ttl>"
        self.owner: dict[int, str] = {}  # probe id -> series key
        self.rounds: collections.deque[_Round] = collections.deque()
        self.round_of: dict[int, _Round] = {}
        self.dns: dict[Resolver, list[DnsOutcome]] = {r: [] for r in plan.resolvers}
        self.http: dict[str, list[HttpOutcome]] = {url: [] for url in plan.http_urls}
        self.http_error: str | None = None
        self.gateway_answered = False

    # -- the window --------------------------------------------------------------------

    def run(self, seconds: float) -> ConnectivityPayload:
        started_wall = time.time()
        # Made before any probe is out: building a TLS context takes a while and holds the
        # interpreter, and an echo reply must not wait behind it.
        client = None
        if self.plan.http_urls:
            try:
                client = make_client(self.http_timeout(), self.plan.ca_bundle)
            except (OSError, ValueError) as exc:  # a CA bundle that went away: HTTP alone fails
                self.http_error = f"cannot set up HTTPS: {exc}"[:1000]
        deadline = self.clock() + seconds
        stop = threading.Event()
        workers = [threading.Thread(target=self._dns_rounds, args=(deadline, stop), daemon=True,
                                    name="connectivity-dns")] if self.plan.resolvers else []
        if client is not None:
            workers.append(threading.Thread(target=self._http_rounds, args=(client, deadline, stop),
                                            daemon=True, name="connectivity-http"))
        for worker in workers:
            worker.start()
        try:
            self._echo_rounds(deadline)
        finally:
            stop.set()
            # Not past the window's end: a request stuck in a name lookup (DNS down; the
            # lookup has no timeout of ours) is left to finish on its own, its result unused.
            for worker in workers:
                worker.join(timeout=max(0.0, deadline - self.clock()))
            if client is not None and not any(worker.is_alive() for worker in workers):
                client.close()
        with self.lock:
            self.tracker.checkpoint()
            return self._payload(started_wall, seconds)

    def _echo_rounds(self, deadline: float) -> None:
        config = self.config
        last_send = deadline - config.timeout
        next_round = self.clock()
        next_hops = next_round
        while next_round < last_send:
            self._send_round()
            if self.plan.hop_destination is not None and config.hops and self.clock() >= next_hops:
                self._send_hops()
                next_hops += config.hop_interval
            next_round += config.ping_interval
            self._take(self.sampler.collect(until=min(next_round, deadline)))
            # collect() returns early when nothing is pending: then nothing can arrive late.
            idle = next_round - self.clock()
            if idle > 0:
                time.sleep(idle)
        self._take(self.sampler.finish())
        self._decide_rounds(final=True)

    def _send_round(self) -> None:
        internet = set()
        gateway = None
        if self.plan.gateway is not None:
            gateway = self._send("gateway", self.plan.gateway)
        for name, address in self.plan.targets.items():
            if address is not None:
                internet.add(self._send(f"target:{name}", address))
        round_ = _Round(self.moment(), internet, gateway)
        self.rounds.append(round_)
        for probe_id in (*internet, *([gateway] if gateway is not None else [])):
            self.round_of[probe_id] = round_

    def _send_hops(self) -> None:
        assert self.plan.hop_destination is not None
        for ttl in range(1, self.config.hops + 2):
            self._send(f"hop:{ttl}", self.plan.hop_destination, ttl)

    def _send(self, key: str, address: str, ttl: int | None = None) -> int:
        probe_id = self.sampler.send(address, ttl)
        self.series.setdefault(key, _Series()).sent += 1
        self.series[key].order.append(probe_id)
        self.owner[probe_id] = key
        return probe_id

    def _take(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            key = self.owner.get(outcome.probe_id)
            if key is None:
                continue
            series = self.series[key]
            hop = key.startswith("hop:")
            # A hop probe answers with Time Exceeded from the router (not "reached"); an
            # echo probe only counts when the destination itself answered.
            answered = outcome.rtt_seconds is not None and (outcome.reached or (hop and outcome.responder))
            if answered and outcome.rtt_seconds is not None:
                series.round_trips[outcome.probe_id] = outcome.rtt_seconds
                if outcome.responder:
                    series.responders[outcome.responder] += 1
            elif outcome.error:
                series.error = outcome.error
            round_ = self.round_of.pop(outcome.probe_id, None)
            if answered and key == "gateway":
                self.gateway_answered = True
            if not answered and outcome.error and NO_ROUTE in outcome.error:
                series.no_route += 1
            if round_ is not None:
                round_.done.add(outcome.probe_id)
                if answered:
                    round_.reached.add(outcome.probe_id)
        self._decide_rounds(final=False)

    def _decide_rounds(self, final: bool) -> None:
        """Feed the tracker every round that is decided, oldest first."""
        while self.rounds and (final or self.rounds[0].decided()):
            round_ = self.rounds.popleft()
            internet_ok = bool(round_.internet & round_.reached)
            gateway_ok = None if round_.gateway is None else round_.gateway in round_.reached
            if not round_.internet:
                continue  # no target had an address to probe: no evidence either way
            if gateway_ok is False and not (self.plan.gateway_answers or self.gateway_answered):
                gateway_ok = None  # a gateway that never answers pings cannot tell LAN from ISP
            with self.lock:
                self.tracker.echo_round(round_.at, internet_ok, gateway_ok,
                                        self._echo_detail(internet_ok, gateway_ok))

    def _echo_detail(self, internet_ok: bool, gateway_ok: bool | None) -> str:
        if internet_ok:
            return "internet targets answer"
        names = ", ".join(name for name, address in self.plan.targets.items() if address)
        side = {None: "gateway not probed", True: f"gateway {self.plan.gateway} answered",
                False: f"gateway {self.plan.gateway} did not answer"}[gateway_ok]
        return f"no reply from {names or 'any target (none resolved)'}; {side}"

    # -- DNS and HTTP rounds -----------------------------------------------------------

    def _dns_rounds(self, deadline: float, stop: threading.Event) -> None:
        names = itertools.cycle(self.plan.dns_names)
        timeout = self.config.timeout
        while not stop.is_set() and self.clock() + timeout < deadline:
            began = self.clock()
            at = self.moment()
            outcomes = query_all(self.plan.resolvers, next(names), timeout)
            # Pupils' devices use the resolvers DHCP gives them, as this machine does
            # ("system"): when those fail, name resolution is out for the school even if a
            # public resolver answers.
            deciding = [o for o in outcomes if o.resolver.label == "system"] or outcomes
            ok = any(outcome.seconds is not None for outcome in deciding)
            for outcome in outcomes:
                self.dns[outcome.resolver].append(outcome)
            detail = "resolvers answer" if ok else "no resolver answered: " + "; ".join(
                f"{_resolver_name(o.resolver)}: {o.error}" for o in deciding)
            with self.lock:
                self.tracker.dns_round(at, ok, detail)
            stop.wait(max(0.0, began + self.config.dns_interval - self.clock()))

    def _http_rounds(self, client: httpx.Client, deadline: float, stop: threading.Event) -> None:
        timeout = self.http_timeout()
        while not stop.is_set():
            began = self.clock()
            for url in self.plan.http_urls:
                if stop.is_set() or self.clock() + timeout > deadline:
                    return
                self.http[url].append(time_request(client, url))
            stop.wait(max(0.0, began + self.config.http_interval - self.clock()))

    def http_timeout(self) -> float:
        return min(max(HTTP_MIN_TIMEOUT, self.config.timeout), self.config.window * HTTP_WINDOW_SHARE)

    # -- the payload -------------------------------------------------------------------

    def _payload(self, started: float, seconds: float) -> ConnectivityPayload:
        """The window's record: it covers ``seconds`` from ``started`` (sending stopped a
        timeout before the end, so that every probe had its answer inside)."""
        ended = time.time()
        targets = [self._echo_stats(name, "internet", self.series.get(f"target:{name}"), address)
                   for name, address in self.plan.targets.items()]
        gateway = None
        if self.plan.gateway is not None:
            gateway = self._echo_stats(self.plan.gateway, "gateway", self.series.get("gateway"),
                                       self.plan.gateway)
        hops = [self._hop_stats(ttl) for ttl in range(1, self.config.hops + 2)
                if f"hop:{ttl}" in self.series]
        limits = Thresholds(self.config.loss_threshold, self.config.latency_threshold)
        summaries = {name: self.series[f"target:{name}"].summary() for name in self.plan.targets
                     if f"target:{name}" in self.series and not self.series[f"target:{name}"].unroutable}
        access = [self.series[f"hop:{ttl}"].summary() for ttl in range(2, self.config.hops + 2)
                  if f"hop:{ttl}" in self.series]
        gateway_summary = self.series["gateway"].summary() if "gateway" in self.series else None
        if gateway_summary is not None and not (self.plan.gateway_answers or self.gateway_answered):
            gateway_summary = None  # one that never answers pings says nothing about the LAN
        segment, reason = locate(gateway_summary, access, summaries, limits)
        current = self.tracker.current
        return ConnectivityPayload(
            window_seconds=seconds, method=self.sampler.method,
            up=current is None, down_seconds=self.tracker.down_seconds(started, ended),
            outage_kind=current.kind if current else None,
            outage_start_seconds=current.start.wall if current else None,
            gateway=gateway, targets=targets, hops=hops,
            dns=[self._dns_stats(resolver, outcomes) for resolver, outcomes in self.dns.items()],
            http=[self._http_stats(url, outcomes, self.http_error) for url, outcomes in self.http.items()],
            segment=segment, segment_reason=reason[:1000],
        )

    def _echo_stats(self, name: str, role: EchoRole, series: _Series | None,
                    address: str | None) -> EchoStats:
        if series is None:
            return EchoStats(target=name, address=address, role=role,
                             method=self.sampler.method, sent=0, received=0,
                             error=self.plan.unresolved.get(name, "not probed"))
        if series.unroutable:
            return EchoStats(target=name, address=address, role=role, method=self.sampler.method,
                             sent=0, received=0, error=series.error)
        s = series.summary()
        return EchoStats(
            target=name, address=address, role=role, method=self.sampler.method,
            sent=s.sent, received=s.received, loss_ratio=s.loss_ratio,
            latency_min_seconds=s.minimum, latency_mean_seconds=s.mean, latency_p50_seconds=s.p50,
            latency_p90_seconds=s.p90, latency_p99_seconds=s.p99, latency_max_seconds=s.maximum,
            jitter_seconds=s.jitter, error=series.error if s.received < s.sent else None)

    def _hop_stats(self, ttl: int) -> HopStats:
        series = self.series[f"hop:{ttl}"]
        s = series.summary()
        responder = series.responders.most_common(1)[0][0] if series.responders else None
        return HopStats(ttl=ttl, address=responder, segment="lan" if ttl == 1 else "access",
                        sent=s.sent, received=s.received, loss_ratio=s.loss_ratio,
                        latency_p50_seconds=s.p50, latency_max_seconds=s.maximum)

    @staticmethod
    def _dns_stats(resolver: Resolver, outcomes: list[DnsOutcome]) -> DnsStats:
        times = sorted(o.seconds for o in outcomes if o.seconds is not None)
        failed = [o for o in outcomes if o.seconds is None]
        return DnsStats(
            server=_resolver_name(resolver), queries=len(outcomes), answered=len(times),
            failure_ratio=len(failed) / len(outcomes) if outcomes else None,
            latency_p50_seconds=percentile(times, 0.5), latency_p90_seconds=percentile(times, 0.9),
            latency_max_seconds=times[-1] if times else None,
            latency_mean_seconds=sum(times) / len(times) if times else None,
            error=failed[-1].error if failed else None)

    @staticmethod
    def _http_stats(url: str, outcomes: list[HttpOutcome], setup_error: str | None) -> HttpStats:
        good = [o for o in outcomes if o.error is None]
        ttfb = sorted(o.ttfb_seconds for o in good if o.ttfb_seconds is not None)
        connect = sorted(o.connect_seconds for o in good if o.connect_seconds is not None)
        # A status outside HTTP's 100-599 (LinkedIn's 999) is the service's odd answer, not
        # a number to record: it must not cost the window its record.
        statuses = [o.status for o in outcomes if o.status is not None and 100 <= o.status <= 599]
        failed = [o for o in outcomes if o.error is not None]
        return HttpStats(
            url=url, requests=len(outcomes), succeeded=len(good),
            failure_ratio=len(failed) / len(outcomes) if outcomes else None,
            status=statuses[-1] if statuses else None, connect_p50_seconds=percentile(connect, 0.5),
            ttfb_p50_seconds=percentile(ttfb, 0.5), ttfb_p90_seconds=percentile(ttfb, 0.9),
            ttfb_max_seconds=ttfb[-1] if ttfb else None,
            ttfb_mean_seconds=sum(ttfb) / len(ttfb) if ttfb else None,
            error=(failed[-1].error if failed else setup_error or None))


def _resolver_name(resolver: Resolver) -> str:
    """The label as configured; each resolver of "system" with its address."""
    return resolver.label if resolver.label != "system" else f"system/{resolver.host}"
