"""Where the agent keeps its state and looks for its config, per platform.

Pure functions of the platform name and the environment, both injectable, so the Windows
and macOS answers are tested on Linux. The platform and environment are read at call time,
not bound as default values at import, so a test that patches ``sys.platform`` sees it.

- Linux and other Unix: state in ``/var/lib/schoolnet-agent``, config ``/etc/schoolnet/agent.toml``
  (the systemd unit's ``StateDirectory`` and ``SCHOOLNET_AGENT_CONFIG``).
- Windows: ``%ProgramData%\\schoolnet-agent`` and ``%ProgramData%\\schoolnet\\agent.toml``
  (machine-wide, not per user: the agent runs as SYSTEM from a scheduled task).
- macOS: ``/Library/Application Support/schoolnet-agent`` and
  ``/Library/Application Support/schoolnet/agent.toml``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath

STATE_DIR_NAME = "schoolnet-agent"
CONFIG_DIR_NAME = "schoolnet"
CONFIG_FILE_NAME = "agent.toml"

POSIX_STATE_DIR = Path("/var/lib") / STATE_DIR_NAME
POSIX_CONFIG_PATH = Path("/etc") / CONFIG_DIR_NAME / CONFIG_FILE_NAME
MACOS_SUPPORT_DIR = Path("/Library/Application Support")
# Where %ProgramData% points on every Windows since Vista when nothing says otherwise.
WINDOWS_PROGRAM_DATA = PureWindowsPath("C:/ProgramData")


def _lookup(environ: Mapping[str, str], name: str) -> str:
    """A variable by name, ignoring case as Windows does (a Mapping handed in by a test or
    by Python on another OS is case-sensitive)."""
    wanted = name.upper()
    for key, value in environ.items():
        if key.upper() == wanted:
            return value
    return ""


def windows_program_data(environ: Mapping[str, str] | None = None) -> PureWindowsPath:
    """%ProgramData%, else %ALLUSERSPROFILE% (the same folder since Vista), else
    %SystemDrive%\\ProgramData, else C:\\ProgramData. A relative value is skipped: a state
    directory relative to the task's working directory (System32) would be wrong."""
    env = os.environ if environ is None else environ
    for name in ("ProgramData", "ALLUSERSPROFILE"):
        candidate = PureWindowsPath(_lookup(env, name).strip())
        if candidate.drive and candidate.root:
            return candidate
    drive = _lookup(env, "SystemDrive").strip()
    if len(drive) == 2 and drive[1] == ":" and drive[0].isalpha():
        return PureWindowsPath(drive + "\\") / "ProgramData"
    return WINDOWS_PROGRAM_DATA


def default_state_dir(platform: str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The directory for the credential, the outbox and the collector's settings cache."""
    name = sys.platform if platform is None else platform
    if name == "win32":
        return Path(str(windows_program_data(environ) / STATE_DIR_NAME))
    if name == "darwin":
        return MACOS_SUPPORT_DIR / STATE_DIR_NAME
    return POSIX_STATE_DIR


def default_config_path(platform: str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Where the installers put the config file (``--config`` or SCHOOLNET_AGENT_CONFIG names it)."""
    name = sys.platform if platform is None else platform
    if name == "win32":
        return Path(str(windows_program_data(environ) / CONFIG_DIR_NAME / CONFIG_FILE_NAME))
    if name == "darwin":
        return MACOS_SUPPORT_DIR / CONFIG_DIR_NAME / CONFIG_FILE_NAME
    return POSIX_CONFIG_PATH
