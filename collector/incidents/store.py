"""Incidents in the store: opened and refreshed from detection, merged provider-wide,
closed when the measurements recover, and moved through their lifecycle by people.

Every change writes an ``incident_events`` row (who, what, from which state to which, why)
and, for the changes people are told of, ``incident_notifications`` rows, in the same
transaction: a notification is never lost, and never sent for a change that was rolled back.

Lifecycle: open → acknowledged → escalated, or open → escalated; any active state →
resolved or dismissed (with a reason). Anything else is refused with ``NotAllowedNow``.
A provider-wide incident passes what is done to it on to its active children (one
escalation, not fifty); their events say "via provider-wide incident N", and only the
parent notifies.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from collector.calendar import SchoolCalendar, load_calendar
from collector.contracts import ConnectionInfo
from collector.db.schema import agents, boards, connections, incident_events, incidents, schools
from collector.incidents.history import SchoolHistory
from collector.incidents.model import (
    ACTIVE_STATES,
    DETECTOR,
    LINE_KINDS,
    STATES,
    Detection,
    DetectionPolicy,
    Finding,
    provider_key,
)
from collector.incidents.notify import Channels, enqueue
from collector.incidents.sentences import Sentence, moment
from collector.registry import resolve_school
from collector.terms import Terms, terms_on

AssessFn = Callable[..., Any]


class IncidentError(ValueError):
    """An incident action that cannot be done; the message says why."""


class UnknownIncident(IncidentError):
    """No incident with that id (the API answers 404, the CLI exits 1)."""


class NotAllowedNow(IncidentError):
    """The move is not allowed from the incident's state (the API answers 409)."""


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


# --- detection → incidents ---------------------------------------------------------------


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
        row = _active_by_key(conn, key)
        if row is None:
            continue
        note = Sentence("resolved_itself", {"reason": _data(recovery.reason)})
        _close(conn, row, now, DETECTOR, "resolved", "recovered", note, channels,
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
        incidents.c.kind != "provider")).all()
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
            _event(conn, row.id, now, DETECTOR, "reassessed", row.state, row.state, note, None)
            changes.append(Change(row.id, row.key, row.kind, "reassessed", row.state, row.school_id,
                                  note.english()))
    return changes


def _open_or_refresh(conn: Connection, finding: Finding, history: SchoolHistory, assess_fn: AssessFn,
                     contact: Any, now: float, channels: Channels) -> Change | None:
    line = _line_of(finding, history.lines)
    existing = _active_by_key(conn, finding.key)
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
        incident_id = _insert(conn, values)
    except IntegrityError:
        # Another run opened it between our read and our insert: refresh that one.
        savepoint.rollback()
        existing = _active_by_key(conn, finding.key)
        if existing is None:
            raise
        return _refresh(conn, existing, finding, history, line, assess_fn, contact, now)
    savepoint.commit()
    note = opened_note(finding, history)
    _event(conn, incident_id, now, DETECTOR, "opened", None, "open", note, channels)
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
        _event(conn, row.id, now, DETECTOR, "reassessed", row.state, row.state, note, None)
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


def findings_document(finding: Finding) -> dict[str, Any]:
    """incidents.findings of a school's incident: the detector's figures and its
    corroboration, as they were at the last run: each {"code", "params", "text"} (the
    English beside the code; rows from before the codes hold the English alone)."""
    return {"figures": jsonable(finding.figures),
            "corroboration": [jsonable(c.as_document() if isinstance(c, Sentence) else c)
                              for c in finding.corroboration]}


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


def _data(said: Sentence | str | None) -> Any:
    """A sentence as a param of another (its {"code", "params"}), or a person's text as is."""
    return said.as_data() if isinstance(said, Sentence) else said


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
            "sla_deadline_at": _finite(assessment.sla_deadline_at)}


def assessment_document(assessment: Any, now: float) -> dict[str, Any]:
    """incidents.assessment: the Assessment as JSON, each reason also in English, and when."""
    document = jsonable(assessment)
    reasons = []
    for reason in getattr(assessment, "reasons", ()):
        entry = jsonable(reason)
        if not isinstance(entry, dict):
            entry = {"code": None, "params": {}, "text": str(reason)}
        entry.setdefault("text", _english(reason))
        reasons.append(entry)
    document["reasons"] = reasons
    document["sla_deadline_at"] = _finite(getattr(assessment, "sla_deadline_at", None))
    document["assessed_at"] = now
    return document


