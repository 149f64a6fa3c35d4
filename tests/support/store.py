"""The store at an older revision, for tests of upgrades and downgrades."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from collector.db.migrate import MIGRATIONS


def alembic_config(connection: Any) -> Config:
    """Alembic's configuration for our migrations, on ``connection`` (as collector/db/migrate.py
    builds it), for ``command.upgrade``/``downgrade`` to a given revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def revisions() -> list[str]:
    """Every revision, oldest first, as alembic's script directory has them: a migration
    added later is tested without anyone editing a list."""
    script = ScriptDirectory.from_config(alembic_config(None))
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def migrate_to(engine: Engine, revision: str) -> None:
    """Upgrade or downgrade ``engine``'s store to ``revision`` ("base": no tables at all)."""
    with engine.connect() as connection:
        config = alembic_config(connection)
        current = _current(connection)
        order = ["base", *revisions()]
        if order.index(revision) >= order.index(current):
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)
        connection.commit()


def current_revision(engine: Engine) -> str:
    with engine.connect() as connection:
        return _current(connection)


def _current(connection: Any) -> str:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision() or "base"


def tables_and_indexes(connection: Any) -> set[str]:
    """The names of the store's tables and their indexes, on either backend (what SQLite's
    ``sqlite_master`` lists), for tests of what a downgrade leaves."""
    from sqlalchemy import inspect

    found = inspect(connection)
    names = set(found.get_table_names())
    for table in list(names):
        names.update(str(index["name"]) for index in found.get_indexes(table))
    return names
