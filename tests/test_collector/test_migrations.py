"""The migrations create exactly the schema the code uses, on SQLite and on PostgreSQL: from
an empty store, from every revision to the next, and back down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from support.store import current_revision, migrate_to, revisions

from collector.db.engine import open_engine
from collector.db.migrate import upgrade
from collector.db.schema import metadata

pytestmark = pytest.mark.both_stores


@pytest.fixture
def empty_store(store_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on a store with no schema at all (not even alembic's table)."""
    if store_backend == "sqlite":
        engine = open_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    server = request.getfixturevalue("postgres")
    url = server.fresh_database(migrated=False)
    engine = open_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        server.drop_database(url.rsplit("/", 1)[1])


def differences_from_code(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_migrated_database_matches_the_tables_in_code(empty_store: Engine) -> None:
    upgrade(empty_store)
    upgrade(empty_store)  # running it again (every command does) changes nothing
    assert differences_from_code(empty_store) == []
    with empty_store.connect() as connection:
        if empty_store.dialect.name == "sqlite":
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
            assert journal == "wal" and synchronous == 2, "durable commits: WAL with synchronous=FULL"
        else:
            # The test server runs with synchronous_commit=off; the collector's sessions
            # turn it back on, or a 2xx would not mean a durable commit.
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


def test_every_revision_upgrades_from_the_one_before_and_downgrades(empty_store: Engine) -> None:
    order = revisions()
    assert order[0] == "0001" and len(order) >= 8, order
    for number, revision in enumerate(order):
        migrate_to(empty_store, revision)
        assert current_revision(empty_store) == revision
        if number == 0:  # data from the first release lives through every later one
            with empty_store.begin() as connection:
                connection.execute(text("INSERT INTO boards (slug, name, created_at) "
                                        "VALUES ('old-board', 'Old Board', 1.5)"))
    assert differences_from_code(empty_store) == []
    for revision in reversed(["base", *order[:-1]]):
        migrate_to(empty_store, revision)
        assert current_revision(empty_store) == revision
        if revision == order[0]:
            with empty_store.connect() as connection:
                assert connection.execute(text("SELECT slug, name, created_at FROM boards")).all() == [
                    ("old-board", "Old Board", 1.5)]
    assert tables(empty_store) == set()
    upgrade(empty_store)  # and all the way up again
    assert differences_from_code(empty_store) == []


def test_a_store_from_0004_gets_its_bandwidth_history_as_results_and_downgrades(
        empty_store: Engine) -> None:
    from collector.registry import add_board, add_school, create_enrolment_code, enroll

    engine = empty_store
    migrate_to(engine, "0004")  # the store as the release with rooms left it
    add_board(engine, "Test Board")
    add_school(engine, "test-board", "Test School")
    enroll(engine, create_enrolment_code(engine, "test-school", 1, 60), "pi", "0.1.0")
    payloads = [("bandwidth", True, {"backend": "ndt7", "server": "ndt.example", "streams": 1,
                                     "download_bytes_per_second": 11e6, "upload_bytes_per_second": 2e6,
                                     "idle_latency_seconds": 0.01, "concurrent_devices": 40}),
                ("bandwidth", True, {"backend": "http", "server": "s", "streams": 1,
                                     "download_bytes_per_second": 1e6, "upload_bytes_per_second": 1e6,
                                     "invalid_reasons": ["the agent's CPU was the limit"]}),
                ("bandwidth", False, {}),  # a test that could not measure: no result
                ("system", True, {"cpu_usage_ratio": 0.1})]
    with engine.begin() as connection:
        for seq, (kind, ok, payload) in enumerate(payloads, start=1):
            connection.execute(text(
                "INSERT INTO records (agent_id, stream_id, seq, kind, ok, error, measured_at, boot_id, "
                "since_boot_seconds, received_at, payload) "
                "VALUES (1, 's', :seq, :kind, :ok, NULL, :at, 'b', 0, 0, :payload)"),
                {"seq": seq, "kind": kind, "ok": ok, "at": 1000.0 + seq, "payload": json.dumps(payload)})
    upgrade(engine)
    with engine.connect() as connection:
        results = connection.execute(text(
            "SELECT record_id, school_id, source, attribution, download_bytes_per_second, valid, "
            "backend, concurrent_devices FROM bandwidth_results ORDER BY record_id")).all()
    assert [tuple(row) for row in results] == [(1, 1, "agent", "none", 11e6, True, "ndt7", 40),
                                               (2, 1, "agent", "none", 1e6, False, "http", None)]
    migrate_to(engine, "0004")
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT count(*) FROM records")).scalar()
    added_by_0005 = {"connections", "contracts", "holidays", "bandwidth_results", "daily_aggregates"}
    assert not added_by_0005 & tables(engine)
    assert {column["name"] for column in inspect(engine).get_columns("schools")} == {
        "id", "board_id", "slug", "name", "created_at"}
    assert kept == 4
    upgrade(engine)  # and up again: the history becomes results again
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM bandwidth_results")).scalar() == 2
