"""Provider-wide incidents: the line incidents of schools on one provider that began together
linked to one incident of the provider, the one suspected from the simultaneous silence of
their agents, each as urgent as its most urgent school, and resolved once its schools' are
all closed. What run.py calls after every school's detection, in its write transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from collector.calendar import load_calendar
from collector.db.schema import agents, boards, connections, incidents, schools
from collector.incidents.changes import (
    Change,
    active_by_key,
    active_children,
    close_incident,
    insert_incident,
    write_event,
)
from collector.incidents.model import DETECTOR, LINE_KINDS, DetectionPolicy, provider_key
from collector.incidents.notify import Channels
from collector.incidents.sentences import Sentence, moment


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
        children = active_children(conn, parent.id)
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
            write_event(conn, parent.id, now, DETECTOR, "reassessed", parent.state, parent.state, note, None)
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
        parent_id = insert_incident(conn, values)
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
    write_event(conn, parent_id, now, DETECTOR, "opened", None, "open", note, None if over else channels)
    changes = [Change(parent_id, key, "provider", "opened", "open", None, note.english())]
    parent = conn.execute(select(incidents).where(incidents.c.id == parent_id)).one()
    for child in children:
        changes.append(_link(conn, parent, child, now))
    if over:
        closing = Sentence("provider_over", {"provider": provider, "kind": kind,
                                             "count": document["school_count"], **span})
        close_incident(conn, parent, now, DETECTOR, "resolved", "recovered", closing, channels,
                       restored_at=restored)
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
    write_event(conn, parent.id, now, DETECTOR, "merged", parent.state, parent.state, note, None)
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
    write_event(conn, child.id, now, DETECTOR, "merged", child.state, state, note, None)
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
        parent = active_by_key(conn, provider_key(provider_id, "silent"))
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
        parent_id = insert_incident(conn, values)
    except IntegrityError:
        savepoint.rollback()
        return []
    savepoint.commit()
    note = Sentence("silence_opened", {
        "schools": [_school_name(conn, s.school_pk) for s in group], "count": n, "provider": provider,
        "window_seconds": policy.provider_merge_seconds})
    write_event(conn, parent_id, now, DETECTOR, "opened", None, "open", note, channels)
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
        change = close_parent_if_done(conn, parent, now, channels, note=note)
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


def close_parent_if_done(conn: Connection, parent: Any, now: float, channels: Channels, *,
                         note: Sentence | None = None) -> Change | None:
    """Resolve a provider-wide incident once all its children are closed (by detection, or
    by a person closing the last one: lifecycle.py), restored when the last one was."""
    children = conn.execute(select(incidents.c.closed_at, incidents.c.restored_at)
                            .where(incidents.c.parent_id == parent.id)).all()
    if not children or any(child.closed_at is None for child in children):
        return None
    restored = max(child.restored_at or child.closed_at for child in children)
    note = note or Sentence("children_closed", {"count": len(children)})
    close_incident(conn, parent, now, DETECTOR, "resolved", "recovered", note, channels,
                   restored_at=restored)
    return Change(parent.id, parent.key, parent.kind, "resolved", "resolved", None, note.english())


def _school_ref(conn: Connection, school_pk: int) -> tuple[str, str, str]:
    row = conn.execute(select(boards.c.slug.label("board"), schools.c.slug, schools.c.name)
                       .join(boards, boards.c.id == schools.c.board_id)
                       .where(schools.c.id == school_pk)).one()
    return row.board, row.slug, row.name


def _school_name(conn: Connection, school_pk: int) -> str:
    return _school_ref(conn, school_pk)[2]
