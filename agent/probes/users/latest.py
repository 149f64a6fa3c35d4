"""Counts one probe leaves in the state directory for another: the census's latest count
for the bandwidth probe (every test records the devices on the network beside it), and the
Wi-Fi scan's BSS Load station total for the census. Counts only, never an identity; each
written atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

USERS_LATEST = "users-latest.json"
WIFI_STATIONS = "wifi-stations.json"


def write_counts(path: Path, **counts: Any) -> None:
    """``counts`` with the time they were made; a failure to write only costs the reader."""
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(json.dumps({"measured_at": time.time(), **counts}))
        os.replace(temporary, path)
    except OSError:
        pass


def read_counts(path: Path, max_age_seconds: float, now: float | None = None) -> dict[str, Any] | None:
    """The counts when they are at most ``max_age_seconds`` old, else None."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    measured_at = document.get("measured_at")
    if not isinstance(measured_at, (int, float)):
        return None
    age = (time.time() if now is None else now) - measured_at
    return document if 0 <= age <= max_age_seconds else None
