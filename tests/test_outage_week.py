"""A week with the collector down (fake time): nothing lost within the byte cap, and
eviction beyond it counted by the agent, reported, and shown by the collector."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from support.fakes import FakeClock, system_payload

from agent.clock import now
from agent.outbox import Outbox
from agent.uploader import RetryLater, Uploader
from collector.app import create_app
from collector.registry import add_board, add_school, create_enrolment_code, create_metrics_token
from collector.settings import CollectorSettings

WEEK = 7 * 24 * 3600
EVERY_MINUTE = 60




def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def collector(tmp_path: Path) -> tuple[TestClient, str]:
    app = create_app(CollectorSettings(db=f"sqlite:///{tmp_path / 'collector.db'}"))
    engine = app.state.engine
    add_board(engine, "Board")
    add_school(engine, "board", "School")
    client = TestClient(app)
    answer = client.post("/api/v1/enroll", json={
        "code": create_enrolment_code(engine, "school", 1, 3600), "name": "pi", "version": "t"})
    return client, answer.json()["credential"]


@pytest.mark.parametrize("cap_bytes", [50_000_000, 1_000_000], ids=["within-cap", "beyond-cap"])
def test_week_offline_then_delivered(tmp_path: Path, collector: tuple[TestClient, str],
                                     cap_bytes: int) -> None:
    client, credential = collector
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", cap_bytes, clock=clock)
    down = httpx.Client(transport=httpx.MockTransport(unreachable))
    offline = Uploader(outbox, down, "http://collector.invalid", 500, clock=clock)

    minutes = WEEK // EVERY_MINUTE
    for minute in range(minutes):
        outbox.add("system", now(), True, None, system_payload(minute))
        clock.now += EVERY_MINUTE
        if minute % 60 == 0:  # the daemon keeps trying, and failing, all week
            with pytest.raises(RetryLater):
                offline.drain()

    status = outbox.status()
    assert status.bytes <= cap_bytes
    assert status.last_error and "unreachable" in status.last_error
    if cap_bytes == 50_000_000:
        assert status.records == minutes and status.evicted_total == 0
    else:
        assert status.evicted_total > 0
        assert status.records + status.evicted_total == minutes

    client.headers["Authorization"] = f"Bearer {credential}"
    online = Uploader(outbox, client, str(client.base_url), 500, clock=clock)
    online.drain()
    assert outbox.status().records == 0

    stored = client.app.state.engine.raw_connection().execute(  # type: ignore[attr-defined]
        "SELECT count(*), min(seq), max(seq) FROM records").fetchone()
    assert stored[0] == minutes - status.evicted_total
    assert stored[2] == minutes, "the newest records survive eviction"
    accounted = client.app.state.engine.raw_connection().execute(  # type: ignore[attr-defined]
        "SELECT accounted_through FROM streams").fetchone()[0]
    assert accounted == minutes, "every seq is stored or reported evicted"

    # Read as Prometheus does, with a metrics token (the agent's credential would get 401).
    engine = client.app.state.engine  # type: ignore[attr-defined]
    reader = {"Authorization": f"Bearer {create_metrics_token(engine)[1]}"}
    metrics = client.get("/metrics", headers=reader).text
    evicted_line = [line for line in metrics.splitlines()
                    if line.startswith("schoolnet_agent_given_up_records_total")
                    and 'reason="evicted"' in line]
    if status.evicted_total:
        assert evicted_line and float(evicted_line[0].split()[-1]) == status.evicted_total
    else:
        assert not evicted_line
