"""One bandwidth test at a time on this agent, across processes.

The daemon's scheduler never overlaps its own runs, but ``once`` or ``measure`` may start
while the daemon is testing: two tests at once would each measure half the line and
both would be wrong. An advisory lock on a file in the state directory settles it; the
kernel drops the lock when its holder dies, so a crash never leaves it stuck.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "bandwidth.lock"


class Busy(Exception):
    """Another bandwidth test on this agent holds the lock."""


@contextmanager
def exclusive_test(state_dir: Path) -> Iterator[None]:
    """Hold the agent's bandwidth-test lock, or raise Busy at once (never wait: a test
    that waited would run at a time the schedule did not choose)."""
    try:
        descriptor = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        # No writable state directory (``measure --server`` before enrolment): there is
        # no daemon using it either, so there is nobody to exclude.
        yield
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy("another bandwidth test is running on this agent") from None
        yield
    finally:
        os.close(descriptor)
