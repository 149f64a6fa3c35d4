"""Finding the real tools a test needs: in CI a missing tool fails, elsewhere it skips."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path
from typing import NoReturn

import pytest

BIN = Path(sys.executable).parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """The path of an installed command, or skip (fail in CI) naming what is missing."""
    path = shutil.which(name)
    if path:
        return path
    unavailable(f"{name} is not installed (scripts/test installs it)")


def unavailable(reason: str) -> NoReturn:
    """This machine cannot run the test: skip it, naming why, except in CI (CI=true),
    where whatever a test needs must be there, so it fails."""
    message = f"{reason} (in CI, CI=true, this fails)"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)  # also at a module's top


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


# The product's default bandwidth target is public (M-Lab's locate service). Every agent a
# test starts gets this instead, so a test that forgets to choose a local server fails
# on loopback ("cannot connect") rather than reaching the internet.
LOCAL_ONLY_ENV = {
    "SCHOOLNET_PROBES__BANDWIDTH__NDT7__LOCATE_URL": "http://127.0.0.1:9/v2/nearest/ndt/ndt7",
}


def agent_env(config_path: Path) -> dict[str, str]:
    """The environment for an agent process: none of the caller's SCHOOLNET_* settings,
    this config file, and the local-only safety net above."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLNET_")}
    env["SCHOOLNET_AGENT_CONFIG"] = str(config_path)
    env.update(LOCAL_ONLY_ENV)
    return env
