"""Bandwidth results: the rows verdicts read, written at ingest and by imports.

Every accepted successful ``bandwidth`` record becomes one ``bandwidth_results`` row in the
ingest transaction, attributed to the line it used (collector/attribution.py). Imports
write the same rows (collector/measurements_csv.py). ``reattribute`` redoes the agents'
attribution after the registry changed (a new line, new networks, a new pin).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, select, update

from agent.wire import Record
from collector.attribution import (
    Line,
    access_addresses_near,
    attribute,
    load_lines,
    newest_window,
    pin_for,
    pinned_connections,
)
from collector.db.schema import (
    bandwidth_results,
    connections,
    connectivity_first_windows,
    records,
    schools,
)

# Imports tied to a line by the file or the command line keep it when the registry changes.
IMPORT_ATTRIBUTION = "import"


@dataclass(frozen=True)
class StoredResult:
    id: int
    school_id: int
    agent_id: int | None
    record_id: int | None
    import_key: str | None
    source: str
    connection_id: int | None
    attribution: str
    measured_at: float
    download_bytes_per_second: float | None
    upload_bytes_per_second: float | None
    latency_seconds: float | None
    valid: bool
    invalid_reasons: tuple[str, ...]
    backend: str
    server: str
    concurrent_devices: int | None
    connection_slug: str | None


def record_results(conn: Connection, agent_id: int, school_id: int, accepted: list[Record],
                   default_timezone: str | None = None) -> None:
    """One result row per accepted successful bandwidth record of this batch (call inside
    the ingest transaction, after the records are inserted)."""
    tests = [record for record in accepted if record.kind == "bandwidth" and record.ok]
    if not tests:
        return
    ids = _record_ids(conn, agent_id, tests)
    lines = load_lines(conn, school_id)
    pins = pinned_connections(conn, school_id) if lines else {}
    zone = school_zone(conn, school_id, default_timezone) if lines else None
    windows = [(r.clock.wall_time_seconds, r.payload) for r in accepted
               if r.kind == "connectivity" and r.ok]
    # Evidence of the provider's network matters only where a line names its networks.
    # An agent that never sent a connectivity window (its probe off) has none to look up.
    wants_evidence = any(line.networks for line in lines) and (
        bool(windows) or conn.scalar(select(connectivity_first_windows.c.agent_id).where(
            connectivity_first_windows.c.agent_id == agent_id)) is not None)
    newest = newest_window(conn, agent_id) if wants_evidence else None
    rows = []
    for record in tests:
        measured_at = record.clock.wall_time_seconds
        payload = record.payload
        if lines and zone is not None:
            evidence = (access_addresses_near(conn, agent_id, measured_at, windows, newest)
                        if wants_evidence else [])
            found = attribute(lines, local_date(measured_at, zone), pin_for(pins, agent_id),
                              evidence)
        else:
            found = attribute([], date.min)
        reasons = [str(reason) for reason in payload.get("invalid_reasons") or []]
        rows.append({
            "school_id": school_id, "agent_id": agent_id,
            "record_id": ids.get((record.stream_id, record.seq)), "import_key": None,
            "source": "agent", "connection_id": found.connection_id,
            "attribution": found.method, "measured_at": measured_at,
            "download_bytes_per_second": _number(payload.get("download_bytes_per_second")),
            "upload_bytes_per_second": _number(payload.get("upload_bytes_per_second")),
            "latency_seconds": _number(payload.get("idle_latency_seconds")),
            "valid": not reasons, "invalid_reasons": reasons,
            "backend": str(payload.get("backend", "")), "server": str(payload.get("server", "")),
            "concurrent_devices": _integer(payload.get("concurrent_devices")),
        })
    conn.execute(bandwidth_results.insert(), rows)


def _record_ids(conn: Connection, agent_id: int, tests: Sequence[Record]) -> dict[tuple[str, int], int]:
    """The row ids of the batch's bandwidth records, in one query. (Usually one stream: the
    IN lists stay short, and the unique index on (agent, stream, seq) serves it.)"""
    wanted = {(r.stream_id, r.seq) for r in tests}
    query = (select(records.c.id, records.c.stream_id, records.c.seq)
             .where(records.c.agent_id == agent_id,
                    records.c.stream_id.in_(sorted({s for s, _ in wanted})),
                    records.c.seq.in_(sorted({q for _, q in wanted}))))
    return {(row.stream_id, row.seq): row.id for row in conn.execute(query)
            if (row.stream_id, row.seq) in wanted}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _integer(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


# --- time zones ------------------------------------------------------------------------------


@functools.cache
def _settings_timezone() -> str:
    # Read once per process: the ingest hook must not parse the environment per batch.
    from collector.settings import CollectorSettings

    return str(CollectorSettings().timezone)


def school_zone(conn: Connection, school_pk: int, default_timezone: str | None = None) -> ZoneInfo:
    """The school's own time zone, else the collector's (SCHOOLNET_TIMEZONE)."""
    name = conn.scalar(select(schools.c.timezone).where(schools.c.id == school_pk))
    return ZoneInfo(name or default_timezone or _settings_timezone())


def local_date(t: float, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(t, zone).date()


# --- reading ------------------------------------------------------------------------------


def load_results(conn: Connection, school_pk: int, since: float, until: float) -> list[StoredResult]:
    """The school's results measured in [since, until), oldest first."""
    query = (select(bandwidth_results, connections.c.slug.label("connection_slug"))
             .outerjoin(connections, connections.c.id == bandwidth_results.c.connection_id)
             .where(bandwidth_results.c.school_id == school_pk,
                    bandwidth_results.c.measured_at >= since,
                    bandwidth_results.c.measured_at < until)
             .order_by(bandwidth_results.c.measured_at, bandwidth_results.c.id))
    return [StoredResult(
        id=row.id, school_id=row.school_id, agent_id=row.agent_id, record_id=row.record_id,
        import_key=row.import_key, source=row.source, connection_id=row.connection_id,
        attribution=row.attribution, measured_at=row.measured_at,
        download_bytes_per_second=row.download_bytes_per_second,
        upload_bytes_per_second=row.upload_bytes_per_second,
        latency_seconds=row.latency_seconds, valid=bool(row.valid),
        invalid_reasons=tuple(row.invalid_reasons or ()), backend=row.backend,
        server=row.server, concurrent_devices=row.concurrent_devices,
        connection_slug=row.connection_slug) for row in conn.execute(query)]


