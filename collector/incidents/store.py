"""Incidents from one school's detection: opened and refreshed from its findings, closed
when the measurements recover, and reassessed when a run says nothing of them. What
run.py calls per school, in its write transaction; the provider-wide merge after all
schools is provider_wide.py, people's actions lifecycle.py.

Every change writes its event (and queues its notifications) through changes.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from collector.calendar import SchoolCalendar
from collector.contracts import ConnectionInfo
from collector.db.schema import incidents
from collector.incidents.changes import (
    Change,
    active_by_key,
    close_incident,
    insert_incident,
    note_param,
    write_event,
)
from collector.incidents.documents import assessment_document, findings_document, finite
from collector.incidents.history import SchoolHistory
from collector.incidents.model import DETECTOR, Detection, Finding
from collector.incidents.notify import Channels
from collector.incidents.sentences import Sentence, moment
from collector.terms import Terms, terms_on

AssessFn = Callable[..., Any]


def apply_detection(conn: Connection, detection: Detection, history: SchoolHistory,
                    assess_fn: AssessFn | None, now: float, *,
                    channels: Channels | None = None) -> list[Change]:
    """Open, refresh or close the school's incidents from one detection (in the caller's
    write transaction). ``assess_fn``: impact.assess's signature (None = impact.assess)."""
    if assess_fn is None:
        from collector.incidents.impact import assess

        assess_fn = assess
    channels = channels or Channels()
    changes: list[Change] = []
    contact = _contact(conn, history.school_pk)
    for finding in detection.findings:
        change = _open_or_refresh(conn, finding, history, assess_fn, contact, now, channels)
        if change is not None:
            changes.append(change)
    for key, recovery in detection.recoveries.items():
        # Also a key found in this run: a problem over before it was seen (an outage the
        # agent could only report once the line was back) is opened and closed at once.
        row = active_by_key(conn, key)
        if row is None:
            continue
        note = Sentence("resolved_itself", {"reason": note_param(recovery.reason)})
        close_incident(conn, row, now, DETECTOR, "resolved", "recovered", note, channels,
                       restored_at=recovery.at if recovery.restored else None)
        changes.append(Change(row.id, key, row.kind, "resolved", "resolved", row.school_id, note.english()))
    changes += _reassess_unheard(conn, detection, history, assess_fn, contact, now)
    return changes


def _reassess_unheard(conn: Connection, detection: Detection, history: SchoolHistory,
                      assess_fn: AssessFn, contact: Any, now: float) -> list[Change]:
    """The school's active incidents this run said nothing of (over a weekend the line's
    tests of Friday leave the detector's day): no evidence either way, so they stay open,
    but their urgency and SLA are of now (Monday in lessons, the restore time nearly out),
    not of the last run that found them."""
    heard = {f.key for f in detection.findings}
    rows = conn.execute(select(incidents).where(
        incidents.c.school_id == history.school_pk, incidents.c.closed_at.is_(None),
        incidents.c.kind != "provider").with_for_update()).all()  # see changes.active_by_key
    changes = []
    for row in rows:
        if row.key in heard:
            continue
        line = next((line for line in history.lines if line.id == row.connection_id), None)
        assessment = _assess(assess_fn, row.kind, row.responsible, row.started_at, now, history.calendar,
                             _terms_at(line, history.calendar, row.started_at)
                             if row.responsible == "provider" else None, contact, line)
        values: dict[str, Any] = dict(assessment)
        if assessment["urgency"] != row.urgency or assessment["impact"] != row.impact:
            values["updated_at"] = now
        conn.execute(update(incidents).where(incidents.c.id == row.id).values(**values))
        if assessment["urgency"] != row.urgency:
            note = Sentence("urgency_changed", {"from": row.urgency, "to": assessment["urgency"]})
            write_event(conn, row.id, now, DETECTOR, "reassessed", row.state, row.state, note, None)
            changes.append(Change(row.id, row.key, row.kind, "reassessed", row.state, row.school_id,
                                  note.english()))
    return changes


def _open_or_refresh(conn: Connection, finding: Finding, history: SchoolHistory, assess_fn: AssessFn,
                     contact: Any, now: float, channels: Channels) -> Change | None:
    line = _line_of(finding, history.lines)
    existing = active_by_key(conn, finding.key)
    if existing is not None:
        return _refresh(conn, existing, finding, history, line, assess_fn, contact, now)
    if _closed_same_problem(conn, finding):
        return None
    assessment = _assess(assess_fn, finding.kind, finding.responsible, finding.started_at, now,
                         history.calendar, _terms_at(line, history.calendar, finding.started_at)
                         if finding.responsible == "provider" else None, contact, line)
    values = {
        "key": finding.key, "kind": finding.kind, "board_id": history.board_pk,
        "school_id": finding.school_pk, "connection_id": finding.connection_pk or (line.id if line else None),
        "agent_id": finding.agent_pk, "room_id": finding.room_pk, "parent_id": None,
        "provider_id": line.provider_id if line and finding.responsible == "provider" else None,
        "provider": line.provider if line and finding.responsible == "provider" else None,
        "responsible": finding.responsible, "state": "open", "started_at": finding.started_at,
        "detected_at": now, "last_evidence_at": finding.last_evidence_at,
        "findings": findings_document(finding), "updated_at": now, **assessment}
    savepoint = conn.begin_nested()
    try:
        incident_id = insert_incident(conn, values)
    except IntegrityError:
        # Another run opened it between our read and our insert: refresh that one.
        savepoint.rollback()
        existing = active_by_key(conn, finding.key)
        if existing is None:
            raise
        return _refresh(conn, existing, finding, history, line, assess_fn, contact, now)
    savepoint.commit()
    note = opened_note(finding, history)
    write_event(conn, incident_id, now, DETECTOR, "opened", None, "open", note, channels)
    return Change(incident_id, finding.key, finding.kind, "opened", "open", finding.school_pk, note.english())


