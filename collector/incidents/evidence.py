"""The evidence pack's document: one incident, everything the store holds about it.

``evidence_document`` reads the incident row (its findings and assessment as detection and
the assessment wrote them), its events, and the school's history over the incident's
period (from two hours before it began to an hour after it was restored, or now), and
returns one JSON-able, language-neutral dict: numbers in base units (bytes per second,
seconds, ratios where 1 = 100 %), every time as ``{"seconds": unix, "local": ISO with
offset}`` in the school's zone. The web page, the PDF, the CSV and the JSON are all drawn
from it, so they cannot disagree. Nothing is made up: what the store does not hold is
None, and the pages say "not measured".

LAN-versus-provider evidence is the connectivity windows reduced per agent to buckets of
five minutes (an hour when the period is longer than a day, so a week-long incident stays
readable): the gateway's loss and round trip next to the internet targets'. The CSV's
``windows`` table has every window itself.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from copy import deepcopy
from math import isfinite
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from collector.calendar import DEFAULT_DAY, SchoolCalendar, load_calendar
from collector.contracts import ConnectionInfo
from collector.db.schema import agents, boards, incident_events, incidents, schools
from collector.incidents.contacts import board_escalation, escalation_contact
from collector.incidents.history import BandwidthTest, SchoolHistory, Window, load_history
from collector.incidents.model import DetectionPolicy
from collector.incidents.sentences import say
from collector.incidents.views import restore_figures
from collector.terms import DIRECTIONS, LEVELS, Terms, terms_on

DOCUMENT_VERSION = 1
# The period around the incident the pack shows: what came before it, and after.
BEFORE_SECONDS = 2 * 3600.0
AFTER_SECONDS = 3600.0
# Buckets of the LAN-versus-provider table (see the module docstring).
BUCKET_SECONDS = 300.0
LONG_PERIOD_BUCKET_SECONDS = 3600.0
LONG_PERIOD_SECONDS = 24 * 3600.0
# A bandwidth test is matched with the testing agent's connectivity window this near.
GATEWAY_MATCH_SECONDS = 300.0


class IncidentNotFound(LookupError):
    def __init__(self, incident_pk: int) -> None:
        super().__init__(f"no incident {incident_pk}")


# --- small helpers ---------------------------------------------------------------------------


def stamp(t: float | None, calendar: SchoolCalendar) -> dict[str, Any] | None:
    """A time as Unix seconds and the school's local ISO time with its offset."""
    if t is None:
        return None
    return {"seconds": t, "local": calendar.local_datetime(t).isoformat(timespec="seconds")}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _first(mapping: Mapping[str, Any], *names: str) -> Any:
    """The first of ``names`` present and not None (the figures' keys are the detectors')."""
    for name in names:
        value = mapping.get(name)
        if value is not None:
            return value
    return None


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


# --- the document ----------------------------------------------------------------------------


