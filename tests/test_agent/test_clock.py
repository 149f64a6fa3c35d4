"""The clock stamp: wall time plus what the collector needs to repair a wrong clock."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from agent.clock import Clock, boot_id, clock_synchronized, now, since_boot


def test_the_real_stamp_describes_this_host() -> None:
    before = time.time()
    stamp = now()
    assert before <= stamp.wall_time_seconds <= time.time()
    assert stamp.since_boot_seconds > 0
    assert stamp.since_boot_seconds <= now().since_boot_seconds, "monotonic"
    if Path("/proc/sys/kernel/random/boot_id").exists():
        assert stamp.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adjtimex is Linux-only; CI runs on Linux")
def test_the_kernel_says_whether_the_clock_is_synchronised() -> None:
    assert clock_synchronized() in (True, False)


def test_boot_time_counts_with_the_kernel() -> None:
    first = since_boot()
    time.sleep(0.05)
    assert 0.04 < since_boot() - first < 2


def test_without_a_boot_id_file_one_id_per_process(tmp_path: Path) -> None:
    missing = tmp_path / "boot_id"
    assert boot_id(missing) == boot_id(missing)
    assert boot_id(missing).startswith("process-")


def test_an_injected_clock_decides_every_field() -> None:
    clock = Clock(wall=lambda: 1_800_000_000.0, since_boot=lambda: 42.5,
                  boot_id=lambda: "boot-a", synchronized=lambda: None)
    stamp = clock()
    assert (stamp.wall_time_seconds, stamp.since_boot_seconds, stamp.boot_id,
            stamp.clock_synchronized) == (1_800_000_000.0, 42.5, "boot-a", None)
