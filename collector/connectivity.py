"""Connectivity in the collector: totals kept at ingest, and its families on /metrics.

At ingest (``update_connectivity``, called from ``collector.ingest.store`` with the
records a batch actually added, so a duplicate never counts twice): per agent and outage
kind the ended outages and their seconds, and per agent the start of its first
successful window (where the time it observed begins).

At scrape time (``read_connectivity`` then ``connectivity_families``): the latest window
of each agent in full (is it up, echo latency as a summary, loss, jitter, hops, DNS, HTTP),
the outage totals, and per school the availability over 1, 7 and 30 days.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import ColumnElement, Connection, case, select
from sqlalchemy.dialects import postgresql, sqlite

from agent.wire import OutageKind, OutagePayload, Record
from collector.availability import (
    Outage,
    SchoolHistory,
    SchoolKey,
    ongoing_outage,
    read_school_outages,
    school_availability,
)
from collector.db.schema import agents, connectivity_first_windows, connectivity_outage_totals
from collector.exposition import Family, FirstSeries, LabelValues, stored_number

OUTAGE_KINDS: tuple[str, ...] = get_args(OutageKind)
# A sum of outage seconds stops here (3e10 years): only bogus durations get near it, and
# PostgreSQL fails a float overflow, which would fail that batch on every retry.
SECONDS_CEILING = 1e18

IDENTITY = ("board", "school", "agent")
LATEST = "latest connectivity window, updated when the agent reports"
TOTAL = "since the agent enrolled, updated when the agent reports"
# A summary's `_sum` and `_count` here are one window's, not running totals since a start.
WINDOW_SUMS = ("_sum and _count cover the latest window only and restart with every window, "
               "so rate() or increase() over them means nothing")

# (quantile label, EchoStats field): the window's distribution of round trips. Each
# family is a summary with these quantiles, and `_sum` / `_count` from the payload's mean
# and number of observations (round trips received, lookups answered, requests succeeded).
ECHO_QUANTILES = (("0", "latency_min_seconds"), ("0.5", "latency_p50_seconds"),
                  ("0.9", "latency_p90_seconds"), ("0.99", "latency_p99_seconds"),
                  ("1", "latency_max_seconds"))
DNS_QUANTILES = (("0.5", "latency_p50_seconds"), ("0.9", "latency_p90_seconds"),
                 ("1", "latency_max_seconds"))
HTTP_QUANTILES = (("0.5", "ttfb_p50_seconds"), ("0.9", "ttfb_p90_seconds"),
                  ("1", "ttfb_max_seconds"))


# --- at ingest -------------------------------------------------------------------------


def update_connectivity(conn: Connection, agent_id: int, accepted: list[Record]) -> None:
    """Add this batch's ended outages to the agent's totals, and move its first window
    back if the batch holds an earlier one (windows delivered late after an outage)."""
    added: dict[str, list[float]] = {}
    first: float | None = None
    for record in accepted:
        if not record.ok:
            continue  # a run that could not measure observed nothing
        if record.kind == "outage":
            # Validated already; parsed again for typed values (the stored payload keeps
            # what the agent sent, and pydantic accepts "12" for a float).
            outage = OutagePayload.model_validate(record.payload)
            counts = added.setdefault(outage.outage_kind, [0, 0.0])
            counts[0] += 1
            counts[1] += outage.duration_seconds
        elif record.kind == "connectivity":
            # Not filtered by clock_synchronized: many agents never say they are (containers,
            # a Pi without NTP status). A clock far behind is bounded by the enrolment time
            # when availability is computed.
            start = record.clock.wall_time_seconds
            first = start if first is None else min(first, start)
    totals_statement, first_statement = _statements(conn.dialect.name)
    if added:
        conn.execute(totals_statement, [
            {"agent_id": agent_id, "outage_kind": kind, "outages_total": count,
             "outage_seconds_total": min(seconds, SECONDS_CEILING)}
            for kind, (count, seconds) in sorted(added.items())])
    if first is not None:
        conn.execute(first_statement, {"agent_id": agent_id, "first_window_at": first})


@functools.cache
def _statements(dialect_name: str) -> tuple[Any, Any]:
    """Built once per dialect: building them per batch cost more than running them."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    totals = dialect.insert(connectivity_outage_totals)
    seconds = connectivity_outage_totals.c.outage_seconds_total
    upsert_totals = totals.on_conflict_do_update(
        index_elements=["agent_id", "outage_kind"],
        set_={"outages_total": connectivity_outage_totals.c.outages_total
              + totals.excluded.outages_total,
              "outage_seconds_total": case(
                  (seconds > SECONDS_CEILING - totals.excluded.outage_seconds_total, SECONDS_CEILING),
                  else_=seconds + totals.excluded.outage_seconds_total)})
    firsts = dialect.insert(connectivity_first_windows)
    # Only an earlier window rewrites the row: nearly every batch leaves it untouched.
    upsert_first = firsts.on_conflict_do_update(
        index_elements=["agent_id"],
        set_={"first_window_at": firsts.excluded.first_window_at},
        where=firsts.excluded.first_window_at < connectivity_first_windows.c.first_window_at)
    return upsert_totals, upsert_first


