"""Short ids of boards, schools and agents: lowercase letters, digits and dashes."""

from __future__ import annotations

import re
import unicodedata

from agent.wire import ID_PATTERN

_ID = re.compile(ID_PATTERN)


def slugify(name: str) -> str:
    """``"De Regenboog (Utrecht)"`` -> ``"de-regenboog-utrecht"``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:63].rstrip("-")


def check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{what} id {value!r} must be lowercase letters, digits and dashes "
            "(at most 63, not starting or ending with a dash)"
        )
    return value
