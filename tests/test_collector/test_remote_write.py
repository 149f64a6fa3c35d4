"""remote_write: the encoding, the queue in the store, the sender against a local receiver,
the snapshot lease, and /metrics with remote_write on (the e2e test against a real
VictoriaMetrics is tests/e2e/test_remote_write.py)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from support.records import deliver, new_stream, page_samples, record
from support.remote_write import Receiver, decode_write_request
from test_collector.conftest import Site, make_site

from collector.metrics import CUMULATIVE_FAMILIES, StoreCollector
from collector.remote_write import queue
from collector.remote_write.encode import compressed_write_request, milliseconds, series, write_request
from collector.remote_write.sender import RemoteWriteConfig, RemoteWriter
from collector.settings import CollectorSettings

HOUR = 3600.0


# --- encoding ------------------------------------------------------------------------------

def test_a_write_request_decodes_back_with_an_independent_decoder() -> None:
    one = series({"__name__": "schoolnet_x", "school": "de-klimop", "board": "b", "room": "",
                  "agent": "ü-π"},
                 [(2.5, 1_700_000_000_123), (-0.0, -5), (math.inf, 0), (1e300, 2**62)])
    two = series({"__name__": "up"}, [(1.0, 1)])
    body = compressed_write_request([one, two])
    assert body != write_request([one, two])  # snappy's block format, not the plain message
    [(labels, samples), (labels2, samples2)] = decode_write_request(body)
    # Sorted by name, the empty label left out (empty = absent in Prometheus), UTF-8 intact.
    assert list(labels.items()) == [("__name__", "schoolnet_x"), ("agent", "ü-π"), ("board", "b"),
                                    ("school", "de-klimop")]
    # Samples oldest first; a negative int64 timestamp survives (two's complement varint).
    assert samples == [(-0.0, -5), (math.inf, 0), (2.5, 1_700_000_000_123), (1e300, 2**62)]
    assert math.copysign(1, samples[0][0]) == -1
    assert (labels2, samples2) == ({"__name__": "up"}, [(1.0, 1)])


def test_seconds_become_exact_milliseconds() -> None:
    assert milliseconds(1_700_000_000.123) == 1_700_000_000_123
    assert milliseconds(1_700_000_000.0005) in (1_700_000_000_000, 1_700_000_000_001)


# --- the queue -----------------------------------------------------------------------------

@pytest.fixture
def queued_site(tmp_path: Path, db_url: str) -> Iterator[Site]:
    """A collector whose ingest queues records for remote_write, with no sender running
    (the tests drive the queue and the sender themselves)."""
    with make_site(tmp_path, db_url) as site:
        queue.enable_queue(site.engine)
        yield site


def queued(site: Site) -> list[tuple[int, float | None]]:
    return [(int(r[0]), r[1]) for r in
            site.sql("SELECT record_id, claimed_until FROM remote_write_queue ORDER BY record_id")]


@pytest.mark.both_stores
def test_a_record_stored_twice_is_queued_once(queued_site: Site) -> None:
    stream = new_stream()
    first = record(1, stream)
    assert deliver(queued_site, first, record(2, stream), first) == ["accepted", "accepted",
                                                                      "duplicate"]
    assert deliver(queued_site, first) == ["duplicate"]
    ids = [int(r[0]) for r in queued_site.sql("SELECT id FROM records ORDER BY id")]
    assert [record_id for record_id, _ in queued(queued_site)] == ids and len(ids) == 2


@pytest.mark.both_stores
def test_claims_take_the_oldest_free_rows_and_expire_or_are_released(queued_site: Site) -> None:
    stream = new_stream()
    deliver(queued_site, *(record(seq, stream) for seq in range(1, 6)))
    ids = [record_id for record_id, _ in queued(queued_site)]
    engine, now = queued_site.engine, time.time()
    assert queue.claim(engine, 2, now, 60) == ids[:2]
    assert queue.claim(engine, 10, now, 60) == ids[2:]
    assert queue.claim(engine, 10, now + 59, 60) == []  # all claimed, none expired
    queue.release(engine, ids[1:2])
    assert queue.claim(engine, 10, now + 1, 60) == ids[1:2]
    # A sender that died: its claims free themselves when they expire.
    assert queue.claim(engine, 10, now + 60, 60) == ids[:1] + ids[2:]
    queue.remove(engine, ids[:4])
    assert [record_id for record_id, _ in queued(queued_site)] == ids[4:]
    count, oldest = queue.depth(engine)
    assert count == 1 and oldest is not None and abs(oldest - now) < 60


@pytest.mark.both_stores
def test_retention_removing_a_record_removes_its_queue_row(queued_site: Site) -> None:
    deliver(queued_site, record(1, new_stream()))
    queued_site.sql("DELETE FROM records")
    assert queued(queued_site) == []


def test_concurrent_claims_skip_rows_another_sender_has_locked(postgres: Any, tmp_path: Path
                                                               ) -> None:
    """PostgreSQL: a claim does not wait for another replica's open claim, it takes others."""
    url = postgres.fresh_database()
    try:
        with make_site(tmp_path, url) as site:
            queue.enable_queue(site.engine)
            stream = new_stream()
            deliver(site, *(record(seq, stream) for seq in range(1, 5)))
            ids = [record_id for record_id, _ in queued(site)]
            now = time.time()
            statement = queue._claim_statement("postgresql")
            with site.engine.connect() as other, other.begin():
                mine = sorted(r.record_id for r in other.execute(
                    statement, {"now": now, "until": now + 60, "limit": 2}))
                started = time.monotonic()
                theirs = queue.claim(site.engine, 10, now, 60)
                assert time.monotonic() - started < 2
            assert mine == ids[:2] and theirs == ids[2:]
    finally:
        postgres.drop_database(url.rsplit("/", 1)[1])


