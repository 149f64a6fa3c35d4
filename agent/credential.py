"""The agent's credential: who it is and which collector it reports to (mode 0600)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "credential.json"


@dataclass(frozen=True)
class Credential:
    collector_url: str
    credential: str
    board: str
    school: str
    agent: str

    @property
    def identity(self) -> str:
        return f"{self.board}/{self.school}/{self.agent}"


def credential_path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def load_credential(state_dir: Path) -> Credential | None:
    try:
        document = json.loads(credential_path(state_dir).read_text())
        return Credential(**document)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{credential_path(state_dir)} is unreadable ({exc}); enrol again") from None


def save_credential(state_dir: Path, credential: Credential) -> Path:
    """Write atomically, readable by the agent's user alone."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = credential_path(state_dir)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(asdict(credential), handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path
