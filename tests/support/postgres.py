"""A real PostgreSQL server (Debian's package) as a child process on 127.0.0.1, and a fresh
database per test made from a template that is migrated once.

The server runs as the ``postgres`` user from its own temporary data directory; tests
never touch a cluster the machine may have. Creating a database from the migrated
template copies files (about 20 ms) instead of running eight migrations again.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from support.processes import stop_child
from support.tools import free_port, unavailable

TEMPLATE = "schoolnet_template"
_counter = itertools.count(1)


def postgres_bin() -> Path:
    """The newest installed server's binaries (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda path: int(Path(path).parts[-3]))
    if not found:
        unavailable("the PostgreSQL server is not installed (scripts/test installs postgresql)")
    return Path(found[-1]).parent


class PostgresServer:
    """One server: ``url(name)`` for SQLAlchemy, ``fresh_database()`` for a test."""

    def __init__(self, *, durable: bool = False) -> None:
        # Tests need no fsync (a killed collector is not a power cut); a benchmark that
        # measures the cost of a durable commit asks for it.
        self.durable = durable
        self.bin = postgres_bin()
        if os.geteuid() != 0:
            unavailable("the test PostgreSQL server is started as the postgres user: needs root")
        self.root = Path(tempfile.mkdtemp(prefix="schoolnet-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._template_ready = False

    def start(self) -> PostgresServer:
        self.data.mkdir()
        self.socket_dir.mkdir()
        shutil.chown(self.root, "postgres", "postgres")
        for folder in (self.data, self.socket_dir):
            shutil.chown(folder, "postgres", "postgres")
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                       user="postgres", group="postgres", extra_groups=[],
                       check=True, capture_output=True, timeout=120)
        settings = ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300",
                    "-c", "shared_buffers=256MB"]
        if not self.durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off",
                         "-c", "full_page_writes=off"]
        log = (self.root / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.socket_dir), *settings],
            user="postgres", group="postgres", extra_groups=[], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                              str(self.port), "-q"], check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("PostgreSQL did not start: "
                                     + (self.root / "server.log").read_text()[-2000:])
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        # SIGINT: PostgreSQL's fast shutdown (aborts open sessions, then exits cleanly).
        stop_child(self.process, signal.SIGINT, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        """One statement in autocommit (CREATE/DROP DATABASE cannot run in a transaction)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname=database, autocommit=True) as connection:
            cursor = connection.execute(sql.encode())
            return list(cursor.fetchall()) if cursor.description else []

    def create_database(self, name: str, template: str = "template0") -> str:
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def fresh_database(self, migrated: bool = True) -> str:
        """The URL of a new, empty database: at the newest schema (from the template), or
        with no schema at all (``migrated=False``, for migration tests)."""
        name = f"test_{os.getpid()}_{next(_counter)}"
        if not migrated:
            return self.create_database(name)
        if not self._template_ready:
            self._make_template()
        return self.create_database(name, TEMPLATE)

    def _make_template(self) -> None:
        from collector.db.engine import open_engine
        from collector.db.migrate import upgrade

        self.create_database(TEMPLATE)
        engine = open_engine(self.url(TEMPLATE))
        try:
            upgrade(engine)
        finally:
            # CREATE DATABASE … TEMPLATE needs the template to have no open connections.
            engine.dispose()
        self._template_ready = True