# --- the sender ----------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def sender(site: Site, url: str, clock: Clock, **config: Any) -> RemoteWriter:
    registry = CollectorRegistry()
    writer = RemoteWriter(site.engine, RemoteWriteConfig(url=url, **config),
                          site.client.app.state.metrics.store, registry,  # type: ignore[attr-defined]
                          clock=clock, jitter=lambda: 1.0,
                          client=httpx.Client(timeout=config.get("timeout", 5.0)))
    writer.registry = registry  # type: ignore[attr-defined]
    return writer


def value(writer: RemoteWriter, name: str, **labels: str) -> float | None:
    return writer.registry.get_sample_value(name, labels)  # type: ignore[attr-defined, no-any-return]


def bandwidth(seq: int, stream: str, measured_at: float) -> dict[str, Any]:
    rec = record(seq, stream, "bandwidth", payload={
        "backend": "http", "server": "https://speed.example", "streams": 4, "download_streams": 4,
        "download_bytes_per_second": 5_000_000.0, "upload_bytes_per_second": 1_000_000.0,
        "download_bytes": 50_000_000, "upload_bytes": 10_000_000,
        "contract_download_bytes_per_second": 12_500_000.0, "idle_latency_seconds": 0.01})
    rec["clock"]["wall_time_seconds"] = measured_at
    return rec


def test_records_arrive_with_their_page_series_at_their_measurement_time(
        queued_site: Site, receiver: Receiver) -> None:
    clock = Clock()
    stream, measured = new_stream(), round(clock.now - 3 * HOUR, 3)
    system = record(2, stream)
    system["clock"]["wall_time_seconds"] = measured + 60.5
    failed = record(3, stream, "bandwidth", ok=False, error="server unreachable", payload={})
    failed["clock"]["wall_time_seconds"] = measured + 120
    deliver(queued_site, bandwidth(1, stream, measured), system, failed)
    writer = sender(queued_site, receiver.url, clock, instance="one-value")
    assert writer.send_records(clock.now) is True
    assert queued(queued_site) == []

    [(headers, _)] = receiver.requests
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    got = receiver.samples()
    target = {"job": "schoolnet-collector", "instance": "one-value", "board": "test-board",
              "school": "test-school", "agent": "pi"}

    def at(name: str, **labels: str) -> list[tuple[float, int]]:
        return got[tuple(sorted({**target, **labels, "__name__": name}.items()))]

    ms = milliseconds(measured)
    assert at("schoolnet_bandwidth_download_bytes_per_second") == [(5_000_000.0, ms)]
    assert at("schoolnet_bandwidth_download_ratio") == [(0.4, ms)]
    assert at("schoolnet_bandwidth_streams", direction="download") == [(4.0, ms)]
    assert at("schoolnet_system_cpu_usage_ratio") == [(0.25, milliseconds(measured + 60.5))]
    # The failed test: its run at its own time, no value of its own.
    assert at("schoolnet_probe_success", probe="bandwidth") == [
        (1.0, ms), (0.0, milliseconds(measured + 120))]
    # Counters kept over all records are the snapshot's, not one record's.
    assert not [key for key in got if dict(key)["__name__"] in
                {f"{name}_total" for name in CUMULATIVE_FAMILIES}]
    assert value(writer, "schoolnet_remote_write_records_total") == 3
    assert value(writer, "schoolnet_remote_write_samples_total", part="records") == sum(
        len(samples) for samples in got.values())
    assert value(writer, "schoolnet_remote_write_last_success_timestamp_seconds") == clock.now