def _english(reason: Any) -> str:
    english = getattr(reason, "english", None)
    if callable(english):
        return str(english())
    try:
        from collector.incidents import impact

        helper = getattr(impact, "english", None)
        if callable(helper):
            return str(helper(reason))
    except ImportError:
        pass
    return str(reason)


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples, mappings and numbers as plain JSON values (no NaN or inf:
    JSON has none; a missing figure is null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return _finite(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# --- provider-wide -------------------------------------------------------------------------


def merge_provider_wide(conn: Connection, now: float, policy: DetectionPolicy, *,
                        channels: Channels | None = None, default_timezone: str = "UTC") -> list[Change]:
    """Link the line incidents of schools on one provider that began together to one
    provider-wide incident, and resolve provider-wide incidents whose children are all
    closed. In the caller's write transaction.

    A line incident merges while it is active, and also once closed by a recovery (within
    the detection lookback): an outage is mostly reported after it ended (the agent cannot
    upload while the line is down), so its school incident opens and resolves in one run.
    A provider-wide incident of only closed incidents is created resolved: its "opened"
    event notifies no one, its "resolved" event (which says it was detected after it ended)
    is the one notification. A closed incident that arrives later joins it.

    Schools whose every agent went silent together (the line down, nothing can upload) get
    a provider-wide incident of kind "silent": suspected, not proven; it resolves when the
    agents report again, saying what their outage records showed."""
    channels = channels or Channels()
    changes = _close_finished_parents(conn, now, channels, silent=False)
    changes += _follow_children(conn, now)
    since = now - policy.lookback_seconds
    candidates = conn.execute(
        select(incidents).where(
            incidents.c.kind.in_(LINE_KINDS), incidents.c.responsible == "provider",
            incidents.c.school_id.is_not(None), incidents.c.provider_id.is_not(None),
            or_(incidents.c.closed_at.is_(None),
                and_(incidents.c.resolution == "recovered", incidents.c.restored_at.is_not(None),
                     incidents.c.closed_at >= since)))
        .order_by(incidents.c.started_at, incidents.c.id)).all()
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in candidates:
        groups.setdefault((row.provider_id, row.kind), []).append(row)
    for (provider_id, kind), rows in groups.items():
        changes += _merge_line_group(conn, provider_id, kind, rows, now, policy, channels, default_timezone)
    changes += _merge_silent(conn, now, policy, channels)
    changes += _close_finished_parents(conn, now, channels, silent=True, policy=policy,
                                       default_timezone=default_timezone)
    return changes


def _merge_line_group(conn: Connection, provider_id: str, kind: str, rows: list[Any], now: float,
                      policy: DetectionPolicy, channels: Channels, default_timezone: str) -> list[Change]:
    """One provider's line incidents of one kind: the loose ones join a provider-wide
    incident they began with (an active one; a closed one only takes closed incidents), the
    rest form new ones where enough schools began together."""
    loose = [row for row in rows if row.parent_id is None]
    if not loose:
        return []
    key = provider_key(provider_id, kind)  # type: ignore[arg-type]
    # Its provider-wide incidents, the active one first: a person's dismissal or
    # resolution by hand is theirs to keep, so only those closed by recovery take more.
    parents = conn.execute(select(incidents).where(
        incidents.c.key == key, or_(incidents.c.closed_at.is_(None), incidents.c.resolution == "recovered"))
        .order_by(incidents.c.closed_at.is_not(None), incidents.c.started_at.desc())).all()
    joining: dict[int, list[Any]] = {}
    rest = []
    for row in loose:
        parent = next((p for p in parents if (p.closed_at is None or row.closed_at is not None)
                       and abs(row.started_at - p.started_at) <= policy.provider_merge_seconds), None)
        if parent is None:
            rest.append(row)
        else:
            joining.setdefault(parent.id, []).append(row)
    changes = []
    for parent in parents:
        if parent.id in joining:
            changes += _adopt(conn, parent, joining[parent.id], now)
    active_parent = any(p.closed_at is None for p in parents)
    while group := _first_group(rest, policy):
        taken = {row.id for row in group}
        rest = [row for row in rest if row.id not in taken]
        ongoing = any(row.closed_at is None for row in group)
        if ongoing and active_parent:
            continue  # one active provider-wide incident per provider and kind (the key)
        changes += _open_parent(conn, provider_id, kind, group, now, channels, default_timezone)
        active_parent = active_parent or ongoing
    return changes


def _first_group(rows: list[Any], policy: DetectionPolicy) -> list[Any]:
    """The earliest run of incidents (oldest first) that began within the merge window of
    the first and covers enough distinct schools; [] when there is none."""
    for i, first in enumerate(rows):
        run = [row for row in rows[i:] if row.started_at - first.started_at <= policy.provider_merge_seconds]
        if len({row.school_id for row in run}) >= policy.provider_min_schools:
            return run
    return []


def _most_urgent(children: Sequence[Any]) -> tuple[str, str]:
    """(urgency, impact) of a provider-wide incident: its most urgent school's, and
    teaching when any school's lessons are hit."""
    urgencies = {row.urgency for row in children}
    urgency = next(u for u in ("high", "normal", "low") if u in urgencies or u == "low")
    impact = "teaching" if any(row.impact == "teaching" for row in children) else "administration"
    return urgency, impact


def _follow_children(conn: Connection, now: float) -> list[Change]:
    """An active provider-wide incident is as urgent as its most urgent active school: the
    schools are reassessed every run (the SLA running out, lessons starting), and the one
    escalation for all of them must say so. Not a suspected one from silence: its children
    are the agents' silence ("administration" for each school), its urgency that of a line
    down in lessons at all of them, as set when it opened."""
    changes = []
    parents = conn.execute(select(incidents).where(
        incidents.c.kind == "provider", incidents.c.closed_at.is_(None))).all()
    for parent in parents:
        children = _active_children(conn, parent.id)
        if not children or _is_silent_parent(parent):
            continue
        urgency, impact = _most_urgent(children)
        if (urgency, impact) == (parent.urgency, parent.impact):
            continue
        assessment = dict(parent.assessment or {})
        assessment.update(urgency=urgency, impact=impact, assessed_at=now)
        conn.execute(update(incidents).where(incidents.c.id == parent.id).values(
            urgency=urgency, impact=impact, assessment=assessment, updated_at=now))
        if urgency != parent.urgency:
            note = Sentence("urgency_followed", {"from": parent.urgency, "to": urgency})
            _event(conn, parent.id, now, DETECTOR, "reassessed", parent.state, parent.state, note, None)
            changes.append(Change(parent.id, parent.key, parent.kind, "reassessed", parent.state, None,
                                  note.english()))
    return changes


def _is_silent_parent(row: Any) -> bool:
    return row.kind == "provider" and (row.findings or {}).get("kind") == "silent"


def _open_parent(conn: Connection, provider_id: str, kind: str, children: list[Any], now: float,
                 channels: Channels, default_timezone: str) -> list[Change]:
    board_ids = {row.board_id for row in children}
    urgency, impact = _most_urgent(children)
    key = provider_key(provider_id, kind)  # type: ignore[arg-type]
    document = _parent_findings(conn, provider_id, kind, children)
    provider = children[0].provider
    # Every school's incident closed by a recovery already: the provider-wide one is over
    # too (detected after it ended), restored when the last school was.
    over = all(row.closed_at is not None for row in children)
    started = min(row.started_at for row in children)
    restored = max(row.restored_at for row in children) if over else None
    assessment = {"impact": impact, "urgency": urgency, "assessed_at": now,
                  "reasons": [{"code": "provider_wide", "params": {"schools": document["school_count"]},
                               "text": f"{document['school_count']} schools of {provider} "
                                       f"have {_a(kind)} incident that began within the same period"}],
                  "supplier": provider, "contact": None,
                  "sla_restore_seconds": None, "sla_clock": None, "sla_deadline_at": None}
    values = {"key": key, "kind": "provider", "board_id": board_ids.pop() if len(board_ids) == 1 else None,
              "school_id": None, "provider_id": provider_id, "provider": provider,
              "responsible": "provider", "state": "open", "started_at": started, "detected_at": now,
              "last_evidence_at": max(row.last_evidence_at for row in children),
              "impact": impact, "urgency": urgency, "assessment": assessment,
              "sla_restore_seconds": None, "sla_clock": None, "sla_deadline_at": None,
              "findings": document, "updated_at": now}
    savepoint = conn.begin_nested()
    try:
        parent_id = _insert(conn, values)
    except IntegrityError:
        savepoint.rollback()  # a concurrent run opened it; the next run adopts the rest
        return []
    savepoint.commit()
    names = list(dict.fromkeys(entry["school_name"] for entry in document["schools"]))
    span = _span_params(conn, children[0].school_id, started, restored, default_timezone)
    note = Sentence("provider_opened", {
        "count": document["school_count"], "provider": provider, "kind": kind, "schools": names,
        "suspected_parent": _silent_parent_of(conn, provider_id, started, children), "over": over, **span})
    # Over already: its one notification is the "resolved" below, not an "opened" too.
    _event(conn, parent_id, now, DETECTOR, "opened", None, "open", note, None if over else channels)
    changes = [Change(parent_id, key, "provider", "opened", "open", None, note.english())]
    parent = conn.execute(select(incidents).where(incidents.c.id == parent_id)).one()
    for child in children:
        changes.append(_link(conn, parent, child, now))
    if over:
        closing = Sentence("provider_over", {"provider": provider, "kind": kind,
                                             "count": document["school_count"], **span})
        _close(conn, parent, now, DETECTOR, "resolved", "recovered", closing, channels, restored_at=restored)
        changes.append(Change(parent_id, key, "provider", "resolved", "resolved", None, closing.english()))
    return changes


def _a(kind: str) -> str:
    return ("an " if kind[:1] in "aeiou" else "a ") + kind


def _span_params(conn: Connection, school_pk: int, start: float, end: float | None,
                 default_timezone: str) -> dict[str, Any]:
    """{"start", "end"}: a period as moments in the school's zone (sentences.py words it
    "from Tue 3 Mar 2026 10:00 to 10:40 (CET)")."""
    calendar = load_calendar(conn, school_pk, default_timezone)
    return {"start": moment(start, calendar), "end": None if end is None else moment(end, calendar)}


def _silent_parent_of(conn: Connection, provider_id: str, started: float,
                      children: Sequence[Any]) -> int | None:
    """The provider-wide incident suspected from silence that this one of the line proves:
    the same provider, one of the same schools, begun within the hour of its silence."""
    schools_of = {row.school_id for row in children}
    for parent in conn.execute(select(incidents).where(
            incidents.c.key == provider_key(provider_id, "silent")).order_by(incidents.c.id.desc())):
        members = set(conn.scalars(select(incidents.c.school_id).where(incidents.c.parent_id == parent.id)))
        if members & schools_of and abs(parent.started_at - started) <= SILENCE_MATCH_SECONDS:
            return int(parent.id)
    return None


def _adopt(conn: Connection, parent: Any, joining: list[Any], now: float) -> list[Change]:
    changes = [_link(conn, parent, child, now) for child in joining]
    children = conn.execute(select(incidents).where(incidents.c.parent_id == parent.id)).all()
    kind = (parent.findings or {}).get("kind") or joining[0].kind
    document = _parent_findings(conn, parent.provider_id, kind, children)
    if _is_silent_parent(parent):
        document.update(_silence_document(parent.findings or {}))
    values: dict[str, Any] = {
        "findings": document, "updated_at": now,
        "started_at": min(parent.started_at, *(row.started_at for row in joining)),
        "last_evidence_at": max(parent.last_evidence_at, *(row.last_evidence_at for row in joining))}
    if parent.closed_at is not None:
        # Over already (closed incidents only join a closed one): restored when the last was.
        values["restored_at"] = max(row.restored_at or row.closed_at for row in children)
    conn.execute(update(incidents).where(incidents.c.id == parent.id).values(**values))
    names = list(dict.fromkeys(_school_name(conn, row.school_id) for row in joining))
    note = Sentence("joined", {"schools": names, "after_end": parent.closed_at is not None})
    _event(conn, parent.id, now, DETECTOR, "merged", parent.state, parent.state, note, None)
    return changes


def _link(conn: Connection, parent: Any, child: Any, now: float) -> Change:
    """A school's incident becomes part of the provider-wide one: it takes on what was done
    to the parent already (its ticket; acknowledged or escalated), so one escalation holds.
    A closed school incident keeps its state: it is over."""
    values: dict[str, Any] = {"parent_id": parent.id, "updated_at": now}
    state = child.state
    if parent.ticket and not child.ticket:
        values["ticket"] = parent.ticket
    if child.closed_at is None and _rank(parent.state) > _rank(child.state):
        state = parent.state
        values["state"] = state
        values[f"{state}_at"] = now
    conn.execute(update(incidents).where(incidents.c.id == child.id).values(**values))
    note = Sentence("part_of_provider", {"parent": parent.id})
    _event(conn, child.id, now, DETECTOR, "merged", child.state, state, note, None)
    return Change(child.id, child.key, child.kind, "merged", state, child.school_id, note.english())


def _rank(state: str) -> int:
    return {"open": 0, "acknowledged": 1, "escalated": 2}.get(state, -1)


def _parent_findings(conn: Connection, provider_id: str, kind: str, children: Sequence[Any]
                     ) -> dict[str, Any]:
    """incidents.findings of a provider-wide incident: its schools and their figures."""
    entries = []
    for row in sorted(children, key=lambda r: (r.started_at, r.id)):
        board, school, name = _school_ref(conn, row.school_id)
        entries.append({"incident_id": row.id, "board": board, "school": school, "school_name": name,
                        "state": row.state, "started_at": row.started_at,
                        "restored_at": row.restored_at,
                        "figures": (row.findings or {}).get("figures", {})})
    return {"provider_id": provider_id, "kind": kind,
            "school_count": len({row.school_id for row in children}), "schools": entries}


# --- provider-wide, suspected from silence ----------------------------------------------------

# A silent parent and the provider-wide outage that proves it began within this of each
# other: the agents' last reports before the line went are a minute or so before its start.
SILENCE_MATCH_SECONDS = 3600.0


@dataclass(frozen=True)
class _SilentSchool:
    school_pk: int
    provider_id: str
    provider: str
    went_silent: float  # when its last agent stopped reporting
    rows: tuple[Any, ...]  # its agents' silent incidents


def _merge_silent(conn: Connection, now: float, policy: DetectionPolicy, channels: Channels) -> list[Change]:
    """Schools whose every agent is silent, on one main-line provider, gone silent within
    the merge window of each other: one provider-wide incident, suspected from the silence
    (the line down stops every upload; the agents' outage records come once it is back)."""
    rows = conn.execute(select(incidents).where(
        incidents.c.kind == "silent", incidents.c.closed_at.is_(None), incidents.c.school_id.is_not(None))
        .order_by(incidents.c.started_at, incidents.c.id)).all()
    by_school: dict[int, list[Any]] = {}
    for row in rows:
        by_school.setdefault(row.school_id, []).append(row)
    silent_schools: dict[str, list[_SilentSchool]] = {}
    for school_pk, school_rows in by_school.items():
        measuring = set(conn.scalars(select(agents.c.id).where(agents.c.school_id == school_pk,
                                                                 agents.c.revoked_at.is_(None))))
        if not measuring or not measuring <= {row.agent_id for row in school_rows}:
            continue  # an agent still reports: the line is there
        line = _main_line(conn, school_pk)
        if line is None:
            continue
        silent_schools.setdefault(line.provider_id, []).append(_SilentSchool(
            school_pk, line.provider_id, line.provider, max(row.started_at for row in school_rows),
            tuple(school_rows)))
    changes: list[Change] = []
    for provider_id, found in silent_schools.items():
        found.sort(key=lambda s: (s.went_silent, s.school_pk))
        parent = _active_by_key(conn, provider_key(provider_id, "silent"))
        if parent is not None:
            window = policy.provider_merge_seconds
            joining = [row for s in found if abs(s.went_silent - parent.started_at) <= window
                       for row in s.rows if row.parent_id is None]
            if joining:
                changes += _adopt(conn, parent, joining, now)
            continue
        for i, first in enumerate(found):
            group = [s for s in found[i:]
                     if s.went_silent - first.went_silent <= policy.provider_merge_seconds]
            if len(group) >= policy.provider_min_schools:
                changes += _open_silent_parent(conn, provider_id, group, now, policy, channels)
                break
    return changes


def _main_line(conn: Connection, school_pk: int) -> Any:
    """The school's main line (its only line, or its one line of role "main"); None if unclear."""
    lines = conn.execute(select(connections.c.provider_id, connections.c.provider, connections.c.role)
                         .where(connections.c.school_id == school_pk)).all()
    if len(lines) == 1:
        return lines[0]
    mains = [line for line in lines if line.role == "main"]
    return mains[0] if len(mains) == 1 else None


def _silence_document(findings: Mapping[str, Any]) -> dict[str, Any]:
    return {"suspected": True, "basis": findings.get("basis"),
            "window_seconds": findings.get("window_seconds")}


def _open_silent_parent(conn: Connection, provider_id: str, group: list[_SilentSchool], now: float,
                        policy: DetectionPolicy, channels: Channels) -> list[Change]:
    children = [row for s in group for row in s.rows]
    provider = group[0].provider
    n = len(group)
    basis = (f"every agent of {n} schools on {provider} went silent within "
             f"{policy.provider_merge_seconds / 3600:g} h of each other while the schools were in session; "
             "an outage of the line is suspected from this simultaneous silence, not yet proven: the "
             "agents' own outage records will say what happened once they can report again")
    document = _parent_findings(conn, provider_id, "silent", children)
    document.update(suspected=True, basis=basis, window_seconds=policy.provider_merge_seconds)
    board_ids = {row.board_id for row in children}
    # Silent in lessons at every school: if the line is down, the lessons are hit, and
    # that is urgent (as an outage in lessons is); each child alone is "monitoring only".
    impact, urgency = "teaching", "high"
    assessment = {"impact": impact, "urgency": urgency, "assessed_at": now,
                  "reasons": [{"code": "provider_silence",
                               "params": {"schools": n, "window_seconds": policy.provider_merge_seconds},
                               "text": basis[0].upper() + basis[1:] + "."}],
                  "supplier": provider, "contact": None,
                  "sla_restore_seconds": None, "sla_clock": None, "sla_deadline_at": None}
    key = provider_key(provider_id, "silent")
    values = {"key": key, "kind": "provider", "board_id": board_ids.pop() if len(board_ids) == 1 else None,
              "school_id": None, "provider_id": provider_id, "provider": provider,
              "responsible": "provider", "state": "open", "started_at": min(s.went_silent for s in group),
              "detected_at": now, "last_evidence_at": now, "impact": impact, "urgency": urgency,
              "assessment": assessment, "sla_restore_seconds": None, "sla_clock": None,
              "sla_deadline_at": None, "findings": document, "updated_at": now}
    savepoint = conn.begin_nested()
    try:
        parent_id = _insert(conn, values)
    except IntegrityError:
        savepoint.rollback()
        return []
    savepoint.commit()
    note = Sentence("silence_opened", {
        "schools": [_school_name(conn, s.school_pk) for s in group], "count": n, "provider": provider,
        "window_seconds": policy.provider_merge_seconds})
    _event(conn, parent_id, now, DETECTOR, "opened", None, "open", note, channels)
    changes = [Change(parent_id, key, "provider", "opened", "open", None, note.english())]
    parent = conn.execute(select(incidents).where(incidents.c.id == parent_id)).one()
    for child in children:
        changes.append(_link(conn, parent, child, now))
    return changes


# --- provider-wide, closing -----------------------------------------------------------------


def _close_finished_parents(conn: Connection, now: float, channels: Channels, *, silent: bool,
                            policy: DetectionPolicy | None = None,
                            default_timezone: str = "UTC") -> list[Change]:
    """Resolve the active provider-wide incidents whose children are all closed: those of
    the line (``silent`` False) before merging, those suspected from silence after (so the
    provider-wide outage their agents' records prove exists to be named)."""
    parents = conn.execute(select(incidents).where(
        incidents.c.kind == "provider", incidents.c.closed_at.is_(None))).all()
    changes = []
    for parent in parents:
        if _is_silent_parent(parent) != silent:
            continue
        note = None
        if silent:
            note = _silence_over_note(conn, parent, policy or DetectionPolicy(), default_timezone)
        change = _close_parent_if_done(conn, parent, now, channels, note=note)
        if change is not None:
            changes.append(change)
    return changes


def _silence_over_note(conn: Connection, parent: Any, policy: DetectionPolicy,
                       default_timezone: str) -> Sentence:
    """What the agents said once they could report again: the provider-wide outage their
    records make (the suspicion proven), the outages of only some schools, or none."""
    children = conn.execute(select(incidents.c.school_id, incidents.c.restored_at)
                            .where(incidents.c.parent_id == parent.id)).all()
    schools_of = {row.school_id for row in children}
    n = len(schools_of)
    # A silent agent that was revoked closed without reporting again (no restore time).
    said = {"count": n, "revoked": not all(row.restored_at is not None for row in children)}
    outages = conn.execute(select(incidents).where(
        incidents.c.kind == "outage", incidents.c.school_id.in_(schools_of),
        incidents.c.started_at >= parent.started_at - SILENCE_MATCH_SECONDS,
        incidents.c.started_at <= parent.last_evidence_at).order_by(incidents.c.started_at)).all()
    proven = next((row.parent_id for row in outages if row.parent_id is not None), None)
    if proven is not None:
        wide = conn.execute(select(incidents).where(incidents.c.id == proven)).one()
        count = (wide.findings or {}).get("school_count")
        span = _span_params(conn, outages[0].school_id, wide.started_at, wide.restored_at, default_timezone)
        return Sentence("silence_over_proven", {**said, "provider": wide.provider, "wide_count": count,
                                                "wide_id": wide.id, **span})
    if outages:
        return Sentence("silence_over_partial", {
            **said, "schools": list(dict.fromkeys(_school_name(conn, row.school_id) for row in outages)),
            "incidents": [row.id for row in outages]})
    return Sentence("silence_over_unproven", said)


def _close_parent_if_done(conn: Connection, parent: Any, now: float, channels: Channels, *,
                          note: Sentence | None = None) -> Change | None:
    children = conn.execute(select(incidents.c.closed_at, incidents.c.restored_at)
                            .where(incidents.c.parent_id == parent.id)).all()
    if not children or any(child.closed_at is None for child in children):
        return None
    restored = max(child.restored_at or child.closed_at for child in children)
    note = note or Sentence("children_closed", {"count": len(children)})
    _close(conn, parent, now, DETECTOR, "resolved", "recovered", note, channels, restored_at=restored)
    return Change(parent.id, parent.key, parent.kind, "resolved", "resolved", None, note.english())


# --- lifecycle ------------------------------------------------------------------------------

# action: (the states it may start from, the state it leads to)
MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("open",), "acknowledged"),
    "escalate": (("open", "acknowledged"), "escalated"),
    "resolve": (ACTIVE_STATES, "resolved"),
    "dismiss": (ACTIVE_STATES, "dismissed"),
}
PAST = {"acknowledge": "acknowledged", "escalate": "escalated", "resolve": "resolved",
        "dismiss": "dismissed"}


