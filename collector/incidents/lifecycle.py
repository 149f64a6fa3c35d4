"""People's actions on an incident: acknowledge, escalate, resolve, dismiss, a note, the
provider's ticket; and ``perform``, one of them as the CLI and the API do it.

Lifecycle: open → acknowledged → escalated, or open → escalated; any active state →
resolved or dismissed (with a reason). Anything else is refused with ``NotAllowedNow``.
A provider-wide incident passes what is done to it on to its active children (one
escalation, not fifty); their events say "via provider-wide incident N", and only the
parent notifies.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from collector.db.schema import incidents
from collector.incidents.action_input import MAX_ID, MAX_TICKET, InputError, check_line, check_text
from collector.incidents.changes import active_children, close_incident, note_param, write_event
from collector.incidents.errors import IncidentError, InvalidInput, NotAllowedNow, UnknownIncident
from collector.incidents.model import ACTIVE_STATES
from collector.incidents.notify import Channels
from collector.incidents.provider_wide import close_parent_if_done
from collector.incidents.sentences import Sentence
from collector.incidents.views import IncidentView, get_incident

# action: (the states it may start from, the state it leads to)
MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("open",), "acknowledged"),
    "escalate": (("open", "acknowledged"), "escalated"),
    "resolve": (ACTIVE_STATES, "resolved"),
    "dismiss": (ACTIVE_STATES, "dismissed"),
}
PAST = {"acknowledge": "acknowledged", "escalate": "escalated", "resolve": "resolved",
        "dismiss": "dismissed"}

# incident_events.actor holds this much: a name (action_input.MAX_BY) and where it came from.
MAX_ACTOR = 200


def _checked_actor(actor: str) -> str:
    """Who did it: one line, not empty. The CLI and the API check what people type before
    they call here; this module checks again, so no other caller slips past (action_input.py)."""
    try:
        checked = check_line("actor", actor, MAX_ACTOR)
    except InputError as exc:
        raise InvalidInput(str(exc)) from None
    if checked is None:
        raise InvalidInput("actor: say who does it")
    return checked


def _checked_text(what: str, value: str | None) -> str | None:
    try:
        return check_text(what, value)
    except InputError as exc:
        raise InvalidInput(str(exc)) from None


def acknowledge(conn: Connection, incident_id: int, actor: str, note: str | None, now: float, *,
                channels: Channels | None = None) -> None:
    note = _checked_text("note", note)
    _move(conn, incident_id, "acknowledge", _checked_actor(actor), _stripped(note), now,
          channels or Channels())


def escalate(conn: Connection, incident_id: int, actor: str, ticket: str | None, note: str | None,
             now: float, *, channels: Channels | None = None) -> None:
    note, ticket = _checked_text("note", note), _check_ticket(ticket)
    _move(conn, incident_id, "escalate", _checked_actor(actor), _stripped(note), now, channels or Channels(),
          ticket=ticket)


def resolve(conn: Connection, incident_id: int, actor: str, note: str | None, now: float, *,
            channels: Channels | None = None) -> None:
    note = _stripped(_checked_text("note", note))
    if not note:
        raise IncidentError("resolving by hand needs a note: what was done, or what the provider said")
    _move(conn, incident_id, "resolve", _checked_actor(actor), note, now, channels or Channels())


def dismiss(conn: Connection, incident_id: int, actor: str, reason: str | None, now: float, *,
            channels: Channels | None = None) -> None:
    reason = _stripped(_checked_text("reason", reason))
    if not reason:
        raise IncidentError("dismissing needs a reason: why this is not an incident")
    _move(conn, incident_id, "dismiss", _checked_actor(actor), reason, now, channels or Channels())


def add_note(conn: Connection, incident_id: int, actor: str, note: str | None, now: float) -> None:
    note = _stripped(_checked_text("note", note))
    if not note:
        raise IncidentError("the note is empty")
    actor = _checked_actor(actor)
    row = _row(conn, incident_id)
    write_event(conn, row.id, now, actor, "note", row.state, row.state, note, None)
    conn.execute(update(incidents).where(incidents.c.id == row.id).values(updated_at=now))


def _stripped(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


def set_ticket(conn: Connection, incident_id: int, actor: str, ticket: str | None, now: float,
               *, via: int | None = None) -> None:
    ticket = _check_ticket(ticket)
    if ticket is None:
        raise IncidentError("give the provider's ticket number")
    actor = _checked_actor(actor)
    row = _row(conn, incident_id)
    if row.closed_at is not None and via is None:
        raise NotAllowedNow(f"incident {row.id} is {row.state}: its ticket can no longer change")
    conn.execute(update(incidents).where(incidents.c.id == row.id).values(ticket=ticket, updated_at=now))
    note = Sentence("ticket_set", {"ticket": ticket, "was": row.ticket})
    write_event(conn, row.id, now, actor, "ticket", row.state, row.state, _via(note, via), None)
    if via is None:
        for child in active_children(conn, row.id):
            set_ticket(conn, child.id, actor, ticket, now, via=row.id)


def _move(conn: Connection, incident_id: int, action: str, actor: str, note: str | None, now: float,
          channels: Channels, *, ticket: str | None = None, via: int | None = None) -> None:
    row = _row(conn, incident_id)
    sources, target = MOVES[action]
    if row.state not in sources:
        allowed = ", ".join(a for a, (s, _) in MOVES.items() if row.state in s) or "nothing (it is closed)"
        raise NotAllowedNow(f"incident {row.id} is {row.state}: it cannot be {PAST[action]} "
                            f"(allowed now: {allowed})")
    ticket = _check_ticket(ticket)
    if target in ("resolved", "dismissed"):
        close_incident(conn, row, now, actor, target, "manual" if target == "resolved" else "dismissed",
                       _via(note, via), None if via else channels, ticket=ticket)
    else:
        values: dict[str, Any] = {"state": target, f"{target}_at": now, "updated_at": now}
        if ticket:
            values["ticket"] = ticket
        conn.execute(update(incidents).where(incidents.c.id == row.id).values(**values))
        said = _via(note, via)
        if ticket:
            said = Sentence("ticket_with_note", {"ticket": ticket, "note": note_param(said)})
        write_event(conn, row.id, now, actor, PAST[action], row.state, target, said,
                    None if via else channels)
    if via is None:
        # A provider-wide incident: the same for its active children (where the move fits).
        for child in active_children(conn, row.id):
            if child.state in sources:
                _move(conn, child.id, action, actor, note, now, channels, ticket=ticket, via=row.id)
        if row.parent_id is not None and target in ("resolved", "dismissed"):
            parent = conn.execute(select(incidents).where(incidents.c.id == row.parent_id)).one()
            if parent.closed_at is None:
                close_parent_if_done(conn, parent, now, channels)


def _via(note: Sentence | str | None, via: int | None) -> Sentence | str | None:
    if via is None:
        return note
    return Sentence("via_provider", {"parent": via, "note": note_param(note)})


def _check_ticket(ticket: str | None) -> str | None:
    try:
        return check_line("ticket", ticket, MAX_TICKET)
    except InputError as exc:
        raise InvalidInput(str(exc)) from None


def _row(conn: Connection, incident_id: int) -> Any:
    # An id beyond SQL's integers is no incident (SQLite would overflow, not answer).
    if isinstance(incident_id, bool) or not isinstance(incident_id, int) or not 1 <= incident_id <= MAX_ID:
        raise UnknownIncident(f"no incident {incident_id!r} (see: incident list)")
    # Locked till the action commits (PostgreSQL; SQLite's single writer needs none): two
    # replicas acting on one incident at once (two people acknowledging it, a resolve while
    # detection closes it) would both read it open and both move it, with two events and
    # two notifications. The second now waits and reads the first's state.
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)
                       .with_for_update()).first()
    if row is None:
        raise UnknownIncident(f"no incident {incident_id} (see: incident list)")
    return row


# --- one action, as the CLI and the API do it -------------------------------------------------

ACTIONS = ("acknowledge", "escalate", "resolve", "dismiss", "note", "ticket")


def perform(engine: Any, incident_id: int, action: str, actor: str, *, note: str | None = None,
            ticket: str | None = None, reason: str | None = None, now: float,
            channels: Channels | None = None, default_timezone: str = "UTC") -> IncidentView:
    """Do ``action`` in one write transaction; the incident as it is afterwards."""
    from collector.db.engine import writer

    channels = channels or Channels()
    with writer(engine) as conn, conn.begin():
        if action == "acknowledge":
            acknowledge(conn, incident_id, actor, note, now, channels=channels)
        elif action == "escalate":
            escalate(conn, incident_id, actor, ticket, note, now, channels=channels)
        elif action == "resolve":
            resolve(conn, incident_id, actor, note or reason, now, channels=channels)
        elif action == "dismiss":
            dismiss(conn, incident_id, actor, reason or note, now, channels=channels)
        elif action == "note":
            add_note(conn, incident_id, actor, note, now)
        elif action == "ticket":
            set_ticket(conn, incident_id, actor, ticket, now)
        else:
            raise IncidentError(f"no action {action!r} (actions: {', '.join(ACTIONS)})")
    with engine.connect() as conn:
        return get_incident(conn, incident_id, default_timezone=default_timezone, now=now)
