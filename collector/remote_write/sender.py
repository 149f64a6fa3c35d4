"""The remote_write sender: a background loop on every replica (collector/app.py).

Two parts (docs/remote-write.md):
- records: every stored record, at its original measurement time, from the queue in the
  database (collector/remote_write/queue.py). Claimed in a short transaction, sent with
  no transaction open, then deleted (2xx, or a 4xx that can never succeed: dropped and
  counted, as Prometheus does, so one bad batch cannot hold the queue up for ever) or
  released for a retry (5xx, 429, a timeout, a refused connection, and the answers that
  blame the URL or the credentials rather than the batch: 401, 403, 404, 405, 407, 3xx)
  after a back-off.
- the snapshot: every family of the /metrics page (agents, counters, aggregates, rooms,
  incidents, verdicts) at the collector's current time, every interval, by the one
  replica that holds the snapshot lease. Not retried: the next one replaces it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from collector.db.schema import agents, boards, records, schools
from collector.metrics import StoreCollector, record_families
from collector.remote_write import lease, queue
from collector.remote_write.encode import TimeSeries, compressed_write_request
from collector.remote_write.series import SeriesBatch

log = logging.getLogger("schoolnet.remote_write")

SNAPSHOT_LEASE = "remote_write_snapshot"
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 300.0
# How often an idle sender looks at the queue (a query per replica): records reach the
# receiver within about this after they are stored.
POLL_SECONDS = 2.0
# A snapshot of many thousands of agents goes in several requests of at most this many
# series (VictoriaMetrics and Prometheus take far larger ones; this keeps each small).
MAX_SERIES_PER_REQUEST = 10_000
# Statuses that say the URL or the credentials are wrong, not the batch (with any 3xx:
# redirects are not followed, a write must go to the URL configured): retried, not dropped.
ENDPOINT_REFUSALS = frozenset({401, 403, 404, 405, 407})
HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
           "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "schoolnet-collector"}


@dataclass(frozen=True)
class RemoteWriteConfig:
    url: str
    instance: str = "schoolnet-collector"
    interval: float = 60.0
    batch: int = 500
    token_file: Path | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class Answer:
    """What one request came to: sent; retry later (after at least ``retry_after``
    seconds, when the receiver said); or refused for good."""

    outcome: str  # "sent" | "retry" | "refused"
    reason: str = ""  # the failures counter's: timeout, connection, server_error, throttled,
    # endpoint, rejected
    retry_after: float | None = None
    detail: str = ""


class RemoteWriter:
    """One replica's sender. ``step()`` does what is due and says how long to wait."""

    def __init__(self, engine: Engine, config: RemoteWriteConfig, store: StoreCollector,
                 registry: CollectorRegistry, *, clock: Callable[[], float] = time.time,
                 client: httpx.Client | None = None, jitter: Callable[[], float] = random.random,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.engine = engine
        self.config = config
        self.store = store
        self.clock = clock
        self.jitter = jitter
        self.poll_seconds = poll_seconds
        self.client = client or httpx.Client(timeout=config.timeout, follow_redirects=False)
        # Who holds the snapshot lease: unique per process, readable in the table.
        self.holder = f"{socket.gethostname()[:32]}-{os.getpid()}-{secrets.token_hex(4)}"
        self.failures_in_row = 0
        self.retry_at = 0.0
        self.next_snapshot = 0.0
        self.metrics = SenderMetrics(registry, engine, clock)

    # --- the loop ----------------------------------------------------------------------

    def step(self) -> float:
        """Send the snapshot when due, then one batch of records; the seconds to wait
        before the next step (0: more records are waiting)."""
        now = self.clock()
        if now >= self.next_snapshot:
            self.next_snapshot = now + self.config.interval
            self.send_snapshot(now)
        now = self.clock()
        if now < self.retry_at:
            return min(self.retry_at, self.next_snapshot) - now
        done = self.send_records(now)
        if done is None:  # nothing queued
            return max(0.0, min(self.poll_seconds, self.next_snapshot - now))
        return 0.0 if done else max(0.0, min(self.retry_at, self.next_snapshot) - self.clock())

    def send_records(self, now: float) -> bool | None:
        """Claim, send and settle one batch: True when it was settled (sent or refused for
        good), False when it waits for a retry, None when the queue had nothing free."""
        hold = 2 * self.config.timeout + 60  # a claim outlives any request of ours
        claimed = queue.claim(self.engine, self.config.batch, now, hold)
        if not claimed:
            return None
        try:
            batch = self._record_series(claimed)
            if not batch.count:  # events and surveys: no series of their own
                queue.remove(self.engine, claimed)
                return True
            answer = self._post(batch.timeseries())
        except BaseException:
            queue.release(self.engine, claimed)
            raise
        if answer.outcome == "sent":
            queue.remove(self.engine, claimed)
            self.metrics.sent("records", batch.count, self.clock())
            self.metrics.records_sent.inc(len(claimed))
            self._succeeded()
            return True
        self.metrics.failures.labels(answer.reason).inc()
        if answer.outcome == "refused":
            queue.remove(self.engine, claimed)
            self.metrics.dropped.labels("records").inc(batch.count)
            log.warning("remote_write: the receiver refused %d records (%d samples) for good, "
                        "dropped: %s", len(claimed), batch.count, answer.detail)
            return True
        queue.release(self.engine, claimed)
        self._back_off(answer)
        return False

    def send_snapshot(self, now: float) -> None:
        """Every family of the page at ``now``, when this replica holds the lease."""
        held = lease.hold(self.engine, SNAPSHOT_LEASE, self.holder, now,
                          2.5 * self.config.interval)
        self.metrics.lease_held.set(1 if held else 0)
        if not held:
            return
        if now < self.retry_at:
            # The receiver asked us to wait: this snapshot is skipped, the next replaces it.
            self.metrics.snapshots.labels("skipped").inc()
            return
        batch = SeriesBatch(self.config.instance)
        batch.add(self.store.families(), now)
        timeseries = batch.timeseries()
        for start in range(0, len(timeseries), MAX_SERIES_PER_REQUEST):
            part = timeseries[start:start + MAX_SERIES_PER_REQUEST]
            answer = self._post(part)
            samples = sum(len(one.samples) for one in part)
            if answer.outcome == "sent":
                self.metrics.sent("snapshot", samples, self.clock())
                self._succeeded()
                continue
            self.metrics.failures.labels(answer.reason).inc()
            self.metrics.dropped.labels("snapshot").inc(
                sum(len(one.samples) for one in timeseries[start:]))
            self.metrics.snapshots.labels("failed").inc()
            log.warning("remote_write: snapshot not sent (%s), the next replaces it",
                        answer.detail)
            if answer.outcome == "retry":
                self._back_off(answer)
            return
        self.metrics.snapshots.labels("sent").inc()

    # --- one request -------------------------------------------------------------------

    def _post(self, timeseries: Sequence[TimeSeries]) -> Answer:
        headers = dict(HEADERS)
        if self.config.token_file is not None:
            # Read at each request: a rotated token applies without a restart.
            headers["Authorization"] = f"Bearer {self.config.token_file.read_text().strip()}"
        try:
            response = self.client.post(self.config.url, content=compressed_write_request(timeseries),
                                        headers=headers)
        except httpx.TimeoutException as exc:
            return Answer("retry", "timeout", detail=f"timeout: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return Answer("retry", "connection", detail=f"{type(exc).__name__}: {exc}")
        status = response.status_code
        detail = f"HTTP {status}: {response.text[:200].strip()}"
        if 200 <= status < 300:
            return Answer("sent")
        if status == 429 or status >= 500:
            return Answer("retry", "throttled" if status == 429 else "server_error",
                          retry_after=_retry_after(response.headers.get("Retry-After"),
                                                   self.clock()),
                          detail=detail)
        if status in ENDPOINT_REFUSALS or not 400 <= status < 500:
            # The URL or the credentials, not this batch: no batch could succeed until an
            # admin fixes them, so dropping would empty the whole buffer in seconds (a
            # rotated token, a typo in the path, an http:// URL redirected to https://).
            return Answer("retry", "endpoint", detail=detail)
        return Answer("refused", "rejected", detail=detail)

    def _succeeded(self) -> None:
        self.failures_in_row = 0
        self.retry_at = 0.0

    def _back_off(self, answer: Answer) -> None:
        """Exponential, 1 s doubling to 5 min, with full jitter on its upper half (replicas
        that failed together do not retry together); a Retry-After is honoured up to the
        same 5 min (a bad header must not stop the sender for hours)."""
        self.failures_in_row += 1
        ceiling = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (self.failures_in_row - 1))
        delay = ceiling * (0.5 + 0.5 * self.jitter())
        if answer.retry_after is not None:
            delay = max(delay, min(answer.retry_after, MAX_BACKOFF))
        self.retry_at = self.clock() + delay
        log.warning("remote_write: %s; next try in %.1f s", answer.detail, delay)

    def _record_series(self, record_ids: Sequence[int]) -> SeriesBatch:
        batch = SeriesBatch(self.config.instance)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(records.c.kind, records.c.ok, records.c.measured_at, records.c.payload,
                       boards.c.slug.label("board"), schools.c.slug.label("school"),
                       agents.c.slug.label("agent"))
                .join(agents, agents.c.id == records.c.agent_id)
                .join(schools, schools.c.id == agents.c.school_id)
                .join(boards, boards.c.id == schools.c.board_id)
                .where(records.c.id.in_(list(record_ids)))).all()
        for row in rows:
            families = record_families(row.kind, row.ok, row.measured_at, row.payload,
                                       (row.board, row.school, row.agent))
            batch.add(families, row.measured_at)
        return batch

    def close(self) -> None:
        self.client.close()


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After in seconds: delay-seconds or an HTTP date (RFC 9110 allows both);
    None when absent or unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(0.0, seconds) if not math.isnan(seconds) else None