def evidence_document(
    conn: Connection,
    incident_pk: int,
    now: float,
    default_timezone: str,
    policy: DetectionPolicy | None = None,
) -> dict[str, Any]:
    """The evidence pack of one incident (see the module docstring); IncidentNotFound."""
    policy = policy or DetectionPolicy()
    row = conn.execute(select(incidents).where(incidents.c.id == incident_pk)).first()
    if row is None:
        raise IncidentNotFound(incident_pk)
    school_pk: int | None = row.school_id
    calendar = (
        load_calendar(conn, school_pk, default_timezone)
        if school_pk is not None
        else SchoolCalendar(ZoneInfo(default_timezone), DEFAULT_DAY, ())
    )
    findings = row.findings if isinstance(row.findings, dict) else {}
    figures: dict[str, Any] = findings["figures"] if isinstance(findings.get("figures"), dict) else findings
    assessment = row.assessment if isinstance(row.assessment, dict) else {}
    end_of_problem = row.restored_at or row.closed_at or now
    start, end = (
        row.started_at - BEFORE_SECONDS,
        min(end_of_problem + AFTER_SECONDS, max(now, row.started_at)),
    )
    history = load_history(conn, school_pk, start, end, default_timezone) if school_pk is not None else None
    line = _line_of(history, row.connection_id) if history is not None else None
    terms = terms_on(line.terms, calendar.local_date(row.started_at)) if line else None
    counted = _counted_ids(figures)
    measurements: list[dict[str, Any]] = []
    if history is not None:
        nearby = WindowsByAgent(history.windows)
        measurements = [
            _measurement(t, history, calendar, counted, nearby)
            for t in history.tests
            if line is None or t.connection_pk in (line.id, None)
        ]
    children = _children(conn, incident_pk, calendar) if row.kind == "provider" else []
    document: dict[str, Any] = {
        "version": DOCUMENT_VERSION,
        "generated_at": stamp(now, calendar),
        "timezone": str(calendar.zone),
        "period": {"start": stamp(start, calendar), "end": stamp(end, calendar)},
        "incident": _incident(conn, row, assessment, calendar, terms, now),
        "school": _school(conn, row.school_id, row.board_id),
        "line": _line_document(line, terms),
        "rule": _rule(row, figures, measurements, history, policy, now, len(children)),
        "figures": figures,
        # The English sentences (what the JSON's readers see), and each as its code with params
        # for the pages and the PDF to say in their language (sentences.in_language).
        "corroboration": [_english(c) for c in findings.get("corroboration") or ()],
        "corroboration_coded": list(findings.get("corroboration") or ()),
        "measurements": measurements,
        "lan_evidence": _lan_evidence(history, calendar, policy, start, end),
        "outages": [_outage(o, calendar) for o in history.outages] if history else [],
        "devices": _devices(history, calendar) if history else {"counts": [], "peak": None, "median": None},
        "readings": _readings(history, calendar, row.room_id) if history else [],
        "events": _events(conn, incident_pk, calendar),
        "children": children,
    }
    document["incident"]["resolution_data"] = _resolution_data(row, document["events"])
    return EvidenceDocument(document, history, default_timezone)


class EvidenceDocument(dict[str, Any]):
    """The document, a plain dict to all its readers (the JSON, the pages, the PDF), that
    also keeps the history it was built from: the CSV of every window (export.py) then does
    not read a week of windows from the store a second time. The history is not part of
    the document's content, and is read, never changed."""

    def __init__(
        self, content: Mapping[str, Any], history: SchoolHistory | None, default_timezone: str
    ) -> None:
        super().__init__(content)
        self.history = history
        self.default_timezone = default_timezone

    def __deepcopy__(self, memo: dict[int, Any]) -> EvidenceDocument:
        # A copy of the content to change (the language tests do); the history is shared.
        return EvidenceDocument(deepcopy(dict(self), memo), self.history, self.default_timezone)


def _english(sentence: Any) -> str:
    """A stored sentence in English: its text beside the code, or (older rows) itself."""
    if isinstance(sentence, Mapping):
        return say(sentence, "en")
    return str(sentence)


