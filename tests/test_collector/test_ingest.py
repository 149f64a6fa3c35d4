"""POST /api/v1/ingest: statuses per record, idempotence, the watermark, and bad input."""

from __future__ import annotations

import gzip
import json
import random
import resource

import pytest
from support.records import batch, new_stream, record

from agent.wire import MAX_RECORDS_PER_BATCH

pytestmark = pytest.mark.both_stores


def post(site, body, headers=None, gzipped=True):  # type: ignore[no-untyped-def]
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    extra = {"Content-Encoding": "gzip"} if gzipped else {}
    if gzipped:
        data = gzip.compress(data)
    return site.client.post("/api/v1/ingest", content=data,
                            headers={**site.auth, **extra, **(headers or {})})


def statuses(answer) -> list[str]:  # type: ignore[no-untyped-def]
    return [r["status"] for r in answer.json()["results"]]


def test_accepted_records_are_stored_with_their_measurement_time(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    first = record(1, stream)
    answer = post(site, batch(first, record(2, stream, "bandwidth")))
    assert answer.status_code == 200
    assert statuses(answer) == ["accepted", "accepted"]
    assert answer.json()["accounted_through"] == {stream: 2}
    rows = site.sql("SELECT seq, kind, measured_at, boot_id, clock_synchronized FROM records ORDER BY seq")
    assert rows == [(1, "system", first["clock"]["wall_time_seconds"], "boot-1", 1),
                    (2, "bandwidth", rows[1][2], "boot-1", 1)]


def test_plain_json_without_gzip_is_accepted(site) -> None:  # type: ignore[no-untyped-def]
    answer = post(site, batch(record(1, new_stream())), gzipped=False)
    assert answer.status_code == 200 and statuses(answer) == ["accepted"]


def test_duplicated_and_reordered_batches_give_one_row_each(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    assert post(site, batch(record(3, stream), record(4, stream))).json()["accounted_through"] == {stream: 0}
    again = post(site, batch(record(4, stream), record(1, stream), record(1, stream)))
    assert statuses(again) == ["duplicate", "accepted", "duplicate"]
    assert again.json()["accounted_through"] == {stream: 1}, "2 is still missing"
    last = post(site, batch(record(2, stream)))
    assert last.json()["accounted_through"] == {stream: 4}
    assert site.sql("SELECT seq FROM records ORDER BY seq") == [(1,), (2,), (3,), (4,)]


def test_a_record_sent_again_after_its_row_was_removed_is_still_a_duplicate(site) -> None:  # type: ignore[no-untyped-def]
    """Retention removes old rows; the stream's watermark still accounts for their seqs, so
    an agent that sends one again (a restored outbox) does not get it stored twice."""
    stream = new_stream()
    assert statuses(post(site, batch(record(1, stream), record(2, stream), record(5, stream)))) == [
        "accepted", "accepted", "accepted"]
    site.sql("DELETE FROM records WHERE seq IN (1, 2, 5)")
    again = post(site, batch(record(1, stream), record(2, stream), record(3, stream), record(5, stream)))
    # 1 and 2 are below the watermark (2); 5 was above it, so only its row told it apart
    # (its row is gone: it is stored again, the one case the watermark cannot cover).
    assert statuses(again) == ["duplicate", "duplicate", "accepted", "accepted"]
    assert site.sql("SELECT seq FROM records ORDER BY seq") == [(3,), (5,)]
    runs = site.sql("SELECT runs_total FROM latest WHERE kind = 'system'")
    assert runs == [(5,)], "1, 2 and 5, then 3 and 5 again: 1 and 2 are not counted twice"


def test_given_up_ranges_and_rejections_fill_the_watermark(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    evicted = [{"stream_id": stream, "first": 1, "last": 10, "reason": "evicted"}]
    answer = post(site, batch(record(12, stream), record(11, stream, kind="nonsense"),
                              given_up=evicted))
    assert statuses(answer) == ["accepted", "rejected"]
    assert answer.json()["accounted_through"] == {stream: 12}
    # The agent resends the same report after a lost answer: it is not counted twice.
    post(site, batch(record(12, stream), given_up=evicted))
    assert site.sql("SELECT count(*) FROM given_up_ranges") == [(1,)]


def test_one_bad_record_never_costs_the_good_ones(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    mac = record(2, stream, payload={**record(2, stream)["payload"], "uplink_interface": "00:1A:2b:3c:4d:5e"})
    unknown_field = record(3, stream, colour="blue")
    bad_value = record(-4, stream)
    answer = post(site, batch(record(1, stream), mac, unknown_field, bad_value, record(5, stream)))
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected", "accepted"]
    assert "MAC-shaped" in results[1]["reason"] and "uplink_interface" in results[1]["reason"]
    assert "colour" in results[2]["reason"]
    assert "seq" in results[3]["reason"]
    assert site.sql("SELECT seq FROM records ORDER BY seq") == [(1,), (5,)]
    # What was rejected is remembered by reason, never by content.
    stored = site.sql("SELECT seq, code, reason FROM rejected_records ORDER BY coalesce(seq, -1)")
    assert [(s, c) for s, c, _ in stored] == [
        (None, "invalid_field"), (2, "mac_address"), (3, "unknown_field")]
    assert not any("00:1A" in reason for _, _, reason in stored)
    metrics = site.metrics().text
    assert 'schoolnet_collector_records_rejected_total{reason="mac_address"} 1.0' in metrics


def test_bssid_fields_may_hold_an_access_point_address(site) -> None:  # type: ignore[no-untyped-def]
    from agent.wire import find_mac_shaped

    assert find_mac_shaped({"bssid": "00:1a:2b:3c:4d:5e"}) is None
    assert find_mac_shaped({"note": "seen 00-1a-2b-3c-4d-5e"}) == "note"
    assert find_mac_shaped({"devices": [{"id": "001a.2b3c.4d5e"}]}) == "devices[0].id"


def test_an_ipv6_address_is_not_a_mac_but_a_mac_beside_a_colon_is() -> None:
    from agent.wire import find_mac_shaped

    # A provider hop: six of its groups look like a MAC; the whole is an IPv6 address.
    assert find_mac_shaped({"hops": [{"address": "2001:db8:10:20:30:40:50:60"}]}) is None
    assert find_mac_shaped({"detail": "no reply from 2001:db8:10:20:30:40:50:60; gateway ok"}) is None
    assert find_mac_shaped({"note": "mac:aa:bb:cc:dd:ee:ff"}) == "note"
    assert find_mac_shaped({"note": "aa:bb:cc:dd:ee:ff:00"}) == "note", "seven groups are no IPv6"


def test_wrong_and_revoked_credentials_get_401(site) -> None:  # type: ignore[no-untyped-def]
    from collector.registry import revoke_agent

    body = gzip.compress(json.dumps(batch(record(1, new_stream()))).encode())
    for headers in ({}, {"Authorization": "Bearer not-a-credential"}, {"Authorization": "Basic x"}):
        answer = site.client.post("/api/v1/ingest", content=body,
                                  headers={"Content-Encoding": "gzip", **headers})
        assert answer.status_code == 401
    revoke_agent(site.engine, "test-board/test-school/pi")
    answer = post(site, batch(record(1, new_stream())))
    assert answer.status_code == 401 and "revoked" in answer.json()["detail"]


def test_oversize_body_is_413(site) -> None:  # type: ignore[no-untyped-def]
    huge = json.dumps(batch(record(1, new_stream(), error="x" * 100))).encode() + b" " * (2 << 20)
    assert post(site, huge, gzipped=False).status_code == 413


def test_gzip_bomb_is_413_without_exhausting_memory(site) -> None:  # type: ignore[no-untyped-def]
    bomb = gzip.compress(b"\0" * (512 << 20), compresslevel=9)  # 512 MiB in ~0.5 MiB
    assert len(bomb) < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answer = site.client.post("/api/v1/ingest", content=bomb,
                              headers={**site.auth, "Content-Encoding": "gzip"})
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert answer.status_code == 413
    assert grown_mib < 100, f"decompressing grew memory by {grown_mib:.0f} MiB"


def test_too_many_records_is_413(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    answer = post(site, batch(*(record(i, stream) for i in range(1, MAX_RECORDS_PER_BATCH + 2))))
    assert answer.status_code == 413
    assert "1001 records" in answer.json()["detail"]
    assert site.sql("SELECT count(*) FROM records") == [(0,)]


def test_malformed_envelopes_are_422_naming_the_field(site) -> None:  # type: ignore[no-untyped-def]
    cases = {
        b"{": "not JSON",
        b"[]": "batch",
        json.dumps({"records": []}).encode(): "sent_at_seconds",
        json.dumps({**batch(), "health": {"version": "1", "outbox_records": -1,
                                          "outbox_bytes": 0}}).encode(): "health.outbox_records",
        json.dumps({**batch(), "agent": "me"}).encode(): "agent",
    }
    for body, named in cases.items():
        answer = post(site, body, gzipped=False)
        assert answer.status_code == 422, body
        assert named in answer.json()["detail"], answer.json()
    assert post(site, b"not gzip", headers={"Content-Encoding": "gzip"}, gzipped=False).status_code == 422
    assert post(site, b"{}", headers={"Content-Encoding": "br"}, gzipped=False).status_code == 415


def test_random_bodies_never_cause_a_server_error(site) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    stream = new_stream()
    values = [None, True, -1, 0, 2**70, 1.5e308, "", "x" * 300, [], {}, "00:11:22:33:44:55",
              {"a": [1, {"b": None}]}, "\u0000", "é"]
    for attempt in range(300):
        good = batch(record(attempt + 1, stream))
        target = rng.choice([good, good["health"], good["records"][0], good["records"][0]["clock"],
                             good["records"][0]["payload"]])
        key = rng.choice([*target.keys(), "extra"])
        target[key] = rng.choice(values)
        answer = post(site, good, gzipped=rng.random() < 0.5)
        assert answer.status_code < 500, (good, answer.text)
        assert answer.status_code in (200, 413, 422), answer.text


def test_out_of_range_numbers_are_rejected_not_crashing(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    body = json.dumps(batch(record(2**70, stream), record(1, stream, payload={
        **record(1, stream)["payload"], "cpu_usage_ratio": float("nan")}))).encode()
    answer = post(site, body, gzipped=False)
    assert answer.status_code == 200
    assert statuses(answer) == ["rejected", "rejected"]


def test_a_mac_spelled_with_json_escapes_is_still_found(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    body = json.dumps(batch(record(1, stream, error="seen 00:1a:2b:3c:4d:5e", ok=False, payload={})))
    hidden = body.replace("00:1a:2b:3c:4d:5e", "00\\u003a1a\\u003a2b\\u003a3c\\u003a4d\\u003a5e")
    assert "00:1a" not in hidden
    answer = post(site, hidden.encode(), gzipped=False)
    assert answer.json()["results"][0]["status"] == "rejected"
    assert "MAC-shaped" in answer.json()["results"][0]["reason"]


def test_the_watermark_crosses_many_windows_once_a_gap_is_filled(site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import collector.ingest

    # A small window, so the loop that looks above the mark must run several times.
    monkeypatch.setattr(collector.ingest, "WATERMARK_WINDOW", 3)
    stream = new_stream()
    evicted = [{"stream_id": stream, "first": 12, "last": 20, "reason": "evicted"}]
    held_back = post(site, batch(*(record(seq, stream) for seq in range(2, 12)), given_up=evicted))
    assert held_back.json()["accounted_through"] == {stream: 0}, "seq 1 is missing"
    # A later batch beyond another gap (21 missing) does not move the mark either.
    assert post(site, batch(record(22, stream))).json()["accounted_through"] == {stream: 0}
    filled = post(site, batch(record(1, stream)))
    assert filled.json()["accounted_through"] == {stream: 20}
    assert site.sql("SELECT accounted_through FROM streams") == [(20,)]
    assert post(site, batch(record(21, stream))).json()["accounted_through"] == {stream: 22}


def test_the_watermark_stops_at_the_largest_seq(site) -> None:  # type: ignore[no-untyped-def]
    from agent.wire import INT64_MAX

    stream = new_stream()
    evicted = [{"stream_id": stream, "first": 1, "last": INT64_MAX - 1, "reason": "evicted"}]
    answer = post(site, batch(record(INT64_MAX, stream), given_up=evicted))
    assert answer.status_code == 200, answer.text
    assert answer.json()["accounted_through"] == {stream: INT64_MAX}