class SenderMetrics:
    """The sender's own series on /metrics (docs/metrics.md, "remote_write")."""

    def __init__(self, registry: CollectorRegistry, engine: Engine,
                 clock: Callable[[], float]) -> None:
        live = "counted as they happen, from zero when the process starts"
        self.samples = Counter(
            "schoolnet_remote_write_samples",
            "Samples this process sent that the receiver accepted, by part (records: at their "
            "measurement time; snapshot: the state at the time sent), a count; " + live,
            ["part"], registry=registry)
        self.records_sent = Counter(
            "schoolnet_remote_write_records",
            "Stored records this process sent that the receiver accepted, a count; " + live,
            registry=registry)
        self.failures = Counter(
            "schoolnet_remote_write_failures",
            "Requests to the receiver that failed, by reason (timeout, connection, "
            "server_error: 5xx, throttled: 429, endpoint: 401, 403, 404, 405, 407 or a redirect, "
            "retried; rejected: another 4xx: dropped), a count; " + live,
            ["reason"], registry=registry)
        self.dropped = Counter(
            "schoolnet_remote_write_dropped_samples",
            "Samples given up on, by part (records: refused for good by a 4xx; snapshot: "
            "not sent, the next snapshot replaces them), a count; " + live,
            ["part"], registry=registry)
        self.snapshots = Counter(
            "schoolnet_remote_write_snapshots",
            "State snapshots this process made, by result (sent, failed, skipped: during a "
            "back-off), a count; " + live, ["result"], registry=registry)
        self.last_success = Gauge(
            "schoolnet_remote_write_last_success_timestamp_seconds",
            "When this process's last request was accepted by the receiver, Unix seconds "
            "(collector clock); 0 before the first; updated as it happens", registry=registry)
        self.lease_held = Gauge(
            "schoolnet_remote_write_snapshot_lease_held",
            "Whether this process holds the lease to send the state snapshot (1) or another "
            "replica does (0); updated at each snapshot interval", registry=registry)
        for part in ("records", "snapshot"):
            self.samples.labels(part)
            self.dropped.labels(part)
        for reason in ("timeout", "connection", "server_error", "throttled", "endpoint",
                       "rejected"):
            self.failures.labels(reason)
        for result in ("sent", "failed", "skipped"):
            self.snapshots.labels(result)
        registry.register(QueueCollector(engine, clock))

    def sent(self, part: str, samples: int, now: float) -> None:
        self.samples.labels(part).inc(samples)
        self.last_success.set(now)


