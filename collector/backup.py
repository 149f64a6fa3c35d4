"""An online backup of the SQLite store: a consistent, self-contained copy while ingest runs.

sqlite3's backup API copies the database page by page, sleeping between steps so the
writers keep their turn. A write by another connection between two steps makes SQLite
start the copy again; under steady ingest a large store might never finish that way, so
after ``MAX_RESTARTS`` restarts the copy is taken in one step instead: in WAL mode that
holds a read snapshot (writers go on; only checkpoints wait) and cannot restart.

The copy is written to ``FILE.partial``, switched to rollback-journal mode (one file, no
-wal or -shm beside it, so it opens read-only anywhere), checked with ``PRAGMA
integrity_check``, synced and only then renamed to FILE: a FILE that exists is complete.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

PAGES_PER_STEP = 256  # 1 MiB at the default 4 KiB page size
SLEEP_SECONDS = 0.01
MAX_RESTARTS = 3


class BackupError(ValueError):
    """The backup cannot be made; the message says why (one line)."""


@dataclass
class BackupResult:
    path: Path
    size_bytes: int
    rows: dict[str, int]
    one_step: bool  # the paged copy kept restarting and the copy was taken in one step


class _Restarted(Exception):
    pass


def sqlite_path(engine: Engine) -> Path:
    """The store's file, or a BackupError naming what to use instead."""
    if engine.dialect.name == "postgresql":
        raise BackupError("backup copies a SQLite store; for PostgreSQL use pg_dump")
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        raise BackupError("backup needs a SQLite store in a file (--db sqlite:///FILE)")
    return Path(database).expanduser().resolve()


def backup(engine: Engine, target: Path, force: bool = False, pages: int = PAGES_PER_STEP,
           sleep: float = SLEEP_SECONDS) -> BackupResult:
    source_path = sqlite_path(engine)
    target = target.expanduser().absolute()
    if target.resolve() == source_path:
        raise BackupError(f"{target} is the store itself")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; give --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)  # a stale one from a run that was stopped
    try:
        one_step = _copy(source_path, partial, pages, sleep)
        rows = _finish(partial)
        os.replace(partial, target)
        _sync_folder(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupResult(target, target.stat().st_size, rows, one_step)


def _copy(source_path: Path, partial: Path, pages: int, sleep: float) -> bool:
    # Read-write, though it only reads: a read-only connection to a WAL store fails
    # where it cannot create the -shm file.
    source = sqlite3.connect(source_path, timeout=30)
    try:
        remaining_before: list[int] = []

        def progress(_status: int, remaining: int, _total: int) -> None:
            # More pages left than after the last step: a writer changed the source and
            # SQLite started over.
            if remaining_before and remaining > remaining_before[-1]:
                remaining_before.append(-1)
            if remaining_before.count(-1) >= MAX_RESTARTS:
                raise _Restarted
            remaining_before.append(remaining)

        destination = sqlite3.connect(partial)
        try:
            try:
                source.backup(destination, pages=pages, progress=progress, sleep=sleep)
                return False
            except _Restarted:
                source.backup(destination, pages=-1)
                return True
        finally:
            destination.close()
    finally:
        source.close()


def _finish(partial: Path) -> dict[str, int]:
    """Make the copy one self-contained file, check it, sync it; its row counts."""
    copy = sqlite3.connect(partial, isolation_level=None)
    try:
        copy.execute("PRAGMA journal_mode=DELETE")
        verdict = copy.execute("PRAGMA integrity_check").fetchall()
        if verdict != [("ok",)]:
            raise BackupError(f"the copy failed its integrity check: {verdict[0][0]}")
        tables = [name for (name,) in copy.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name")]
        rows = {name: copy.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
    finally:
        copy.close()
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    return rows


def _sync_folder(folder: Path) -> None:
    """The rename survives a crash only once the folder is synced."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
