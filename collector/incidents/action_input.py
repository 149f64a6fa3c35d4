"""What a person may type into an incident action (CLI and admin API alike): who did it,
the note or reason, the provider's ticket number, and the incident's id.

Why here and not only in each front end: the same limits must hold whichever way an
action comes in. A name or ticket is one line (it is printed in tab-separated lists, mail
bodies and the evidence pack); a note may have line breaks and tabs. Neither may hold
other control characters: an escape sequence in a note would repaint the terminal of the
admin who runs ``incident show``, and PostgreSQL refuses NUL in text.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, select

from collector.db.schema import boards
from collector.registry import RegistryError

MAX_BY = 100
MAX_NOTE = 4000
MAX_TICKET = 100
# Incident ids are SQL integers: larger numbers are no id (SQLite would overflow).
MAX_ID = 2**63 - 1

# C0 and C1 control characters and DEL; in free text tab and line feed are allowed.
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class InputError(ValueError):
    """Bad input for an incident action; the message is the whole line the user sees,
    ``problem`` the same without the field's name (for the API, which names it itself)."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what}: {problem}" if what else problem)
        self.problem = problem


def check_line(what: str, value: str | None, limit: int) -> str | None:
    """A one-line field (``by``, ``ticket``): stripped, None when empty."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > limit:
        raise InputError(what, f"at most {limit} characters, not {len(value)}")
    control = _ANY_CONTROL.search(value)
    if control:
        raise InputError(what, f"holds a control character (U+{ord(control.group()):04X}) at "
                         f"character {control.start() + 1}; it is one line of text")
    return value


def check_text(what: str, value: str | None, limit: int = MAX_NOTE) -> str | None:
    """A free-text field (``note``, ``reason``): Windows line ends become line feeds."""
    if value is None:
        return None
    value = value.replace("\r\n", "\n")
    if len(value) > limit:
        raise InputError(what, f"at most {limit} characters, not {len(value)}")
    control = _TEXT_CONTROL.search(value)
    if control:
        raise InputError(what, f"holds a control character (U+{ord(control.group()):04X}) at "
                         f"character {control.start() + 1}")
    return value


def parse_id(text: str) -> int:
    """An incident id from the command line: a whole number from 1."""
    try:
        value = int(text)
    except ValueError:
        raise InputError("", f"{text!r} is not an incident id (a whole number, see: incident list)") from None
    if not 1 <= value <= MAX_ID:
        raise InputError("", f"{text!r} is not an incident id (see: incident list)")
    return value


def check_board(conn: Connection, board: str | None) -> None:
    """A board filter names a board that exists: a typo is an error, not "no incidents"
    (as an unknown school already is)."""
    if board and conn.scalar(select(boards.c.id).where(boards.c.slug == board)) is None:
        raise RegistryError(f"no board {board!r} (see: board list)")