def _resolution_data(row: Any, events: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The code of the resolution note, where the store wrote it: the closing event's data
    (the note a person typed has none, and stays as typed)."""
    if row.closed_at is None:
        return None
    for event in reversed(events):
        if event["action"] == row.state and event["to_state"] == row.state:
            data = event.get("data")
            return dict(data) if isinstance(data, Mapping) and event["note"] == row.resolution_note else None
    return None


def _line_of(history: SchoolHistory, connection_pk: int | None) -> ConnectionInfo | None:
    if connection_pk is not None:
        for line in history.lines:
            if line.id == connection_pk:
                return line
    mains = [line for line in history.lines if line.role == "main"]
    candidates = mains or history.lines
    return candidates[0] if candidates else None


def _counted_ids(figures: Mapping[str, Any]) -> set[int]:
    """The result ids the detector decided on (``tests``: ids, or dicts with result_id)."""
    ids: set[int] = set()
    for test in figures.get("tests") or ():
        value = test.get("result_id") if isinstance(test, Mapping) else test
        if isinstance(value, int) and not isinstance(value, bool):
            ids.add(value)
    return ids


def _incident(
    conn: Connection,
    row: Any,
    assessment: Mapping[str, Any],
    calendar: SchoolCalendar,
    terms: Terms | None,
    now: float,
) -> dict[str, Any]:
    supplier = assessment.get("supplier")
    contact = _contact(conn, row.school_id, row.board_id, assessment)
    return {
        "id": row.id,
        "key": row.key,
        "kind": row.kind,
        "state": row.state,
        "responsible": row.responsible,
        "parent_id": row.parent_id,
        "provider": row.provider,
        "provider_id": row.provider_id,
        "started_at": stamp(row.started_at, calendar),
        "detected_at": stamp(row.detected_at, calendar),
        "last_evidence_at": stamp(row.last_evidence_at, calendar),
        "acknowledged_at": stamp(row.acknowledged_at, calendar),
        "escalated_at": stamp(row.escalated_at, calendar),
        "restored_at": stamp(row.restored_at, calendar),
        "closed_at": stamp(row.closed_at, calendar),
        "resolution": row.resolution,
        "resolution_note": row.resolution_note,
        "ticket": row.ticket,
        "impact": row.impact,
        "urgency": row.urgency,
        # Each with the school's zone, so its times read "(CET)" as the pack's others do.
        "reasons": [{**_reason(r), "zone": str(calendar.zone)} for r in assessment.get("reasons") or ()],
        "supplier": supplier if isinstance(supplier, (dict, str)) else None,
        "escalation_contact": contact,
        "sla": _sla(row, calendar, terms if row.responsible == "provider" else None, now),
    }


def _reason(reason: Any) -> dict[str, Any]:
    """A reason of the assessment as {code, params, text}: it may be stored as that, as a
    [code, params] pair, or as an English sentence alone."""
    if isinstance(reason, Mapping):
        return {
            "code": reason.get("code"),
            "params": dict(reason.get("params") or {}),
            "text": reason.get("text") or reason.get("english"),
        }
    if isinstance(reason, (list, tuple)) and len(reason) == 2 and isinstance(reason[0], str):
        params = reason[1] if isinstance(reason[1], Mapping) else {}
        return {"code": reason[0], "params": dict(params), "text": None}
    return {"code": None, "params": {}, "text": str(reason)}


def _contact(
    conn: Connection, school_pk: int | None, board_pk: int | None, assessment: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Who contacts the provider: the registry's contact now, else the one the assessment
    recorded when the incident was assessed. A provider-wide incident has no school: the
    board's central ICT contact, where its board escalates centrally, is the one escalation."""
    if school_pk is not None:
        found = escalation_contact(conn, school_pk)
        if found is not None:
            return found.as_document()
    elif board_pk is not None:
        central = board_escalation(conn, board_pk)
        if central.mode == "central" and (central.email or central.phone):
            return {"name": central.name, "email": central.email, "phone": central.phone, "role": "central"}
    stored = assessment.get("contact")
    return dict(stored) if isinstance(stored, Mapping) else None


def _sla(row: Any, calendar: SchoolCalendar, terms: Terms | None, now: float) -> dict[str, Any]:
    """The time to restore allowed and taken, wall seconds and on the SLA's clock, as the
    lifecycle computes it (collector/incidents/views.py restore_figures)."""
    figures = restore_figures(row, calendar, now)
    allowed = row.sla_restore_seconds
    if allowed is None and terms is not None:
        allowed = terms.sla_restore_seconds
    return {
        "restore_seconds": allowed,
        "clock": row.sla_clock or getattr(terms, "sla_clock", None) or "24x7",
        "deadline": stamp(row.sla_deadline_at, calendar),
        "restored": figures["restored_at"] is not None,
        "time_to_restore_seconds": figures["wall_seconds"],
        "time_to_restore_sla_seconds": figures["sla_seconds"],
        "met": figures["met"],
    }


def _school(conn: Connection, school_pk: int | None, board_pk: int | None) -> dict[str, Any] | None:
    board = (
        conn.execute(select(boards.c.slug, boards.c.name).where(boards.c.id == board_pk)).first()
        if board_pk is not None
        else None
    )
    if school_pk is None:
        return {"board": board.slug, "board_name": board.name, "id": None, "name": None} if board else None
    row = conn.execute(
        select(schools, boards.c.slug.label("board_slug"), boards.c.name.label("board_name"))
        .join(boards, boards.c.id == schools.c.board_id)
        .where(schools.c.id == school_pk)
    ).first()
    if row is None:
        return None
    return {
        "board": row.board_slug,
        "board_name": row.board_name,
        "id": row.slug,
        "name": row.name,
        "external_id": row.external_id,
        "address": row.address,
        "postcode": row.postcode,
        "city": row.city,
        "pupils": row.pupils,
    }


def _line_document(line: ConnectionInfo | None, terms: Terms | None) -> dict[str, Any] | None:
    if line is None:
        return None
    return {
        "id": line.slug,
        "provider": line.provider,
        "provider_id": line.provider_id,
        "technology": line.technology,
        "role": line.role,
        "support_contact": line.support_contact,
        "networks": list(line.networks),
        "terms": _terms(terms),
    }


def _terms(terms: Terms | None) -> dict[str, Any] | None:
    if terms is None:
        return None
    return {
        "starts_on": terms.starts_on.isoformat(),
        "ends_on": terms.ends_on.isoformat() if terms.ends_on else None,
        **{
            direction: {f"{level}_bytes_per_second": terms.speed(direction, level) for level in LEVELS}
            for direction in DIRECTIONS
        },
        "monthly_cost": terms.monthly_cost,
        "currency": terms.currency,
        "sla_response_seconds": terms.sla_response_seconds,
        "sla_restore_seconds": terms.sla_restore_seconds,
        "sla_clock": getattr(terms, "sla_clock", None) or "24x7",
    }


def _measurement(
    test: BandwidthTest,
    history: SchoolHistory,
    calendar: SchoolCalendar,
    counted: set[int],
    nearby: WindowsByAgent,
) -> dict[str, Any]:
    line = next((line for line in history.lines if line.id == test.connection_pk), None)
    terms = terms_on(line.terms, calendar.local_date(test.measured_at)) if line else None

    def ratio(rate: float | None, direction: str) -> float | None:
        advertised = terms.speed(direction, "advertised") if terms else None  # type: ignore[arg-type]
        return rate / advertised if rate is not None and advertised else None

    gateway = _window_near(nearby, test.agent_pk, test.measured_at)
    return {
        "result_id": test.result_id,
        "measured_at": stamp(test.measured_at, calendar),
        "in_session": test.in_session,
        "counted": test.result_id in counted,
        "agent": test.agent_slug,
        "source": test.source,
        "line": line.slug if line else None,
        "attribution": test.attribution,
        "backend": test.backend,
        "server": test.server,
        "streams": test.streams,
        "valid": test.valid,
        "invalid_reasons": list(test.invalid_reasons),
        "download_bytes_per_second": test.download_bytes_per_second,
        "upload_bytes_per_second": test.upload_bytes_per_second,
        "download_ratio": ratio(test.download_bytes_per_second, "download"),
        "upload_ratio": ratio(test.upload_bytes_per_second, "upload"),
        "advertised_download_bytes_per_second": terms.download_advertised if terms else None,
        "advertised_upload_bytes_per_second": terms.upload_advertised if terms else None,
        "retest_server": test.retest_server,
        "retest_download_bytes_per_second": test.retest_download_bytes_per_second,
        "retest_upload_bytes_per_second": test.retest_upload_bytes_per_second,
        "retest_download_ratio": ratio(test.retest_download_bytes_per_second, "download"),
        "retest_upload_ratio": ratio(test.retest_upload_bytes_per_second, "upload"),
        "retest_error": test.retest_error,
        "idle_latency_seconds": test.idle_latency_seconds,
        "concurrent_devices": test.concurrent_devices,
        "interface_wireless": test.interface_wireless,
        "download_cross_traffic_bytes": test.download_cross_traffic_bytes,
        "upload_cross_traffic_bytes": test.upload_cross_traffic_bytes,
        "leased": test.leased,
        "gateway_loss_ratio": gateway.gateway_loss_ratio if gateway else None,
        "gateway_latency_p50_seconds": gateway.gateway_latency_p50_seconds if gateway else None,
    }


class WindowsByAgent:
    """The period's windows of each agent sorted by start, so that matching a test with
    its agent's window bisects to the few that can be near it instead of scanning every
    window of the period (a week is 10,080 of them an agent) for each test."""

    # Room for rounding at the edges of the range bisected: a window just inside it is
    # then judged by _window_near's own arithmetic, the same as before.
    SLACK_SECONDS = 1.0

    def __init__(self, windows: Sequence[Window]) -> None:
        by_agent: dict[int, list[tuple[float, int, Window]]] = defaultdict(list)
        for order, w in enumerate(windows):
            # A window whose start is not a finite number is near no time (its distance is
            # never a number within the match); left out, it cannot upset the sort.
            if isfinite(w.start):
                by_agent[w.agent_pk].append((w.start, order, w))
        self._entries: dict[int, list[tuple[float, int, Window]]] = {}
        self._starts: dict[int, list[float]] = {}
        # How far an agent's windows reach after their start (and before it, for a
        # negative length, which the store does not forbid): the range to bisect.
        self._reach: dict[int, tuple[float, float]] = {}
        for agent_pk, entries in by_agent.items():
            entries.sort(key=lambda e: (e[0], e[1]))
            self._entries[agent_pk] = entries
            self._starts[agent_pk] = [e[0] for e in entries]
            self._reach[agent_pk] = (
                max((e[2].seconds for e in entries if e[2].seconds > 0), default=0.0),
                max((-e[2].seconds for e in entries if e[2].seconds < 0), default=0.0),
            )

    def around(self, agent_pk: int | None, t: float) -> list[Window]:
        """The agent's windows that can be within GATEWAY_MATCH_SECONDS of ``t``, in the
        order of the history (which decides between two equally near)."""
        if agent_pk is None or agent_pk not in self._starts:
            return []
        starts = self._starts[agent_pk]
        after, before = self._reach[agent_pk]
        margin = GATEWAY_MATCH_SECONDS + self.SLACK_SECONDS
        low = bisect_left(starts, t - margin - after)
        high = bisect_right(starts, t + margin + before)
        return [e[2] for e in sorted(self._entries[agent_pk][low:high], key=lambda e: e[1])]


def _window_near(nearby: WindowsByAgent, agent_pk: int | None, t: float) -> Window | None:
    """The testing agent's window nearest ``t`` within GATEWAY_MATCH_SECONDS (the one
    covering it when there is one; of two as near, the earlier in the history)."""
    best: tuple[float, Window] | None = None
    for w in nearby.around(agent_pk, t):
        distance = (
            0.0 if w.start <= t < w.start + w.seconds else min(abs(t - w.start), abs(t - w.start - w.seconds))
        )
        if distance <= GATEWAY_MATCH_SECONDS and (best is None or distance < best[0]):
            best = (distance, w)
    return best[1] if best else None


# --- the rule that was broken ----------------------------------------------------------------


def _rule(
    row: Any,
    figures: Mapping[str, Any],
    measurements: Sequence[Mapping[str, Any]],
    history: SchoolHistory | None,
    policy: DetectionPolicy,
    now: float,
    children: int,
) -> dict[str, Any]:
    """The rule, its threshold and what was measured against it: from the detector's figures,
    and where those do not say, from the stored measurements the incident was decided on."""
    kind = row.kind
    rule: dict[str, Any] = {"kind": kind}
    if kind == "bandwidth":
        direction = figures.get("direction") if figures.get("direction") in DIRECTIONS else "download"
        counted = [m for m in measurements if m["counted"]] or [
            m
            for m in measurements
            if m["valid"]
            and m["in_session"]
            and m[f"{direction}_ratio"] is not None
            and m["measured_at"]["seconds"] >= row.started_at
        ]
        threshold = _number(_first(figures, "threshold_ratio", "rule_ratio")) or policy.bandwidth_ratio
        median = _number(_first(figures, "median_ratio", "ratio"))
        if median is None:
            median = _median(m[f"{direction}_ratio"] for m in counted)
        servers = sorted(
            {m["server"] for m in counted} | {m["retest_server"] for m in counted if m["retest_server"]}
        )
        rule.update(
            quantity="ratio",
            comparison="below",
            direction=direction,
            threshold=threshold,
            measured=median,
            tests=len(counted),
            servers=servers,
            in_session=all(m["in_session"] for m in counted) if counted else None,
            median_bytes_per_second=_median(m[f"{direction}_bytes_per_second"] for m in counted),
            advertised_bytes_per_second=_number(figures.get("advertised_bytes_per_second"))
            or _median(m[f"advertised_{direction}_bytes_per_second"] for m in counted),
        )
    elif kind == "outage":
        start = _number(figures.get("start")) or row.started_at
        end = _number(figures.get("end")) or row.restored_at
        duration = _number(figures.get("duration_seconds"))
        if duration is None:
            duration = (end if end is not None else now) - start
        rule.update(
            quantity="seconds",
            comparison="at_least",
            outage_kind=figures.get("kind"),
            threshold=_number(_first(figures, "threshold_seconds", "min_seconds"))
            or policy.outage_min_seconds,
            measured=duration,
            ongoing=bool(figures.get("ongoing")) and row.restored_at is None,
        )
    elif kind in ("loss", "latency"):
        loss = kind == "loss"
        named = "threshold_ratio" if loss else "threshold_seconds"
        threshold = _number(_first(figures, "threshold", named)) or (
            policy.loss_ratio if loss else policy.latency_seconds
        )
        measured = _number(
            _first(
                figures,
                *(
                    ("median", "median_loss_ratio", "loss_ratio")
                    if loss
                    else ("median", "median_latency_seconds", "latency_seconds")
                ),
            )
        )
        if measured is None and history is not None:
            windows = [
                w
                for w in history.windows
                if (row.agent_id is None or w.agent_pk == row.agent_id)
                and row.started_at <= w.start <= row.last_evidence_at
            ]
            measured = _median(
                w.targets_loss_ratio if loss else w.targets_latency_p50_seconds for w in windows
            )
        rule.update(
            quantity="ratio" if loss else "seconds",
            comparison="at_least",
            threshold=threshold,
            measured=measured,
            windows=_number(figures.get("windows")) or policy.quality_windows,
        )
    elif kind == "wifi":
        measured = _number(_first(figures, "median_signal_dbm", "median_dbm", "signal_dbm"))
        if measured is None and history is not None:
            measured = _median(
                r.signal_dbm for r in history.readings if r.room_pk == row.room_id and r.in_session
            )
        rule.update(
            quantity="dbm",
            comparison="below",
            threshold=_number(figures.get("threshold_dbm")) or policy.wifi_poor_dbm,
            measured=measured,
            room=figures.get("room"),
            room_name=figures.get("room_name") or figures.get("room"),
            observations=_number(figures.get("observations")),
        )
    elif kind == "silent":
        agent = next((a for a in history.agents if a.pk == row.agent_id), None) if history else None
        last = agent.last_report_at if agent else _number(figures.get("last_report_at"))
        if last is None:
            # Never reported: silent since it was enrolled (as the detector counts it).
            last = agent.created_at if agent else _number(figures.get("enrolled_at"))
        rule.update(
            quantity="seconds",
            comparison="at_least",
            threshold=_number(_first(figures, "threshold_seconds", "silent_after_seconds"))
            or policy.silent_after_seconds,
            measured=None if last is None else (row.restored_at or now) - last,
            agent=agent.slug if agent else figures.get("agent"),
        )
    elif kind == "provider":
        rule.update(
            quantity="schools",
            comparison="at_least",
            threshold=policy.provider_min_schools,
            measured=children,
            child_kind=figures.get("kind"),
        )
    return rule


# --- the LAN against the provider ------------------------------------------------------------


def _gateway_fine(w: Window, policy: DetectionPolicy) -> bool | None:
    if w.gateway_loss_ratio is None:
        return None
    return w.gateway_loss_ratio < policy.gateway_loss_max and (
        w.gateway_latency_p50_seconds is None
        or w.gateway_latency_p50_seconds < policy.gateway_latency_max_seconds
    )


def _lan_evidence(
    history: SchoolHistory | None, calendar: SchoolCalendar, policy: DetectionPolicy, start: float, end: float
) -> dict[str, Any]:
    windows = history.windows if history else []
    size = LONG_PERIOD_BUCKET_SECONDS if end - start > LONG_PERIOD_SECONDS else BUCKET_SECONDS
    groups: dict[tuple[str, float], list[Window]] = defaultdict(list)
    for w in windows:
        groups[(w.agent_slug, w.start - w.start % size)].append(w)
    buckets = []
    for (agent, bucket_start), members in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        sent = sum(w.targets_sent for w in members)
        received = sum(w.targets_received for w in members)
        worst = max(members, key=lambda w: (w.segment not in (None, "none"), w.down_seconds or 0.0))
        fine = [_gateway_fine(w, policy) for w in members]
        buckets.append(
            {
                "agent": agent,
                "start": stamp(bucket_start, calendar),
                "seconds": size,
                "windows": len(members),
                "gateway_loss_ratio": _mean(w.gateway_loss_ratio for w in members),
                "gateway_latency_p50_seconds": _median(w.gateway_latency_p50_seconds for w in members),
                "gateway_fine": None if all(f is None for f in fine) else all(f is not False for f in fine),
                "targets_loss_ratio": None if sent == 0 else 1 - received / sent,
                "targets_latency_p50_seconds": _median(w.targets_latency_p50_seconds for w in members),
                "down_seconds": sum(w.down_seconds or 0.0 for w in members),
                "segment": worst.segment,
                "segment_reason": worst.segment_reason,
                "access_hop_address": next(
                    (w.access_hop_address for w in members if w.access_hop_address), None
                ),
            }
        )
    gateway = [_gateway_fine(w, policy) for w in windows]
    judged = [g for g in gateway if g is not None]
    sent = sum(w.targets_sent for w in windows)
    received = sum(w.targets_received for w in windows)
    summary = {
        "windows": len(windows),
        "windows_with_gateway": len(judged),
        "gateway_fine_windows": sum(1 for g in judged if g),
        "gateway_loss_ratio_max": max(
            (w.gateway_loss_ratio for w in windows if w.gateway_loss_ratio is not None), default=None
        ),
        "gateway_latency_p50_seconds_max": max(
            (w.gateway_latency_p50_seconds for w in windows if w.gateway_latency_p50_seconds is not None),
            default=None,
        ),
        "targets_loss_ratio": None if sent == 0 else 1 - received / sent,
        "lan_windows": sum(1 for w in windows if w.segment == "lan"),
        "provider_windows": sum(1 for w in windows if w.segment in ("access", "beyond")),
        "gateway_addresses": sorted({w.gateway_address for w in windows if w.gateway_address}),
        "access_hop_addresses": sorted({w.access_hop_address for w in windows if w.access_hop_address}),
        "gateway_loss_max_rule": policy.gateway_loss_max,
        "gateway_latency_max_rule_seconds": policy.gateway_latency_max_seconds,
    }
    return {
        "bucket_seconds": size,
        "buckets": buckets,
        "summary": summary,
        "conclusion": _conclusion(summary),
    }


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _conclusion(summary: Mapping[str, Any]) -> str:
    """One code for the one-line conclusion (text.py words it):
    ``no_windows``: no connectivity windows in the period, nothing rules the LAN out;
    ``no_gateway``: windows, but no gateway was probed; ``lan_fine``: the gateway was fine
    in every window (the school network is not the cause); ``lan_trouble``: it was not in
    some (the school network may be part of it)."""
    if not summary["windows"]:
        return "no_windows"
    if not summary["windows_with_gateway"]:
        return "no_gateway"
    if summary["gateway_fine_windows"] == summary["windows_with_gateway"]:
        return "lan_fine"
    return "lan_trouble"


# --- outages, devices, events, the schools of a provider-wide incident -------------------------


def _outage(o: Any, calendar: SchoolCalendar) -> dict[str, Any]:
    return {
        "agent": o.agent_slug,
        "kind": o.kind,
        "start": stamp(o.start, calendar),
        "end": stamp(o.end, calendar),
        "duration_seconds": o.end - o.start,
        "ongoing": o.ongoing,
        "detail": o.detail,
    }


def _devices(history: SchoolHistory, calendar: SchoolCalendar) -> dict[str, Any]:
    slugs = {a.pk: a.slug for a in history.agents}
    counts = [
        {
            "agent": slugs.get(d.agent_pk),
            "measured_at": stamp(d.measured_at, calendar),
            "concurrent_devices": d.concurrent_devices,
        }
        for d in history.devices
    ]
    values = [d.concurrent_devices for d in history.devices]
    return {
        "counts": counts,
        "peak": max(values) if values else None,
        "median": statistics.median(values) if values else None,
    }


def _readings(history: SchoolHistory, calendar: SchoolCalendar, room_pk: int | None) -> list[dict[str, Any]]:
    """The Wi-Fi readings of the period: the incident's room's (every room's when it is about
    none). What a Wi-Fi incident is decided on; the agent's own link, no pupil's device."""
    slugs = {a.pk: a.slug for a in history.agents}
    return [
        {
            "room": r.room_slug,
            "room_name": r.room_name,
            "agent": slugs.get(r.agent_pk),
            "measured_at": stamp(r.measured_at, calendar),
            "in_session": r.in_session,
            "source": r.source,
            "signal_dbm": r.signal_dbm,
        }
        for r in history.readings
        if room_pk is None or r.room_pk == room_pk
    ]


def _events(conn: Connection, incident_pk: int, calendar: SchoolCalendar) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(incident_events)
        .where(incident_events.c.incident_id == incident_pk)
        .order_by(incident_events.c.at, incident_events.c.id)
    )
    return [
        {
            "at": stamp(r.at, calendar),
            "actor": r.actor,
            "action": r.action,
            "from_state": r.from_state,
            "to_state": r.to_state,
            "note": r.note,
            "data": r.data if isinstance(r.data, dict) else None,
        }
        for r in rows
    ]


