"""Writing an incident's changes, for every module that changes incidents (store.py from
detection, provider_wide.py, lifecycle.py from people's actions): its event, closing it,
inserting one, the active incidents by key or parent, and ``Change``, what a detection run
reports of each incident it changed.

Every change writes an ``incident_events`` row (who, what, from which state to which, why)
and, for the changes people are told of, ``incident_notifications`` rows, in the same
transaction: a notification is never lost, and never sent for a change that was rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from collector.db.schema import incident_events, incidents
from collector.incidents.notify import Channels, enqueue
from collector.incidents.sentences import Sentence


@dataclass(frozen=True)
class Change:
    """What one detection run did to one incident."""

    incident_id: int
    key: str
    kind: str
    action: str  # opened, refreshed, reassessed, resolved, merged
    state: str
    school_id: int | None
    note: str | None = None


def write_event(conn: Connection, incident_id: int, now: float, actor: str, action: str,
                from_state: str | None, to_state: str | None, note: Sentence | str | None,
                channels: Channels | None) -> int:
    """One event; a Sentence note is stored as its English (note) and its code (data)."""
    data = note.as_data() if isinstance(note, Sentence) else None
    key = conn.execute(incident_events.insert().values(
        incident_id=incident_id, at=now, actor=actor, action=action, from_state=from_state,
        to_state=to_state, note=note_english(note),
        data=data)).inserted_primary_key
    assert key is not None
    event_id = int(key[0])
    if channels is not None:
        enqueue(conn, channels, incident_id, event_id, action, now)
    return event_id


def close_incident(conn: Connection, row: Any, now: float, actor: str, state: str, resolution: str,
                   note: Sentence | str | None, channels: Channels | None, *,
                   restored_at: float | None = None, ticket: str | None = None) -> None:
    """Close it (resolved or dismissed) with its closing event."""
    values: dict[str, Any] = {"state": state, "closed_at": now, "resolution": resolution,
                              "resolution_note": note_english(note),
                              "updated_at": now}
    if restored_at is not None:
        values["restored_at"] = restored_at
    if ticket:
        values["ticket"] = ticket
    conn.execute(update(incidents).where(incidents.c.id == row.id).values(**values))
    write_event(conn, row.id, now, actor, state, row.state, state, note, channels)


def note_english(note: Sentence | str | None) -> str | None:
    return note.english() if isinstance(note, Sentence) else note


def note_param(said: Sentence | str | None) -> Any:
    """A sentence as a param of another (its {"code", "params"}), or a person's text as is."""
    return said.as_data() if isinstance(said, Sentence) else said


def insert_incident(conn: Connection, values: dict[str, Any]) -> int:
    key = conn.execute(incidents.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def active_by_key(conn: Connection, key: str) -> Any:
    """The open incident of ``key``, locked till the caller's write transaction ends (see
    lifecycle._row): detection refreshing or closing it must not race a person's action."""
    return conn.execute(select(incidents).where(incidents.c.key == key,
                                                incidents.c.closed_at.is_(None))
                        .with_for_update()).first()


def active_children(conn: Connection, parent_id: int) -> list[Any]:
    return list(conn.execute(select(incidents).where(incidents.c.parent_id == parent_id,
                                                     incidents.c.closed_at.is_(None))
                             .order_by(incidents.c.id)).all())
