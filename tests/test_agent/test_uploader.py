"""The uploader against a scripted collector: every answer of the wire contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from support.fake_collector import Answer, FakeCollector, accept_all, serve
from support.tools import free_port

from agent.clock import now
from agent.outbox import Outbox
from agent.transport import make_client
from agent.uploader import Backoff, CredentialRejected, RetryLater, Uploader, UploadLoop


def filled(tmp_path: Path, count: int) -> Outbox:
    outbox = Outbox(tmp_path / "outbox.sqlite", 100_000_000)
    for i in range(count):
        outbox.add("system", now(), False, f"failure {i}", None)
    return outbox


def uploader(outbox: Outbox, url: str, batch_records: int = 500) -> Uploader:
    return Uploader(outbox, make_client(5, credential="sna_test"), url, batch_records)


def test_acknowledged_records_leave_the_outbox_gzip_and_credential_sent(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 12)
    fake = FakeCollector()
    with serve(fake) as url:
        assert uploader(outbox, url, batch_records=5).drain() == 12
    assert outbox.seqs() == []
    assert [len(b["records"]) for b in fake.batches] == [5, 5, 2]
    assert fake.headers[0]["Authorization"] == "Bearer sna_test"
    assert fake.headers[0]["Content-Encoding"] == "gzip"
    health = fake.batches[0]["health"]
    assert health["outbox_records"] == 12 and health["outbox_bytes"] > 0
    assert "agent" not in fake.batches[0] and "school" not in fake.batches[0]


def test_only_what_the_collector_accounted_for_is_deleted(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 4)

    def half(batch: dict[str, Any]) -> Answer:
        first = batch["records"][0]
        return 200, {}, {"results": [{"stream_id": first["stream_id"], "seq": first["seq"],
                                      "status": "accepted"}],
                         "accounted_through": {first["stream_id"]: 0}}

    with serve(FakeCollector(half)) as url:
        sender = uploader(outbox, url, batch_records=4)
        sender._send(outbox.next_batch(4))
    assert outbox.seqs() == [2, 3, 4]


def test_413_splits_the_batch_and_a_single_record_still_too_large_is_dead_lettered(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 9)

    def small_only(batch: dict[str, Any]) -> Answer:
        if any(r["seq"] == 5 for r in batch["records"]) or len(batch["records"]) > 2:
            return 413, {}, {"detail": "too large"}
        return accept_all(batch)

    fake = FakeCollector(small_only)
    with serve(fake) as url:
        uploader(outbox, url).drain()
    assert outbox.seqs() == []
    assert sorted(set(fake.delivered_seqs) - {5}) == [1, 2, 3, 4, 6, 7, 8, 9]
    status = outbox.status()
    assert status.dead_lettered_total == 1


def test_422_dead_letters_the_batch_and_reports_it_next_time(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 3)
    answers = iter([(422, {}, {"detail": "batch health: Field required"})])

    def script(batch: dict[str, Any]) -> Answer:
        return next(answers, None) or accept_all(batch)

    fake = FakeCollector(script)
    with serve(fake) as url:
        sender = uploader(outbox, url)
        sender.drain()  # dead-letters 1..3, then sends the report
        outbox.add("system", now(), False, "after", None)
        sender.drain()
    assert outbox.status().dead_lettered_total == 3
    reported = [r for b in fake.batches for r in b["health"]["given_up"]]
    assert reported[0]["first"] == 1 and reported[0]["last"] == 3
    assert reported[0]["reason"] == "dead_lettered"
    assert outbox.next_batch(10).given_up == [], "reported once, then cleared"


def test_401_stops_and_keeps_everything(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 3)
    fake = FakeCollector(lambda b: (401, {}, {"detail": "unknown agent credential"}))
    with serve(fake) as url, pytest.raises(CredentialRejected, match="enrol again"):
        uploader(outbox, url).drain()
    assert outbox.seqs() == [1, 2, 3]
    assert "unknown agent credential" in (outbox.status().credential_rejected or "")


@pytest.mark.parametrize("status, headers, retry_after", [
    (429, {"Retry-After": "7"}, 7.0),
    (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
    (500, {}, None),
    (404, {}, None),
])
def test_transient_answers_are_retried_later_and_delete_nothing(
    tmp_path: Path, status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    outbox = filled(tmp_path, 2)
    fake = FakeCollector(lambda b: (status, headers, {"detail": "busy"}))
    with serve(fake) as url, pytest.raises(RetryLater) as caught:
        uploader(outbox, url).drain()
    assert caught.value.retry_after == retry_after
    assert outbox.seqs() == [1, 2]
    assert f"answered {status}" in (outbox.status().last_error or "")


def test_network_errors_and_garbage_answers_are_retried(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 2)
    with pytest.raises(RetryLater, match="unreachable"):
        uploader(outbox, f"http://127.0.0.1:{free_port()}").drain()
    fake = FakeCollector(lambda b: (200, {}, b"<html>proxy login</html>"))
    with serve(fake) as url, pytest.raises(RetryLater, match="not a batch result"):
        uploader(outbox, url).drain()
    assert outbox.seqs() == [1, 2]


def test_backoff_is_jittered_exponential_capped_and_honours_retry_after() -> None:
    backoff = Backoff(cap=600, random=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(12)]
    assert delays[:4] == [2, 4, 8, 16]
    assert max(delays) == 600
    assert Backoff(cap=600, random=lambda: 0.0).next_delay(retry_after=30) == 30
    jittered = Backoff(cap=600)
    assert all(0 <= jittered.next_delay() <= 600 for _ in range(50))
    backoff.reset()
    assert backoff.next_delay() == 2


def test_transport_verifies_certificates(tmp_path: Path) -> None:
    client = make_client(5)
    assert isinstance(client, httpx.Client)
    assert client.headers["User-Agent"].startswith("schoolnet-agent/")
    with pytest.raises(ValueError, match="ca_bundle"):
        make_client(5, ca_bundle=tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ValueError, match=r"ca_bundle: .* no usable certificate"):
        make_client(5, ca_bundle=garbage)


def test_the_loop_keeps_one_client_while_the_credential_is_unchanged(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 1)
    made: list[Uploader] = []

    def connect(url: str) -> Uploader:
        made.append(uploader(outbox, url))
        return made[-1]

    with serve(FakeCollector()) as url:
        UploadLoop(lambda: connect(url), lambda: "same", 60, 600, Waits(rounds=5)).run()
    assert len(made) == 1
    assert made[0].client.is_closed, "closed when the loop ends"


def test_duplicates_are_accounted_for_and_leave_the_outbox(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 3)

    def already_have_them(batch: dict[str, Any]) -> Answer:
        status, headers, body = accept_all(batch)
        for result in body["results"]:
            result["status"] = "duplicate"
        return status, headers, body

    with serve(FakeCollector(already_have_them)) as url:
        assert uploader(outbox, url).drain() == 3
    assert outbox.seqs() == []


class Waits:
    """The loop's sleep: records each wait and stops after ``rounds``."""

    def __init__(self, rounds: int, between: Any = None) -> None:
        self.rounds = rounds
        self.between = between
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> bool:
        self.waits.append(seconds)
        if self.between:
            self.between(len(self.waits))
        return len(self.waits) >= self.rounds


