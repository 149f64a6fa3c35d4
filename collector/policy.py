"""What a board decides about judging its lines: the rule set and the capacity profiles.

Stored per board (`boards.rule_set`, `boards.policy`); a board that decided nothing gets
the defaults below. The capacity defaults are starting points with a source each, meant to
be edited by a board that knows its own teaching:

- Mbit/s needed per concurrent device, named after the sector's profiles of a school's
  digital ambition (Basis, Digitaal, Experimenteel): 0.5 / 1 / 2. The middle one is the
  United States' school target of 1 Mbit/s per student (FCC E-rate Modernization Order,
  2014: 1 Gbit/s per 1,000 students as the long-term goal).
- 2 Mbit/s per participant in a video lesson: UNICEF Giga's guidance for video calls is
  1-2 Mbit/s per participant; we take the upper end, as a lesson cannot buffer.
- A margin of 30 % above the measured peak: a common procurement rule, so a line bought
  for today's peak still serves next year's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RuleSetName = Literal["acm", "bnetza", "fcc", "giga"]
RULE_SETS: tuple[RuleSetName, ...] = ("acm", "bnetza", "fcc", "giga")
DEFAULT_RULE_SET: RuleSetName = "acm"
ProfileName = Literal["basis", "digitaal", "experimenteel"]
PROFILES: tuple[ProfileName, ...] = ("basis", "digitaal", "experimenteel")

MBIT = 1_000_000 / 8  # bytes per second in one Mbit/s
DEFAULT_PER_DEVICE: dict[ProfileName, float] = {
    "basis": 0.5 * MBIT, "digitaal": 1 * MBIT, "experimenteel": 2 * MBIT}


class CapacityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Bytes per second needed per concurrent device, per profile.
    per_device_bytes_per_second: dict[ProfileName, float] = Field(
        default_factory=lambda: dict(DEFAULT_PER_DEVICE))
    per_video_participant_bytes_per_second: float = Field(default=2 * MBIT, gt=0)
    margin_ratio: float = Field(default=0.3, ge=0, le=10)
    # The profile a board's schools are judged by when nothing else is said.
    profile: ProfileName = "digitaal"


class BoardPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_set: RuleSetName = DEFAULT_RULE_SET
    capacity: CapacityPolicy = Field(default_factory=CapacityPolicy)
