"""Opening the store: one engine per process, SQLite made durable, schema migrated."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url


class StoreError(Exception):
    """The database cannot be opened or migrated; the message says what to fix."""


def open_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception:
        raise StoreError(f"--db {url!r} is not a database URL (sqlite:///FILE or postgresql://…)") from None
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(f"--db {url!r}: only sqlite:// and postgresql:// are supported")
    try:
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=10)
    except ModuleNotFoundError as exc:
        raise StoreError(f"PostgreSQL needs the driver {exc.name!r}: pip install psycopg") from None
    event.listen(engine, "connect", _durable_postgres_commits)
    return engine


def _durable_postgres_commits(dbapi_connection: Any, _record: Any) -> None:
    """A 2xx to an agent means committed durably. A server (or role) set to
    ``synchronous_commit=off`` acknowledges commits before their WAL is on disk, so the
    collector's sessions turn it back on; stricter settings (remote_apply for a standby) are
    left as the operator chose them."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW synchronous_commit")
        if cursor.fetchone()[0] == "off":
            cursor.execute("SET synchronous_commit = on")
    finally:
        cursor.close()
    # SHOW opened a transaction (psycopg is not in autocommit): leave the connection idle.
    dbapi_connection.commit()


def _sqlite_engine(url: Any) -> Engine:
    if url.database and url.database != ":memory:":
        folder = Path(url.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreError(f"--db: the folder {folder} does not exist")
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                           pool_size=8, max_overflow=8)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so pysqlite must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # A 2xx to an agent means committed durably: fsync at every commit.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Writers take the write lock at BEGIN: a deferred transaction that reads first
        # fails at once with SQLITE_BUSY when another writer committed in between.
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


_SQLITE_WRITE_LOCKS: dict[int, threading.Lock] = {}
_SQLITE_LOCK_FILES: dict[str, int] = {}


@contextmanager
def writer(engine: Engine) -> Iterator[Connection]:
    """A connection for a write transaction.

    On SQLite one writer runs at a time anyway; waiting for SQLite's lock means polling
    with growing sleeps (busy_timeout), which turned concurrent batches into p99 latencies
    of a second. So writers of one process queue on a lock first, then writers of all
    processes on the same file (``serve --workers``, admin commands) on an flock, which
    wakes the next one as soon as it is released; then they take SQLite's write lock at
    BEGIN, uncontended. PostgreSQL needs none of this.
    """
    if engine.dialect.name != "sqlite":
        with engine.connect() as connection:
            yield connection
        return
    with write_turn(engine), \
            engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection:
        yield connection


@contextmanager
def write_turn(engine: Engine) -> Iterator[None]:
    """This process's and then every process's turn to write to a SQLite store (see
    ``writer``); migrations take it too, so `serve` starting and an admin command run at
    the same moment on a new store do not collide ("database is locked")."""
    if engine.dialect.name != "sqlite":
        yield
        return
    lock = _SQLITE_WRITE_LOCKS.setdefault(id(engine), threading.Lock())
    with lock, _across_processes(engine):
        yield


@contextmanager
def _across_processes(engine: Engine) -> Iterator[None]:
    """An exclusive flock on ``<database>.write-lock`` (none for an in-memory database)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    path = str(Path(database).expanduser().resolve()) + ".write-lock"
    descriptor = _SQLITE_LOCK_FILES.get(path)
    if descriptor is None:
        # Opened once per process and kept: SQLite's own lock still guards the data; this
        # one only orders the writers.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        _SQLITE_LOCK_FILES[path] = descriptor
    # Blocks in the kernel without the GIL; the kernel drops it if the process dies.
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