def test_a_record_sends_what_the_page_shows_for_it(queued_site: Site, receiver: Receiver) -> None:
    """The same builders: every series sent for a lone record is on /metrics with that value."""
    clock = Clock()
    deliver(queued_site, bandwidth(1, new_stream(), clock.now - 60))
    writer = sender(queued_site, receiver.url, clock)
    writer.send_records(clock.now)
    page = page_samples(queued_site.metrics().text)
    sent = {(dict(key)["__name__"],
             tuple((k, v) for k, v in key if k not in ("job", "instance", "__name__"))): samples
            for key, samples in receiver.samples().items()}
    assert len(sent) >= 10
    for (name, labels), [(number, _)] in sent.items():
        assert page[(name, labels)] == number, name


def test_a_503_releases_the_batch_and_backs_off_honouring_retry_after(
        queued_site: Site, receiver: Receiver) -> None:
    clock = Clock()
    deliver(queued_site, record(1, new_stream()))
    receiver.answers = [(503, {"Retry-After": "7"}, 0.0), (503, {}, 0.0)]
    writer = sender(queued_site, receiver.url, clock)
    assert writer.send_records(clock.now) is False
    assert queued(queued_site)[0][1] is None  # released: nothing lost, free for any replica
    assert writer.retry_at == pytest.approx(clock.now + 7)
    assert value(writer, "schoolnet_remote_write_failures_total", reason="server_error") == 1
    assert writer.step() == pytest.approx(7)  # nothing is sent before then
    clock.now += 7
    writer.send_records(clock.now)  # the second 503: the back-off doubles (jitter at its top)
    assert writer.retry_at == pytest.approx(clock.now + 2)
    clock.now += 2
    assert writer.send_records(clock.now) is True
    assert queued(queued_site) == [] and writer.retry_at == 0 and writer.failures_in_row == 0
    assert value(writer, "schoolnet_remote_write_dropped_samples_total", part="records") == 0


def test_a_timeout_and_a_refused_connection_keep_the_records(
        queued_site: Site, receiver: Receiver) -> None:
    clock = Clock()
    deliver(queued_site, record(1, new_stream()))
    receiver.answers = [(204, {}, 1.5)]
    writer = sender(queued_site, receiver.url, clock, timeout=0.3)
    assert writer.send_records(clock.now) is False
    assert value(writer, "schoolnet_remote_write_failures_total", reason="timeout") == 1
    port = receiver.server.server_address[1]  # type: ignore[union-attr]
    receiver.stop()
    refused = sender(queued_site, f"http://127.0.0.1:{port}/api/v1/write", clock)
    assert refused.send_records(clock.now) is False
    assert value(refused, "schoolnet_remote_write_failures_total", reason="connection") == 1
    assert len(queued(queued_site)) == 1 and queued(queued_site)[0][1] is None


