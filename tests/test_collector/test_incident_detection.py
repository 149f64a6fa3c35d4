"""Detection over scenario histories: records through the real ingest route into a real SQLite
store, read by load_history, judged by detect_school. For each kind: opens when it should,
stays Held when the evidence does not stand up, recovers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from test_collector.conftest import Site, make_site
from test_collector.incident_histories import (
    MBIT,
    SECOND_SERVER,
    SERVER,
    ZONE,
    around,
    first_agent,
    history_of,
    import_contract,
    local,
    lossy_line,
    poor_room,
    provider_outage,
    school_pk,
    second_agent,
    slow_line,
)

from collector.incidents.detect import detect_school
from collector.incidents.model import Detection, DetectionPolicy, Finding, school_key

pytestmark = pytest.mark.both_stores

POLICY = DetectionPolicy()


@pytest.fixture
def site(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    with make_site(tmp_path, db_url) as result:
        yield result


def detect(site: Site, now: float, policy: DetectionPolicy = POLICY) -> Detection:
    return detect_school(history_of(site, now - 2 * 86400, now + 1), policy, now)


def only_finding(detection: Detection, kind: str) -> Finding:
    found = [f for f in detection.findings if f.kind == kind]
    assert len(found) == 1, (detection.findings, detection.held)
    return found[0]


def held_reasons(detection: Detection, kind: str) -> list[str]:
    return [h.reason for h in detection.held if h.kind == kind]


def down_key(site: Site) -> str:
    return school_key("bandwidth", school_pk(site), "vdsl", "download")


# --- bandwidth ---------------------------------------------------------------------------------


def test_a_slow_line_opens_on_corroborated_valid_tests(site: Site, tmp_path: Path) -> None:
    now = slow_line(site, tmp_path)
    detection = detect(site, now)
    finding = only_finding(detection, "bandwidth")
    assert finding.key == down_key(site) and finding.responsible == "provider"
    assert finding.started_at == local(10, 0) and finding.last_evidence_at == local(13, 0)
    [(line_pk,)] = site.sql("SELECT id FROM connections WHERE slug = 'vdsl'")
    assert finding.connection_pk == line_pk
    figures = finding.figures
    assert figures["direction"] == "download" and figures["threshold_ratio"] == 0.8
    assert figures["advertised_bytes_per_second"] == 12.5 * MBIT
    assert figures["normal_bytes_per_second"] == 10 * MBIT
    assert figures["minimum_bytes_per_second"] == 6 * MBIT
    first, second = figures["tests"]
    # 5.1 Mbit/s against 12.5 advertised: 41 %.
    assert round(first["ratio"], 2) == 0.41 and round(figures["median_ratio"], 2) == 0.41
    assert first["rate_bytes_per_second"] == pytest.approx(5.1 * MBIT)
    assert (first["server"], first["retest_server"]) == (SERVER, SECOND_SERVER)
    assert first["retest_ratio"] == pytest.approx(0.40) and second["retest_ratio"] == pytest.approx(0.424)
    assert first["measured_at"] == local(10, 0) and first["gateway_fine"] is True
    assert first["concurrent_devices"] == 212 and first["interface_wireless"] is False
    [(id_10,), (id_13,)] = site.sql("SELECT id FROM bandwidth_results ORDER BY measured_at")
    assert [t["result_id"] for t in figures["tests"]] == [id_10, id_13]
    text = " ".join(c.english() for c in finding.corroboration)
    assert SECOND_SERVER in text and "gateway" in text and "wired" in text
    # Upload delivered as contracted (2.4 of 2.5): that direction has recovered, if it ever broke.
    up_key = school_key("bandwidth", school_pk(site), "vdsl", "upload")
    assert up_key in detection.recoveries and down_key(site) not in detection.recoveries


def test_two_servers_corroborate_without_a_retest(site: Site, tmp_path: Path) -> None:
    import_contract(site, tmp_path)
    pi = first_agent(site)
    pi.send([*around(pi, local(10, 0)), *around(pi, local(13, 0)),
             pi.bandwidth(local(10, 0), 5.1), pi.bandwidth(local(13, 0), 4.8, server=SECOND_SERVER)])
    finding = only_finding(detect(site, local(14, 0)), "bandwidth")
    assert finding.figures["servers"] == [SERVER, SECOND_SERVER]
    assert "2 servers" in " ".join(c.english() for c in finding.corroboration)


def test_agent_limited_results_are_held(site: Site, tmp_path: Path) -> None:
    import_contract(site, tmp_path)
    pi = first_agent(site)
    limited = ["the agent's CPU was the limit (94 % busy)"]
    pi.send([*around(pi, local(10, 0)), *around(pi, local(13, 0)),
             pi.bandwidth(local(10, 0), 5.1, retest_server=SECOND_SERVER, retest_down_mbit=5.0,
                          invalid_reasons=limited),
             pi.bandwidth(local(13, 0), 5.1, retest_server=SECOND_SERVER, retest_down_mbit=5.0,
                          invalid_reasons=limited)])
    detection = detect(site, local(14, 0))
    assert detection.findings == []
    [reason] = held_reasons(detection, "bandwidth")
    assert "agent-limited" in reason and "CPU" in reason


def test_a_single_server_is_held(site: Site, tmp_path: Path) -> None:
    import_contract(site, tmp_path)
    pi = first_agent(site)
    pi.send([*around(pi, local(10, 0)), *around(pi, local(13, 0)),
             pi.bandwidth(local(10, 0), 5.1), pi.bandwidth(local(13, 0), 5.1)])
    detection = detect(site, local(14, 0))
    assert detection.findings == []
    [reason] = held_reasons(detection, "bandwidth")
    assert reason.startswith("single server") and SERVER in reason


def test_a_retest_that_reaches_the_contract_contradicts(site: Site, tmp_path: Path) -> None:
    import_contract(site, tmp_path)
    pi = first_agent(site)
    pi.send([*around(pi, local(10, 0)), *around(pi, local(13, 0)),
             pi.bandwidth(local(10, 0), 5.1, retest_server=SECOND_SERVER, retest_down_mbit=5.0),
             pi.bandwidth(local(13, 0), 5.1, retest_server=SECOND_SERVER, retest_down_mbit=12.1)])
    detection = detect(site, local(14, 0))
    assert detection.findings == []
    [reason] = held_reasons(detection, "bandwidth")
    assert "12.1 Mbit/s" in reason and "limit" in reason


def test_a_bad_gateway_or_none_at_all_is_held(site: Site, tmp_path: Path) -> None:
    import_contract(site, tmp_path)
    pi = first_agent(site)
    pi.send([*around(pi, local(10, 0)), *around(pi, local(13, 0), gateway_loss=0.2),
             pi.bandwidth(local(10, 0), 5.1, retest_server=SECOND_SERVER, retest_down_mbit=5.0),
             pi.bandwidth(local(13, 0), 5.1, retest_server=SECOND_SERVER, retest_down_mbit=5.0)])
    detection = detect(site, local(14, 0))
    assert detection.findings == []
    [reason] = held_reasons(detection, "bandwidth")
    assert reason.startswith("gateway not fine") and "20 % loss" in reason

    # A later pair of tests without any window around them: no gateway evidence.
    pi.send([pi.bandwidth(local(14, 30), 5.1, retest_server=SECOND_SERVER, retest_down_mbit=5.0),
             pi.bandwidth(local(15, 0), 5.1, retest_server=SECOND_SERVER, retest_down_mbit=5.0)])
    [reason] = held_reasons(detect(site, local(15, 10)), "bandwidth")
    assert reason.startswith("no gateway evidence")


def test_a_wireless_agents_low_tests_do_not_count_beside_a_fine_wired_agent(site: Site,
                                                                            tmp_path: Path) -> None:
    import_contract(site, tmp_path)
    pi = first_agent(site)
    laptop = second_agent(site, "laptop")
    pi.send([*around(pi, local(9, 0)), *around(pi, local(11, 0)),
             pi.bandwidth(local(9, 0), 11.8), pi.bandwidth(local(11, 0), 11.5)])
    laptop.send([*around(laptop, local(10, 0)), *around(laptop, local(13, 0)),
                 laptop.bandwidth(local(10, 0), 5.1, wireless=True, retest_server=SECOND_SERVER,
                                  retest_down_mbit=5.0),
                 laptop.bandwidth(local(13, 0), 4.9, wireless=True, retest_server=SECOND_SERVER,
                                  retest_down_mbit=5.0)])
    detection = detect(site, local(14, 0))
    assert [f for f in detection.findings if f.kind == "bandwidth"] == []
    [reason] = held_reasons(detection, "bandwidth")
    assert "Wi-Fi" in reason and "laptop" in reason and "wired" in reason
    # The wired Pi's tests are the line's: 94 % and 92 %, recovered.
    assert "94 %" in detection.recoveries[down_key(site)].reason.english()


def test_a_slow_line_recovers_on_valid_tests_at_the_contract(site: Site, tmp_path: Path) -> None:
    now = slow_line(site, tmp_path)
    pi = first_agent(site)
    pi.seq = 1000  # the same stream goes on
    # Fine in the evening only: the school-hours tests still show the problem.
    pi.send([pi.bandwidth(local(19, 0), 12.2), pi.bandwidth(local(20, 0), 12.4)])
    evening = detect(site, local(20, 30))
    assert only_finding(evening, "bandwidth").key == down_key(site)
    assert down_key(site) not in evening.recoveries
    # The next school day: two valid tests at the contract.
    next_day = (dt.datetime.fromtimestamp(now, ZONE) + dt.timedelta(days=1)).date()
    pi.send([pi.bandwidth(local(9, 0, day=next_day), 12.0), pi.bandwidth(local(10, 0, day=next_day), 12.6)])
    detection = detect(site, local(11, 0, day=next_day))
    assert [f for f in detection.findings if f.kind == "bandwidth"] == []
    recovery = detection.recoveries[down_key(site)]
    # Since the first of the run of tests at the contract: the evening's.
    assert recovery.at == local(19, 0)
    assert "96 %" in recovery.reason.english() and "101 %" in recovery.reason.english()


# --- outage ---------------------------------------------------------------------------------------


def test_a_provider_outage_opens_and_recovers_when_it_ended(site: Site) -> None:
    now = provider_outage(site, minutes=25)
    detection = detect(site, now)
    finding = only_finding(detection, "outage")
    assert finding.key == school_key("outage", school_pk(site)) and finding.responsible == "provider"
    figures = finding.figures
    assert (figures["kind"], figures["start"], figures["end"]) == ("isp", local(10, 0), local(10, 25))
    assert figures["duration_seconds"] == 1500 and figures["ongoing"] is False
    assert figures["agents"] == ["pi"] and "gateway 10.203.0.1 answered" in figures["detail"]
    recovery = detection.recoveries[finding.key]
    assert recovery.at == local(10, 25)


def test_an_outage_under_way_opens_without_recovery(site: Site) -> None:
    pi = first_agent(site)
    began = local(10, 0, 30)
    pi.send([*pi.windows(local(9, 50), local(10, 0)),
             *pi.windows(local(10, 0), local(10, 12), up=False, down_seconds=60.0, outage_kind="isp",
                         outage_start=began)])
    detection = detect(site, local(10, 12))
    finding = only_finding(detection, "outage")
    assert finding.figures["ongoing"] is True and finding.started_at == began
    assert finding.figures["end"] == local(10, 12)
    assert finding.key not in detection.recoveries


def test_a_short_outage_or_a_lan_outage_opens_nothing(site: Site) -> None:
    pi = first_agent(site)
    pi.send([pi.outage("isp", local(9, 0), local(9, 2)),
             pi.outage("lan", local(10, 0), local(10, 30), detail="the gateway 10.203.0.1 did not answer"),
             *pi.windows(local(10, 30), local(10, 40))])
    detection = detect(site, local(11, 0))
    assert [f for f in detection.findings if f.kind == "outage"] == []
    [reason] = held_reasons(detection, "outage")
    assert reason.startswith("a lan outage of 30 min") and "school's own network" in reason


def test_an_outage_one_agent_did_not_see_is_held(site: Site) -> None:
    provider_outage(site)
    laptop = second_agent(site, "laptop")
    laptop.send(laptop.windows(local(9, 55), local(10, 40)))  # up all through
    detection = detect(site, local(11, 0))
    assert [f for f in detection.findings if f.kind == "outage"] == []
    [reason] = held_reasons(detection, "outage")
    assert "laptop sent windows then and saw none" in reason


def test_an_outage_every_agent_saw_is_corroborated(site: Site) -> None:
    provider_outage(site)
    laptop = second_agent(site, "laptop")
    laptop.send([*laptop.windows(local(9, 55), local(10, 0)),
                 laptop.outage("isp", local(10, 0, 20), local(10, 24, 40)),
                 *laptop.windows(local(10, 25), local(10, 40))])
    finding = only_finding(detect(site, local(11, 0)), "outage")
    assert finding.figures["agents"] == ["laptop", "pi"] and len(finding.figures["spans"]) == 2
    assert "laptop, pi" in " ".join(c.english() for c in finding.corroboration)


# --- loss and latency --------------------------------------------------------------------------


def test_loss_with_the_gateway_fine_opens_and_recovers(site: Site) -> None:
    now = lossy_line(site, loss=0.3)
    finding = only_finding(detect(site, now), "loss")
    pi = {a: pk for a, pk in site.sql("SELECT slug, id FROM agents")}["pi"]
    assert finding.key == school_key("loss", school_pk(site), "pi") and finding.agent_pk == pi
    assert finding.started_at == local(10, 45) and finding.last_evidence_at == local(11, 0)
    figures = finding.figures
    assert figures["windows"] == 15 and figures["median"] == pytest.approx(0.3, abs=0.005)
    assert figures["gateway_loss_ratio_max"] == 0.0 and figures["access_hops"] == ["195.190.228.1"]
    assert figures["targets_sent"] == 15 * 240

    recovered = first_agent(site)
    recovered.seq = 10_000
    recovered.send(recovered.windows(local(11, 0), local(11, 10)))
    detection = detect(site, local(11, 10))
    assert [f for f in detection.findings if f.kind == "loss"] == []
    assert detection.recoveries[finding.key].at == local(11, 0)


def test_loss_with_the_gateway_losing_too_is_held(site: Site) -> None:
    now = lossy_line(site, loss=0.3, gateway_loss=0.25)
    detection = detect(site, now)
    assert [f for f in detection.findings if f.kind == "loss"] == []
    [reason] = held_reasons(detection, "loss")
    assert "gateway was not fine in 10 of them" in reason and "LAN" in reason


def test_high_latency_opens(site: Site) -> None:
    pi = first_agent(site)
    pi.send([pi.bandwidth(local(9, 0), 12.0), *pi.windows(local(10, 0), local(10, 50)),
             *pi.windows(local(10, 50), local(11, 0), targets_p50=0.180)])
    finding = only_finding(detect(site, local(11, 0)), "latency")
    assert finding.figures["windows"] == 10 and finding.figures["threshold"] == 0.150
    # The median of the two targets' medians (180 and 216 ms).
    assert finding.figures["median"] == pytest.approx(0.198)


# --- Wi-Fi ----------------------------------------------------------------------------------------


def test_a_poor_room_on_few_readings_is_held(site: Site) -> None:
    few = poor_room(site, signals=(-80, -81, -79))
    detection = detect(site, few)
    assert [f for f in detection.findings if f.kind == "wifi"] == []
    [reason] = held_reasons(detection, "wifi")
    assert "too few observations (3 of the 5 needed)" in reason
    # Readings out of school hours do not count towards it.
    evening = second_agent(site, "evening")
    evening.send([evening.wifi(local(18, 0) + 600 * i, -85) for i in range(5)])
    assert held_reasons(detect(site, local(20, 0)), "wifi") == [reason]


def test_a_poor_room_opens_and_recovers(site: Site) -> None:
    now = poor_room(site)
    finding = only_finding(detect(site, now), "wifi")
    assert finding.key == school_key("wifi", school_pk(site), "lokaal-2-11")
    assert finding.responsible == "school"
    [(room_pk,)] = site.sql("SELECT id FROM rooms")
    assert finding.room_pk == room_pk
    figures = finding.figures
    # -82 -81 -80 -79 -77 -70: the nearest-rank median is the 3rd, -80 dBm.
    assert figures["median_signal_dbm"] == -80 and figures["observations"] == 6
    assert figures["threshold_dbm"] == -75 and figures["poor_share"] == pytest.approx(5 / 6)

    # An access point added at noon: another agent in the room reads -60 dBm from 12:10 on.
    readings = second_agent(site, "laptop-2")
    readings.send([readings.wifi(local(12, 10) + 600 * i, -60) for i in range(7)])
    detection = detect(site, local(13, 30))
    assert [f for f in detection.findings if f.kind == "wifi"] == []
    assert detection.recoveries[finding.key].at == local(12, 10)


# --- silent agents -----------------------------------------------------------------------------


def _next_school_time(after: float, hour: int) -> float:
    """The first weekday (the school's days) at ``hour`` local after ``after``."""
    day = dt.datetime.fromtimestamp(after, ZONE).date()
    while True:
        t = dt.datetime.combine(day, dt.time(hour), ZONE).timestamp()
        if t > after and day.isoweekday() <= 5:
            return t
        day += dt.timedelta(days=1)


def test_a_silent_agent_opens_in_session_is_held_at_night_and_recovers(site: Site) -> None:
    pi = first_agent(site)
    pi.send([pi.window(local(10, 0))])  # the report is now (the collector's clock)
    [(last,)] = site.sql("SELECT last_report_at FROM agents WHERE slug = 'pi'")
    key = school_key("silent", school_pk(site), "pi")

    in_lessons = _next_school_time(last + 3600, 10)
    finding = only_finding(detect_school(history_of(site, 0, in_lessons), POLICY, in_lessons), "silent")
    assert finding.key == key and finding.responsible == "school" and finding.started_at == last
    assert finding.figures["silent_seconds"] == pytest.approx(in_lessons - last)
    assert finding.figures["last_report_at"] == last

    night = dt.datetime.fromtimestamp(last + 3600, ZONE)
    at_night = dt.datetime.combine(night.date() + dt.timedelta(days=1), dt.time(2), ZONE).timestamp()
    detection = detect_school(history_of(site, 0, at_night), POLICY, at_night)
    assert [f for f in detection.findings if f.kind == "silent"] == []
    [reason] = held_reasons(detection, "silent")
    assert "not in session" in reason

    soon = last + 600
    recovered = detect_school(history_of(site, 0, soon), POLICY, soon)
    assert recovered.recoveries[key].at == last


def test_latency_with_a_slow_gateway_is_held(site: Site) -> None:
    pi = first_agent(site)
    pi.send([pi.bandwidth(local(9, 0), 12.0), *pi.windows(local(10, 0), local(10, 50)),
             *pi.windows(local(10, 50), local(11, 0), targets_p50=0.180, gateway_p50=0.045)])
    detection = detect(site, local(11, 0))
    assert [f for f in detection.findings if f.kind == "latency"] == []
    [reason] = held_reasons(detection, "latency")
    assert "gateway was not fine in 10 of them" in reason and "45.0 ms" in reason


def test_a_wireless_agents_loss_beside_a_wired_agent_is_held(site: Site) -> None:
    pi = first_agent(site)
    laptop = second_agent(site, "laptop")
    pi.send([pi.bandwidth(local(9, 0), 12.0), *pi.windows(local(10, 0), local(11, 0))])
    laptop.send([laptop.bandwidth(local(9, 0), 6.0, wireless=True),
                 *laptop.windows(local(10, 45), local(11, 0), targets_loss=0.3)])
    detection = detect(site, local(11, 0))
    assert [f for f in detection.findings if f.kind == "loss"] == []
    [reason] = held_reasons(detection, "loss")
    assert reason.startswith("laptop (Wi-Fi)") and "only wired agents count" in reason
    # The wired Pi, fine all along, says the line recovered (or never broke).
    assert school_key("loss", school_pk(site), "pi") in detection.recoveries


def test_a_revoked_agents_last_window_down_does_not_keep_an_outage_open(site: Site) -> None:
    now = provider_outage(site)
    laptop = second_agent(site, "laptop")
    # The laptop saw the outage begin, then was unplugged and later revoked.
    laptop.send([*laptop.windows(local(9, 55), local(10, 0)),
                 *laptop.windows(local(10, 0), local(10, 5), up=False, down_seconds=60.0, outage_kind="isp",
                                 outage_start=local(10, 0))])
    key = school_key("outage", school_pk(site))
    assert key not in detect(site, now).recoveries  # the laptop's last word: the line is down
    site.sql("UPDATE agents SET revoked_at = ? WHERE slug = 'laptop'", local(10, 30))
    detection = detect(site, now)
    assert detection.recoveries[key].at == local(10, 25)
    # What only the laptop watched closes, with no time of restore.
    gone = detection.recoveries[school_key("silent", school_pk(site), "laptop")]
    assert gone.restored is False and "laptop was revoked at" in gone.reason.english()
