"""Replicas started together on a new PostgreSQL database migrate it once, in turn."""

from __future__ import annotations

import threading

from alembic.script import ScriptDirectory
from support.postgres import PostgresServer
from support.store import alembic_config

from collector.db.engine import open_engine
from collector.db.migrate import upgrade


def test_collectors_starting_together_on_an_empty_postgresql_migrate_it_once(
        postgres: PostgresServer) -> None:
    url = postgres.fresh_database(migrated=False)
    database = url.rsplit("/", 1)[1]
    try:
        errors: list[str] = []
        start = threading.Barrier(4)

        def start_a_collector() -> None:
            engine = open_engine(url)
            try:
                start.wait()
                upgrade(engine)
            except Exception as exc:  # what a replica's `serve` would die of
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
            finally:
                engine.dispose()

        # Daemon threads: without the lock they can wait on each other's tables for good.
        threads = [threading.Thread(target=start_a_collector, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "the migrations are stuck"
        assert errors == []
        [(revision,)] = postgres.execute("SELECT version_num FROM alembic_version", database)
        assert revision == ScriptDirectory.from_config(alembic_config(None)).get_current_head()
    finally:  # a failed run leaves no database (nor stuck sessions: WITH FORCE) behind
        postgres.drop_database(database)
