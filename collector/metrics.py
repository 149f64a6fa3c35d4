"""``/metrics``: fresh metric families from the store at every scrape.

The store is the truth; this page shows its current state (the latest value per agent
and kind). Agents silent for longer than the expiry drop out, so a decommissioned Pi
does not haunt the dashboards; their history stays in the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, func, select

from agent.wire import EVENT_KINDS, RecordError
from collector.connectivity import StoredConnectivity, connectivity_families, read_connectivity
from collector.db.schema import agents, bandwidth_totals, boards, given_up_ranges, latest, schools
from collector.exposition import Family, LabelValues, render
from collector.incident_metrics import incident_families
from collector.ingest import IngestOutcome
from collector.rooms import (
    DEFAULT_ROOM_EXPIRY,
    DEFAULT_THRESHOLDS,
    Thresholds,
    read_rooms,
    room_families,
)
from collector.users import users_families
from collector.verdict_metrics import VerdictFamilies
from collector.wifi import wifi_families

IDENTITY = ("board", "school", "agent")
ON_REPORT = "updated when the agent reports"
LIVE = "counted as they happen, from zero when the process starts"


@dataclass(frozen=True)
class PayloadMetric:
    """A payload field shown as a metric of the latest record of its kind."""

    field: str
    name: str
    help: str
    counter: bool = False


SYSTEM_METRICS = [
    PayloadMetric("cpu_usage_ratio", "schoolnet_system_cpu_usage_ratio",
                  "Share of CPU time the agent's host was busy (1 = every core)"),
    PayloadMetric("load_average_1m", "schoolnet_system_load_average_1m",
                  "Load average over 1 minute of the agent's host (runnable tasks)"),
    PayloadMetric("load_average_5m", "schoolnet_system_load_average_5m",
                  "Load average over 5 minutes of the agent's host (runnable tasks)"),
    PayloadMetric("load_average_15m", "schoolnet_system_load_average_15m",
                  "Load average over 15 minutes of the agent's host (runnable tasks)"),
    PayloadMetric("memory_total_bytes", "schoolnet_system_memory_total_bytes",
                  "Memory of the agent's host, bytes"),
    PayloadMetric("memory_available_bytes", "schoolnet_system_memory_available_bytes",
                  "Memory available on the agent's host, bytes"),
    PayloadMetric("temperature_celsius", "schoolnet_system_temperature_celsius",
                  "Hottest sensor of the agent's host, degrees Celsius"),
    PayloadMetric("uplink_speed_bytes_per_second",
                  "schoolnet_system_uplink_speed_bytes_per_second",
                  "Negotiated link speed of the agent's uplink interface, bytes per second"),
    PayloadMetric("uplink_received_bytes_total", "schoolnet_system_uplink_receive_bytes",
                  "Bytes received on the agent's uplink interface since the host booted",
                  counter=True),
    PayloadMetric("uplink_sent_bytes_total", "schoolnet_system_uplink_transmit_bytes",
                  "Bytes sent on the agent's uplink interface since the host booted",
                  counter=True),
    PayloadMetric("agent_resident_memory_bytes", "schoolnet_agent_resident_memory_bytes",
                  "Resident memory of the agent process, bytes"),
    PayloadMetric("state_dir_free_bytes", "schoolnet_agent_state_dir_free_bytes",
                  "Free space where the agent keeps its outbox, bytes"),
]

BANDWIDTH_METRICS = [
    PayloadMetric("download_bytes_per_second", "schoolnet_bandwidth_download_bytes_per_second",
                  "Download goodput of the latest bandwidth test, bytes per second"),
    PayloadMetric("upload_bytes_per_second", "schoolnet_bandwidth_upload_bytes_per_second",
                  "Upload goodput of the latest bandwidth test, bytes per second"),
    PayloadMetric("idle_latency_seconds", "schoolnet_bandwidth_idle_latency_seconds",
                  "Round-trip time to the test server before the latest test, seconds"),
    PayloadMetric("download_loaded_latency_seconds",
                  "schoolnet_bandwidth_download_loaded_latency_seconds",
                  "Round-trip time to the test server while the latest test downloaded "
                  "(latency under load), seconds"),
    PayloadMetric("upload_loaded_latency_seconds",
                  "schoolnet_bandwidth_upload_loaded_latency_seconds",
                  "Round-trip time to the test server while the latest test uploaded "
                  "(latency under load), seconds"),
    PayloadMetric("retest_download_bytes_per_second",
                  "schoolnet_bandwidth_retest_download_bytes_per_second",
                  "Download goodput of the retest on a second server that the latest test "
                  "made because it came out below the contract, bytes per second"),
    PayloadMetric("retest_upload_bytes_per_second",
                  "schoolnet_bandwidth_retest_upload_bytes_per_second",
                  "Upload goodput of the retest on a second server that the latest test "
                  "made because it came out below the contract, bytes per second"),
    PayloadMetric("contract_download_bytes_per_second",
                  "schoolnet_agent_contract_download_bytes_per_second",
                  "Advertised download speed of the school's line as the agent knew it at "
                  "the latest bandwidth test (its settings from the collector), bytes per second"),
    PayloadMetric("contract_upload_bytes_per_second",
                  "schoolnet_agent_contract_upload_bytes_per_second",
                  "Advertised upload speed of the school's line as the agent knew it at "
                  "the latest bandwidth test (its settings from the collector), bytes per second"),
    # "More users, less bandwidth": the census count beside each test, so a slow result
    # can be read against how busy the school's network was.
    PayloadMetric("concurrent_devices", "schoolnet_bandwidth_concurrent_devices",
                  "Devices on the school's network when the latest bandwidth test ran (the "
                  "agent's census count at that moment), a count; absent when none was made"),
]

# Per-direction values of the latest test: (payload field, metric, help).
BANDWIDTH_DIRECTION_METRICS = [
    ("{direction}_streams", "schoolnet_bandwidth_streams",
     "Parallel TCP streams the latest bandwidth test used at most, per direction, a count"),
    ("{direction}_retransmits", "schoolnet_bandwidth_retransmits",
     "TCP segments retransmitted during the latest bandwidth test, per direction, a count "
     "for that test alone (absent where the backend cannot see them)"),
    ("{direction}_cross_traffic_bytes", "schoolnet_bandwidth_cross_traffic_bytes",
     "Other traffic on the agent's interface while the latest bandwidth test ran, per "
     "direction, bytes"),
]
DIRECTIONS = ("download", "upload")
TEST_RESULTS = ("valid", "invalid", "failed", "skipped")

PAYLOAD_METRICS = {"system": SYSTEM_METRICS, "bandwidth": BANDWIDTH_METRICS}


class StoreCollector(Collector):
    """Builds every per-agent and per-room family from the store, with nine queries per
    scrape; only one reads `records`, for the outages of the last 30 days (through a
    partial index), and none reads `room_observations`.

    Rooms leave the page when their newest observation is older than
    ``room_expiry_seconds`` (surveys are rare: the default is over a year); their grades
    come from ``thresholds`` at each scrape."""

    def __init__(self, engine: Engine, expiry_seconds: float,
                 clock: Callable[[], float] = time.time, *,
                 thresholds: Thresholds = DEFAULT_THRESHOLDS,
                 room_expiry_seconds: float = DEFAULT_ROOM_EXPIRY,
                 verdicts: VerdictFamilies | None = None) -> None:
        self.engine = engine
        self.verdicts = verdicts
        self.expiry_seconds = expiry_seconds
        self.clock = clock
        self.thresholds = thresholds
        self.room_expiry_seconds = room_expiry_seconds

    def describe(self) -> list[Metric]:
        # Do not query the store at registration time.
        return []

    def collect(self) -> Iterator[Metric]:
        for family in self.families():
            yield family.to_metric()

    def families(self) -> list[Family]:
        now = self.clock()
        since = now - self.expiry_seconds
        live = (agents.c.revoked_at.is_(None)) & (agents.c.last_report_at >= since)
        identity = (select(agents.c.id, boards.c.slug.label("board"),
                           schools.c.slug.label("school"), agents.c.slug.label("agent"))
                    .join(schools, schools.c.id == agents.c.school_id)
                    .join(boards, boards.c.id == schools.c.board_id))
        with self.engine.connect() as conn:
            agent_rows = conn.execute(
                identity.add_columns(agents.c.version, agents.c.last_report_at,
                                     agents.c.outbox_records, agents.c.outbox_bytes)
                .where(live)).all()
            latest_rows = conn.execute(
                select(latest.c.agent_id, latest.c.kind, latest.c.measured_at, latest.c.payload,
                       latest.c.last_run_at, latest.c.last_run_ok, latest.c.runs_total,
                       latest.c.failures_total)
                .join(agents, agents.c.id == latest.c.agent_id).where(live)).all()
            given_up_rows = conn.execute(
                select(given_up_ranges.c.agent_id, given_up_ranges.c.reason,
                       func.sum(given_up_ranges.c.last_seq - given_up_ranges.c.first_seq + 1))
                .join(agents, agents.c.id == given_up_ranges.c.agent_id).where(live)
                .group_by(given_up_ranges.c.agent_id, given_up_ranges.c.reason)).all()
            totals_rows = conn.execute(
                select(bandwidth_totals)
                .join(agents, agents.c.id == bandwidth_totals.c.agent_id).where(live)).all()
            connectivity = read_connectivity(conn, live, now)
            room_rows = read_rooms(conn, now - self.room_expiry_seconds)
            incident_rows = incident_families(conn)

        labels: dict[int, LabelValues] = {
            row.id: (row.board, row.school, row.agent) for row in agent_rows}
        return [*self._agent_families(agent_rows, given_up_rows, labels),
                *latest_families(latest_rows, labels),
                *bandwidth_families(latest_rows, totals_rows, labels),
                *connectivity_families(latest_rows, connectivity, labels, now),
                *wifi_families(latest_rows, labels),
                *users_families(latest_rows, labels),
                *room_families(room_rows, self.thresholds),
                *incident_rows,
                *(self.verdicts.families() if self.verdicts is not None else [])]

    def _agent_families(self, agent_rows: Sequence[Any], given_up_rows: Sequence[Any],
                        labels: dict[int, LabelValues]) -> list[Family]:
        info = Family("schoolnet_agent_info", "Agent metadata, value 1; " + ON_REPORT,
                      "gauge", (*IDENTITY, "version"))
        last = Family("schoolnet_agent_last_report_timestamp_seconds",
                      "When the agent last delivered a batch, Unix seconds (collector clock); "
                      + ON_REPORT, "gauge", IDENTITY)
        depth = Family("schoolnet_agent_outbox_records",
                       "Records waiting in the agent's outbox; " + ON_REPORT, "gauge", IDENTITY)
        size = Family("schoolnet_agent_outbox_bytes",
                      "Bytes waiting in the agent's outbox; " + ON_REPORT, "gauge", IDENTITY)
        for row in agent_rows:
            identity = labels[row.id]
            info.add((*identity, row.version or ""), 1)
            last.add(identity, row.last_report_at)
            if row.outbox_records is not None:
                depth.add(identity, row.outbox_records)
                size.add(identity, row.outbox_bytes)
        given_up = Family(
            "schoolnet_agent_given_up_records",
            "Records the agent gave up on (evicted: outbox full; dead_lettered: refused as "
            "malformed), as the agent reported them; " + ON_REPORT, "counter", (*IDENTITY, "reason"))
        for agent_id, reason, count in given_up_rows:
            given_up.add((*labels[agent_id], reason), count)
        return [info, last, depth, size, given_up]


def latest_families(latest_rows: Sequence[Any], labels: dict[int, LabelValues]) -> list[Family]:
    """The families of each agent's latest record per kind: its payload's values, and the
    probe's runs, failures and last run."""
    per_probe = (*IDENTITY, "probe")
    values = {
        kind: [(metric, Family(metric.name, f"{metric.help}; latest value, {ON_REPORT}",
                               "counter" if metric.counter else "gauge", IDENTITY))
               for metric in kind_metrics]
        for kind, kind_metrics in PAYLOAD_METRICS.items()
    }
    runs = Family("schoolnet_probe_runs",
                  "Probe runs stored (successful or not), a count; " + ON_REPORT,
                  "counter", per_probe)
    failures = Family("schoolnet_probe_failures",
                      "Probe runs that could not measure, a count; " + ON_REPORT,
                      "counter", per_probe)
    last_run = Family("schoolnet_probe_last_run_timestamp_seconds",
                      "When the probe's newest stored run measured, Unix seconds "
                      "(agent clock); " + ON_REPORT,
                      "gauge", per_probe)
    last_success = Family(
        "schoolnet_probe_last_success_timestamp_seconds",
        "When the probe last measured successfully, Unix seconds (agent clock); the "
        "kind's other metrics show that run; " + ON_REPORT, "gauge", per_probe)
    success = Family("schoolnet_probe_success",
                     "Whether the probe's newest stored run measured (1) or failed (0); "
                     + ON_REPORT, "gauge", per_probe)
    test_time = Family("schoolnet_bandwidth_test_timestamp_seconds",
                       "When the latest bandwidth test ran, Unix seconds (agent clock); "
                       + ON_REPORT,
                       "gauge", IDENTITY)
    test_info = Family("schoolnet_bandwidth_test_info",
                       "How the latest bandwidth test was made, value 1; " + ON_REPORT,
                       "gauge", (*IDENTITY, "backend", "server", "valid"))

    for row in latest_rows:
        identity = labels.get(row.agent_id)
        if identity is None or row.kind in EVENT_KINDS:
            # An event (an outage) is not a probe: no runs, no failures. Ingest writes
            # no such rows; a store filled before it skipped them may hold some.
            continue
        probe = (*identity, row.kind)
        runs.add(probe, row.runs_total)
        failures.add(probe, row.failures_total)
        last_run.add(probe, row.last_run_at)
        success.add(probe, 1 if row.last_run_ok else 0)
        if row.measured_at is not None:
            last_success.add(probe, row.measured_at)
        payload = row.payload or {}
        for metric, family in values.get(row.kind, ()):
            value = payload.get(metric.field)
            if value is not None:
                family.add(identity, value)
        if row.kind == "bandwidth" and payload:
            test_time.add(identity, row.measured_at)
            valid = "false" if payload.get("invalid_reasons") else "true"
            test_info.add((*identity, str(payload.get("backend", "")),
                           str(payload.get("server", "")), valid), 1)
    payload_families = [family for pairs in values.values() for _, family in pairs]
    return [*payload_families, runs, failures, last_run, last_success, success, test_time,
            test_info]


