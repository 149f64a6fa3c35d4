"""Finding the real tools a test needs: in CI a missing tool fails, elsewhere it skips."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """The path of an installed command, or skip (fail in CI) naming what is missing."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (scripts/test installs it; in CI, CI=true, this fails)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)  # only outside CI: in CI the line above has failed the test


def console_script(name: str) -> str:
    """A console script of this project, from the virtual environment running the tests."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: install the project (pip install -e '.[collector]')")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
