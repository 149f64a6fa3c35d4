"""What the store holds of one school over a period, read once: the input of detection and
of the evidence pack alike, so the pack shows exactly what the incident was decided on.

Only what a provider may see leaves this module: the line's and the provider's addresses,
never a pupil's device (the agent sends none).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, literal, select

from collector.availability import ongoing_outage, recorded_outage
from collector.calendar import SchoolCalendar, load_calendar
from collector.contracts import ConnectionInfo, school_connections
from collector.db.schema import (
    agents,
    bandwidth_results,
    boards,
    latest,
    records,
    room_observations,
    rooms,
    schools,
)
from collector.exposition import stored_number


@dataclass(frozen=True)
class AgentState:
    pk: int
    slug: str
    name: str
    created_at: float
    last_report_at: float | None
    revoked: bool
    # True when its newest bandwidth test ran over a wired interface, False over Wi-Fi,
    # None when it never said (no bandwidth test in the store).
    wired: bool | None
    revoked_at: float | None = None


@dataclass(frozen=True)
class BandwidthTest:
    """One bandwidth result (bandwidth_results), with what its raw record adds."""

    result_id: int
    record_id: int | None
    agent_pk: int | None
    agent_slug: str | None
    connection_pk: int | None
    attribution: str
    source: str  # "agent" or "import"
    measured_at: float
    in_session: bool
    download_bytes_per_second: float | None
    upload_bytes_per_second: float | None
    valid: bool
    invalid_reasons: tuple[str, ...]
    backend: str
    server: str
    streams: int | None
    idle_latency_seconds: float | None
    concurrent_devices: int | None
    interface_wireless: bool | None
    download_cross_traffic_bytes: float | None
    upload_cross_traffic_bytes: float | None
    # The agent's retest on a second server (made when a direction came out below the
    # contract): None where none was made.
    retest_server: str | None
    retest_download_bytes_per_second: float | None
    retest_upload_bytes_per_second: float | None
    retest_error: str | None
    leased: bool | None


@dataclass(frozen=True)
class Window:
    """One connectivity window of one agent, reduced to what incidents judge."""

    agent_pk: int
    agent_slug: str
    start: float
    seconds: float
    up: bool | None
    down_seconds: float | None
    outage_kind: str | None
    segment: str | None
    segment_reason: str | None
    gateway_address: str | None
    gateway_loss_ratio: float | None
    gateway_latency_p50_seconds: float | None
    # Over the internet targets: sent and received pooled, loss = 1 - received / sent
    # (None when nothing was sent), and the median of the targets' median round trips.
    targets_sent: int
    targets_received: int
    targets_loss_ratio: float | None
    targets_latency_p50_seconds: float | None
    # The provider's first hop past the gateway that answered (its address), if any.
    access_hop_address: str | None


@dataclass(frozen=True)
class OutageSpan:
    agent_pk: int
    agent_slug: str
    kind: str  # isp, lan, dns, internet
    start: float
    end: float  # for one under way: the end of the agent's latest window
    ongoing: bool
    detail: str | None


@dataclass(frozen=True)
class DeviceCount:
    agent_pk: int
    measured_at: float
    concurrent_devices: int


@dataclass(frozen=True)
class RoomReading:
    room_pk: int
    room_slug: str
    room_name: str
    agent_pk: int
    measured_at: float
    in_session: bool
    source: str  # "agent" or "survey"
    signal_dbm: float | None


@dataclass
class SchoolHistory:
    school_pk: int
    board_pk: int
    board: str  # ids
    school: str
    school_name: str
    start: float
    end: float
    calendar: SchoolCalendar
    lines: list[ConnectionInfo]
    agents: list[AgentState]
    # Each list oldest first.
    tests: list[BandwidthTest] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    outages: list[OutageSpan] = field(default_factory=list)
    devices: list[DeviceCount] = field(default_factory=list)
    readings: list[RoomReading] = field(default_factory=list)


def load_history(conn: Connection, school_pk: int, start: float, end: float,
                 default_timezone: str) -> SchoolHistory:
    """Everything of the school measured in [start, end) (an outage: that touches it).

    One read per table, each bounded by the period and served by an index: the records by
    (agent, kind, time), the results by (school, time), the observations by (room, time).
    Raises LookupError for a school that is not in the store."""
    school = conn.execute(
        select(schools.c.id, schools.c.slug, schools.c.name, schools.c.board_id,
               boards.c.slug.label("board"))
        .join(boards, boards.c.id == schools.c.board_id).where(schools.c.id == school_pk)).first()
    if school is None:
        raise LookupError(f"no school with pk {school_pk}")
    calendar = load_calendar(conn, school_pk, default_timezone)
    sessions = Sessions(calendar)
    agent_list = _agents(conn, school_pk)
    slugs = {agent.pk: agent.slug for agent in agent_list}
    pks = sorted(slugs)
    return SchoolHistory(
        school_pk=school_pk, board_pk=school.board_id, board=school.board, school=school.slug,
        school_name=school.name, start=start, end=end, calendar=calendar,
        lines=school_connections(conn, school_pk), agents=agent_list,
        tests=_tests(conn, school_pk, start, end, slugs, sessions),
        windows=load_windows(conn, pks, start, end, slugs),
        outages=_outages(conn, pks, start, end, slugs),
        devices=_devices(conn, pks, start, end),
        readings=_readings(conn, school_pk, start, end, sessions))


class Sessions:
    """``in_session`` with each local date's school time looked up once: a day of a
    school is thousands of points on a handful of dates."""

    def __init__(self, calendar: SchoolCalendar) -> None:
        self.calendar = calendar
        self._by_date: dict[date, tuple[float, float] | None] = {}

    def in_session(self, t: float) -> bool:
        day = self.calendar.local_date(t)
        if day not in self._by_date:
            self._by_date[day] = self.calendar.session_on(day)
        session = self._by_date[day]
        return session is not None and session[0] <= t < session[1]


def _agents(conn: Connection, school_pk: int) -> list[AgentState]:
    # The newest successful bandwidth payload of each agent is kept at ingest (`latest`):
    # whether it tests over a wired interface costs no scan of its records.
    newest = (select(latest.c.agent_id, latest.c.payload)
              .where(latest.c.kind == "bandwidth").subquery())
    rows = conn.execute(
        select(agents.c.id, agents.c.slug, agents.c.name, agents.c.created_at,
               agents.c.last_report_at, agents.c.revoked_at, newest.c.payload)
        .outerjoin(newest, newest.c.agent_id == agents.c.id)
        .where(agents.c.school_id == school_pk).order_by(agents.c.id)).all()
    found = []
    for row in rows:
        wireless = _flag((row.payload or {}).get("interface_wireless")) if isinstance(
            row.payload, Mapping) else None
        found.append(AgentState(
            pk=row.id, slug=row.slug, name=row.name, created_at=row.created_at,
            last_report_at=row.last_report_at, revoked=row.revoked_at is not None,
            wired=None if wireless is None else not wireless, revoked_at=row.revoked_at))
    return found


def _tests(conn: Connection, school_pk: int, start: float, end: float, slugs: Mapping[int, str],
           sessions: Sessions) -> list[BandwidthTest]:
    # The raw record adds what the result row does not keep (streams, interface, cross
    # traffic, the retest); an imported result has no record, and those stay None.
    query = (select(bandwidth_results, records.c.payload)
             .outerjoin(records, records.c.id == bandwidth_results.c.record_id)
             .where(bandwidth_results.c.school_id == school_pk,
                    bandwidth_results.c.measured_at >= start, bandwidth_results.c.measured_at < end)
             .order_by(bandwidth_results.c.measured_at, bandwidth_results.c.id))
    tests = []
    for row in conn.execute(query):
        raw: Mapping[str, Any] = row.payload if isinstance(row.payload, Mapping) else {}
        streams = stored_number(raw.get("streams"))
        retest = raw.get("retest_server")
        retest_error = raw.get("retest_error")
        tests.append(BandwidthTest(
            result_id=row.id, record_id=row.record_id, agent_pk=row.agent_id,
            agent_slug=slugs.get(row.agent_id) if row.agent_id is not None else None,
            connection_pk=row.connection_id, attribution=row.attribution, source=row.source,
            measured_at=row.measured_at, in_session=sessions.in_session(row.measured_at),
            download_bytes_per_second=row.download_bytes_per_second,
            upload_bytes_per_second=row.upload_bytes_per_second,
            valid=bool(row.valid), invalid_reasons=tuple(str(r) for r in row.invalid_reasons or ()),
            backend=row.backend, server=row.server,
            streams=int(streams) if streams is not None else None,
            idle_latency_seconds=_float(raw.get("idle_latency_seconds")),
            concurrent_devices=row.concurrent_devices,
            interface_wireless=_flag(raw.get("interface_wireless")),
            download_cross_traffic_bytes=_float(raw.get("download_cross_traffic_bytes")),
            upload_cross_traffic_bytes=_float(raw.get("upload_cross_traffic_bytes")),
            retest_server=str(retest) if isinstance(retest, str) and retest else None,
            retest_download_bytes_per_second=_float(raw.get("retest_download_bytes_per_second")),
            retest_upload_bytes_per_second=_float(raw.get("retest_upload_bytes_per_second")),
            retest_error=str(retest_error) if isinstance(retest_error, str) else None,
            leased=_flag(raw.get("leased"))))
    return tests


def _kind_records(pks: Sequence[int], kind: str, start: float, end: float) -> Any:
    # The kind as a literal, as collector/availability.py does: SQLite then plans the
    # (agent, kind, time) index (and the partial index of outage records) at prepare time.
    return (select(records.c.agent_id, records.c.measured_at, records.c.payload)
            .where(records.c.agent_id.in_(list(pks)),
                   records.c.kind == literal(kind, literal_execute=True),
                   records.c.ok, records.c.measured_at >= start, records.c.measured_at < end)
            .order_by(records.c.measured_at, records.c.id))


def load_windows(conn: Connection, pks: Sequence[int], start: float, end: float,
                 slugs: Mapping[int, str]) -> list[Window]:
    """The connectivity windows of these agents (pk → slug) in [start, end), reduced, oldest
    first: what load_history reads, for a reader that needs only them."""
    if not pks:
        return []
    windows = []
    for row in conn.execute(_kind_records(pks, "connectivity", start, end)):
        window = reduce_window(row.agent_id, slugs[row.agent_id], row.measured_at, row.payload)
        if window is not None:
            windows.append(window)
    return windows


def reduce_window(agent_pk: int, agent_slug: str, measured_at: float, payload: Any) -> Window | None:
    """A stored connectivity payload (its record's clock is the window's start) reduced to
    what incidents judge; None for one without a length (not a window the agent sent)."""
    if not isinstance(payload, Mapping):
        return None
    seconds = _float(payload.get("window_seconds"))
    if seconds is None:
        return None
    gateway: Mapping[str, Any] = payload["gateway"] if isinstance(payload.get("gateway"), Mapping) else {}
    targets = [t for t in payload.get("targets") or () if isinstance(t, Mapping)
               and t.get("role", "internet") == "internet"]
    sent = sum(int(stored_number(t.get("sent")) or 0) for t in targets)
    received = sum(int(stored_number(t.get("received")) or 0) for t in targets)
    medians = [v for v in (_float(t.get("latency_p50_seconds")) for t in targets) if v is not None]
    return Window(
        agent_pk=agent_pk, agent_slug=agent_slug, start=measured_at, seconds=seconds,
        up=_flag(payload.get("up")), down_seconds=_float(payload.get("down_seconds")),
        outage_kind=_text(payload.get("outage_kind")), segment=_text(payload.get("segment")),
        segment_reason=_text(payload.get("segment_reason")),
        gateway_address=_text(gateway.get("address")),
        gateway_loss_ratio=_float(gateway.get("loss_ratio")),
        gateway_latency_p50_seconds=_float(gateway.get("latency_p50_seconds")),
        targets_sent=sent, targets_received=received,
        targets_loss_ratio=1.0 - received / sent if sent > 0 else None,
        targets_latency_p50_seconds=statistics.median(medians) if medians else None,
        access_hop_address=_access_hop(payload.get("hops")))


def _access_hop(hops: Any) -> str | None:
    answered = [h for h in hops or () if isinstance(h, Mapping) and h.get("segment") == "access"
                and isinstance(h.get("address"), str) and (stored_number(h.get("received")) or 0) > 0]
    answered.sort(key=lambda h: stored_number(h.get("ttl")) or 0)
    return str(answered[0]["address"]) if answered else None


def _outages(conn: Connection, pks: Sequence[int], start: float, end: float,
             slugs: Mapping[int, str]) -> list[OutageSpan]:
    """Ended outages that touch [start, end) from their records (whose clock is the end),
    and the one under way at each agent's latest window (from `latest`, kept at ingest)."""
    if not pks:
        return []
    spans = []
    # An outage record is sent when the outage ended: one that touches the period ended at
    # or after its start; it may have ended after `end` (a period in the past).
    ended = (select(records.c.agent_id, records.c.payload)
             .where(records.c.agent_id.in_(list(pks)),
                    records.c.kind == literal("outage", literal_execute=True),
                    records.c.ok, records.c.measured_at >= start))
    for row in conn.execute(ended):
        outage = recorded_outage(row.payload)
        if outage is not None and outage.start < end and outage.end >= start:
            spans.append(OutageSpan(row.agent_id, slugs[row.agent_id], outage.kind, outage.start,
                                    outage.end, False, _text(row.payload.get("detail"))))
    under_way = (select(latest.c.agent_id, latest.c.measured_at, latest.c.payload)
                 .where(latest.c.agent_id.in_(list(pks)), latest.c.kind == "connectivity"))
    for newest in conn.execute(under_way):
        if newest.measured_at is None or not isinstance(newest.payload, Mapping):
            continue
        outage = ongoing_outage(newest.payload, newest.measured_at)
        # Its end record may be in the store before the window that saw it end: then it
        # is over, and the record says so.
        ended_already = outage is not None and any(
            s.agent_pk == newest.agent_id and s.kind == outage.kind and abs(s.start - outage.start) < 1.0
            for s in spans)
        if outage is not None and not ended_already and outage.start < end and outage.end >= start:
            # The agent says what it saw in the window's segment reason; the outage's own
            # detail comes with its record when it ends.
            spans.append(OutageSpan(newest.agent_id, slugs[newest.agent_id], outage.kind,
                                    outage.start, outage.end, True,
                                    _text(newest.payload.get("segment_reason"))))
    spans.sort(key=lambda s: (s.start, s.agent_pk))
    return spans