# --- after the registry changed -------------------------------------------------------------


def reattribute(conn: Connection, school_pk: int, default_timezone: str | None = None) -> int:
    """Attribute every result of the school anew (call inside the transaction that changed
    its connections or contracts); return how many changed. Agent results are judged on
    all the evidence again; imports tied to a line (by the file, the command line or their
    public address) keep it, the others get (c)-(e)."""
    lines = load_lines(conn, school_pk)
    pins = pinned_connections(conn, school_pk)
    zone = school_zone(conn, school_pk, default_timezone)
    rows = conn.execute(select(bandwidth_results.c.id, bandwidth_results.c.agent_id,
                               bandwidth_results.c.source, bandwidth_results.c.measured_at,
                               bandwidth_results.c.connection_id, bandwidth_results.c.attribution)
                        .where(bandwidth_results.c.school_id == school_pk,
                               bandwidth_results.c.attribution != IMPORT_ATTRIBUTION)).all()
    changes = []
    for row in rows:
        if row.source != "agent" and row.attribution.startswith("network "):
            continue  # an import's public address is not stored: its evidence stays as found
        found = _attribute_stored(conn, lines, pins, zone, row)
        if (found.connection_id, found.method) != (row.connection_id, row.attribution):
            changes.append({"r_id": row.id, "new_connection": found.connection_id,
                            "new_method": found.method})
    if changes:
        conn.execute(update(bandwidth_results)
                     .where(bandwidth_results.c.id == bindparam("r_id"))
                     .values(connection_id=bindparam("new_connection"),
                             attribution=bindparam("new_method")), changes)
    return len(changes)


def _attribute_stored(conn: Connection, lines: Sequence[Line], pins: dict[int | None, str],
                      zone: ZoneInfo, row: Any) -> Any:
    day = local_date(row.measured_at, zone)
    if row.source != "agent" or row.agent_id is None:
        return attribute(lines, day)
    evidence = access_addresses_near(conn, row.agent_id, row.measured_at) if lines else []
    return attribute(lines, day, pin_for(pins, row.agent_id), evidence)