# --- at scrape time --------------------------------------------------------------------


@dataclass
class StoredConnectivity:
    """What the store keeps for connectivity beyond the latest windows."""

    totals: Sequence[Any]  # rows of connectivity_outage_totals, live agents
    observing: set[int]  # live agents that have sent a successful window
    schools: dict[SchoolKey, SchoolHistory]


def read_connectivity(conn: Connection, live: ColumnElement[bool], now: float) -> StoredConnectivity:
    totals = conn.execute(
        select(connectivity_outage_totals)
        .join(agents, agents.c.id == connectivity_outage_totals.c.agent_id).where(live)).all()
    observing = set(conn.scalars(
        select(connectivity_first_windows.c.agent_id)
        .join(agents, agents.c.id == connectivity_first_windows.c.agent_id).where(live)))
    return StoredConnectivity(totals, observing, read_school_outages(conn, now))


class _Summary:
    """A summary family of the latest windows: per label set its quantiles and, where the
    payload gives them, the window's `_sum` and `_count`. As with ``FirstSeries``, the first
    label set named counts (all its samples: a second one must not fill in the gaps)."""

    def __init__(self, family: Family) -> None:
        self.family = family
        self.seen: set[LabelValues] = set()

    def add(self, labels: LabelValues, quantiles: Sequence[tuple[str, Any]], count: Any,
            mean: Any) -> None:
        if labels in self.seen:
            return
        self.seen.add(labels)
        for quantile, value in quantiles:
            number = stored_number(value)
            if number is not None:
                self.family.add((*labels, quantile), number)
        sum_and_count = _window_sum(count, mean)
        if sum_and_count is not None:
            self.family.add_sum_count(labels, *sum_and_count)


def _window_sum(count_value: Any, mean_value: Any) -> tuple[float, float] | None:
    """A window's sum and count of observations from its count and mean; None when the
    payload does not give both (nothing is made up)."""
    count = stored_number(count_value)
    if count is None or count < 0:
        return None
    if count == 0:
        return 0, count  # no observation in the window: an empty sum, honestly 0
    mean = stored_number(mean_value)
    if mean is None:
        return None
    total = mean * count
    # Only absurd values overflow: an infinite sum would be no figure at all.
    return (total, count) if math.isfinite(total) else None


def connectivity_families(latest_rows: Sequence[Any], stored: StoredConnectivity,
                          labels: dict[int, LabelValues], now: float) -> list[Family]:
    """Every connectivity family: the latest windows, the outage totals, availability."""
    windows = _WindowFamilies()
    ongoing: dict[SchoolKey, list[Outage]] = {}
    for row in latest_rows:
        identity = labels.get(row.agent_id)
        if identity is None or row.kind != "connectivity" or not row.payload:
            continue
        windows.add(identity, row.payload)
        outage = ongoing_outage(row.payload, row.measured_at)
        if outage is not None:
            ongoing.setdefault((identity[0], identity[1]), []).append(outage)
    return [*windows.families(), *_total_families(stored, labels),
            _availability_family(stored, labels, ongoing, now)]


