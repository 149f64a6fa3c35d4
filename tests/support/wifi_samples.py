"""The real Wi-Fi tool outputs in tests/fixtures/wifi/, one sample at a time.

Each fixture file starts with a ``#`` header naming its sources, then one or more samples,
each after a line ``# ---- sample LABEL (note) ----`` (see the folder's README). A teacher's
capture holds one sample, so tests take them one by one, by position or by label.
"""

from __future__ import annotations

import re
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wifi"

# "# ---- sample ----", "# ---- sample 2a (mac80211 driver) ----", "# ---- sample A: en-US ----"
_MARKER = re.compile(r"^# ---- sample(?: ([^\s(:]+))?.*----\s*$", re.MULTILINE)


def _sections(name: str) -> list[tuple[str, str]]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    marks = list(_MARKER.finditer(text))
    sections = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        body = text[mark.end() + 1: following.start() if following else len(text)]
        # Notes the fixture's author put between the lines are theirs, not the tool's.
        lines = [line for line in body.splitlines(keepends=True) if not line.startswith("#")]
        sections.append((mark.group(1) or "", "".join(lines).strip("\n") + "\n"))
    return sections


def samples(name: str) -> list[str]:
    """Every sample of one fixture file, as the tool printed it."""
    return [body for _, body in _sections(name)]


def sample(name: str, which: int | str = 0) -> str:
    """One sample, by position or by its label ("A", "B1", "2a"; "" for an unlabelled one)."""
    if isinstance(which, int):
        return samples(name)[which]
    for label, body in _sections(name):
        if label == which:
            return body
    raise KeyError(f"{name} has no sample labelled {which!r}")
