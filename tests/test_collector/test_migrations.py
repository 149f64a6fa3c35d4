"""The migrations create exactly the schema the code uses."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from support.store import alembic_config

from collector.db.engine import open_engine
from collector.db.migrate import upgrade
from collector.db.schema import metadata


def test_migrated_database_matches_the_tables_in_code(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(engine)
    upgrade(engine)  # running it again (every command does) changes nothing
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
        journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    assert differences == []
    assert journal == "wal" and synchronous == 2, "durable commits: WAL with synchronous=FULL"


def test_a_store_from_0004_gets_its_bandwidth_history_as_results_and_downgrades(tmp_path: Path) -> None:
    import json

    from alembic import command

    from collector.registry import add_board, add_school, create_enrolment_code, enroll


    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), "0004")  # the store as the previous release left it
        connection.commit()
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
            connection.exec_driver_sql(
                "INSERT INTO records (agent_id, stream_id, seq, kind, ok, error, measured_at, boot_id, "
                "since_boot_seconds, received_at, payload) VALUES (1, 's', ?, ?, ?, NULL, ?, 'b', 0, 0, ?)",
                (seq, kind, ok, 1000.0 + seq, json.dumps(payload)))
    upgrade(engine)
    with engine.connect() as connection:
        results = connection.exec_driver_sql(
            "SELECT record_id, school_id, source, attribution, download_bytes_per_second, valid, "
            "backend, concurrent_devices FROM bandwidth_results ORDER BY record_id").all()
    assert [tuple(row) for row in results] == [(1, 1, "agent", "none", 11e6, 1, "ndt7", 40),
                                               (2, 1, "agent", "none", 1e6, 0, "http", None)]
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), "0004")
        connection.commit()
        tables = {name for (name,) in connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        school_columns = {row[1] for row in connection.exec_driver_sql("PRAGMA table_info(schools)")}
        kept = connection.exec_driver_sql("SELECT count(*) FROM records").scalar()
    assert not {"connections", "contracts", "holidays", "bandwidth_results", "daily_aggregates"} & tables
    assert school_columns == {"id", "board_id", "slug", "name", "created_at"}
    assert kept == 4
    upgrade(engine)  # and up again: the history becomes results again
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM bandwidth_results").scalar() == 2
    engine.dispose()
