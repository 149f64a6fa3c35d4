"""What the collector answers when its store fails, and input a database would refuse."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from support.records import batch, new_stream, record

from agent.wire import ID_PATTERN
from collector.registry import create_enrolment_code, enroll

pytestmark = pytest.mark.both_stores


def post(site, body: dict) -> object:  # type: ignore[no-untyped-def]
    return site.client.post("/api/v1/ingest", content=gzip.compress(json.dumps(body).encode()),
                            headers={**site.auth, "Content-Encoding": "gzip"})


def test_a_failing_store_is_503_with_retry_after_never_500(site) -> None:  # type: ignore[no-untyped-def]
    code = create_enrolment_code(site.engine, "test-school", 1, 3600)
    # A store that fails underneath a running collector (here: tables gone).
    # (PostgreSQL refuses while other tables' foreign keys point at them: CASCADE drops those.)
    cascade = " CASCADE" if site.engine.dialect.name == "postgresql" else ""
    site.sql(f"DROP TABLE records{cascade}")
    site.sql(f"DROP TABLE enrolment_codes{cascade}")
    answer = post(site, batch(record(1, new_stream())))
    assert answer.status_code == 503, answer.text  # type: ignore[attr-defined]
    assert answer.headers["retry-after"] == "5"  # type: ignore[attr-defined]
    enrolled = site.client.post("/api/v1/enroll", json={"code": code, "version": "1"})
    assert enrolled.status_code == 503 and enrolled.headers["retry-after"] == "5"
    assert enrolled.json() == {"detail": "the store is not available; retry later"}
    # The collector keeps serving what does not need the lost tables.
    assert site.client.get("/api/v1/speed/ping", headers=site.auth).status_code == 204


def test_a_nul_character_rejects_its_record_not_the_batch(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    answer = post(site, batch(record(1, stream, ok=False, error="probe said \x00", payload={}),
                              record(2, stream)))
    results = answer.json()["results"]  # type: ignore[attr-defined]
    assert [r["status"] for r in results] == ["rejected", "accepted"]
    assert "NUL" in results[0]["reason"]
    assert answer.json()["accounted_through"] == {stream: 2}  # type: ignore[attr-defined]
    # A text with a backslash and "u0000" in it is ordinary text, not a NUL.
    fine = post(site, batch(record(3, stream, ok=False, error="path C:\\u0000", payload={})))
    assert [r["status"] for r in fine.json()["results"]] == ["accepted"]  # type: ignore[attr-defined]
    body = batch(record(4, stream))
    body["health"]["version"] = "1.0\x00"
    refused = post(site, body)
    assert refused.status_code == 422 and "NUL" in refused.json()["detail"]  # type: ignore[attr-defined]


def test_agent_ids_stay_unique_and_valid_for_long_names(site) -> None:  # type: ignore[no-untyped-def]
    name = "Raspberry Pi in the cupboard behind the gym of the main building, west"
    code = create_enrolment_code(site.engine, "test-school", 3, 3600)
    ids = [enroll(site.engine, code, name, "0.1.0").agent for _ in range(3)]
    assert len(set(ids)) == 3, ids
    assert all(re.match(ID_PATTERN, agent_id) for agent_id in ids), ids
    assert ids[1].endswith("-2") and ids[2].endswith("-3")