def test_a_400_drops_the_batch_and_counts_it(queued_site: Site, receiver: Receiver) -> None:
    clock = Clock()
    stream = new_stream()
    deliver(queued_site, record(1, stream), record(2, stream))
    receiver.answers = [(400, {}, 0.0)]
    writer = sender(queued_site, receiver.url, clock, batch=1)
    assert writer.send_records(clock.now) is True  # settled: dropped, the queue goes on
    assert value(writer, "schoolnet_remote_write_failures_total", reason="rejected") == 1
    assert (value(writer, "schoolnet_remote_write_dropped_samples_total", part="records") or 0) > 0
    assert writer.retry_at == 0  # no back-off: the next batch goes at once
    assert writer.send_records(clock.now) is True
    assert queued(queued_site) == [] and len(receiver.requests) == 1


@pytest.mark.parametrize("status", [401, 403, 404, 308])
def test_a_wrong_url_or_token_keeps_the_records(queued_site: Site, receiver: Receiver,
                                                status: int) -> None:
    """Not the batch's fault: dropping would empty the whole buffer in seconds."""
    clock = Clock()
    deliver(queued_site, record(1, new_stream()))
    receiver.answers = [(status, {"Location": receiver.url}, 0.0)]
    writer = sender(queued_site, receiver.url, clock)
    assert writer.send_records(clock.now) is False
    assert value(writer, "schoolnet_remote_write_failures_total", reason="endpoint") == 1
    assert value(writer, "schoolnet_remote_write_dropped_samples_total", part="records") == 0
    assert len(queued(queued_site)) == 1 and queued(queued_site)[0][1] is None
    assert writer.retry_at > clock.now
    clock.now = writer.retry_at
    assert writer.send_records(clock.now) is True and queued(queued_site) == []


def test_retry_after_as_an_http_date_is_honoured(queued_site: Site, receiver: Receiver) -> None:
    clock = Clock()
    deliver(queued_site, record(1, new_stream()))
    when = format_datetime(datetime.fromtimestamp(int(clock.now) + 40, UTC), usegmt=True)
    receiver.answers = [(429, {"Retry-After": when}, 0.0)]
    writer = sender(queued_site, receiver.url, clock)
    assert writer.send_records(clock.now) is False
    assert writer.retry_at == pytest.approx(int(clock.now) + 40)
    assert value(writer, "schoolnet_remote_write_failures_total", reason="throttled") == 1


