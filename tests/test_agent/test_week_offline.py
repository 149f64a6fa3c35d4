"""A week with the collector down, in fake time, against a fake collector on 127.0.0.1:
every record kept within the byte cap; beyond it the oldest are evicted, counted, and the
evicted ranges go out with the first batch once the collector is back."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.fake_collector import FakeCollector, serve
from support.fakes import FakeClock, system_payload
from support.tools import free_port

from agent.clock import Clock
from agent.outbox import Outbox
from agent.transport import make_client
from agent.uploader import RetryLater, Uploader

MINUTES_IN_A_WEEK = 7 * 24 * 60




@pytest.mark.parametrize("cap_bytes", [50_000_000, 2_000_000], ids=["within-cap", "beyond-cap"])
def test_a_week_offline(tmp_path: Path, cap_bytes: int) -> None:
    fake_time = FakeClock()
    stamp = Clock(wall=fake_time, since_boot=lambda: fake_time.now - 1_789_000_000.0)
    outbox = Outbox(tmp_path / "outbox.sqlite", cap_bytes, clock=fake_time)
    down = Uploader(outbox, make_client(2, credential="sna_t"), f"http://127.0.0.1:{free_port()}",
                    500, clock=fake_time)
    for minute in range(MINUTES_IN_A_WEEK):
        outbox.add("system", stamp(), True, None, system_payload(minute))
        fake_time.now += 60
        if minute % 360 == 0:  # the daemon keeps trying all week, and failing
            with pytest.raises(RetryLater, match="unreachable"):
                down.drain()

    status = outbox.status()
    assert status.bytes <= cap_bytes
    assert status.records + status.evicted_total == MINUTES_IN_A_WEEK == 10_080
    assert status.oldest_record_age_seconds is not None
    if cap_bytes == 50_000_000:
        assert status.evicted_total == 0
    else:
        assert status.evicted_total > 0

    fake = FakeCollector()
    with serve(fake) as url:
        Uploader(outbox, make_client(5, credential="sna_t"), url, 500, clock=fake_time).drain()
    assert outbox.status().records == 0
    delivered = fake.delivered_seqs
    assert sorted(delivered) == list(range(status.evicted_total + 1, MINUTES_IN_A_WEEK + 1))
    first = fake.batches[0]["health"]
    assert first["outbox_records"] == status.records
    given_up = first["given_up"]
    if status.evicted_total:
        assert given_up == [{"stream_id": outbox.stream_id, "first": 1,
                             "last": status.evicted_total, "reason": "evicted"}]
    else:
        assert given_up == []
    assert all(batch["health"]["given_up"] == [] for batch in fake.batches[1:]), "reported once"