class _WindowFamilies:
    """The families of the latest window of each agent."""

    def __init__(self) -> None:
        echo = (*IDENTITY, "target", "role")
        hop = (*IDENTITY, "ttl", "address", "segment")
        self.up = _gauge("schoolnet_connectivity_up",
                         "Whether no outage was under way at the end of the agent's latest "
                         "connectivity window (1) or one was (0)", IDENTITY)
        self.active = _gauge("schoolnet_connectivity_outage_active",
                             "The outage under way at the end of the latest window, by kind "
                             "(isp, lan, dns, internet), value 1; absent when none is",
                             (*IDENTITY, "kind"))
        self.down = _gauge("schoolnet_connectivity_window_down_seconds",
                           "Time inside an outage within the latest window, seconds", IDENTITY)
        self.info = _gauge("schoolnet_connectivity_info",
                           "How the latest window's echo probes were sent (method) and where "
                           "its trouble is (segment: none, lan, access, beyond, unknown), value 1",
                           (*IDENTITY, "method", "segment"))
        self.latency = _summary("schoolnet_latency_seconds",
                                "Round-trip time of echo probes to the target within the latest "
                                "window, seconds, by quantile (0 = min, 1 = max); _count: replies "
                                "received, _sum: their round trips", (*echo, "quantile"))
        self.loss = _gauge("schoolnet_packet_loss_ratio",
                           "Share of echo probes to the target without a reply within the "
                           "latest window, a ratio (1 = all lost)", echo)
        self.jitter = _gauge("schoolnet_jitter_seconds",
                             "Mean absolute difference of consecutive round trips to the target "
                             "within the latest window (RFC 3550 style), seconds", echo)
        self.probes = _gauge("schoolnet_packet_loss_probes",
                             "Echo probes sent to the target within the latest window, a count "
                             "(the sample size of the loss ratio)", echo)
        self.hop_latency = _gauge("schoolnet_hop_latency_seconds",
                                  "Median round trip to the router ttl hops away (segment: lan or "
                                  "the provider's access; address empty when none answered) "
                                  "within the latest window, seconds", hop)
        self.hop_loss = _gauge("schoolnet_hop_loss_ratio",
                               "Share of TTL-limited probes to the router ttl hops away without "
                               "an answer within the latest window, a ratio", hop)
        self.dns_latency = _summary("schoolnet_dns_lookup_seconds",
                                    "Resolution time of the resolver within the latest window, "
                                    "seconds, by quantile (1 = max); _count: lookups answered with "
                                    "an address, _sum: their resolution times",
                                    (*IDENTITY, "server", "quantile"))
        self.dns_failure = _gauge("schoolnet_dns_failure_ratio",
                                  "Share of lookups the resolver did not answer with an address "
                                  "within the latest window, a ratio", (*IDENTITY, "server"))
        per_url = (*IDENTITY, "url")
        self.ttfb = _summary("schoolnet_http_time_to_first_byte_seconds",
                             "From the start of a request to the service to the first byte of "
                             "its response within the latest window, seconds, by quantile "
                             "(1 = max); _count: requests answered with a status below 500, "
                             "_sum: their times to first byte", (*per_url, "quantile"))
        self.connect = _gauge("schoolnet_http_connect_seconds",
                              "Median name lookup plus TCP (and TLS) set-up to the service within "
                              "the latest window, seconds", per_url)
        self.http_failure = _gauge("schoolnet_http_failure_ratio",
                                   "Share of requests to the service that failed or got a status "
                                   "of 500 or more within the latest window, a ratio", per_url)
        self.status = _gauge("schoolnet_http_status_code",
                             "HTTP status of the latest request to the service in the latest "
                             "window, a code", per_url)

    def add(self, identity: LabelValues, payload: Mapping[str, Any]) -> None:
        up = _flag(payload.get("up"))
        if up is not None:
            self.up.add(identity, 1 if up else 0)
        kind = payload.get("outage_kind")
        if isinstance(kind, str):
            self.active.add((*identity, kind), 1)
        self.down.add(identity, payload.get("down_seconds"))
        self.info.add((*identity, _text(payload.get("method")), _text(payload.get("segment"))), 1)
        for echo in _items([payload.get("gateway"), *_items(payload.get("targets"))]):
            labels = (*identity, _text(echo.get("target")), _text(echo.get("role")))
            self.latency.add(labels, [(q, echo.get(field)) for q, field in ECHO_QUANTILES],
                             echo.get("received"), echo.get("latency_mean_seconds"))
            self.loss.add(labels, echo.get("loss_ratio"))
            self.jitter.add(labels, echo.get("jitter_seconds"))
            self.probes.add(labels, echo.get("sent"))
        for hop in _items(payload.get("hops")):
            labels = (*identity, _text(hop.get("ttl")), _text(hop.get("address")),
                      _text(hop.get("segment")))
            self.hop_latency.add(labels, hop.get("latency_p50_seconds"))
            self.hop_loss.add(labels, hop.get("loss_ratio"))
        for dns in _items(payload.get("dns")):
            labels = (*identity, _text(dns.get("server")))
            self.dns_latency.add(labels, [(q, dns.get(field)) for q, field in DNS_QUANTILES],
                                 dns.get("answered"), dns.get("latency_mean_seconds"))
            self.dns_failure.add(labels, dns.get("failure_ratio"))
        for http in _items(payload.get("http")):
            labels = (*identity, _text(http.get("url")))
            self.ttfb.add(labels, [(q, http.get(field)) for q, field in HTTP_QUANTILES],
                          http.get("succeeded"), http.get("ttfb_mean_seconds"))
            self.connect.add(labels, http.get("connect_p50_seconds"))
            self.http_failure.add(labels, http.get("failure_ratio"))
            self.status.add(labels, http.get("status"))

    def families(self) -> list[Family]:
        return [series.family for series in vars(self).values()]


