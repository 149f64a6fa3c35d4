"""Overload shedding for ingest: refuse early and cheaply, and spread the retries.

After an outage thousands of agents reconnect at once, each with a day of backlog. Taking
every batch would only make each wait longer (and time out, and be sent again: work done
twice). So each process admits at most ``limit`` ingest requests at a time; the next one
is answered 503 with a ``Retry-After`` before anything else happens: no credential check
(a database query), no body read, nothing stored. Nothing accepted is ever dropped,
because nothing of a refused request was accepted.

The limit is per process (per replica, per worker): N replicas admit N times limit. It needs
no coordination, which is the point: the database, not a counter of ours, is the shared
resource, and each replica's queue in front of it is what this bounds.

``Retry-After`` spreads the refused clients over the time the process needs to serve them:
refusals per second divided by requests finished per second (both over the last few
seconds) is how many seconds of work are queued outside the door. Each refused client is
told a random wait in [1 s, that many seconds] (capped), so their returns arrive at about
the rate the process completes requests, instead of all at once again. The agent waits at
least that long, and longer when its own full-jitter backoff says so (agent/uploader.py).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from collector.metrics import LIVE

# Finished and refused requests are counted over this many seconds: long enough to smooth
# one commit group's burst of answers, short enough to follow a storm as it builds and ebbs.
RATE_WINDOW_SECONDS = 5.0


class Overloaded(Exception):
    """Refused: the process already has ``limit`` ingest requests in progress."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"the collector is busy; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class Admission:
    """Counts the ingest requests in progress in this process and refuses beyond ``limit``.

    ``enter()`` admits (or raises Overloaded); every admitted request calls ``leave()``
    once, whatever its outcome. Thread-safe: requests enter on the event loop, but a lock
    costs nothing next to a request and keeps the counts exact wherever they are called.
    """

    def __init__(self, limit: int, max_retry_after: float = 300.0,
                 registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 random_fraction: Callable[[], float] = random.random) -> None:
        if limit < 1:
            raise ValueError("the ingest queue limit must be at least 1")
        self.limit = limit
        self.max_retry_after = max(1.0, max_retry_after)
        self.clock = clock
        self.random_fraction = random_fraction
        self.in_progress = 0
        self._lock = threading.Lock()
        # Two buckets of RATE_WINDOW_SECONDS each: the rate is read over the full previous
        # bucket plus the current one, so it never drops to zero at a bucket's turn.
        self._bucket_start = clock()
        self._finished = [0, 0]  # previous bucket, current bucket
        self._refused = [0, 0]
        # The answers by status (schoolnet_collector_batches_total) count these among all
        # 503s; this says which were shed, and the gauge how near the limit the process runs.
        self.refusals = Counter(
            "schoolnet_collector_ingest_refused",
            "Ingest requests this process refused unread (503) because it already had "
            "SCHOOLNET_INGEST_QUEUE_LIMIT in progress, a count; " + LIVE, registry=registry)
        in_progress = Gauge(
            "schoolnet_collector_ingest_in_progress",
            "Ingest requests in progress in this process (admitted, not yet answered), "
            "a count; live, read at each scrape", registry=registry)
        in_progress.set_function(lambda: self.in_progress)

    def enter(self) -> None:
        with self._lock:
            self._roll()
            if self.in_progress < self.limit:
                self.in_progress += 1
                return
            self._refused[1] += 1
            self.refusals.inc()
            retry_after = self._retry_after()
        raise Overloaded(retry_after)

    def leave(self) -> None:
        with self._lock:
            self._roll()
            self.in_progress -= 1
            self._finished[1] += 1

    def _roll(self) -> None:
        now = self.clock()
        elapsed = now - self._bucket_start
        if elapsed < RATE_WINDOW_SECONDS:
            return
        if elapsed < 2 * RATE_WINDOW_SECONDS:
            self._finished = [self._finished[1], 0]
            self._refused = [self._refused[1], 0]
            self._bucket_start += RATE_WINDOW_SECONDS
        else:  # quiet for two windows or more: nothing recent to go by
            self._finished = [0, 0]
            self._refused = [0, 0]
            self._bucket_start = now

    def _retry_after(self) -> int:
        """Whole seconds (the form every client parses), at least 1."""
        finished = sum(self._finished)
        refused = sum(self._refused)
        period = RATE_WINDOW_SECONDS + (self.clock() - self._bucket_start)
        # Clients waiting (about the refusals: a client refused twice counts twice, which
        # errs toward spreading wider) over the finish rate. With nothing finished lately
        # (a stalled store, or the first moment of a storm), a limit's worth per period.
        queued_seconds = refused / (finished or self.limit) * period
        spread = min(self.max_retry_after, max(1.0, queued_seconds))
        return max(1, min(math.ceil(self.max_retry_after),
                          math.ceil(1 + (spread - 1) * self.random_fraction())))
