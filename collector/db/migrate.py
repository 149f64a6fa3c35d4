"""Bringing a store's schema to the newest migration (run by every command at start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from collector.db.engine import write_turn

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


# Any fixed 64-bit number: the key of PostgreSQL's advisory lock for migrations.
MIGRATION_LOCK_KEY = 0x5C400111


def upgrade(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with write_turn(engine), engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Replicas started together on a new database would each run the migrations
            # and fail on each other's tables: they take turns on an advisory lock (held
            # by this session until unlocked; the server drops it if the process dies).
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        finally:
            if engine.dialect.name == "postgresql":
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": MIGRATION_LOCK_KEY})
                connection.commit()
