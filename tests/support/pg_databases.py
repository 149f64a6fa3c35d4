"""Migrated PostgreSQL databases for tests, cleaned and handed out again.

Creating a database from the migrated template costs ~0.4 s on this machine (the
server copies and WAL-logs the template's files); emptying one that a test left behind
costs ~20 ms. So a database given back is emptied and reused, but only when its schema
is still exactly the template's: a test that dropped a table, added an index or left
the schema at another revision gets its database dropped instead, and the next test a
new one. Connections a test left open are ended first, as ``DROP DATABASE … WITH
(FORCE)`` would.
"""

from __future__ import annotations

import psycopg

from support.postgres import TEMPLATE, PostgresServer

# Everything a test could change about a schema, as one digest: tables, columns (their
# order and sizes too: a column dropped and added again by a downgrade and an upgrade comes
# back last), indexes, constraints, triggers, views, functions, enum and domain types,
# schemas, sequences, extensions, the database's own settings (ALTER DATABASE … SET) and
# the alembic revision.
_FINGERPRINT = """
SELECT md5(string_agg(part, '|' ORDER BY part)) FROM (
  SELECT 'c:' || table_name || '.' || column_name || ':' || ordinal_position || ':' || udt_name
         || ':' || coalesce(character_maximum_length::text, '') || ':'
         || coalesce(numeric_precision::text, '') || ':' || coalesce(column_default, '') || ':'
         || is_nullable
    FROM information_schema.columns WHERE table_schema = 'public'
  UNION ALL SELECT 'r:' || tablename FROM pg_tables WHERE schemaname = 'public'
  UNION ALL SELECT 'i:' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT 'k:' || conrelid::regclass::text || ':' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL SELECT 't:' || tgname FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT 'v:' || viewname || ':' || definition FROM pg_views WHERE schemaname = 'public'
  UNION ALL SELECT 'e:' || t.typname || ':' || t.typtype::text || ':'
         || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                      FROM pg_enum WHERE enumtypid = t.oid), '')
    FROM pg_type AS t WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd')
  UNION ALL SELECT 'd:' || array_to_string(setconfig, ',') FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  UNION ALL SELECT 'x:' || extname FROM pg_extension
  UNION ALL SELECT 'f:' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
  UNION ALL SELECT 'n:' || nspname FROM pg_namespace
  UNION ALL SELECT 's:' || sequencename FROM pg_sequences
  UNION ALL SELECT 'a:' || version_num FROM alembic_version
) AS parts(part)
"""

_TABLES = ("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
           "AND tablename <> 'alembic_version'")


class DatabasePool:
    """``take()`` a URL of an empty database at the newest schema; ``give_back(url)``."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.idle: list[str] = []
        self._template_fingerprint: str | None = None
        self.created = 0
        self.reused = 0

    def take(self) -> str:
        if self.idle:
            self.reused += 1
            return self.idle.pop()
        url = self.server.fresh_database()
        self.created += 1
        if self._template_fingerprint is None:
            self._template_fingerprint = self._fingerprint_of(TEMPLATE)
        return url

    def give_back(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        try:
            emptied = self._empty(name)
        except psycopg.Error:
            emptied = False  # e.g. alembic_version dropped: not worth saving
        if emptied:
            self.idle.append(url)
        else:
            self.server.drop_database(name)

    def _connect(self, name: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host="127.0.0.1", port=self.server.port, user="postgres",
                               dbname=name, autocommit=True)

    def _fingerprint_of(self, name: str) -> str:
        with self._connect(name) as connection:
            row = connection.execute(_FINGERPRINT).fetchone()
            return str(row[0]) if row else ""

    def _empty(self, name: str) -> bool:
        with self._connect(name) as connection:
            # Whatever the test left open ends now (waiting up to 5 s for each to go).
            connection.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            row = connection.execute(_FINGERPRINT).fetchone()
            if row is None or row[0] != self._template_fingerprint:
                return False
            tables = [table for (table,) in connection.execute(_TABLES).fetchall()]
            with connection.transaction():
                # Every row goes, so the order of foreign keys does not matter: skip their
                # checks (a superuser setting; the test server's user is one).
                connection.execute("SET LOCAL session_replication_role = replica")
                for table in tables:
                    connection.execute(f'DELETE FROM "{table}"'.encode())
                # Ids start at 1 again, as in a new database (tests may rely on it).
                connection.execute("SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, "
                                   "1, false) FROM pg_sequences WHERE schemaname = 'public'")
            # Something of the last test that outlived it (a thread, a process) and has
            # connected again could still write into the next test: not reused then.
            others = connection.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                        "current_database() AND pid <> pg_backend_pid() "
                                        "AND backend_type = 'client backend'").fetchone()
            return others is not None and others[0] == 0
