"""Finding the real tools a test needs: in CI a missing tool fails, elsewhere it skips."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any, NoReturn

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


# The product's defaults are public: M-Lab's locate service for bandwidth; anycast
# resolvers, well-known sites and the machine's own default gateway for connectivity.
# Every agent a test starts gets local values instead, so a test that forgets to choose a
# local target probes loopback (and fails) rather than the world. Connectivity is off
# unless a test's config file turns it on; the file wins wherever it sets a key itself.
LOCAL_ONLY_ENV = {
    "SCHOOLNET_PROBES__BANDWIDTH__NDT7__LOCATE_URL": "http://127.0.0.1:9/v2/nearest/ndt/ndt7",
    "SCHOOLNET_PROBES__CONNECTIVITY__ENABLED": "false",
    "SCHOOLNET_PROBES__CONNECTIVITY__TARGETS": '["127.0.0.1"]',
    "SCHOOLNET_PROBES__CONNECTIVITY__GATEWAY": "",
    "SCHOOLNET_PROBES__CONNECTIVITY__HOPS": "0",
    "SCHOOLNET_PROBES__CONNECTIVITY__DNS_SERVERS": "[]",
    "SCHOOLNET_PROBES__CONNECTIVITY__HTTP_URLS": "[]",
    # A scan sends probe requests over the air on a machine with Wi-Fi: never from a test.
    "SCHOOLNET_PROBES__WIFI__ENABLED": "false",
    "SCHOOLNET_PROBES__WIFI__TRIGGER_SCAN": "false",
    # The census asks the real LAN only where a test built one in namespaces.
    "SCHOOLNET_PROBES__USERS__SOURCES": '["neighbours"]',
}


def local_only_env(config: dict[str, Any]) -> dict[str, str]:
    """The safety net without the keys that ``config`` (a parsed agent config) sets."""
    kept = {}
    for name, value in LOCAL_ONLY_ENV.items():
        node: Any = config
        for part in name.removeprefix("SCHOOLNET_").lower().split("__"):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            kept[name] = value
    return kept


def agent_env(config_path: Path) -> dict[str, str]:
    """The environment for an agent process: none of the caller's SCHOOLNET_* settings,
    this config file, and the local-only safety net above where the file is silent."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLNET_")}
    env["SCHOOLNET_AGENT_CONFIG"] = str(config_path)
    try:
        config = tomllib.loads(config_path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        config = {}  # a test of a missing or broken file: the agent says what is wrong
    env.update(local_only_env(config))
    return env
