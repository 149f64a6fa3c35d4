"""Durations as people write them: ``30s``, ``30m``, ``24h``, ``7d`` (or plain seconds)."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (write it like 30s, 30m, 24h or 7d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]