def loop(outbox: Outbox, url: str, waits: Waits, stamp: Any = lambda: 1,
         backoff: Backoff | None = None) -> UploadLoop:
    return UploadLoop(lambda: uploader(outbox, url), stamp, interval=60, max_backoff=600,
                      wait=waits, backoff=backoff)


def test_a_collector_that_stays_down_is_retried_with_backoff_capped_at_the_maximum(
    tmp_path: Path,
) -> None:
    outbox = filled(tmp_path, 2)
    fake = FakeCollector(lambda b: (503, {}, {"detail": "maintenance"}))
    waits = Waits(rounds=12)
    with serve(fake) as url:
        loop(outbox, url, waits, backoff=Backoff(cap=600, random=lambda: 1.0)).run()
    assert waits.waits[:5] == [2, 4, 8, 16, 32]
    assert max(waits.waits) == 600 and waits.waits[-1] == 600
    assert len(fake.batches) == 12 and outbox.seqs() == [1, 2]


def test_retry_after_is_honoured_as_the_minimum_wait(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 1)
    answers = iter([(429, {"Retry-After": "120"}, {"detail": "slow down"})])
    fake = FakeCollector(lambda b: next(answers, None) or accept_all(b))
    waits = Waits(rounds=2)
    with serve(fake) as url:
        loop(outbox, url, waits, backoff=Backoff(cap=600, random=lambda: 0.0)).run()
    assert waits.waits == [120, 60], "Retry-After, then the normal interval after success"
    assert outbox.seqs() == []


def test_network_errors_are_retried_until_the_collector_is_back(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 3)
    fake = FakeCollector()
    with serve(fake) as url:
        down = f"http://127.0.0.1:{free_port()}"
        targets = iter([down, down, url])
        waits = Waits(rounds=3)
        # A new credential each round makes the loop connect again, to the next target.
        rounds = iter(range(100))
        UploadLoop(lambda: uploader(outbox, next(targets)), lambda: next(rounds), 60, 600,
                   waits).run()
    assert outbox.seqs() == [] and len(fake.batches) == 1
    assert all(w <= 600 for w in waits.waits[:2]) and waits.waits[2] == 60


def test_a_refused_credential_stops_uploading_until_it_changes(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 2)
    refuse = {"on": True}
    fake = FakeCollector(lambda b: (401, {}, {"detail": "revoked"}) if refuse["on"] else accept_all(b))
    stamp = {"value": "old"}

    def between(rounds: int) -> None:
        if rounds == 4:  # the ICT person enrols the agent again
            refuse["on"] = False
            stamp["value"] = "new"

    waits = Waits(rounds=6, between=between)
    with serve(fake) as url:
        loop(outbox, url, waits, stamp=lambda: stamp["value"]).run()
    assert len(fake.batches) == 2, "one refused attempt, nothing sent until re-enrolment, then one"
    assert outbox.seqs() == []
    assert outbox.status().credential_rejected is None, "cleared once accepted again"


def test_a_2xx_that_accounts_for_nothing_is_retried_later_not_resent_at_once(tmp_path: Path) -> None:
    outbox = filled(tmp_path, 3)
    fake = FakeCollector(lambda b: (200, {}, {"results": [], "accounted_through": {}}))
    with serve(fake) as url, pytest.raises(RetryLater, match="accounted for none"):
        uploader(outbox, url).drain()
    assert len(fake.batches) == 1, "the same batch must not be sent again in a tight loop"
    assert outbox.seqs() == [1, 2, 3]