class QueueCollector(Collector):
    """The queue in the database at each scrape: the same figure on every replica."""

    def __init__(self, engine: Engine, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # no query at registration

    def collect(self) -> Iterator[Metric]:
        try:
            count, oldest = queue.depth(self.engine)
        except SQLAlchemyError as exc:
            # The page still answers (ingest counters matter most when the store fails).
            log.warning("remote_write queue depth unavailable: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "schoolnet_remote_write_queue_records",
            "Stored records not yet accepted by the remote_write receiver (all replicas), a "
            "count; read from the store at each scrape", value=count)
        yield GaugeMetricFamily(
            "schoolnet_remote_write_queue_oldest_age_seconds",
            "How long ago the oldest queued record was received (collector clock), seconds; "
            "0 when the queue is empty; read from the store at each scrape",
            value=max(0.0, self.clock() - oldest) if oldest is not None else 0.0)


async def remote_write_loop(sender: RemoteWriter, first_delay: float = 0.0) -> None:
    """Run ``sender`` until cancelled; a store error costs one pause, not the loop."""
    await asyncio.sleep(first_delay)
    try:
        while True:
            try:
                wait = await asyncio.to_thread(sender.step)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("remote_write: %s: %s; retrying in 5 s", type(exc).__name__, exc)
                wait = 5.0
            except Exception:  # a defect must not stop sending for good: logged, retried
                log.exception("remote_write: unexpected error; retrying in 30 s")
                wait = 30.0
            await asyncio.sleep(wait)
    finally:
        sender.close()


def config_of(settings: Any) -> RemoteWriteConfig | None:
    """The sender's configuration from CollectorSettings; None when remote_write is off."""
    if not settings.remote_write_url:
        return None
    return RemoteWriteConfig(url=settings.remote_write_url, instance=settings.remote_write_instance,
                             interval=settings.remote_write_interval, batch=settings.remote_write_batch,
                             token_file=settings.remote_write_token_file,
                             timeout=settings.remote_write_timeout)
