"""`schoolnet-collector backup`: a consistent, self-contained copy of a store being written."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agent.wire import Batch
from collector.backup import backup
from collector.cli import main
from collector.db.engine import open_engine
from collector.db.migrate import upgrade
from collector.db.schema import agents
from collector.ingest import ingest_batch
from collector.registry import AgentIdentity
from tests.support.records import batch, new_stream, record

PER_BATCH = 5


def test_backup_while_ingest_runs_holds_whole_batches(site: Any, tmp_path: Path) -> None:
    with site.engine.connect() as conn:
        agent_row = conn.execute(select(agents.c.id, agents.c.slug, agents.c.school_id)).one()
    identity = AgentIdentity(agent_row.id, agent_row.slug, agent_row.school_id, "test-school", "test-board")
    stream = new_stream()
    stop = threading.Event()
    sent: list[int] = []

    def ingest() -> None:
        number = 0
        while not stop.is_set() or number < 20:
            first = number * PER_BATCH + 1
            body = batch(*[record(seq, stream, "bandwidth" if seq % 2 else "system")
                           for seq in range(first, first + PER_BATCH)])
            ingest_batch(site.engine, identity, Batch.model_validate(body))
            number += 1
            sent.append(number)

    thread = threading.Thread(target=ingest)
    thread.start()
    try:
        while len(sent) < 10:
            stop.wait(0.01)
        # Few pages per step: the copy takes many steps, and ingest writes between them.
        result = backup(site.engine, tmp_path / "copy.db", pages=2, sleep=0.001)
    finally:
        stop.set()
        thread.join()

    copy = tmp_path / "copy.db"
    assert not (tmp_path / "copy.db.partial").exists()
    assert not Path(f"{copy}-wal").exists()
    reader = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        seqs = [seq for (seq,) in reader.execute("SELECT seq FROM records ORDER BY seq")]
        totals = reader.execute("SELECT tests_valid_total FROM bandwidth_totals").fetchall()
        mark = reader.execute("SELECT accounted_through FROM streams").fetchone()
    finally:
        reader.close()
    # A prefix of whole batches: seqs 1..5k, and the state tables agree with the records.
    assert seqs and len(seqs) % PER_BATCH == 0 and seqs == list(range(1, len(seqs) + 1))
    assert mark == (len(seqs),)
    assert totals == [(sum(1 for seq in seqs if seq % 2),)]
    assert result.rows["records"] == len(seqs)
    assert result.size_bytes == copy.stat().st_size


def test_backup_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    upgrade(open_engine(url))
    target = tmp_path / "copy.db"
    assert main(["backup", str(target), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "integrity ok" in out and "records\t0" in out
    # An existing file is refused, then replaced with --force.
    assert main(["backup", str(target), "--db", url]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["backup", str(target), "--force", "--db", url]) == 0
    capsys.readouterr()
    assert main(["backup", str(tmp_path / "c.db"), "--force", "--db", url]) == 2
    assert "the store itself" in capsys.readouterr().err
    assert main(["backup", str(tmp_path / "none" / "x.db"), "--db", url]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_backup_refuses_postgresql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Refused before any connection is made: no server is needed.
    assert main(["backup", str(tmp_path / "x.db"), "--db", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    err = capsys.readouterr().err
    assert "pg_dump" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists()
