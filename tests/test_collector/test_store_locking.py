"""SQLite writers of several processes (serve --workers, admin commands) take turns."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

from support.tools import console_script


def test_a_writer_in_another_process_waits_for_the_write_lock(tmp_path: Path) -> None:
    env = dict(os.environ, SCHOOLNET_DB=f"sqlite:///{tmp_path / 'c.db'}")
    script = console_script("schoolnet-collector")
    assert subprocess.run([script, "migrate"], env=env, timeout=60, check=False).returncode == 0
    descriptor = os.open(tmp_path / "c.db.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # as another collector process writing
        waiting = subprocess.Popen([script, "board", "add", "North"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert waiting.poll() is None, "the board was written while another writer held the lock"
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        out, err = waiting.communicate(timeout=30)
    finally:
        os.close(descriptor)
    assert waiting.returncode == 0, err
    assert out == "north\n"


def test_commands_started_together_on_a_new_store_all_migrate_and_write(tmp_path: Path) -> None:
    """`serve` starting while an admin makes the first token (docs/server-stack.md): every
    command migrates a new store at start; taking turns, none fails with "database is locked"."""
    db = f"sqlite:///{tmp_path / 'new.db'}"
    collector = console_script("schoolnet-collector")
    commands = [[collector, "--db", db, "metrics-token", "create"] for _ in range(3)]
    commands += [[collector, "--db", db, "admin-token", "create"] for _ in range(3)]
    commands += [[collector, "--db", db, "migrate"] for _ in range(2)]
    started = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for command in commands]
    outcomes = [(process.wait(timeout=120), process.stderr.read() if process.stderr else "")
                for process in started]
    assert [code for code, _ in outcomes] == [0] * len(commands), outcomes
