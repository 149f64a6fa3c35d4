"""The store at an older revision, for tests of upgrades and downgrades."""

from __future__ import annotations

from typing import Any

from alembic.config import Config

from collector.db.migrate import MIGRATIONS


def alembic_config(connection: Any) -> Config:
    """Alembic's configuration for our migrations, on ``connection`` (as collector/db/migrate.py
    builds it), for ``command.upgrade``/``downgrade`` to a given revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config