class InvalidInput(IncidentError):
    """What a person typed breaks action_input.py's limits (the API answers 422)."""


# incident_events.actor holds this much: a name (action_input.MAX_BY) and where it came from.
MAX_ACTOR = 200


def _checked_actor(actor: str) -> str:
    """Who did it: one line, not empty. The CLI and the API check what people type before
    they call here; the store checks again, so no other caller slips past (action_input.py)."""
    from collector.incidents.action_input import InputError, check_line

    try:
        checked = check_line("actor", actor, MAX_ACTOR)
    except InputError as exc:
        raise InvalidInput(str(exc)) from None
    if checked is None:
        raise InvalidInput("actor: say who does it")
    return checked


def _checked_text(what: str, value: str | None) -> str | None:
    from collector.incidents.action_input import InputError, check_text

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
    _event(conn, row.id, now, actor, "note", row.state, row.state, note, None)
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
    _event(conn, row.id, now, actor, "ticket", row.state, row.state, _via(note, via), None)
    if via is None:
        for child in _active_children(conn, row.id):
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
        _close(conn, row, now, actor, target, "manual" if target == "resolved" else "dismissed",
               _via(note, via), None if via else channels, ticket=ticket)
    else:
        values: dict[str, Any] = {"state": target, f"{target}_at": now, "updated_at": now}
        if ticket:
            values["ticket"] = ticket
        conn.execute(update(incidents).where(incidents.c.id == row.id).values(**values))
        said = _via(note, via)
        if ticket:
            said = Sentence("ticket_with_note", {"ticket": ticket, "note": _data(said)})
        _event(conn, row.id, now, actor, PAST[action], row.state, target, said, None if via else channels)
    if via is None:
        # A provider-wide incident: the same for its active children (where the move fits).
        for child in _active_children(conn, row.id):
            if child.state in sources:
                _move(conn, child.id, action, actor, note, now, channels, ticket=ticket, via=row.id)
        if row.parent_id is not None and target in ("resolved", "dismissed"):
            parent = conn.execute(select(incidents).where(incidents.c.id == row.parent_id)).one()
            if parent.closed_at is None:
                _close_parent_if_done(conn, parent, now, channels)


