"""Incidents as read: one with its events and children, or a filtered list; and the time to
restore against the SLA, as every reader (CLI, API, evidence pack) shows it."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, or_, select

from collector.calendar import SchoolCalendar, load_calendar
from collector.db.schema import boards, incident_events, incidents, schools
from collector.incidents.errors import IncidentError, UnknownIncident
from collector.incidents.model import ACTIVE_STATES, STATES
from collector.registry import resolve_school


def restore_figures(row: Any, calendar: SchoolCalendar | None, now: float | None = None) -> dict[str, Any]:
    """Time to restore: from started_at to restored_at (or to closed_at when a person
    resolved it), in wall seconds and on the contract's SLA clock, and whether that met
    the SLA's restore time. Open incidents: the time so far (``now``), and "missed" as
    soon as it is over. A dismissed incident has none."""
    from collector.incidents.sla import sla_elapsed

    end = row.restored_at
    if end is None and row.resolution == "manual":
        end = row.closed_at
    ongoing = end is None and row.closed_at is None
    if end is None and ongoing and now is not None:
        end = now
    clock = row.sla_clock or "24x7"
    figures: dict[str, Any] = {"restored_at": row.restored_at if row.restored_at is not None else (
        row.closed_at if row.resolution == "manual" else None), "ongoing": ongoing,
        "wall_seconds": None, "sla_seconds": None, "sla_clock": clock,
        "sla_restore_seconds": row.sla_restore_seconds, "met": None}
    if end is None:
        return figures
    figures["wall_seconds"] = max(end - row.started_at, 0.0)
    if clock == "24x7":
        figures["sla_seconds"] = figures["wall_seconds"]
    elif calendar is not None:
        figures["sla_seconds"] = sla_elapsed(row.started_at, end, clock, calendar)
    allowed, used = row.sla_restore_seconds, figures["sla_seconds"]
    if allowed is not None and used is not None:
        if not ongoing:
            figures["met"] = used <= allowed
        elif used >= allowed:
            # Still not restored when all the allowed time is used: missed. On a business
            # clock the time used stops at 18:00, exactly at the allowance when the deadline
            # was then; it will not be met later.
            figures["met"] = False
    return figures


@dataclass(frozen=True)
class EventView:
    id: int
    at: float
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str | None
    data: dict[str, Any] | None = None  # the note as a code with params (sentences.py), if the store wrote it


@dataclass(frozen=True)
class IncidentView:
    id: int
    key: str
    kind: str
    state: str
    board: str | None
    school: str | None
    school_name: str | None
    board_id: int | None
    school_id: int | None
    connection_id: int | None
    agent_id: int | None
    room_id: int | None
    parent_id: int | None
    provider_id: str | None
    provider: str | None
    responsible: str
    started_at: float
    detected_at: float
    last_evidence_at: float
    acknowledged_at: float | None
    escalated_at: float | None
    restored_at: float | None
    closed_at: float | None
    resolution: str | None
    resolution_note: str | None
    ticket: str | None
    impact: str
    urgency: str
    sla_restore_seconds: float | None
    sla_clock: str | None
    sla_deadline_at: float | None
    assessment: dict[str, Any]
    findings: dict[str, Any]
    updated_at: float
    restore: dict[str, Any]
    timezone: str  # the school's IANA zone (the collector's default for a provider-wide incident)
    children: list[int] = field(default_factory=list)
    events: list[EventView] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_VIEW_COLUMNS = (incidents, boards.c.slug.label("board_slug"), schools.c.slug.label("school_slug"),
                 schools.c.name.label("school_display"))


def _view_query() -> Any:
    return (select(*_VIEW_COLUMNS).outerjoin(schools, schools.c.id == incidents.c.school_id)
            .outerjoin(boards, boards.c.id == incidents.c.board_id))


def get_incident(conn: Connection, incident_id: int, *, default_timezone: str = "UTC",
                 now: float | None = None) -> IncidentView:
    row = conn.execute(_view_query().where(incidents.c.id == incident_id)).first()
    if row is None:
        raise UnknownIncident(f"no incident {incident_id} (see: incident list)")
    events = [EventView(e.id, e.at, e.actor, e.action, e.from_state, e.to_state, e.note, e.data)
              for e in conn.execute(select(incident_events).where(incident_events.c.incident_id == row.id)
                                    .order_by(incident_events.c.at, incident_events.c.id))]
    children = list(conn.scalars(select(incidents.c.id).where(incidents.c.parent_id == row.id)
                                 .order_by(incidents.c.id)))
    calendar = load_calendar(conn, row.school_id, default_timezone) if row.school_id else None
    return _view(row, calendar, now, events, children, default_timezone)


def list_incidents(conn: Connection, board: str | None = None, school: str | None = None,
                   states: Iterable[str] | None = None, *, default_timezone: str = "UTC",
                   now: float | None = None, board_ids: Collection[int] | None = None,
                   provider_wide: bool = True) -> list[IncidentView]:
    """Incidents, newest first; ``school`` is SCHOOL or BOARD/SCHOOL (RegistryError when
    unknown); ``states`` None = every state. ``board_ids`` (None: every board) and
    ``provider_wide`` (incidents of no board) are the viewer's scope, applied in the query
    so a board's user never has another board's rows in memory."""
    query = _view_query().order_by(incidents.c.started_at.desc(), incidents.c.id.desc())
    if board_ids is not None:
        allowed = incidents.c.board_id.in_(list(board_ids))
        query = query.where(or_(allowed, incidents.c.board_id.is_(None)) if provider_wide else allowed)
    elif not provider_wide:
        query = query.where(incidents.c.board_id.is_not(None))
    if board:
        query = query.where(boards.c.slug == board)
    if school:
        school_pk = resolve_school(conn, f"{board}/{school}" if board and "/" not in school else school)[0]
        query = query.where(incidents.c.school_id == school_pk)
    if states is not None:
        wanted = list(states)
        unknown = [s for s in wanted if s not in STATES]
        if unknown:
            raise IncidentError(f"no state {unknown[0]!r} (states: {', '.join(STATES)})")
        query = query.where(incidents.c.state.in_(wanted))
    rows = conn.execute(query).all()
    calendars: dict[int, SchoolCalendar] = {}
    views = []
    for row in rows:
        calendar = None
        if row.school_id is not None:
            if row.school_id not in calendars:
                calendars[row.school_id] = load_calendar(conn, row.school_id, default_timezone)
            calendar = calendars[row.school_id]
        views.append(_view(row, calendar, now, [], [], default_timezone))
    return views


def _view(row: Any, calendar: SchoolCalendar | None, now: float | None, events: list[EventView],
          children: list[int], default_timezone: str) -> IncidentView:
    return IncidentView(
        id=row.id, key=row.key, kind=row.kind, state=row.state, board=row.board_slug,
        school=row.school_slug, school_name=row.school_display, board_id=row.board_id,
        school_id=row.school_id, connection_id=row.connection_id, agent_id=row.agent_id,
        room_id=row.room_id, parent_id=row.parent_id, provider_id=row.provider_id,
        provider=row.provider, responsible=row.responsible, started_at=row.started_at,
        detected_at=row.detected_at, last_evidence_at=row.last_evidence_at,
        acknowledged_at=row.acknowledged_at, escalated_at=row.escalated_at,
        restored_at=row.restored_at, closed_at=row.closed_at, resolution=row.resolution,
        resolution_note=row.resolution_note, ticket=row.ticket, impact=row.impact,
        urgency=row.urgency, sla_restore_seconds=row.sla_restore_seconds, sla_clock=row.sla_clock,
        sla_deadline_at=row.sla_deadline_at, assessment=row.assessment or {},
        findings=row.findings or {}, updated_at=row.updated_at,
        restore=restore_figures(row, calendar, now),
        timezone=str(calendar.zone) if calendar is not None else default_timezone,
        children=children, events=events)