def bandwidth_families(latest_rows: Sequence[Any], totals_rows: Sequence[Any],
                       labels: dict[int, LabelValues]) -> list[Family]:
    """What the latest bandwidth test says beyond its plain values (per direction, derived
    ratios, validity, lease, retest), and the agent's test totals kept at ingest."""
    latest_value = f"latest value, {ON_REPORT}"
    per_direction = (*IDENTITY, "direction")
    directional = [
        (field, Family(name, f"{help_text}; {latest_value}", "gauge", per_direction))
        for field, name, help_text in BANDWIDTH_DIRECTION_METRICS]
    ratios = {direction: Family(
        f"schoolnet_bandwidth_{direction}_ratio",
        f"{direction.title()} goodput of the latest bandwidth test over the advertised "
        f"{direction} speed the agent knew (1 = as advertised), a ratio; {latest_value}",
        "gauge", IDENTITY) for direction in DIRECTIONS}
    valid = Family("schoolnet_bandwidth_valid",
                   "Whether the latest bandwidth test may be judged against the contract (1) or "
                   "the agent found it invalid (0); " + latest_value, "gauge", IDENTITY)
    leased = Family("schoolnet_bandwidth_leased",
                    "Whether the latest bandwidth test ran in its school's turn granted by the "
                    "collector (1) or without it because the collector could not be reached (0); "
                    "absent when the record does not say; " + latest_value, "gauge", IDENTITY)
    retest = Family("schoolnet_bandwidth_retest_info",
                    "The retest on a second server that the latest bandwidth test made (ok: "
                    "whether it measured), value 1; absent when it made none; " + latest_value,
                    "gauge", (*IDENTITY, "server", "ok"))
    for row in latest_rows:
        identity = labels.get(row.agent_id)
        if identity is None or row.kind != "bandwidth" or not row.payload:
            continue
        payload = row.payload
        for direction in DIRECTIONS:
            for field, family in directional:
                value = _number(payload.get(field.format(direction=direction)))
                if value is not None:
                    family.add((*identity, direction), value)
            measured = _number(payload.get(f"{direction}_bytes_per_second"))
            advertised = _number(payload.get(f"contract_{direction}_bytes_per_second"))
            if measured is not None and advertised:
                ratios[direction].add(identity, measured / advertised)
        valid.add(identity, 0 if payload.get("invalid_reasons") else 1)
        was_leased = _flag(payload.get("leased"))
        if was_leased is not None:
            leased.add(identity, 1 if was_leased else 0)
        if payload.get("retest_server") or payload.get("retest_error"):
            retest.add((*identity, str(payload.get("retest_server") or ""),
                        "false" if payload.get("retest_error") else "true"), 1)

    test_bytes = Family(
        "schoolnet_bandwidth_test_bytes",
        "Bytes the agent's bandwidth tests moved (test traffic, failed tests included), per "
        "direction, a count since the agent enrolled; " + ON_REPORT, "counter", per_direction)
    tests = Family(
        "schoolnet_bandwidth_tests",
        "Bandwidth tests stored, by result (valid; invalid: measured but not to be judged; "
        "failed: could not measure; skipped: not run, the traffic budget was spent or another "
        "agent of the school kept the turn), a count since the agent enrolled; " + ON_REPORT,
        "counter", (*IDENTITY, "result"))
    for row in totals_rows:
        identity = labels.get(row.agent_id)
        if identity is None:
            continue
        for direction in DIRECTIONS:
            test_bytes.add((*identity, direction), getattr(row, f"{direction}_bytes_total"))
        for result in TEST_RESULTS:
            tests.add((*identity, result), getattr(row, f"tests_{result}_total"))
    return [*(family for _, family in directional), *ratios.values(), valid, leased, retest,
            test_bytes, tests]


