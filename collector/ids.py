"""Short ids of boards, schools and agents: lowercase letters, digits and dashes."""

from __future__ import annotations

import re

from agent.units import slugify
from agent.wire import ID_PATTERN

__all__ = ["check_id", "slugify"]

_ID = re.compile(ID_PATTERN)


def check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{what} id {value!r} must be lowercase letters, digits and dashes "
            "(at most 63, not starting or ending with a dash)"
        )
    return value