def _children(conn: Connection, incident_pk: int, calendar: SchoolCalendar) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            incidents,
            schools.c.slug.label("school_slug"),
            schools.c.name.label("school_name"),
            boards.c.slug.label("board_slug"),
        )
        .join(schools, schools.c.id == incidents.c.school_id, isouter=True)
        .join(boards, boards.c.id == incidents.c.board_id, isouter=True)
        .where(incidents.c.parent_id == incident_pk)
        .order_by(incidents.c.started_at, incidents.c.id)
    )
    children = []
    for r in rows:
        findings = r.findings if isinstance(r.findings, dict) else {}
        figures: dict[str, Any] = (
            findings["figures"] if isinstance(findings.get("figures"), dict) else findings
        )
        children.append(
            {
                "id": r.id,
                "board": r.board_slug,
                "school": r.school_slug,
                "school_name": r.school_name,
                "kind": r.kind,
                "state": r.state,
                "started_at": stamp(r.started_at, calendar),
                "restored_at": stamp(r.restored_at, calendar),
                "direction": figures.get("direction"),
                "median_ratio": _number(_first(figures, "median_ratio", "ratio")),
                "duration_seconds": _number(figures.get("duration_seconds")),
            }
        )
    return children


# --- lists of incidents (the pages' index) -----------------------------------------------------