# Stored payloads keep what the agent sent, and validation is lax ("12" passed as a
# number): read values with the same rules for arithmetic.
_OPTIONAL_NUMBER: TypeAdapter[float | None] = TypeAdapter(float | None)
_OPTIONAL_FLAG: TypeAdapter[bool | None] = TypeAdapter(bool | None)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value  # as sent: a count stays an integer on the page
    try:
        return _OPTIONAL_NUMBER.validate_python(value)
    except ValidationError:
        return None


def _flag(value: Any) -> bool | None:
    try:
        return _OPTIONAL_FLAG.validate_python(value)
    except ValidationError:
        return None


# What one record cannot say: counters kept at ingest over all of an agent's records. The
# remote_write snapshot sends them (and the aggregates over the store) at its own time.
CUMULATIVE_FAMILIES = frozenset({"schoolnet_probe_runs", "schoolnet_probe_failures"})


@dataclass(frozen=True)
class RecordAsLatest:
    """A stored record in the shape of a `latest` row, as if it were its agent's newest of
    its kind (a failed run: no good payload, like a latest row whose newest run failed)."""

    agent_id: int
    kind: str
    measured_at: float | None
    payload: Any
    last_run_at: float
    last_run_ok: bool
    runs_total: int = 1
    failures_total: int = 0


