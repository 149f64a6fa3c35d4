"""Who in the board contacts the provider about an incident: the escalation contact.

A board chooses (``boards.escalation``, a JSON document):
- ``{"mode": "central", "name": ..., "email": ..., "phone": ...}``: one central ICT person
  for all its schools (many boards have one coordinator, or an ICT partner);
- ``{"mode": "school"}``, or null: each school itself, through its own contact
  (``schools.contact_name``, ``contact_email``, ``contact_phone``).

``escalation_contact`` answers for one school. It gives None when no way to reach anyone
is known (neither an e-mail address nor a phone number): the caller says so ("no
escalation contact set: see board set / school set") rather than inventing one.

The checks here are deliberately minimal but clear: an e-mail address is one ``@`` with
something before it and a domain with a dot after it, no spaces; a phone number is digits
with the usual ``+``, spaces, dashes, dots and brackets. What a person typed is kept as typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, select

from collector.db.schema import boards, schools

EscalationMode = Literal["central", "school"]
ESCALATION_MODES: tuple[EscalationMode, ...] = ("central", "school")
ContactRole = Literal["central", "school"]

MAX_NAME = 200  # schools.contact_name
MAX_EMAIL = 320  # schools.contact_email (RFC 5321: 64 + @ + 255)
MAX_PHONE = 64  # schools.contact_phone

# Local part and domain without spaces or a second @; the domain has a dot with letters
# around it (an address on a bare host is not one a board will use).
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]*[0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ContactError(ValueError):
    """A contact detail that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Contact:
    """The person to contact for an incident and how. At least one of email and phone."""

    name: str | None
    email: str | None
    phone: str | None
    role: ContactRole  # "central": the board's ICT person; "school": the school's own contact

    def english(self) -> str:
        """ "Jan de Vries <ict@primo.example>, +31 30 123 4567 (the board's central ICT contact)" """
        parts = [f"{self.name} <{self.email}>" if self.name and self.email else self.name or self.email or ""]
        if self.phone:
            parts.append(self.phone)
        who = "the board's central ICT contact" if self.role == "central" else "the school's own contact"
        return f"{', '.join(p for p in parts if p)} ({who})"

    def as_document(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email, "phone": self.phone, "role": self.role}


@dataclass(frozen=True)
class Escalation:
    """A board's choice, as stored in ``boards.escalation``."""

    mode: EscalationMode = "school"
    name: str | None = None
    email: str | None = None
    phone: str | None = None

    def as_document(self) -> dict[str, Any]:
        if self.mode == "school":
            return {"mode": "school"}
        return {"mode": "central", "name": self.name, "email": self.email, "phone": self.phone}


# --- checks --------------------------------------------------------------------------------------


def check_email(text: str) -> str:
    value = text.strip()
    if len(value) > MAX_EMAIL:
        raise ContactError(f"an e-mail address has at most {MAX_EMAIL} characters, not {len(value)}")
    # No , ; < > or ": the notifications keep a mail's recipients as one comma-separated
    # list, and "a@b.example,c" would become a second, bogus recipient (settings.check_address
    # refuses the same).
    if not _EMAIL.match(value) or _CONTROL.search(value) or any(c in value for c in ',;<>"'):
        raise ContactError(f"{text!r} is not an e-mail address (like ict@school.example)")
    return value


def check_phone(text: str) -> str:
    value = text.strip()
    if len(value) > MAX_PHONE:
        raise ContactError(f"a phone number has at most {MAX_PHONE} characters, not {len(value)}")
    if not _PHONE.match(value) or sum(c.isdigit() for c in value) < 3:
        raise ContactError(f"{text!r} is not a phone number (digits, with + ( ) - . and spaces: "
                           "like +31 30 123 4567)")
    return value


def check_name(text: str) -> str:
    value = " ".join(text.split())
    if len(value) > MAX_NAME:
        raise ContactError(f"a name has at most {MAX_NAME} characters, not {len(value)}")
    if _CONTROL.search(text.replace("\t", " ")):
        raise ContactError("a name must not hold control characters")
    return value


def _optional(check: Any, text: str | None) -> str | None:
    return None if text is None or not text.strip() else str(check(text))


def parse_escalation(document: Mapping[str, Any] | None) -> Escalation:
    """A stored or submitted document -> Escalation; ContactError names what is wrong.
    A central contact needs an e-mail address or a phone number: one without is nobody."""
    if document is None:
        return Escalation()
    if not isinstance(document, Mapping):
        raise ContactError("escalation: a JSON object like {\"mode\": \"central\", \"email\": ...}")
    unknown = sorted(set(document) - {"mode", "name", "email", "phone"})
    if unknown:
        raise ContactError(f"escalation: unknown field {unknown[0]!r}; one of mode, name, email, phone")
    mode = document.get("mode") or "school"
    if mode not in ESCALATION_MODES:
        raise ContactError(f"escalation: mode {mode!r} is not one of {', '.join(ESCALATION_MODES)}")
    values = {key: document.get(key) for key in ("name", "email", "phone")}
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise ContactError(f"escalation: {key} must be text")
    if mode == "school":
        given = [key for key, value in values.items() if value]
        if given:
            raise ContactError(f"escalation: {given[0]} is only for escalation=central; with "
                               "escalation=school each school's own contact is used (school set)")
        return Escalation()
    escalation = Escalation("central", _optional(check_name, values["name"]),
                            _optional(check_email, values["email"]), _optional(check_phone, values["phone"]))
    if escalation.email is None and escalation.phone is None:
        raise ContactError("escalation=central needs escalation_email or escalation_phone: a way "
                           "to reach the central ICT contact")
    return escalation


# --- reads ---------------------------------------------------------------------------------------


def board_escalation(conn: Connection, board_pk: int) -> Escalation:
    stored = conn.scalar(select(boards.c.escalation).where(boards.c.id == board_pk))
    return _stored(stored)


def escalation_contact(conn: Connection, school_pk: int) -> Contact | None:
    """Whom to contact for the school's incidents: the board's central ICT person, or the
    school's own contact (as the board chose); None when no e-mail address or phone number is
    known for that person (or the school does not exist)."""
    row = conn.execute(
        select(boards.c.escalation, schools.c.contact_name, schools.c.contact_email,
               schools.c.contact_phone)
        .join(boards, boards.c.id == schools.c.board_id).where(schools.c.id == school_pk)).first()
    if row is None:
        return None
    escalation = _stored(row.escalation)
    if escalation.mode == "central":
        contact = Contact(escalation.name, escalation.email, escalation.phone, "central")
    else:
        contact = Contact(row.contact_name or None, row.contact_email or None, row.contact_phone or None,
                          "school")
    return contact if contact.email or contact.phone else None


def _stored(document: Any) -> Escalation:
    # What the store holds was checked when it was written; a document that no longer reads
    # (edited by hand) is not a contact anyone can use, so it counts as none set.
    try:
        return parse_escalation(document)
    except ContactError:
        return Escalation()
