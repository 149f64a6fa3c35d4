"""Delivering the outbox to the collector, following the answers of agent/WIRE.md.

Records leave the outbox only when the collector has accounted for them. Transient
trouble (network, 429, 5xx) is retried with jittered exponential backoff; a refused
credential stops uploading until the agent is enrolled again.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from agent import __version__
from agent.outbox import Outbox, Pending
from agent.transport import describe_error
from agent.wire import (
    INGEST_PATH,
    MAX_COMPRESSED_BODY_BYTES,
    AgentHealth,
    Batch,
    BatchResult,
)

log = logging.getLogger("schoolnet.agent.upload")

BACKOFF_BASE_SECONDS = 2.0
RETRY_AFTER_CEILING_SECONDS = 3600.0


class CredentialRejected(Exception):
    """401/403: the collector no longer accepts this agent's credential."""


class RetryLater(Exception):
    """A transient failure; ``retry_after`` is the collector's minimum wait, if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Backoff:
    """Full-jitter exponential backoff (AWS style) with a cap, honouring Retry-After."""

    cap: float
    base: float = BACKOFF_BASE_SECONDS
    attempt: int = 0
    random: Callable[[], float] = random.random

    def next_delay(self, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** self.attempt)
        self.attempt += 1
        delay = ceiling * self.random()
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_AFTER_CEILING_SECONDS))
        return delay

    def reset(self) -> None:
        self.attempt = 0


class Uploader:
    def __init__(self, outbox: Outbox, client: httpx.Client, collector_url: str,
                 batch_records: int, clock: Callable[[], float] = time.time) -> None:
        self.outbox = outbox
        self.client = client
        self.url = collector_url.rstrip("/") + INGEST_PATH
        self.batch_records = batch_records
        self.clock = clock

    def drain(self) -> int:
        """Send batches until the outbox is empty; return how many records were accounted for.

        Raises RetryLater (the rest stays in the outbox) or CredentialRejected.
        """
        delivered = 0
        while True:
            pending = self.outbox.next_batch(self.batch_records)
            if not pending.records and not pending.given_up:
                return delivered
            accounted = self._send(pending)
            if pending.records and accounted == 0:
                # A 2xx that accounts for nothing would send the same batch again at once,
                # forever: wait like after any other transient failure instead.
                raise self._failed(f"the collector accounted for none of the "
                                   f"{len(pending.records)} records sent")
            delivered += accounted

    def _send(self, pending: Pending) -> int:
        body = self._encode(pending)
        if len(body) > MAX_COMPRESSED_BODY_BYTES and len(pending.records) > 1:
            return self._split(pending)
        try:
            answer = self.client.post(self.url, content=body, headers={
                "Content-Type": "application/json", "Content-Encoding": "gzip"})
        except httpx.HTTPError as exc:
            raise self._failed(f"collector unreachable: {describe_error(exc)}") from None
        status = answer.status_code
        if 200 <= status < 300:
            return self._acknowledge(pending, answer)
        detail = _detail(answer)
        if status in (401, 403):
            message = f"the collector refused this agent's credential ({status}: {detail}); enrol again"
            self.outbox.set_credential_rejected(message)
            self.outbox.note_error(message)
            raise CredentialRejected(message)
        if status == 413:
            if len(pending.records) > 1:
                return self._split(pending)
            self._dead_letter(pending, f"too large for the collector: {detail}")
            return len(pending.records)
        if status in (400, 415, 422):
            self._dead_letter(pending, f"collector refused the batch ({status}): {detail}")
            return len(pending.records)
        raise self._failed(f"collector answered {status}: {detail}", _retry_after(answer, self.clock))

    def _split(self, pending: Pending) -> int:
        half = len(pending.records) // 2
        # The given-up ranges ride with the first half only, so they are reported once.
        first = Pending(pending.records[:half], pending.given_up)
        second = Pending(pending.records[half:], [])
        return self._send(first) + self._send(second)

    def _encode(self, pending: Pending) -> bytes:
        status = self.outbox.status()
        batch = Batch(
            sent_at_seconds=self.clock(),
            health=AgentHealth(
                version=__version__, outbox_records=status.records, outbox_bytes=status.bytes,
                oldest_record_age_seconds=status.oldest_record_age_seconds,
                given_up=[seq_range for _, seq_range in pending.given_up]),
            records=[record for _, record in pending.records],
        )
        return gzip.compress(batch.model_dump_json().encode(), compresslevel=6)

    def _acknowledge(self, pending: Pending, answer: httpx.Response) -> int:
        try:
            result = BatchResult.model_validate(answer.json())
        except (ValueError, json.JSONDecodeError) as exc:
            raise self._failed(f"collector answered 2xx with a body that is not a batch result: "
                               f"{str(exc).splitlines()[0]}") from None
        for rejected in (r for r in result.results if r.status == "rejected"):
            log.warning("collector rejected record %s: %s", rejected.seq, rejected.reason)
        removed = self.outbox.acknowledge(result, pending.given_up)
        self.outbox.set_credential_rejected(None)
        return removed

    def _dead_letter(self, pending: Pending, reason: str) -> None:
        log.error("dead-lettering %d records: %s", len(pending.records), reason)
        self.outbox.dead_letter([seq for seq, _ in pending.records], reason)
        self.outbox.note_error(reason)

    def _failed(self, message: str, retry_after: float | None = None) -> RetryLater:
        self.outbox.note_error(message)
        return RetryLater(message, retry_after)


def _detail(answer: httpx.Response) -> str:
    try:
        detail: Any = answer.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = detail if isinstance(detail, str) else answer.text
    return " ".join(text.split())[:300] or answer.reason_phrase


def _retry_after(answer: httpx.Response, clock: Callable[[], float]) -> float | None:
    value = answer.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - clock())


class UploadLoop:
    """The daemon's delivery cadence: drain every ``interval``; after a failure wait a
    jittered backoff (at least the collector's Retry-After); after 401/403 wait, without
    sending anything, until the credential changes (the agent was enrolled again).

    ``connect`` builds an Uploader for the current credential (None: not enrolled); it is
    called again only when ``credential_stamp`` or ``settings_stamp`` (the connection's
    settings) changes, so one HTTP client (and its TLS context and pooled connection)
    serves every round. Only a new credential lifts a refusal. ``wait`` sleeps and returns
    True when the agent is stopping. All are injected so tests run a week in a blink.
    """

    def __init__(self, connect: Callable[[], Uploader | None], credential_stamp: Callable[[], object],
                 interval: float, max_backoff: float, wait: Callable[[float], bool],
                 backoff: Backoff | None = None, idle_check_seconds: float = 10.0,
                 settings_stamp: Callable[[], object] = lambda: None) -> None:
        self.connect = connect
        self.credential_stamp = credential_stamp
        self.settings_stamp = settings_stamp
        self.interval = interval
        self.backoff = backoff or Backoff(cap=max_backoff)
        self.wait = wait
        self.idle_check_seconds = idle_check_seconds
        self.rejected_stamp: object | None = None
        self.uploader: Uploader | None = None
        self.uploader_stamp: object | None = None

    def step(self) -> float:
        """One round: try to deliver, and return how long to wait before the next."""
        stamp = self.credential_stamp()
        if self.rejected_stamp is not None:
            if stamp == self.rejected_stamp:
                return self.idle_check_seconds
            self.rejected_stamp = None
            log.info("the credential changed; uploading again")
        uploader = self._uploader((stamp, self.settings_stamp()))
        if uploader is None:
            return self.idle_check_seconds
        try:
            uploader.drain()
        except CredentialRejected as exc:
            log.error("%s; uploading stops until the agent is enrolled again", exc)
            self.rejected_stamp = stamp
            return self.idle_check_seconds
        except RetryLater as exc:
            delay = self.backoff.next_delay(exc.retry_after)
            log.warning("upload failed: %s; retrying in %.0f s", exc, delay)
            return delay
        self.backoff.reset()
        return self.interval

    def run(self) -> None:
        # No final attempt on shutdown: it would delay it, and the outbox keeps everything.
        try:
            while not self.wait(self.step()):
                pass
        finally:
            self._close()

    def _uploader(self, stamp: object) -> Uploader | None:
        if self.uploader is None or stamp != self.uploader_stamp:
            self._close()
            self.uploader = self.connect()
            self.uploader_stamp = stamp
        return self.uploader

    def _close(self) -> None:
        if self.uploader is not None:
            self.uploader.client.close()
            self.uploader = None
