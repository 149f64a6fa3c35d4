"""Bandwidth results at ingest, their attribution to a school's lines, and reattribution."""

from __future__ import annotations

import ipaddress
import time
from datetime import date
from typing import Any

import pytest
from support.records import at, batch, new_stream, record

import collector.ingest
from agent.wire import Batch, Record
from collector.attribution import Line, access_addresses, access_addresses_near, attribute
from collector.db.engine import writer
from collector.db.schema import agent_settings, bandwidth_results, connections, contracts
from collector.ingest import ingest_batch
from collector.registry import AgentIdentity
from collector.results import load_results, reattribute, record_results

pytestmark = pytest.mark.both_stores

MAIN = Line(1, "fibre", "main", (ipaddress.ip_network("192.0.2.0/24"),),
            ((date(2025, 1, 1), None),))
BACKUP = Line(2, "4g", "backup", (ipaddress.ip_network("198.51.100.0/24"),
                                  ipaddress.ip_network("198.51.100.64/26")),
              ((date(2025, 1, 1), date(2025, 12, 31)),))
DAY = date(2025, 6, 2)


# --- attribution, the pure function: each method in its order -----------------------------


def test_a_pinned_agent_wins_over_every_other_evidence() -> None:
    found = attribute([MAIN, BACKUP], DAY, pinned="4g", access_addresses=["192.0.2.1"])
    assert (found.connection_id, found.method) == (2, "agent-setting")


def test_a_pin_naming_no_registered_line_falls_through_to_the_evidence() -> None:
    found = attribute([MAIN, BACKUP], DAY, pinned="adsl", access_addresses=["198.51.100.9"])
    assert (found.connection_id, found.method) == (2, "network 198.51.100.0/24")


def test_the_first_access_hop_in_a_line_network_decides_and_the_most_specific_prefix_names_it() -> None:
    found = attribute([MAIN, BACKUP], DAY, access_addresses=["10.0.0.1", "198.51.100.70", "192.0.2.1"])
    assert (found.connection_id, found.method) == (2, "network 198.51.100.64/26")


def test_hops_outside_every_network_leave_it_to_the_calendar_of_contracts() -> None:
    # The backup's contract ended: on this day the main line is the only one in force.
    found = attribute([MAIN, BACKUP], date(2026, 2, 1), access_addresses=["203.0.113.5", "not-an-ip"])
    assert (found.connection_id, found.method) == (1, "only-connection")


def test_with_two_lines_in_force_the_main_line_is_taken() -> None:
    found = attribute([MAIN, BACKUP], DAY)
    assert (found.connection_id, found.method) == (1, "main")


def test_two_main_lines_and_no_evidence_is_no_attribution() -> None:
    other = Line(3, "cable", "main", (), ())
    assert attribute([MAIN, other], DAY).method == "none"
    assert attribute([], DAY).method == "none"


def test_access_addresses_are_the_access_hops_nearest_the_school_first() -> None:
    payload = {"hops": [{"ttl": 3, "address": "192.0.2.9", "segment": "access"},
                        {"ttl": 1, "address": "10.0.0.1", "segment": "lan"},
                        {"ttl": 2, "address": "192.0.2.1", "segment": "access"},
                        {"ttl": 4, "address": None, "segment": "access"}]}
    assert access_addresses(payload) == ["192.0.2.1", "192.0.2.9"]
    assert access_addresses({"hops": "junk"}) == [] and access_addresses(None) == []


# --- the store ------------------------------------------------------------------------------


def ids(site: Any) -> tuple[int, int]:
    (agent_id, school_id), = site.sql("SELECT id, school_id FROM agents")
    return agent_id, school_id


def add_line(site: Any, slug: str, role: str, networks: list[str], starts_on: str = "2020-01-01",
             ends_on: str | None = None) -> int:
    _, school_id = ids(site)
    with writer(site.engine) as conn, conn.begin():
        pk = conn.execute(connections.insert().values(
            school_id=school_id, slug=slug, provider="Provider", provider_id="provider",
            technology="fibre", role=role, networks=networks, created_at=time.time())
        ).inserted_primary_key[0]
        conn.execute(contracts.insert().values(
            connection_id=pk, starts_on=starts_on, ends_on=ends_on,
            download_advertised=12_500_000.0, upload_advertised=2_500_000.0, updated_at=time.time()))
    return int(pk)