def _devices(conn: Connection, pks: Sequence[int], start: float, end: float) -> list[DeviceCount]:
    if not pks:
        return []
    counts = []
    for row in conn.execute(_kind_records(pks, "users", start, end)):
        devices = stored_number(row.payload.get("concurrent_devices")) if isinstance(
            row.payload, Mapping) else None
        if devices is not None:
            counts.append(DeviceCount(row.agent_id, row.measured_at, int(devices)))
    return counts


def _readings(conn: Connection, school_pk: int, start: float, end: float,
              sessions: Sessions) -> list[RoomReading]:
    query = (select(room_observations.c.room_id, rooms.c.slug, rooms.c.name,
                    room_observations.c.agent_id, room_observations.c.measured_at,
                    room_observations.c.source, room_observations.c.signal_dbm)
             .join(rooms, rooms.c.id == room_observations.c.room_id)
             .where(rooms.c.school_id == school_pk, room_observations.c.measured_at >= start,
                    room_observations.c.measured_at < end)
             .order_by(room_observations.c.measured_at, room_observations.c.id))
    return [RoomReading(room_pk=row.room_id, room_slug=row.slug, room_name=row.name,
                        agent_pk=row.agent_id, measured_at=row.measured_at,
                        in_session=sessions.in_session(row.measured_at), source=row.source,
                        signal_dbm=row.signal_dbm) for row in conn.execute(query)]


def _float(value: Any) -> float | None:
    number = stored_number(value)
    return float(number) if number is not None else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
