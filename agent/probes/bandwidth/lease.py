"""The school's turn: agents of one school never test its line at the same time.

Two tests at once would each measure half the line, and both would be wrong. The
collector grants a short lease per school (``POST /api/v1/speed/lease``); an agent
whose school is busy waits its turn, up to ``lease_wait``. When the collector cannot be
reached the agent tests anyway — a missing result is worse than an unconfirmed one —
and the result says ``leased: false``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from agent.transport import describe_error, make_client
from agent.wire import SPEED_LEASE_PATH, LeaseAnswer, LeaseRequest

log = logging.getLogger("schoolnet.agent.bandwidth")

# Asking again sooner than this would only load the collector; later than the most
# would waste the turn, since a holder usually ends its lease well before it expires.
MIN_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 10.0


class SchoolBusy(Exception):
    """Another agent of this school kept the lease for longer than we may wait."""


@dataclass
class Turn:
    """The outcome of asking: ``leased`` goes into the result as it is."""

    leased: bool
    lease_id: str | None = None
    reason: str | None = None  # why there is no lease, when the collector was unreachable
    waited: float = 0.0  # seconds spent waiting for the turn


class LeaseClient:
    def __init__(self, collector_url: str, credential: str, ca_bundle: Path | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 client: httpx.Client | None = None) -> None:
        self.url = collector_url.rstrip("/") + SPEED_LEASE_PATH
        self.client = client or make_client(REQUEST_TIMEOUT_SECONDS, ca_bundle, credential)
        self.sleep = sleep
        self.clock = clock

    def take(self, seconds: float, wait: float) -> Turn:
        """Wait for the school's turn for up to ``wait`` seconds; SchoolBusy when it did
        not come, a Turn with leased=False when the collector could not say."""
        began = self.clock()
        deadline = began + wait
        while True:
            try:
                answer = self.client.post(self.url, json=LeaseRequest(seconds=seconds).model_dump())
            except httpx.HTTPError as exc:
                return Turn(False, reason=f"collector unreachable: {describe_error(exc)}",
                            waited=self.clock() - began)
            if answer.status_code != 200:
                # 401 is for the uploader to report; 404 is a collector older than leases.
                return Turn(False, reason=f"collector answered {answer.status_code} to the lease",
                            waited=self.clock() - began)
            try:
                granted = LeaseAnswer.model_validate(answer.json())
            except ValueError:
                return Turn(False, reason="the collector's lease answer is not valid",
                            waited=self.clock() - began)
            if granted.granted:
                return Turn(True, granted.lease_id, waited=self.clock() - began)
            left = deadline - self.clock()
            if left <= 0:
                raise SchoolBusy("another agent of this school is testing the line; "
                                 f"waited {wait:.0f} s for its turn")
            pause = min(MAX_RETRY_SECONDS,
                        max(MIN_RETRY_SECONDS, granted.retry_after_seconds or MIN_RETRY_SECONDS))
            # A little jitter, so two waiting agents do not ask in lock-step.
            self.sleep(min(left, pause * random.uniform(1.0, 1.2)))

    def release(self, turn: Turn) -> None:
        if not turn.lease_id:
            return
        try:
            self.client.delete(f"{self.url}/{turn.lease_id}")
        except httpx.HTTPError as exc:
            # It expires by itself; the next agent waits a little longer.
            log.info("could not end the bandwidth lease early: %s", describe_error(exc))

    def close(self) -> None:
        self.client.close()