def incident_list(
    conn: Connection,
    default_timezone: str,
    *,
    board: str | None = None,
    school: str | None = None,
    states: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Incidents, active ones first, then newest first: what the list pages show."""
    query = (
        select(
            incidents.c.id,
            incidents.c.kind,
            incidents.c.state,
            incidents.c.started_at,
            incidents.c.restored_at,
            incidents.c.closed_at,
            incidents.c.urgency,
            incidents.c.impact,
            incidents.c.provider,
            incidents.c.school_id,
            incidents.c.parent_id,
            schools.c.slug.label("school"),
            schools.c.name.label("school_name"),
            boards.c.slug.label("board"),
            agents.c.slug.label("agent"),
        )
        .join(schools, schools.c.id == incidents.c.school_id, isouter=True)
        .join(boards, boards.c.id == incidents.c.board_id, isouter=True)
        .join(agents, agents.c.id == incidents.c.agent_id, isouter=True)
    )
    if board is not None:
        query = query.where(boards.c.slug == board)
    if school is not None:
        query = query.where(schools.c.slug == school)
    if states:
        query = query.where(incidents.c.state.in_(list(states)))
    rows = list(conn.execute(query))
    zones: dict[int | None, SchoolCalendar] = {}

    def calendar_of(school_pk: int | None) -> SchoolCalendar:
        if school_pk not in zones:
            zones[school_pk] = (
                load_calendar(conn, school_pk, default_timezone)
                if school_pk is not None
                else SchoolCalendar(ZoneInfo(default_timezone), DEFAULT_DAY, ())
            )
        return zones[school_pk]

    rows.sort(key=lambda r: (r.closed_at is not None, -r.started_at, -r.id))
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "state": r.state,
            "board": r.board,
            "school": r.school,
            "school_name": r.school_name,
            "provider": r.provider,
            "agent": r.agent,
            "urgency": r.urgency,
            "impact": r.impact,
            "parent_id": r.parent_id,
            "started_at": stamp(r.started_at, calendar_of(r.school_id)),
            "restored_at": stamp(r.restored_at, calendar_of(r.school_id)),
            "closed_at": stamp(r.closed_at, calendar_of(r.school_id)),
        }
        for r in rows
    ]