def test_the_token_is_sent_and_an_empty_token_file_is_a_one_line_error(
        queued_site: Site, receiver: Receiver, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    clock = Clock()
    deliver(queued_site, record(1, new_stream()))
    writer = sender(queued_site, receiver.url, clock, token_file=token)
    assert writer.send_records(clock.now) is True
    [(headers, _)] = receiver.requests
    assert headers["Authorization"] == "Bearer s3cret"
    token.write_text(" \n")
    with pytest.raises(ValidationError) as caught:
        CollectorSettings(remote_write_url=receiver.url, remote_write_token_file=token)
    assert "is empty" in caught.value.errors()[0]["msg"]


def test_a_record_deleted_by_retention_while_claimed_settles_the_batch(
        queued_site: Site, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    stream = new_stream()
    deliver(queued_site, record(1, stream), record(2, stream))
    claim = queue.claim

    def claim_then_retention(*args: Any) -> list[int]:
        ids = claim(*args)
        queued_site.sql(f"DELETE FROM records WHERE id = {ids[0]}")  # cascades to its row
        return ids

    monkeypatch.setattr(queue, "claim", claim_then_retention)
    writer = sender(queued_site, receiver.url, clock)
    assert writer.send_records(clock.now) is True
    assert queued(queued_site) == []
    cpu = [key for key in receiver.samples() if dict(key)["__name__"] == "schoolnet_system_cpu_usage_ratio"]
    assert len(cpu) == 1 and len(receiver.samples()[cpu[0]]) == 1  # the surviving record's


def test_one_replica_sends_the_snapshot_and_another_takes_over_when_it_stops(
        queued_site: Site, receiver: Receiver) -> None:
    clock = Clock()
    deliver(queued_site, record(1, new_stream()))
    first = sender(queued_site, receiver.url, clock, interval=60)
    second = sender(queued_site, receiver.url, clock, interval=60)
    first.send_snapshot(clock.now)
    second.send_snapshot(clock.now)
    assert [value(w, "schoolnet_remote_write_snapshot_lease_held") for w in (first, second)] == [1, 0]
    [(_, snapshot)] = receiver.requests
    names = {labels["__name__"] for labels, _ in snapshot}
    # The state: agents and the counters kept at ingest, all at the snapshot's time.
    assert {"schoolnet_agent_info", "schoolnet_probe_runs_total",
            "schoolnet_agent_last_report_timestamp_seconds"} <= names
    assert {ts for _, samples in snapshot for _, ts in samples} == {milliseconds(clock.now)}
    # The first replica stops; after its lease (2.5 intervals) the second takes over.
    clock.now += 149
    second.send_snapshot(clock.now)
    assert value(second, "schoolnet_remote_write_snapshot_lease_held") == 0
    clock.now += 2
    second.send_snapshot(clock.now)
    assert value(second, "schoolnet_remote_write_snapshot_lease_held") == 1
    assert value(second, "schoolnet_remote_write_snapshots_total", result="sent") == 1
    assert len(receiver.requests) == 2


def test_a_failed_snapshot_is_not_retried(queued_site: Site, receiver: Receiver) -> None:
    clock = Clock()
    receiver.answers = [(500, {}, 0.0)]
    writer = sender(queued_site, receiver.url, clock, interval=60)
    writer.step()
    assert value(writer, "schoolnet_remote_write_snapshots_total", result="failed") == 1
    assert (value(writer, "schoolnet_remote_write_dropped_samples_total", part="snapshot") or 0) > 0
    clock.now = writer.retry_at
    writer.step()  # the back-off is over, but the next snapshot is not due yet
    assert receiver.requests == []
    clock.now += 60
    writer.step()
    assert value(writer, "schoolnet_remote_write_snapshots_total", result="sent") == 1


# --- /metrics and settings -------------------------------------------------------------------

def test_with_remote_write_metrics_has_only_the_collectors_own_series(tmp_path: Path) -> None:
    with make_site(tmp_path, remote_write_url="http://127.0.0.1:9/api/v1/write",
                   remote_write_interval="1h") as site:
        deliver(site, record(1, new_stream()))
        page = site.metrics().text
    names = {name for name, _ in page_samples(page)}
    assert "schoolnet_collector_batches_total" in names
    assert {"schoolnet_remote_write_queue_records", "schoolnet_remote_write_failures_total",
            "schoolnet_remote_write_samples_total"} <= names
    assert not {name for name in names if name.startswith(("schoolnet_agent_", "schoolnet_probe_",
                                                           "schoolnet_system_"))}
    assert 'board="' not in page
    # And without it the page is as before.
    (tmp_path / "plain").mkdir()
    with make_site(tmp_path / "plain") as site:
        deliver(site, record(1, new_stream()))
        plain = site.metrics().text
    assert "schoolnet_agent_info{" in plain and "schoolnet_remote_write_" not in plain


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://vm:8428/api/v1/write", "is not an http:// or https:// URL"),
    ("http://vm:99999/api/v1/write", "no valid port"),
    ("https://user:secret@vm/api/v1/write", "SCHOOLNET_REMOTE_WRITE_TOKEN_FILE"),
])
def test_a_bad_remote_write_url_is_a_one_line_error(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CollectorSettings(db=f"sqlite:///{tmp_path / 'x.db'}", remote_write_url=url)
    # The line the command prints (collector/cli.py): the message, the secret left out.
    line = caught.value.errors()[0]["msg"]
    assert message in line and "secret" not in line


def test_remote_write_settings_read_durations_and_default_off() -> None:
    settings = CollectorSettings(remote_write_interval="2m", remote_write_url=" ")
    assert settings.remote_write_url is None and settings.remote_write_interval == 120
    assert settings.remote_write_instance == "schoolnet-collector"
    assert settings.remote_write_batch == 500


def test_the_store_collector_is_unchanged_by_the_refactoring(queued_site: Site) -> None:
    deliver(queued_site, record(1, new_stream()))
    registry = CollectorRegistry()
    registry.register(StoreCollector(queued_site.engine, 3600))
    assert registry.get_sample_value("schoolnet_probe_runs_total", {
        "board": "test-board", "school": "test-school", "agent": "pi", "probe": "system"}) == 1