def _close(conn: Connection, row: Any, now: float, actor: str, state: str, resolution: str,
           note: Sentence | str | None, channels: Channels | None, *, restored_at: float | None = None,
           ticket: str | None = None) -> None:
    values: dict[str, Any] = {"state": state, "closed_at": now, "resolution": resolution,
                              "resolution_note": _said(note),
                              "updated_at": now}
    if restored_at is not None:
        values["restored_at"] = restored_at
    if ticket:
        values["ticket"] = ticket
    conn.execute(update(incidents).where(incidents.c.id == row.id).values(**values))
    _event(conn, row.id, now, actor, state, row.state, state, note, channels)


def _via(note: Sentence | str | None, via: int | None) -> Sentence | str | None:
    if via is None:
        return note
    return Sentence("via_provider", {"parent": via, "note": _data(note)})


def _said(note: Sentence | str | None) -> str | None:
    return note.english() if isinstance(note, Sentence) else note


def _check_ticket(ticket: str | None) -> str | None:
    from collector.incidents.action_input import MAX_TICKET, InputError, check_line

    try:
        return check_line("ticket", ticket, MAX_TICKET)
    except InputError as exc:
        raise InvalidInput(str(exc)) from None


def _event(conn: Connection, incident_id: int, now: float, actor: str, action: str,
           from_state: str | None, to_state: str | None, note: Sentence | str | None,
           channels: Channels | None) -> int:
    """One event; a Sentence note is stored as its English (note) and its code (data)."""
    data = note.as_data() if isinstance(note, Sentence) else None
    key = conn.execute(incident_events.insert().values(
        incident_id=incident_id, at=now, actor=actor, action=action, from_state=from_state,
        to_state=to_state, note=_said(note),
        data=data)).inserted_primary_key
    assert key is not None
    event_id = int(key[0])
    if channels is not None:
        enqueue(conn, channels, incident_id, event_id, action, now)
    return event_id