def record_families(kind: str, ok: bool, measured_at: float, payload: Any,
                    identity: LabelValues) -> list[Family]:
    """The families ``/metrics`` would show if this record were its agent's latest of its
    kind, built by the page's own builders (so names, labels and units are the page's),
    less what a single record cannot say (``CUMULATIVE_FAMILIES``, the outage totals, the
    availability over 30 days, rooms and verdicts: the snapshot's). Empty families are
    left out."""
    row = RecordAsLatest(0, kind, measured_at if ok else None, payload if ok else None,
                         measured_at, ok)
    rows, labels = [row], {0: identity}
    no_history = StoredConnectivity([], set(), {})
    families = [*latest_families(rows, labels), *bandwidth_families(rows, [], labels),
                *connectivity_families(rows, no_history, labels, measured_at),
                *wifi_families(rows, labels), *users_families(rows, labels)]
    return [family for family in families
            if family.rows and family.name not in CUMULATIVE_FAMILIES]


class CollectorMetrics:
    """The registry behind ``/metrics``: the store's families plus this process's counters.

    With ``remote_write`` the per-school families go to the receiver instead
    (collector/remote_write/) and the page carries this process's own series alone: with
    thousands of schools a page of all of them is what remote_write replaces."""

    def __init__(self, engine: Engine, expiry_seconds: float, *,
                 thresholds: Thresholds = DEFAULT_THRESHOLDS,
                 room_expiry_seconds: float = DEFAULT_ROOM_EXPIRY,
                 verdicts: VerdictFamilies | None = None,
                 remote_write: bool = False) -> None:
        # `_created` series double the page and no dashboard of ours reads them.
        disable_created_metrics()
        self.remote_write = remote_write
        self.store = StoreCollector(engine, expiry_seconds, thresholds=thresholds,
                                    room_expiry_seconds=room_expiry_seconds, verdicts=verdicts)
        # Everything, for prometheus_client users (tests, get_sample_value) …
        self.registry = CollectorRegistry()
        if not remote_write:
            self.registry.register(self.store)
        # … and the process counters alone, which the fast page appends.
        self.process_registry = CollectorRegistry()
        self.registry.register(self.process_registry)
        self.records = Counter(
            "schoolnet_collector_records",
            "Records received by this collector process, a count by status; " + LIVE,
            ["status"], registry=self.process_registry)
        self.rejected = Counter(
            "schoolnet_collector_records_rejected",
            "Records this collector process rejected, a count by reason; " + LIVE, ["reason"],
            registry=self.process_registry)
        self.batches = Counter(
            "schoolnet_collector_batches",
            "Ingest requests answered by this process, a count by HTTP status; " + LIVE,
            ["code"], registry=self.process_registry)
        for status in ("accepted", "duplicate", "rejected"):
            self.records.labels(status)
        for reason in RecordError.CODES:
            self.rejected.labels(reason)

    def render(self) -> bytes:
        """The /metrics page: the store's families through the fast writer, then this
        process's own counters through prometheus_client."""
        own = generate_latest(self.process_registry)
        return own if self.remote_write else render(self.store.families()).encode() + own

    def count_outcome(self, outcome: IngestOutcome) -> None:
        for status, count in outcome.statuses.items():
            self.records.labels(status).inc(count)
        for reason, count in outcome.rejected_by_code.items():
            self.rejected.labels(reason).inc(count)