def _total_families(stored: StoredConnectivity, labels: dict[int, LabelValues]) -> list[Family]:
    per_kind = (*IDENTITY, "kind")
    outages = Family("schoolnet_connectivity_outages",
                     "Outages the agent saw end, by kind (isp: the provider's side, lan: the "
                     "school's network, dns: only name resolution, internet: side unknown), a count "
                     + TOTAL, "counter", per_kind)
    seconds = Family("schoolnet_connectivity_outage_seconds",
                     "Time the agent's ended outages lasted, by kind, seconds (measured on the "
                     "agent's monotonic clock), " + TOTAL, "counter", per_kind)
    kept = {(row.agent_id, row.outage_kind): row for row in stored.totals}
    agent_ids = stored.observing | {agent_id for agent_id, _ in kept}
    for agent_id in sorted(agent_ids):
        identity = labels.get(agent_id)
        if identity is None:
            continue
        # Every kind, 0 included: increase() and rate() need the series before the first outage.
        for kind in sorted({*OUTAGE_KINDS, *(k for a, k in kept if a == agent_id)}):
            row = kept.get((agent_id, kind))
            outages.add((*identity, kind), row.outages_total if row else 0)
            seconds.add((*identity, kind), row.outage_seconds_total if row else 0.0)
    return [outages, seconds]


def _availability_family(stored: StoredConnectivity, labels: dict[int, LabelValues],
                         ongoing: dict[SchoolKey, list[Outage]], now: float) -> Family:
    family = Family("schoolnet_connectivity_availability_ratio",
                    "Share of the observed time within the window (1d, 7d, 30d; observed from "
                    "the school's first connectivity window when later) without an outage seen "
                    "by any of the school's agents (outages: all kinds, or isp only), a ratio; "
                    "computed from the store at each scrape",
                    "gauge", ("board", "school", "window", "outages"))
    # Schools with an agent on the page; their history counts all their agents' records.
    shown = sorted({(identity[0], identity[1]) for identity in labels.values()})
    for school in shown:
        history = stored.schools.get(school)
        if history is None:
            continue
        with_ongoing = SchoolHistory(history.first_window_at,
                                     [*history.outages, *ongoing.get(school, ())])
        for (window, outage_set), ratio in sorted(school_availability(with_ongoing, now).items()):
            family.add((*school, window, outage_set), ratio)
    return family


def _gauge(name: str, help_text: str, labelnames: tuple[str, ...]) -> FirstSeries:
    return FirstSeries(Family(name, f"{help_text}; {LATEST}", "gauge", labelnames))


def _summary(name: str, help_text: str, labelnames: tuple[str, ...]) -> _Summary:
    return _Summary(Family(name, f"{help_text}; {WINDOW_SUMS}; {LATEST}", "summary", labelnames))


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    """A label value as the payload says it; empty when it says nothing."""
    return "" if value is None else str(value)


_OPTIONAL_FLAG: TypeAdapter[bool | None] = TypeAdapter(bool | None)


def _flag(value: Any) -> bool | None:
    """A stored flag, read with the rules it was validated with."""
    try:
        return _OPTIONAL_FLAG.validate_python(value)
    except ValidationError:
        return None
