"""Overload shedding: beyond the limit, 503 + Retry-After before the credential or body is
looked at; every admitted request released whatever its answer; retries spread."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from support.records import batch, new_stream, record

from agent.wire import MAX_RECORDS_PER_BATCH
from collector.admission import RATE_WINDOW_SECONDS, Admission, Overloaded

from .conftest import make_site


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_admits_up_to_the_limit_and_counts_refusals() -> None:
    registry = CollectorRegistry()
    admission = Admission(2, registry=registry, clock=Clock())
    admission.enter()
    admission.enter()
    with pytest.raises(Overloaded) as refused:
        admission.enter()
    assert refused.value.retry_after_seconds >= 1
    assert registry.get_sample_value("schoolnet_collector_ingest_refused_total") == 1
    assert registry.get_sample_value("schoolnet_collector_ingest_in_progress") == 2
    admission.leave()
    admission.enter()  # a place came free
    assert admission.in_progress == 2


def test_retry_after_spreads_over_the_queued_work() -> None:
    """100 finished and 1,000 refused in the last window: about ten windows of work wait
    outside, so the waits range from 1 s to that many seconds, not one value for all."""
    clock = Clock()
    draw = [0.0]
    admission = Admission(1, max_retry_after=3600, clock=clock, random_fraction=lambda: draw[0])
    for _ in range(100):
        admission.enter()
        admission.leave()
    admission.enter()
    for _ in range(997):
        with pytest.raises(Overloaded):
            admission.enter()
    # period = one window (the current bucket just started); queued = about 1000 / 100 * 5 s.
    waits = []
    for draw[0] in (0.0, 0.5, 1.0):
        with pytest.raises(Overloaded) as refused:
            admission.enter()
        waits.append(refused.value.retry_after_seconds)
    assert waits[0] == 1
    assert 20 <= waits[1] <= 30
    assert 45 <= waits[2] <= 55


def test_retry_after_is_capped_and_follows_the_storm_down() -> None:
    clock = Clock()
    admission = Admission(1, max_retry_after=60, clock=clock, random_fraction=lambda: 1.0)
    admission.enter()
    for _ in range(10_000):  # nothing finishes: a stalled store
        with pytest.raises(Overloaded):
            admission.enter()
    with pytest.raises(Overloaded) as refused:
        admission.enter()
    assert refused.value.retry_after_seconds == 60
    # Two windows later the old refusals no longer count: requests finish again, and
    # the one refused now waits a second.
    admission.leave()
    clock.now += 2 * RATE_WINDOW_SECONDS + 1
    for _ in range(10):
        admission.enter()
        admission.leave()
    admission.enter()
    with pytest.raises(Overloaded) as refused:
        admission.enter()
    assert refused.value.retry_after_seconds == 1


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Admission(0)


def _body() -> bytes:
    stream = new_stream()
    return gzip.compress(json.dumps(batch(record(1, stream), record(2, stream))).encode())


def test_full_process_refuses_before_credential_and_body(tmp_path: Path) -> None:
    with make_site(tmp_path, ingest_queue_limit=2) as site:
        admission = site.client.app.state.admission  # type: ignore[attr-defined]
        # Two requests in progress (held here, as two slow batches would hold them).
        admission.enter()
        admission.enter()
        gz = {"Content-Encoding": "gzip"}
        answers = [
            site.client.post("/api/v1/ingest", content=_body(), headers={**site.auth, **gz}),
            # An unknown credential and a body that is not JSON would be 401 and 422; the
            # refusal comes first, so neither was looked at.
            site.client.post("/api/v1/ingest", content=b"{not json",
                             headers={"Authorization": "Bearer sna_unknown"}),
        ]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["Retry-After"]) >= 1
            assert "busy" in answer.json()["detail"]
        assert site.sql("SELECT count(*) FROM records") == [(0,)]
        metrics = site.metrics().text
        assert "schoolnet_collector_ingest_refused_total 2.0" in metrics
        assert 'schoolnet_collector_batches_total{code="503"} 2.0' in metrics
        admission.leave()
        admission.leave()
        # Room again: stored, and every answer (2xx, 401, 422, 413) gave its place back.
        ok = site.client.post("/api/v1/ingest", content=_body(), headers={**site.auth, **gz})
        assert ok.status_code == 200, ok.text
        assert site.client.post("/api/v1/ingest", content=_body(),
                                headers={"Authorization": "Bearer sna_unknown", **gz}
                                ).status_code == 401
        assert site.client.post("/api/v1/ingest", content=b"{not json",
                                headers=site.auth).status_code == 422
        too_many = json.dumps({"records": [0] * (MAX_RECORDS_PER_BATCH + 1)}).encode()
        assert site.client.post("/api/v1/ingest", content=too_many,
                                headers=site.auth).status_code == 413
        assert admission.in_progress == 0
        assert site.sql("SELECT count(*) FROM records") == [(2,)]


def test_queue_limit_setting_is_validated() -> None:
    from pydantic import ValidationError

    from collector.settings import CollectorSettings

    assert CollectorSettings(ingest_queue_limit=5).ingest_queue_limit == 5
    with pytest.raises(ValidationError):
        CollectorSettings(ingest_queue_limit=0)
