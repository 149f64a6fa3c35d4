"""The migrations create exactly the schema the code uses."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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