def connectivity(seq: int, stream: str, when: float, *addresses: str) -> dict[str, Any]:
    hops = [{"ttl": 2 + i, "address": a, "segment": "access", "sent": 3, "received": 3}
            for i, a in enumerate(addresses)]
    rec = record(seq, stream, "connectivity", payload={
        "window_seconds": 60.0, "up": True, "down_seconds": 0.0, "hops": hops})
    return at(rec, when)


def bandwidth(seq: int, stream: str, when: float, **changes: Any) -> dict[str, Any]:
    rec = record(seq, stream, "bandwidth")
    rec["payload"] = {**rec["payload"], "concurrent_devices": 37, **changes}
    return at(rec, when)


def store_batch(site: Any, *raw: dict[str, Any]) -> list[Record]:
    """Insert the records and keep the connectivity state as ingest does, then call the
    hook by hand."""
    agent_id, school_id = ids(site)
    accepted = [Record.model_validate(r) for r in raw]
    with writer(site.engine) as conn, conn.begin():
        collector.ingest._insert_records(conn, agent_id, accepted, time.time())
        collector.ingest.update_connectivity(conn, agent_id, accepted)
        record_results(conn, agent_id, school_id, accepted)
    return accepted


def results(site: Any) -> list[Any]:
    _, school_id = ids(site)
    with site.engine.connect() as conn:
        return load_results(conn, school_id, 0, time.time() + 86_400)


def test_record_results_writes_one_attributed_row_per_successful_bandwidth_record(site: Any) -> None:
    add_line(site, "fibre", "main", ["192.0.2.0/24"])
    backup = add_line(site, "4g", "backup", ["198.51.100.0/24"])
    stream, now = new_stream(), time.time() - 3600
    failed = record(4, stream, "bandwidth", ok=False, error="no server answered", payload={})
    store_batch(site,
                connectivity(1, stream, now - 300, "198.51.100.1"),
                bandwidth(2, stream, now, invalid_reasons=["wireless interface"]),
                record(3, stream, "system"), at(failed, now + 60))
    rows = results(site)
    assert len(rows) == 1
    row = rows[0]
    assert (row.connection_id, row.connection_slug, row.attribution) == (
        backup, "4g", "network 198.51.100.0/24")
    assert (row.source, row.download_bytes_per_second, row.upload_bytes_per_second) == (
        "agent", 11_000_000.0, 2_000_000.0)
    assert (row.latency_seconds, row.valid, row.invalid_reasons) == (0.012, False, ("wireless interface",))
    assert (row.backend, row.server, row.concurrent_devices) == ("http", "https://collector.example", 37)
    stored_id, = site.sql("SELECT id FROM records WHERE seq = 2 AND stream_id = ?", stream)
    assert row.record_id == stored_id[0]


def test_the_evidence_may_come_from_an_earlier_batch_and_must_be_within_a_quarter_hour(site: Any) -> None:
    add_line(site, "fibre", "main", ["192.0.2.0/24"])
    backup = add_line(site, "4g", "backup", ["198.51.100.0/24"])
    stream, now = new_stream(), time.time() - 7200
    store_batch(site, connectivity(1, stream, now - 600, "198.51.100.1"),
                connectivity(2, stream, now - 3000, "192.0.2.1"))
    store_batch(site, bandwidth(3, stream, now), bandwidth(4, stream, now - 2000))
    near, far = sorted(results(site), key=lambda r: -r.measured_at)
    assert (near.connection_id, near.attribution) == (backup, "network 198.51.100.0/24")
    # Nearest window (1000 s and 1400 s away) is outside ±15 min: the main line, by role.
    assert far.attribution == "main"


def test_access_addresses_near_prefers_the_batch_then_the_store(site: Any) -> None:
    agent_id, _ = ids(site)
    stream, now = new_stream(), time.time() - 600
    store_batch(site, connectivity(1, stream, now - 100, "192.0.2.7"))
    with site.engine.connect() as conn:
        assert access_addresses_near(conn, agent_id, now) == ["192.0.2.7"]
        in_batch = [(now + 50, {"hops": [{"ttl": 2, "address": "198.51.100.3", "segment": "access"}]})]
        assert access_addresses_near(conn, agent_id, now, in_batch) == ["198.51.100.3"]
        assert access_addresses_near(conn, agent_id, now + 3600) == []