def _insert(conn: Connection, values: dict[str, Any]) -> int:
    key = conn.execute(incidents.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _row(conn: Connection, incident_id: int) -> Any:
    from collector.incidents.action_input import MAX_ID

    # An id beyond SQL's integers is no incident (SQLite would overflow, not answer).
    if isinstance(incident_id, bool) or not isinstance(incident_id, int) or not 1 <= incident_id <= MAX_ID:
        raise UnknownIncident(f"no incident {incident_id!r} (see: incident list)")
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
    if row is None:
        raise UnknownIncident(f"no incident {incident_id} (see: incident list)")
    return row


def _active_by_key(conn: Connection, key: str) -> Any:
    return conn.execute(select(incidents).where(incidents.c.key == key,
                                                incidents.c.closed_at.is_(None))).first()


def _active_children(conn: Connection, parent_id: int) -> list[Any]:
    return list(conn.execute(select(incidents).where(incidents.c.parent_id == parent_id,
                                                     incidents.c.closed_at.is_(None))
                             .order_by(incidents.c.id)).all())


def _school_ref(conn: Connection, school_pk: int) -> tuple[str, str, str]:
    row = conn.execute(select(boards.c.slug.label("board"), schools.c.slug, schools.c.name)
                       .join(boards, boards.c.id == schools.c.board_id)
                       .where(schools.c.id == school_pk)).one()
    return row.board, row.slug, row.name


def _school_name(conn: Connection, school_pk: int) -> str:
    return _school_ref(conn, school_pk)[2]


# --- reading --------------------------------------------------------------------------------


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
                   now: float | None = None) -> list[IncidentView]:
    """Incidents, newest first; ``school`` is SCHOOL or BOARD/SCHOOL (RegistryError when
    unknown); ``states`` None = every state."""
    query = _view_query().order_by(incidents.c.started_at.desc(), incidents.c.id.desc())
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
