"""load_history: what the store holds of a school over a period, read through the real ingest
route and the collector's own store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_collector.conftest import Site, make_site
from test_collector.incident_histories import (
    ACCESS_HOP,
    GATEWAY,
    MBIT,
    SECOND_SERVER,
    SERVER,
    first_agent,
    history_of,
    import_contract,
    local,
    school_pk,
    second_agent,
)

from collector.incidents.detect import detect_school
from collector.incidents.model import DetectionPolicy

pytestmark = pytest.mark.both_stores


@pytest.fixture
def site(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    with make_site(tmp_path, db_url) as result:
        yield result


def test_a_schools_tests_windows_outages_devices_and_readings(site: Site, tmp_path: Path) -> None:
    import_contract(site, tmp_path)
    pi = first_agent(site)
    laptop = second_agent(site, "laptop")
    pi.send([
        pi.bandwidth(local(10, 15), 5.1, 2.3, retest_server=SECOND_SERVER, retest_down_mbit=5.0),
        pi.window(local(10, 14)),
        pi.window(local(10, 15), gateway_loss=0.25, gateway_p50=0.004, targets_loss=0.3),
        pi.users(local(10, 10), 212),
        pi.outage("isp", local(11, 0), local(11, 20)),
        pi.bandwidth(local(19, 0), 12.0),  # outside school hours
        pi.bandwidth(local(7, 0, day=None) - 86400, 12.0),  # before the period: not read
    ])
    laptop.send([laptop.bandwidth(local(12, 0), 3.0, wireless=True,
                                  invalid_reasons=["Wi-Fi was the limit (the agent tested over wlan0)"]),
                 laptop.wifi(local(12, 1), -78.0), laptop.wifi(local(20, 0), -60.0)])
    history = history_of(site, local(0), local(23, 59))

    assert (history.board, history.school, history.school_name) == (
        "test-board", "test-school", "Test School")
    assert history.school_pk == school_pk(site)
    [line] = history.lines
    assert line.slug == "vdsl" and line.terms[0].download_advertised == 12.5 * MBIT
    agents = {a.slug: a for a in history.agents}
    assert agents["pi"].wired is True and agents["laptop"].wired is False
    assert not agents["pi"].revoked and agents["pi"].last_report_at is not None

    assert [t.measured_at for t in history.tests] == [local(10, 15), local(12, 0), local(19, 0)]
    low, wireless, evening = history.tests
    assert low.connection_pk == line.id and low.agent_slug == "pi" and low.source == "agent"
    assert low.download_bytes_per_second == pytest.approx(5.1 * MBIT)
    assert (low.server, low.retest_server) == (SERVER, SECOND_SERVER)
    assert low.retest_download_bytes_per_second == pytest.approx(5.0 * MBIT)
    assert low.retest_upload_bytes_per_second is None and low.retest_error is None
    assert (low.streams, low.interface_wireless, low.leased, low.concurrent_devices) == (4, False, True, 212)
    assert low.download_cross_traffic_bytes == 180_000 and low.idle_latency_seconds == 0.014
    assert low.valid and low.in_session and low.record_id is not None
    assert not wireless.valid
    assert wireless.invalid_reasons == ("Wi-Fi was the limit (the agent tested over wlan0)",)
    assert wireless.interface_wireless is True
    assert not evening.in_session

    first, lossy = history.windows
    assert (first.start, first.seconds, first.up, first.agent_slug) == (local(10, 14), 60.0, True, "pi")
    assert first.gateway_address == GATEWAY and first.access_hop_address == ACCESS_HOP
    assert first.targets_sent == 240 and first.targets_loss_ratio == 0.0
    # The median of the two targets' median round trips (11 and 13.2 ms).
    assert first.targets_latency_p50_seconds == pytest.approx((0.011 + 0.0132) / 2)
    assert lossy.gateway_loss_ratio == pytest.approx(0.25) and lossy.gateway_latency_p50_seconds == 0.004
    assert lossy.targets_received == 2 * 84 and lossy.targets_loss_ratio == pytest.approx(0.3)

    [outage] = history.outages
    assert (outage.kind, outage.start, outage.end, outage.ongoing) == (
        "isp", local(11, 0), local(11, 20), False)
    assert outage.agent_slug == "pi" and "gateway 10.203.0.1 answered" in (outage.detail or "")
    [count] = history.devices
    assert (count.measured_at, count.concurrent_devices) == (local(10, 10), 212)
    school_hours, evening_reading = history.readings
    assert (school_hours.room_slug, school_hours.room_name, school_hours.signal_dbm) == (
        "lokaal-2-11", "Lokaal 2.11", -78.0)
    assert school_hours.in_session and not evening_reading.in_session
    assert school_hours.source == "agent"


def test_an_outage_under_way_comes_from_the_latest_window(site: Site) -> None:
    pi = first_agent(site)
    began = local(13, 2, 30)
    pi.send([pi.window(local(13, 0)), pi.window(local(13, 1)),
             pi.window(local(13, 2), up=False, down_seconds=30.0, outage_kind="isp", outage_start=began),
             pi.window(local(13, 3), up=False, down_seconds=60.0, outage_kind="isp", outage_start=began)])
    [ongoing] = history_of(site, local(0), local(23)).outages
    assert (ongoing.kind, ongoing.start, ongoing.end, ongoing.ongoing) == ("isp", began, local(13, 4), True)
    # A period that ends before it began does not see it.
    assert history_of(site, local(0), local(12)).outages == []

    # Its end record arrives before the window that saw it end: the record is the outage.
    pi.send([pi.outage("isp", began, local(13, 9))])
    [ended] = history_of(site, local(0), local(23)).outages
    assert (ended.end, ended.ongoing) == (local(13, 9), False)


def test_an_ended_outage_that_touches_the_period_is_read_whole(site: Site) -> None:
    pi = first_agent(site)
    pi.send([pi.outage("lan", local(8, 50), local(9, 40), detail="the gateway 10.203.0.1 did not answer")])
    [outage] = history_of(site, local(9), local(10)).outages
    assert (outage.start, outage.end, outage.kind) == (local(8, 50), local(9, 40), "lan")
    assert history_of(site, local(9, 41), local(10)).outages == []


def test_a_day_of_a_school_loads_fast(site: Site, tmp_path: Path) -> None:
    """Two agents, 1,440 windows each, a test an hour, a census every five minutes."""
    import_contract(site, tmp_path)
    pi = first_agent(site)
    laptop = second_agent(site, "laptop")
    day = local(0)
    for agent in (pi, laptop):
        agent.send(agent.windows(day, day + 86400))
        agent.send([agent.users(day + 300 * i, 100 + i % 50) for i in range(288)])
    pi.send([pi.bandwidth(day + 3600 * h + 600, 11.0) for h in range(24)])
    started = time.perf_counter()
    history = history_of(site, day, day + 86400)
    seconds = time.perf_counter() - started
    assert len(history.windows) == 2880 and len(history.devices) == 576 and len(history.tests) == 24
    assert [w.start for w in history.windows] == sorted(w.start for w in history.windows)
    started = time.perf_counter()
    detection = detect_school(history, DetectionPolicy(), day + 86400)
    detect_seconds = time.perf_counter() - started
    print(f"load_history of a school day (2 agents, 2,880 windows): {seconds * 1000:.0f} ms; "
          f"detect_school: {detect_seconds * 1000:.0f} ms")
    assert seconds < 2.0 and detect_seconds < 1.0
    assert detection.findings == []  # a fine day: nothing to open