def test_an_agent_pinned_by_its_settings_is_attributed_to_that_line(site: Any) -> None:
    add_line(site, "fibre", "main", ["192.0.2.0/24"])
    backup = add_line(site, "4g", "backup", [])
    agent_id, school_id = ids(site)
    with writer(site.engine) as conn, conn.begin():
        conn.execute(agent_settings.insert().values(school_id=school_id, agent_id=None,
                                                    document={"connection": "fibre"}, updated_at=0))
        conn.execute(agent_settings.insert().values(school_id=school_id, agent_id=agent_id,
                                                    document={"connection": "4g"}, updated_at=0))
    stream = new_stream()
    store_batch(site, connectivity(1, stream, time.time() - 10, "192.0.2.1"),
                bandwidth(2, stream, time.time()))
    (row,) = results(site)
    assert (row.connection_id, row.attribution) == (backup, "agent-setting")


def test_a_school_without_lines_gets_results_attributed_to_none(site: Any) -> None:
    store_batch(site, bandwidth(1, new_stream(), time.time()))
    (row,) = results(site)
    assert (row.connection_id, row.attribution) == (None, "none")


def test_a_batch_without_bandwidth_records_writes_nothing_and_asks_nothing(site: Any) -> None:
    agent_id, school_id = ids(site)
    accepted = [Record.model_validate(record(i, new_stream())) for i in range(1, 4)]

    class NoQueries:
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a batch without bandwidth records must not query")

        scalar = execute

    record_results(NoQueries(), agent_id, school_id, accepted)  # type: ignore[arg-type]


def test_reattribute_after_a_contract_import_moves_agent_results_and_keeps_imports(site: Any) -> None:
    stream, now = new_stream(), time.time() - 3600
    store_batch(site, connectivity(1, stream, now - 60, "198.51.100.1"), bandwidth(2, stream, now))
    _, school_id = ids(site)
    with writer(site.engine) as conn, conn.begin():
        conn.execute(bandwidth_results.insert().values(
            school_id=school_id, source="import", attribution="import", measured_at=now + 1,
            valid=True, invalid_reasons=[], backend="import", server="", import_key="k1"))
    assert [r.attribution for r in results(site)] == ["none", "import"]
    # The board imports its contracts: two lines, the backup's network the one seen.
    add_line(site, "fibre", "main", ["192.0.2.0/24"])
    backup = add_line(site, "4g", "backup", ["198.51.100.0/24"])
    with writer(site.engine) as conn, conn.begin():
        assert reattribute(conn, school_id) == 1
        assert reattribute(conn, school_id) == 0, "nothing changes a second time"
    agent_row, imported = results(site)
    assert (agent_row.connection_id, agent_row.attribution) == (backup, "network 198.51.100.0/24")
    assert (imported.connection_id, imported.attribution) == (None, "import")


# --- through the real ingest path (collector.ingest.store calls record_results) -----------------


def test_ingest_batch_creates_results_for_accepted_bandwidth_records_only_once(site: Any) -> None:
    add_line(site, "fibre", "main", ["192.0.2.0/24"])
    agent_id, school_id = ids(site)
    (slug, board, school), = site.sql(
        "SELECT agents.slug, boards.slug, schools.slug FROM agents JOIN schools ON schools.id = "
        "agents.school_id JOIN boards ON boards.id = schools.board_id")
    identity = AgentIdentity(agent_id, slug, school_id, school, board)
    stream, now = new_stream(), time.time() - 60
    body = batch(connectivity(1, stream, now - 30, "192.0.2.1"), bandwidth(2, stream, now))
    ingest_batch(site.engine, identity, Batch.model_validate(body))
    ingest_batch(site.engine, identity, Batch.model_validate(body))  # a duplicate adds nothing
    (row,) = results(site)
    assert (row.connection_slug, row.attribution, row.source) == ("fibre", "network 192.0.2.0/24", "agent")
