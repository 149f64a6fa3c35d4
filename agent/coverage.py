"""Coverage grades: what a Wi-Fi signal is good enough for.

The agent's survey walk shows a grade at once and the collector keeps one per room; both
grade with this one function. The defaults follow common design guidance for enterprise
Wi-Fi (Cisco, Aruba and Ekahau design guides: -67 dBm for voice and video calls, about
-70 to -72 dBm for web browsing and e-mail); the collector's thresholds can be changed.
"""

from __future__ import annotations

from typing import get_args

from agent.wire import CoverageGrade

VIDEO_DBM = -67.0
BROWSING_DBM = -72.0

# Best first; the number is the grade's value on /metrics (3 = video ... 0 = none).
GRADES: tuple[CoverageGrade, ...] = get_args(CoverageGrade)
GRADE_VALUES: dict[CoverageGrade, int] = {grade: len(GRADES) - 1 - i for i, grade in enumerate(GRADES)}

MEANING: dict[CoverageGrade, str] = {
    "video": "good enough for video calls and streaming",
    "browsing": "good enough for browsing, not for video calls",
    "poor": "connects, but too weak for dependable use",
    "none": "no connection",
}


def grade(signal_dbm: float | None, video_dbm: float = VIDEO_DBM,
          browsing_dbm: float = BROWSING_DBM) -> CoverageGrade:
    """The grade of one signal reading; None (not connected) is "none"."""
    if signal_dbm is None:
        return "none"
    if signal_dbm >= video_dbm:
        return "video"
    if signal_dbm >= browsing_dbm:
        return "browsing"
    return "poor"