def _refresh(conn: Connection, row: Any, finding: Finding, history: SchoolHistory,
             line: ConnectionInfo | None, assess_fn: AssessFn, contact: Any, now: float) -> Change:
    """Newer evidence for an active incident: its figures and urgency now; its state (an
    escalation under way) stays."""
    assessment = _assess(assess_fn, row.kind, row.responsible, row.started_at, now, history.calendar,
                         _terms_at(line, history.calendar, row.started_at)
                         if row.responsible == "provider" else None, contact, line)
    conn.execute(update(incidents).where(incidents.c.id == row.id).values(
        last_evidence_at=max(row.last_evidence_at, finding.last_evidence_at),
        findings=findings_document(finding), updated_at=now, **assessment))
    if assessment["urgency"] != row.urgency:
        note = Sentence("urgency_changed", {"from": row.urgency, "to": assessment["urgency"]})
        write_event(conn, row.id, now, DETECTOR, "reassessed", row.state, row.state, note, None)
        return Change(row.id, row.key, row.kind, "reassessed", row.state, row.school_id, note.english())
    return Change(row.id, row.key, row.kind, "refreshed", row.state, row.school_id)


def _closed_same_problem(conn: Connection, finding: Finding) -> bool:
    """Whether the newest incident of this key was already about this problem: dismissed
    after it began (a person said it is not one), or resolved by a recovery after it began
    (an ended outage stays in the period read for a day). A problem that begins later opens
    a new incident; one resolved by hand while the measurements still say otherwise too."""
    row = conn.execute(select(incidents.c.resolution, incidents.c.closed_at, incidents.c.restored_at)
                       .where(incidents.c.key == finding.key)
                       .order_by(incidents.c.id.desc()).limit(1)).first()
    if row is None:
        return False
    if row.resolution == "dismissed":
        return bool(finding.started_at <= row.closed_at)
    if row.resolution == "recovered" and row.restored_at is not None:
        return bool(finding.started_at < row.restored_at)
    return False


def opened_note(finding: Finding, history: SchoolHistory) -> Sentence:
    """The "opened" event's note: one plain sentence of what broke and by how much (the
    corroboration stays in the findings)."""
    f = finding.figures
    calendar = history.calendar
    try:
        if finding.kind == "bandwidth":
            tests = [t for t in f.get("tests") or () if isinstance(t, Mapping)]
            servers = {t.get("server") for t in tests} | {
                t.get("retest_server") for t in tests if t.get("retest_rate_bytes_per_second") is not None}
            return Sentence("opened_bandwidth", {
                "direction": f["direction"], "ratio": f["median_ratio"],
                "advertised_bytes_per_second": f["advertised_bytes_per_second"],
                "threshold": f["threshold_ratio"], "tests": len(tests),
                "servers": len(servers - {None})})
        if finding.kind == "outage":
            return Sentence("opened_outage", {
                "start": moment(f["start"], calendar), "seconds": f["duration_seconds"],
                "ongoing": bool(f["ongoing"]), "threshold_seconds": f["threshold_seconds"],
                "agents": list(f["agents"])})
        if finding.kind in ("loss", "latency"):
            return Sentence(f"opened_{finding.kind}", {
                "agent": f["agent"], "median": f["median"], "max": f["max"], "windows": f["windows"],
                "threshold": f["threshold"]})
        if finding.kind == "wifi":
            return Sentence("opened_wifi", {
                "room_name": f["room_name"], "median_dbm": f["median_signal_dbm"],
                "readings": f["observations"], "threshold_dbm": f["threshold_dbm"]})
        if finding.kind == "silent":
            last = f.get("last_report_at")
            return Sentence("opened_silent", {
                "agent": f["agent"],
                "since": moment(last if last is not None else f["enrolled_at"], calendar),
                "never": last is None, "seconds": f["silent_seconds"],
                "threshold_seconds": f["threshold_seconds"]})
    except (KeyError, TypeError):
        pass  # figures not as the detector writes them (a hand-made finding): say the kind
    return Sentence("opened", {"kind": finding.kind})


def _line_of(finding: Finding, lines: Sequence[ConnectionInfo]) -> ConnectionInfo | None:
    """The line a finding is about: its own, or the school's only (main) line."""
    if finding.connection_pk is not None:
        return next((line for line in lines if line.id == finding.connection_pk), None)
    if len(lines) == 1:
        return lines[0]
    mains = [line for line in lines if line.role == "main"]
    return mains[0] if len(mains) == 1 else None


def _terms_at(line: ConnectionInfo | None, calendar: SchoolCalendar, t: float) -> Terms | None:
    return terms_on(line.terms, calendar.local_date(t)) if line is not None else None


def _contact(conn: Connection, school_pk: int) -> Any:
    from collector.incidents.contacts import escalation_contact

    return escalation_contact(conn, school_pk)


def _assess(assess_fn: AssessFn, kind: str, responsible: str, started_at: float, now: float,
            calendar: SchoolCalendar, terms: Terms | None, contact: Any,
            line: ConnectionInfo | None) -> dict[str, Any]:
    """The incident's columns from impact.assess: impact, urgency, the SLA, and the whole
    assessment as JSON (incidents.assessment)."""
    assessment = assess_fn(kind, responsible, started_at, now, calendar, terms, contact,
                           line=line if responsible == "provider" else None)
    document = assessment_document(assessment, now)
    return {"impact": assessment.impact, "urgency": assessment.urgency, "assessment": document,
            "sla_restore_seconds": assessment.sla_restore_seconds, "sla_clock": assessment.sla_clock,
            "sla_deadline_at": finite(assessment.sla_deadline_at)}
