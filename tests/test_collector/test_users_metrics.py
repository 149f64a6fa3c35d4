"""The device census of each agent on /metrics, through the real ingest path: per source and
over all of them, absent values absent (never 0), a failed source down, and the page
lint-clean and the same from both writers."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from support.records import at, deliver, metric_values, new_stream, page_samples, record
from support.tools import require_tool

from agent.wire import UsersPayload, UsersSourceStats
from collector.users import users_families

pytestmark = pytest.mark.both_stores

AGENT = {"board": "test-board", "school": "test-school", "agent": "pi"}
ROOT = Path(__file__).resolve().parents[2]


def window(**changes: Any) -> dict[str, Any]:
    """A window of three sources: ARP and the neighbour table tell devices apart (their
    hashes overlap: 131 distinct of 118 + 64), BSS Load only counts stations."""
    values: dict[str, Any] = {
        "window_seconds": 300.0, "concurrent_devices": 131, "daily_devices": 412,
        "hour_peak_devices": 150,
        "sources": [
            UsersSourceStats(source="arp", devices=118, daily_devices=390, duration_seconds=2.75,
                             rounds=3, requests=1304),
            UsersSourceStats(source="neighbours", devices=64, daily_devices=201,
                             duration_seconds=0.004),
            UsersSourceStats(source="bss_load", devices=97, duration_seconds=0.0),
        ]}
    values.update(changes)
    return UsersPayload(**values).model_dump(mode="json")




def of(source: str) -> dict[str, str]:
    return {**AGENT, "source": source}


def test_the_latest_window_per_source_and_over_all(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    older = at(record(1, stream, "users", payload=window(concurrent_devices=80, hour_peak_devices=80)),
               now - 600)
    newest = at(record(2, stream, "users", payload=window()), now - 300)
    assert deliver(site, newest, older) == ["accepted", "accepted"]  # in any order
    value = metric_values(site)
    # The fixed name dashboards rely on: the agent's distinct devices over its sources.
    assert value("schoolnet_concurrent_devices", of("all")) == 131
    assert value("schoolnet_concurrent_devices", of("arp")) == 118
    assert value("schoolnet_concurrent_devices", of("neighbours")) == 64
    assert value("schoolnet_concurrent_devices", of("bss_load")) == 97
    assert value("schoolnet_daily_devices", of("all")) == 412
    assert value("schoolnet_daily_devices", of("arp")) == 390
    assert value("schoolnet_daily_devices", of("neighbours")) == 201
    # A count-only source cannot tell one day's devices apart: no daily figure, not 0.
    assert value("schoolnet_daily_devices", of("bss_load")) is None
    assert value("schoolnet_concurrent_devices_hour_peak", AGENT) == 150
    assert value("schoolnet_census_duration_seconds", of("arp")) == 2.75
    assert value("schoolnet_census_duration_seconds", of("neighbours")) == 0.004
    assert value("schoolnet_census_duration_seconds", of("bss_load")) == 0.0
    assert value("schoolnet_census_rounds", of("arp")) == 3
    assert value("schoolnet_census_requests", of("arp")) == 1304
    # The neighbour table sends nothing: no rounds or requests rather than zeros it did not say.
    assert value("schoolnet_census_rounds", of("neighbours")) is None
    assert value("schoolnet_census_requests", of("neighbours")) is None
    for source in ("arp", "neighbours", "bss_load"):
        assert value("schoolnet_census_source_up", of(source)) == 1, source
    # Sources the agent does not run have no series at all, and "all" no per-window values.
    for name in ("schoolnet_concurrent_devices", "schoolnet_census_source_up"):
        assert value(name, of("snmp")) is None, name
    assert value("schoolnet_census_duration_seconds", of("all")) is None
    assert value("schoolnet_census_source_up", of("all")) is None
    assert value("schoolnet_probe_runs_total", {**AGENT, "probe": "users"}) == 2
    assert value("schoolnet_probe_last_success_timestamp_seconds", {**AGENT, "probe": "users"}) == now - 300


def test_a_failed_source_is_down_and_has_no_count(site) -> None:  # type: ignore[no-untyped-def]
    failed = window(concurrent_devices=64, sources=[
        UsersSourceStats(source="neighbours", devices=64, daily_devices=201, duration_seconds=0.004),
        UsersSourceStats(source="snmp", error="10.0.0.1:161 did not answer within 2 s",
                         duration_seconds=2.0, requests=2),
        UsersSourceStats(source="arp", error="no CAP_NET_RAW: run the agent with the capability "
                         "or drop \"arp\" from probes.users.sources")])
    assert deliver(site, record(1, new_stream(), "users", payload=failed)) == ["accepted"]
    value = metric_values(site)
    assert value("schoolnet_census_source_up", of("neighbours")) == 1
    assert value("schoolnet_census_source_up", of("snmp")) == 0
    assert value("schoolnet_census_source_up", of("arp")) == 0
    for name in ("schoolnet_concurrent_devices", "schoolnet_daily_devices"):
        assert value(name, of("snmp")) is None, name
        assert value(name, of("arp")) is None, name
    # What the failed source did before it gave up is still shown: it cost time and traffic.
    assert value("schoolnet_census_duration_seconds", of("snmp")) == 2.0
    assert value("schoolnet_census_requests", of("snmp")) == 2
    assert value("schoolnet_census_duration_seconds", of("arp")) is None
    assert value("schoolnet_concurrent_devices", of("all")) == 64
    # The reason is in the store, not on the page (a label would be a new series per message).
    text = site.metrics().text
    assert "within 2 s" not in text and "CAP_NET_RAW" not in text


def test_figures_a_window_does_not_give_are_absent_not_zero(site) -> None:  # type: ignore[no-untyped-def]
    # An agent whose only source counts stations (no day's set, no peak yet).
    bare = UsersPayload(window_seconds=300.0, concurrent_devices=0,
                        sources=[UsersSourceStats(source="bss_load", devices=0)]).model_dump(mode="json")
    deliver(site, record(1, new_stream(), "users", payload=bare))
    value = metric_values(site)
    # A real zero is shown as zero …
    assert value("schoolnet_concurrent_devices", of("all")) == 0
    assert value("schoolnet_concurrent_devices", of("bss_load")) == 0
    assert value("schoolnet_census_source_up", of("bss_load")) == 1
    # … and what was not said is absent.
    assert value("schoolnet_daily_devices", of("all")) is None
    assert value("schoolnet_daily_devices", of("bss_load")) is None
    assert value("schoolnet_concurrent_devices_hour_peak", AGENT) is None
    for name in ("schoolnet_census_duration_seconds", "schoolnet_census_rounds",
                 "schoolnet_census_requests"):
        assert value(name, of("bss_load")) is None, name


def test_a_failed_window_keeps_the_last_good_counts(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    deliver(site, at(record(1, stream, "users", payload=window()), now - 600),
            at(record(2, stream, "users", ok=False, error="every census source failed", payload={}),
               now - 300))
    value = metric_values(site)
    assert value("schoolnet_concurrent_devices", of("all")) == 131
    assert value("schoolnet_census_source_up", of("arp")) == 1
    assert value("schoolnet_probe_success", {**AGENT, "probe": "users"}) == 0
    assert value("schoolnet_probe_failures_total", {**AGENT, "probe": "users"}) == 1


def test_counts_sent_as_text_are_read_as_they_were_validated(site) -> None:  # type: ignore[no-untyped-def]
    """Validation is lax ("131" passes for a count) and the store keeps what the agent sent."""
    texts = window()
    texts["concurrent_devices"] = "131"
    texts["sources"][0]["devices"] = "118"
    assert deliver(site, record(1, new_stream(), "users", payload=texts)) == ["accepted"]
    value = metric_values(site)
    assert value("schoolnet_concurrent_devices", of("all")) == 131
    assert value("schoolnet_concurrent_devices", of("arp")) == 118


def test_a_source_listed_twice_shows_the_first_entry_only(site) -> None:  # type: ignore[no-untyped-def]
    twice = window(sources=[
        UsersSourceStats(source="arp", devices=118, duration_seconds=2.75),
        UsersSourceStats(source="arp", error="a second run failed", duration_seconds=9.0, rounds=1)])
    assert deliver(site, record(1, new_stream(), "users", payload=twice)) == ["accepted"]
    value = metric_values(site)
    assert value("schoolnet_concurrent_devices", of("arp")) == 118
    assert value("schoolnet_census_source_up", of("arp")) == 1
    assert value("schoolnet_census_duration_seconds", of("arp")) == 2.75
    assert value("schoolnet_census_rounds", of("arp")) is None  # nothing of the second entry
    text = site.metrics().text
    assert text.count('schoolnet_census_source_up{board="test-board",school="test-school",'
                      'agent="pi",source="arp"}') == 1


def test_a_window_naming_a_device_address_is_refused(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    leaky = window()
    leaky["sources"][0]["error"] = "duplicate answer from 3c:22:fb:12:34:56"  # a pupil's laptop
    assert deliver(site, record(1, stream, "users", payload=leaky),
                   record(2, stream, "users", payload=window(concurrent_devices=7))) == [
        "rejected", "accepted"]
    text = site.metrics().text
    assert "3c:22:fb" not in text
    assert metric_values(site)("schoolnet_concurrent_devices", of("all")) == 7


def test_an_agent_that_left_takes_its_census_along(site) -> None:  # type: ignore[no-untyped-def]
    deliver(site, record(1, new_stream(), "users", payload=window()))
    assert metric_values(site)("schoolnet_concurrent_devices", of("all")) == 131
    with site.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE agents SET last_report_at = last_report_at - 7200")
    value = metric_values(site, expiry=3600)
    assert value("schoolnet_concurrent_devices", of("all")) is None
    assert value("schoolnet_concurrent_devices_hour_peak", AGENT) is None


def test_two_agents_each_have_their_own_census(site) -> None:  # type: ignore[no-untyped-def]
    other = site.enroll("pi-2")
    deliver(site, record(1, new_stream(), "users", payload=window()))
    deliver(site, record(1, new_stream(), "users", payload=window(concurrent_devices=12, sources=[])),
            credential=other)
    value = metric_values(site)
    assert value("schoolnet_concurrent_devices", of("all")) == 131
    assert value("schoolnet_concurrent_devices", {**AGENT, "agent": "pi-2", "source": "all"}) == 12
    assert value("schoolnet_concurrent_devices", {**AGENT, "agent": "pi-2", "source": "arp"}) is None


def test_the_page_with_a_census_is_lint_clean_and_the_same_from_both_writers(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    with_failure = window(sources=[*window()["sources"], {"source": "unifi", "error": "login refused"}])
    deliver(site, at(record(1, stream, "users", payload=with_failure), now - 60),
            at(record(2, stream, "system"), now - 60))
    metrics = site.client.app.state.metrics

    fast = page_samples(metrics.render().decode())
    assert fast == page_samples(generate_latest(metrics.registry).decode())
    assert fast[("schoolnet_concurrent_devices", tuple(sorted(of("all").items())))] == 131
    assert fast[("schoolnet_census_source_up", tuple(sorted(of("unifi").items())))] == 0
    text = site.metrics().text
    for name in ("schoolnet_concurrent_devices", "schoolnet_daily_devices",
                 "schoolnet_concurrent_devices_hour_peak", "schoolnet_census_duration_seconds",
                 "schoolnet_census_rounds", "schoolnet_census_requests", "schoolnet_census_source_up"):
        assert f"# TYPE {name} gauge" in text, name
    promtool = require_tool("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_the_documented_example_validates_and_shows_as_documented(site) -> None:  # type: ignore[no-untyped-def]
    """The example of kind `users` in agent/WIRE.md is a valid payload, and every census
    metric on the page is in the metric reference."""
    wire = (ROOT / "agent" / "WIRE.md").read_text()
    section = wire.split("### Kind `users`", 1)[1].split("\n### ", 1)[0]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))  # type: ignore[union-attr]
    payload = UsersPayload.model_validate(example)
    assert deliver(site, record(1, new_stream(), "users", payload=example)) == ["accepted"]
    value = metric_values(site)
    assert value("schoolnet_concurrent_devices", of("all")) == payload.concurrent_devices
    for stats in payload.sources:
        assert value("schoolnet_concurrent_devices", of(stats.source)) == stats.devices
        assert value("schoolnet_census_source_up", of(stats.source)) == (0 if stats.error else 1)

    reference = (ROOT / "docs" / "metrics.md").read_text()
    names = {family.name for family in users_families([], {})}
    assert names and all(f"`{name}`" in reference for name in names), names


def test_each_bandwidth_test_shows_the_devices_counted_beside_it(site) -> None:  # type: ignore[no-untyped-def]
    stream = new_stream()
    now = time.time()
    counted = record(1, stream, "bandwidth")
    counted["payload"]["concurrent_devices"] = 140
    uncounted = record(2, stream, "bandwidth")  # an agent without a census
    deliver(site, at(counted, now - 600))
    assert metric_values(site)("schoolnet_bandwidth_concurrent_devices", AGENT) == 140
    deliver(site, at(uncounted, now - 300))
    assert metric_values(site)("schoolnet_bandwidth_concurrent_devices", AGENT) is None
